"""Hot loops of fastscratch, each as a NumPy reference, a Numba and a Cython kernel.

A *family* of kernels lives in three modules side by side, so a reader can diff
them: ``<family>_numpy.py`` (readable reference), ``<family>_numba.py`` and
``<family>_cython.pyx``. Each defines the same kernel functions with the same
signature: inputs, then caller-allocated outputs, then ``n_threads``; they
return nothing and check nothing (the Python layer of the estimators does).

The reference module also holds ``AUTO_BACKEND_ORDER``, a table that maps each
of its kernels to the backends in the order the benchmarks measured them
fastest; ``backend="auto"`` takes the first one installed.

Nothing here imports Numba or a compiled module until a kernel is asked for.
"""

import importlib
import importlib.util
import pkgutil
from functools import lru_cache

BACKENDS = ("numpy", "numba", "cython")

_HOW_TO_GET = {
    "numba": 'Numba is not installed: pip install numba (or pip install -e ".[test]").',
    "cython": (
        "the Cython kernels were not built: reinstall fastscratch with a C compiler "
        "and OpenMP available (pip install -e .), and check the build output."
    ),
}


@lru_cache(maxsize=None)
def _kernel_families():
    """Map every kernel name to ``(family, auto_backend_order)``."""
    families = {}
    for module_info in pkgutil.iter_modules(__path__):
        if not module_info.name.endswith("_numpy"):
            continue
        family = module_info.name[: -len("_numpy")]
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for kernel_name, order in module.AUTO_BACKEND_ORDER.items():
            families[kernel_name] = (family, tuple(order))
    return families


def kernel_names():
    """Sorted names of every kernel that :func:`get_kernel` knows."""
    return sorted(_kernel_families())


@lru_cache(maxsize=None)
def backend_status(backend):
    """``(available, reason)`` for a backend as a whole.

    The Cython backend counts as available when at least one compiled kernel
    module can be found; a single missing family is reported by
    :func:`get_kernel`.
    """
    if backend == "numpy":
        return True, "always available"
    if backend == "numba":
        if importlib.util.find_spec("numba") is None:
            return False, _HOW_TO_GET["numba"]
        return True, "numba " + importlib.import_module("numba").__version__
    if backend == "cython":
        # pkgutil lists compiled extension modules, never .pyx sources.
        compiled = [m.name for m in pkgutil.iter_modules(__path__) if m.name.endswith("_cython")]
        if not compiled:
            return False, _HOW_TO_GET["cython"]
        return True, f"{len(compiled)} compiled kernel modules"
    raise ValueError(f"backend={backend!r} is not one of {BACKENDS}.")


def available_backends():
    """Backends present on this installation, fastest first in general.

    Returns
    -------
    backends : list of str
        A subset of ["cython", "numba", "numpy"]; "numpy" is always there.
    """
    return [name for name in ("cython", "numba", "numpy") if backend_status(name)[0]]


@lru_cache(maxsize=None)
def _load_module(family, backend):
    module_name = f"{__name__}.{family}_{backend}"
    try:
        return importlib.import_module(module_name)
    except ImportError as exc:
        if backend == "numpy":
            raise
        available, reason = backend_status(backend)
        if not available:
            raise ImportError(f"backend {backend!r} is missing: {reason}") from exc
        raise ImportError(
            f"backend {backend!r} has no {family!r} kernels ({exc}): {_HOW_TO_GET[backend]}"
        ) from exc


def get_kernel(name, backend):
    """Return the kernel function ``name`` of ``backend``.

    Parameters
    ----------
    name : str
        Kernel name, e.g. "sqeuclidean_topk" (see :func:`kernel_names`).
    backend : {"numpy", "numba", "cython"}

    Raises
    ------
    ValueError
        Unknown kernel or backend name.
    ImportError
        The backend is not installed; the message says how to get it.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r} is not one of {BACKENDS}.")
    families = _kernel_families()
    if name not in families:
        raise ValueError(f"unknown kernel {name!r}; known kernels: {kernel_names()}.")
    family, _ = families[name]
    return getattr(_load_module(family, backend), name)


def pick_backend(name):
    """The fastest installed backend for kernel ``name`` (``AUTO_BACKEND_ORDER``)."""
    families = _kernel_families()
    if name not in families:
        raise ValueError(f"unknown kernel {name!r}; known kernels: {kernel_names()}.")
    family, order = families[name]
    for backend in order:
        if backend == "numpy" or backend_status(backend)[0]:
            try:
                _load_module(family, backend)
            except ImportError:
                continue
            return backend
    return "numpy"
