"""Root pytest configuration.

A plain ``pytest`` runs the test suite in tests/ only; the benchmark suite in
benchmarks/ runs with ``pytest --benchmark-only`` (or when benchmarks/ is named
on the command line). ``--bench-size {tiny,default,large}`` sets the problem
size of the benchmarks:

- tiny: seconds; the CI smoke run (``pytest --benchmark-only --benchmark-disable
  --bench-size tiny``), so the suite cannot rot;
- default: the sizes the issues name where they fit in a few minutes;
- large: the largest sizes the issues name (minutes each).
"""

from pathlib import Path

import pytest

BENCHMARK_DIR = Path(__file__).parent / "benchmarks"


def pytest_addoption(parser):
    parser.addoption("--bench-size", choices=("tiny", "default", "large"), default="default",
                     help="problem size of the benchmark suite (default: default)")


def _benchmarks_requested(config):
    if config.getoption("benchmark_only", default=False):
        return True
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        return False  # paths came from testpaths, not from the user
    for arg in config.args:
        path = Path(arg.split("::")[0]).resolve()
        if path == BENCHMARK_DIR or BENCHMARK_DIR in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config, items):
    if _benchmarks_requested(config):
        return
    selected, deselected = [], []
    for item in items:
        (deselected if BENCHMARK_DIR in Path(item.fspath).parents else selected).append(item)
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = selected
