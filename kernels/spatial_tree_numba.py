r"""KD-tree and ball tree: the Numba kernels.

Same trees and answers as :mod:`spatial_tree_numpy` (read it for the math),
written as loops over arrays:

- the build goes level by level; the nodes of one level own disjoint ranges
  of ``idx_array``, so once a level holds ``SUBTREES_PER_THREAD`` nodes per
  thread, each of them is built with its whole subtree by one thread
  (``prange``); the tree does not depend on the thread count. A node's rows
  are split by a quickselect on the key (coordinate, row index), which puts
  the same rows on each side as the reference's sort;
- a query walks the tree with an explicit stack (depth-first, nearer child
  first) and keeps a per-query max-heap of k (reduced distance, index) pairs;
  queries go in blocks of ``QUERY_BLOCK``, one block per thread, each query
  independent of the others (same answer for any thread count);
- leaves scan ``tree_data`` (the rows in tree order), so a leaf is one
  contiguous block of memory.
"""

import numba
import numpy as np

from ._constants import FAMILIES
from ._threads import numba_threads
from .spatial_tree_numpy import BALL_SLACK

_SHARED = FAMILIES["spatial_tree"]  # shared with spatial_tree_cython
QUERY_BLOCK = _SHARED["QUERY_BLOCK"]
# The build shares out subtrees: the top levels are built node by node until
# a level holds this many nodes per thread, then each of them is built with
# all its descendants by one thread (one barrier, not one per level).
SUBTREES_PER_THREAD = _SHARED["SUBTREES_PER_THREAD"]


# ------------------------------------------------------------------ helpers
@numba.njit(cache=True, nogil=True, inline="always")
def _accumulate(total, diff, p):
    """Add one feature's |difference| to a reduced distance (max for p = inf)."""
    if p == 2.0:
        return total + diff * diff
    if p == 1.0:
        return total + diff
    if p == np.inf:
        return max(total, diff)
    return total + diff ** p


@numba.njit(cache=True, nogil=True, inline="always")
def _reduced_row(query, row, p, limit):
    """Reduced float64 distance from ``query`` to ``row``; stops early once above ``limit``.

    The partial sums only grow, so a value returned above ``limit`` is above
    it in full as well; it is then not exact, but it is never kept.
    """
    total = 0.0
    if p == 2.0:  # the common case, without the per-feature branch on p
        for l in range(query.shape[0]):
            diff = np.float64(row[l]) - query[l]
            total += diff * diff
            if total > limit:
                return total
        return total
    for l in range(query.shape[0]):
        total = _accumulate(total, abs(np.float64(row[l]) - query[l]), p)
        if total > limit:
            return total
    return total


@numba.njit(cache=True, nogil=True, inline="always")
def _to_distance(reduced, p):
    if p == 2.0:
        return np.sqrt(reduced)
    if p == 1.0 or p == np.inf:
        return reduced
    return reduced ** (1.0 / p)


@numba.njit(cache=True, nogil=True, inline="always")
def _to_reduced(distance, p):
    if p == 2.0:
        return distance * distance
    if p == 1.0 or p == np.inf:
        return distance
    return distance ** p


@numba.njit(cache=True, nogil=True, inline="always")
def _pair_greater(value_a, index_a, value_b, index_b):
    return value_a > value_b or (value_a == value_b and index_a > index_b)


@numba.njit(cache=True, nogil=True)
def _sift_down(values, indices, position, size):
    """Restore the max-heap order (by value, then index) below ``position``."""
    value = values[position]
    index = indices[position]
    while True:
        child = 2 * position + 1
        if child >= size:
            break
        if child + 1 < size and _pair_greater(values[child + 1], indices[child + 1],
                                              values[child], indices[child]):
            child += 1
        if _pair_greater(values[child], indices[child], value, index):
            values[position] = values[child]
            indices[position] = indices[child]
            position = child
        else:
            break
    values[position] = value
    indices[position] = index


@numba.njit(cache=True, nogil=True)
def _heap_replace_root(values, indices, value, index):
    """Put (value, index) in place of the root of a full max-heap (it must be smaller)."""
    values[0] = value
    indices[0] = index
    _sift_down(values, indices, 0, values.shape[0])


@numba.njit(cache=True, nogil=True)
def _sort_pairs(values, indices):
    """Sort pairs ascending by (value, index), in place (heapsort)."""
    size = values.shape[0]
    for position in range(size // 2 - 1, -1, -1):
        _sift_down(values, indices, position, size)
    for end in range(size - 1, 0, -1):
        values[0], values[end] = values[end], values[0]
        indices[0], indices[end] = indices[end], indices[0]
        _sift_down(values, indices, 0, end)


# -------------------------------------------------------------------- build
@numba.njit(cache=True, nogil=True, inline="always")
def _key_less(data, dim, a, b):
    """Row a before row b in the order (coordinate ``dim``, row index)."""
    return data[a, dim] < data[b, dim] or (data[a, dim] == data[b, dim] and a < b)


@numba.njit(cache=True, nogil=True)
def _select(data, dim, idx, low, high, nth):
    """Reorder ``idx[low:high + 1]`` so that ``idx[nth]`` is in its sorted place.

    Quickselect with a median-of-three pivot; the keys are distinct (the row
    index breaks ties), so the rows left of ``nth`` are exactly the smallest.
    """
    while low < high:
        middle = (low + high) // 2
        if _key_less(data, dim, idx[middle], idx[low]):
            idx[low], idx[middle] = idx[middle], idx[low]
        if _key_less(data, dim, idx[high], idx[low]):
            idx[low], idx[high] = idx[high], idx[low]
        if _key_less(data, dim, idx[middle], idx[high]):
            idx[middle], idx[high] = idx[high], idx[middle]
        pivot = idx[high]  # the median of the three
        store = low
        for i in range(low, high):
            if _key_less(data, dim, idx[i], pivot):
                idx[i], idx[store] = idx[store], idx[i]
                store += 1
        idx[store], idx[high] = idx[high], idx[store]
        if store == nth:
            return
        if store < nth:
            low = store + 1
        else:
            high = store - 1


@numba.njit(cache=True, nogil=True)
def _box(data, idx, start, end, lower, upper):
    """Bounding box of the rows ``idx[start:end]`` (float64)."""
    lower[:] = np.inf
    upper[:] = -np.inf
    for i in range(start, end):
        row = data[idx[i]]
        for l in range(data.shape[1]):
            value = np.float64(row[l])
            if value < lower[l]:
                lower[l] = value
            if value > upper[l]:
                upper[l] = value


@numba.njit(cache=True, nogil=True)
def _split(data, idx, node, n_nodes, lower, upper, node_start, node_end):
    """Split a node at the median of its widest dimension and set its children's ranges."""
    start = node_start[node]
    end = node_end[node]
    left = 2 * node + 1
    if left >= n_nodes:
        return
    dim = 0
    widest = upper[0] - lower[0]
    for l in range(1, data.shape[1]):
        if upper[l] - lower[l] > widest:  # strict: ties to the smaller dimension
            widest = upper[l] - lower[l]
            dim = l
    middle = start + (end - start) // 2
    _select(data, dim, idx, start, end - 1, middle)
    node_start[left] = start
    node_end[left] = middle
    node_start[left + 1] = middle
    node_end[left + 1] = end


@numba.njit(parallel=True, cache=True, nogil=True)
def _kd_tree_build(data, idx_array, node_start, node_end, node_lower, node_upper, n_threads):
    n_nodes = node_start.shape[0]
    for i in range(data.shape[0]):
        idx_array[i] = i
    node_start[0] = 0
    node_end[0] = data.shape[0]
    # The top levels, node by node, until a level has enough nodes to share out.
    first = 0
    while first < n_nodes and first + 1 < SUBTREES_PER_THREAD * n_threads:
        for node in range(first, 2 * first + 1):
            _kd_node(data, idx_array, node, n_nodes, node_start, node_end, node_lower, node_upper)
        first = 2 * first + 1
    # Then each node of that level and all its descendants on one thread.
    for root in numba.prange(first, min(2 * first + 1, n_nodes)):
        level_first = root
        width = 1
        while level_first < n_nodes:
            for node in range(level_first, level_first + width):
                _kd_node(data, idx_array, node, n_nodes, node_start, node_end, node_lower,
                         node_upper)
            level_first = 2 * level_first + 1
            width *= 2


@numba.njit(cache=True, nogil=True)
def _kd_node(data, idx_array, node, n_nodes, node_start, node_end, node_lower, node_upper):
    """Bounding box of a node, then its split."""
    _box(data, idx_array, node_start[node], node_end[node], node_lower[node], node_upper[node])
    _split(data, idx_array, node, n_nodes, node_lower[node], node_upper[node], node_start, node_end)


@numba.njit(parallel=True, cache=True, nogil=True)
def _ball_tree_build(data, p, idx_array, node_start, node_end, centroids, radii, n_threads):
    n_nodes = node_start.shape[0]
    for i in range(data.shape[0]):
        idx_array[i] = i
    node_start[0] = 0
    node_end[0] = data.shape[0]
    first = 0  # the same schedule as _kd_tree_build
    while first < n_nodes and first + 1 < SUBTREES_PER_THREAD * n_threads:
        for node in range(first, 2 * first + 1):
            _ball_node(data, p, idx_array, node, n_nodes, node_start, node_end, centroids, radii)
        first = 2 * first + 1
    for root in numba.prange(first, min(2 * first + 1, n_nodes)):
        level_first = root
        width = 1
        while level_first < n_nodes:
            for node in range(level_first, level_first + width):
                _ball_node(data, p, idx_array, node, n_nodes, node_start, node_end, centroids,
                           radii)
            level_first = 2 * level_first + 1
            width *= 2


@numba.njit(cache=True, nogil=True)
def _ball_node(data, p, idx_array, node, n_nodes, node_start, node_end, centroids, radii):
    """Centroid and radius of a node, then its split."""
    n_features = data.shape[1]
    start = node_start[node]
    end = node_end[node]
    centroid = centroids[node]
    centroid[:] = 0.0
    for i in range(start, end):  # rows in order, as the reference
        row = data[idx_array[i]]
        for l in range(n_features):
            centroid[l] += np.float64(row[l])
    for l in range(n_features):
        centroid[l] /= end - start
    largest = 0.0
    for i in range(start, end):
        reduced = _reduced_row(centroid, data[idx_array[i]], p, np.inf)
        if reduced > largest:
            largest = reduced
    radii[node] = _to_distance(largest, p)
    lower = np.empty(n_features)
    upper = np.empty(n_features)
    _box(data, idx_array, start, end, lower, upper)
    _split(data, idx_array, node, n_nodes, lower, upper, node_start, node_end)


def kd_tree_build(data, idx_array, node_start, node_end, node_lower, node_upper, n_threads):
    """Build a KD-tree (see :func:`spatial_tree_numpy.kd_tree_build`)."""
    with numba_threads(n_threads):
        _kd_tree_build(data, idx_array, node_start, node_end, node_lower, node_upper,
                       max(1, int(n_threads)))


def ball_tree_build(data, p, idx_array, node_start, node_end, centroids, radii, n_threads):
    """Build a ball tree (see :func:`spatial_tree_numpy.ball_tree_build`)."""
    with numba_threads(n_threads):
        _ball_tree_build(data, float(p), idx_array, node_start, node_end, centroids, radii,
                         max(1, int(n_threads)))


# -------------------------------------------------------------------- bounds
@numba.njit(cache=True, nogil=True, inline="always")
def _node_bound(is_ball, geometry_a, geometry_b, node, query, p):
    """Lower bound of the reduced distance from ``query`` to any row of ``node``.

    KD-tree: ``geometry_a``/``geometry_b`` are the lower/upper box corners.
    Ball tree: the centroids and the radii (as a column).
    """
    if is_ball:
        to_centre = _to_distance(_reduced_row(query, geometry_a[node], p, np.inf), p)
        radius = geometry_b[node, 0]
        gap = to_centre - radius - BALL_SLACK * (to_centre + radius)
        if gap > 0.0:
            return _to_reduced(gap, p)
        return 0.0
    lower = geometry_a[node]
    upper = geometry_b[node]
    total = 0.0
    for l in range(query.shape[0]):
        gap = 0.0
        if query[l] < lower[l]:
            gap = lower[l] - query[l]
        elif query[l] > upper[l]:
            gap = query[l] - upper[l]
        total = _accumulate(total, gap, p)
    return total


# --------------------------------------------------------------------- query
@numba.njit(cache=True, nogil=True)
def _knn_one(tree_data, idx_array, node_start, node_end, is_ball, geometry_a, geometry_b, query,
             p, heap_values, heap_indices, stack_nodes, stack_bounds):
    """Fill the heap with the k nearest rows of ``query``, then sort it."""
    n_nodes = node_start.shape[0]
    heap_values[:] = np.inf
    heap_indices[:] = idx_array.shape[0]
    stack_nodes[0] = 0
    stack_bounds[0] = _node_bound(is_ball, geometry_a, geometry_b, 0, query, p)
    size = 1
    while size > 0:
        size -= 1
        node = stack_nodes[size]
        if stack_bounds[size] > heap_values[0]:  # equal: a tie with a smaller index may be inside
            continue
        left = 2 * node + 1
        if left >= n_nodes:
            for i in range(node_start[node], node_end[node]):
                reduced = _reduced_row(query, tree_data[i], p, heap_values[0])
                index = idx_array[i]
                if reduced < heap_values[0] or (reduced == heap_values[0] and index < heap_indices[0]):
                    _heap_replace_root(heap_values, heap_indices, reduced, index)
            continue
        bound_left = _node_bound(is_ball, geometry_a, geometry_b, left, query, p)
        bound_right = _node_bound(is_ball, geometry_a, geometry_b, left + 1, query, p)
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
    _sort_pairs(heap_values, heap_indices)


@numba.njit(parallel=True, cache=True, nogil=True)
def _query(tree_data, idx_array, node_start, node_end, is_ball, geometry_a, geometry_b, queries, p,
           out_reduced, out_indices):
    n_queries, n_features = queries.shape
    n_nodes = node_start.shape[0]
    depth = 1
    while (1 << depth) - 1 < n_nodes:
        depth += 1
    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        query = np.empty(n_features)
        stack_nodes = np.empty(depth + 2, dtype=np.intp)
        stack_bounds = np.empty(depth + 2)
        for i in range(block * QUERY_BLOCK, min((block + 1) * QUERY_BLOCK, n_queries)):
            for l in range(n_features):
                query[l] = np.float64(queries[i, l])
            _knn_one(tree_data, idx_array, node_start, node_end, is_ball, geometry_a, geometry_b,
                     query, p, out_reduced[i], out_indices[i], stack_nodes, stack_bounds)


def kd_tree_query(tree_data, idx_array, node_start, node_end, node_lower, node_upper, queries, p,
                  out_reduced, out_indices, n_threads):
    """k nearest rows in a KD-tree (see :func:`spatial_tree_numpy.kd_tree_query`)."""
    with numba_threads(n_threads):
        _query(tree_data, idx_array, node_start, node_end, False, node_lower, node_upper, queries,
               float(p), out_reduced, out_indices)


def ball_tree_query(tree_data, idx_array, node_start, node_end, centroids, radii, queries, p,
                    out_reduced, out_indices, n_threads):
    """k nearest rows in a ball tree (see :func:`spatial_tree_numpy.ball_tree_query`)."""
    with numba_threads(n_threads):
        _query(tree_data, idx_array, node_start, node_end, True, centroids, radii.reshape(-1, 1),
               queries, float(p), out_reduced, out_indices)


# -------------------------------------------------------------------- radius
@numba.njit(cache=True, nogil=True)
def _radius_one(tree_data, idx_array, node_start, node_end, is_ball, geometry_a, geometry_b, query,
                p, radius, out_indices, out_reduced, stack_nodes):
    """Rows within reduced distance ``radius``: counted, and written when outputs have room.

    Pass empty outputs to count only; with outputs of the counted size the
    rows are written and sorted by (distance, index).
    """
    n_nodes = node_start.shape[0]
    write = out_indices.shape[0] > 0
    count = 0
    stack_nodes[0] = 0
    size = 1
    while size > 0:
        size -= 1
        node = stack_nodes[size]
        if _node_bound(is_ball, geometry_a, geometry_b, node, query, p) > radius:
            continue
        left = 2 * node + 1
        if left >= n_nodes:
            for i in range(node_start[node], node_end[node]):
                reduced = _reduced_row(query, tree_data[i], p, radius)
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
        _sort_pairs(out_reduced, out_indices)
    return count


@numba.njit(parallel=True, cache=True, nogil=True)
def _radius(tree_data, idx_array, node_start, node_end, is_ball, geometry_a, geometry_b, queries, p,
            radii_reduced, offsets, out_counts, out_indices, out_reduced):
    """Count (``out_counts`` non-empty) or fill (``offsets`` non-empty) radius neighbours."""
    n_queries, n_features = queries.shape
    n_nodes = node_start.shape[0]
    fill = offsets.shape[0] > 0
    depth = 1
    while (1 << depth) - 1 < n_nodes:
        depth += 1
    n_blocks = (n_queries + QUERY_BLOCK - 1) // QUERY_BLOCK
    for block in numba.prange(n_blocks):
        query = np.empty(n_features)
        stack_nodes = np.empty(depth + 2, dtype=np.intp)
        for i in range(block * QUERY_BLOCK, min((block + 1) * QUERY_BLOCK, n_queries)):
            for l in range(n_features):
                query[l] = np.float64(queries[i, l])
            if fill:
                _radius_one(tree_data, idx_array, node_start, node_end, is_ball, geometry_a,
                            geometry_b, query, p, radii_reduced[i],
                            out_indices[offsets[i]:offsets[i + 1]],
                            out_reduced[offsets[i]:offsets[i + 1]], stack_nodes)
            else:
                out_counts[i] = _radius_one(tree_data, idx_array, node_start, node_end, is_ball,
                                            geometry_a, geometry_b, query, p, radii_reduced[i],
                                            out_indices[:0], out_reduced[:0], stack_nodes)


_NO_INTP = np.empty(0, dtype=np.intp)
_NO_FLOAT = np.empty(0)


def kd_tree_radius_count(tree_data, idx_array, node_start, node_end, node_lower, node_upper,
                         queries, p, radii_reduced, out_counts, n_threads):
    """Radius counts in a KD-tree (see :func:`spatial_tree_numpy.kd_tree_radius_count`)."""
    with numba_threads(n_threads):
        _radius(tree_data, idx_array, node_start, node_end, False, node_lower, node_upper, queries,
                float(p), radii_reduced, _NO_INTP, out_counts, _NO_INTP, _NO_FLOAT)


def kd_tree_radius_fill(tree_data, idx_array, node_start, node_end, node_lower, node_upper,
                        queries, p, radii_reduced, offsets, out_indices, out_reduced, n_threads):
    """Radius neighbours in a KD-tree (see :func:`spatial_tree_numpy.kd_tree_radius_fill`)."""
    with numba_threads(n_threads):
        _radius(tree_data, idx_array, node_start, node_end, False, node_lower, node_upper, queries,
                float(p), radii_reduced, offsets, _NO_INTP, out_indices, out_reduced)


def ball_tree_radius_count(tree_data, idx_array, node_start, node_end, centroids, radii, queries,
                           p, radii_reduced, out_counts, n_threads):
    """Radius counts in a ball tree (see :func:`spatial_tree_numpy.kd_tree_radius_count`)."""
    with numba_threads(n_threads):
        _radius(tree_data, idx_array, node_start, node_end, True, centroids, radii.reshape(-1, 1),
                queries, float(p), radii_reduced, _NO_INTP, out_counts, _NO_INTP, _NO_FLOAT)


def ball_tree_radius_fill(tree_data, idx_array, node_start, node_end, centroids, radii, queries,
                          p, radii_reduced, offsets, out_indices, out_reduced, n_threads):
    """Radius neighbours in a ball tree (see :func:`spatial_tree_numpy.kd_tree_radius_fill`)."""
    with numba_threads(n_threads):
        _radius(tree_data, idx_array, node_start, node_end, True, centroids, radii.reshape(-1, 1),
                queries, float(p), radii_reduced, offsets, _NO_INTP, out_indices, out_reduced)
