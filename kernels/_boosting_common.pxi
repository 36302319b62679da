# Helpers shared by the gradient-boosting Cython kernels (histogram, splitting,
# partition, tree_predict), pulled in with `include "_boosting_common.pxi"`.

from libc.stdint cimport uint8_t

# Fixed block of rows of the partition kernel (the same blocks as the Numba
# kernel; they never depend on the number of threads).
DEF PARTITION_BLOCK = 16384
