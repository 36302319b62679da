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


@contextmanager
def blas_single_threaded():
    """Limit every loaded BLAS library to one thread inside the block."""
    with _threadpool_controller().limit(limits=1, user_api="blas"):
        yield


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
