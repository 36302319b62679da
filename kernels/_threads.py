"""Thread control shared by the compiled kernels.

- :func:`numba_threads` sets Numba's thread count for one call and restores it.
- :func:`blas_single_threaded` keeps BLAS to one thread while a kernel calls it
  from inside its own parallel loop (no oversubscription, and the same
  floating-point results whatever the number of threads).
"""

import threading
from contextlib import contextmanager

_CONTROLLER = None
_CONTROLLER_LOCK = threading.Lock()


def _threadpool_controller():
    """The process's threadpoolctl controller, built once on first use.

    Building it inspects every loaded library; the lock makes the first use
    safe when several threads (Dask's threaded workers) start kernels at once.
    """
    global _CONTROLLER
    if _CONTROLLER is None:
        with _CONTROLLER_LOCK:
            if _CONTROLLER is None:
                from threadpoolctl import ThreadpoolController

                _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


_BLAS_LOCK = threading.Lock()
_BLAS_LIMITER = None  # threadpoolctl's limiter while some block holds BLAS to one thread
_BLAS_USERS = 0  # blocks inside blas_single_threaded, in every thread


@contextmanager
def blas_single_threaded():
    """Limit every loaded BLAS library to one thread inside the block.

    The limit is process-wide (it is BLAS's own setting), so the blocks share
    it: the first block to enter sets it, the last one to leave restores the
    original thread counts. Nested blocks (a fit that holds the limit around
    its iterations, each kernel call asking again) and concurrent ones (Dask's
    threaded workers) cost a counter, not a round of ``set_num_threads`` calls.
    """
    global _BLAS_LIMITER, _BLAS_USERS
    with _BLAS_LOCK:
        if _BLAS_USERS == 0:
            _BLAS_LIMITER = _threadpool_controller().limit(limits=1, user_api="blas")
        _BLAS_USERS += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS -= 1
            if _BLAS_USERS == 0:
                _BLAS_LIMITER.restore_original_limits()
                _BLAS_LIMITER = None


@contextmanager
def numba_threads(n_threads):
    """Run Numba's parallel loops on ``n_threads`` threads inside the block."""
    import numba

    n_threads = max(1, min(int(n_threads), numba.config.NUMBA_NUM_THREADS))
    previous = numba.get_num_threads()
    numba.set_num_threads(n_threads)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
