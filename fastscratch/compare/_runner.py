"""Timing, result rows and report writing for ``fastscratch compare``."""

import statistics
import time
from dataclasses import dataclass, field


@dataclass
class Row:
    """One implementation of one task: ours on one backend, or the reference library."""

    name: str
    time_s: float
    compile_s: float = 0.0
    quality: float = float("nan")
    max_diff: float = float("nan")
    agree: object = None  # True/False, or None for the reference itself
    ratio: float = float("nan")  # time_s / reference time_s


@dataclass
class TaskResult:
    """Everything ``fastscratch compare`` prints and writes for one task."""

    task: str
    title: str
    quality_name: str
    diff_name: str
    reference: str
    rows: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    figures: list = field(default_factory=list)

    def finish(self):
        """Fill in the speed ratios against the reference row."""
        reference = next((row for row in self.rows if row.name == self.reference), None)
        for row in self.rows:
            if reference is not None and reference.time_s > 0:
                row.ratio = row.time_s / reference.time_s
        return self


def time_call(function, repeats):
    """Run ``function`` ``1 + repeats`` times.

    Returns
    -------
    result : object
        What the last call returned.
    median_s : float
        Median time of the ``repeats`` calls after the first.
    compile_s : float
        How much longer the first call took than the median: Numba's
        compilation (or cache loading) and other one-off costs, reported apart.
    """
    start = time.perf_counter()
    result = function()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - start)
    median = statistics.median(times) if times else first
    return result, median, max(0.0, first - median)


def _fmt(value, digits=4):
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if value == 0:
            return "0"
        if abs(value) >= 1e4 or abs(value) < 1e-3:
            return f"{value:.2e}"
        return f"{value:.{digits}g}"
    return str(value)


def table_lines(result):
    """The task's table as Markdown lines (also readable in a terminal)."""
    header = ["implementation", "time (s)", "compile (s)", "vs reference",
              result.quality_name, result.diff_name, "agree"]
    lines = [f"### {result.title}", "",
             "| " + " | ".join(header) + " |",
             "|" + "|".join(["---"] * len(header)) + "|"]
    for row in result.rows:
        ratio = f"{row.ratio:.2f}x" if row.ratio == row.ratio else "-"
        cells = [row.name, _fmt(row.time_s), _fmt(row.compile_s), ratio, _fmt(row.quality),
                 _fmt(row.max_diff), _fmt(row.agree)]
        lines.append("| " + " | ".join(cells) + " |")
    for note in result.notes:
        lines.append(f"\n{note}")
    return lines


def speedup_plot(result, path):
    """Bar chart of reference time / our time per implementation (higher is faster)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in result.rows if row.ratio == row.ratio and row.name != result.reference]
    if not rows:
        return None
    figure, axis = plt.subplots(figsize=(6, 0.5 + 0.45 * len(rows)))
    speedups = [1.0 / row.ratio for row in rows]
    axis.barh([row.name for row in rows], speedups, color=["tab:green" if s >= 1 else "tab:red" for s in speedups])
    axis.axvline(1.0, color="black", linewidth=1)
    axis.set_xlabel(f"speed-up over {result.reference} (x)")
    axis.set_title(result.title, fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
