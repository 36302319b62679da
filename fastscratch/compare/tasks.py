"""The comparisons of ``fastscratch compare``: one function per task.

Each task builds one data set, runs our estimator on every requested backend
and the reference library on it, and returns a :class:`TaskResult`: median
time of ``repeats`` runs (the first run, which includes Numba's compilation,
is reported apart), the quality metric, and how far our answers are from the
reference's.
"""

from pathlib import Path

import numpy as np

from ._runner import Row, TaskResult, time_call

# size -> parameters; "small" is the default and keeps every task well under a minute.
KNN_SIZES = {"tiny": (600, 100, 8), "small": (20_000, 2_000, 32),
             "medium": (100_000, 10_000, 32), "large": (200_000, 20_000, 32)}
KMEANS_SIZES = {"tiny": (2_000, 4), "small": (100_000, 8), "medium": (300_000, 16), "large": (1_000_000, 16)}
NB_SIZES = {"tiny": (2_000, 10), "small": (100_000, 50), "medium": (300_000, 50), "large": (1_000_000, 50)}
BOOSTING_SIZES = {"tiny": (2_000, 5), "small": (20_000, 30), "medium": (200_000, 100), "large": (1_000_000, 100)}
REPEATS = {"tiny": 1, "small": 3, "medium": 3, "large": 3}


def _max_abs(a, b):
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def knn(size, backends, progress, out_dir=None):
    """KNeighborsClassifier fit + predict vs scikit-learn's brute force."""
    from sklearn.datasets import make_classification
    from sklearn.neighbors import KNeighborsClassifier as Reference

    from .. import KNeighborsClassifier

    n_train, n_queries, n_features = KNN_SIZES[size]
    X, y = make_classification(n_samples=n_train + n_queries, n_features=n_features, n_informative=n_features // 2,
                               n_classes=3, random_state=0)
    X = X.astype(np.float32)
    X_train, y_train, X_test, y_test = X[:n_train], y[:n_train], X[n_train:], y[n_train:]
    result = TaskResult("knn", f"k-nearest neighbours: fit+predict_proba, {n_train} x {n_features} float32, "
                        f"{n_queries} queries, k = 10", "accuracy", "max |proba diff|",
                        "scikit-learn (brute)")

    def fit_predict(model):
        return lambda: model.fit(X_train, y_train).predict_proba(X_test)

    reference_proba, median, _ = time_call(fit_predict(Reference(n_neighbors=10, algorithm="brute")), REPEATS[size])
    progress()
    classes = np.unique(y_train)
    result.rows.append(Row("scikit-learn (brute)", median,
                           quality=float(np.mean(classes[reference_proba.argmax(1)] == y_test))))
    for backend in backends:
        proba, median, compile_s = time_call(fit_predict(KNeighborsClassifier(n_neighbors=10, backend=backend)),
                                             REPEATS[size])
        progress()
        diff = _max_abs(proba, reference_proba)
        result.rows.append(Row(f"fastscratch[{backend}]", median, compile_s,
                               quality=float(np.mean(classes[proba.argmax(1)] == y_test)),
                               max_diff=diff, agree=diff <= 1e-12))
    return result.finish()


def kmeans(size, backends, progress, out_dir=None):
    """KMeans (lloyd, fixed init, 20 iterations) vs scikit-learn."""
    from sklearn.cluster import KMeans as Reference
    from sklearn.datasets import make_blobs

    from .. import KMeans

    n_samples, n_clusters = KMEANS_SIZES[size]
    X, _ = make_blobs(n_samples=n_samples, n_features=16, centers=n_clusters, cluster_std=4.0, random_state=0)
    init = X[:n_clusters].copy()
    params = dict(n_clusters=n_clusters, init=init, n_init=1, max_iter=20, tol=0.0, algorithm="lloyd")
    result = TaskResult("kmeans", f"k-means (lloyd, 20 iterations, same init): {n_samples} x 16 float64, "
                        f"{n_clusters} clusters", "inertia", "max rel. centre diff", "scikit-learn")
    reference, median, _ = time_call(lambda: Reference(**params).fit(X), REPEATS[size])
    progress()
    result.rows.append(Row("scikit-learn", median, quality=float(reference.inertia_)))
    scale = np.abs(reference.cluster_centers_).max()
    for backend in backends:
        model, median, compile_s = time_call(lambda: KMeans(**params, backend=backend).fit(X), REPEATS[size])
        progress()
        diff = _max_abs(model.cluster_centers_, reference.cluster_centers_) / scale
        agree = bool(np.array_equal(model.labels_, reference.labels_) and diff <= 1e-10)
        result.rows.append(Row(f"fastscratch[{backend}]", median, compile_s, quality=float(model.inertia_),
                               max_diff=diff, agree=agree))
    return result.finish()


def naive_bayes(size, backends, progress, out_dir=None):
    """GaussianNB fit + predict_proba vs scikit-learn."""
    from sklearn.naive_bayes import GaussianNB as Reference

    from .. import GaussianNB

    n_samples, n_features = NB_SIZES[size]
    rng = np.random.default_rng(0)
    n_classes = 10
    y = rng.integers(0, n_classes, n_samples)
    means = rng.normal(0, 1, (n_classes, n_features))
    X = means[y] + rng.normal(0, 2, (n_samples, n_features))
    result = TaskResult("naive_bayes", f"Gaussian naive Bayes: fit+predict_proba, {n_samples} x {n_features} "
                        f"float64, {n_classes} classes", "accuracy", "max |proba diff|", "scikit-learn")
    reference_proba, median, _ = time_call(lambda: Reference().fit(X, y).predict_proba(X), REPEATS[size])
    progress()
    result.rows.append(Row("scikit-learn", median, quality=float(np.mean(reference_proba.argmax(1) == y))))
    for backend in backends:
        proba, median, compile_s = time_call(lambda: GaussianNB(backend=backend).fit(X, y).predict_proba(X),
                                             REPEATS[size])
        progress()
        diff = _max_abs(proba, reference_proba)
        result.rows.append(Row(f"fastscratch[{backend}]", median, compile_s,
                               quality=float(np.mean(proba.argmax(1) == y)), max_diff=diff, agree=diff <= 1e-9))
    return result.finish()


def boosting(size, backends, progress, out_dir=None):
    """XGBClassifier fit (depth 6, 256 bins) and AUC vs xgboost's hist."""
    from sklearn.datasets import make_classification
    from sklearn.metrics import roc_auc_score

    from .. import XGBClassifier

    n_samples, n_trees = BOOSTING_SIZES[size]
    X, y = make_classification(n_samples=n_samples + n_samples // 5, n_features=28, n_informative=20,
                               random_state=0)
    X_train, y_train, X_test, y_test = X[:n_samples], y[:n_samples], X[n_samples:], y[n_samples:]
    params = dict(n_estimators=n_trees, max_depth=6, learning_rate=0.1, max_bin=256, tree_method="hist")
    result = TaskResult("boosting", f"gradient boosting: fit, {n_samples} x 28, {n_trees} trees of depth 6; "
                        "AUC on a held-out fifth", "AUC", "max |proba diff|", "xgboost (hist)")
    try:
        import xgboost
    except ImportError:
        result.notes.append("xgboost is not installed (pip install xgboost): reference skipped.")
        xgboost = None
    else:
        reference, median, _ = time_call(lambda: xgboost.XGBClassifier(**params).fit(X_train, y_train),
                                         REPEATS[size])
        progress()
        reference_proba = reference.predict_proba(X_test)[:, 1]
        result.rows.append(Row("xgboost (hist)", median, quality=float(roc_auc_score(y_test, reference_proba))))
        cuts = xgboost.QuantileDMatrix(X_train, max_bin=256).get_quantile_cut()
        result.notes.append("Times and AUC use our own quantile binning; the proba difference is that of a "
                            "fit given xgboost's cut points, where the trees must be xgboost's "
                            "(agree: within 1e-5, xgboost sums in float32).")
    for backend in backends:
        if backend == "numpy" and size in ("medium", "large"):
            result.notes.append("fastscratch[numpy] skipped at this size (the readable reference is slow).")
            continue
        model, median, compile_s = time_call(lambda: XGBClassifier(**params, backend=backend).fit(X_train, y_train),
                                             REPEATS[size])
        progress()
        auc = float(roc_auc_score(y_test, model.predict_proba(X_test)[:, 1]))
        diff, agree = float("nan"), None
        if xgboost is not None:
            same_cuts = XGBClassifier(**params, backend=backend).fit(X_train, y_train, cuts=cuts)
            diff = _max_abs(same_cuts.predict_proba(X_test)[:, 1], reference_proba)
            agree = diff <= 1e-5
        result.rows.append(Row(f"fastscratch[{backend}]", median, compile_s, quality=auc, max_diff=diff,
                               agree=agree))
    return result.finish()


ARIMA_ORDERS = {"tiny": ((0, 1, 1), (0, 1, 1, 12)), "small": ((1, 1, 1), (1, 1, 1, 12)),
                "medium": ((1, 1, 1), (1, 1, 1, 12)), "large": ((2, 1, 2), (1, 1, 1, 12))}


def _forecast_plot(path, train, test, forecasts, interval=None):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 3.5))
    history = train[-72:]
    axis.plot(history.index, history.values, color="black", linewidth=1, label="training")
    axis.plot(test.index, test.values, color="black", linestyle="--", linewidth=1, label="held out")
    for name, values in forecasts.items():
        axis.plot(test.index, values, linewidth=1.2, label=name)
    if interval is not None:
        axis.fill_between(test.index, interval[:, 0], interval[:, 1], alpha=0.2, label="95% interval (ours)")
    axis.legend(fontsize=7, ncol=2)
    axis.set_title("electric production: last 24 months", fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


# size -> (LSTM seeds, LSTM epochs, ARIMA orders: None = chosen by our auto_arima)
LSTM_SIZES = {"tiny": ((0,), 2, ((0, 1, 1), (0, 1, 1, 12))), "small": ((0, 1, 2), 200, None),
              "medium": ((0, 1, 2), 200, None), "large": ((0, 1, 2, 3, 4), 200, None)}  # epochs: at most (early stopping)


def forecast_table(result, size, out_dir):
    """Append the LSTM-versus-ARIMA forecast table (the notebook's comparison) to ``result``."""
    try:
        import torch  # noqa: F401
    except ImportError:
        result.notes.append('LSTM comparison skipped: PyTorch is not installed (pip install "fastscratch[deep]").')
        return
    from ..timeseries.comparison import compare_timeseries, format_comparison

    seeds, epochs, orders = LSTM_SIZES[size]
    order, seasonal_order = orders if orders is not None else (None, None)
    plot = None if out_dir is None else Path(out_dir) / "forecast_lstm_vs_arima.png"
    table = compare_timeseries(seeds=seeds, epochs=epochs, order=order, seasonal_order=seasonal_order,
                               plot=plot, verbose=False)
    result.notes.append("LSTM versus ARIMA on the last 24 months (LSTM: mean and spread over seeds "
                        f"{list(seeds)}, {epochs} epochs):\n\n```\n{format_comparison(table)}\n```")
    if plot is not None:
        result.figures.append(plot)


def timeseries(size, backends, progress, out_dir=None):
    """Seasonal ARIMA fit + 24-month forecast vs statsmodels' SARIMAX on the electric series."""
    import warnings

    from sklearn.metrics import mean_squared_error

    from .. import ARIMA
    from ..datasets import load_electric_production

    y = load_electric_production()
    train, test = y.iloc[:-24], y.iloc[-24:]
    order, seasonal_order = ARIMA_ORDERS[size]
    result = TaskResult("timeseries", f"SARIMA{order}x{seasonal_order} fit by exact likelihood + 24-month "
                        f"forecast, electric production ({len(train)} months)", "RMSE",
                        "max rel. forecast diff", "statsmodels SARIMAX")
    try:
        from statsmodels.tsa.statespace.sarimax import SARIMAX
    except ImportError:
        result.notes.append("statsmodels is not installed (pip install statsmodels): reference skipped.")
        reference_forecast = None
    else:
        def fit_reference():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return SARIMAX(train, order=order, seasonal_order=seasonal_order).fit(disp=False)

        reference, median, _ = time_call(fit_reference, REPEATS[size])
        progress()
        reference_forecast = np.asarray(reference.forecast(24))
        result.rows.append(Row("statsmodels SARIMAX", median,
                               quality=float(np.sqrt(mean_squared_error(test, reference_forecast)))))
    forecasts = {} if reference_forecast is None else {"statsmodels": reference_forecast}
    interval = None
    for backend in backends:
        fitted, median, compile_s = time_call(
            lambda: ARIMA(order=order, seasonal_order=seasonal_order, backend=backend).fit(train), REPEATS[size])
        progress()
        forecast = np.asarray(fitted.forecast(24))
        forecasts.setdefault("fastscratch ARIMA", forecast)  # the backends agree; plot one
        if interval is None:
            interval = np.asarray(fitted.get_forecast(24).conf_int(alpha=0.05))
        diff = (float(np.max(np.abs(forecast - reference_forecast) / np.abs(reference_forecast)))
                if reference_forecast is not None else float("nan"))
        result.rows.append(Row(f"fastscratch[{backend}]", median, compile_s,
                               quality=float(np.sqrt(mean_squared_error(test, forecast))), max_diff=diff,
                               agree=None if reference_forecast is None else diff <= 1e-3))
    forecast_table(result, size, out_dir)
    return result.finish()


# size -> (base_channels, crop side, epochs, steps per epoch) of the U-Net recipe
# (fastscratch.segmentation.recipe: slices 0-23 train, 24 validates, 25-29 held out);
# "large" is the whole recipe (about 30 minutes on two cores), "tiny" a smoke run.
UNET_SIZES = {"tiny": (4, 64, 1, 2), "small": (16, 256, 6, 20), "medium": (16, 256, 15, 40),
              "large": (16, 256, 50, 80)}


def unet(size, backends, progress, out_dir=None):
    """U-Net training step (our loop vs a bare PyTorch step), then the training recipe on ISBI 2012.

    The kernel backends do not apply (the U-Net is PyTorch); the reference is
    the same network stepped by a bare ``forward / backward / SGD`` loop, and
    "agree" checks that one step of our loop leaves the same weights. Then
    :func:`~fastscratch.segmentation.recipe.train_recipe` trains from nothing
    for the size's epochs and scores the held-out slices 25-29; the shipped
    pretrained weights are scored on the same slices alongside.
    """
    import copy

    import torch
    import torch.nn.functional as F

    from ..datasets import load_isbi2012
    from ..segmentation.metrics import confusion_matrix, rand_error, scores_from_confusion
    from ..segmentation.recipe import pretrained, train_recipe
    from ..segmentation.train import Trainer, plot_prediction, prepare_data
    from ..segmentation.unet import UNet, predict_tiled

    base, crop, epochs, steps = UNET_SIZES[size]
    images, labels = load_isbi2012()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = TaskResult("unet", f"U-Net (base {base}, padding same) on ISBI 2012: one SGD step on a "
                        f"{crop}x{crop} patch; the training recipe for {epochs} x {steps} batches, scored on the "
                        f"held-out slices 25-29 ({device})", "held-out Dice", "max |weight diff|",
                        "bare torch step")
    x, y = prepare_data(images[:1, None, :crop, :crop], labels[:1, :crop, :crop])
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    torch.manual_seed(0)
    model = UNet(base_channels=base, padding="same")
    bare_model = copy.deepcopy(model).to(device)
    bare_optimizer = torch.optim.SGD(bare_model.parameters(), lr=0.01, momentum=0.99)

    def bare_step():
        bare_optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(bare_model(x.to(device)), y.to(device))
        loss.backward()
        bare_optimizer.step()
        return float(loss.detach())

    trainer = Trainer(copy.deepcopy(model), optimizer="sgd", lr=0.01, momentum=0.99, device=device,
                      progress=False)

    def our_step():
        return float(trainer.train_step(x, y)[0])

    # One step from the same weights must give the same network.
    bare_step(), our_step()
    diff = max(float((a.detach().cpu() - b.detach().cpu()).abs().max())
               for a, b in zip(bare_model.parameters(), trainer.model.parameters()))
    _, bare_median, _ = time_call(bare_step, REPEATS[size])
    progress()
    _, our_median, _ = time_call(our_step, REPEATS[size])
    result.rows.append(Row("bare torch step", bare_median))

    trained = train_recipe(images, labels, base_channels=base, tile=crop, epochs=epochs, steps_per_epoch=steps,
                           device=device, seed=0, verbose=False)
    progress()
    history = trained.history
    dice = float(history["held_out_dice"][-1])
    result.rows.append(Row("fastscratch Trainer step", our_median, quality=dice, max_diff=diff,
                           agree=diff <= 1e-5))
    minutes = sum(history["seconds"]) / 60
    result.notes.append(f"The recipe from nothing, {epochs} epochs x {steps} batches of 4 x {crop}^2 "
                        f"({minutes:.1f} min): held-out pixel error {history['held_out_pixel_error'][-1]:.4f}, "
                        f"Dice {dice:.4f}, Rand error {history['held_out_rand_error'][-1]:.4f} "
                        f"(validation slice 24: pixel error {history['val_pixel_error'][-1]:.4f}).")
    if size == "tiny":
        result.notes.append(f"At --size tiny the U-Net is under-trained ({epochs * steps} batches of a base-{base} "
                            f"network on {crop}^2 tiles): its scores only show that the loop runs. Use --size small "
                            "(a few minutes) or fastscratch.segmentation.pretrained() for a real segmentation.")
    held_out = trained.slices["held_out"]
    held_images, held_labels = prepare_data(images[held_out], labels[held_out])
    try:
        model = pretrained("isbi2012", device=device)
    except FileNotFoundError as error:
        result.notes.append(f"Pretrained weights not scored: {error}")
    else:
        predictions = np.stack([predict_tiled(model, image).argmax(axis=0) for image in held_images])
        scores = scores_from_confusion(confusion_matrix(torch.from_numpy(predictions),
                                                        torch.from_numpy(held_labels), 2))
        rand = float(np.mean([rand_error(p, t) for p, t in zip(predictions, held_labels)]))
        result.notes.append(f"Pretrained weights (fastscratch.segmentation.pretrained('isbi2012'), the full "
                            f"recipe) on the same held-out slices: pixel error {scores['pixel_error']:.4f}, "
                            f"Dice {scores['dice']:.4f}, Rand error {rand:.4f}.")
    if out_dir is not None:
        prediction = predict_tiled(trained.model, held_images[0]).argmax(0)
        result.figures.append(plot_prediction(Path(out_dir) / "segmentation_unet.png", held_images[0][0],
                                              held_labels[0], np.asarray(prediction),
                                              title=f"U-Net base {base} after {epochs} x {steps} batches, "
                                                    f"held-out slice {held_out[0]}, Dice {dice:.3f}"))
    return result.finish()
