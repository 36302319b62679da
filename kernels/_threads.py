"""Thread control shared by the compiled kernels.

- :func:`numba_threads` sets Numba's thread count for one call and restores it.
- :func:`blas_single_threaded` keeps BLAS to one thread while a kernel calls it
  from inside its own parallel loop (no oversubscription, and the same
  floating-point results whatever the number of threads).
- :func:`parallel_minimum` is the size below which a kernel runs on one
  thread: larger while other processes keep the cores busy
  (:func:`machine_shared`).
"""

import math
import os
import threading
import time
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


# A kernel's one-thread limit is this many times larger on a shared machine.
SHARED_MACHINE_FACTOR = 8
_SHARED = {"checked": -math.inf, "shared": False}


def machine_shared():
    """Whether other processes keep this machine's cores busy.

    A parallel region ends when its slowest thread arrives. On an idle machine
    a waiting OpenMP thread starts within microseconds; when more threads are
    runnable than there are cores, it waits for a scheduler slice
    (milliseconds), so a tree's 30 regions of a few hundred microseconds each
    cost more in waiting than they save (measured: 10-class fit, 200k rows,
    load 10 on 2 cores, 14 s with the large limits, 48 s with the small ones).
    Shared means a 1-minute load average above the usable cores plus one (our
    own threads count in it). ``FASTSCRATCH_MACHINE_SHARED=1`` or ``0``
    overrides the guess. Checked at most once a second. No result depends on
    it: the kernels give the same bits on any number of threads.
    """
    forced = os.environ.get("FASTSCRATCH_MACHINE_SHARED", "")
    if forced in ("0", "1"):
        return forced == "1"
    now = time.monotonic()
    if now - _SHARED["checked"] > 1.0:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not Linux
            cores = os.cpu_count() or 1
        try:
            load = os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows
            load = 0.0
        _SHARED["shared"], _SHARED["checked"] = load > cores + 1, now
    return _SHARED["shared"]


def parallel_minimum(idle_minimum):
    """Work below which a kernel runs on one thread: ``idle_minimum`` on an idle
    machine, :data:`SHARED_MACHINE_FACTOR` times more on a shared one."""
    return idle_minimum * SHARED_MACHINE_FACTOR if machine_shared() else idle_minimum
