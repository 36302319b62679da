"""The LSTM from the gate equations against torch.nn.LSTM, windowing and scaling, and
the LSTM forecaster on the shipped electric production series."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from sklearn.base import clone  # noqa: E402

from fastscratch import LSTMForecaster  # noqa: E402
from fastscratch.datasets import load_electric_production  # noqa: E402
from fastscratch.metrics import rmse  # noqa: E402
from fastscratch.timeseries.comparison import seasonal_naive_forecast  # noqa: E402
from fastscratch.timeseries.lstm import LSTM, lstm_cell  # noqa: E402
from fastscratch.timeseries.windowing import SeriesScaler, check_series, make_windows  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny tensors: one PyTorch thread is faster, and steady on a busy machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# float32: outputs, states and gradients of the scratch LSTM within 1e-6 of torch.nn.LSTM.
TOL = {torch.float32: 1e-6, torch.float64: 1e-12}


def _pair(num_layers, batch_first, variant, dtype, input_size=3, hidden_size=16, dropout=0.0):
    torch.manual_seed(num_layers + 10 * batch_first)
    reference = torch.nn.LSTM(input_size, hidden_size, num_layers, batch_first=batch_first,
                              dropout=dropout).to(dtype)
    return reference, LSTM.from_torch(reference, variant=variant)


def _run(module, x, hx, weights):
    x = x.detach().clone().requires_grad_(True)
    hx = tuple(h.detach().clone().requires_grad_(True) for h in hx) if hx is not None else None
    output, (h_n, c_n) = module(x, hx)
    # A loss that reaches every output, both final states and, through them, everything.
    loss = (output * weights[0]).mean() + (h_n * weights[1]).mean() + (c_n * weights[2]).mean()
    inputs = [x, *(hx or ()), *module.parameters()]
    grads = torch.autograd.grad(loss, inputs)
    return output.detach(), h_n.detach(), c_n.detach(), grads


@pytest.mark.parametrize("variant", ["plain", "fused"])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("with_state", [False, True])
def test_scratch_lstm_matches_torch(variant, batch_first, num_layers, dtype, with_state):
    reference, ours = _pair(num_layers, batch_first, variant, dtype)
    steps, batch = 7, 5
    generator = torch.Generator().manual_seed(1)
    shape = (batch, steps, 3) if batch_first else (steps, batch, 3)
    x = torch.randn(shape, generator=generator, dtype=dtype)
    hx = None
    if with_state:
        hx = tuple(torch.randn(num_layers, batch, 16, generator=generator, dtype=dtype) for _ in range(2))
    out_shape = (batch, steps, 16) if batch_first else (steps, batch, 16)
    weights = [torch.randn(out_shape, generator=generator, dtype=dtype),
               torch.randn(num_layers, batch, 16, generator=generator, dtype=dtype),
               torch.randn(num_layers, batch, 16, generator=generator, dtype=dtype)]
    expected = _run(reference, x, hx, weights)
    result = _run(ours, x, hx, weights)
    tol = TOL[dtype]
    for name, got, want in zip(("output", "h_n", "c_n"), result[:3], expected[:3]):
        assert got.shape == want.shape, name
        torch.testing.assert_close(got, want, atol=tol, rtol=tol, msg=name)
    names = ["input"] + (["h_0", "c_0"] if with_state else []) + [n for n, _ in ours.named_parameters()]
    assert len(result[3]) == len(expected[3]) == len(names)
    for name, got, want in zip(names, result[3], expected[3]):
        torch.testing.assert_close(got, want, atol=tol, rtol=tol, msg=f"gradient of {name}")


def test_parameter_names_and_state_dict_both_ways():
    reference = torch.nn.LSTM(2, 8, num_layers=3, batch_first=True)
    ours = LSTM(2, 8, num_layers=3, batch_first=True)
    assert [(n, p.shape) for n, p in ours.named_parameters()] == \
        [(n, p.shape) for n, p in reference.named_parameters()]
    ours.load_state_dict(reference.state_dict())  # unchanged names and shapes
    back = ours.to_torch()
    for (name, a), (_, b) in zip(back.state_dict().items(), reference.state_dict().items()):
        assert torch.equal(a, b), name
    x = torch.randn(4, 6, 2)
    torch.testing.assert_close(back(x)[0], reference(x)[0], atol=0, rtol=0)


def test_cell_is_the_gate_equations():
    torch.manual_seed(0)
    cell = torch.nn.LSTMCell(3, 5)
    x, h, c = torch.randn(4, 3), torch.randn(4, 5), torch.randn(4, 5)
    expected = cell(x, (h, c))
    got = lstm_cell(x, h, c, cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("variant", ["plain", "fused"])
def test_no_bias_and_unbatched_input(variant):
    torch.manual_seed(0)
    reference = torch.nn.LSTM(3, 6, num_layers=2, bias=False)
    ours = LSTM.from_torch(reference, variant=variant)
    x = torch.randn(9, 3)  # unbatched (L, H_in)
    out, (h, c) = ours(x)
    ref_out, (ref_h, ref_c) = reference(x)
    assert out.shape == (9, 6) and h.shape == (2, 6)
    for a, b in ((out, ref_out), (h, ref_h), (c, ref_c)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    out.sum().backward()
    assert ours.weight_hh_l1.grad is not None


@pytest.mark.parametrize("variant", ["plain", "fused"])
def test_dropout_between_layers(variant):
    # dropout=1 zeroes every input of layer 2 in training mode, in both implementations
    # (whatever the random mask), and is off in eval mode.
    reference, ours = _pair(2, True, variant, torch.float32, dropout=1.0)
    x = torch.randn(3, 5, 3)
    reference.train(), ours.train()
    torch.testing.assert_close(ours(x)[0], reference(x)[0], atol=1e-6, rtol=1e-6)
    reference.eval(), ours.eval()
    torch.testing.assert_close(ours(x)[0], reference(x)[0], atol=1e-6, rtol=1e-6)
    ours.train()
    assert not torch.allclose(ours(x)[0], reference(x)[0])


def test_lstm_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        LSTM(1, 4, variant="fast")
    with pytest.raises(ValueError, match="hidden_size"):
        LSTM(1, 0)
    with pytest.raises(ValueError, match="input_size=2"):
        LSTM(2, 4)(torch.randn(5, 3, 3))
    with pytest.raises(ValueError, match="hx"):
        LSTM(1, 4)(torch.randn(5, 3, 1), (torch.zeros(1, 2, 4), torch.zeros(1, 2, 4)))


# --------------------------------------------------------------------------
# Windowing and scaling.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("lookback, horizon", [(1, 1), (24, 1), (12, 24), (5, 3)])
def test_windows_round_trip_exactly(lookback, horizon):
    values = load_electric_production(as_series=False)
    X, Y = make_windows(values, lookback, horizon)
    n = values.shape[0] - lookback - horizon + 1
    assert X.shape == (n, lookback) and Y.shape == (n, horizon)
    assert X.flags.writeable and Y.flags.writeable
    # Every window is the series at its own positions: rebuild the series from them.
    np.testing.assert_array_equal(np.concatenate([X[:, 0], X[-1, 1:], Y[-1]]), values)
    windows = np.concatenate([X, Y], axis=1)
    np.testing.assert_array_equal(windows[1:, :-1], windows[:-1, 1:])  # each window slides by one
    positions = np.arange(values.shape[0], dtype=np.float64)
    PX, PY = make_windows(positions, lookback, horizon)
    assert np.all(PY.min(1) > PX.max(1))  # targets strictly after their inputs
    np.testing.assert_array_equal(PY[:, 0] - PX[:, -1], 1)


@pytest.mark.parametrize("kind", ["standard", "minmax", "scale"])
def test_scaler_round_trip_and_training_part_only(kind):
    values = load_electric_production(as_series=False)
    train = values[:-24]
    scaler = SeriesScaler(kind).fit(train)
    scaled = scaler.transform(values)
    np.testing.assert_allclose(scaler.inverse_transform(scaled), values, rtol=1e-14, atol=0)
    if kind == "standard":
        assert abs(scaled[:-24].mean()) < 1e-12 and abs(scaled[:-24].std() - 1) < 1e-12
    elif kind == "scale":  # divided by the standard deviation, not centred: 0 stays exactly 0
        np.testing.assert_allclose(scaled, values / train.std(), rtol=1e-14, atol=0)
        assert scaler.transform(np.zeros(3)).tolist() == [0.0] * 3
        assert scaler.inverse_transform(np.zeros(3)).tolist() == [0.0] * 3
    else:
        assert scaled[:-24].min() == 0 and scaled[:-24].max() == 1
    # The held-out part does not move the scaler.
    other = values.copy()
    other[-24:] *= 10
    np.testing.assert_array_equal(SeriesScaler(kind).fit(other[:-24]).transform(train), scaler.transform(train))


def test_check_series_errors():
    with pytest.raises(ValueError, match="NaN"):
        check_series([1.0, np.nan, 2.0])
    with pytest.raises(TypeError, match="numeric"):
        check_series(["a", "b", "c"])
    with pytest.raises(ValueError, match="univariate"):
        check_series(pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}))
    with pytest.raises(ValueError, match="1-D"):
        check_series(np.ones((3, 2)))
    values, index = check_series(load_electric_production())
    assert values.dtype == np.float64 and isinstance(index, pd.DatetimeIndex)


# --------------------------------------------------------------------------
# The forecaster.
# --------------------------------------------------------------------------
# The plain forecaster (no deseasonalising, one network, no early stopping, no linear skip):
# what these tests check does not depend on the recipe (tests/test_lstm_recipe.py tests that).
FAST = {"hidden_size": 8, "num_layers": 1, "epochs": 2, "batch_size": 64, "deseasonalize": None,
        "n_ensemble": 1, "early_stopping": False, "linear_skip": False}


@pytest.fixture(scope="module")
def series():
    return load_electric_production()


@pytest.mark.parametrize("strategy", ["recursive", "direct"])
def test_forecaster_shapes_and_dates(series, strategy):
    model = LSTMForecaster(strategy=strategy, horizon=6, lookback=12, random_state=0, **FAST).fit(series)
    forecast = model.predict()
    assert isinstance(forecast, pd.Series) and forecast.shape == (6,)
    assert forecast.index[0] == series.index[-1] + pd.offsets.MonthBegin(1)
    assert model.network_.head.out_features == (1 if strategy == "recursive" else 6)
    assert model.predict(3).shape == (3,)
    np.testing.assert_allclose(model.predict(3).to_numpy(), forecast.to_numpy()[:3], rtol=1e-12)
    if strategy == "direct":
        with pytest.raises(ValueError, match="horizon"):
            model.predict(7)
    else:
        assert model.predict(30).shape == (30,)
    array_model = clone(model).fit(series.to_numpy())
    assert isinstance(array_model.predict(), np.ndarray)
    np.testing.assert_array_equal(array_model.predict(), forecast.to_numpy())


def test_forecaster_is_deterministic_and_leaves_global_rng_alone(series):
    state = torch.get_rng_state()
    a = LSTMForecaster(random_state=3, dropout=0.2, **{**FAST, "num_layers": 2}).fit(series)
    assert torch.equal(torch.get_rng_state(), state)
    b = LSTMForecaster(random_state=3, dropout=0.2, **{**FAST, "num_layers": 2}).fit(series)
    c = LSTMForecaster(random_state=4, dropout=0.2, **{**FAST, "num_layers": 2}).fit(series)
    assert a.loss_curve_ == b.loss_curve_
    np.testing.assert_array_equal(a.predict(12), b.predict(12))
    assert not np.array_equal(a.predict(12), c.predict(12))


def test_torch_impl_and_scratch_impl_start_equal(series):
    # Same seed, same initial weights and batches: the two implementations train alike.
    ours = LSTMForecaster(impl="scratch", random_state=0, **FAST).fit(series)
    ref = LSTMForecaster(impl="torch", random_state=0, **FAST).fit(series)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-4)
    np.testing.assert_allclose(ours.predict(12), ref.predict(12), rtol=1e-4)


def test_early_stopping_and_no_look_ahead(series):
    model = LSTMForecaster(**{**FAST, "epochs": 50, "early_stopping": True, "validation_fraction": 0.1,
                              "n_iter_no_change": 2, "tol": 10.0, "random_state": 0, "refit": False})
    model.fit(series)
    assert model.n_epochs_ == 3 and len(model.validation_scores_) == 3  # tol=10: never improves after 1
    # The windows: feed the positions 0..n-1 through the same split.
    n = len(series)
    positions = np.arange(n, dtype=np.float64)
    for strategy, horizon in (("recursive", 1), ("direct", 12)):
        probe = clone(model).set_params(strategy=strategy, horizon=horizon, scaler="minmax")
        (X, Y), (X_val, Y_val) = probe._windows(positions)
        scaler = probe.scaler_
        X, Y, Y_val = (np.rint(scaler.inverse_transform(a)) for a in (X, Y, Y_val))  # back to positions
        n_tail = max(probe._n_outputs(), int(np.ceil(0.1 * n)))
        assert Y.max() < n - n_tail <= Y_val.min()  # training targets never reach the tail
        assert Y_val.max() == n - 1 and Y.shape[1] == horizon
        assert np.all(X.max(1) < Y.min(1))
        # The scaler saw the training part only: minmax maps its last value to 1.
        assert scaler.scaler_.data_max_[0] == n - n_tail - 1


def test_training_data_never_sees_the_future(series):
    # Fitting on the first part gives the same model whatever comes after it.
    train = series.iloc[:-24]
    changed = series.copy()
    changed.iloc[-24:] = 0.0
    a = LSTMForecaster(random_state=0, **FAST).fit(train)
    b = LSTMForecaster(random_state=0, **FAST).fit(changed.iloc[:-24])
    np.testing.assert_array_equal(a.predict(24), b.predict(24))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"lookback": 0}, ValueError, "lookback"),
    ({"strategy": "mimo"}, ValueError, "strategy"),
    ({"impl": "keras"}, ValueError, "impl"),
    ({"scaler": "robust"}, ValueError, "scaler"),
    ({"dropout": 1.5}, ValueError, "dropout"),
    ({"learning_rate": 0}, ValueError, "learning_rate"),
    ({"device": "tpu"}, ValueError, "device"),
])
def test_forecaster_bad_parameters(series, kwargs, error, match):
    with pytest.raises(error, match=match):
        LSTMForecaster(**kwargs).fit(series)


def test_forecaster_bad_series():
    model = LSTMForecaster(lookback=24, horizon=12, **FAST)
    with pytest.raises(ValueError, match="lookback \\+ horizon = 36"):
        model.fit(np.arange(30.0))
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.r_[np.arange(50.0), np.nan])
    with pytest.raises(TypeError, match="numeric"):
        model.fit(np.array(["x"] * 50))
    with pytest.raises(Exception, match="not fitted"):
        LSTMForecaster().predict(3)


def test_short_training_beats_seasonal_naive(series):
    """A few seconds of training on 1985-2016 beats the seasonal naive forecast of the last 24 months."""
    train, test = series.iloc[:-24], series.iloc[-24:]
    naive = rmse(test, seasonal_naive_forecast(train.to_numpy(), 24))
    model = LSTMForecaster(strategy="direct", horizon=24, epochs=20, learning_rate=3e-3, random_state=0,
                           deseasonalize=None, n_ensemble=1, early_stopping=False, linear_skip=False,
                           hidden_size=64, num_layers=2)
    forecast = model.fit(train).predict(24)
    assert rmse(test, forecast) < 0.95 * naive
