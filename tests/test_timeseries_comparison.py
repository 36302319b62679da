"""Forecast metrics and the LSTM-versus-ARIMA comparison (small, fixed settings)."""

import sys

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, mean_squared_error

from fastscratch.datasets import load_electric_production
from fastscratch.metrics import mae, mape, rmse
from fastscratch.timeseries.comparison import compare_timeseries, format_comparison, seasonal_naive_forecast

pytest.importorskip("torch")
pytest.importorskip("statsmodels")

# Small and fast: a fixed seasonal order instead of the auto_arima search, a tiny LSTM.
FIXED = {"order": (1, 0, 0), "seasonal_order": (0, 1, 1, 12), "trend": "c", "epochs": 2,
         "lstm_params": {"hidden_size": 8, "num_layers": 1, "batch_size": 64, "n_ensemble": 2}, "verbose": False}
ROWS = ["LSTM (scratch)", "LSTM (scratch), one member", "fastscratch ARIMA", "statsmodels SARIMAX",
        "seasonal naive"]


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_metrics_are_sklearns_and_the_formulas(rng):
    y_true = rng.uniform(1, 10, 50)
    y_pred = y_true + rng.normal(0, 1, 50)
    assert rmse(y_true, y_pred) == pytest.approx(np.sqrt(mean_squared_error(y_true, y_pred)), rel=1e-15)
    assert rmse(y_true, y_pred) == pytest.approx(np.sqrt(np.mean((y_true - y_pred) ** 2)), rel=1e-12)
    assert mae(y_true, y_pred) == mean_absolute_error(y_true, y_pred)
    assert mae(y_true, y_pred) == pytest.approx(np.mean(np.abs(y_true - y_pred)), rel=1e-12)
    assert mape(y_true, y_pred) == mean_absolute_percentage_error(y_true, y_pred)
    assert mape(y_true, y_pred) == pytest.approx(np.mean(np.abs((y_true - y_pred) / y_true)), rel=1e-12)
    weights = rng.uniform(0, 1, 50)
    assert mae(y_true, y_pred, sample_weight=weights) == pytest.approx(
        np.average(np.abs(y_true - y_pred), weights=weights), rel=1e-12)


def test_seasonal_naive_repeats_the_last_season():
    train = np.arange(30.0)
    np.testing.assert_array_equal(seasonal_naive_forecast(train, 5, m=12), [18, 19, 20, 21, 22])
    np.testing.assert_array_equal(seasonal_naive_forecast(train, 26, m=12)[[0, 12, 24]], [18, 18, 18])
    with pytest.raises(ValueError, match="season"):
        seasonal_naive_forecast(train[:5], 3, m=12)


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    path = tmp_path_factory.mktemp("plot") / "comparison.png"
    result = compare_timeseries(seeds=(0, 1), plot=path, **FIXED)
    return result, path


def test_comparison_table(table):
    result, path = table
    assert list(result.index) == ROWS
    test = result.attrs["test"]
    assert len(test) == 24 and str(test.index[0].date()) == "2016-02-01"
    # Every score is the metric of the stored forecasts.
    for name in ROWS:
        forecasts = result.attrs["forecasts"][name]
        scores = [rmse(test, f) for f in forecasts]
        assert result.loc[name, "rmse"] == pytest.approx(np.mean(scores), rel=1e-12)
        assert result.loc[name, "mape"] == pytest.approx(np.mean([mape(test, f) for f in forecasts]), rel=1e-12)
        assert result.loc[name, "runs"] == forecasts.shape[0]
        assert result.loc[name, "fit_time_s"] >= 0
    assert result.loc["LSTM (scratch)", "runs"] == 2 and np.isfinite(result.loc["LSTM (scratch)", "rmse_std"])
    # Each seed's forecast is the mean of its two members (rows 2k, 2k + 1 of the member row).
    members = result.attrs["forecasts"]["LSTM (scratch), one member"]
    assert members.shape == (4, 24) and result.loc["LSTM (scratch), one member", "runs"] == 4
    np.testing.assert_allclose(result.attrs["forecasts"]["LSTM (scratch)"], members.reshape(2, 2, 24).mean(1),
                               rtol=1e-14)
    assert any("under-trained" in note for note in result.attrs["notes"])
    assert any("base averaging the last 6 seasons" in note for note in result.attrs["notes"])  # the recipe's
    assert np.isnan(result.loc["seasonal naive", "rmse_std"])
    assert result.loc["seasonal naive", "rmse"] == pytest.approx(rmse(test, seasonal_naive_forecast(
        result.attrs["train"].to_numpy(), 24)), rel=1e-12)
    # Our ARIMA and statsmodels fit the same model: same forecasts to the optimiser's tolerance.
    ours, theirs = (result.attrs["forecasts"][n][0] for n in ("fastscratch ARIMA", "statsmodels SARIMAX"))
    np.testing.assert_allclose(ours, theirs, rtol=2e-3)
    lower, upper = result.attrs["intervals"]["statsmodels SARIMAX"]
    assert np.all(lower < theirs) and np.all(theirs < upper)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = format_comparison(result)
    for name in ROWS:
        assert name in text
    assert "RMSE" in text and "±" in text and "orders fixed" in text


def test_comparison_never_looks_at_the_held_out_part(table):
    result, _ = table
    y = load_electric_production()
    changed = y.copy()
    changed.iloc[-24:] += 50.0
    other = compare_timeseries(changed, seeds=(0, 1), **FIXED)
    for name in ROWS:
        np.testing.assert_array_equal(other.attrs["forecasts"][name], result.attrs["forecasts"][name])
        assert other.loc[name, "rmse"] > result.loc[name, "rmse"] + 10


def test_comparison_skips_our_arima_when_not_importable(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "fastscratch.timeseries.arima", None)  # import raises ImportError
    y = load_electric_production().iloc[-120:]
    result = compare_timeseries(y, test_size=12, seeds=(0,), **{**FIXED, "verbose": True})
    assert "fastscratch ARIMA" not in result.index
    assert list(result.index) == ["LSTM (scratch)", "LSTM (scratch), one member", "statsmodels SARIMAX",
                                  "seasonal naive"]
    assert any("fastscratch ARIMA skipped" in note for note in result.attrs["notes"])
    out = capsys.readouterr().out
    assert "note: fastscratch ARIMA skipped" in out and "seasonal naive" in out


def test_comparison_bad_input():
    with pytest.raises(ValueError, match="test_size"):
        compare_timeseries(np.arange(20.0), test_size=20, **FIXED)
    with pytest.raises(ValueError, match="seeds"):
        compare_timeseries(seeds=(), **FIXED)
    with pytest.raises(ValueError, match="NaN"):
        compare_timeseries(np.r_[np.arange(100.0), np.nan], **FIXED)
