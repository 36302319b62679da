"""What every Dask estimator shares: Dask input checks, tree reductions and block-wise prediction."""

import functools

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import assert_all_finite

try:
    import dask
    import dask.array as da
    import dask.dataframe as dd
    from dask_ml.wrappers import ParallelPostFit as _DaskMLParallelPostFit
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "fastscratch.distributed needs Dask and dask-ml, which are not installed: "
        'pip install "fastscratch[dask]"'
    ) from exc

from .._backend import effective_n_threads
from .._config import config_context, get_config

SPLIT_EVERY = 8  # partial results per task of a tree reduction


def is_dask_collection(X):
    """True for a Dask array, dataframe or series."""
    return dask.is_dask_collection(X)


def _as_dask_array(X, name, ndim=None):
    """A Dask array (rows in blocks, one block of columns) from a Dask array or frame.

    Returns ``(array, column_names or None)``.
    """
    columns = None
    if isinstance(X, (dd.DataFrame, dd.Series)):
        if isinstance(X, dd.DataFrame):
            columns = np.asarray(X.columns, dtype=object)
        X = X.to_dask_array(lengths=True)
    if not isinstance(X, da.Array):
        raise TypeError(f"{name} must be a dask array or dataframe here, got {type(X).__name__}; "
                        "convert it with dask.array.from_array.")
    if np.isnan(X.shape[0]):
        X = X.compute_chunk_sizes()
    if ndim is not None and X.ndim not in ndim:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndim))} dimensions, "
                         f"got shape {X.shape}.")
    if X.ndim == 2 and X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    return X, columns


def _checked_X(X, estimator, *, allow_nan=False, as_dtype=None):
    """``(X, column names)``: a Dask X checked as the in-memory estimator's ``check_array``.

    Shape and dtype are checked at once, with scikit-learn's messages; values
    (NaN, infinity, strings that are no numbers) when the blocks are computed,
    as the data are lazy. ``allow_nan`` lets NaN through (boosting's missing
    values) but not infinity. With ``as_dtype`` (boosting's float32), values
    beyond that dtype's range are refused too, as ``check_array(dtype=...)``
    refuses them after its cast.
    """
    X, columns = _as_dask_array(X, "X", ndim=(2,))
    name = type(estimator).__name__
    if X.shape[0] < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 is "
                         f"required by {name}.")
    if X.shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum of 1 is "
                         f"required by {name}.")
    if X.dtype.kind == "c":
        raise ValueError("Complex data not supported; pass the real (or absolute) values.")
    if X.dtype.kind not in "biuf":
        X = X.astype(np.float64)  # as check_array: numbers held as objects or strings
    return _finite(X, allow_nan=allow_nan, as_dtype=as_dtype), columns


def _numeric_target(y):
    """A regressor's Dask ``y`` must hold numbers (the in-memory estimators convert to float)."""
    if y.dtype.kind not in "biuf":
        raise ValueError(f"y must hold numbers for a regressor, got dtype {y.dtype}; convert the "
                         "targets to float, or use a classifier for labels.")
    return y


def _aligned(X, *others):
    """``others`` (1-D Dask arrays, array-likes or None) chunked as the rows of ``X``."""
    out = []
    for other in others:
        if other is None:
            out.append(None)
            continue
        if isinstance(other, (dd.DataFrame, dd.Series)):
            other = other.to_dask_array(lengths=True)
        if not isinstance(other, da.Array):
            other = da.from_array(np.asarray(other), chunks=(X.chunks[0],))
        if other.shape[0] != X.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y or sample_weight has "
                             f"{other.shape[0]}; pass one value per row.")
        if other.ndim > 1 and other.numblocks[1] > 1:
            other = other.rechunk({1: -1})
        out.append(other.rechunk({0: X.chunks[0]}))
    return out


def _blocks(array):
    """The row blocks of a Dask array (1-D or one block of columns) as delayed objects."""
    if array is None:
        return None
    return list(array.to_delayed().ravel())


def _run_with_config(config, function, *args, **kwargs):
    with config_context(**config):
        return function(*args, **kwargs)


def _delayed(function, **kwargs):
    """``dask.delayed(function)`` that runs under the caller's fastscratch configuration.

    :func:`fastscratch.set_config` is thread-local (as scikit-learn's), and
    Dask runs tasks in other threads and processes: a task built here carries
    the configuration in force when it is built (backend, n_jobs), so the
    workers resolve ``backend="auto"`` exactly as the client would.
    """
    return dask.delayed(functools.partial(_run_with_config, get_config(), function), **kwargs)


def _combine_parts(combine, *parts):
    return combine(list(parts))


def _tree_reduce(parts, combine, split_every=SPLIT_EVERY):
    """Delayed tree reduction of delayed ``parts`` with ``combine(list) -> part``.

    The parts are passed to each task as separate arguments, not as one list:
    Dask does not carry the futures of persisted parts (a model kept on the
    workers) through a list argument, so a result built from a list would
    lose them once the estimator that held them is gone.
    """
    task = _delayed(_combine_parts, pure=True)
    parts = list(parts)
    while len(parts) > 1:
        parts = [task(combine, *parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


def _set_feature_names(estimator, columns, n_features):
    estimator.n_features_in_ = int(n_features)
    if columns is not None and all(isinstance(c, str) for c in columns):
        estimator.feature_names_in_ = columns
    elif hasattr(estimator, "feature_names_in_"):
        del estimator.feature_names_in_


def _float_dtype(X):
    return X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _task_threads(n_jobs):
    """Kernel threads inside one Dask task: 1 unless n_jobs says otherwise.

    Dask already runs one task per worker thread; more kernel threads per
    task would oversubscribe the cores.
    """
    return 1 if n_jobs is None else effective_n_threads(n_jobs)


def _classes_and_codes(y):
    """Sorted classes of a Dask ``y`` (computed) and the Dask array of their positions.

    NaN is no class: a float ``y`` holding NaN gets the in-memory estimators'
    ValueError ("Input y contains NaN.").
    """
    try:
        classes = np.unique(np.asarray(da.unique(y).compute()))
    except TypeError:  # labels that cannot be ordered: strings mixed with None or numbers
        # The in-memory estimators' TypeError (fastscratch._labels.check_label_kinds).
        raise TypeError("y mixes strings and numbers (or other labels that cannot be "
                        "compared), which cannot be sorted into classes; make every label a "
                        "string (y.astype(str)) or every label a number.") from None
    if classes.dtype.kind == "f" and np.isnan(classes).any():
        raise ValueError("Input y contains NaN.")
    check_classification_targets(classes)
    codes = y.map_blocks(lambda block: np.searchsorted(classes, block).astype(np.intp),
                         dtype=np.intp)
    return classes, codes


def _checked_finite_block(block, input_name, allow_nan, as_dtype=None):
    if as_dtype is not None and block.dtype.kind == "f" and block.dtype != as_dtype:
        with np.errstate(over="ignore"):
            assert_all_finite(block.astype(as_dtype), allow_nan=allow_nan, input_name=input_name)
    else:
        assert_all_finite(block, allow_nan=allow_nan, input_name=input_name)
    return block


def _finite(X, input_name="X", allow_nan=False, as_dtype=None):
    """``X`` (a Dask array) with every block checked for NaN and infinity when computed.

    The check is lazy, as the data are; a bad block raises the in-memory
    estimators' own ValueError ("Input X contains NaN.").
    """
    return X.map_blocks(_checked_finite_block, input_name=input_name, allow_nan=allow_nan,
                        as_dtype=as_dtype, dtype=X.dtype, meta=X._meta)


def _predict_log_proba(part, estimator):
    return estimator.predict_log_proba(part)


def _predict_joint_log_proba(part, estimator):
    return estimator.predict_joint_log_proba(part)


class ParallelPostFit(_DaskMLParallelPostFit):
    """dask-ml's ``ParallelPostFit`` for fastscratch estimators.

    Wraps a fitted (or to be fitted in memory) estimator; ``predict``,
    ``predict_proba``, ``transform`` and ``score`` on a Dask array or
    dataframe run one task per block of rows. ``predict_log_proba`` calls the
    estimator's own ``predict_log_proba`` block by block (normalised in log
    space) instead of dask-ml's ``log(predict_proba)``, which underflows.

    Parameters
    ----------
    estimator : estimator
        Any fastscratch (or scikit-learn) estimator.
    scoring : str or callable, default=None
    predict_meta, predict_proba_meta, transform_meta : array-like, default=None
        Empty arrays of the outputs' type and dtype (see dask-ml).

    Examples
    --------
    >>> import dask.array as da, numpy as np
    >>> from fastscratch import GaussianNB
    >>> from fastscratch.distributed import ParallelPostFit
    >>> X = np.array([[-1.0, -1], [-2, -1], [1, 1], [2, 1]]); y = np.array([0, 0, 1, 1])
    >>> model = ParallelPostFit(GaussianNB()).fit(X, y)
    >>> model.predict(da.from_array(X, chunks=2)).compute()
    array([0, 0, 1, 1])
    """

    def predict_log_proba(self, X):
        self._check_method("predict_log_proba")
        X = self._check_array(X)
        if isinstance(X, da.Array):
            n_classes = len(self._postfit_estimator.classes_)
            return X.map_blocks(_predict_log_proba, estimator=self._postfit_estimator,
                                dtype=np.float64, chunks=(X.chunks[0], n_classes),
                                meta=np.empty((0, 0), dtype=np.float64))
        if isinstance(X, (dd.DataFrame, dd.Series)):
            return X.map_partitions(_predict_log_proba, estimator=self._postfit_estimator)
        return _predict_log_proba(X, self._postfit_estimator)


class _DaskPredictMixin:
    """``predict*`` / ``transform`` of a Dask collection through :class:`ParallelPostFit`.

    The blocks are predicted by the parent class's own methods (the mixin
    sees NumPy blocks there and steps aside).
    """

    def _postfit(self, args=(), kwargs=None):
        """dask-ml's wrapper around this estimator, its methods run under the client's config."""
        return ParallelPostFit(_BoundMethods(self, args, kwargs or {}, get_config()))

    def _dispatch(self, method, X, *args, **kwargs):
        if is_dask_collection(X):
            return getattr(self._postfit(args, kwargs), method)(X)
        return getattr(super(), method)(X, *args, **kwargs)

    def predict(self, X, *args, **kwargs):
        return self._dispatch("predict", X, *args, **kwargs)

    def predict_proba(self, X, *args, **kwargs):
        return self._dispatch("predict_proba", X, *args, **kwargs)

    def predict_log_proba(self, X, *args, **kwargs):
        return self._dispatch("predict_log_proba", X, *args, **kwargs)


class _BoundMethods:
    """An estimator whose predict methods run under a fastscratch configuration (the
    client's, see :func:`_delayed`) and get extra arguments (``iteration_range=...``)."""

    def __init__(self, estimator, args, kwargs, config):
        self.estimator, self.args, self.kwargs, self.config = estimator, args, kwargs, config

    def __getattr__(self, name):
        if name.startswith("__") or name in ("estimator", "args", "kwargs", "config"):
            raise AttributeError(name)  # pickling looks these up before __init__ state exists
        attribute = getattr(self.estimator, name)
        if name.startswith("predict") or name == "transform":
            return lambda X: _run_with_config(self.config, attribute, X, *self.args, **self.kwargs)
        return attribute




def _moments_block(X):
    return _column_moments(X)


def _moments_combine(parts):
    total = parts[0]
    for part in parts[1:]:
        total = _merge_moments(total, part)
    return total


def _sum_combine(parts):
    total = parts[0]
    for part in parts[1:]:
        total = tuple(a + b for a, b in zip(total, part))
    return total


MOMENT_CHUNK = 8192  # rows per float64 chunk of _column_moments


def _column_moments(X, weights=None):
    """``(n, mean, M)`` of the columns of a block in float64 (``M = n * variance``).

    Two passes (the mean, then the squared deviations from it) over chunks
    of ``MOMENT_CHUNK`` rows, so a float32 block is never copied whole to
    float64; with ``weights``, ``n`` is their sum and the sums are weighted.
    Blocks merge with :func:`_merge_moments` (Chan, Golub and LeVeque).
    """
    n_features = X.shape[1]
    if X.shape[0] == 0 or (weights is not None and float(np.sum(weights)) == 0):
        return 0.0, np.zeros(n_features), np.zeros(n_features)
    chunks = range(0, X.shape[0], MOMENT_CHUNK)

    def block(start):
        return np.asarray(X[start:start + MOMENT_CHUNK], dtype=np.float64)

    if weights is None:
        n = float(X.shape[0])
        mean = sum(block(start).sum(axis=0) for start in chunks) / n
        m2 = sum(((block(start) - mean) ** 2).sum(axis=0) for start in chunks)
    else:
        weights = np.asarray(weights, dtype=np.float64)
        n = float(weights.sum())
        mean = sum(weights[start:start + MOMENT_CHUNK] @ block(start) for start in chunks) / n
        m2 = sum(weights[start:start + MOMENT_CHUNK] @ (block(start) - mean) ** 2
                 for start in chunks)
    return n, mean, m2



def _merge_moments(a, b):
    """Chan-Golub-LeVeque merge of two ``(n, mean, M)`` triples."""
    n_a, mean_a, m_a = a
    n_b, mean_b, m_b = b
    if n_b == 0:
        return a
    if n_a == 0:
        return b
    n = n_a + n_b
    delta = mean_b - mean_a
    return n, mean_a + delta * (n_b / n), m_a + m_b + delta ** 2 * (n_a * n_b / n)



class _ShapeOnly:
    """Stands for X where the parent's checks need only its shape (and dtype)."""

    def __init__(self, shape, dtype=np.float64):
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
