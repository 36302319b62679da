"""Build script: the one place that lists the Cython extensions.

Every ``kernels/<loop>_cython.pyx`` becomes the extension
``fastscratch.kernels.<loop>_cython``, compiled with ``-O3``, OpenMP and no
floating-point contraction.
If Cython or a C compiler is missing, the package still installs (the NumPy
and Numba backends work) and the build says which extensions were skipped.
"""

import glob
import os
import runpy
import sys

from setuptools import find_packages, setup
from setuptools.command.build_ext import build_ext

KERNEL_DIR = "kernels"


def cython_extensions():
    """One Extension per kernels/*_cython.pyx, or [] if Cython is missing."""
    pyx_files = sorted(glob.glob(os.path.join(KERNEL_DIR, "*_cython.pyx")))
    # Developers may rebuild one family alone: FASTSCRATCH_BUILD_ONLY=distances,knn
    only = os.environ.get("FASTSCRATCH_BUILD_ONLY")
    if only:
        wanted = {f"{name.strip()}_cython.pyx" for name in only.split(",")}
        pyx_files = [path for path in pyx_files if os.path.basename(path) in wanted]
    try:
        import numpy
        from Cython.Build import cythonize
    except ImportError as exc:
        print(f"fastscratch: Cython kernels not built ({exc}); the NumPy and "
              "Numba backends remain available.", file=sys.stderr)
        return []
    from setuptools import Extension

    # Constants shared with the Numba twins, defined once in kernels/_constants.py.
    runpy.run_path(os.path.join(KERNEL_DIR, "_constants.py"))["write_pxi_files"](KERNEL_DIR)
    extensions = []
    for path in pyx_files:
        module = os.path.splitext(os.path.basename(path))[0]
        extensions.append(Extension(
            f"fastscratch.kernels.{module}",
            [path],
            include_dirs=[numpy.get_include(), KERNEL_DIR],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_9_API_VERSION")],
            # No contraction of a * b + c into one FMA, whatever CFLAGS say: several kernels
            # promise the bits of NumPy's or another library's separate multiply and add.
            extra_compile_args=["-O3", "-fopenmp", "-ffp-contract=off"],
            extra_link_args=["-fopenmp"],
        ))
    return cythonize(
        extensions,
        compiler_directives={
            "language_level": "3",
            "boundscheck": False,
            "wraparound": False,
            "cdivision": True,
            "initializedcheck": False,
        },
        include_path=[KERNEL_DIR],
    )


class OptionalBuildExt(build_ext):
    """Build each extension if possible; report and skip the ones that fail."""

    def run(self):
        try:
            super().run()
        except Exception as exc:  # no compiler at all
            print(f"fastscratch: Cython kernels not built ({exc}); "
                  "reinstall with a C compiler to get them.", file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as exc:
            print(f"fastscratch: skipped {ext.name} ({exc}); "
                  "reinstall with a C compiler and OpenMP to get it.", file=sys.stderr)


setup(
    packages=find_packages(include=["fastscratch", "fastscratch.*"]) + ["fastscratch.kernels"],
    package_dir={"fastscratch": "fastscratch", "fastscratch.kernels": KERNEL_DIR},
    package_data={
        "fastscratch.kernels": ["*.pyx", "*.pxi"],
        "fastscratch": ["datasets/data/*", "datasets/data/**/*", "segmentation/weights/*.pt"],
    },
    ext_modules=cython_extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
