"""Checks of SciPy sparse input before any kernel, or SciPy itself, reads it.

SciPy builds a matrix from ``(data, indices, indptr)`` without checking the
index ranges, and its attributes can be replaced afterwards; its own routines
(``tocsr``, products, ``sum_duplicates``) and the kernels then read or write
out of bounds: a segmentation fault, or with a negative index a silently
wrong answer. :func:`check_sparse_structure` turns every such inconsistency
into a ValueError that says what is wrong and how to fix it, in time linear
in the number of stored entries (a few passes over ``indices`` and
``indptr``), without changing or copying the matrix.
"""

import numpy as np
import scipy.sparse as sp

__all__ = ["check_sparse_structure"]


def check_sparse_structure(X, name="X"):
    """Raise a ValueError if the index arrays of a SciPy sparse ``X`` are inconsistent.

    SciPy does not check them when a matrix is built from its arrays, and its
    own routines (and the kernels) would read out of bounds: column indices
    must lie in ``[0, n_columns)``, ``indptr`` must start at 0, never
    decrease, end at most at ``len(indices)``, and have ``n_rows + 1``
    entries. Unsorted and duplicate indices are fine (the kernels do not
    need sorted rows; duplicates add up, as in SciPy).

    Parameters
    ----------
    X : object
        Anything; only a SciPy sparse matrix or array in CSR, CSC, COO or BSR
        format is checked (LIL, DOK and DIA keep no raw index arrays to trust).
    name : str, default="X"
        The parameter's name, for the message.

    Raises
    ------
    ValueError
        Naming ``name``, what is inconsistent, and what would fix it.
    """
    if not sp.issparse(X):
        return
    fmt = X.format
    if fmt in ("csr", "csc"):
        n_major, n_minor = X.shape if fmt == "csr" else X.shape[::-1]
        major, minor = ("row", "column") if fmt == "csr" else ("column", "row")
        what = f"{name} (a {fmt.upper()} matrix of shape {X.shape})"
        indptr, indices = np.asarray(X.indptr), np.asarray(X.indices)
        data = np.asarray(X.data)
        if indptr.ndim != 1 or indices.ndim != 1 or data.ndim != 1:
            raise ValueError(f"{what} has indptr, indices or data that is not 1-D; rebuild it "
                             f"with scipy.sparse.{fmt}_matrix((data, indices, indptr)).")
        if indptr.dtype.kind not in "iu" or indices.dtype.kind not in "iu":
            raise ValueError(f"{what} has non-integer indices or indptr "
                             f"({indices.dtype}, {indptr.dtype}); use integer index arrays.")
        if indptr.shape[0] != n_major + 1:
            raise ValueError(
                f"{what} has {indptr.shape[0]} entries in indptr, but a {fmt.upper()} matrix "
                f"with {n_major} {major}s needs {n_major + 1}; fix indptr or the shape.")
        if indices.shape[0] != data.shape[0]:
            raise ValueError(f"{what} has {indices.shape[0]} indices but {data.shape[0]} data "
                             "values; they must have the same length.")
        if indptr[0] != 0:
            raise ValueError(f"{what} has indptr[0] = {indptr[0]}; indptr must start at 0.")
        steps = np.diff(indptr)
        if steps.size and steps.min() < 0:
            where = int(np.argmax(steps < 0))
            raise ValueError(
                f"{what} has a decreasing indptr (indptr[{where}] = {indptr[where]} > "
                f"indptr[{where + 1}] = {indptr[where + 1]}); indptr must be non-decreasing.")
        nnz = int(indptr[-1])
        if nnz > indices.shape[0]:
            raise ValueError(f"{what} has indptr[-1] = {nnz} but only {indices.shape[0]} "
                             "stored entries; indptr must end at most at len(indices).")
        used = indices[:nnz]
        # One pass: seen as unsigned, a negative index is a huge one.
        unsigned = used.view(used.dtype.str.replace("i", "u")) if used.dtype.kind == "i" else used
        if used.size and int(unsigned.max()) >= n_minor:
            bad = int(np.flatnonzero((used < 0) | (used >= n_minor))[0])
            raise ValueError(
                f"{what} has {minor} index {used[bad]} at position {bad}, outside [0, "
                f"{n_minor}) for its {n_minor} {minor}s; fix the indices or the shape "
                "(SciPy does not check them when the matrix is built from its arrays).")
    elif fmt == "coo":
        what = f"{name} (a COO matrix of shape {X.shape})"
        coords = (X.row, X.col) if hasattr(X, "row") else tuple(X.coords)
        for axis, (kind, index) in enumerate(zip(("row", "column"), coords)):
            index = np.asarray(index)
            if index.shape[0] != np.asarray(X.data).shape[0]:
                raise ValueError(f"{what} has {index.shape[0]} {kind} indices but "
                                 f"{np.asarray(X.data).shape[0]} values; they must match.")
            if index.size and (index.min() < 0 or index.max() >= X.shape[axis]):
                raise ValueError(f"{what} has a {kind} index outside [0, {X.shape[axis]}); "
                                 "fix the indices or the shape.")
    elif fmt == "bsr":
        try:
            X.check_format(full_check=True)
        except ValueError as exc:
            raise ValueError(f"{name} (a BSR matrix of shape {X.shape}) is inconsistent: {exc}") from exc
