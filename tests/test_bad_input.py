"""The bad-input suite (issue 23): every estimator, backend and Dask version on the inputs a
careful user might still pass.

Each case asserts one outcome class:

- ``error``: a ValueError or TypeError whose message matches a pattern that names the
  input or the parameter (and, where scikit-learn words it, in scikit-learn's words);
- ``reference``: the reference library (scikit-learn, xgboost) accepts the input and our
  answers equal its answers on the same input;
- ``scaled``: data multiplied by 1e300 or 1e-300 give the reference's answers on the
  unscaled data (scaled back where the answer has the data's units);

Crash-prone cases (malformed sparse matrices, overflowing compiled kernels) run in a
subprocess, which must exit with status 0 after printing the error: never a signal.
Data are tens of rows of real data sets (iris, diabetes, digits, the electric series).
"""

import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
from fastscratch.kernels import available_backends
from sklearn.exceptions import NotFittedError

sys.path.insert(0, str(Path(__file__).parent))
from _bad_input_cases import (
    ENTRIES,
    INPUTS,
    assert_same_answers,
    fit_answer,
)

pytest.importorskip("xgboost")

BACKENDS = available_backends()
ERROR, REFERENCE, SCALED = "error", "reference", "scaled"
SUPERVISED = [name for name, entry in ENTRIES.items() if entry.kind in ("classifier",
                                                                         "regressor")]
KNN = ["KNeighborsClassifier", "KNeighborsRegressor", "NearestNeighbors"]
XGB = ["XGBClassifier", "XGBRegressor"]
NB = ["GaussianNB", "MultinomialNB", "ComplementNB", "BernoulliNB", "CategoricalNB"]

# What each kind of input must give, unless EXPECTED_FOR says otherwise: a regex for an
# error, REFERENCE or SCALED.
EXPECTED = {
    "nan_X": r"Input X contains NaN",
    "inf_X": r"Input X contains infinity",
    "nan_X_predict": r"Input X contains NaN",
    "inf_X_predict": r"Input X contains infinity",
    "nan_y": r"\by contains NaN",
    "string_y_mixed": r"\by\b.*(string|str).*(number|numeric)",
    "empty": r"0 sample\(s\)",
    "zero_features": r"0 feature\(s\)",
    "one_sample": REFERENCE,
    "one_class": REFERENCE,
    "object_numbers": REFERENCE,
    "strings": r"could not convert string to float: 'a'",
    "complex": r"Complex data not supported",
    "bool": REFERENCE,
    "fortran": REFERENCE,
    "strided": REFERENCE,
    "float32": REFERENCE,
    "three_d": r"Found array with dim 3",
    "wrong_features": r"X has \d+ features, but \w+ is expecting \d+ features",
    "one_d": r"Expected 2D array, got 1D array",
    "y_length": r"inconsistent numbers of samples",
    "huge": SCALED,
    "tiny": SCALED,
}
_OVERFLOW = r"overflow"
EXPECTED_FOR = {
    # Unsupervised estimators ignore y.
    **{(name, case): REFERENCE for name in ("NearestNeighbors", "KMeans")
       for case in ("nan_y", "string_y_mixed", "one_class", "y_length")},
    **{(name, "one_sample"): r"n_neighbors = 3, n_samples_fit = 1" for name in KNN},
    ("KMeans", "one_sample"): r"n_samples=1 should be >= n_clusters=3",
    ("KMeans", "empty"): r"n_samples=0 should be >= n_clusters=3",
    # Distances (KNN) and the inertia (k-means) of data near 1e300 overflow float64: a clear
    # error naming the overflow (scikit-learn returns arbitrary neighbours / inf inertia).
    **{(name, "huge"): _OVERFLOW for name in KNN},
    # ... and near 1e-300 they underflow (scikit-learn returns neighbours 0, 1, 2 silently).
    **{(name, "tiny"): r"X holds values of at most .* underflow" for name in KNN},
    ("KMeans", "huge"): _OVERFLOW,
    # CategoricalNB: categories are small non-negative integers.
    ("CategoricalNB", "one_sample"): r"X\[\d+, \d+\] = \d+ is a category of feature \d+ "
                                     r"never seen in training",
    ("CategoricalNB", "huge"): r"X holds values up to .* categories",
    ("CategoricalNB", "tiny"): REFERENCE,
    ("CategoricalNB", "strings"): r"invalid literal for int\(\) with base 10: 'a'",
    # GaussianNB: the variances of data near 1e300 (1e-300) overflow (underflow) float64.
    ("GaussianNB", "huge"): r"X holds values up to .* overflow",
    ("GaussianNB", "tiny"): r"X holds values of at most .* underflow to 0",
    # Count models: the smoothing alpha is absolute, so scaled counts are another problem,
    # whose answer is the reference's on the same input.
    **{(name, case): REFERENCE for name in ("MultinomialNB", "ComplementNB", "BernoulliNB")
       for case in ("huge", "tiny")},
    # Boosting: NaN is a missing value (xgboost's rule); X is cast to float32, so data near
    # 1e300 do not fit (xgboost fails there too, with an internal check).
    **{(name, case): REFERENCE for name in XGB for case in ("nan_X", "nan_X_predict")},
    **{(name, "huge"): r"Input X contains infinity or a value too large for dtype\('float32'\)"
       for name in XGB},
    **{(name, "tiny"): r"X\[\d+, \d+\] = .* underflows to 0 in float32" for name in XGB},
    # A single class is refused, as by every classifier here (xgboost fits a constant model).
    ("XGBClassifier", "one_class"): r"y has one class",
    ("XGBClassifier", "one_sample"): r"y has one class",
    # One class: xgboost fits it; the empty set it fits too, which we refuse (scikit-learn's
    # minimum of one sample).
    ("XGBRegressor", "empty"): r"0 sample\(s\)",
    ("XGBClassifier", "empty"): r"0 sample\(s\)",
    # A regressor's y of strings cannot be numbers: numpy's message names the string.
    **{(name, "string_y_mixed"): r"could not convert string to float: 'a'"
       for name in ("KNeighborsRegressor", "XGBRegressor")},
}
# Inputs whose answer depends on the kernels: run on every backend (others on "auto").
KERNEL_INPUTS = {"huge", "tiny", "fortran", "strided", "float32", "nan_X"}
# Ties between equidistant points are broken by index here and by the tree order in
# scikit-learn: with ties, KNN answers are compared through their distances.
TIED_INPUTS = {"bool"}


def _expected(name, case):
    return EXPECTED_FOR.get((name, case), EXPECTED[case])


def _cases():
    for name in ENTRIES:
        for case in INPUTS:
            backends = BACKENDS if case in KERNEL_INPUTS else ["auto"]
            for backend in backends:
                yield pytest.param(name, case, backend, id=f"{name}-{case}-{backend}")


def _assert_clear_error(call, pattern):
    """``call()`` raises a ValueError or TypeError matching ``pattern`` (never another
    exception type, never a silent answer)."""
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert re.search(pattern, str(info.value), flags=re.DOTALL), (
        f"unclear message for this input: {type(info.value).__name__}: {info.value}")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("name, case, backend", list(_cases()))
def test_estimator_input(name, case, backend, record_property):
    entry = ENTRIES[name]
    X, y = entry.data()
    X_fit, y_fit, X_query = INPUTS[case](X, y)
    expected = _expected(name, case)
    # The outcome class, for the counts (pytest --junitxml=...: property "outcome").
    record_property("outcome", expected if expected in (REFERENCE, SCALED) else ERROR)
    if expected == REFERENCE:
        answers = fit_answer(entry.ours(backend), X_fit, y_fit, X_query, entry.kind)
        reference = fit_answer(entry.reference(), X_fit, y_fit, X_query, entry.kind)
        if entry.kind != "cluster" and name in KNN and case in TIED_INPUTS:
            answers = entry.ours(backend).fit(X_fit, y_fit).kneighbors(X_query)[:1]
            reference = entry.reference().fit(X_fit, y_fit).kneighbors(X_query)[:1]
            np.testing.assert_allclose(answers[0], reference[0], rtol=1e-12)
            return
        if case == "float32" and name == "GaussianNB":
            # Probabilities from float32 moments: agreement at float32 precision.
            np.testing.assert_array_equal(answers[0], reference[0])
            np.testing.assert_allclose(answers[1], reference[1], rtol=1e-4, atol=1e-7)
            return
        assert_same_answers(answers, reference, entry.kind, name)
    elif expected == SCALED:
        scale = 1e300 if case == "huge" else 1e-300
        answers = fit_answer(entry.ours(backend), X_fit, y_fit, X_query, entry.kind)
        reference = fit_answer(entry.reference(), X, y, X, entry.kind)
        if entry.kind == "neighbors":
            np.testing.assert_allclose(answers[0] / scale, reference[0], rtol=1e-7, atol=1e-12)
        elif entry.kind == "cluster":
            from sklearn.metrics import adjusted_rand_score

            assert adjusted_rand_score(reference[0], answers[0]) == 1.0
        else:
            assert_same_answers(answers, reference, entry.kind, name)
    else:
        _assert_clear_error(
            lambda: fit_answer(entry.ours(backend), X_fit, y_fit, X_query, entry.kind),
            expected)


@pytest.mark.parametrize("name", list(ENTRIES))
def test_unfitted_predict(name, record_property):
    record_property("outcome", ERROR)
    entry = ENTRIES[name]
    X, _ = entry.data()
    method = "kneighbors" if entry.kind == "neighbors" else "predict"
    with pytest.raises(NotFittedError, match=r"not fitted yet.*Call 'fit'"):
        getattr(entry.ours(), method)(X)


# Absurd values of each estimator's size and rate parameters. The reference decides the
# class: where it refuses the value, we raise a ValueError/TypeError naming the parameter;
# where it accepts, our answers equal its answers.
ABSURD_VALUES = [-1, 0, 10 ** 12, "3", 2.5, None]
ABSURD_PARAMS = {
    **{name: ["n_neighbors"] for name in KNN},
    "KMeans": ["n_clusters", "max_iter"],
    "GaussianNB": ["var_smoothing"],
    **{name: ["alpha"] for name in NB if name != "GaussianNB"},
    **{name: ["max_depth", "n_estimators", "learning_rate", "max_bin"] for name in XGB},
}
# Where we refuse what the reference accepts, on purpose: values that are no number of
# trees, depth or rate (xgboost passes strings on to its C++ core, trains 0 or -1 trees,
# learns nothing at rate 0); the message names the parameter.
ABSURD_REFUSED = {
    **{(name, param, value): re.escape(param) for name in XGB
       for param, value in [("n_estimators", -1), ("n_estimators", 0), ("learning_rate", 0),
                            ("max_depth", "3"), ("learning_rate", "3")]},
}


def _absurd_cases():
    for name, params in ABSURD_PARAMS.items():
        for param in params:
            for value in ABSURD_VALUES:
                if param in ("n_estimators", "max_iter") and value == 10 ** 12:
                    continue  # a valid request for 10**12 iterations: no answer to wait for
                yield pytest.param(name, param, value, id=f"{name}-{param}={value!r}")


@pytest.mark.parametrize("name, param, value", list(_absurd_cases()))
def test_absurd_parameter(name, param, value, record_property):
    record_property("outcome", ERROR)
    entry = ENTRIES[name]
    X, y = entry.data()
    ours = entry.ours().set_params(**{param: value})
    reference = entry.reference().set_params(**{param: value})
    if (name, param, value) in ABSURD_REFUSED:
        _assert_clear_error(lambda: fit_answer(ours, X, y, X, entry.kind),
                            ABSURD_REFUSED[(name, param, value)])
        return
    try:
        expected = fit_answer(reference, X, y, X, entry.kind)
    except Exception:  # noqa: BLE001 (xgboost refuses some values in an XGBoostError)
        _assert_clear_error(lambda: fit_answer(ours, X, y, X, entry.kind), re.escape(param))
        return
    record_property("outcome", REFERENCE)
    assert_same_answers(fit_answer(ours, X, y, X, entry.kind), expected, entry.kind, name)


# ---------------------------------------------------------------------------
# The Dask estimators (synchronous scheduler): the in-memory estimator's outcome on the
# same input, the same exception class and message, or the same answers
# ---------------------------------------------------------------------------
DASK_INPUTS = ["nan_X", "inf_X", "nan_X_predict", "inf_X_predict", "nan_y", "string_y_mixed",
               "empty", "object_numbers", "strings", "zero_features", "one_sample", "one_class", "complex", "bool", "float32",
               "three_d", "wrong_features", "one_d", "y_length", "huge", "tiny"]
DASK_ESTIMATORS = ["KNeighborsClassifier", "KNeighborsRegressor", "KMeans", *NB, *XGB]
# The Dask estimators cannot quote the whole array as scikit-learn does: their messages are
# their own, and must name the same input and problem.
DASK_ERRORS = {
    "nan_X": r"Input X contains NaN",
    "inf_X": r"Input X contains infinity",
    "nan_X_predict": r"Input X contains NaN",
    "inf_X_predict": r"Input X contains infinity",
    "nan_y": r"\by contains NaN",
    "string_y_mixed": r"\by\b (mixes|must hold numbers)",
    "empty": r"0 sample",
    "strings": r"could not convert string to float: 'a'",
    "zero_features": r"0 feature",
    "one_sample": r"n_neighbors|n_samples|one class|never seen in training",
    "one_class": r"one class",
    "complex": r"Complex data not supported",
    "three_d": r"X must have 2 dimensions, got shape \(\d+, \d+, 1\)",
    "one_d": r"X must have 2 dimensions, got shape \(\d+,\)",
    "wrong_features": r"X has (shape \(\d+, \d+\)|\d+ features).*(fitted with|expecting) "
                      r"\d+ features",
    "y_length": r"X has \d+ rows but y",
    "huge": r"overflow|too large|beyond the int64 range",
    "tiny": r"underflow|float32",
}


def _to_dask(a, chunk_rows=8):
    import dask.array as da

    a = np.asarray(a)
    return da.from_array(a, chunks=(chunk_rows,) + a.shape[1:])


def _dask_outcome(build, X_fit, y_fit, X_query, kind, dask):
    """("ok", answers) or ("error", exception) of a fit and predict."""
    try:
        if dask:
            X_fit, X_query = _to_dask(X_fit), _to_dask(X_query)
            y_fit = _to_dask(y_fit) if y_fit is not None else None
        model = build()
        if kind == "cluster":
            model.fit(X_fit)
            answers = (np.asarray(model.predict(X_query)),)
        elif kind == "classifier":
            model.fit(X_fit, y_fit)
            answers = (np.asarray(model.predict(X_query)),
                       np.asarray(model.predict_proba(X_query)))
        else:
            model.fit(X_fit, y_fit)
            answers = (np.asarray(model.predict(X_query), dtype=np.float64),)
        if dask:
            answers = tuple(np.asarray(a.compute() if hasattr(a, "compute") else a)
                            for a in answers)
        return "ok", answers
    except (ValueError, TypeError) as error:
        return "error", error


# Boosting's Dask fit is the slowest: the inputs its own checks meet.
DASK_XGB_INPUTS = ["nan_X", "inf_X", "nan_y", "string_y_mixed", "one_class", "wrong_features",
                   "three_d", "huge"]


def _dask_cases():
    for name in DASK_ESTIMATORS:
        for case in DASK_XGB_INPUTS if name in XGB else DASK_INPUTS:
            yield pytest.param(name, case, id=f"dask-{name}-{case}")


@pytest.mark.parametrize("name, case", list(_dask_cases()))
def test_dask_estimator_agrees_with_in_memory(name, case, record_property):
    pytest.importorskip("dask")
    import dask

    from fastscratch import distributed

    entry = ENTRIES[name]
    X, y = entry.data()
    X_fit, y_fit, X_query = INPUTS[case](X, y)
    params = entry.ours().get_params()
    if name == "KMeans":
        # k-means|| and k-means++ start differently: the same initial centres for both.
        params.update(init=X[[0, 10, 20]] if case not in ("huge", "tiny") else
                      X[[0, 10, 20]] * (1e300 if case == "huge" else 1e-300))
    in_memory = _dask_outcome(lambda: entry.ours().set_params(**params), X_fit, y_fit,
                              X_query, entry.kind, dask=False)
    with dask.config.set(scheduler="synchronous"):
        on_dask = _dask_outcome(lambda: getattr(distributed, name)(**params), X_fit, y_fit,
                                X_query, entry.kind, dask=True)
    record_property("outcome", ERROR if in_memory[0] == "error" else REFERENCE)
    if in_memory[0] == "error":
        assert on_dask[0] == "error", f"in memory: {in_memory[1]!r}; Dask answered"
        same_class = (isinstance(on_dask[1], ValueError) == isinstance(in_memory[1], ValueError)
                      and isinstance(on_dask[1], TypeError) == isinstance(in_memory[1],
                                                                         TypeError))
        assert same_class and re.search(DASK_ERRORS[case], str(on_dask[1])), (
            f"in memory: {in_memory[1]!r}\non Dask: {on_dask[1]!r}")
    else:
        assert on_dask[0] == "ok", f"in memory answered; on Dask: {on_dask[1]!r}"
        for got, expected in zip(on_dask[1], in_memory[1]):
            if got.dtype.kind == "f":
                np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-9)
            else:
                np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------
# Crash-prone inputs, each batch in a fresh process: exit status 0 and a clear error per
# case, never a signal (a segmentation fault was issue 23's first finding)
# ---------------------------------------------------------------------------
def _run_isolated(script, timeout=240):
    """Run ``script`` in a fresh interpreter; its stdout lines must all start with OK."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], check=False,
                            capture_output=True, text=True, timeout=timeout,
                            cwd=Path(__file__).parent)
    assert result.returncode == 0, (
        f"exit status {result.returncode} (a negative status is a signal)\n"
        f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    lines = result.stdout.strip().splitlines()
    assert lines, result.stderr[-3000:]
    bad = [line for line in lines if not line.startswith("OK ")]
    assert not bad, "\n".join(bad)
    return lines


_ISOLATED_PRELUDE = """
    import re, sys, warnings
    warnings.simplefilter("ignore")
    import numpy as np
    import fastscratch
    from fastscratch.kernels import available_backends
    from _bad_input_cases import digit_counts, iris, malformed_csr

    def expect(label, pattern, call):
        try:
            call()
        except (ValueError, TypeError) as error:
            ok = re.search(pattern, str(error)) is not None
            print(("OK " if ok else "UNCLEAR ") + label + ": " + str(error)[:160], flush=True)
        except Exception as error:  # noqa: BLE001
            print(f"WRONG TYPE {label}: {type(error).__name__}: {error}"[:300], flush=True)
        else:
            print(f"SILENT {label}: no error", flush=True)
"""


def test_crash_prone_inputs_in_a_subprocess(record_property):
    """One fresh process (imports and compiled kernels loaded once) for both groups:

    - malformed CSR matrices (a column index out of range or negative, a decreasing
      indptr), at fit and at predict, for every estimator family taking CSR (the three
      count models share MultinomialNB's kernels) and every backend: a ValueError naming X;
    - distances and inertias that overflow inside the compiled kernels (data near 1e300,
      Minkowski p = 1e6): a ValueError naming the overflow, on every backend.
    """
    lines = _run_isolated(_ISOLATED_PRELUDE + """
    X, y = digit_counts()
    X_iris, y_iris = iris()
    estimators = {"MultinomialNB": (X, y), "BernoulliNB": (X, y),
                  "KNeighborsClassifier": (X_iris, y_iris), "KMeans": (X_iris, None)}
    pattern = r"\\bX\\b.*(CSR|csr)"
    for name, (data, target) in estimators.items():
        for backend in available_backends():
            params = dict(backend=backend)
            if name == "KMeans":
                params.update(n_clusters=3, n_init=1, random_state=0)
            fitted = getattr(fastscratch, name)(**params)
            fitted.fit(data) if target is None else fitted.fit(data, target)
            for kind in ("column_out_of_range", "negative_column", "decreasing_indptr"):
                broken = malformed_csr(kind, data)
                model = getattr(fastscratch, name)(**params)
                fit = (lambda m=model, b=broken: m.fit(b) if target is None
                       else m.fit(b, target))
                expect(f"{name} {backend} fit {kind}", pattern, fit)
                expect(f"{name} {backend} predict {kind}", pattern,
                       lambda: fitted.predict(broken))

    for backend in available_backends():
        model = fastscratch.KNeighborsClassifier(n_neighbors=3, backend=backend)
        expect(f"KNeighborsClassifier {backend} 1e300", r"overflow",
               lambda: model.fit(X_iris * 1e300, y_iris).kneighbors(X_iris * 1e300))
        model = fastscratch.KNeighborsClassifier(n_neighbors=3, p=1e6, backend=backend)
        expect(f"KNeighborsClassifier {backend} p=1e6", r"overflow",
               lambda: model.fit(X_iris * 1e3, y_iris).kneighbors(X_iris * 1e3))
        kmeans = fastscratch.KMeans(n_clusters=3, n_init=1, random_state=0, backend=backend)
        expect(f"KMeans {backend} 1e300", r"overflow", lambda: kmeans.fit(X_iris * 1e300))
    """)
    assert len(lines) == (4 * 3 * 2 + 3) * len(BACKENDS)
    record_property("outcome", f"{ERROR} x{len(lines)}")


# ---------------------------------------------------------------------------
# ARIMA and auto_arima (statsmodels is the reference; it has no estimator state to leave
# unfitted: fit returns the results)
# ---------------------------------------------------------------------------
def _electric(n=60):
    from fastscratch.datasets import load_electric_production

    return load_electric_production().to_numpy()[:n]


ARIMA_ERRORS = [
    ("empty", lambda y: (np.array([]), {}), r"y is empty"),
    ("one_point", lambda y: (y[:1], {}), r"y has 1 observations but .* needs at least"),
    ("all_nan", lambda y: (np.full(40, np.nan), {}), r"no observed values"),
    ("inf", lambda y: (np.r_[y[:-1], np.inf], {}), r"y contains infinite values"),
    ("two_d", lambda y: (np.column_stack([y, y]), {}), r"one-dimensional"),
    ("three_d", lambda y: (y[:, None, None] * np.ones((1, 2, 2)), {}), r"one-dimensional"),
    ("strings", lambda y: (y.astype(str), {}), r"y must hold real numbers"),
    ("complex", lambda y: (y + 1j, {}), r"y must hold real numbers"),
    ("constant", lambda y: (np.ones(40), {}), r"constant"),
    ("order_negative", lambda y: (y, {"order": (-1, 0, 0)}), r"order"),
    ("order_float", lambda y: (y, {"order": (1.5, 0, 0)}), r"order"),
    ("order_huge", lambda y: (y, {"order": (10 ** 6, 0, 0)}), r"needs at least"),
    ("order_string", lambda y: (y, {"order": "(1,0,0)"}), r"order"),
    ("seasonal_no_period", lambda y: (y, {"seasonal_order": (1, 0, 0, 0)}), r"period"),
    ("trend", lambda y: (y, {"trend": "quadratic"}), r"trend"),
    ("n_jobs_zero", lambda y: (y, {"n_jobs": 0}), r"n_jobs=0"),
    ("backend", lambda y: (y, {"backend": "gpu"}), r"backend='gpu'"),
]


@pytest.mark.parametrize("case, make, pattern", ARIMA_ERRORS, ids=[c[0] for c in ARIMA_ERRORS])
def test_arima_bad_input(case, make, pattern, record_property):
    record_property("outcome", ERROR)
    from fastscratch.timeseries.arima import ARIMA

    y, params = make(_electric())
    _assert_clear_error(lambda: ARIMA(**params).fit(y), pattern)


AUTO_ARIMA_ERRORS = [
    ("empty", np.array([]), {}, r"y is empty"),
    ("one_point", np.array([3.0]), {}, r"SARIMAX\(0, 0, 0\): y has 1 observations"),
    ("inf", np.r_[np.arange(30.0), np.inf], {}, r"infinite"),
    ("n_jobs_zero", np.arange(30.0), {"n_jobs": 0}, r"n_jobs=0"),
    ("backend", np.arange(30.0), {"backend": "gpu"}, r"backend='gpu'"),
    ("max_p", np.arange(30.0), {"max_p": -1}, r"max_p"),
    ("criterion", np.arange(30.0), {"information_criterion": "hqic"}, r"information_criterion"),
    ("seasonal_test", np.arange(30.0), {"seasonal_test": "ch"}, r"seasonal_test"),
]


@pytest.mark.parametrize("case, y, params, pattern", AUTO_ARIMA_ERRORS,
                         ids=[c[0] for c in AUTO_ARIMA_ERRORS])
def test_auto_arima_bad_input(case, y, params, pattern, record_property):
    record_property("outcome", ERROR)
    _assert_clear_error(lambda: fastscratch_auto_arima(y, **params), pattern)


def fastscratch_auto_arima(y, **params):
    from fastscratch import auto_arima

    return auto_arima(y, seasonal=False, max_p=1, max_q=1, **params)


@pytest.mark.parametrize("case", ["fortran_strided", "bool_exog", "float32", "nan_inside",
                                  "huge", "tiny"])
def test_arima_reference_cases(case, record_property):
    """Inputs statsmodels accepts: our forecasts equal its forecasts (the tolerance of
    test_arima.py); at 1e300 and 1e-300 statsmodels fails (NaN and 1e294-sized forecasts),
    so the reference is its fit of the unscaled series, scaled."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    from fastscratch.timeseries.arima import ARIMA

    record_property("outcome", SCALED if case in ("huge", "tiny") else REFERENCE)
    y = _electric(96)
    exog = None
    scale = {"huge": 1e300, "tiny": 1e-300}.get(case, 1.0)
    series = y * scale
    if case == "fortran_strided":
        series = np.repeat(y, 2)[::2]
    elif case == "float32":
        series = y.astype(np.float32)
        y = series.astype(np.float64)
    elif case == "nan_inside":
        series = y.copy()
        series[[20, 50]] = np.nan
        y = series
    elif case == "bool_exog":
        exog = (np.arange(96) >= 48)[:, None]
    ours = ARIMA((1, 0, 0), trend="c").fit(series, exog=exog)
    reference = SARIMAX(y, exog=None if exog is None else exog.astype(float), order=(1, 0, 0),
                        trend="c").fit(disp=False)
    future = None if exog is None else np.ones((6, 1), dtype=bool)
    np.testing.assert_allclose(ours.forecast(6, exog=future) / scale,
                               reference.forecast(6, exog=None if future is None
                                                  else future.astype(float)), rtol=1e-3)


# ---------------------------------------------------------------------------
# LSTMForecaster (tiny settings; torch.nn.LSTM's forecaster is the reference only in
# test_lstm.py) and the U-Net's predict_tiled
# ---------------------------------------------------------------------------
LSTM_PARAMS = {"lookback": 12, "horizon": 3, "hidden_size": 4, "epochs": 1, "n_ensemble": 1,
               "early_stopping": False, "random_state": 0, "seasonal_period": 12}


@pytest.fixture(scope="module")
def lstm_base():
    pytest.importorskip("torch")
    from fastscratch import LSTMForecaster

    y = _electric(72)
    return y, LSTMForecaster(**LSTM_PARAMS).fit(y).predict()


LSTM_ERRORS = [
    ("nan", lambda y: (np.r_[y[:-1], np.nan], {}), r"y contains NaN"),
    ("inf", lambda y: (np.r_[y[:-1], np.inf], {}), r"y contains NaN or infinite"),
    ("empty", lambda y: (y[:0], {}), r"y is empty"),
    ("short", lambda y: (y[:5], {}), r"y has 5 values"),
    ("complex", lambda y: (y + 1j, {}), r"y must be real"),
    ("strings", lambda y: (np.array(["a"] * len(y), dtype=object), {}), r"y must be numeric"),
    ("hidden_size_huge", lambda y: (y, {"hidden_size": 10 ** 6}), r"hidden_size=1000000.*GiB"),
    ("hidden_size_zero", lambda y: (y, {"hidden_size": 0}), r"hidden_size"),
    ("hidden_size_negative", lambda y: (y, {"hidden_size": -1}), r"hidden_size"),
    ("hidden_size_string", lambda y: (y, {"hidden_size": "8"}), r"hidden_size"),
    ("lookback_zero", lambda y: (y, {"lookback": 0}), r"lookback"),
    ("epochs_negative", lambda y: (y, {"epochs": -1}), r"epochs"),
]


@pytest.mark.parametrize("case, make, pattern", LSTM_ERRORS, ids=[c[0] for c in LSTM_ERRORS])
def test_lstm_bad_input(lstm_base, case, make, pattern, record_property):
    record_property("outcome", ERROR)
    from fastscratch import LSTMForecaster

    y, params = make(lstm_base[0])
    _assert_clear_error(lambda: LSTMForecaster(**{**LSTM_PARAMS, **params}).fit(y), pattern)


@pytest.mark.parametrize("scale", [1e300, 1e-300])
def test_lstm_extreme_scales_give_the_scaled_forecast(lstm_base, scale, record_property):
    record_property("outcome", SCALED)
    from fastscratch import LSTMForecaster

    y, expected = lstm_base
    got = LSTMForecaster(**LSTM_PARAMS).fit(y * scale).predict()
    np.testing.assert_allclose(np.asarray(got) / scale, expected, rtol=1e-5)


def test_lstm_unfitted_predict(record_property):
    record_property("outcome", ERROR)
    pytest.importorskip("torch")
    from fastscratch import LSTMForecaster

    with pytest.raises(NotFittedError):
        LSTMForecaster(**LSTM_PARAMS).predict()


def _unet_image():
    return np.random.default_rng(0).random((40, 40)).astype(np.float32)


UNET_CASES = [
    # (case, image, keyword arguments, pattern)
    ("four_d", lambda im: im[None, None, None], {}, r"image must have shape"),
    ("one_d", lambda im: im[0], {}, r"image must have shape"),
    ("channels", lambda im: np.stack([im, im]), {}, r"image has 2 channels"),
    ("margin_negative", lambda im: im, {"margin": -1}, r"margin must be >= 0"),
    ("nan", lambda im: np.where(np.arange(im.size).reshape(im.shape) == 5, np.nan, im), {},
     r"image.*NaN"),
    ("inf", lambda im: np.where(np.arange(im.size).reshape(im.shape) == 5, np.inf, im), {},
     r"image.*infin"),
    ("huge", lambda im: im * 1e300, {}, r"image.*(float32|overflow|too large)"),
    ("empty", lambda im: im[:0], {}, r"image is empty"),
    ("complex", lambda im: im + 1j, {}, r"image must hold real numbers"),
    ("batch_size_zero", lambda im: im, {"batch_size": 0}, r"batch_size"),
    ("tile_zero", lambda im: im, {"tile": 0}, r"\btile\b"),
    ("tile_unfit", lambda im: im, {"tile": 10}, r"tile=10 does not fit"),
]


@pytest.fixture(scope="module")
def small_unet():
    pytest.importorskip("torch")
    from fastscratch.segmentation.unet import UNet

    return UNet(in_channels=1, n_classes=2, base_channels=2, depth=2, padding="same")


@pytest.mark.parametrize("case, make, kwargs, pattern", UNET_CASES, ids=[c[0] for c in UNET_CASES])
def test_unet_predict_tiled_bad_input(small_unet, case, make, kwargs, pattern, record_property):
    from fastscratch.segmentation.unet import predict_tiled

    record_property("outcome", ERROR)
    _assert_clear_error(lambda: predict_tiled(small_unet, make(_unet_image()), **kwargs),
                        pattern)
