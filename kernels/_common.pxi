# Shared Cython helpers, pulled into each kernel module with `include "_common.pxi"`
# (a .pyx in kernels/ cannot cimport another one by relative name).

cimport cython
from cython cimport floating
from libc.stdlib cimport malloc, free
from libc.math cimport INFINITY

ctypedef Py_ssize_t intp_t


cdef inline void heap_push(floating* heap_values, intp_t* heap_indices, intp_t size,
                           floating value, intp_t index) noexcept nogil:
    """Push (value, index) into a full max-heap of ``size`` if it beats the root.

    Ordered by value then index, so among equal values the larger index is
    evicted first: ties go to the smaller index.
    """
    cdef intp_t position = 0, left, right, child
    if value > heap_values[0] or (value == heap_values[0] and index >= heap_indices[0]):
        return
    while True:
        left = 2 * position + 1
        right = left + 1
        if left >= size:
            break
        child = left
        if right < size and (heap_values[right] > heap_values[left] or (
                heap_values[right] == heap_values[left] and heap_indices[right] > heap_indices[left])):
            child = right
        if heap_values[child] > value or (heap_values[child] == value and heap_indices[child] > index):
            heap_values[position] = heap_values[child]
            heap_indices[position] = heap_indices[child]
            position = child
        else:
            break
    heap_values[position] = value
    heap_indices[position] = index


cdef inline bint pair_less(double value_a, intp_t index_a, double value_b, intp_t index_b) noexcept nogil:
    return value_a < value_b or (value_a == value_b and index_a < index_b)


cdef inline void sort_pairs(double* values, intp_t* indices, intp_t size) noexcept nogil:
    """Sort (value, index) pairs ascending by value then index (heapsort, in place)."""
    cdef intp_t start, end, root, child
    cdef double tmp_value
    cdef intp_t tmp_index
    if size < 2:
        return
    # Build a max-heap.
    start = (size - 2) // 2
    while start >= 0:
        root = start
        while 2 * root + 1 < size:
            child = 2 * root + 1
            if child + 1 < size and pair_less(values[child], indices[child], values[child + 1], indices[child + 1]):
                child += 1
            if pair_less(values[root], indices[root], values[child], indices[child]):
                values[root], values[child] = values[child], values[root]
                indices[root], indices[child] = indices[child], indices[root]
                root = child
            else:
                break
        start -= 1
    # Pop the maximum to the end, one at a time.
    end = size - 1
    while end > 0:
        values[0], values[end] = values[end], values[0]
        indices[0], indices[end] = indices[end], indices[0]
        root = 0
        while 2 * root + 1 < end:
            child = 2 * root + 1
            if child + 1 < end and pair_less(values[child], indices[child], values[child + 1], indices[child + 1]):
                child += 1
            if pair_less(values[root], indices[root], values[child], indices[child]):
                values[root], values[child] = values[child], values[root]
                indices[root], indices[child] = indices[child], indices[root]
                root = child
            else:
                break
        end -= 1
