"""Benchmark fixtures (the ``--bench-size`` option is defined in the root conftest.py).

Sweeps: a benchmark module that sets ``SWEEP_FAMILIES = ("<family>", ...)`` and defines

.. code-block:: python

    def test_sweep(benchmark, sweep_case):
        sweep_case.run(benchmark)

gets one case per point of each family's sweep (:mod:`fastscratch.compare.sweeps`)
and per contender (ours with ``backend="auto"``, and the reference library with
its defaults), grouped ``sweep <family> <axis>=<value>`` so that
pytest-benchmark shows both contenders of a point side by side.
"""

from dataclasses import dataclass

import pytest

from fastscratch._sizes import sized
from fastscratch.compare.sweeps import CONTENDERS, point_call, settle, sweep_points

# size -> timed rounds per sweep case (after one untimed warm-up call)
SWEEP_ROUNDS = {"tiny": 1, "small": 3, "medium": 3, "large": 3}


@pytest.fixture(scope="session")
def bench_size(request):
    """A name of :data:`fastscratch._sizes.SIZE_NAMES`, from ``--bench-size``."""
    return request.config.getoption("--bench-size")


@dataclass
class SweepCase:
    """One contender at one sweep point."""

    point: object
    contender: str
    size: str

    def run(self, benchmark):
        call = point_call(self.point, self.contender)
        settle(self.point.family)  # the family's idle time before each contender (sweeps.settle)
        call()  # warm-up: Numba compilation or cache loading, allocator, thread pools
        benchmark.group = f"sweep {self.point.family} {self.point.id}"
        benchmark.extra_info["params"] = {name: getattr(value, "__name__", value)
                                          for name, value in self.point.params}
        benchmark.extra_info["contender"] = self.contender
        benchmark.pedantic(call, rounds=sized(SWEEP_ROUNDS, self.size), iterations=1)


def pytest_generate_tests(metafunc):
    if "sweep_case" not in metafunc.fixturenames:
        return
    families = getattr(metafunc.module, "SWEEP_FAMILIES", None)
    if not families:
        raise pytest.UsageError(f"{metafunc.module.__name__} uses sweep_case but sets no SWEEP_FAMILIES.")
    size = metafunc.config.getoption("--bench-size")
    cases = [SweepCase(point, contender, size) for family in families
             for point in sweep_points(family, size) for contender in CONTENDERS]
    metafunc.parametrize("sweep_case", cases,
                         ids=[f"{case.point.family}-{case.point.id}-{case.contender}" for case in cases])
