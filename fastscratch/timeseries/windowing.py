"""Sliding windows, scaling and splitting for univariate series (no PyTorch needed).

The forecasters learn from pairs (the ``lookback`` values before a time, the
``horizon`` values from that time on). Everything here is causal: a window
built from a training part never reads past its end, and the scaler is fitted
on the training part only.
"""

import numbers

import numpy as np

__all__ = ["check_series", "make_windows", "SeriesScaler", "split_series", "future_index", "SCALERS"]

SCALERS = ("standard", "minmax", "scale")


def check_series(y, name="y"):
    """Validate a univariate series; return (float64 values, DatetimeIndex or None).

    Accepts a 1-D array-like, a single-column 2-D array or a pandas Series or
    one-column DataFrame. Raises a TypeError for non-numeric data and a
    ValueError for NaN or infinite values, more than one column or an empty series.
    """
    import pandas as pd

    index = None
    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError(f"{name} must be univariate; got a DataFrame with {y.shape[1]} columns. "
                             f"Pass one column, e.g. {name}[column].")
        y = y.iloc[:, 0]
    if isinstance(y, pd.Series):
        if isinstance(y.index, pd.DatetimeIndex):
            index = y.index
        y = y.to_numpy()
    values = np.asarray(y)
    if values.dtype == object or not (np.issubdtype(values.dtype, np.number) or values.dtype == bool):
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be numeric, got values of dtype {values.dtype}; "
                            f"convert it, e.g. pandas.to_numeric({name}).") from None
    if np.iscomplexobj(values):
        raise TypeError(f"{name} must be real-valued, got complex values.")
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise ValueError(f"{name} must be a 1-D series, got an array of shape {values.shape}.")
    if values.size == 0:
        raise ValueError(f"{name} is empty.")
    values = np.ascontiguousarray(values, dtype=np.float64)
    if not np.all(np.isfinite(values)):
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(f"{name} contains NaN or infinite values (first at position {bad}); "
                         f"fill or drop them first, e.g. {name}.interpolate().")
    return values, index


def _check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def make_windows(values, lookback, horizon=1):
    """Every (input, target) pair of a series: ``X[k] = values[k : k + lookback]``,
    ``Y[k] = values[k + lookback : k + lookback + horizon]``.

    Parameters
    ----------
    values : ndarray of shape (n,)
    lookback, horizon : int

    Returns
    -------
    X : ndarray of shape (n - lookback - horizon + 1, lookback)
    Y : ndarray of shape (n - lookback - horizon + 1, horizon)
        Copies (C-contiguous), in time order; the last target ends at the last value.
    """
    lookback = _check_positive_int(lookback, "lookback")
    horizon = _check_positive_int(horizon, "horizon")
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"values must be 1-D, got shape {values.shape}.")
    if values.shape[0] < lookback + horizon:
        raise ValueError(f"the series has {values.shape[0]} values; at least lookback + horizon = "
                         f"{lookback + horizon} are needed. Use a shorter lookback or horizon.")
    windows = np.lib.stride_tricks.sliding_window_view(values, lookback + horizon)
    return windows[:, :lookback].copy(), windows[:, lookback:].copy()


def split_series(y, test_size):
    """Split a series (array or pandas Series) into its first ``len(y) - test_size``
    values and its last ``test_size`` values, in time order."""
    test_size = _check_positive_int(test_size, "test_size")
    if test_size >= len(y):
        raise ValueError(f"test_size={test_size} leaves no training data in a series of {len(y)} values.")
    if hasattr(y, "iloc"):
        return y.iloc[:-test_size], y.iloc[-test_size:]
    return y[:-test_size], y[-test_size:]


class SeriesScaler:
    """Scale a univariate series with scikit-learn's StandardScaler or MinMaxScaler.

    Parameters
    ----------
    kind : {"standard", "minmax", "scale"}
        ``"standard"``: ``(y - mean) / std`` (``sklearn.preprocessing.StandardScaler``);
        ``"minmax"``: ``(y - min) / (max - min)`` to [0, 1]
        (``sklearn.preprocessing.MinMaxScaler``); ``"scale"``: ``y / std``
        without centring (``StandardScaler(with_mean=False)``: 0 stays 0). A
        constant series is left centred with scale 1, as scikit-learn does.

    Fit it on the training part only; ``inverse_transform(transform(y))``
    returns ``y`` to float64 rounding.
    """

    def __init__(self, kind="standard"):
        if kind not in SCALERS:
            raise ValueError(f"scaler={kind!r} is not known; use one of {SCALERS}.")
        self.kind = kind

    def fit(self, values):
        from sklearn.preprocessing import MinMaxScaler, StandardScaler

        if self.kind == "minmax":
            self.scaler_ = MinMaxScaler()
        else:
            self.scaler_ = StandardScaler(with_mean=self.kind == "standard")
        self.scaler_.fit(np.asarray(values, dtype=np.float64).reshape(-1, 1))
        return self

    def transform(self, values):
        values = np.asarray(values, dtype=np.float64)
        return self.scaler_.transform(values.reshape(-1, 1)).reshape(values.shape)

    def inverse_transform(self, values):
        values = np.asarray(values, dtype=np.float64)
        return self.scaler_.inverse_transform(values.reshape(-1, 1)).reshape(values.shape)


def future_index(index, steps):
    """The ``steps`` dates after a DatetimeIndex (its frequency, else the inferred one),
    or None when there is no index or no regular frequency."""
    import pandas as pd

    if index is None or len(index) == 0:
        return None
    freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
    if freq is None:
        return None
    return pd.date_range(index[-1], periods=steps + 1, freq=freq)[1:]
