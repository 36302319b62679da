# cython: language_level=3
r"""KD-tree and ball tree: the Cython kernels.

Same trees, loops and answers as :mod:`spatial_tree_numba` (read
:mod:`spatial_tree_numpy` for the math): a build that shares out whole
subtrees among OpenMP threads once a level has enough nodes, a quickselect on
(coordinate, row index) for the median split, and depth-first queries with an explicit stack and a
per-query max-heap of k (reduced distance, index) pairs, in blocks of
``QUERY_BLOCK`` queries shared out among the threads. Every reduced distance
is a float64 sum over the features in order, read from float32 or float64
rows.
"""

include "_common.pxi"
include "_constants_spatial_tree.pxi"  # shared with spatial_tree_numba (kernels/_constants.py)

import numpy as np
from cython.parallel cimport parallel, prange
from libc.math cimport fabs, pow, sqrt

from .spatial_tree_numpy import BALL_SLACK as _BALL_SLACK

DEF MAX_DEPTH = 64  # levels of a tree over at most 2**63 rows

cdef double BALL_SLACK = _BALL_SLACK


# ------------------------------------------------------------------ helpers
cdef inline double accumulate(double total, double diff, double p) noexcept nogil:
    """Add one feature's |difference| to a reduced distance (max for p = inf)."""
    if p == 2.0:
        return total + diff * diff
    if p == 1.0:
        return total + diff
    if p == INFINITY:
        return total if total >= diff else diff
    return total + pow(diff, p)


cdef inline double reduced_row(const double* query, const floating* row, intp_t n_features,
                               double p, double limit) noexcept nogil:
    """Reduced float64 distance from ``query`` to ``row``; stops early once above ``limit``."""
    cdef double total = 0.0, diff
    cdef intp_t l
    if p == 2.0:  # the common case, without the per-feature branch on p
        for l in range(n_features):
            diff = <double> row[l] - query[l]
            total = total + diff * diff
            if total > limit:
                return total
        return total
    for l in range(n_features):
        total = accumulate(total, fabs(<double> row[l] - query[l]), p)
        if total > limit:
            return total
    return total


cdef inline double reduced_to_distance(double reduced, double p) noexcept nogil:
    if p == 2.0:
        return sqrt(reduced)
    if p == 1.0 or p == INFINITY:
        return reduced
    return pow(reduced, 1.0 / p)


cdef inline double distance_to_reduced(double distance, double p) noexcept nogil:
    if p == 2.0:
        return distance * distance
    if p == 1.0 or p == INFINITY:
        return distance
    return pow(distance, p)


# -------------------------------------------------------------------- build
cdef inline bint key_less(const floating* data, intp_t n_features, intp_t dim, intp_t a,
                          intp_t b) noexcept nogil:
    """Row a before row b in the order (coordinate ``dim``, row index)."""
    cdef floating value_a = data[a * n_features + dim], value_b = data[b * n_features + dim]
    return value_a < value_b or (value_a == value_b and a < b)


cdef void select(const floating* data, intp_t n_features, intp_t dim, intp_t* idx, intp_t low, intp_t high,
                 intp_t nth) noexcept nogil:
    """Reorder ``idx[low:high + 1]`` so that ``idx[nth]`` is in its sorted place (quickselect)."""
    cdef intp_t middle, pivot, store, i
    while low < high:
        middle = (low + high) // 2
        if key_less(data, n_features, dim, idx[middle], idx[low]):
            idx[low], idx[middle] = idx[middle], idx[low]
        if key_less(data, n_features, dim, idx[high], idx[low]):
            idx[low], idx[high] = idx[high], idx[low]
        if key_less(data, n_features, dim, idx[middle], idx[high]):
            idx[middle], idx[high] = idx[high], idx[middle]
        pivot = idx[high]  # the median of the three
        store = low
        for i in range(low, high):
            if key_less(data, n_features, dim, idx[i], pivot):
                idx[i], idx[store] = idx[store], idx[i]
                store += 1
        idx[store], idx[high] = idx[high], idx[store]
        if store == nth:
            return
        if store < nth:
            low = store + 1
        else:
            high = store - 1


cdef void box(const floating* data, intp_t n_features, const intp_t* idx, intp_t start,
              intp_t end, double* lower, double* upper) noexcept nogil:
    """Bounding box of the rows ``idx[start:end]`` (float64)."""
    cdef intp_t i, l
    cdef double value
    for l in range(n_features):
        lower[l] = INFINITY
        upper[l] = -INFINITY
    for i in range(start, end):
        for l in range(n_features):
            value = data[idx[i] * n_features + l]
            if value < lower[l]:
                lower[l] = value
            if value > upper[l]:
                upper[l] = value


cdef void split(const floating* data, intp_t n_features, intp_t* idx, intp_t node, intp_t n_nodes,
                const double* lower, const double* upper, intp_t* node_start,
                intp_t* node_end) noexcept nogil:
    """Split a node at the median of its widest dimension and set its children's ranges."""
    cdef intp_t start = node_start[node], end = node_end[node], left = 2 * node + 1
    cdef intp_t dim = 0, l, middle
    cdef double widest
    if left >= n_nodes:
        return
    widest = upper[0] - lower[0]
    for l in range(1, n_features):
        if upper[l] - lower[l] > widest:  # strict: ties to the smaller dimension
            widest = upper[l] - lower[l]
            dim = l
    middle = start + (end - start) // 2
    select(data, n_features, dim, idx, start, end - 1, middle)
    node_start[left] = start
    node_end[left] = middle
    node_start[left + 1] = middle
    node_end[left + 1] = end


cdef void kd_node(const floating* data, intp_t n_features, intp_t* idx, intp_t node,
                  intp_t n_nodes, intp_t* node_start, intp_t* node_end, double* node_lower,
                  double* node_upper) noexcept nogil:
    """Bounding box of a node, then its split."""
    cdef double* lower = node_lower + node * n_features
    cdef double* upper = node_upper + node * n_features
    box(data, n_features, idx, node_start[node], node_end[node], lower, upper)
    split(data, n_features, idx, node, n_nodes, lower, upper, node_start, node_end)


cdef intp_t top_levels_end(intp_t n_nodes, int n_threads) noexcept nogil:
    """First node of the level from which subtrees are shared out (see the Numba kernels)."""
    cdef intp_t first = 0
    while first < n_nodes and first + 1 < SUBTREES_PER_THREAD * n_threads:
        first = 2 * first + 1
    return first


def _kd_tree_build(const floating[:, ::1] data,                                        # IN
                   intp_t[::1] idx_array, intp_t[::1] node_start, intp_t[::1] node_end,  # OUT
                   double[:, ::1] node_lower, double[:, ::1] node_upper,                 # OUT
                   int n_threads):
    cdef intp_t n_nodes = node_start.shape[0], n_features = data.shape[1]
    cdef intp_t i, node, root, level_first, width
    cdef intp_t first = top_levels_end(n_nodes, n_threads)
    cdef intp_t last = min(2 * first + 1, n_nodes)
    for i in range(data.shape[0]):
        idx_array[i] = i
    node_start[0] = 0
    node_end[0] = data.shape[0]
    with nogil:
        # The top levels, node by node, until a level has enough nodes to share out.
        for node in range(min(first, n_nodes)):
            kd_node(&data[0, 0], n_features, &idx_array[0], node, n_nodes, &node_start[0],
                    &node_end[0], &node_lower[0, 0], &node_upper[0, 0])
        # Then each node of that level and all its descendants on one thread.
        for root in prange(first, last, num_threads=n_threads, schedule="dynamic"):
            level_first = root
            width = 1
            while level_first < n_nodes:
                for node in range(level_first, level_first + width):
                    kd_node(&data[0, 0], n_features, &idx_array[0], node, n_nodes, &node_start[0],
                            &node_end[0], &node_lower[0, 0], &node_upper[0, 0])
                level_first = 2 * level_first + 1
                width = 2 * width


cdef void ball(const floating* data, intp_t n_features, const intp_t* idx, intp_t start,
               intp_t end, double p, double* centroid, double* radius) noexcept nogil:
    """Centroid (mean, summed in row order) and radius of the rows ``idx[start:end]``."""
    cdef intp_t i, l
    cdef double largest = 0.0, reduced
    for l in range(n_features):
        centroid[l] = 0.0
    for i in range(start, end):
        for l in range(n_features):
            centroid[l] += data[idx[i] * n_features + l]
    for l in range(n_features):
        centroid[l] /= end - start
    for i in range(start, end):
        reduced = reduced_row(centroid, data + idx[i] * n_features, n_features, p, INFINITY)
        if reduced > largest:
            largest = reduced
    radius[0] = reduced_to_distance(largest, p)


cdef void ball_node(const floating* data, intp_t n_features, intp_t* idx, double p, intp_t node,
                    intp_t n_nodes, intp_t* node_start, intp_t* node_end, double* centroids,
                    double* radii, double* lower, double* upper) noexcept nogil:
    """Centroid and radius of a node, then its split (``lower``/``upper``: scratch space)."""
    ball(data, n_features, idx, node_start[node], node_end[node], p, centroids + node * n_features,
         radii + node)
    box(data, n_features, idx, node_start[node], node_end[node], lower, upper)
    split(data, n_features, idx, node, n_nodes, lower, upper, node_start, node_end)


def _ball_tree_build(const floating[:, ::1] data, double p,                              # IN
                     intp_t[::1] idx_array, intp_t[::1] node_start, intp_t[::1] node_end,  # OUT
                     double[:, ::1] centroids, double[::1] radii,                          # OUT
                     int n_threads):
    cdef intp_t n_nodes = node_start.shape[0], n_features = data.shape[1]
    cdef intp_t i, node, root, level_first, width
    cdef intp_t first = top_levels_end(n_nodes, n_threads)
    cdef intp_t last = min(2 * first + 1, n_nodes)
    cdef double* lower
    cdef double* upper
    for i in range(data.shape[0]):
        idx_array[i] = i
    node_start[0] = 0
    node_end[0] = data.shape[0]
    with nogil:
        lower = <double*> malloc(n_features * sizeof(double))
        upper = <double*> malloc(n_features * sizeof(double))
        for node in range(min(first, n_nodes)):  # the same schedule as _kd_tree_build
            ball_node(&data[0, 0], n_features, &idx_array[0], p, node, n_nodes, &node_start[0],
                      &node_end[0], &centroids[0, 0], &radii[0], lower, upper)
        free(lower)
        free(upper)
        with parallel(num_threads=n_threads):
            lower = <double*> malloc(n_features * sizeof(double))  # thread-local scratch
            upper = <double*> malloc(n_features * sizeof(double))
            for root in prange(first, last, schedule="dynamic"):
                level_first = root
                width = 1
                while level_first < n_nodes:
                    for node in range(level_first, level_first + width):
                        ball_node(&data[0, 0], n_features, &idx_array[0], p, node, n_nodes,
                                  &node_start[0], &node_end[0], &centroids[0, 0], &radii[0],
                                  lower, upper)
                    level_first = 2 * level_first + 1
                    width = 2 * width
            free(lower)
            free(upper)


def kd_tree_build(data, idx_array, node_start, node_end, node_lower, node_upper, n_threads):
    """Build a KD-tree (see :func:`spatial_tree_numpy.kd_tree_build`)."""
    _kd_tree_build(data, idx_array, node_start, node_end, node_lower, node_upper, n_threads)


def ball_tree_build(data, p, idx_array, node_start, node_end, centroids, radii, n_threads):
    """Build a ball tree (see :func:`spatial_tree_numpy.ball_tree_build`)."""
    _ball_tree_build(data, float(p), idx_array, node_start, node_end, centroids, radii, n_threads)


# ------------------------------------------------------------------- bounds
cdef inline double node_bound(bint is_ball, const double* geometry_a, const double* geometry_b,
                              intp_t node, const double* query, intp_t n_features,
                              double p) noexcept nogil:
    """Lower bound of the reduced distance from ``query`` to any row of ``node``.

    KD-tree: ``geometry_a``/``geometry_b`` are the (n_nodes, d) lower/upper
    box corners. Ball tree: the (n_nodes, d) centroids and the radii.
    """
    cdef double to_centre, radius, gap, total = 0.0
    cdef const double* lower
    cdef const double* upper
    cdef intp_t l
    if is_ball:
        to_centre = reduced_to_distance(
            reduced_row(query, geometry_a + node * n_features, n_features, p, INFINITY), p)
        radius = geometry_b[node]
        gap = to_centre - radius - BALL_SLACK * (to_centre + radius)
        if gap > 0.0:
            return distance_to_reduced(gap, p)
        return 0.0
    lower = geometry_a + node * n_features
    upper = geometry_b + node * n_features
    for l in range(n_features):
        gap = 0.0
        if query[l] < lower[l]:
            gap = lower[l] - query[l]
        elif query[l] > upper[l]:
            gap = query[l] - upper[l]
        if p == 2.0:
            total = total + gap * gap
        else:
            total = accumulate(total, gap, p)
    return total


# -------------------------------------------------------------------- query
cdef void knn_one(const floating* tree_data, intp_t n_features, intp_t n_samples,
                  const intp_t* idx_array, const intp_t* node_start,
                  const intp_t* node_end, intp_t n_nodes, bint is_ball, const double* geometry_a,
                  const double* geometry_b, const double* query, double p, intp_t k,
                  double* heap_values, intp_t* heap_indices) noexcept nogil:
    """Fill the heap with the k nearest rows of ``query``, then sort it."""
    cdef intp_t stack_nodes[MAX_DEPTH + 2]
    cdef double stack_bounds[MAX_DEPTH + 2]
    cdef intp_t size, node, left, i, j
    cdef double reduced, bound_left, bound_right
    for j in range(k):
        heap_values[j] = INFINITY
        heap_indices[j] = n_samples
    stack_nodes[0] = 0
    stack_bounds[0] = node_bound(is_ball, geometry_a, geometry_b, 0, query, n_features, p)
    size = 1
    while size > 0:
        size -= 1
        node = stack_nodes[size]
        if stack_bounds[size] > heap_values[0]:  # equal: a tie with a smaller index may be inside
            continue
        left = 2 * node + 1
        if left >= n_nodes:
            for i in range(node_start[node], node_end[node]):
                reduced = reduced_row(query, tree_data + i * n_features, n_features, p,
                                      heap_values[0])
                heap_push[double](heap_values, heap_indices, k, reduced, idx_array[i])
            continue
        bound_left = node_bound(is_ball, geometry_a, geometry_b, left, query, n_features, p)
        bound_right = node_bound(is_ball, geometry_a, geometry_b, left + 1, query, n_features, p)
        if bound_left <= bound_right:  # push the farther child first: the nearer is popped next
            stack_nodes[size] = left + 1
            stack_bounds[size] = bound_right
            stack_nodes[size + 1] = left
            stack_bounds[size + 1] = bound_left
        else:
            stack_nodes[size] = left
            stack_bounds[size] = bound_left
            stack_nodes[size + 1] = left + 1
            stack_bounds[size + 1] = bound_right
        size += 2
    sort_pairs(heap_values, heap_indices, k)


def _query(const floating[:, ::1] tree_data, const intp_t[::1] idx_array,          # IN
           const intp_t[::1] node_start, const intp_t[::1] node_end, bint is_ball,   # IN
           const double[:, ::1] geometry_a, const double[::1] geometry_b,            # IN
           const floating[:, ::1] queries, double p,                                 # IN
           double[:, ::1] out_reduced, intp_t[:, ::1] out_indices,                   # OUT
           int n_threads):
    cdef intp_t n_queries = queries.shape[0], n_features = queries.shape[1]
    cdef intp_t n_nodes = node_start.shape[0], k = out_reduced.shape[1]
    cdef intp_t n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    cdef intp_t block, i, l
    cdef double* query
    if n_queries == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        query = <double*> malloc(n_features * sizeof(double))  # thread-local float64 copy
        for block in prange(n_blocks, schedule="dynamic"):
            for i in range(block * QUERY_BLOCK, min((block + 1) * QUERY_BLOCK, n_queries)):
                for l in range(n_features):
                    query[l] = queries[i, l]
                knn_one(&tree_data[0, 0], n_features, tree_data.shape[0], &idx_array[0], &node_start[0], &node_end[0], n_nodes, is_ball,
                        &geometry_a[0, 0], &geometry_b[0], query, p, k, &out_reduced[i, 0],
                        &out_indices[i, 0])
        free(query)


def kd_tree_query(tree_data, idx_array, node_start, node_end, node_lower, node_upper, queries, p,
                  out_reduced, out_indices, n_threads):
    """k nearest rows in a KD-tree (see :func:`spatial_tree_numpy.kd_tree_query`)."""
    _query(tree_data, idx_array, node_start, node_end, False, node_lower, node_upper.reshape(-1),
           queries, float(p), out_reduced, out_indices, n_threads)


def ball_tree_query(tree_data, idx_array, node_start, node_end, centroids, radii, queries, p,
                    out_reduced, out_indices, n_threads):
    """k nearest rows in a ball tree (see :func:`spatial_tree_numpy.ball_tree_query`)."""
    _query(tree_data, idx_array, node_start, node_end, True, centroids, radii, queries, float(p),
           out_reduced, out_indices, n_threads)


# ------------------------------------------------------------------- radius
cdef intp_t radius_one(const floating* tree_data, intp_t n_features, const intp_t* idx_array,
                       const intp_t* node_start, const intp_t* node_end, intp_t n_nodes,
                       bint is_ball, const double* geometry_a, const double* geometry_b,
                       const double* query, double p, double radius, bint write,
                       intp_t* out_indices, double* out_reduced) noexcept nogil:
    """Count the rows within reduced distance ``radius``; with ``write``, store and sort them."""
    cdef intp_t stack_nodes[MAX_DEPTH + 2]
    cdef intp_t size = 1, count = 0, node, left, i
    cdef double reduced
    stack_nodes[0] = 0
    while size > 0:
        size -= 1
        node = stack_nodes[size]
        if node_bound(is_ball, geometry_a, geometry_b, node, query, n_features, p) > radius:
            continue
        left = 2 * node + 1
        if left >= n_nodes:
            for i in range(node_start[node], node_end[node]):
                reduced = reduced_row(query, tree_data + i * n_features, n_features, p, radius)
                if reduced <= radius:
                    if write:
                        out_indices[count] = idx_array[i]
                        out_reduced[count] = reduced
                    count += 1
            continue
        stack_nodes[size] = left + 1
        stack_nodes[size + 1] = left
        size += 2
    if write:
        sort_pairs(out_reduced, out_indices, count)
    return count


def _radius(const floating[:, ::1] tree_data, const intp_t[::1] idx_array,          # IN
            const intp_t[::1] node_start, const intp_t[::1] node_end, bint is_ball,   # IN
            const double[:, ::1] geometry_a, const double[::1] geometry_b,            # IN
            const floating[:, ::1] queries, double p, const double[::1] radii_reduced,  # IN
            const intp_t[::1] offsets,                                                # IN (fill)
            intp_t[::1] out_counts, intp_t[::1] out_indices, double[::1] out_reduced,  # OUT
            int n_threads):
    """Count (``offsets`` empty: ``out_counts``) or fill (``out_indices``, ``out_reduced``)."""
    cdef intp_t n_queries = queries.shape[0], n_features = queries.shape[1]
    cdef intp_t n_nodes = node_start.shape[0]
    cdef intp_t n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    cdef bint fill = offsets.shape[0] > 0
    cdef intp_t block, i, l, count
    cdef intp_t* indices_base = &out_indices[0] if out_indices.shape[0] > 0 else NULL
    cdef double* reduced_base = &out_reduced[0] if out_reduced.shape[0] > 0 else NULL
    cdef double* query
    if n_queries == 0:
        return
    with nogil, parallel(num_threads=n_threads):
        query = <double*> malloc(n_features * sizeof(double))
        for block in prange(n_blocks, schedule="dynamic"):
            for i in range(block * QUERY_BLOCK, min((block + 1) * QUERY_BLOCK, n_queries)):
                for l in range(n_features):
                    query[l] = queries[i, l]
                if fill:
                    if offsets[i + 1] > offsets[i]:
                        radius_one(&tree_data[0, 0], n_features, &idx_array[0], &node_start[0], &node_end[0], n_nodes,
                                   is_ball, &geometry_a[0, 0], &geometry_b[0], query, p,
                                   radii_reduced[i], True, indices_base + offsets[i],
                                   reduced_base + offsets[i])
                else:
                    count = radius_one(&tree_data[0, 0], n_features, &idx_array[0], &node_start[0], &node_end[0],
                                       n_nodes, is_ball, &geometry_a[0, 0], &geometry_b[0], query,
                                       p, radii_reduced[i], False, NULL, NULL)
                    out_counts[i] = count
        free(query)


_NO_INTP = np.empty(0, dtype=np.intp)
_NO_FLOAT = np.empty(0)


def kd_tree_radius_count(tree_data, idx_array, node_start, node_end, node_lower, node_upper,
                         queries, p, radii_reduced, out_counts, n_threads):
    """Radius counts in a KD-tree (see :func:`spatial_tree_numpy.kd_tree_radius_count`)."""
    _radius(tree_data, idx_array, node_start, node_end, False, node_lower, node_upper.reshape(-1),
            queries, float(p), radii_reduced, _NO_INTP, out_counts, _NO_INTP, _NO_FLOAT, n_threads)


def kd_tree_radius_fill(tree_data, idx_array, node_start, node_end, node_lower, node_upper,
                        queries, p, radii_reduced, offsets, out_indices, out_reduced, n_threads):
    """Radius neighbours in a KD-tree (see :func:`spatial_tree_numpy.kd_tree_radius_fill`)."""
    _radius(tree_data, idx_array, node_start, node_end, False, node_lower, node_upper.reshape(-1),
            queries, float(p), radii_reduced, offsets, _NO_INTP, out_indices, out_reduced, n_threads)


def ball_tree_radius_count(tree_data, idx_array, node_start, node_end, centroids, radii, queries,
                           p, radii_reduced, out_counts, n_threads):
    """Radius counts in a ball tree (see :func:`spatial_tree_numpy.kd_tree_radius_count`)."""
    _radius(tree_data, idx_array, node_start, node_end, True, centroids, radii, queries, float(p),
            radii_reduced, _NO_INTP, out_counts, _NO_INTP, _NO_FLOAT, n_threads)


def ball_tree_radius_fill(tree_data, idx_array, node_start, node_end, centroids, radii, queries,
                          p, radii_reduced, offsets, out_indices, out_reduced, n_threads):
    """Radius neighbours in a ball tree (see :func:`spatial_tree_numpy.kd_tree_radius_fill`)."""
    _radius(tree_data, idx_array, node_start, node_end, True, centroids, radii, queries, float(p),
            radii_reduced, offsets, _NO_INTP, out_indices, out_reduced, n_threads)
