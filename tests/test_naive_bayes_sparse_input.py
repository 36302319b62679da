"""Sparse input to naive Bayes: broken index arrays are a clear ValueError, never a crash.

SciPy does not check the index arrays of a matrix built from (data, indices,
indptr) or edited afterwards; read as they are, an index out of range makes
SciPy and the kernels read or write out of bounds (a segmentation fault, or
with a negative index a silently wrong answer). Every case here is first run
in a child process, so that a regression shows as a failed test, not a
crashed test run.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import sklearn.naive_bayes as sk
from sklearn.datasets import load_digits

import fastscratch

MODELS = ["MultinomialNB", "ComplementNB", "BernoulliNB"]
METHODS = ["fit", "partial_fit", "predict", "predict_proba", "predict_joint_log_proba"]


def digits_csr():
    X, y = load_digits(return_X_y=True)
    return sp.csr_matrix(X[:200]), y[:200]


def broken(case):
    """A CSR (or CSC, COO) version of 200 digits with one inconsistency, and the message."""
    X, _ = digits_csr()
    if case == "column index too large":
        X.indices[7] = 64
        return X, r"column index 64 at position 7, outside \[0, 64\)"
    if case == "column index far too large":
        X.indices[-1] = 10**9
        return X, r"outside \[0, 64\)"
    if case == "negative column index":
        X.indices[3] = -1
        return X, r"column index -1 at position 3"
    if case == "indptr decreasing":
        X.indptr[5] = X.indptr[7]
        return X, "indptr must be non-decreasing"
    if case == "indptr too short":
        X.indptr = X.indptr[:-1].copy()
        return X, r"needs 201; fix indptr or the shape"
    if case == "indptr not starting at 0":
        X.indptr[0] = 1
        return X, "indptr must start at 0"
    if case == "indptr beyond the entries":
        X.indptr[-1] = X.indices.shape[0] + 10
        return X, "indptr must end at most at len"
    if case == "data shorter than indices":
        X.data = X.data[:-3].copy()
        return X, "must have the same length"
    if case == "csc row index too large":
        X = X.tocsc()
        X.indices[0] = 200
        return X, r"row index 200 at position 0, outside \[0, 200\)"
    if case == "coo column index too large":
        X = X.tocoo()
        X.col[0] = 70
        return X, r"column index outside \[0, 64\)"
    raise ValueError(case)


CASES = ["column index too large", "column index far too large", "negative column index",
         "indptr decreasing", "indptr too short", "indptr not starting at 0",
         "indptr beyond the entries", "data shorter than indices", "csc row index too large",
         "coo column index too large"]


def call(model, method, X):
    _, y = digits_csr()
    if method == "fit":
        return model.fit(X, y)
    if method == "partial_fit":
        return model.partial_fit(X, y, classes=np.arange(10))
    X_good, _ = digits_csr()
    return getattr(model.fit(X_good, y), method)(X)


def test_no_case_crashes_the_interpreter():
    # Every model, method, backend and case in one child process: a crash is a failure here.
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import fastscratch
        from fastscratch.kernels import available_backends
        from test_naive_bayes_sparse_input import CASES, METHODS, MODELS, broken, call
        outcomes = set()
        for backend in available_backends():
            for name in MODELS:
                for method in METHODS:
                    for case in CASES:
                        X, _ = broken(case)
                        try:
                            call(getattr(fastscratch, name)(backend=backend), method, X)
                            outcomes.add("no error: " + case)
                        except ValueError:
                            outcomes.add("ValueError")
        print(sorted(outcomes))
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert result.stdout.strip() == "['ValueError']", result.stdout


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("name", MODELS)
def test_broken_sparse_input_is_a_clear_value_error(name, method, case):
    X, message = broken(case)
    with pytest.raises(ValueError, match=message) as error:
        call(getattr(fastscratch, name)(), method, X)
    assert str(error.value).startswith("X (a ")  # names the parameter


@pytest.mark.parametrize("name", ["GaussianNB", "CategoricalNB"])
def test_dense_only_models_refuse_broken_sparse_input(name):
    X, _ = broken("column index too large")
    with pytest.raises(TypeError, match="dense data is required"):
        call(getattr(fastscratch, name)(), "fit", X)


def reversed_rows_with_duplicates(X):
    """The same matrix with each row's entries in reverse order, each split into two."""
    data, indices = [], []
    for i in range(X.shape[0]):
        row = slice(X.indptr[i], X.indptr[i + 1])
        data.append(np.repeat(X.data[row][::-1] / 2, 2))
        indices.append(np.repeat(X.indices[row][::-1], 2))
    out = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), 2 * X.indptr),
                        shape=X.shape)
    assert not out.has_sorted_indices
    return out


@pytest.mark.parametrize("name", MODELS)
def test_unsorted_and_duplicate_indices_give_the_sorted_answer(backend, name):
    # A CSR matrix means the sum of its duplicates; BernoulliNB binarises that sum
    # (scikit-learn binarises each entry, so it counts a split value twice).
    X, y = digits_csr()
    messy = reversed_rows_with_duplicates(X)
    ours = getattr(fastscratch, name)(backend=backend).fit(messy, y)
    theirs = getattr(sk, name)().fit(X, y)
    for attribute in ["class_count_", "feature_count_", "feature_log_prob_"]:
        np.testing.assert_allclose(getattr(ours, attribute), getattr(theirs, attribute),
                                   rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(messy), theirs.predict_proba(X), atol=1e-9)
    assert not messy.has_sorted_indices  # the caller's matrix is left as it was


def test_valid_csc_coo_and_int64_indices_accepted(backend):
    X, y = digits_csr()
    expected = fastscratch.MultinomialNB(backend=backend).fit(X, y).predict_proba(X)
    wide = X.copy()
    wide.indices = wide.indices.astype(np.int64)
    wide.indptr = wide.indptr.astype(np.int64)
    for variant in (X.tocsc(), X.tocoo(), wide, sp.csr_array(X)):
        got = fastscratch.MultinomialNB(backend=backend).fit(variant, y).predict_proba(variant)
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
