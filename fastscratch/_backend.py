"""The only place that turns a backend name into kernel functions.

Estimators call :func:`resolve_kernel` with the name of a kernel and their own
``backend`` parameter, and :func:`effective_n_threads` with their ``n_jobs``.
"""

import os

from ._config import BACKEND_NAMES, _check_backend_name, _check_n_jobs, get_config
from .kernels import get_kernel, pick_backend


def resolve_backend(kernel_name, backend="auto"):
    """Name of the backend that runs ``kernel_name``.

    Parameters
    ----------
    kernel_name : str
        A kernel name known to :func:`fastscratch.kernels.get_kernel`.
    backend : {"auto", "numpy", "numba", "cython"} or None
        The estimator's parameter. "auto" or None defers to the global
        configuration (:func:`fastscratch.set_config`, ``FASTSCRATCH_BACKEND``);
        an "auto" there picks the fastest installed backend for this kernel.
    """
    if backend is None:
        backend = "auto"
    if not isinstance(backend, str):
        raise TypeError(f"backend must be a string in {BACKEND_NAMES}, got {type(backend).__name__}.")
    _check_backend_name(backend)
    if backend == "auto":
        backend = get_config()["backend"]
    if backend == "auto":
        return pick_backend(kernel_name)
    return backend


def resolve_kernel(kernel_name, backend="auto"):
    """Return ``(kernel_function, backend_name)`` for an estimator's backend."""
    name = resolve_backend(kernel_name, backend)
    return get_kernel(kernel_name, name), name


def available_cpu_count():
    """Number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def effective_n_threads(n_jobs=None):
    """Turn an estimator's ``n_jobs`` into a positive thread count.

    None means the global ``n_jobs`` setting, and if that is None too, every
    available core (as scikit-learn's OpenMP estimators). Negative values count
    from the number of cores: -1 is all of them, -2 all but one.
    """
    _check_n_jobs(n_jobs)
    if n_jobs is None:
        n_jobs = get_config()["n_jobs"]
    n_cpus = available_cpu_count()
    if n_jobs is None:
        return n_cpus
    n_jobs = int(n_jobs)
    if n_jobs < 0:
        return max(1, n_cpus + 1 + n_jobs)
    return n_jobs
