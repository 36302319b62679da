"""Additive seasonal exponential smoothing (level and season, no trend): the "ES" of the
ES-RNN-style hybrid in :class:`~fastscratch.timeseries.lstm.LSTMForecaster`.

The recursions are those of ``statsmodels.tsa.holtwinters.ExponentialSmoothing``
with ``trend=None, seasonal="add"`` and ``initialization_method="simple"``, so
the smoothed states can be checked against statsmodels (tests/test_lstm_recipe.py).
"""

import numpy as np

__all__ = ["SeasonalSmoother", "seasonal_smoothing_states"]


def seasonal_smoothing_states(y, alpha, gamma, m):
    r"""Filtered level and season of additive seasonal exponential smoothing.

    Parameters
    ----------
    y : ndarray of shape (n,)
        The series, ``n >= m``.
    alpha, gamma : float in [0, 1]
        Smoothing of the level and of the season.
    m : int
        Seasonal period.

    Returns
    -------
    level : ndarray of shape (n,)
        :math:`\ell_t`, the level after observing :math:`y_t`.
    season : ndarray of shape (n + m,)
        ``season[j]`` is :math:`s_{j - m}`: the first ``m`` entries are the
        initial season, ``season[t + m]`` the season index after observing
        :math:`y_t`.
    errors : ndarray of shape (n,)
        One-step errors :math:`y_t - (\ell_{t-1} + s_{t-m})`.

    Notes
    -----
    Initial states from the first season (statsmodels' "simple" start):
    :math:`\ell_{-1} = \frac1m \sum_{j<m} y_j`, :math:`s_{j-m} = y_j - \ell_{-1}`.
    Then, for :math:`t = 0 \dots n-1`:

    .. math::

        \ell_t &= \alpha (y_t - s_{t-m}) + (1 - \alpha)\, \ell_{t-1} \\
        s_t &= \gamma (y_t - \ell_{t-1}) + (1 - \gamma)\, s_{t-m}

    Every state at time :math:`t` depends on :math:`y_0 \dots y_t` only.
    """
    y = np.asarray(y, dtype=np.float64)
    n = y.shape[0]
    level = np.empty(n)
    season = np.empty(n + m)
    previous = y[:m].mean()
    season[:m] = y[:m] - previous
    errors = np.empty(n)
    for t in range(n):
        s_old = season[t]
        errors[t] = y[t] - previous - s_old
        current = alpha * (y[t] - s_old) + (1.0 - alpha) * previous
        season[t + m] = gamma * (y[t] - previous) + (1.0 - gamma) * s_old
        level[t] = previous = current
    return level, season, errors


class SeasonalSmoother:
    """Additive seasonal exponential smoothing with the two smoothing constants fitted by
    least squares of the one-step errors (see :func:`seasonal_smoothing_states`).

    Parameters
    ----------
    m : int
        Seasonal period.

    Attributes (after :meth:`fit`)
    ------------------------------
    alpha_, gamma_ : float
        Smoothing of the level and of the season, in [0, 1], minimising
        :math:`\\sum_t e_t^2` over the fitted values (L-BFGS-B from a few starts).
    """

    def __init__(self, m=12):
        self.m = m

    def fit(self, y):
        from scipy.optimize import minimize

        y = np.asarray(y, dtype=np.float64)
        m = int(self.m)
        if y.shape[0] < 2 * m:
            raise ValueError(f"seasonal smoothing needs at least two seasons (2 * seasonal_period = {2 * m} "
                             f"values), got {y.shape[0]}; use a longer series or deseasonalize=None.")
        scale = y.std() or 1.0

        def sse(params):
            errors = seasonal_smoothing_states(y, params[0], params[1], m)[2]
            return float(np.dot(errors, errors)) / (scale * scale)

        best = None
        for start in ((0.5, 0.1), (0.2, 0.5), (0.9, 0.05)):
            result = minimize(sse, np.array(start), method="L-BFGS-B", bounds=[(0.0, 1.0), (0.0, 1.0)])
            if best is None or result.fun < best.fun:
                best = result
        self.alpha_, self.gamma_ = (float(v) for v in np.clip(best.x, 0.0, 1.0))
        return self

    def states(self, y):
        """(level, season, errors) of ``y`` with the fitted constants; causal, so the states of
        a longer series agree with those of its first part."""
        return seasonal_smoothing_states(y, self.alpha_, self.gamma_, int(self.m))
