r"""KD-tree and ball tree for exact nearest-neighbour search: the readable reference.

Both trees share one skeleton (the layout of scikit-learn's
``sklearn/neighbors/_binary_tree.pxi.tp``):

- the training rows are referred to through ``idx_array``, a permutation of
  ``0 .. n-1``; node ``i`` owns ``idx_array[node_start[i]:node_end[i]]``;
- the tree is complete and binary, stored as arrays: the children of node
  ``i`` are ``2 i + 1`` and ``2 i + 2``; with ``n_levels`` levels there are
  ``n_nodes = 2 ** n_levels - 1`` nodes and node ``i`` is a leaf when
  ``2 i + 1 >= n_nodes``. ``n_levels`` comes from ``leaf_size`` as in
  scikit-learn (:func:`tree_shape`), so every leaf holds between about
  ``leaf_size / 2`` and ``leaf_size`` rows;
- a node is split on the dimension of largest spread (max - min, ties to the
  smaller dimension), at the median: the left child gets the
  ``(end - start) // 2`` rows that are smallest by (coordinate, row index).
  This order is total, so every backend puts exactly the same rows in every
  node (only the order of rows inside a leaf may differ).

They differ by the geometry each node keeps, which gives a lower bound on the
distance from a query :math:`q` to any point of the node:

- KD-tree: the bounding box :math:`[\ell, u]` of the node's rows, and

  .. math:: \underline{D}(q) = \Big\lVert \big(\max(\ell_l - q_l,\; q_l - u_l,\; 0)\big)_l \Big\rVert_p ;

- ball tree: a centroid :math:`c` (the mean of the node's rows) and a radius
  :math:`r = \max_{x} D(c, x)`, and, by the triangle inequality,

  .. math:: \underline{D}(q) = \max\big(D(q, c) - r,\; 0\big)

  (reduced by a relative ``BALL_SLACK`` so that rounding never prunes a node
  that holds a neighbour).

Distances are ranked in their *reduced* form, which keeps the order and
avoids roots: :math:`R = \sum_l |q_l - x_l|^p` for finite ``p`` (p = 2 is the
squared euclidean distance) and :math:`R = \max_l |q_l - x_l|` for
``p = inf`` (Chebyshev). Every reduced distance is computed in float64 from
the stored values (float32 rows are converted exactly), summed over the
features in order, so the k winners and their distances are the exact
float64 ones, the same as the brute-force kernels' float64 re-ranking.

A k-nearest query walks the tree depth first from the root, visits the child
with the smaller bound first, skips a node whose bound exceeds the current
k-th smallest distance (the root of a max-heap of k (distance, index) pairs,
so equal distances go to the smaller index) and scans the rows of each leaf it
reaches. A radius query keeps every row with :math:`R \le r_{reduced}` and
skips nodes whose bound exceeds it; its rows come sorted by (distance, index).

This reference is plain recursive Python with NumPy for the work inside one
node: slow, for small inputs and for checking the compiled kernels.
"""

import numpy as np

# Fastest first, from benchmarks/test_bench_trees.py at "medium" (200k x d
# blobs, 20k queries, k = 10, 2 threads, float64; medians on a shared, heavily
# loaded 2-core machine). KD-tree build + query, cython / numba: d = 2,
# 0.82 / 0.86 s; d = 3, 0.81 / 1.11 s; d = 8, 11.2 / 17.1 s; d = 16,
# 58.2 / 56.5 s. Ball tree: d = 2, 2.9 / 2.5 s; d = 3, 5.6 / 7.6 s; d = 8,
# 53 / 66 s. Cython is first: faster or level wherever a tree is worth using.
AUTO_BACKEND_ORDER = {
    "kd_tree_build": ("cython", "numba", "numpy"),
    "kd_tree_query": ("cython", "numba", "numpy"),
    "kd_tree_radius_count": ("cython", "numba", "numpy"),
    "kd_tree_radius_fill": ("cython", "numba", "numpy"),
    "ball_tree_build": ("cython", "numba", "numpy"),
    "ball_tree_query": ("cython", "numba", "numpy"),
    "ball_tree_radius_count": ("cython", "numba", "numpy"),
    "ball_tree_radius_fill": ("cython", "numba", "numpy"),
}

# Relative slack of the ball tree's bound: rounding in D(q, c) and r is about
# d * 1e-16 of their size, far below this.
BALL_SLACK = 1e-10


def tree_shape(n_samples, leaf_size):
    """``(n_levels, n_nodes)`` of the tree over ``n_samples`` rows (scikit-learn's rule)."""
    n_levels = int(np.log2(max(1.0, (n_samples - 1) / leaf_size))) + 1
    return n_levels, 2 ** n_levels - 1


# ----------------------------------------------------------------- distances
def reduced_distances(rows, query, p):
    """Reduced distances from ``query`` to each of ``rows``, in float64.

    Summed feature by feature, in order, so that every backend gets the same
    bits (NumPy's ``sum`` would add in a different order).
    """
    rows = np.asarray(rows, dtype=np.float64)
    query = np.asarray(query, dtype=np.float64)
    total = np.zeros(rows.shape[0])
    for l in range(rows.shape[1]):
        diff = np.abs(rows[:, l] - query[l])
        if p == np.inf:
            total = np.maximum(total, diff)
        elif p == 2.0:
            total = total + diff * diff
        elif p == 1.0:
            total = total + diff
        else:
            total = total + diff ** p
    return total


def _reduce_gaps(gaps, p):
    """Reduced norm of a vector of non-negative per-feature gaps, in feature order.

    A Python loop over floats: faster than NumPy calls on one-element arrays.
    """
    total = 0.0
    for gap in gaps.tolist():
        if p == np.inf:
            total = max(total, gap)
        elif p == 2.0:
            total += gap * gap
        elif p == 1.0:
            total += gap
        else:
            total += gap ** p
    return total


def _reduced_to_distance(reduced, p):
    if p == np.inf or p == 1.0:
        return reduced
    if p == 2.0:
        return np.sqrt(reduced)
    return reduced ** (1.0 / p)


def _distance_to_reduced(distance, p):
    if p == np.inf or p == 1.0:
        return distance
    if p == 2.0:
        return distance * distance
    return distance ** p


# --------------------------------------------------------------------- build
def _build(data, idx_array, node_start, node_end, set_geometry):
    """Fill ``idx_array`` and the node ranges, calling ``set_geometry(node, rows)``."""
    n_nodes = node_start.shape[0]
    idx_array[:] = np.arange(data.shape[0])

    def build_node(node, start, end):
        node_start[node], node_end[node] = start, end
        rows = data[idx_array[start:end]].astype(np.float64)
        set_geometry(node, rows)
        left = 2 * node + 1
        if left >= n_nodes:
            return
        spread = rows.max(axis=0) - rows.min(axis=0)
        dim = int(np.argmax(spread))  # first maximum: ties to the smaller dimension
        members = idx_array[start:end]
        order = np.lexsort((members, data[members, dim]))  # by coordinate, then row index
        idx_array[start:end] = members[order]
        middle = start + (end - start) // 2
        build_node(left, start, middle)
        build_node(left + 1, middle, end)

    build_node(0, 0, data.shape[0])


def kd_tree_build(data, idx_array, node_start, node_end, node_lower, node_upper, n_threads):
    """Build a KD-tree over ``data``.

    Parameters
    ----------
    data : ndarray of shape (n, d), float32 or float64, C-contiguous
    idx_array : ndarray of shape (n,), intp
        Written: the rows in tree order.
    node_start, node_end : ndarray of shape (n_nodes,), intp
        Written: node ``i`` owns ``idx_array[node_start[i]:node_end[i]]``;
        ``n_nodes`` comes from :func:`tree_shape`.
    node_lower, node_upper : ndarray of shape (n_nodes, d), float64
        Written: the bounding box of each node's rows.
    n_threads : int
        Ignored here.
    """
    def set_box(node, rows):
        node_lower[node] = rows.min(axis=0)
        node_upper[node] = rows.max(axis=0)

    _build(data, idx_array, node_start, node_end, set_box)


def ball_tree_build(data, p, idx_array, node_start, node_end, centroids, radii, n_threads):
    """Build a ball tree over ``data`` for the Minkowski exponent ``p`` (inf: Chebyshev).

    Parameters
    ----------
    data : ndarray of shape (n, d), float32 or float64, C-contiguous
    p : float
        Exponent, >= 1 or ``np.inf``; the radii are measured in this metric.
    idx_array, node_start, node_end : see :func:`kd_tree_build`
    centroids : ndarray of shape (n_nodes, d), float64
        Written: the mean of each node's rows (summed in row order).
    radii : ndarray of shape (n_nodes,), float64
        Written: the largest distance from the centroid to a row of the node.
    n_threads : int
        Ignored here.
    """
    def set_ball(node, rows):
        total = np.zeros(rows.shape[1])
        for row in rows:  # in order, as the compiled kernels
            total = total + row
        centroids[node] = total / rows.shape[0]
        radii[node] = _reduced_to_distance(reduced_distances(rows, centroids[node], p).max(), p)

    _build(data, idx_array, node_start, node_end, set_ball)


# --------------------------------------------------------------------- query
def _kd_bound(node_lower, node_upper, p):
    def bound(node, query):
        gaps = np.maximum(np.maximum(node_lower[node] - query, query - node_upper[node]), 0.0)
        return _reduce_gaps(gaps, p)
    return bound


def _ball_bound(centroids, radii, p):
    def bound(node, query):
        to_centre = _reduced_to_distance(_reduce_gaps(np.abs(centroids[node] - query), p), p)
        gap = to_centre - radii[node] - BALL_SLACK * (to_centre + radii[node])
        return _distance_to_reduced(gap, p) if gap > 0.0 else 0.0
    return bound


def _knn_one(tree_data, idx_array, node_start, node_end, bound, query, p, k):
    """The k nearest rows of one query: ``(reduced distances, indices)`` sorted."""
    n_nodes = node_start.shape[0]
    best_values = np.full(k, np.inf)
    best_indices = np.full(k, idx_array.shape[0], dtype=np.intp)

    def visit(node, node_bound):
        nonlocal best_values, best_indices
        if node_bound > best_values[-1]:  # equal: a tie with a smaller index may be inside
            return
        left = 2 * node + 1
        if left >= n_nodes:
            start, end = node_start[node], node_end[node]
            values = np.concatenate([best_values, reduced_distances(tree_data[start:end], query, p)])
            indices = np.concatenate([best_indices, idx_array[start:end]])
            keep = np.lexsort((indices, values))[:k]
            best_values, best_indices = values[keep], indices[keep]
            return
        children = [(bound(left, query), left), (bound(left + 1, query), left + 1)]
        if children[1][0] < children[0][0]:
            children.reverse()
        for child_bound, child in children:
            visit(child, child_bound)

    visit(0, bound(0, query))
    return best_values, best_indices


def _query(tree_data, idx_array, node_start, node_end, bound, queries, p, out_reduced, out_indices):
    query64 = queries.astype(np.float64)
    k = out_reduced.shape[1]
    for i in range(queries.shape[0]):
        out_reduced[i], out_indices[i] = _knn_one(tree_data, idx_array, node_start, node_end,
                                                  bound, query64[i], p, k)


def kd_tree_query(tree_data, idx_array, node_start, node_end, node_lower, node_upper, queries, p,
                  out_reduced, out_indices, n_threads):
    """k nearest rows of each query in a KD-tree.

    Parameters
    ----------
    tree_data : ndarray of shape (n, d), float32 or float64, C-contiguous
        The training rows in tree order: ``data[idx_array]``.
    idx_array, node_start, node_end, node_lower, node_upper
        The arrays written by :func:`kd_tree_build`.
    queries : ndarray of shape (m, d), same dtype as ``tree_data``
    p : float
        Minkowski exponent (2: euclidean, 1: Manhattan, inf: Chebyshev).
    out_reduced : ndarray of shape (m, k), float64
        Written: the k smallest reduced distances of each query, ascending.
    out_indices : ndarray of shape (m, k), intp
        Written: their rows of the training data; ties to the smaller index.
    n_threads : int
        Ignored here.
    """
    _query(tree_data, idx_array, node_start, node_end, _kd_bound(node_lower, node_upper, p),
           queries, p, out_reduced, out_indices)


def ball_tree_query(tree_data, idx_array, node_start, node_end, centroids, radii, queries, p,
                    out_reduced, out_indices, n_threads):
    """k nearest rows of each query in a ball tree (see :func:`kd_tree_query`)."""
    _query(tree_data, idx_array, node_start, node_end, _ball_bound(centroids, radii, p),
           queries, p, out_reduced, out_indices)


# -------------------------------------------------------------------- radius
def _radius_one(tree_data, idx_array, node_start, node_end, bound, query, p, radius):
    """Rows within reduced distance ``radius`` of one query, sorted by (distance, index)."""
    n_nodes = node_start.shape[0]
    found_values, found_indices = [], []

    def visit(node):
        if bound(node, query) > radius:
            return
        left = 2 * node + 1
        if left >= n_nodes:
            start, end = node_start[node], node_end[node]
            values = reduced_distances(tree_data[start:end], query, p)
            inside = values <= radius
            found_values.append(values[inside])
            found_indices.append(idx_array[start:end][inside])
            return
        visit(left)
        visit(left + 1)

    visit(0)
    values = np.concatenate(found_values) if found_values else np.empty(0)
    indices = np.concatenate(found_indices) if found_indices else np.empty(0, dtype=np.intp)
    order = np.lexsort((indices, values))
    return values[order], indices[order]


def _radius_count(tree_data, idx_array, node_start, node_end, bound, queries, p, radii_reduced,
                  out_counts):
    query64 = queries.astype(np.float64)
    for i in range(queries.shape[0]):
        out_counts[i] = _radius_one(tree_data, idx_array, node_start, node_end, bound, query64[i],
                                    p, radii_reduced[i])[0].shape[0]


def _radius_fill(tree_data, idx_array, node_start, node_end, bound, queries, p, radii_reduced,
                 offsets, out_indices, out_reduced):
    query64 = queries.astype(np.float64)
    for i in range(queries.shape[0]):
        values, indices = _radius_one(tree_data, idx_array, node_start, node_end, bound,
                                      query64[i], p, radii_reduced[i])
        out_reduced[offsets[i]:offsets[i + 1]] = values
        out_indices[offsets[i]:offsets[i + 1]] = indices


def kd_tree_radius_count(tree_data, idx_array, node_start, node_end, node_lower, node_upper,
                         queries, p, radii_reduced, out_counts, n_threads):
    """Number of rows within reduced distance ``radii_reduced[i]`` (inclusive) of each query.

    Parameters
    ----------
    tree_data, idx_array, node_start, node_end, node_lower, node_upper, queries, p
        As in :func:`kd_tree_query`.
    radii_reduced : ndarray of shape (m,), float64
        The radius of each query, reduced (squared for p = 2, ...).
    out_counts : ndarray of shape (m,), intp
        Written: the counts.
    n_threads : int
        Ignored here.
    """
    _radius_count(tree_data, idx_array, node_start, node_end, _kd_bound(node_lower, node_upper, p),
                  queries, p, radii_reduced, out_counts)


def kd_tree_radius_fill(tree_data, idx_array, node_start, node_end, node_lower, node_upper,
                        queries, p, radii_reduced, offsets, out_indices, out_reduced, n_threads):
    """Rows within reduced distance ``radii_reduced[i]`` of each query.

    Parameters
    ----------
    offsets : ndarray of shape (m + 1,), intp
        Cumulative counts from :func:`kd_tree_radius_count`, starting at 0.
    out_indices : ndarray of shape (offsets[-1],), intp
        Written: query ``i``'s rows in ``[offsets[i], offsets[i + 1])``,
        sorted by (distance, index).
    out_reduced : ndarray of shape (offsets[-1],), float64
        Written: their reduced distances.
    Others
        As in :func:`kd_tree_radius_count`.
    """
    _radius_fill(tree_data, idx_array, node_start, node_end, _kd_bound(node_lower, node_upper, p),
                 queries, p, radii_reduced, offsets, out_indices, out_reduced)


def ball_tree_radius_count(tree_data, idx_array, node_start, node_end, centroids, radii, queries,
                           p, radii_reduced, out_counts, n_threads):
    """Radius counts in a ball tree (see :func:`kd_tree_radius_count`)."""
    _radius_count(tree_data, idx_array, node_start, node_end, _ball_bound(centroids, radii, p),
                  queries, p, radii_reduced, out_counts)


def ball_tree_radius_fill(tree_data, idx_array, node_start, node_end, centroids, radii, queries,
                          p, radii_reduced, offsets, out_indices, out_reduced, n_threads):
    """Radius neighbours in a ball tree (see :func:`kd_tree_radius_fill`)."""
    _radius_fill(tree_data, idx_array, node_start, node_end, _ball_bound(centroids, radii, p),
                 queries, p, radii_reduced, offsets, out_indices, out_reduced)
