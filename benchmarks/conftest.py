"""Benchmark options: ``--bench-size {tiny,default,large}``.

- tiny: seconds; the CI smoke run (``pytest --benchmark-only --benchmark-disable
  --bench-size tiny``) so the suite cannot rot.
- default: the sizes the issues name where they fit in a few minutes.
- large: the largest sizes the issues name (minutes each).
"""

import pytest


def pytest_addoption(parser):
    parser.addoption("--bench-size", choices=("tiny", "default", "large"), default="default",
                     help="problem size of the benchmark suite (default: default)")


@pytest.fixture(scope="session")
def bench_size(request):
    return request.config.getoption("--bench-size")
