"""Root pytest configuration.

A plain ``pytest`` runs the test suite in tests/ only; the benchmark suite in
benchmarks/ runs with ``pytest --benchmark-only`` (or when benchmarks/ is named
on the command line). ``--bench-size {tiny,small,medium,large}`` sets the problem
size of the benchmarks, in the one size vocabulary of the project
(:mod:`fastscratch._sizes`, shared with ``fastscratch compare`` and
``fastscratch profile``); the default is "medium", the sizes the issues name
where they fit in a few minutes. The CI smoke run uses "tiny".
"""

from pathlib import Path

import pytest

from fastscratch._sizes import DEFAULT_BENCH_SIZE, SIZE_NAMES

BENCHMARK_DIR = Path(__file__).parent / "benchmarks"


def pytest_addoption(parser):
    parser.addoption("--bench-size", choices=SIZE_NAMES, default=DEFAULT_BENCH_SIZE,
                     help=f"problem size of the benchmark suite (default: {DEFAULT_BENCH_SIZE})")


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
