"""LSTM versus ARIMA on a held-out tail: the comparison of the time-series notebook.

:func:`compare_timeseries` holds out the last ``test_size`` values of a series
(by default the last 24 months of the shipped electric production series),
fits

- the LSTM forecaster (:class:`~fastscratch.timeseries.lstm.LSTMForecaster`,
  its default recipe: an ensemble of ``n_ensemble`` networks on the seasonal
  differences of the log, correcting a base that averages the last
  ``n_seasons`` seasons, each refitted on the whole training part for the
  epochs its early stopping chose) with several seeds: one row for the ensemble forecasts (mean and
  spread over the seeds) and one for the single members (mean and spread over
  every member of every seed),
- our seasonal ARIMA with the orders chosen by our ``auto_arima``,
- statsmodels' ``SARIMAX`` with the same orders,
- the seasonal naive forecast (the value of one season earlier),

and scores every forecast of the held-out part by RMSE, MAE and MAPE, with the
fit times. :func:`format_comparison` renders the table as text and
:func:`plot_comparison` draws the series, the forecasts and the 95 % intervals.
Every model sees only the training part.
"""

import time
import warnings

import numpy as np

from ..metrics import mae, mape, rmse
from .windowing import check_series, split_series

__all__ = ["compare_timeseries", "format_comparison", "plot_comparison", "seasonal_naive_forecast",
           "DEFAULT_LSTM_PARAMS"]

# Settings of the LSTM in the comparison beyond LSTMForecaster's defaults (which are the
# recipe; any parameter can be overridden through ``lstm_params``). ``horizon`` is the
# held-out length and ``seasonal_period`` the ``m`` of the comparison.
DEFAULT_LSTM_PARAMS = {}

# Fewer epochs than this leave the LSTM under-trained: the table then says so.
UNDER_TRAINED_EPOCHS = 20

COLUMNS = ["rmse", "rmse_std", "mae", "mae_std", "mape", "mape_std", "fit_time_s", "runs"]


def seasonal_naive_forecast(train, steps, m=12):
    """The seasonal naive forecast: ``y[n + h] = y[n + h - m * ceil((h + 1) / m)]``,
    i.e. the last observed season repeated (``train`` is a 1-D array)."""
    train = np.asarray(train, dtype=np.float64)
    if train.shape[0] < m:
        raise ValueError(f"the seasonal naive forecast needs a full season: {train.shape[0]} values < m={m}.")
    return train[-m:][np.arange(steps) % m].copy()


def _scores(test, forecast):
    return rmse(test, forecast), mae(test, forecast), mape(test, forecast)


def _row(test, forecasts, fit_times):
    scores = np.array([_scores(test, forecast) for forecast in forecasts])  # (runs, 3)
    mean = scores.mean(0)
    spread = scores.std(0, ddof=1) if len(forecasts) > 1 else np.full(3, np.nan)
    return {"rmse": mean[0], "rmse_std": spread[0], "mae": mean[1], "mae_std": spread[1],
            "mape": mean[2], "mape_std": spread[2], "fit_time_s": float(np.mean(fit_times)),
            "runs": len(forecasts)}


def _choose_orders(train, m, notes, say):
    """Orders by our auto_arima, else pmdarima's; returns (order, seasonal_order, trend, source)."""
    try:
        from .arima import auto_arima
    except ImportError as error:
        notes.append(f"fastscratch auto_arima is not importable ({error}); orders from pmdarima.auto_arima.")
        try:
            import pmdarima
        except ImportError:
            raise ValueError("no auto_arima available (neither fastscratch's nor pmdarima's); pass "
                             "order= and seasonal_order= to compare_timeseries.") from None
        say("choosing the orders with pmdarima.auto_arima ...")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = pmdarima.auto_arima(np.asarray(train), seasonal=True, m=m, suppress_warnings=True)
        elapsed = time.perf_counter() - start
        trend = "c" if model.with_intercept else None
        notes.append(f"pmdarima.auto_arima chose SARIMA{model.order}x{model.seasonal_order} "
                     f"(trend {trend}) in {elapsed:.1f} s.")
        return tuple(model.order), tuple(model.seasonal_order), trend
    say("choosing the orders with fastscratch.auto_arima ...")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = auto_arima(train, seasonal=True, m=m)
    elapsed = time.perf_counter() - start
    trend = getattr(results, "trend", None)
    notes.append(f"fastscratch.auto_arima chose SARIMA{tuple(results.order)}x{tuple(results.seasonal_order)} "
                 f"(trend {trend}) in {elapsed:.1f} s.")
    return tuple(results.order), tuple(results.seasonal_order), trend


def compare_timeseries(y=None, test_size=24, seeds=(0, 1, 2), epochs=None, lstm_params=None, order=None,
                       seasonal_order=None, trend=None, m=12, plot=None, verbose=True):
    """Hold out the last ``test_size`` values; score LSTM, ARIMA, SARIMAX and seasonal naive on them.

    Parameters
    ----------
    y : array-like or pandas Series, optional
        The series; default :func:`fastscratch.datasets.load_electric_production`.
    test_size : int, default=24
        Values held out at the end (the forecast horizon).
    seeds : sequence of int, default=(0, 1, 2)
        ``random_state`` of each LSTM run (an ensemble of ``n_ensemble``
        networks); the table gives the mean over the runs and the standard
        deviation (``*_std``, NaN for a single run).
    epochs : int, optional
        Most training epochs of every LSTM network (early stopping may stop
        sooner); default LSTMForecaster's. Below 20 the notes say that the
        LSTM is under-trained.
    lstm_params : dict, optional
        :class:`~fastscratch.timeseries.lstm.LSTMForecaster` parameters that
        override :data:`DEFAULT_LSTM_PARAMS` (``horizon`` is ``test_size``).
    order, seasonal_order, trend : optional
        Fix the ARIMA orders (statsmodels' conventions) instead of searching
        them with ``fastscratch.auto_arima`` (or, if ours cannot be imported,
        ``pmdarima.auto_arima``). ``trend`` is used only with a fixed order.
    m : int, default=12
        Seasonal period (of the orders search and of the seasonal naive forecast).
    plot : str or path, optional
        Write a PNG of the series, the forecasts and their 95 % intervals there.
    verbose : bool, default=True
        Print progress and, at the end, :func:`format_comparison` of the result.

    Returns
    -------
    table : pandas.DataFrame
        One row per model ("LSTM (scratch)": the ensembles, "LSTM (scratch),
        one member": every member of every ensemble, "fastscratch ARIMA",
        "statsmodels SARIMAX", "seasonal naive"), columns ``rmse``, ``mae``, ``mape`` (a
        fraction; see :func:`fastscratch.metrics.mape`), their ``*_std`` over
        seeds, ``fit_time_s`` (mean per fit, without the order search) and
        ``runs``. ``table.attrs`` holds ``"forecasts"`` (model -> array of
        shape (runs, test_size)), ``"intervals"`` (model -> (lower, upper)),
        ``"train"``, ``"test"`` (pandas Series), ``"orders"`` and ``"notes"``
        (lines such as the chosen orders or a skipped model).
    """
    import pandas as pd

    from ..datasets import load_electric_production
    from .lstm import LSTMForecaster

    def say(message):
        if verbose:
            print(message, flush=True)

    if y is None:
        y = load_electric_production()
    values, index = check_series(y)
    series = pd.Series(values, index=index if index is not None else pd.RangeIndex(len(values)),
                       name=getattr(y, "name", None) or "y")
    train, test = split_series(series, test_size)
    if len(seeds) == 0:
        raise ValueError("seeds must hold at least one random_state for the LSTM runs.")
    notes, rows, forecasts, intervals = [], {}, {}, {}
    test_values = test.to_numpy()

    # LSTM, one fit per seed.
    params = {"seasonal_period": m, **DEFAULT_LSTM_PARAMS, **(lstm_params or {}), "horizon": test_size}
    if epochs is not None:
        params["epochs"] = epochs
    probe = LSTMForecaster(**params)
    impl, n_epochs, n_ensemble = probe.impl, probe.epochs, probe.n_ensemble
    runs, members, times, member_times, stopped = [], [], [], [], []
    for seed in seeds:
        say(f"LSTM ({impl}), seed {seed}: {n_ensemble} networks, at most {n_epochs} epochs ...")
        model = LSTMForecaster(**{**params, "random_state": seed})
        start = time.perf_counter()
        model.fit(train)
        times.append(time.perf_counter() - start)
        runs.append(np.asarray(model.predict(test_size), dtype=np.float64))
        members.extend(model.predict_members(test_size))
        member_times.extend([times[-1] / n_ensemble] * n_ensemble)
        stopped.extend(member["n_epochs"] for member in model.members_)
    name = f"LSTM ({impl})"
    rows[name] = _row(test_values, runs, times)
    forecasts[name] = np.stack(runs)
    if len(runs) > 1:
        intervals[name] = (forecasts[name].min(0), forecasts[name].max(0))  # spread over seeds
    rows[f"{name}, one member"] = _row(test_values, members, member_times)
    forecasts[f"{name}, one member"] = np.stack(members)
    recipe = f"{probe.deseasonalize or 'no'} deseasonalising" + (" of the log" if model.log_transform_ else "")
    if model.deseasonalize_ == "difference" and int(probe.n_seasons) > 1:
        recipe += f", base averaging the last {int(probe.n_seasons)} seasons"
    if probe.refit and probe.early_stopping:
        recipe += ", refit on the whole training part for the epochs early stopping chose"
    notes.append(f"LSTM: {recipe}, ensembles of {n_ensemble} networks "
                 f"(seeds {list(seeds)}), epochs run per network {min(stopped)}-{max(stopped)} of at most "
                 f"{n_epochs}, {np.mean(times):.1f} s per ensemble.")
    if n_epochs < UNDER_TRAINED_EPOCHS:
        notes.append(f"the LSTM is under-trained here (at most {n_epochs} epochs): its scores say nothing about "
                     f"the recipe; use more epochs (fastscratch compare --size small or larger).")

    # ARIMA orders, ours, statsmodels'.
    if order is None:
        order, seasonal_order, trend = _choose_orders(train, m, notes, say)
    else:
        order = tuple(order)
        seasonal_order = tuple(seasonal_order) if seasonal_order is not None else (0, 0, 0, 0)
        notes.append(f"orders fixed by the caller: SARIMA{order}x{seasonal_order} (trend {trend}).")
    def add_arima(name, fit):
        say(f"{name}{order}x{seasonal_order} ...")
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = fit()
        elapsed = time.perf_counter() - start
        prediction = fitted.get_forecast(test_size)
        forecast = np.asarray(prediction.predicted_mean, dtype=np.float64)
        rows[name] = _row(test_values, [forecast], [elapsed])
        forecasts[name] = forecast[None]
        bounds = np.asarray(prediction.conf_int(alpha=0.05), dtype=np.float64)
        intervals[name] = (bounds[:, 0], bounds[:, 1])

    try:
        from .arima import ARIMA
    except ImportError as error:
        notes.append(f"fastscratch ARIMA skipped: not importable ({error}).")
    else:
        add_arima("fastscratch ARIMA",
                  lambda: ARIMA(order=order, seasonal_order=seasonal_order, trend=trend).fit(train))
    try:
        from statsmodels.tsa.statespace.sarimax import SARIMAX
    except ImportError as error:
        notes.append(f"statsmodels SARIMAX skipped: not importable ({error}).")
    else:
        add_arima("statsmodels SARIMAX", lambda: SARIMAX(train.to_numpy(), order=order, seasonal_order=seasonal_order,
                                                         trend=trend).fit(disp=False))

    # Seasonal naive.
    start = time.perf_counter()
    forecast = seasonal_naive_forecast(train.to_numpy(), test_size, m)
    rows["seasonal naive"] = _row(test_values, [forecast], [time.perf_counter() - start])
    forecasts["seasonal naive"] = forecast[None]

    table = pd.DataFrame.from_dict(rows, orient="index", columns=COLUMNS)
    table.index.name = "model"
    table.attrs.update({"forecasts": forecasts, "intervals": intervals, "train": train, "test": test,
                        "orders": {"order": order, "seasonal_order": seasonal_order, "trend": trend},
                        "notes": notes})
    if plot is not None:
        plot_comparison(table, plot)
        notes.append(f"plot written to {plot}")
    if verbose:
        print(format_comparison(table))
    return table


def format_comparison(table):
    """The comparison table as text: RMSE, MAE, MAPE (percent) with their spread
    over seeds (``±`` one standard deviation), fit time, then the notes."""
    def cell(mean, std, scale=1.0, digits=3):
        text = f"{mean * scale:.{digits}f}"
        if np.isfinite(std):
            text += f" ± {std * scale:.{digits}f}"
        return text

    header = ("model", "RMSE", "MAE", "MAPE %", "fit s", "runs")
    lines = []
    for name, row in table.iterrows():
        lines.append((str(name), cell(row["rmse"], row["rmse_std"]), cell(row["mae"], row["mae_std"]),
                      cell(row["mape"], row["mape_std"], 100.0, 2), f"{row['fit_time_s']:.2f}",
                      str(int(row["runs"]))))
    widths = [max(len(header[i]), *(len(line[i]) for line in lines)) for i in range(len(header))]

    def render(fields):
        return "  ".join(f.ljust(w) if i == 0 else f.rjust(w) for i, (f, w) in enumerate(zip(fields, widths)))

    test = table.attrs.get("test")
    title = "Forecast of the held-out tail"
    if test is not None and len(test):
        first, last = test.index[0], test.index[-1]
        if hasattr(first, "strftime"):
            first, last = first.strftime("%Y-%m-%d"), last.strftime("%Y-%m-%d")
        title += f": {len(test)} values, {first} .. {last}"
    out = [title, render(header), render(["-" * w for w in widths])]
    out += [render(line) for line in lines]
    out += [f"note: {note}" for note in table.attrs.get("notes", [])]
    return "\n".join(out)


def plot_comparison(table, path, history=96):
    """Write a PNG of the last ``history`` training values, the held-out part, every
    forecast (the LSTM's mean over seeds) and the intervals (95 % for the ARIMAs,
    min..max over seeds for the LSTM)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    train, test = table.attrs["train"], table.attrs["test"]
    figure, axis = plt.subplots(figsize=(10, 4.5))
    shown = train.iloc[-history:]
    axis.plot(shown.index, shown.to_numpy(), color="black", lw=1.2, label="training part")
    axis.plot(test.index, test.to_numpy(), color="black", lw=1.2, ls="--", label="held out")
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, (name, forecast) in enumerate(table.attrs["forecasts"].items()):
        color = colors[k % len(colors)]
        label = f"{name} (RMSE {table.loc[name, 'rmse']:.2f})"
        if name.endswith("one member"):
            continue  # the ensembles' line is the mean of the same members
        if name == "seasonal naive":
            axis.plot(test.index, forecast.mean(0), color="gray", lw=1.0, ls=":", label=label)
            continue
        style = "--" if name.startswith("statsmodels") else "-"  # drawn over our ARIMA's equal line
        axis.plot(test.index, forecast.mean(0), color=color, lw=1.5, ls=style, label=label)
        if name in table.attrs["intervals"]:
            lower, upper = table.attrs["intervals"][name]
            axis.fill_between(test.index, lower, upper, color=color, alpha=0.15, lw=0)
    axis.set_title("LSTM vs ARIMA: forecasts of the held-out tail (bands: 95 % intervals; LSTM: "
                   "range over seeds)", fontsize=9)
    axis.legend(fontsize=8, loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
