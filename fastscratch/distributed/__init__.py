r"""The same estimators on Dask, for data that outgrow one machine (extra ``[dask]``).

Every class here is a subclass of the in-memory estimator of the same name,
with the same parameters and fitted attributes. Given NumPy (or pandas) data
it behaves exactly as its parent; given a ``dask.array.Array`` or a
``dask.dataframe`` it runs on Dask, block by block, on whatever scheduler is
active (a ``dask.distributed.Client`` on a ``LocalCluster`` or on a real
cluster: no code change), and gives the same answer as the in-memory fit:

- prediction (:class:`ParallelPostFit`, dask-ml's wrapper, for *any* fitted
  fastscratch estimator, and the ``predict*`` / ``transform`` methods of the
  classes below): one task per block of rows, the model shipped once;
- naive Bayes (:class:`GaussianNB`, :class:`MultinomialNB`,
  :class:`BernoulliNB`, :class:`ComplementNB`, :class:`CategoricalNB`):
  per-block sufficient statistics merged by a tree reduction;
- :class:`KMeans`: Lloyd iterations as a map (our ``kmeans_lloyd_iter`` kernel on
  each block: labels, per-cluster weighted sums and weights, inertia) and a
  tree reduction; k-means|| initialisation (Bahmani et al., 2012);
- :class:`KNeighborsClassifier` / :class:`KNeighborsRegressor`: the training
  set stays partitioned on the workers; each partition answers with its local
  top-k, merged into the global top-k (ties by global index);
- :class:`XGBRegressor` / :class:`XGBClassifier`: data-parallel boosting, the
  workers' per-node histograms summed, each split chosen once and broadcast.

Layout: one module per family, as the in-memory estimators
(``distributed/naive_bayes.py``, ``cluster.py``, ``neighbors.py``,
``boosting.py``), and ``_common.py`` for the Dask input checks, tree
reductions and block-wise prediction that they share.

Kernel threads: Dask runs one task per worker thread, so each task runs our
kernels on one thread unless the estimator's ``n_jobs`` says otherwise.

Progress: use Dask's own diagnostics (the distributed dashboard, or
``dask.diagnostics.ProgressBar`` with the local schedulers).

Notes
-----
*Tree reduction.* Partial results :math:`r_1, \dots, r_B` of the blocks are
combined ``split_every`` at a time, :math:`\lceil \log_s B \rceil` levels,
so no task receives more than ``split_every`` partial results.

*Gaussian statistics* are merged with Chan, Golub and LeVeque's pairwise rule,
the one :meth:`fastscratch.GaussianNB.partial_fit` uses: for two parts
:math:`(n_a, \bar x_a, M_a)` and :math:`(n_b, \bar x_b, M_b)` with
:math:`M = n s^2` the sum of squared deviations,

.. math::

    n = n_a + n_b, \quad \bar x = \bar x_a + \frac{n_b}{n} (\bar x_b - \bar x_a), \quad
    M = M_a + M_b + \frac{n_a n_b}{n} (\bar x_b - \bar x_a)^2 ,

each part's :math:`(\bar x, M)` being computed in two passes over its block,
so no sum of squares ever cancels.

*k-means||* draws a first centre, then for ``init_max_iter`` rounds keeps
every sample independently with probability
:math:`\min(1, \ell\, w_i D(x_i)^2 / \phi)` (:math:`\ell` =
``oversampling_factor * n_clusters``, :math:`\phi = \sum_i w_i D(x_i)^2`,
:math:`D` the distance to the nearest candidate so far); the candidates,
weighted by the weight of the samples nearest to them, are then clustered
into ``n_clusters`` centres in memory by :class:`fastscratch.KMeans`
(k-means++).
"""

from ._common import SPLIT_EVERY, ParallelPostFit, is_dask_collection
from .boosting import XGBClassifier, XGBRegressor
from .cluster import KMeans
from .naive_bayes import BernoulliNB, CategoricalNB, ComplementNB, GaussianNB, MultinomialNB
from .neighbors import KNeighborsClassifier, KNeighborsRegressor

__all__ = [
    "ParallelPostFit",
    "GaussianNB",
    "MultinomialNB",
    "BernoulliNB",
    "ComplementNB",
    "CategoricalNB",
    "KMeans",
    "KNeighborsClassifier",
    "KNeighborsRegressor",
    "XGBRegressor",
    "XGBClassifier",
    "SPLIT_EVERY",
    "is_dask_collection",
]
