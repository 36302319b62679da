"""fastscratch: classic machine-learning models written from the math, made fast.

Estimators follow scikit-learn's API (the boosting models follow xgboost's
parameters). Every hot loop exists as a readable NumPy reference, a Numba
kernel and a Cython kernel (:mod:`fastscratch.kernels`); pick one with an
estimator's ``backend`` parameter, :func:`set_config`, :func:`config_context`
or the ``FASTSCRATCH_BACKEND`` environment variable.

Estimators are imported on first use, so ``import fastscratch`` stays light
(no Numba compilation, no PyTorch import).
"""

import importlib

from ._config import config_context, get_config, set_config

__version__ = "0.1.0"

# Public name -> module that defines it (imported lazily by __getattr__).
_LAZY_EXPORTS = {
    "KNeighborsClassifier": "fastscratch.neighbors",
    "KNeighborsRegressor": "fastscratch.neighbors",
    "NearestNeighbors": "fastscratch.neighbors",
    "KMeans": "fastscratch.cluster",
    "GaussianNB": "fastscratch.naive_bayes",
    "MultinomialNB": "fastscratch.naive_bayes",
    "BernoulliNB": "fastscratch.naive_bayes",
    "ComplementNB": "fastscratch.naive_bayes",
    "CategoricalNB": "fastscratch.naive_bayes",
    "XGBRegressor": "fastscratch.boosting",
    "XGBClassifier": "fastscratch.boosting",
    "ARIMA": "fastscratch.timeseries.arima",
    "SARIMAX": "fastscratch.timeseries.arima",
    "auto_arima": "fastscratch.timeseries.arima",
    "LSTMForecaster": "fastscratch.timeseries.lstm",
    "UNet": "fastscratch.segmentation.unet",
}

__all__ = ["__version__", "config_context", "get_config", "set_config", *_LAZY_EXPORTS]


def __getattr__(name):
    if name == "datasets":  # fastscratch.datasets.load_... after a plain `import fastscratch`
        return importlib.import_module("fastscratch.datasets")
    module_name = _LAZY_EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'fastscratch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
