"""The LSTMForecaster recipe: exponential smoothing against statsmodels, the deseasonalised
windows, no look-ahead into a held-out or validation tail, the ensemble and its seeds, and
direct multi-horizon shapes. Quick settings throughout (a few epochs)."""

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("statsmodels")

from sklearn.base import clone  # noqa: E402

from fastscratch import LSTMForecaster  # noqa: E402
from fastscratch.datasets import load_co2_mauna_loa, load_electric_production  # noqa: E402
from fastscratch.timeseries._smoothing import SeasonalSmoother, seasonal_smoothing_states  # noqa: E402
from fastscratch.timeseries.comparison import seasonal_naive_forecast  # noqa: E402

QUICK = {"hidden_size": 8, "num_layers": 1, "epochs": 3, "batch_size": 64, "n_iter_no_change": 2}


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def electric():
    return load_electric_production()


def _statsmodels_smoothing(y, m=12):
    from statsmodels.tsa.holtwinters import ExponentialSmoothing

    start = y[:m].mean()
    return ExponentialSmoothing(y, seasonal="add", seasonal_periods=m, initialization_method="known",
                                initial_level=start, initial_seasonal=y[:m] - start)


# --------------------------------------------------------------------------
# Exponential smoothing = statsmodels' additive Holt-Winters without trend.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("loader", [load_electric_production, load_co2_mauna_loa])
def test_smoothing_states_are_statsmodels(loader):
    y = loader(as_series=False)[:200]
    level, season, errors = seasonal_smoothing_states(y, 0.3, 0.2, 12)
    reference = _statsmodels_smoothing(y).fit(smoothing_level=0.3, smoothing_seasonal=0.2, optimized=False)
    np.testing.assert_allclose(level, reference.level, rtol=0, atol=1e-10)
    np.testing.assert_allclose(season[12:], reference.season, rtol=0, atol=1e-10)
    np.testing.assert_allclose(y - errors, reference.fittedvalues, rtol=0, atol=1e-10)
    # Fitted constants: least squares at least as good as statsmodels' own optimiser.
    ours = SeasonalSmoother(12).fit(y)
    theirs = _statsmodels_smoothing(y).fit()
    sse = float(np.sum(ours.states(y)[2] ** 2))
    assert sse <= theirs.sse * (1 + 1e-6)
    assert ours.alpha_ == pytest.approx(theirs.params["smoothing_level"], abs=2e-3)
    assert ours.gamma_ == pytest.approx(theirs.params["smoothing_seasonal"], abs=2e-3)


def test_smoothing_is_causal_and_needs_two_seasons():
    y = load_co2_mauna_loa(as_series=False)[:120]
    full = seasonal_smoothing_states(y, 0.5, 0.1, 12)
    part = seasonal_smoothing_states(y[:70], 0.5, 0.1, 12)
    np.testing.assert_array_equal(full[0][:70], part[0])
    np.testing.assert_array_equal(full[1][:82], part[1])
    with pytest.raises(ValueError, match="two seasons"):
        SeasonalSmoother(12).fit(y[:20])


# --------------------------------------------------------------------------
# The base forecast: with a zero correction the forecaster is the smoothing's
# (or the seasonal naive) forecast.
# --------------------------------------------------------------------------
def _zero_correction(model):
    """Make every member output the scaled zero correction."""
    zero = float(model.scaler_.transform(np.zeros(1))[0])
    with torch.no_grad():
        for member in model.members_:
            network = member["network"]
            network.head.weight.zero_()
            network.head.bias.fill_(zero)
            if network.skip is not None:
                network.skip.weight.zero_()
    return model


def test_zero_correction_is_the_smoothing_forecast(electric):
    train = electric.to_numpy()[:-24]
    model = LSTMForecaster(deseasonalize="smoothing", early_stopping=False, n_ensemble=2, random_state=0,
                           log_transform=False, **QUICK).fit(train)
    forecast = _zero_correction(model).predict(24)
    smoother = model.smoother_
    reference = _statsmodels_smoothing(train).fit(smoothing_level=smoother.alpha_,
                                                 smoothing_seasonal=smoother.gamma_, optimized=False)
    # The textbook forecast (Hyndman and Athanasopoulos, FPP 8.3) from statsmodels' own states:
    # level_T + s_{T+h-m(k+1)}, k = floor((h-1)/m). (statsmodels' ``forecast`` differs at h = 12
    # and 24, where it does not use the season of the last observation.)
    h = np.arange(1, 25)
    last = len(train) - 1
    textbook = reference.level[-1] + reference.season[last + h - 12 * ((h - 1) // 12 + 1)]
    np.testing.assert_allclose(forecast, textbook, rtol=0, atol=1e-4)  # float32 network output
    np.testing.assert_allclose(forecast[:11], reference.forecast(24)[:11], rtol=0, atol=1e-4)


def test_zero_correction_is_the_seasonal_naive_forecast(electric):
    train = electric.to_numpy()[:-24]
    model = LSTMForecaster(deseasonalize="difference", n_seasons=1, early_stopping=False, n_ensemble=1,
                           random_state=0, log_transform=False, **QUICK).fit(train)
    np.testing.assert_allclose(_zero_correction(model).predict(24), seasonal_naive_forecast(train, 24),
                               rtol=0, atol=1e-4)  # float32 network output


def _base_of_several_seasons(y, n_seasons, steps, m=12):
    """The documented base at the end of ``y``, with loops: the last season's mean plus, for
    each step, the mean over the last ``n_seasons`` seasons (at most the full seasons ``y``
    holds) of that month's value minus the mean of the season it belongs to."""
    last = len(y) - 1
    n_seasons = min(n_seasons, len(y) // m)

    def level(end):
        return sum(y[end - m + 1: end + 1]) / m

    base = []
    for h in range(1, steps + 1):
        month = last + h - m * ((h + m - 1) // m)  # the latest observation of the same month
        deviation = sum(y[month - k * m] - level(last - k * m) for k in range(n_seasons)) / n_seasons
        base.append(level(last) + deviation)
    return np.array(base)


@pytest.mark.parametrize("n_seasons", [2, 6])
@pytest.mark.parametrize("log_transform", [False, True])
def test_zero_correction_is_the_base_of_several_seasons(electric, n_seasons, log_transform):
    train = electric.to_numpy()[:-24]
    model = LSTMForecaster(n_seasons=n_seasons, log_transform=log_transform, early_stopping=False, n_ensemble=1,
                           random_state=0, **QUICK).fit(train)
    expected = (np.exp(_base_of_several_seasons(np.log(train), n_seasons, 24)) if log_transform
                else _base_of_several_seasons(train, n_seasons, 24))
    forecast = _zero_correction(model).predict(24)
    np.testing.assert_allclose(forecast, expected, rtol=1e-6)  # float32 zero correction
    assert np.max(np.abs(forecast - seasonal_naive_forecast(train, 24))) > 1.0  # not the naive one
    # The same base from a shorter series given to predict, and from one of fewer than n_seasons seasons.
    for short in (train[:-7], train[:53]):  # 53 values: 4 full seasons
        expected = (np.exp(_base_of_several_seasons(np.log(short), n_seasons, 24)) if log_transform
                    else _base_of_several_seasons(short, n_seasons, 24))
        np.testing.assert_allclose(model.predict(24, y=short), expected, rtol=1e-6)


# --------------------------------------------------------------------------
# No look-ahead: the held-out tail and the validation tail.
# --------------------------------------------------------------------------
@pytest.mark.parametrize("deseasonalize, n_seasons", [("smoothing", 1), ("difference", 1), ("difference", 4),
                                                       (None, 1)])
def test_windows_never_read_ahead(deseasonalize, n_seasons):
    n, lookback, horizon = 120, 24, 12
    y = load_co2_mauna_loa(as_series=False)[:n]
    model = LSTMForecaster(lookback=lookback, horizon=horizon, deseasonalize=deseasonalize, n_seasons=n_seasons,
                           early_stopping=False)
    model.smoother_ = SeasonalSmoother(12).fit(y)
    ends = np.arange(lookback + 12, n)
    inputs, base = model._inputs_and_base(y, ends)
    for k, end in enumerate(ends[::7]):
        changed = y.copy()
        changed[end + 1:] += 100.0  # the future of this window
        inputs_c, base_c = model._inputs_and_base(changed, np.array([end]))
        np.testing.assert_array_equal(inputs_c[0], inputs[7 * k])
        np.testing.assert_array_equal(base_c[0], base[7 * k])
    assert inputs.shape == (len(ends), lookback) and base.shape == (len(ends), horizon)


@pytest.mark.parametrize("deseasonalize", ["smoothing", "difference", None])
def test_validation_tail_never_reaches_scaling_smoothing_or_training(electric, deseasonalize):
    y = electric.to_numpy()
    # The scaler's statistics (scaler="auto" may choose on the tail, as deseasonalize="auto" does).
    model = LSTMForecaster(deseasonalize=deseasonalize, horizon=12, validation_fraction=0.1, scaler="standard",
                           **QUICK)
    model._check_params()
    (X, Y), (X_val, Y_val) = model._windows(y)
    smoother, scaler = model.smoother_, model.scaler_
    n_fit = len(y) - int(np.ceil(0.1 * len(y)))
    changed = y.copy()
    changed[n_fit:] *= 3.0
    (X_c, Y_c), (X_val_c, Y_val_c) = model._windows(changed)
    np.testing.assert_array_equal(X_c, X)  # training windows, scaled: same smoothing, same scaler
    np.testing.assert_array_equal(Y_c, Y)
    if deseasonalize == "smoothing":
        assert (model.smoother_.alpha_, model.smoother_.gamma_) == (smoother.alpha_, smoother.gamma_)
        fitted = SeasonalSmoother(12).fit(y[:n_fit])
        assert (fitted.alpha_, fitted.gamma_) == (smoother.alpha_, smoother.gamma_)
    assert model.scaler_.scaler_.mean_[0] == scaler.scaler_.mean_[0]
    assert not np.array_equal(Y_val_c, Y_val)  # the validation targets do see the tail
    # Every training target lies before the tail, every validation target reaches into it.
    positions = np.arange(len(y), dtype=np.float64)
    none = clone(model).set_params(deseasonalize=None, scaler="minmax")
    (_, Y_pos), (_, Y_val_pos) = none._windows(positions)
    Y_pos, Y_val_pos = (np.rint(none.scaler_.inverse_transform(a)) for a in (Y_pos, Y_val_pos))
    assert Y_pos.max() == n_fit - 1 and Y_val_pos[:, 0].min() == n_fit and Y_val_pos.max() == len(y) - 1


@pytest.mark.parametrize("deseasonalize", ["difference", None])
def test_partial_validation_windows_score_the_tail_and_nothing_else(electric, deseasonalize):
    y = electric.to_numpy()
    params = {"deseasonalize": deseasonalize, **QUICK}
    full = LSTMForecaster(**params)
    partial = LSTMForecaster(validation_windows="partial", **params)
    full._check_params(), partial._check_params()
    (X, Y), (X_val, Y_val) = full._windows(y)
    (X_p, Y_p), (X_val_p, Y_val_p, mask) = partial._windows(y)
    # The same training windows and scaler: the added windows only validate.
    np.testing.assert_array_equal(X_p, X)
    np.testing.assert_array_equal(Y_p, Y)
    assert partial.scaler_.scaler_.mean_[0] == full.scaler_.scaler_.mean_[0]
    # The full validation windows come first, every target counted.
    n_full = len(X_val)
    np.testing.assert_array_equal(X_val_p[:n_full], X_val)
    np.testing.assert_array_equal(Y_val_p[:n_full], Y_val)
    assert (mask[:n_full] == 1).all()
    # By positions: window k of the tail ends at n_fit - 1 + k, its step h (0-based) is position
    # n_fit + k + h, counted when it lies in the series: each tail value at every horizon reaching it.
    positions = np.arange(len(y), dtype=np.float64)
    probe = clone(partial).set_params(deseasonalize=None, scaler="minmax")
    _, (_, Y_pos, mask_pos) = probe._windows(positions)
    n_fit = len(y) - 24
    expected = n_fit + np.arange(24)[:, None] + np.arange(24)
    np.testing.assert_array_equal(mask_pos > 0, expected < len(y))
    np.testing.assert_array_equal(np.rint(probe.scaler_.inverse_transform(Y_pos))[mask_pos > 0],
                                  expected[expected < len(y)])
    # The validation loss is the mean squared error over the counted targets only.
    predicted = np.random.default_rng(0).standard_normal(Y_val_p.shape)
    val = tuple(torch.as_tensor(a) for a in (X_val_p, Y_val_p, mask))
    loss = LSTMForecaster._validation_loss(torch.as_tensor(predicted), val)
    assert loss == pytest.approx(np.mean((predicted - Y_val_p)[mask > 0] ** 2), rel=1e-12)


def test_fit_on_the_training_part_ignores_the_held_out_tail(electric):
    changed = electric.copy()
    changed.iloc[-24:] = 0.0
    params = {**QUICK, "n_ensemble": 2, "random_state": 0}
    a = LSTMForecaster(**params).fit(electric.iloc[:-24])
    b = LSTMForecaster(**params).fit(changed.iloc[:-24])
    np.testing.assert_array_equal(a.predict(24), b.predict(24))


# --------------------------------------------------------------------------
# The ensemble, the seeds, the shapes.
# --------------------------------------------------------------------------
def test_ensemble_mean_is_the_mean_of_its_members(electric):
    model = LSTMForecaster(n_ensemble=3, random_state=0, **QUICK).fit(electric.iloc[:-24])
    members = model.predict_members(24)
    assert members.shape == (3, 24)
    np.testing.assert_allclose(model.predict(24).to_numpy(), members.mean(0), rtol=1e-15)
    assert len({m["seed"] for m in model.members_}) == 3
    assert len({tuple(row) for row in members}) == 3  # different seeds, different networks
    # Member k is the single network trained with the k-th seed: the first member of an
    # ensemble is the one-network fit with the same random_state.
    single = LSTMForecaster(n_ensemble=1, random_state=0, **QUICK).fit(electric.iloc[:-24])
    np.testing.assert_array_equal(single.predict_members(24)[0], members[0])
    assert single.loss_curve_ == model.members_[0]["loss_curve"] == model.loss_curve_
    # Growing the ensemble only adds members: those of n_ensemble=2 are the first two of 3
    # (so the default of 10 holds the 5-network ensemble of the same random_state).
    pair = LSTMForecaster(n_ensemble=2, random_state=0, **QUICK).fit(electric.iloc[:-24])
    np.testing.assert_array_equal(pair.predict_members(24), members[:2])
    assert [m["seed"] for m in pair.members_] == [m["seed"] for m in model.members_[:2]]


def test_same_seed_same_forecast(electric):
    params = {**QUICK, "n_ensemble": 2}
    a = LSTMForecaster(random_state=7, **params).fit(electric)
    b = LSTMForecaster(random_state=7, **params).fit(electric)
    c = LSTMForecaster(random_state=8, **params).fit(electric)
    np.testing.assert_array_equal(a.predict_members(), b.predict_members())
    assert [m["validation_scores"] for m in a.members_] == [m["validation_scores"] for m in b.members_]
    assert not np.array_equal(a.predict(), c.predict())


@pytest.mark.parametrize("deseasonalize", ["smoothing", "difference", None])
def test_direct_multi_horizon_shapes(electric, deseasonalize):
    model = LSTMForecaster(horizon=18, lookback=12, deseasonalize=deseasonalize, n_ensemble=2,
                           random_state=0, **QUICK).fit(electric.iloc[:-24])
    for member in model.members_:
        assert member["network"].head.out_features == 18 and member["network"].skip.out_features == 18
    forecast = model.predict()
    assert isinstance(forecast, pd.Series) and forecast.shape == (18,)
    assert forecast.index[0] == electric.index[-24]
    np.testing.assert_array_equal(model.predict(5).to_numpy(), forecast.to_numpy()[:5])
    assert model.predict_members(5).shape == (2, 5)
    with pytest.raises(ValueError, match="horizon"):
        model.predict(19)
    # Forecasting from a longer series uses its end, with the same fitted parts.
    later = model.predict(18, y=electric.iloc[:-6])
    assert later.index[0] == electric.index[-6] and np.all(np.isfinite(later))


def test_auto_keeps_the_candidate_that_validates_best(electric):
    params = {**QUICK, "n_ensemble": 2, "random_state": 0, "n_iter_no_change": 3}
    auto = LSTMForecaster(deseasonalize="auto", **params).fit(electric.iloc[:-24])
    assert set(auto.validation_rmse_) == {"difference", "smoothing"}
    assert auto.deseasonalize_ == min(auto.validation_rmse_, key=auto.validation_rmse_.get)
    for mode in ("difference", "smoothing"):  # each candidate is the plain fit of that mode
        alone = LSTMForecaster(deseasonalize=mode, **params).fit(electric.iloc[:-24])
        assert alone.validation_rmse_[mode] == auto.validation_rmse_[mode]
        if mode == auto.deseasonalize_:
            np.testing.assert_array_equal(alone.predict_members(), auto.predict_members())
    # The validation RMSE is the ensemble's error on the validation windows, in the series' units
    # (the networks before any refit, the log undone).
    y = electric.to_numpy()[:-24]
    model = LSTMForecaster(deseasonalize="difference", refit=False, log_transform=True, **params).fit(y)
    units = model._to_model_units(y)
    ends, _, tail, _ = model._split(units)
    _, (X_val, _) = model._windows(units)
    with torch.no_grad():
        scaled = np.mean([m["network"](torch.as_tensor(X_val, dtype=torch.float32)).double().numpy()
                          for m in model.members_], 0)
    base = model._inputs_and_base(units, ends[tail])[1]
    forecast = np.exp(base + model.scaler_.inverse_transform(scaled)) * model.scale_
    error = forecast - y[ends[tail][:, None] + np.arange(1, 25)]
    assert model.validation_rmse_["difference"] == pytest.approx(np.sqrt(np.mean(error ** 2)), rel=1e-6)


# --------------------------------------------------------------------------
# Refit after early stopping, the log transform.
# --------------------------------------------------------------------------
def test_refit_trains_on_every_window_for_the_chosen_epochs(electric):
    y = electric.to_numpy()[:-24]
    params = {**QUICK, "epochs": 8, "n_iter_no_change": 3, "tol": 0.0, "n_ensemble": 2, "random_state": 0}
    stopped = LSTMForecaster(refit=False, **params).fit(y)
    refitted = LSTMForecaster(refit=True, **params).fit(y)
    units = refitted._to_model_units(y)
    (X_all, Y_all), validation = clone(refitted)._windows(units, validate=False)
    assert validation is None and X_all.shape[0] == len(y) - 12 - 36 - 24 + 1  # every window
    for before, after in zip(stopped.members_, refitted.members_):
        # The epoch count is the best validation epoch of the early-stopped member (same seed).
        best = int(np.argmin(before["validation_scores"])) + 1
        assert before["best_epoch"] == after["best_epoch"] == best > 0  # the base did not win here
        assert after["n_epochs"] == len(after["loss_curve"]) == best
        assert after["validation_scores"] == before["validation_scores"] and after["seed"] == before["seed"]
    # The refit's scaler saw every window, the early-stopped one only those before the tail.
    everything = np.concatenate([refitted.scaler_.inverse_transform(X_all).ravel(),
                                 refitted.scaler_.inverse_transform(Y_all).ravel()])
    assert refitted.scaler_.scaler_.mean_[0] == pytest.approx(everything.mean(), rel=1e-9)
    assert stopped.scaler_.scaler_.n_samples_seen_ < refitted.scaler_.scaler_.n_samples_seen_
    assert not np.array_equal(stopped.predict(), refitted.predict())


@pytest.mark.parametrize("log_transform", [False, True])
def test_refit_and_log_keep_the_held_out_tail_out(electric, log_transform):
    # Same promise as above, with the refit on the validation tail and the log transform.
    changed = electric.copy()
    changed.iloc[-24:] = 1.0
    params = {**QUICK, "n_ensemble": 2, "random_state": 0, "refit": True, "log_transform": log_transform}
    a = LSTMForecaster(**params).fit(electric.iloc[:-24])
    b = LSTMForecaster(**params).fit(changed.iloc[:-24])
    np.testing.assert_array_equal(a.predict_members(24), b.predict_members(24))
    assert a.validation_rmse_ == b.validation_rmse_


# --------------------------------------------------------------------------
# The base forecast as epoch 0 of early stopping; inputs of the season's phase.
# --------------------------------------------------------------------------
def test_base_fallback_member_is_the_base_forecast(electric):
    """No trained epoch can beat the base by a tolerance of 1e9: every member then forecasts the
    base (the documented average of six seasons), and the refit trains nothing."""
    y = electric.to_numpy()[:-24]
    model = LSTMForecaster(**{**QUICK, "tol": 1e9}, base_fallback=True, n_ensemble=2, random_state=0).fit(y)
    assert [member["best_epoch"] for member in model.members_] == [0, 0]
    assert [member["n_epochs"] for member in model.members_] == [0, 0]
    base = _base_of_several_seasons(np.log(y), 6, 24)
    np.testing.assert_allclose(np.log(model.predict_members(24)), np.stack([base, base]), rtol=0,
                               atol=1e-6)  # the scaled 0 in float32
    np.testing.assert_allclose(np.log(model.predict(24)), base, rtol=0, atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_base_fallback_keeps_a_trained_epoch_only_when_it_beats_the_base(electric, seed):
    """The same training with and without the fallback (patience = epochs: nothing stops early);
    the base's score is the mean squared error of a correction of 0 on the validation windows, and a trained
    epoch is kept only when it scores below it."""
    y = electric.to_numpy()[:-24]
    params = {**QUICK, "epochs": 5, "n_iter_no_change": 5, "tol": 0.0, "refit": False, "n_ensemble": 2,
              "random_state": seed}
    with_base = LSTMForecaster(base_fallback=True, **params).fit(y)
    without = LSTMForecaster(base_fallback=False, **params).fit(y)
    _, (_, Y_val) = clone(with_base)._windows(with_base._to_model_units(y))
    for kept, plain in zip(with_base.members_, without.members_):
        assert kept["validation_scores"] == plain["validation_scores"]
        assert plain["base_validation_score"] is None
        zero = with_base.scaler_.transform(np.zeros(1))[0]
        assert kept["base_validation_score"] == pytest.approx(np.mean((Y_val - zero) ** 2), rel=1e-5)  # float32
        best = int(np.argmin(plain["validation_scores"]))
        beats = plain["validation_scores"][best] < kept["base_validation_score"]
        assert kept["best_epoch"] == (best + 1 if beats else 0)
        assert plain["best_epoch"] == best + 1


def test_seasonal_inputs_carry_the_phase_of_the_dates(electric):
    y = electric[:-24]  # monthly, from January 1985
    params = {**QUICK, "early_stopping": False, "n_ensemble": 1, "random_state": 0, "seasonal_inputs": True}
    dated = LSTMForecaster(**params).fit(y)
    plain = LSTMForecaster(**params).fit(y.to_numpy())  # no dates: phase counted from the first value
    assert dated.phase_ == plain.phase_ == 0 and dated.network_.lstm.input_size == 3
    np.testing.assert_array_equal(np.asarray(dated.predict()), plain.predict())
    march = y[2:]  # from March: phase 2, every window step carries cos and sin of its month
    model = LSTMForecaster(**params).fit(march)
    assert model.phase_ == 2 and model.last_phase_ == 2 + len(march) - 1
    end = len(march) - 1
    X = model._with_phase(np.zeros((1, model.lookback)), np.array([end]), model.phase_)
    months = march.index[end + 1 - model.lookback:].month.to_numpy() - 1
    np.testing.assert_allclose(X[0, :, 1], np.cos(2 * np.pi * months / 12), atol=1e-12)
    np.testing.assert_allclose(X[0, :, 2], np.sin(2 * np.pi * months / 12), atol=1e-12)
    # predict(y=...) reads the phase of the series it is given: the same series, the same forecast;
    # the same values as a plain array (phase 0) give another.
    np.testing.assert_array_equal(np.asarray(model.predict(y=march)), np.asarray(model.predict()))
    assert not np.array_equal(model.predict(y=march.to_numpy()), np.asarray(model.predict()))
    # Recursive forecasts append each step's phase.
    recursive = LSTMForecaster(**{**params, "strategy": "recursive", "deseasonalize": None}).fit(march)
    assert recursive.predict(30).shape == (30,)


def test_scale_scaler_makes_a_zero_output_the_base_forecast(electric):
    """scaler="scale" does not centre: a network whose output layers are all zero (no bias to
    set) forecasts the base itself, where with "standard" it forecasts the base plus the
    training corrections' mean."""
    train = electric.to_numpy()[:-24]
    expected = np.exp(_base_of_several_seasons(np.log(train), 6, 24))
    forecasts = {}
    for scaler in ("scale", "standard"):
        model = LSTMForecaster(scaler=scaler, early_stopping=False, n_ensemble=1, random_state=0, **QUICK).fit(train)
        with torch.no_grad():
            for parameter in (*model.network_.head.parameters(), *model.network_.skip.parameters()):
                parameter.zero_()
        forecasts[scaler] = model.predict(24)
    np.testing.assert_allclose(forecasts["scale"], expected, rtol=1e-12)
    assert np.max(np.abs(forecasts["standard"] / expected - 1)) > 1e-3


def test_log_transform_zero_correction_is_the_seasonal_naive_forecast(electric):
    train = electric.to_numpy()[:-24]
    model = LSTMForecaster(log_transform=True, n_seasons=1, early_stopping=False, n_ensemble=1, random_state=0,
                           **QUICK).fit(train)
    np.testing.assert_allclose(_zero_correction(model).predict(24), seasonal_naive_forecast(train, 24),
                               rtol=1e-6)  # exp of a float32 correction of zero
    with pytest.raises(ValueError, match="log_transform=True needs a positive series"):
        LSTMForecaster(log_transform=True, **QUICK).fit(np.r_[train, 0.0])
    with pytest.raises(ValueError, match="log_transform=True needs a positive series; y has"):
        model.predict(24, y=-train)
    # "auto": the log for a positive series, the series itself otherwise.
    auto = {**QUICK, "n_ensemble": 1, "random_state": 0, "early_stopping": False}
    assert LSTMForecaster(**auto).fit(train).log_transform_ is True
    shifted = LSTMForecaster(**auto).fit(train - train.mean())
    assert shifted.log_transform_ is False
    plain = LSTMForecaster(log_transform=False, **auto).fit(train - train.mean())
    np.testing.assert_array_equal(shifted.predict(24), plain.predict(24))


# --------------------------------------------------------------------------
# Scale robustness and size checks before allocation (issue 23).
# --------------------------------------------------------------------------
@pytest.mark.parametrize("recipe", [{"deseasonalize": "difference"}, {"deseasonalize": "smoothing"},
                                    {"deseasonalize": None}, {"log_transform": True, "refit": True}])
def test_forecasts_scale_with_the_series(electric, recipe):
    """1e300 and 1e-300 times the series: the forecast times the same factor (rtol 1e-6: the
    internal power-of-two scaling is exact; the smoothing constants move by the optimiser's
    rounding)."""
    y = electric.to_numpy()[:-24]
    params = {**QUICK, "n_ensemble": 2, "random_state": 0, **recipe}
    reference = LSTMForecaster(**params).fit(y)
    expected = reference.predict(24)
    for scale in (1e300, 1e-300):
        model = LSTMForecaster(**params).fit(y * scale)
        forecast = model.predict(24)
        assert np.all(np.isfinite(forecast))
        np.testing.assert_allclose(forecast / scale, expected, rtol=1e-6)
        np.testing.assert_allclose(model.predict(12, y=y[:-12] * scale) / scale, reference.predict(12, y=y[:-12]),
                                   rtol=1e-6)
        validation = {k: v / scale for k, v in model.validation_rmse_.items()}
        assert validation == pytest.approx(reference.validation_rmse_, rel=1e-6)


@pytest.mark.parametrize("kwargs", [{"hidden_size": 10 ** 6}, {"hidden_size": 4096, "num_layers": 1000},
                                    {"hidden_size": 256, "n_ensemble": 10 ** 7}])
def test_sizes_that_cannot_fit_are_refused_before_allocation(electric, kwargs, monkeypatch):
    def no_training(*args, **kw):
        raise AssertionError("a network was built before the size check")

    monkeypatch.setattr(LSTMForecaster, "_new_network", no_training)
    with pytest.raises(ValueError, match=f"hidden_size={kwargs['hidden_size']}.*GiB.*smaller hidden_size"):
        LSTMForecaster(**kwargs).fit(electric)
    from fastscratch.timeseries.lstm import LSTM

    if "n_ensemble" not in kwargs:
        with pytest.raises(ValueError, match=f"hidden_size={kwargs['hidden_size']}.*GiB"):
            LSTM(1, kwargs["hidden_size"], kwargs.get("num_layers", 1))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"hidden_size": "32"}, ValueError, "hidden_size must be a positive integer"),
    ({"hidden_size": 2.5}, ValueError, "hidden_size must be a positive integer"),
    ({"num_layers": -1}, ValueError, "num_layers must be a positive integer"),
    ({"weight_decay": -1e-3}, ValueError, "weight_decay"),
    ({"weight_decay": float("inf")}, ValueError, "weight_decay"),
    ({"log_transform": "yes"}, TypeError, "log_transform must be 'auto', True or False"),
    ({"refit": None}, TypeError, "refit must be True or False"),
    ({"seasonal_inputs": "yes"}, TypeError, "seasonal_inputs must be True or False"),
    ({"base_fallback": 1}, TypeError, "base_fallback must be True or False"),
])
def test_size_and_switch_parameters_are_checked(electric, kwargs, error, match):
    with pytest.raises(error, match=match):
        LSTMForecaster(**kwargs).fit(electric)


@pytest.mark.parametrize("kwargs, match", [
    ({"deseasonalize": "stl"}, "deseasonalize"),
    ({"deseasonalize": "smoothing", "strategy": "recursive"}, "strategy='direct'"),
    ({"n_ensemble": 0}, "n_ensemble"),
    ({"deseasonalize": "auto", "early_stopping": False}, "early_stopping"),
    ({"seasonal_period": 0}, "seasonal_period"),
    ({"n_seasons": 0}, "n_seasons must be a positive integer"),
    ({"n_seasons": 2.0}, "n_seasons must be a positive integer"),
    ({"validation_windows": "all"}, "validation_windows"),
])
def test_recipe_bad_parameters(electric, kwargs, match):
    with pytest.raises(ValueError, match=match):
        LSTMForecaster(**kwargs).fit(electric)


def test_recipe_needs_enough_values():
    with pytest.raises(ValueError, match="seasonal_period \\(12\\) \\+ lookback \\+ horizon = 72"):
        LSTMForecaster(deseasonalize="difference", n_seasons=1, early_stopping=False).fit(np.arange(70.0))
    with pytest.raises(ValueError, match="seasonal_period \\(12\\) \\+ lookback \\+ horizon = 72"):
        LSTMForecaster(n_seasons=6, early_stopping=False).fit(np.arange(70.0))
    with pytest.raises(ValueError, match="validation_fraction"):
        LSTMForecaster(validation_fraction=0.5).fit(np.arange(80.0))


# --------------------------------------------------------------------------
# scaler="auto": centring or not, chosen on rolling origins of the series given to fit.
# --------------------------------------------------------------------------
CHOICE = {**QUICK, "epochs": 1, "n_ensemble": 1, "random_state": 0}  # the choice trains no network


def _auto_scaler_reference(y, n_origins=3, lookback=36, m=12, steps=24, n_seasons=6):
    """scaler="auto"'s scores with loops, from the documented rule: at each origin t, the
    zero-output errors of "scale" (the corrections r_{t,h} themselves) and of "standard" (r_{t,h}
    minus the mean of the inputs and corrections of the windows whose targets end by t), each
    computed from ``y[: t + 1]`` (the mean) and ``y[: t + steps + 1]`` (the corrections) only."""
    ly = np.log(y)
    sums, count = {"standard": 0.0, "scale": 0.0}, 0
    for k in range(n_origins):
        t = len(ly) - 1 - steps - m * k
        seen = ly[: t + 1]  # everything the mean may read
        pooled = []
        for end in range(m + lookback - 1, t - steps + 1):
            pooled.extend(seen[j] - seen[j - m] for j in range(end - lookback + 1, end + 1))
            pooled.extend(seen[end + 1: end + steps + 1] - _base_of_several_seasons(seen[: end + 1], n_seasons, steps))
        corrections = ly[t + 1: t + steps + 1] - _base_of_several_seasons(ly[: t + 1], n_seasons, steps)
        sums["standard"] += np.sum((corrections - np.mean(pooled)) ** 2)
        sums["scale"] += np.sum(corrections ** 2)
        count += steps
    return {kind: np.sqrt(total / count) for kind, total in sums.items()}


def test_auto_scaler_follows_the_documented_rule_and_reads_no_tail(electric):
    """The scores equal a loop version whose means read only the values up to each origin; the
    kept scaler is the one a fit with that scaler gets (same forecast, bit for bit); and a
    held-out tail changed after the split changes nothing."""
    from fastscratch.timeseries.windowing import split_series

    train = electric.to_numpy()[:-24]
    model = LSTMForecaster(scaler="auto", **CHOICE).fit(train)
    reference = _auto_scaler_reference(train)
    assert model.scaler_scores_.keys() == reference.keys()
    for kind in reference:
        assert model.scaler_scores_[kind] == pytest.approx(reference[kind], rel=1e-9)
    chosen = "standard" if reference["standard"] <= reference["scale"] else "scale"
    assert model.scaler_.kind == chosen == "scale"  # electric's growth stalls: the mean correction misleads
    same = LSTMForecaster(scaler=chosen, **CHOICE).fit(train)
    np.testing.assert_array_equal(model.predict(24), same.predict(24))
    assert same.scaler_scores_ == {}

    changed = electric.copy()
    changed.iloc[-24:] = changed.iloc[-24:] * 1.5 + 10.0
    for y in (electric, changed):
        part, _ = split_series(y, 24)
        other = LSTMForecaster(scaler="auto", **CHOICE).fit(part)
        assert other.scaler_.kind == model.scaler_.kind
        assert other.scaler_scores_ == model.scaler_scores_
        np.testing.assert_array_equal(np.asarray(other.predict(24)), model.predict(24))


def _synthetic(growth_until, n=300, seed=0):
    """Monthly log-normal series: growth 0.4 % a month until ``growth_until``, flat after it,
    a sine season of amplitude 0.1 and noise of 0.5 %."""
    t = np.arange(n)
    trend = 0.004 * np.minimum(t, growth_until)
    noise = np.random.default_rng(seed).normal(0.0, 0.005, n)
    return np.exp(1.0 + trend + 0.1 * np.sin(2 * np.pi * t / 12) + noise)


@pytest.mark.parametrize("seed", [0, 1])
def test_auto_scaler_keeps_centring_for_a_steady_trend_and_drops_it_when_growth_stops(seed):
    steady = LSTMForecaster(scaler="auto", **CHOICE).fit(_synthetic(growth_until=300, seed=seed))
    stalled = LSTMForecaster(scaler="auto", **CHOICE).fit(_synthetic(growth_until=200, seed=seed))
    assert steady.scaler_.kind == "standard"
    assert steady.scaler_scores_["standard"] < 0.5 * steady.scaler_scores_["scale"]
    assert stalled.scaler_.kind == "scale"
    assert stalled.scaler_scores_["scale"] < 0.5 * stalled.scaler_scores_["standard"]


def test_auto_scaler_without_deseasonalizing_and_with_deseasonalize_auto(electric):
    """deseasonalize=None: no base, "standard" (the same fit as asking for it); deseasonalize="auto":
    the kept mode's choice."""
    y = electric.to_numpy()[:-24]
    for strategy in ("recursive", "direct"):
        params = {"deseasonalize": None, "strategy": strategy, **CHOICE}
        model = LSTMForecaster(scaler="auto", **params).fit(y)
        assert model.scaler_.kind == "standard" and model.scaler_scores_ == {}
        np.testing.assert_array_equal(model.predict(24), LSTMForecaster(scaler="standard", **params).fit(y).predict(24))
    both = LSTMForecaster(scaler="auto", deseasonalize="auto", **CHOICE).fit(y)
    alone = LSTMForecaster(scaler="auto", deseasonalize=both.deseasonalize_, **CHOICE).fit(y)
    assert both.scaler_.kind == alone.scaler_.kind and both.scaler_scores_ == alone.scaler_scores_


def test_auto_scaler_bad_values_name_the_parameter(electric):
    with pytest.raises(ValueError, match=r"scaler='robust' is not known; use one of .*'auto'"):
        LSTMForecaster(scaler="robust").fit(electric)
    with pytest.raises(ValueError, match="scaler=None is not known"):
        LSTMForecaster(scaler=None).fit(electric)
