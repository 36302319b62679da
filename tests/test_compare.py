"""fastscratch compare and fastscratch profile, at tiny sizes."""

import numpy as np
import pytest

from fastscratch.cli import main
from fastscratch.compare import TASKS, run_compare
from fastscratch.kernels import available_backends, kernel_names
from fastscratch.profile import capture_call, profile_kernel


@pytest.mark.parametrize("task", [task for task in TASKS if task != "unet"])
def test_compare_task_agrees_with_reference(task):
    (result,) = run_compare([task], size="tiny", verbose=False)
    assert result.rows[0].name == result.reference and result.rows[0].ratio == 1.0
    ours = result.rows[1:]
    assert [row.name for row in ours] == [f"fastscratch[{b}]" for b in available_backends()]
    for row in ours:
        assert row.agree is True, (row.name, row.max_diff)
        assert row.time_s > 0 and row.ratio > 0
        assert np.isfinite(row.quality)


def test_compare_unet_step_equals_bare_torch(tmp_path):
    pytest.importorskip("torch")
    (result,) = run_compare(["unet"], size="tiny", verbose=False, out_dir=tmp_path)
    bare, ours = result.rows
    assert bare.name == "bare torch step" and ours.name == "fastscratch Trainer step"
    assert ours.agree is True and ours.max_diff <= 1e-5
    assert 0 <= ours.quality <= 1  # validation Dice
    assert (tmp_path / "segmentation_unet.png").stat().st_size > 1000


def test_compare_cli_writes_report(tmp_path, capsys):
    assert main(["compare", "naive_bayes", "--size", "tiny", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "| fastscratch[numpy] |" in out and "| scikit-learn |" in out
    report = (tmp_path / "report.md").read_text()
    assert "Gaussian naive Bayes" in report
    plot = tmp_path / "speedup_naive_bayes.png"
    assert plot.stat().st_size > 1000


def test_compare_rejects_unknown_names():
    with pytest.raises(ValueError, match="unknown task"):
        run_compare(["svm"], size="tiny", verbose=False)
    with pytest.raises(ValueError, match="size="):
        run_compare(["knn"], size="huge", verbose=False)


@pytest.mark.parametrize("kernel", kernel_names())
def test_every_kernel_is_captured_by_its_workload(kernel):
    args = capture_call(kernel, size="tiny")
    assert any(isinstance(a, np.ndarray) for a in args)


def test_profile_reports_every_backend():
    text = profile_kernel("sqeuclidean_topk", size="tiny", repeats=1, memory=False, line_level=True)
    for backend in available_backends():
        assert f"\n{backend} " in text
    assert "cProfile" in text and "line by line" in text


def test_profile_list(capsys):
    assert main(["profile", "--list"]) == 0
    assert "sqeuclidean_topk" in capsys.readouterr().out


# ---------------------------------------------------------------- sweeps
def test_sweep_points_vary_one_axis_at_a_time():
    from fastscratch.compare.sweeps import FAMILIES, sweep_points

    for family in FAMILIES:
        for size in ("tiny", "small", "medium", "large"):
            points = sweep_points(family, size)
            base = points[0].as_dict()
            assert points[0].id == "base"
            assert len({point.id for point in points}) == len(points)
            for point in points[1:]:
                changed = [name for name, value in point.as_dict().items() if value != base[name]]
                assert changed == [point.axis]


def test_sweep_size_names_and_unknown_family():
    from fastscratch._sizes import sized
    from fastscratch.compare.sweeps import sweep_points

    assert sized({"tiny": 1, "medium": 2}, "small") == 1
    assert sized({"tiny": 1, "medium": 2}, "large") == 2
    with pytest.raises(ValueError, match="size="):
        sweep_points("kmeans", "huge")
    with pytest.raises(ValueError, match="unknown sweep family"):
        sweep_points("svm", "tiny")


def test_run_sweep_times_both_and_checks_answers(tmp_path):
    from fastscratch.compare.sweeps import plot_sweep, ratio_range, run_sweep, sweep_table_lines

    rows = run_sweep("kmeans", "tiny", repeats=1)
    assert [row.point.id for row in rows][:3] == ["base", "n=1000", "n=4000"]
    for row in rows:
        assert row.ours_s > 0 and row.reference_s > 0
        assert row.agree is True  # same labels as scikit-learn at every point
    worst, best = ratio_range(rows)
    assert worst >= best > 0
    text = "\n".join(sweep_table_lines("kmeans", rows))
    assert "| d=2 |" in text and "worst" in text
    plot = plot_sweep("kmeans", rows, tmp_path / "sweep_kmeans.png")
    assert plot.stat().st_size > 1000


def test_kmeans_sweep_settles_before_each_contender(monkeypatch):
    """Both k-means contenders get the same idle time before their calls at a point, none between them."""
    import dataclasses
    import threading

    from fastscratch.compare import sweeps

    events, real_sleep = [], sweeps.time.sleep

    def sleep(seconds):  # recorded in this thread only (other threads still sleep)
        if threading.current_thread() is threading.main_thread():
            events.append(seconds)
        else:
            real_sleep(seconds)

    monkeypatch.setattr(sweeps.time, "sleep", sleep)
    monkeypatch.setattr(sweeps, "point_call",
                        lambda point, contender, backend="auto": lambda: events.append(contender))
    monkeypatch.setitem(sweeps.FAMILIES, "kmeans", dataclasses.replace(sweeps.FAMILIES["kmeans"], agree=None))
    rows = sweeps.run_sweep("kmeans", "tiny", repeats=2)
    settle = sweeps.KMEANS_SETTLE_S
    assert settle > 0
    assert events == [settle, "reference", "reference", "reference",
                      settle, "fastscratch", "fastscratch", "fastscratch"] * len(rows)
    events.clear()
    monkeypatch.setitem(sweeps.FAMILIES, "knn", dataclasses.replace(sweeps.FAMILIES["knn"], agree=None))
    sweeps.run_sweep("knn", "tiny", repeats=1)
    assert events and all(isinstance(event, str) for event in events)  # other families: no settle


def test_compare_cli_sweep_writes_report(tmp_path, capsys):
    assert main(["compare", "naive_bayes", "--sweep", "--size", "tiny", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "sweep gaussian_nb" in out and "sweep multinomial_nb" in out
    report = (tmp_path / "sweep.md").read_text()
    assert "sweep_gaussian_nb.png" in report and "sweep_multinomial_nb.png" in report
    assert (tmp_path / "sweep_multinomial_nb.png").stat().st_size > 1000
