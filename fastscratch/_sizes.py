"""One size vocabulary for benchmarks, ``fastscratch compare`` and ``fastscratch profile``.

Every place that takes a problem size (``pytest --bench-size``, ``fastscratch
compare --size``, ``fastscratch profile --size``) accepts these names and
means the same by them:

- ``tiny``: seconds; the CI smoke run, so nothing can rot;
- ``small``: about a minute for a whole command on two cores; the default of
  ``fastscratch compare`` and ``fastscratch profile``;
- ``medium``: the sizes the issues name where they fit in a few minutes; the
  default of the benchmark suite;
- ``large``: the largest sizes the issues name (minutes each).
"""

SIZE_NAMES = ("tiny", "small", "medium", "large")
"""Problem sizes, smallest first."""

DEFAULT_BENCH_SIZE = "medium"
"""Size of ``pytest --benchmark-only`` when ``--bench-size`` is not given."""

DEFAULT_COMMAND_SIZE = "small"
"""Size of ``fastscratch compare`` and ``fastscratch profile`` when ``--size`` is not given."""


def check_size(size):
    """Return ``size`` if it is a known size name, else raise a ValueError that lists them."""
    if size not in SIZE_NAMES:
        raise ValueError(f"size={size!r} is not one of {SIZE_NAMES}.")
    return size


def sized(table, size):
    """The entry of ``table`` for ``size``.

    A table keyed by size names may leave sizes out; a missing size gets the
    entry of the nearest smaller size that the table has (so a table with
    "tiny", "medium" and "large" runs "small" at its tiny entry).
    """
    check_size(size)
    for name in reversed(SIZE_NAMES[: SIZE_NAMES.index(size) + 1]):
        if name in table:
            return table[name]
    raise KeyError(f"the table has no entry for size {size!r} or any smaller size: {sorted(table)}.")
