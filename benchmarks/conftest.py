"""Benchmark fixtures (the ``--bench-size`` option is defined in the root conftest.py)."""

import pytest


@pytest.fixture(scope="session")
def bench_size(request):
    """A name of :data:`fastscratch._sizes.SIZE_NAMES`, from ``--bench-size``."""
    return request.config.getoption("--bench-size")
