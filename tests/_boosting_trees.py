"""Our fitted trees against xgboost's, node by node (shared by the boosting tests)."""

import json

import numpy as np
from numpy.testing import assert_allclose


def compare_trees(ours, reference, rtol=1e-6, atol=1e-7):
    """Walk xgboost's JSON dump and our flat forest side by side (same node ids).

    Splits must agree exactly (feature, float32 threshold, children, missing
    direction); leaf values to ``rtol`` / ``atol``. Returns the number of splits.
    """
    dumps = [json.loads(t) for t in reference.get_booster().get_dump(dump_format="json")]
    nodes, roots, _ = ours._forest.arrays()
    assert len(dumps) == roots.shape[0]
    n_splits = 0
    for root, dump in zip(roots, dumps):
        stack = [dump]
        while stack:
            node = stack.pop()
            k = root + node["nodeid"]
            if "leaf" in node:
                assert nodes["left"][k] == -1, f"node {node['nodeid']} should be a leaf"
                assert_allclose(nodes["value"][k], node["leaf"], rtol=rtol, atol=atol)
            else:
                assert nodes["left"][k] != -1, f"node {node['nodeid']} should be split"
                assert nodes["feature"][k] == int(node["split"][1:])
                assert nodes["threshold"][k] == np.float32(node["split_condition"])
                assert nodes["left"][k] == root + node["yes"]
                assert nodes["default_left"][k] == (node["missing"] == node["yes"])
                n_splits += 1
                stack += node["children"]
    return n_splits
