"""Shared fixtures: one ``backend`` parameter per installed kernel backend."""

import numpy as np
import pytest

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


@pytest.fixture
def rng():
    return np.random.default_rng(0)
