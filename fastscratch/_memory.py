"""Peak memory of a computation, measured in a fresh process.

The peak resident set size (Linux's ``VmHWM``) sees every allocation (NumPy,
Numba's runtime, Cython's ``malloc``, BLAS buffers), which ``tracemalloc``
would miss. The computation runs in a spawned process so that earlier work in
the caller does not hide its peak; after a warm-up on small inputs the peak is
reset (``/proc/self/clear_refs``), so compilation and imports are not counted.
"""

import multiprocessing


def _status_mb(field):
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise KeyError(field)


def _reset_peak():
    """Reset VmHWM to the current resident size; False where Linux does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:
        return False


def _child(setup, run, queue):
    try:
        run(setup(True))  # warm up on small inputs: imports and compilation
        inputs = setup(False)
        # No warm-up on the real inputs: memory that the allocator keeps after
        # a first call would be reused by the measured one and hide its peak.
        if not _reset_peak():
            raise OSError("cannot reset the peak resident size on this system")
        before = _status_mb("VmRSS")
        run(inputs)
        queue.put(_status_mb("VmHWM") - before)
    except Exception as exc:  # report, do not hang the parent
        queue.put(exc)


def peak_memory_above_inputs_mb(setup, run):
    """MB that ``run(setup(False))`` adds to the resident memory at its peak.

    In a fresh process: ``run(setup(True))`` warms up on small inputs
    (imports, compilation); then the real inputs are built, the peak is reset
    and one call is measured against the resident size just before it (inputs
    included in the baseline). ``setup(True)`` may return the real inputs when
    they cannot be made smaller; memory the allocator kept from that warm-up
    is then not counted. Both callables must be picklable module-level
    functions.
    """
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_child, args=(setup, run, queue))
    process.start()
    result = queue.get()
    process.join()
    if isinstance(result, Exception):
        raise result
    return result
