"""Peak memory of a computation, measured in a fresh process.

``ru_maxrss`` is the high-water mark of the resident set, so it sees every
allocation (NumPy, Numba's runtime, Cython's ``malloc``, BLAS buffers), which
``tracemalloc`` would miss. The computation runs in a spawned process so that
earlier work in the caller does not hide its peak.
"""

import multiprocessing
import resource


def _max_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _child(setup, run, queue):
    run(setup(True))  # warm up on small inputs: imports and compilation
    inputs = setup(False)
    before = _max_rss_mb()
    run(inputs)
    queue.put(_max_rss_mb() - before)


def peak_memory_above_inputs_mb(setup, run):
    """MB that ``run(setup(False))`` adds to the peak resident memory.

    In a fresh process: ``run(setup(True))`` first (small inputs, so imports
    and compilation happen before the measurement), then the real inputs are
    built and the peak is read before and after ``run``. Both callables must be
    picklable module-level functions.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(setup, run, queue))
    process.start()
    result = queue.get()
    process.join()
    return result
