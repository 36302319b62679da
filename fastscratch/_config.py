"""Global configuration: the default kernel backend and thread count.

``backend`` and ``n_jobs`` given to an estimator win over these defaults;
these defaults win over the ``FASTSCRATCH_BACKEND`` environment variable,
which is read once, at import.
"""

import numbers
import os
import threading
from contextlib import contextmanager

BACKEND_NAMES = ("auto", "numpy", "numba", "cython")

_ENV_BACKEND = os.environ.get("FASTSCRATCH_BACKEND", "auto").strip().lower() or "auto"

_global_config = {
    "backend": _ENV_BACKEND,
    "n_jobs": None,
}
_thread_local = threading.local()


def _check_backend_name(backend, source="backend"):
    if backend not in BACKEND_NAMES:
        raise ValueError(
            f"{source}={backend!r} is not a backend; use one of {BACKEND_NAMES}."
        )


def _check_n_jobs(n_jobs, source="n_jobs"):
    if n_jobs is None:
        return
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, numbers.Integral):
        raise TypeError(f"{source} must be an int or None, got {type(n_jobs).__name__}.")
    if int(n_jobs) == 0:
        raise ValueError(f"{source}=0 is not allowed; use a positive count, -1 for all cores, or None.")


def _local_config():
    if not hasattr(_thread_local, "config"):
        _thread_local.config = _global_config.copy()
    return _thread_local.config


def get_config():
    """Return a copy of the current configuration.

    Returns
    -------
    config : dict
        Keys ``"backend"`` (one of "auto", "numpy", "numba", "cython") and
        ``"n_jobs"`` (int or None: None uses every core available to the process).
    """
    return _local_config().copy()


def set_config(backend=None, n_jobs=None):
    """Set the default backend and thread count for this thread.

    Parameters
    ----------
    backend : {"auto", "numpy", "numba", "cython"}, default=None
        Kernel backend that estimators with ``backend="auto"`` use. "auto"
        picks, per kernel, the fastest backend that is installed. None leaves
        the setting unchanged.
    n_jobs : int, default=None
        Default number of threads for kernels (-1: all cores). None leaves the
        setting unchanged.
    """
    config = _local_config()
    if backend is not None:
        _check_backend_name(backend)
        config["backend"] = backend
    if n_jobs is not None:
        _check_n_jobs(n_jobs)
        config["n_jobs"] = n_jobs


@contextmanager
def config_context(*, backend=None, n_jobs=None):
    """Temporarily change the configuration inside a ``with`` block.

    Examples
    --------
    >>> import fastscratch
    >>> with fastscratch.config_context(backend="numpy"):
    ...     fastscratch.get_config()["backend"]
    'numpy'
    """
    old = get_config()
    set_config(backend=backend, n_jobs=n_jobs)
    try:
        yield
    finally:
        config = _local_config()
        config.clear()
        config.update(old)
