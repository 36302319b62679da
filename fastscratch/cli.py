"""The ``fastscratch`` command (also ``python -m fastscratch``).

Subcommands:

- ``fastscratch info``: version, kernel backends (and why a missing one is
  missing), thread pools, PyTorch and CUDA.

Later subcommands register themselves in :data:`SUBCOMMANDS`: a name mapped to
``(module, help)``, where the module defines ``add_arguments(parser)`` and
``run(args)``; modules are imported only when their command runs or its help
is shown.
"""

import argparse
import importlib
import sys

SUBCOMMANDS = {
    "info": ("fastscratch.cli", "show the version, kernel backends, threads, PyTorch and CUDA"),
    "train": ("fastscratch.segmentation.cli", "train a model on shipped data (unet: U-Net on ISBI 2012)"),
    "compare": ("fastscratch.compare", "run ours (every backend) and the reference libraries, print tables"),
    "profile": ("fastscratch.profile", "time, memory and line profile of one kernel, readable vs optimised"),
}


def add_arguments(parser):
    """Arguments of ``fastscratch info`` (none)."""


def info_lines():
    """The lines that ``fastscratch info`` prints."""
    import platform

    import numpy

    from . import __version__
    from .kernels import backend_status, kernel_names

    lines = [
        f"fastscratch {__version__}",
        f"python {platform.python_version()} ({platform.machine()}), numpy {numpy.__version__}",
        "kernel backends:",
    ]
    for backend in ("numpy", "numba", "cython"):
        available, reason = backend_status(backend)
        state = "found" if available else "missing"
        lines.append(f"  {backend:<7} {state}: {reason}")
    lines.append(f"kernels: {', '.join(kernel_names())}")

    from threadpoolctl import threadpool_info

    from ._backend import available_cpu_count

    lines.append(f"threads: {available_cpu_count()} CPUs available")
    for pool in threadpool_info():
        lines.append(
            f"  {pool['user_api']:<7} {pool['internal_api']:<9} {pool['num_threads']} threads "
            f"({pool.get('version') or 'unknown version'}, {pool['filepath']})"
        )
    try:
        import numba

        lines.append(f"  numba   {numba.config.THREADING_LAYER:<9} {numba.config.NUMBA_NUM_THREADS} threads")
    except ImportError:
        pass
    try:
        import torch
    except ImportError:
        lines.append('torch: not installed (pip install "fastscratch[deep]")')
    else:
        if torch.cuda.is_available():
            cuda = f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} device(s): " + ", ".join(
                torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        else:
            cuda = "CUDA not available"
        lines.append(f"torch {torch.__version__}: {cuda}")
    return lines


def run(args):
    """Print :func:`info_lines`."""
    print("\n".join(info_lines()))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastscratch",
        description="Classic machine-learning models from scratch, compared with the libraries they imitate.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        subparser = subparsers.add_parser(name, help=help_text, description=help_text)
        subparser.set_defaults(_module=module_name)
        importlib.import_module(module_name).add_arguments(subparser)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 1
    return importlib.import_module(args._module).run(args) or 0


if __name__ == "__main__":
    sys.exit(main())
