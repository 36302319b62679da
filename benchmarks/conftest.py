"""Benchmark fixtures (the ``--bench-size`` option is defined in the root conftest.py)."""

import pytest


@pytest.fixture(scope="session")
def bench_size(request):
    """"tiny", "default" or "large", from ``--bench-size``."""
    return request.config.getoption("--bench-size")
