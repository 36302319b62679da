r"""SHAP contributions and interaction values of a fitted boosting model (exact TreeSHAP).

:func:`tree_contributions` returns xgboost's ``pred_contribs`` /
``pred_interactions`` for our :class:`~fastscratch.XGBClassifier` and
:class:`~fastscratch.XGBRegressor` (fitted here or loaded from xgboost's own
model files by :func:`fastscratch.boosting._xgboost_json.from_xgboost_json`),
in xgboost's layout. The kernels (:mod:`fastscratch.kernels.treeshap_numpy`
and its Numba and Cython twins) hold the algorithm and its equations.
"""

import numpy as np
import scipy.sparse as sp
from sklearn.utils.validation import check_is_fitted

from .._backend import effective_n_threads, resolve_kernel

# Rows per kernel call: each block is cast to float32 on its own (as predict does).
SHAP_BLOCK_ROWS = 1 << 16


def tree_structure(left, tree_roots):
    """Tree index and depth of every node reachable from ``tree_roots`` (-1 elsewhere).

    A node's children are ``left`` and ``left + 1`` (-1: a leaf).
    """
    n_nodes = left.shape[0]
    node_tree = np.full(n_nodes, -1, dtype=np.intp)
    node_depth = np.full(n_nodes, -1, dtype=np.intp)
    frontier = np.asarray(tree_roots, dtype=np.intp)
    trees = np.arange(frontier.shape[0], dtype=np.intp)
    depth = 0
    while frontier.size:
        node_tree[frontier] = trees
        node_depth[frontier] = depth
        internal = left[frontier] != -1
        children = left[frontier[internal]]
        frontier = np.concatenate([children, children + 1])
        trees = np.concatenate([trees[internal], trees[internal]])
        depth += 1
    return node_tree, node_depth


def node_mean_values(left, value, cover, node_depth):
    r"""Cover-weighted mean leaf value of every node (xgboost's ``FillNodeMeanValues``).

    .. math:: \bar v_k = \frac{c_l \bar v_l + c_r \bar v_r}{c_k}

    for a split node :math:`k` with children :math:`l, r` and covers :math:`c`;
    a leaf's mean is its value. The root's mean is the tree's expected output,
    its part of the bias :math:`\phi_0`. Computed level by level from the
    deepest one, in float64.
    """
    means = value.astype(np.float64)
    for depth in range(int(node_depth.max(initial=-1)), -1, -1):
        nodes = np.flatnonzero((node_depth == depth) & (left != -1))
        a, b = left[nodes], left[nodes] + 1
        means[nodes] = (means[a] * cover[a] + means[b] * cover[b]) / cover[nodes]
    return means


def tree_contributions(model, X, *, interactions=False, backend=None, n_threads=None,
                       iteration_range=None):
    r"""SHAP values of every row, in the layout of xgboost's ``pred_contribs``.

    Parameters
    ----------
    model : XGBClassifier or XGBRegressor
        A fitted model (trees with node covers: fitted here, or loaded from a
        model file that has them).
    X : array-like of shape (n_samples, n_features)
        NaN is missing and follows each split's default direction, as in
        ``predict`` and in xgboost. Cast to float32 block by block, as xgboost.
        Categorical features (pandas category columns or ``feature_types``
        "c" with ``enable_categorical=True``) are coded as in ``predict``; a
        categorical split sends the codes of its set right, any other value
        left (xgboost's rule), and its feature gets the credit as a numeric
        split's does.
    interactions : bool, default=False
        Return SHAP interaction values (xgboost's ``pred_interactions``).
    backend : {"auto", "numpy", "numba", "cython"} or None, default=None
        Kernel backend; None uses the model's ``backend``.
    n_threads : int or None, default=None
        Threads; None uses the model's ``n_jobs``. Results do not depend on it.
    iteration_range : (int, int) or None, default=None
        Rounds to explain, as in ``predict`` (None: all, or up to the best
        iteration after early stopping).

    Returns
    -------
    contributions : ndarray of float64
        ``(n_samples, n_features + 1)``, the bias (expected margin) last; with
        several tree groups (multiclass) ``(n_samples, n_classes, n_features + 1)``.
        With ``interactions=True``: ``(n_samples, n_features + 1, n_features + 1)``
        (or ``(n_samples, n_classes, n_features + 1, n_features + 1)``), the bias
        at ``[..., -1, -1]``.

    Notes
    -----
    For each row :math:`x` and tree group :math:`g`, the contributions add up
    to the margin: :math:`\sum_{j=0}^{d} \phi_j = F_g(x)`, with
    :math:`\phi_d = F_{0,g} + \sum_t \bar v_t` (base margin plus each tree's
    cover-weighted mean leaf value, :func:`node_mean_values`) and
    :math:`\phi_j` the exact Shapley values of Lundberg et al. (2018),
    Algorithm 2, where a feature left out follows both children of a split in
    proportion to their covers (hessian sums). Interaction values
    :math:`\Phi_{ij}` (Lundberg et al., 2020) sum over :math:`j` to
    :math:`\phi_i`. See :mod:`fastscratch.kernels.treeshap_numpy`.
    """
    check_is_fitted(model, "_forest")
    from .binning import dense_rows
    from .sklearn import _validated

    X = _validated(model, X, reset=False, dtype=[np.float32, np.float64])
    backend = model.backend if backend is None else backend
    n_threads = effective_n_threads(model.n_jobs if n_threads is None else n_threads)
    forest = model._forest
    nodes, roots, groups = forest.arrays()
    first, last = model._tree_range(iteration_range)
    roots, groups = roots[first:last], groups[first:last]

    left = nodes["left"]
    cover = nodes["cover"].astype(np.float64)
    node_tree, node_depth = tree_structure(left, roots)
    internal = (node_tree >= 0) & (left != -1)
    if np.any(~(cover[internal] > 0)):
        raise ValueError("the model's trees have split nodes without a positive cover (hessian "
                         "sum); TreeSHAP needs the covers: refit the model, or load a model "
                         "file that stores them (xgboost's sum_hessian).")
    max_depth = int(node_depth.max(initial=0))
    means = node_mean_values(left, nodes["value"], cover, node_depth)
    n_groups = forest.n_groups
    bias = np.asarray(model._base_margin, dtype=np.float64).reshape(-1).copy()
    np.add.at(bias, groups, means[roots])

    n, d = X.shape
    columns = (d + 1, d + 1) if interactions else (d + 1,)
    out = np.zeros((n, n_groups) + columns, dtype=np.float64)
    fields = (nodes["feature"], nodes["threshold"], nodes["default_left"], left,
              nodes["right"], nodes["value"], cover, roots, groups)
    if forest.has_categorical:  # the split test of a categorical node: its category set
        node_cat, cat_sets = forest.categorical()
    else:  # numeric splits only: the kernels test thresholds alone
        node_cat, cat_sets = np.empty(0, dtype=np.intp), np.empty((0, 0), dtype=np.uint8)
    categorical = (np.ascontiguousarray(node_cat, dtype=np.intp),
                   np.ascontiguousarray(cat_sets, dtype=np.uint8))
    if interactions:
        kernel, _ = resolve_kernel("tree_shap_interactions", backend)
        tree_of, features = node_tree[internal], nodes["feature"][internal]
        pairs = np.unique(tree_of * d + features)  # sorted by tree, then feature
        tree_features = (pairs % d).astype(np.intp)
        tree_feature_ptr = np.concatenate(
            [[0], np.cumsum(np.bincount(pairs // d, minlength=roots.shape[0]))]).astype(np.intp)
        extra = (tree_feature_ptr, tree_features, max_depth) + categorical
    else:
        kernel, _ = resolve_kernel("tree_shap", backend)
        extra = (max_depth,) + categorical
    for start in range(0, n, SHAP_BLOCK_ROWS):
        block = (dense_rows(X, start, start + SHAP_BLOCK_ROWS) if sp.issparse(X) else
                 np.ascontiguousarray(X[start:start + SHAP_BLOCK_ROWS], dtype=np.float32))
        kernel(block, *fields, *extra, out[start:start + block.shape[0]], n_threads)
    if interactions:
        out[:, :, d, d] = bias
    else:
        out[:, :, d] = bias
    return out[:, 0] if n_groups == 1 else out
