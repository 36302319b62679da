"""Shared fixtures: one ``backend`` parameter per installed kernel backend, the boosting
kernels forced onto their threaded paths, and the real data sets the boosting tests compare
with xgboost on (float32, as the trees compare them)."""

import importlib

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_diabetes

from fastscratch.kernels import available_backends

BACKENDS = available_backends()


@pytest.fixture(params=BACKENDS)
def backend(request):
    """Each installed kernel backend in turn ("cython", "numba", "numpy")."""
    return request.param


@pytest.fixture(params=[b for b in BACKENDS if b != "numpy"])
def optimised_backend(request):
    """Each installed compiled backend (compared against the NumPy reference)."""
    return request.param


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X.astype(np.float32), y


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture
def always_parallel(monkeypatch):
    """Every boosting kernel takes its threaded path, however small its input."""
    for module, name in [("histogram_cython", "PARALLEL_MIN_ROWS"),
                         ("histogram_numba", "PARALLEL_MIN_ROWS"),
                         ("partition_cython", "PARALLEL_MIN_ROWS"),
                         ("partition_numba", "PARALLEL_MIN_ROWS"),
                         ("splitting_cython", "PARALLEL_MIN_WORK"),
                         ("splitting_numba", "PARALLEL_MIN_WORK"),
                         *[(f"quantized_histogram_{b}", name) for b in ("cython", "numba")
                           for name in ("PARALLEL_MIN_ROWS", "PARALLEL_MIN_ENTRIES",
                                        "PARALLEL_MIN_QUANTIZE")]]:
        try:
            kernels = importlib.import_module(f"fastscratch.kernels.{module}")
        except ImportError:  # backend not installed or not built
            continue
        monkeypatch.setattr(kernels, name, 0)
