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
