"""``fastscratch compare``: every backend of ours against the reference library.

For each task (knn, kmeans, naive_bayes, boosting, timeseries, unet) the same
data go through our estimator on every backend and through the library it
imitates; one table per task gives the median time (compilation apart), the
ratio to the reference, the quality metric and whether the answers agree.

With ``--sweep`` (:func:`run_sweeps`), each task instead varies the sizes its
cost depends on, one axis at a time (:mod:`fastscratch.compare.sweeps`), and
reports the ratio of our time to the reference's at every point, with a plot
of that ratio against each axis.

>>> from fastscratch.compare import run_compare
>>> results = run_compare(["knn"], size="tiny")  # doctest: +SKIP
"""

import os
from pathlib import Path

from .._sizes import DEFAULT_COMMAND_SIZE, SIZE_NAMES, check_size
from . import tasks
from ._runner import Row, TaskResult, speedup_plot, table_lines

__all__ = ["TASKS", "run_compare", "run_sweeps", "write_report", "write_sweep_report", "Row", "TaskResult"]

# task name -> function(size, backends, progress, out_dir=None) returning a TaskResult
TASKS = {
    "knn": tasks.knn,
    "kmeans": tasks.kmeans,
    "naive_bayes": tasks.naive_bayes,
    "boosting": tasks.boosting,
    "timeseries": tasks.timeseries,
    "unet": tasks.unet,
}
SIZES = SIZE_NAMES


def _task_names(task_names):
    """``task_names`` as a list (None or empty: every task); ValueError naming unknown ones."""
    task_names = list(TASKS) if not task_names else list(task_names)
    unknown = [name for name in task_names if name not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {unknown}; choose from {list(TASKS)}.")
    return task_names


def run_compare(task_names=None, size=DEFAULT_COMMAND_SIZE, backends=None, verbose=True, out_dir=None):
    """Run the comparisons and return one :class:`TaskResult` per task.

    Parameters
    ----------
    task_names : list of str, default=None
        Tasks to run (see ``TASKS``); None runs all.
    size : {"tiny", "small", "medium", "large"}, default="small"
        Problem size; "small" runs everything in a few minutes on 2 cores.
    backends : list of str, default=None
        Our backends to run; None runs every installed one.
    verbose : bool, default=True
        Show a progress bar.
    out_dir : str or Path, default=None
        Where tasks write their figures (forecast plot, segmentation); None: no figures.
    """
    from tqdm.auto import tqdm

    from ..kernels import available_backends

    task_names = _task_names(task_names)
    check_size(size)
    installed = available_backends()
    backends = installed if not backends else list(backends)
    missing = [b for b in backends if b not in installed]
    if missing:
        raise ValueError(f"backend(s) {missing} are not installed here; installed: {installed} "
                         "(see `fastscratch info`).")

    results = []
    with tqdm(total=len(task_names) * (len(backends) + 1), desc="compare", disable=not verbose,
              unit="run") as bar:
        for name in task_names:
            bar.set_postfix_str(name)
            results.append(TASKS[name](size, backends, lambda: bar.update(1), out_dir=out_dir))
    return results


def run_sweeps(task_names=None, size=DEFAULT_COMMAND_SIZE, backend="auto", repeats=None, verbose=True):
    """Run the speed sweeps of the tasks; return ``{family: [SweepRow, ...]}``.

    Parameters
    ----------
    task_names : list of str, default=None
        Tasks whose sweeps run (see ``TASKS``; "naive_bayes" and "timeseries"
        have two families each); None runs all.
    size : {"tiny", "small", "medium", "large"}, default="small"
        Size of the sweep grids.
    backend : {"auto", "numpy", "numba", "cython"}, default="auto"
        Our backend; "auto" is what a user gets.
    repeats : int, default=None
        Timed runs per contender and point after one untimed run; None: 1 at
        "tiny", 3 otherwise.
    verbose : bool, default=True
        Show a progress bar.
    """
    from tqdm.auto import tqdm

    from . import sweeps

    task_names = _task_names(task_names)
    check_size(size)
    repeats = (1 if size == "tiny" else 3) if repeats is None else repeats
    families = [family for name in task_names for family in sweeps.TASK_FAMILIES[name]]
    total = sum(len(sweeps.sweep_points(family, size)) for family in families)
    results = {}
    with tqdm(total=total, desc="sweep", disable=not verbose, unit="point") as bar:
        for family in families:
            bar.set_postfix_str(family)
            results[family] = sweeps.run_sweep(family, size, backend=backend, repeats=repeats,
                                               progress=lambda: bar.update(1))
    return results


def write_sweep_report(sweep_results, out_dir, size):
    """Write ``sweep.md`` (a table per family) and one ratio plot per family into ``out_dir``."""
    from . import sweeps

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# fastscratch compare --sweep", "", f"Size: `{size}`. Each point varies one axis of the base "
             "point; times are medians after one untimed run; 'ours / reference' below 1 is faster.", ""]
    for family, rows in sweep_results.items():
        lines += sweeps.sweep_table_lines(family, rows)
        plot = sweeps.plot_sweep(family, rows, out_dir / f"sweep_{family}.png")
        lines += ["", f"![sweep {family}]({plot.name})", ""]
    report = out_dir / "sweep.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def write_report(results, out_dir, size):
    """Write ``report.md`` (every table) and the PNG plots into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# fastscratch compare", "", f"Size: `{size}`. Times are medians; the first run "
             "(compilation, caches) is reported apart as 'compile'. 'vs reference' is our time "
             "over the reference library's (below 1 is faster).", ""]
    for result in results:
        lines += table_lines(result)
        plot = speedup_plot(result, out_dir / f"speedup_{result.task}.png")
        if plot is not None:
            lines += ["", f"![speed-up]({Path(plot).name})"]
        for figure in result.figures:
            lines += ["", f"![{result.task}]({Path(figure).name})"]
        lines.append("")
    report = out_dir / "report.md"
    report.write_text("\n".join(lines) + "\n")
    return report


def add_arguments(parser):
    parser.add_argument("tasks", nargs="*", metavar="TASK", help=f"tasks to run: {', '.join(TASKS)} (default: all)")
    parser.add_argument("--size", choices=SIZES, default=DEFAULT_COMMAND_SIZE,
                        help="problem size (default: small, a few minutes on 2 cores)")
    parser.add_argument("--backend", action="append", dest="backends", choices=("numpy", "numba", "cython"),
                        help="our backend(s) to run (repeatable; default: every installed one)")
    parser.add_argument("--out", metavar="DIR", help="write report.md and PNG plots into DIR")
    parser.add_argument("--sweep", action="store_true",
                        help="vary the sizes each task's cost depends on, one axis at a time, and report the "
                             "ratio to the reference at every point (with --out: a plot per axis)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args):
    os.environ.setdefault("MPLBACKEND", "Agg")
    for name in args.tasks:
        if name not in TASKS:
            raise SystemExit(f"fastscratch compare: unknown task {name!r}; choose from {', '.join(TASKS)}.")
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    if args.sweep:
        return _run_sweep_command(args)
    results = run_compare(args.tasks, size=args.size, backends=args.backends, verbose=not args.quiet,
                          out_dir=args.out)
    for result in results:
        print("\n".join(table_lines(result)))
        print()
    if args.out:
        report = write_report(results, args.out, args.size)
        print(f"report written to {report}")
    return 0


def _run_sweep_command(args):
    from .sweeps import sweep_table_lines

    backends = args.backends or ["auto"]
    if len(backends) > 1:
        raise SystemExit("fastscratch compare --sweep: give at most one --backend (default: auto).")
    sweep_results = run_sweeps(args.tasks, size=args.size, backend=backends[0], verbose=not args.quiet)
    for family, rows in sweep_results.items():
        print("\n".join(sweep_table_lines(family, rows)))
        print()
    if args.out:
        report = write_sweep_report(sweep_results, args.out, args.size)
        print(f"sweep report written to {report}")
    return 0
