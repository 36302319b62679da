"""Gradient boosting from scratch: xgboost's ``hist`` algorithm (pygbm's layout).

- :mod:`.binning`: quantile cut points and uint8 bin codes;
- :mod:`.loss`: gradients, hessians and base scores of the objectives;
- :mod:`.grower`: one tree, level by level, from histograms;
- :mod:`.predictor`: the fitted forest, flat, and its prediction;
- :mod:`.training`: the boosting loop (rounds, margins, eval sets, early stopping);
- :mod:`.sklearn`: :class:`XGBRegressor` and :class:`XGBClassifier`.

The hot loops are kernels of :mod:`fastscratch.kernels` (families
``histogram``, ``splitting``, ``partition``, ``tree_predict``).
"""

from .sklearn import XGBClassifier, XGBRegressor

__all__ = ["XGBClassifier", "XGBRegressor"]
