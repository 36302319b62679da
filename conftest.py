"""Root pytest configuration.

A plain ``pytest`` runs the test suite in tests/ only; the benchmark suite in
benchmarks/ runs with ``pytest --benchmark-only`` (or when benchmarks/ is named
on the command line).
"""

from pathlib import Path

BENCHMARK_DIR = Path(__file__).parent / "benchmarks"


def _benchmarks_requested(config):
    if config.getoption("benchmark_only", default=False):
        return True
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
