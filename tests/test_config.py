"""Backend registry, configuration and the choice of a backend."""

import os
import subprocess
import sys

import pytest

import fastscratch
from fastscratch import kernels
from fastscratch._backend import effective_n_threads, resolve_backend, resolve_kernel


def test_available_backends_in_preference_order():
    backends = kernels.available_backends()
    assert backends[-1] == "numpy"
    assert backends == [b for b in ("cython", "numba", "numpy") if b in backends]


def test_get_kernel_returns_each_backend_function(backend):
    kernel = kernels.get_kernel("sqeuclidean_topk", backend)
    assert kernel.__module__.endswith(f"distances_{backend}") or backend == "cython"


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown kernel 'nope'"):
        kernels.get_kernel("nope", "numpy")
    with pytest.raises(ValueError, match="backend='fortran'"):
        kernels.get_kernel("sqeuclidean_topk", "fortran")
    with pytest.raises(ValueError, match="backend='fast'"):
        resolve_backend("sqeuclidean_topk", "fast")
    with pytest.raises(ValueError, match="backend='fast'"):
        fastscratch.set_config(backend="fast")


def test_missing_backend_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(kernels, "backend_status",
                        lambda name: (False, kernels._HOW_TO_GET["cython"]) if name == "cython" else (True, ""))
    kernels._load_module.cache_clear()
    monkeypatch.setattr(kernels.importlib, "import_module",
                        lambda name: (_ for _ in ()).throw(ImportError(name)))
    try:
        with pytest.raises(ImportError, match="reinstall fastscratch with a C compiler"):
            kernels.get_kernel("sqeuclidean_topk", "cython")
    finally:
        kernels._load_module.cache_clear()


def test_auto_follows_the_table_and_falls_back(monkeypatch):
    order = kernels._kernel_families()["sqeuclidean_topk"][1]
    installed = kernels.available_backends()
    assert kernels.pick_backend("sqeuclidean_topk") == next(b for b in order if b in installed)
    monkeypatch.setattr(kernels, "backend_status", lambda name: (name == "numpy", "test"))
    assert kernels.pick_backend("sqeuclidean_topk") == "numpy"


def test_config_context_and_set_config():
    assert fastscratch.get_config()["backend"] == "auto"
    with fastscratch.config_context(backend="numpy", n_jobs=1):
        assert fastscratch.get_config() == {"backend": "numpy", "n_jobs": 1}
        assert resolve_backend("sqeuclidean_topk") == "numpy"
        assert resolve_kernel("sqeuclidean_topk", "auto")[1] == "numpy"
        # An explicit estimator backend wins over the global one.
        assert resolve_backend("sqeuclidean_topk", "numba") == "numba"
        assert effective_n_threads(None) == 1
    assert fastscratch.get_config()["backend"] == "auto"


def test_n_jobs():
    assert effective_n_threads(3) == 3
    assert effective_n_threads(-1) == effective_n_threads(None) >= 1
    with pytest.raises(ValueError, match="n_jobs=0"):
        effective_n_threads(0)
    with pytest.raises(TypeError, match="n_jobs must be an int"):
        effective_n_threads(1.5)


def test_environment_variable_sets_the_default():
    code = "import fastscratch; print(fastscratch.get_config()['backend'])"
    env = dict(os.environ, FASTSCRATCH_BACKEND="numba")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "numba"


def test_import_is_light():
    code = "import sys, fastscratch; print('numba' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
