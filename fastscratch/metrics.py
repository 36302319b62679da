"""Forecast error metrics: RMSE, MAE and MAPE.

Thin wrappers over scikit-learn's own metrics (``root_mean_squared_error``,
``mean_absolute_error``, ``mean_absolute_percentage_error``), so the numbers
are the ones a scikit-learn user gets; they accept pandas Series and take the
same ``sample_weight`` and ``multioutput`` arguments.
"""

from sklearn.metrics import mean_absolute_error as _mean_absolute_error
from sklearn.metrics import mean_absolute_percentage_error as _mean_absolute_percentage_error
from sklearn.metrics import root_mean_squared_error as _root_mean_squared_error

__all__ = ["rmse", "mae", "mape"]


def rmse(y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"):
    r"""Root mean squared error, :math:`\sqrt{\frac{1}{n}\sum_t (y_t - \hat y_t)^2}`.

    This is :func:`sklearn.metrics.root_mean_squared_error`.
    """
    return _root_mean_squared_error(y_true, y_pred, sample_weight=sample_weight, multioutput=multioutput)


def mae(y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"):
    r"""Mean absolute error, :math:`\frac{1}{n}\sum_t |y_t - \hat y_t|`.

    This is :func:`sklearn.metrics.mean_absolute_error`.
    """
    return _mean_absolute_error(y_true, y_pred, sample_weight=sample_weight, multioutput=multioutput)


def mape(y_true, y_pred, *, sample_weight=None, multioutput="uniform_average"):
    r"""Mean absolute percentage error as a fraction,
    :math:`\frac{1}{n}\sum_t |y_t - \hat y_t| / \max(|y_t|, \epsilon)`.

    This is :func:`sklearn.metrics.mean_absolute_percentage_error`: it returns
    0.05 for 5 % (multiply by 100 for percent), and divides by a tiny
    :math:`\epsilon` instead of zero, so a zero in ``y_true`` gives a huge, not an
    infinite, value.
    """
    return _mean_absolute_percentage_error(y_true, y_pred, sample_weight=sample_weight,
                                           multioutput=multioutput)
