r"""Multi-label classification: one ``binary:logistic`` output per label, as xgboost.

``XGBClassifier.fit(X, Y)`` with ``Y`` a 0/1 indicator matrix of shape
``(n_samples, n_labels)`` grows, every round, one tree per label (xgboost's
default ``multi_strategy="one_output_per_tree"``): label :math:`t` has its own
margin :math:`F_t(x) = F_{0,t} + \sum_r \eta f_{r,t}(x)` and its own logistic
loss, independent of the other labels:

.. math::

    p_{it} = \sigma(F_t(x_i)), \qquad g_{it} = w_i (p_{it} - y_{it}), \qquad
    h_{it} = w_i \max(p_{it}(1 - p_{it}), 10^{-16}),

with base score :math:`F_{0,t}` the logit of label :math:`t`'s (weighted)
positive rate. ``predict_proba`` gives :math:`p_{it}` (shape ``(n, n_labels)``)
and ``predict`` :math:`[p_{it} > 0.5]`, as xgboost's. Evaluation metrics
average over every (row, label) entry, each row weighted by its weight.
"""

import numpy as np

from .loss import sigmoid


class MultiLabel:
    """``n_labels`` independent copies of the binary objective ``binary`` (one group each).

    Parameters
    ----------
    binary : BinaryLogistic
        The per-label objective (``n_groups == 1``).
    n_labels : int
    """

    def __init__(self, binary, n_labels):
        self.binary = binary
        self.n_groups = int(n_labels)
        self.name = binary.name
        self.default_metric = binary.default_metric

    def base_score(self, y, sample_weight):
        """Each label's base score from its column of ``y`` (n, n_labels)."""
        return np.array([self.binary.base_score(y[:, t], sample_weight)
                         for t in range(self.n_groups)], dtype=np.float32)

    def score_to_margin(self, base_score):
        scores = np.broadcast_to(np.asarray(base_score, dtype=np.float64), (self.n_groups,))
        return np.array([self.binary.score_to_margin(b) for b in scores], dtype=np.float32)

    def gradients(self, y, raw, sample_weight, out_gradients, out_hessians):
        """``y``: (n, n_labels); ``raw``, ``out_gradients``, ``out_hessians``: (n_labels, n)."""
        for t in range(self.n_groups):
            self.binary.gradients(np.ascontiguousarray(y[:, t]), raw[t], sample_weight,
                                  out_gradients[t], out_hessians[t])

    def loss(self, y, raw, sample_weight=None):
        """Mean over the labels of each label's loss; ``raw`` is (n_labels, n)."""
        return float(np.mean([self.binary.loss(y[:, t], raw[t], sample_weight)
                              for t in range(self.n_groups)]))

    def transform(self, raw):
        """Probabilities (n, n_labels) from margins (n, n_labels)."""
        return sigmoid(raw)


def per_entry(metric):
    """``metric(y, prediction, weight)`` over every (row, label) entry of 2-D arrays."""
    def function(y, prediction, weight):
        n_labels = y.shape[1]
        return metric(np.ravel(y), np.ravel(prediction),
                      None if weight is None else np.repeat(weight, n_labels))
    return function
