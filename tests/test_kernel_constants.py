"""The constants a Numba kernel and its Cython twin share are defined once
(kernels/_constants.py): the Numba module reads them, the Cython module includes
the .pxi that setup.py generates from them, and neither defines its own copy.
The one-thread thresholds are read at run time by both modules (THRESHOLDS)."""

import importlib
import re
from pathlib import Path

import pytest

from fastscratch.kernels import _constants
from fastscratch.kernels._constants import FAMILIES, THRESHOLDS, pxi_text

KERNEL_DIR = Path(_constants.__file__).parent


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_shared_constants_defined_once(family):
    numba_module = importlib.import_module(f"fastscratch.kernels.{family}_numba")
    for name, value in FAMILIES[family].items():
        assert getattr(numba_module, name) == value, (family, name)
    source = (KERNEL_DIR / f"{family}_cython.pyx").read_text()
    assert f'include "_constants_{family}.pxi"' in source
    for name in FAMILIES[family]:
        assert not re.search(rf"^DEF {name}\b", source, re.M), f"{family}_cython redefines {name}"
    generated = KERNEL_DIR / f"_constants_{family}.pxi"
    if generated.exists():  # written by the build; a stale one means the build is out of date
        assert generated.read_text() == pxi_text(family)


def test_pxi_text():
    assert pxi_text("sparse_distances").splitlines()[1:] == [
        "DEF QUERY_BLOCK = 16", "DEF SQEUCLIDEAN = 0", "DEF MANHATTAN = 1", "DEF COSINE = 2"]


@pytest.mark.parametrize("family", sorted(THRESHOLDS))
def test_shared_thresholds_defined_once(family):
    for backend in ("numba", "cython"):
        path = KERNEL_DIR / (f"{family}_{backend}.py" if backend == "numba"
                             else f"{family}_cython.pyx")
        source = path.read_text()
        for name in THRESHOLDS[family]:
            assert re.search(rf'^{name} = THRESHOLDS\["{family}"\]\["{name}"\]', source, re.M), \
                f"{path.name} does not read {name} from kernels/_constants.py"
            assert not re.search(rf"^(DEF )?{name} = [0-9(]", source, re.M), \
                f"{path.name} defines its own {name}"
        try:
            module = importlib.import_module(f"fastscratch.kernels.{family}_{backend}")
        except ImportError:  # the Cython kernels are not built
            continue
        for name, value in THRESHOLDS[family].items():
            assert getattr(module, name) == value, (family, backend, name)
