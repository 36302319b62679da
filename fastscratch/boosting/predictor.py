"""A fitted forest stored flat, and its prediction on raw or binned data.

Every tree's nodes are appended to the same arrays (see
:mod:`fastscratch.kernels.tree_predict_numpy` for the layout), children
indices made absolute, so one kernel call predicts all trees for a block of
rows while the arrays stay in cache. Raw data are predicted from the forest's
*complete layout* (each tree as the complete binary tree of its depth, built
once and cached; ``predict_complete``) when no tree is deeper than
``COMPLETE_MAX_DEPTH``, else from the node arrays (``predict_raw``); both give
the same bits.
"""

import numpy as np
import scipy.sparse as sp

from .._backend import resolve_kernel
from ..kernels import tree_predict_numpy

NODE_FIELDS = ("feature", "threshold", "bin", "default_left", "left", "right", "value",
               "gain", "cover")
_DTYPES = {"feature": np.intp, "threshold": np.float32, "bin": np.intp,
           "default_left": np.uint8, "left": np.intp, "right": np.intp, "value": np.float32,
           "gain": np.float32, "cover": np.float32}


class Forest:
    """The trees of a boosting model, flat.

    Attributes
    ----------
    nodes : dict of ndarray
        One array per field of ``NODE_FIELDS``, over the nodes of all trees.
    tree_roots : ndarray of intp
        Index of each tree's root node.
    tree_groups : ndarray of intp
        Output column of each tree (its class in multiclass models).
    n_groups : int
    """

    def __init__(self, n_groups=1):
        self.n_groups = n_groups
        self._chunks = {name: [] for name in NODE_FIELDS}
        self._roots = []
        self._groups = []
        self._n_nodes = 0
        self._frozen = None
        self._complete = None
        self._categories = {}  # absolute node id -> uint8 mask of the categories going right

    def add_tree(self, tree, thresholds, group=0):
        """Append a tree from :meth:`TreeGrower.grow` with raw ``thresholds`` per node."""
        offset = self._n_nodes
        n = tree["feature"].shape[0]
        internal = tree["left"] >= 0
        if np.any(tree["right"][internal] != tree["left"][internal] + 1):
            raise ValueError("a node's right child must follow its left child (right == left + 1).")
        for name in NODE_FIELDS:
            if name == "threshold":
                values = thresholds
            elif name in ("left", "right"):
                values = np.where(tree[name] >= 0, tree[name] + offset, -1)
            else:
                values = tree[name]
            self._chunks[name].append(np.asarray(values, dtype=_DTYPES[name]))
        for i, mask in enumerate(tree.get("categories") or ()):
            if mask is not None:
                self.__dict__.setdefault("_categories", {})[offset + i] = np.asarray(
                    mask, dtype=np.uint8)
        self._roots.append(offset)
        self._groups.append(group)
        self._n_nodes += n
        self._frozen = None
        self._complete = None
        self._categorical = None

    def __getstate__(self):
        """The trees only: the layouts derived from them for prediction (the complete
        layout, the category table, the sparse predict's renumbered copy) are rebuilt
        on first use, so a pickled model is not larger for having predicted."""
        state = self.__dict__.copy()
        for derived in ("_complete", "_categorical", "_compact"):
            state[derived] = None
        return state

    def copy(self):
        """A forest with the same trees, to which trees can be added independently."""
        nodes, roots, groups = self.arrays()
        other = Forest(n_groups=self.n_groups)
        other._chunks = {name: [nodes[name].copy()] for name in NODE_FIELDS}
        other._roots = roots.tolist()
        other._groups = groups.tolist()
        other._n_nodes = int(nodes["feature"].shape[0])
        other._categories = {node: mask.copy()
                             for node, mask in getattr(self, "_categories", {}).items()}
        return other

    def _split_features_only(self):
        """``(forest, used)``: the features the splits test (sorted), and this forest with
        its features renumbered to their positions in ``used`` (cached per tree count).

        A sparse matrix is predicted from its ``used`` columns only: wide data
        (text, one-hot) densify a block of rows that much narrower.
        """
        cached = getattr(self, "_compact", None)
        if cached is None or cached[0] != self.n_trees:
            nodes, _, _ = self.arrays()
            split = nodes["left"] >= 0
            used = np.unique(nodes["feature"][split]).astype(np.intp)
            if used.shape[0] == 0:  # leaves only: any one column will do
                used = np.zeros(1, dtype=np.intp)
            compact = self.copy()
            compact._frozen = None
            features = compact._chunks["feature"][0]
            features[split] = np.searchsorted(used, features[split])
            cached = self._compact = (self.n_trees, used, compact)
        return cached[2], cached[1]

    @property
    def n_trees(self):
        return len(self._roots)

    def arrays(self):
        """The flat arrays (concatenated once, then cached)."""
        if self._frozen is None:
            nodes = {name: (np.concatenate(chunks) if chunks else np.empty(0, _DTYPES[name]))
                     for name, chunks in self._chunks.items()}
            self._chunks = {name: [nodes[name]] for name in NODE_FIELDS}
            self._frozen = (nodes, np.array(self._roots, dtype=np.intp),
                            np.array(self._groups, dtype=np.intp))
        return self._frozen

    @property
    def has_categorical(self):
        """Whether some node splits on a category set."""
        return bool(getattr(self, "_categories", None))

    def node_categories(self, node):
        """The categories (sorted codes) that go right at ``node``; None for a numeric split."""
        mask = getattr(self, "_categories", {}).get(int(node))
        return None if mask is None else np.flatnonzero(mask)

    def categorical(self):
        """``(node_cat, cat_sets)``: per node the row of ``cat_sets`` (uint8, (m, width)) with
        its category set, -1 for numeric splits and leaves (cached)."""
        if getattr(self, "_categorical", None) is None:
            categories = getattr(self, "_categories", {})
            node_cat = np.full(self._n_nodes, -1, dtype=np.intp)
            width = max([mask.shape[0] for mask in categories.values()] + [1])
            cat_sets = np.zeros((max(len(categories), 1), width), dtype=np.uint8)
            for row, (node, mask) in enumerate(sorted(categories.items())):
                node_cat[node] = row
                cat_sets[row, :mask.shape[0]] = mask
            self._categorical = (node_cat, cat_sets)
        return self._categorical

    def tree_slice(self, start, stop):
        """Roots and groups of trees ``start:stop``."""
        _, roots, groups = self.arrays()
        return roots[start:stop], groups[start:stop]

    def complete(self):
        """The trees in the complete layout (:func:`~fastscratch.kernels.tree_predict_numpy.
        complete_layout`), built once and cached; False when a tree is too deep for it."""
        if self.has_categorical:  # the layout holds thresholds only
            return False
        if getattr(self, "_complete", None) is None:  # models pickled before the layout
            nodes, roots, _ = self.arrays()
            layout = tree_predict_numpy.complete_layout(
                nodes["feature"], nodes["threshold"], nodes["default_left"], nodes["left"],
                nodes["right"], nodes["value"], roots, tree_predict_numpy.COMPLETE_MAX_DEPTH)
            self._complete = False if layout is None else layout
        return self._complete

    def predict_raw(self, X, base_margin, backend="auto", n_threads=1, tree_range=None,
                    complete=True):
        """Margins (n, n_groups) float64 of raw data ``X`` (float32).

        Through the complete layout when every tree fits it, unless ``complete`` is
        False: then, as for deeper trees, through the node arrays (the same bits).
        ``X`` may be a CSR matrix (canonical, float32): absent entries are missing,
        and it is predicted a block of densified rows at a time.
        """
        if sp.issparse(X):
            from .binning import dense_rows, sparse_block_rows

            forest, used = self._split_features_only()
            X = X[:, used] if used.shape[0] < X.shape[1] else X  # O(nnz), never dense
            out = np.empty((X.shape[0], self.n_groups), dtype=np.float64)
            step = sparse_block_rows(X.shape[1])
            for first in range(0, X.shape[0], step):
                block = dense_rows(X, first, first + step)
                out[first:first + block.shape[0]] = forest.predict_raw(
                    block, base_margin, backend, n_threads, tree_range, complete)
            return out
        nodes, roots, groups = self.arrays()
        trees = slice(None) if tree_range is None else slice(tree_range[0], tree_range[1])
        out = np.empty((X.shape[0], self.n_groups), dtype=np.float64)
        out[:] = np.asarray(base_margin, dtype=np.float64)
        layout = self.complete() if complete else False
        if layout:
            kernel, _ = resolve_kernel("predict_complete", backend)
            kernel(X, layout["node_split"], layout["node_threshold"], layout["leaf_value"],
                   layout["tree_node_starts"][trees], layout["tree_leaf_starts"][trees],
                   layout["tree_depths"][trees], groups[trees], out, n_threads)
            return out
        if self.has_categorical:
            kernel, _ = resolve_kernel("predict_raw_categorical", backend)
            kernel(X, nodes["feature"], nodes["threshold"], nodes["default_left"], nodes["left"],
                   nodes["right"], nodes["value"], *self.categorical(), roots[trees],
                   groups[trees], out, n_threads)
            return out
        kernel, _ = resolve_kernel("predict_raw", backend)
        kernel(X, nodes["feature"], nodes["threshold"], nodes["default_left"], nodes["left"],
               nodes["right"], nodes["value"], roots[trees], groups[trees], out, n_threads)
        return out

    def predict_binned(self, binned, missing_bin, base_margin, backend="auto", n_threads=1):
        """Margins (n, n_groups) float64 of binned data."""
        nodes, roots, groups = self.arrays()
        out = np.empty((binned.shape[0], self.n_groups), dtype=np.float64)
        out[:] = np.asarray(base_margin, dtype=np.float64)
        if self.has_categorical:
            # Bin c of a categorical feature is category c: its codes are the raw values.
            return self._predict_binned_categorical(binned, missing_bin, out)
        kernel, _ = resolve_kernel("predict_binned", backend)
        kernel(binned, nodes["feature"], nodes["bin"], nodes["default_left"], nodes["left"],
               nodes["right"], nodes["value"], missing_bin, roots, groups, out, n_threads)
        return out

    def _predict_binned_categorical(self, binned, missing_bin, out):
        """:meth:`predict_binned` of a forest with categorical splits (NumPy; used by fits with
        row subsampling only)."""
        nodes, roots, groups = self.arrays()
        node_cat, cat_sets = self.categorical()

        def go_left_of(rows, features, current):
            b = binned[rows, features].astype(np.intp)
            cat = node_cat[current]
            in_set = (b < cat_sets.shape[1]) & (
                cat_sets[np.maximum(cat, 0), np.minimum(b, cat_sets.shape[1] - 1)] != 0)
            goes_left = np.where(cat >= 0, ~in_set, b <= nodes["bin"][current])
            return np.where(b == missing_bin[features], nodes["default_left"][current] != 0,
                            goes_left)

        for root, group in zip(roots, groups):
            leaves = tree_predict_numpy._leaves(go_left_of, nodes["feature"], nodes["left"],
                                                nodes["right"], root, binned.shape[0])
            out[:, group] += nodes["value"][leaves].astype(np.float64)
        return out
