"""The constants a Numba kernel and its Cython twin share are defined once
(kernels/_constants.py): the Numba module reads them, the Cython module includes
the .pxi that setup.py generates from them, and neither defines its own copy."""

import importlib
import re
from pathlib import Path

import pytest

from fastscratch.kernels import _constants
from fastscratch.kernels._constants import FAMILIES, pxi_text

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
