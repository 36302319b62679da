r"""Results of a fitted :class:`~fastscratch.timeseries.arima.ARIMA`: prediction and inference.

- Prediction (:meth:`ARIMAResults.get_prediction`): in-sample one-step,
  dynamic from a point, and out of sample, all from one pass of the
  augmented-state Kalman filter (``arima_kalman_filter_missing``) in which
  the observations that a prediction may not use are marked missing, which
  is how statsmodels computes dynamic predictions and forecasts.
- Inference: the covariance of the estimates as statsmodels computes it, at
  the constrained parameters with sigma2 as a parameter (not concentrated):

  .. math::

      \widehat{\mathrm{Cov}}_{\mathrm{opg}} = \Bigl(\sum_t s_t s_t^\top\Bigr)^{-1},
      \quad s_t = \frac{\partial \ell_t}{\partial \vartheta}, \qquad
      \widehat{\mathrm{Cov}}_{\mathrm{approx}} =
      -\Bigl(\frac{\partial^2 \ell}{\partial \vartheta \partial \vartheta^\top}\Bigr)^{-1},

  with :math:`\ell_t = -\tfrac12 (\log 2\pi\sigma^2 F_t + v_t^2 / (\sigma^2 F_t))`
  the log-likelihood of observation t (zero where y is missing); the scores
  and the Hessian by central finite differences (statsmodels uses the
  complex step).
"""

import numbers

import numpy as np
from scipy import stats

from ..kernels.arima_numpy import stationary_cov

__all__ = ["ARIMAResults", "PredictionResults"]

# statsmodels' approximate diffuse prior variance (KalmanFilter.initial_variance).
_DIFFUSE_VARIANCE = 1e6


class PredictionResults:
    """Predictions with their variances: ``predicted_mean``, ``var_pred_mean``, ``conf_int``.

    ``mean`` and ``variance`` are in the units of the series divided by
    ``scale`` (see ``arima._DataScales``); standard errors and intervals are
    scaled as standard deviations, so they stay finite where the variance
    itself (``scale**2`` times larger) does not fit in a float64.
    """

    def __init__(self, mean, variance, index, name, scale=1.0):
        self._mean = mean * scale
        self._variance = variance
        self._scale = scale
        self._index = index
        self._name = name

    def _wrap(self, values, name):
        if self._index is None:
            return values
        import pandas as pd

        return pd.Series(values, index=self._index, name=name)

    @property
    def predicted_mean(self):
        return self._wrap(self._mean.copy(), "predicted_mean")

    @property
    def var_pred_mean(self):
        return self._wrap(self._variance * self._scale * self._scale, "var_pred_mean")

    @property
    def se_mean(self):
        return self._wrap(np.sqrt(self._variance) * self._scale, "se_mean")

    def conf_int(self, alpha=0.05):
        """Normal (1 - alpha) intervals: ndarray (steps, 2), or a DataFrame for pandas input."""
        _check_alpha(alpha)
        z = stats.norm.ppf(1 - alpha / 2)
        half = z * np.sqrt(self._variance) * self._scale
        bounds = np.column_stack([self._mean - half, self._mean + half])
        if self._index is None:
            return bounds
        import pandas as pd

        label = self._name if self._name is not None else "y"
        return pd.DataFrame(bounds, index=self._index, columns=[f"lower {label}", f"upper {label}"])

    def summary_frame(self, alpha=0.05):
        import pandas as pd

        bounds = np.asarray(self.conf_int(alpha))
        return pd.DataFrame({"mean": self._mean,
                             "mean_se": np.sqrt(self._variance) * self._scale,
                             "mean_ci_lower": bounds[:, 0], "mean_ci_upper": bounds[:, 1]},
                            index=self._index)


def _check_alpha(alpha):
    if not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}.")


class ARIMAResults:
    """A fitted :class:`ARIMA`: parameters, likelihood, inference, residuals and predictions.

    Attributes
    ----------
    params : pandas.Series
        Trend, regressors, ar.L*, ma.L*, ar.S.L*, ma.S.L*, sigma2
        (statsmodels' names and order).
    llf, aic, bic, hqic, aicc : float
        Log-likelihood and information criteria, with statsmodels' definitions
        (``nobs_effective = n - d - sD`` observations, ``df_model`` parameters
        counting sigma2).
    bse, tvalues (= zvalues), pvalues : pandas.Series
        Standard errors, z statistics and two-sided normal p-values from the
        covariance ``cov_type`` ("opg" by default, as statsmodels).
    order, seasonal_order, trend : the model's specification.
    converged : bool
        The optimiser reported success and the result is finite.
    backend : str
        The kernel backend that ran.
    """

    def __init__(self, model, spec, lik, params, llf, method, converged, index, name,
                 cov_type="opg", scales=None):
        import pandas as pd

        from .arima import _DataScales

        if cov_type not in ("opg", "approx", "none"):
            raise ValueError(f"cov_type must be 'opg', 'approx' or 'none', got {cov_type!r}.")
        self.model = model
        self._spec = spec
        self._lik = lik
        # ``lik`` holds the series divided by scales.y (regressors by scales.exog), and
        # ``params`` and ``llf`` as given are in those units; the public ones are the
        # original series' (arima._DataScales).
        self._scales = _DataScales() if scales is None else scales
        self._internal = np.asarray(params, dtype=np.float64)
        self._param_scales = self._scales.param_scales(spec)
        with np.errstate(all="ignore"):
            public = self._internal * self._param_scales
        self.params = pd.Series(public, index=spec.param_names, name="params")
        self._llf_shift = -lik.n_obs * np.log(self._scales.y)
        self.llf = llf + self._llf_shift
        self.method = method
        self.converged = converged
        self.order = (spec.p, spec.d, spec.q)
        self.seasonal_order = (spec.P, spec.D, spec.Q, spec.s)
        self.trend = spec.trend
        self.backend = lik.backend
        self.nobs = lik.n
        self.nobs_effective = lik.n_eff
        self.df_model = spec.k_params
        self.cov_type = cov_type
        self.exog_names = list(spec.exog_names)
        self._index = index
        self._name = name
        self._filtered = None
        self._cov = {}

    # -- information criteria -----------------------------------------------------------
    @property
    def aic(self):
        return -2.0 * self.llf + 2.0 * self.df_model

    @property
    def bic(self):
        return -2.0 * self.llf + self.df_model * np.log(self.nobs_effective)

    @property
    def hqic(self):
        return -2.0 * self.llf + 2.0 * self.df_model * np.log(np.log(self.nobs_effective))

    @property
    def aicc(self):
        k, n = self.df_model, self.nobs_effective
        if n - k - 1 <= 0:
            return np.inf
        return self.aic + 2.0 * k * (k + 1) / (n - k - 1)

    @property
    def sigma2(self):
        return float(self.params.iloc[-1])

    # -- filter output (computed once, on first use) ------------------------------------
    def _filter_output(self):
        if self._filtered is None:
            params = self._internal[:-1]
            v, F, _, _ = self._lik.filter(params)
            errors, variances = self._presample(params)
            self._filtered = (np.concatenate([errors, v]),
                              np.concatenate([variances, F * self._internal[-1]]))
        return self._filtered

    def _diffuse_layout(self, phi, theta):
        """statsmodels' SARIMAX state layout: (Z, T, R) with the differencing states first.

        States: d integration states, D blocks of s seasonal states (a cyclic
        shift), then the m ARMA states. Used for the first d + sD one-step
        errors, whose values depend on how the approximate diffuse prior is
        laid out.
        """
        spec = self._spec
        d, D, s, m = spec.d, spec.D, spec.s, spec.m
        k = d + s * D
        seasonal_row = np.zeros(s)
        if s:
            seasonal_row[-1] = 1.0
        design = np.concatenate([np.ones(d), np.tile(seasonal_row, D), [1.0], np.zeros(m - 1)])
        transition = np.zeros((k + m, k + m))
        transition[k:, k] = phi
        transition[k:k + m - 1, k + 1:] += np.eye(m - 1)
        for block in range(D):
            start, stop = d + block * s, d + (block + 1) * s
            transition[start + 1:stop, start:stop - 1] = np.eye(s - 1)
            transition[start, stop - 1] = 1.0
            if block < D - 1:
                transition[start, stop + s - 1] = 1.0
            transition[start, k] = 1.0
        if d:
            transition[np.triu_indices(d)] = 1.0
            transition[:d, d:k] = np.tile(seasonal_row, D)
            transition[:d, k] = 1.0
        selection = np.concatenate([np.zeros(k), [1.0], theta])
        return design, transition, selection

    def _presample(self, params):
        """One-step errors and their variances for the first d + sD observations.

        statsmodels gives its differencing states the approximate diffuse
        prior N(0, 1e6 I) (and the ARMA states their stationary distribution)
        and runs the filter on the full state; the dense filter below does the
        same for the first d + sD observations only (after them, the
        differenced-series filter of the kernels is exact).
        """
        spec = self._spec
        k, m = spec.n_diff, spec.m
        if k == 0:
            return np.zeros(0), np.zeros(0)
        sigma2 = self._internal[-1]
        _, phi, theta, _ = self._lik.pieces(params)
        design, transition, selection = self._diffuse_layout(phi, theta)
        u = self._lik.series(params)
        c = self._lik.trend @ params[:spec.k_trend] if spec.k_trend else np.zeros(self.nobs)
        a = np.concatenate([np.zeros(k), _stationary_mean(phi, c[0])])
        P = np.zeros((m + k, m + k))
        P[k:, k:] = sigma2 * stationary_cov(phi, theta)
        P[:k, :k] = _DIFFUSE_VARIANCE * np.eye(k)
        noise = sigma2 * np.outer(selection, selection)
        errors = np.empty(k)
        variances = np.empty(k)
        for t in range(k):
            v = u[t] - design @ a
            F = design @ P @ design
            gain = P @ design / F
            errors[t] = v
            variances[t] = F
            a = transition @ (a + gain * v)
            a[k] += c[t]
            P = transition @ (P - np.outer(gain, design @ P)) @ transition.T + noise
        return errors, variances

    @property
    def resid(self):
        """One-step prediction errors (NaN where y is missing), as statsmodels' ``resid``."""
        return self._wrap(self._filter_output()[0] * self._scales.y, "resid")

    @property
    def fittedvalues(self):
        """One-step predictions of y (also where y is missing), as statsmodels'."""
        values = (self._lik.y - self._filter_output()[0]) * self._scales.y
        gaps = np.isnan(values)
        if gaps.any():
            values[gaps] = np.asarray(self.get_prediction().predicted_mean)[gaps]
        return self._wrap(values, "fittedvalues")

    @property
    def standardized_resid(self):
        """Errors over their standard deviations, from observation d + sD on."""
        errors, variances = self._filter_output()
        k = self._spec.n_diff
        return errors[k:] / np.sqrt(variances[k:])

    def _wrap(self, values, name):
        if self._index is None:
            return values
        import pandas as pd

        return pd.Series(values, index=self._index, name=name)

    # -- indexes ------------------------------------------------------------------------
    def _extended_index(self, stop):
        """Labels of positions 0..stop-1, continuing the series' index past its end."""
        import pandas as pd

        index = self._index
        n = self.nobs
        if index is None:
            return None
        if stop <= n:
            return index[:stop]
        if isinstance(index, pd.PeriodIndex):
            return pd.period_range(start=index[0], periods=stop, freq=index.freq)
        if isinstance(index, pd.DatetimeIndex):
            freq = index.freq or (pd.infer_freq(index) if n >= 3 else None)
            if freq is not None:
                return pd.date_range(start=index[0], periods=stop, freq=freq)
        if isinstance(index, pd.RangeIndex):
            return pd.RangeIndex(index.start, index.start + stop * index.step, index.step)
        if pd.api.types.is_integer_dtype(index.dtype) and n >= 2:
            steps = np.diff(index.to_numpy())
            if np.all(steps == steps[0]) and steps[0] > 0:
                return pd.Index(index[0] + steps[0] * np.arange(stop), name=index.name)
        # An index with no frequency: positions beyond the sample.
        return pd.Index(list(index) + list(range(n, stop)))

    def _position(self, key, what):
        """Position of ``key``: an int is a position (as statsmodels), else a label."""
        if isinstance(key, (bool, np.bool_)):
            raise TypeError(f"{what} must be a position or a label, got {key!r}.")
        if isinstance(key, numbers.Integral):
            position = int(key)
            return position + self.nobs if position < 0 else position
        if self._index is None:
            raise TypeError(f"{what}={key!r} is a label but the model was fitted on an array "
                            "(no index); give an integer position.")
        import pandas as pd

        index = self._index
        if isinstance(index, (pd.DatetimeIndex, pd.PeriodIndex)):
            key = (pd.Period(key, freq=index.freq) if isinstance(index, pd.PeriodIndex)
                   else pd.Timestamp(key))
        found = np.flatnonzero(index == key)
        if found.size:
            return int(found[0])
        position = None
        if isinstance(index, pd.PeriodIndex) and key > index[-1]:
            position = self.nobs - 1 + (key - index[-1]).n
        elif isinstance(index, pd.DatetimeIndex) and key > index[-1]:
            freq = index.freq or (pd.infer_freq(index) if self.nobs >= 3 else None)
            if freq is not None:
                grid = pd.date_range(start=index[-1], end=key, freq=freq)
                if grid[-1] == key:
                    position = self.nobs - 1 + len(grid) - 1
        elif isinstance(key, numbers.Real) and pd.api.types.is_numeric_dtype(index.dtype):
            extended = self._extended_index(self.nobs + 1)
            step = extended[-1] - extended[-2]
            offset = (key - extended[-1]) / step if step else -1
            if offset >= 0 and float(offset).is_integer():
                position = self.nobs + int(offset)
        if position is None:
            raise KeyError(f"{what}={key!r} is not a label of the series' index (or of its "
                           "continuation).")
        return position

    # -- prediction ---------------------------------------------------------------------
    def get_prediction(self, start=None, end=None, dynamic=False, exog=None):
        """In-sample and out-of-sample predictions with their variances.

        Parameters
        ----------
        start, end : int or label, optional
            First and last predicted observations (positions, or labels of
            the index: dates, periods); default the whole sample. ``end``
            beyond the sample forecasts.
        dynamic : bool, int or label, default=False
            From which observation on the predictions use no more data
            (each uses the previous predictions instead): True = from
            ``start``; an int is an offset from ``start``, a label an
            absolute point (statsmodels' rule).
        exog : array-like of shape (end - nobs + 1, k), optional
            Future regressors, required when the model has regressors and
            ``end`` is beyond the sample.

        Returns
        -------
        PredictionResults
        """
        from .arima import _validate_exog

        n = self.nobs
        start = 0 if start is None else self._position(start, "start")
        end = n - 1 if end is None else self._position(end, "end")
        if start < 0 or start > n:
            raise ValueError(f"start must be a position in [0, {n}] (the sample or the first "
                             f"forecast), got {start}.")
        if end < start:
            raise ValueError(f"end ({end}) must not come before start ({start}).")
        masked_from = None
        if dynamic is not False and dynamic is not None:
            if dynamic is True:
                masked_from = start
            elif isinstance(dynamic, numbers.Integral) and not isinstance(dynamic, np.bool_):
                masked_from = start + int(dynamic)
            else:
                masked_from = self._position(dynamic, "dynamic")
        spec = self._spec
        params = self._internal[:-1]
        beta = params[spec.k_trend:spec.k_trend + spec.k_exog]
        n_future = max(0, end + 1 - n)
        if spec.k_exog and n_future:
            if exog is None:
                raise ValueError(f"the model has {spec.k_exog} regressors: predicting up to "
                                 f"position {end} needs exog with the {n_future} future rows "
                                 f"(shape ({n_future}, {spec.k_exog})).")
            future, _ = _validate_exog(exog, n_future, what="exog")
            if future.shape[1] != spec.k_exog:
                raise ValueError(f"exog has {future.shape[1]} columns but the model was fitted "
                                 f"with {spec.k_exog} regressors.")
            future = future / self._scales.exog
        elif exog is not None and not spec.k_exog:
            raise ValueError("exog was given but the model was fitted without regressors.")
        else:
            future = np.zeros((n_future, spec.k_exog))
        regression = np.concatenate([self._lik.exog, future]) @ beta if spec.k_exog else 0.0
        k = spec.n_diff
        total = max(end + 1, n)
        pred, F, _, _ = self._lik.predict(params, total, masked_from)
        mean = np.empty(total)
        variance = np.empty(total)
        errors, variances = self._presample(params)
        mean[:k] = self._lik.series(params)[:k] - errors
        variance[:k] = variances
        mean[k:] = pred
        variance[k:] = F * self._internal[-1]
        mean = mean + regression
        index = self._extended_index(end + 1)
        return PredictionResults(mean[start:end + 1], variance[start:end + 1],
                                 None if index is None else index[start:end + 1], self._name,
                                 scale=self._scales.y)

    def predict(self, start=None, end=None, dynamic=False, exog=None):
        """Predicted values (see :meth:`get_prediction`)."""
        return self.get_prediction(start, end, dynamic, exog).predicted_mean

    def get_forecast(self, steps=1, exog=None):
        """Forecasts of the next ``steps`` values with their variances (PredictionResults).

        ``steps`` is a positive integer or the label of the last forecast;
        a model with regressors needs their future values, ``exog`` of shape
        (steps, k).
        """
        if isinstance(steps, (bool, np.bool_)) or (isinstance(steps, numbers.Integral)
                                                   and steps < 1):
            raise ValueError(f"steps must be a positive integer, got {steps!r}.")
        if isinstance(steps, numbers.Integral):
            end = self.nobs + int(steps) - 1
        elif isinstance(steps, numbers.Real):
            raise TypeError(f"steps must be a positive integer or a label, got {steps!r}.")
        else:
            end = self._position(steps, "steps")
            if end < self.nobs:
                raise ValueError(f"steps={steps!r} is inside the sample; give a later label.")
        return self.get_prediction(self.nobs, end, exog=exog)

    def forecast(self, steps=1, exog=None):
        """Point forecasts of the next ``steps`` values."""
        return self.get_forecast(steps, exog).predicted_mean

    # -- new data -----------------------------------------------------------------------
    def _results_on(self, y, exog, index, name, refit, fit_kwargs):
        from .arima import _make_likelihood, _validate_exog, _validate_series

        values, _, _ = _validate_series(y)
        exog_values, _ = _validate_exog(exog, values.shape[0])
        spec = self._spec
        if (exog_values is None) != (spec.k_exog == 0) or (
                exog_values is not None and exog_values.shape[1] != spec.k_exog):
            raise ValueError(f"the model was fitted with {spec.k_exog} regressors; give exog "
                             f"with {spec.k_exog} columns for the new observations"
                             if spec.k_exog else "the model was fitted without regressors; "
                             "exog must be None.")
        if refit:
            model = self.model
            series = values if index is None else _as_series(values, index, name)
            return model.fit(series, exog=exog_values,
                             start_params=self.params.to_numpy(), **fit_kwargs)
        # The same units as these results: the parameters apply unchanged.
        lik = _make_likelihood(spec, *self._scales.shrink(values, exog_values), self.backend,
                               self._lik.n_threads)
        params = self._internal
        llf_obs = _llf_obs(lik, params)
        results = ARIMAResults(self.model, spec, lik, params, float(llf_obs.sum()),
                               self.method, self.converged, index, name, self.cov_type,
                               scales=self._scales)
        return results

    def append(self, new_y, new_exog=None, refit=False, **fit_kwargs):
        """These results on the series extended by ``new_y`` (same parameters unless refit).

        Parameters
        ----------
        new_y : array-like or pandas.Series
            Observations following the sample (a Series' index should continue
            the fitted one).
        new_exog : array-like, optional
            Their regressors (required when the model has regressors).
        refit : bool, default=False
            Re-estimate the parameters on the whole series, starting from the
            current ones.
        """
        import pandas as pd

        values_new = np.asarray(new_y, dtype=np.float64).reshape(-1)
        y = np.concatenate([self._lik.y * self._scales.y, values_new])
        exog = None
        if self._spec.k_exog:
            from .arima import _validate_exog

            if new_exog is None:
                raise ValueError(f"the model has {self._spec.k_exog} regressors: append needs "
                                 "new_exog for the new observations.")
            new_values, _ = _validate_exog(new_exog, values_new.shape[0], what="new_exog")
            exog = np.concatenate([self._lik.exog * self._scales.exog, new_values])
        elif new_exog is not None:
            raise ValueError("new_exog was given but the model was fitted without regressors.")
        index = None
        if self._index is not None:
            if isinstance(new_y, pd.Series):
                index = self._index.append(new_y.index)
            else:
                index = self._extended_index(y.shape[0])
        return self._results_on(y, exog, index, self._name, refit, fit_kwargs)

    def apply(self, y, exog=None, refit=False, **fit_kwargs):
        """The fitted parameters applied to another series (``refit=True`` re-estimates)."""
        from .arima import _validate_series

        _, index, name = _validate_series(y)
        return self._results_on(y, exog, index, name, refit, fit_kwargs)

    # -- inference ----------------------------------------------------------------------
    def llf_obs(self):
        """Log-likelihood of each observation from d + sD on (0 where y is missing)."""
        out = _llf_obs(self._lik, self._internal)
        out[self._lik.observed] -= np.log(self._scales.y)
        return out

    def cov_params(self, cov_type=None):
        """Covariance of the estimates: "opg" (outer product of gradients) or "approx"
        (inverse of the numerical Hessian), as statsmodels; a DataFrame."""
        import pandas as pd

        cov_type = self.cov_type if cov_type is None else cov_type
        if cov_type not in ("opg", "approx"):
            raise ValueError(f"cov_type must be 'opg' or 'approx', got {cov_type!r}.")
        if cov_type not in self._cov:
            params = self._internal
            if cov_type == "opg":
                scores = _score_obs(self._lik, params)
                cov = np.linalg.pinv(scores.T @ scores)
            else:
                cov = -np.linalg.pinv(_hessian(self._lik, params))
            self._cov[cov_type] = cov
        names = self.params.index
        d = self._param_scales
        with np.errstate(over="ignore", invalid="ignore"):
            cov = self._cov[cov_type] * d[:, None] * d[None, :]
        return pd.DataFrame(cov, index=names, columns=names)

    @property
    def bse(self):
        if self.cov_type == "none":
            return self.params * np.nan
        # Scaled as standard deviations (finite where the variances overflow).
        with np.errstate(over="ignore"):
            values = self._internal_bse() * self._param_scales
        return self.params * 0 + values

    def _internal_bse(self):
        self.cov_params()
        return np.sqrt(np.clip(np.diag(self._cov[self.cov_type]), 0, None))

    @property
    def tvalues(self):
        if self.cov_type == "none":
            return (self.params * np.nan).rename("tvalues")
        # In internal units: z statistics do not depend on the series' scale.
        with np.errstate(divide="ignore", invalid="ignore"):
            values = self._internal / self._internal_bse()
        return (self.params * 0 + values).rename("tvalues")

    zvalues = tvalues

    @property
    def pvalues(self):
        return (self.tvalues.abs() * 0 + 2 * stats.norm.sf(np.abs(self.tvalues.to_numpy()))
                ).rename("pvalues")

    def conf_int(self, alpha=0.05):
        """Normal (1 - alpha) intervals of the parameters: DataFrame, columns 0 and 1."""
        import pandas as pd

        _check_alpha(alpha)
        z = stats.norm.ppf(1 - alpha / 2)
        bse = self.bse.to_numpy()
        params = self.params.to_numpy()
        return pd.DataFrame({0: params - z * bse, 1: params + z * bse}, index=self.params.index)

    # -- residual diagnostics -----------------------------------------------------------
    def test_serial_correlation(self, method="ljungbox", lags=None):
        r"""Ljung-Box test of no autocorrelation in the standardized residuals.

        :math:`Q(L) = n (n + 2) \sum_{l=1}^{L} \hat\rho_l^2 / (n - l)`, chi-square
        with L degrees of freedom under the null; residuals from observation
        d + sD on. ``lags`` defaults to statsmodels' min(10, n // 5)
        (min(2s, n // 5) for seasonal models).

        Returns
        -------
        ndarray of shape (1, 2, n_lags)
            Statistic and p-value at each lag, as statsmodels.
        """
        if method not in ("ljungbox", "boxpierce"):
            raise ValueError(f"method must be 'ljungbox' or 'boxpierce', got {method!r}.")
        resid = self.standardized_resid
        resid = resid[~np.isnan(resid)]
        n = resid.shape[0]
        if lags is None:
            lags = min(2 * self._spec.s, n // 5) if self._spec.s else min(10, n // 5)
        lag_list = np.arange(1, int(lags) + 1) if np.ndim(lags) == 0 else np.asarray(lags)
        max_lag = int(np.max(lag_list))
        centred = resid - resid.mean()
        denominator = np.dot(centred, centred)
        acf = np.array([np.dot(centred[lag:], centred[:-lag]) / denominator
                        for lag in range(1, max_lag + 1)])
        if method == "ljungbox":
            terms = acf ** 2 / (n - np.arange(1, max_lag + 1))
            q = n * (n + 2) * np.cumsum(terms)
        else:
            q = n * np.cumsum(acf ** 2)
        q = q[lag_list - 1]
        return np.array([[q, stats.chi2.sf(q, lag_list)]])

    def test_normality(self):
        """Jarque-Bera test of the standardized residuals: (1, 4) array (JB, p, skew, kurtosis)."""
        resid = self.standardized_resid
        resid = resid[~np.isnan(resid)]
        n = resid.shape[0]
        skew = stats.skew(resid)
        kurtosis = stats.kurtosis(resid, fisher=False)
        jb = n / 6.0 * (skew ** 2 + (kurtosis - 3.0) ** 2 / 4.0)
        return np.array([[jb, stats.chi2.sf(jb, 2), skew, kurtosis]])

    def test_heteroskedasticity(self):
        """Break-variance test (sum of squares of the last third over the first third),
        two-sided F p-value, as statsmodels' ``breakvar``: (1, 2) array."""
        resid = self.standardized_resid
        h = int(np.round(resid.shape[0] / 3))
        first = resid[:h] ** 2
        last = resid[-h:] ** 2
        df_first = int(np.sum(~np.isnan(first)))
        df_last = int(np.sum(~np.isnan(last)))
        statistic = np.nansum(last) / np.nansum(first)
        p_value = 2 * min(stats.f.cdf(statistic, df_last, df_first),
                          stats.f.sf(statistic, df_last, df_first))
        return np.array([[statistic, p_value]])

    def summary(self, alpha=0.05):
        """statsmodels' SARIMAX results table: model, llf, AIC, BIC, HQIC, the parameters
        with standard errors, z, p-values and intervals, and residual diagnostics."""
        spec = self._spec
        width = 78
        name = str(self._name) if self._name is not None else "y"
        bse = self.bse
        z = self.tvalues
        p = self.pvalues
        bounds = self.conf_int(alpha).to_numpy()
        lb = self.test_serial_correlation(lags=[1])
        het = self.test_heteroskedasticity()
        jb = self.test_normality()

        def pair(left_label, left, right_label, right):
            return f"{left_label:<24}{left:>26}   {right_label:<18}{right:>10}"

        if self._index is not None and len(self._index) and hasattr(self._index[0], "month"):
            first, last = self._index[0], self._index[-1]
            sample = (f"{first.month:02d}-{first.day:02d}-{first.year:02d}",
                      f"- {last.month:02d}-{last.day:02d}-{last.year:02d}")
        else:
            sample = ("0", f"- {self.nobs}")
        lines = [f"{'SARIMAX Results':^{width}}", "=" * width,
                 pair("Dep. Variable:", name, "No. Observations:", self.nobs),
                 pair("Model:", spec.title, "Log Likelihood", f"{self.llf:.3f}"),
                 pair("Method:", self.method, "AIC", f"{self.aic:.3f}"),
                 pair("Sample:", sample[0], "BIC", f"{self.bic:.3f}"),
                 pair("", sample[1], "HQIC", f"{self.hqic:.3f}"),
                 pair("Covariance Type:", self.cov_type, "Converged:", str(self.converged)),
                 "=" * width,
                 (f"{'':<16}{'coef':>10}{'std err':>11}{'z':>10}{'P>|z|':>9}"
                  f"{f'[{alpha / 2:.3f}':>11}{f'{1 - alpha / 2:.3f}]':>11}"),
                 "-" * width]
        for i, label in enumerate(self.params.index):
            lines.append(f"{label[:16]:<16}{self.params.iloc[i]:>10.4f}{bse.iloc[i]:>11.3f}"
                         f"{z.iloc[i]:>10.3f}{p.iloc[i]:>9.3f}{bounds[i, 0]:>11.3f}"
                         f"{bounds[i, 1]:>11.3f}")
        method = ("the outer product of gradients" if self.cov_type == "opg"
                  else "the numerical Hessian")
        lines += ["=" * width,
                  pair("Ljung-Box (L1) (Q):", f"{lb[0, 0, -1]:.2f}", "Jarque-Bera (JB):",
                       f"{jb[0, 0]:.2f}"),
                  pair("Prob(Q):", f"{lb[0, 1, -1]:.2f}", "Prob(JB):", f"{jb[0, 1]:.2f}"),
                  pair("Heteroskedasticity (H):", f"{het[0, 0]:.2f}", "Skew:",
                       f"{jb[0, 2]:.2f}"),
                  pair("Prob(H) (two-sided):", f"{het[0, 1]:.2f}", "Kurtosis:",
                       f"{jb[0, 3]:.2f}"),
                  "=" * width,
                  (f"Covariance matrix calculated using {method} (complex step in "
                   f"statsmodels, central differences here); backend {self.backend}.")]
        return "\n".join(lines)

    def plot_diagnostics(self, lags=10, fig=None, figsize=None):
        """Four residual plots as statsmodels': standardized residuals, histogram with a
        kernel density and N(0, 1), normal Q-Q plot, correlogram. Returns the figure."""
        import matplotlib.pyplot as plt

        resid = self.standardized_resid
        resid = resid[~np.isnan(resid)]
        if fig is None:
            fig = plt.figure(figsize=figsize or (10, 8))
        axes = [fig.add_subplot(2, 2, i) for i in range(1, 5)]
        axes[0].plot(resid)
        axes[0].axhline(0, color="k", linewidth=0.5)
        axes[0].set_title("Standardized residual")
        axes[1].hist(resid, bins="auto", density=True, label="Hist", alpha=0.6)
        grid = np.linspace(min(resid.min(), -3), max(resid.max(), 3), 200)
        if resid.shape[0] > 1 and np.std(resid) > 0:
            axes[1].plot(grid, stats.gaussian_kde(resid)(grid), label="KDE")
        axes[1].plot(grid, stats.norm.pdf(grid), label="N(0,1)")
        axes[1].legend()
        axes[1].set_title("Histogram plus estimated density")
        theoretical, ordered = stats.probplot(resid, dist="norm", fit=False)
        axes[2].scatter(theoretical, ordered, s=8)
        axes[2].plot(theoretical, theoretical, color="r")
        axes[2].set_title("Normal Q-Q")
        centred = resid - resid.mean()
        acf = [np.dot(centred[lag:], centred[:len(centred) - lag]) / np.dot(centred, centred)
               for lag in range(1, lags + 1)]
        axes[3].vlines(np.arange(1, lags + 1), 0, acf)
        axes[3].scatter(np.arange(1, lags + 1), acf, s=12)
        band = 1.96 / np.sqrt(resid.shape[0])
        axes[3].axhspan(-band, band, alpha=0.2)
        axes[3].set_title("Correlogram")
        return fig

    def __repr__(self):
        return f"<ARIMAResults order={self.order} seasonal_order={self.seasonal_order} " \
               f"trend={self.trend!r} llf={self.llf:.4f}>"


def _as_series(values, index, name):
    import pandas as pd

    return pd.Series(values, index=index, name=name)


def _stationary_mean(phi, intercept):
    from .arima import _stationary_mean as mean

    return mean(phi, intercept)


# ---------------------------------------------------------------------------
# Numerical derivatives of the log-likelihood (constrained parameters, sigma2 last)
# ---------------------------------------------------------------------------
def _llf_obs(lik, params):
    """Per-observation log-likelihood from d + sD on, 0 where y is missing."""
    sigma2 = params[-1]
    v, F, _, _ = lik.filter(params[:-1])
    with np.errstate(divide="ignore", invalid="ignore"):
        out = -0.5 * (np.log(2 * np.pi * sigma2 * F) + v * v / (sigma2 * F))
    out[~lik.observed] = 0.0
    return out


def _steps(params, relative):
    h = relative * np.maximum(np.abs(params), 1e-2)
    h[-1] = relative * abs(params[-1])
    return h


def _score_obs(lik, params):
    """(n_eff, k) scores of each observation, by central differences."""
    k = params.shape[0]
    h = _steps(params, 1e-5)
    scores = np.empty((lik.n_eff, k))
    for i in range(k):
        up, down = params.copy(), params.copy()
        up[i] += h[i]
        down[i] -= h[i]
        scores[:, i] = (_llf_obs(lik, up) - _llf_obs(lik, down)) / (2 * h[i])
    return scores


def _hessian(lik, params, relative=1e-3):
    """Hessian of the total log-likelihood by central differences with one Richardson step.

    Second differences with steps h (1e-3 relative) and h / 2 combined as
    (4 H(h/2) - H(h)) / 3, which cancels the O(h^2) truncation error (large
    near the boundary of the invertible region) while keeping the steps
    large enough that rounding (1e-16 |llf| / h^2) stays small. If a step
    leaves the parameter space (a non-finite value), the steps shrink tenfold.
    """
    coarse = _second_differences(lik, params, relative)
    fine = _second_differences(lik, params, relative / 2)
    if not (np.all(np.isfinite(coarse)) and np.all(np.isfinite(fine))) and relative > 1e-6:
        return _hessian(lik, params, relative / 10)
    return (4.0 * fine - coarse) / 3.0


def _second_differences(lik, params, relative):
    """Central second differences of the llf, all (i, j) in one batch kernel call."""
    k = params.shape[0]
    h = _steps(params, relative)
    rows = [params]
    pairs = []
    for i in range(k):
        for j in range(i, k):
            for si, sj in ((1, 1), (1, -1), (-1, 1), (-1, -1)):
                row = params.copy()
                row[i] += si * h[i]
                row[j] += sj * h[j]
                rows.append(row)
            pairs.append((i, j))
    llf = lik.full_loglike(np.stack(rows))
    hessian = np.empty((k, k))
    for number, (i, j) in enumerate(pairs):
        pp, pm, mp, mm = llf[1 + 4 * number:5 + 4 * number]
        hessian[i, j] = hessian[j, i] = (pp - pm - mp + mm) / (4 * h[i] * h[j])
    return hessian
