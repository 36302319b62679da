"""The fastscratch command."""

import subprocess
import sys

from fastscratch.cli import main


def test_info_lists_backends(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("fastscratch ")
    for backend in ("numpy", "numba", "cython"):
        assert f"  {backend}" in out
    assert "sqeuclidean_topk" in out
    assert "torch" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 1
    assert "info" in capsys.readouterr().out


def test_python_dash_m():
    out = subprocess.run([sys.executable, "-m", "fastscratch", "info"], capture_output=True,
                         text=True, check=True)
    assert "kernel backends:" in out.stdout
