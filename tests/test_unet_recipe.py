"""The U-Net recipe (fastscratch.segmentation.recipe): slice roles, the ISBI Rand error against
brute-force pair counting, the shipped pretrained weights on the held-out slices, the command."""

import itertools
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from fastscratch.datasets import load_isbi2012  # noqa: E402
from fastscratch.segmentation import metrics  # noqa: E402
from fastscratch.segmentation.recipe import RECIPE, pretrained, split_slices, train_recipe  # noqa: E402
from fastscratch.segmentation.train import prepare_data  # noqa: E402
from fastscratch.segmentation.unet import predict_tiled  # noqa: E402


@pytest.fixture(scope="module")
def isbi():
    return load_isbi2012()


# -- the challenge's Rand error --------------------------------------------------------------
def brute_force_rand_error(prediction, truth, connectivity=1):
    """Foreground-restricted Rand error by counting every pair of truth-foreground pixels.

    Segments: the connected components of the cells (value 1) in each map; a pixel
    predicted as membrane belongs to one "background" segment of the prediction.
    Precision = pairs together in both / pairs together in the prediction; recall =
    pairs together in both / pairs together in the truth; error = 1 - F-score.
    """
    from scipy import ndimage

    structure = ndimage.generate_binary_structure(2, connectivity)
    true_segments, _ = ndimage.label(truth == 1, structure=structure)
    predicted_segments, _ = ndimage.label(prediction == 1, structure=structure)
    pixels = list(zip(*np.nonzero(true_segments)))
    both = together_true = together_predicted = 0
    for p, q in itertools.combinations(pixels, 2):
        same_true = true_segments[p] == true_segments[q]
        same_predicted = predicted_segments[p] == predicted_segments[q]
        together_true += same_true
        together_predicted += same_predicted
        both += same_true and same_predicted
    if both == 0:
        return 1.0
    precision, recall = both / together_predicted, both / together_true
    return 1.0 - 2 * precision * recall / (precision + recall)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("connectivity", [1, 2])
def test_rand_error_equals_brute_force_pair_counting(seed, connectivity):
    rng = np.random.default_rng(seed)
    shape = (9, 11)
    truth = (rng.random(shape) < 0.6).astype(np.uint8)
    truth[4, :] = 0  # a membrane across the image: at least two cells
    prediction = truth.copy()
    flips = rng.random(shape) < 0.15 * (seed % 3)  # seed % 3 == 0: the perfect prediction
    prediction[flips] = 1 - prediction[flips]
    expected = brute_force_rand_error(prediction, truth, connectivity)
    assert metrics.rand_error(prediction, truth, connectivity=connectivity) == pytest.approx(expected, abs=1e-12)
    if seed % 3 == 0:
        assert expected == 0.0


def test_rand_error_brute_force_on_an_isbi_crop(isbi):
    truth = isbi[1][25, 100:124, 200:224]
    prediction = np.roll(truth, 2, axis=1)
    prediction[10:12] = 1  # merge cells across a membrane
    expected = brute_force_rand_error(prediction, truth)
    assert 0.0 < expected < 1.0
    assert metrics.rand_error(prediction, truth) == pytest.approx(expected, abs=1e-12)


# -- slice roles -----------------------------------------------------------------------------
def test_slice_roles():
    train, validation, held_out = split_slices()
    assert held_out == [25, 26, 27, 28, 29] and validation == [24] and train == list(range(24))
    assert split_slices(10, 3, 0) == (list(range(7)), [], [7, 8, 9])
    with pytest.raises(ValueError, match="n_held_out"):
        split_slices(30, 29, 1)
    with pytest.raises(ValueError, match="n_validation"):
        split_slices(30, 5, -1)


def test_no_held_out_slice_enters_training(isbi):
    images, labels = isbi
    trainer = train_recipe(images, labels, epochs=1, steps_per_epoch=2, batch_size=2, base_channels=2, depth=2,
                           tile=64, n_threads=1, verbose=False)
    dataset = trainer.train_dataset
    normalised, _ = prepare_data(images, labels)
    train = trainer.slices["train"]
    assert set(train).isdisjoint(trainer.slices["held_out"] + trainer.slices["validation"])
    assert set(trainer.slices["held_out"]) == {25, 26, 27, 28, 29}
    # The patches are drawn from exactly the training slices' pixels.
    np.testing.assert_array_equal(dataset.images, normalised[train])
    np.testing.assert_array_equal(dataset.labels, labels[train])
    # A held-out slice's pixels differ from every training slice's.
    for index in trainer.slices["held_out"]:
        assert not any(np.array_equal(normalised[index], image) for image in dataset.images)
    # Every per-epoch score of both sets is there, with the time of the epoch.
    history = trainer.history
    for key in ("held_out_loss", "held_out_pixel_error", "held_out_dice", "held_out_rand_error",
                "val_pixel_error", "seconds", "cpu_seconds"):
        assert len(history[key]) == 1 and np.isfinite(history[key][0])


def test_recipe_same_seed_same_result(isbi):
    images, labels = isbi[0][:8], isbi[1][:8]
    kwargs = dict(epochs=2, steps_per_epoch=2, batch_size=2, base_channels=2, depth=2, tile=64, n_held_out=2,
                  n_validation=1, n_threads=1, verbose=False)
    first = train_recipe(images, labels, **kwargs).history
    second = train_recipe(images, labels, **kwargs).history
    for key in ("train_loss", "held_out_loss", "held_out_pixel_error", "val_rand_error", "lr"):
        assert first[key] == second[key]
    other = train_recipe(images, labels, seed=1, **kwargs).history
    assert other["train_loss"] != first["train_loss"]


def test_recipe_rejects_bad_parameters(isbi):
    with pytest.raises(ValueError, match="epochs"):
        train_recipe(*isbi, epochs=0, verbose=False)
    with pytest.raises(ValueError, match="tile"):
        train_recipe(*isbi, tile=100, epochs=1, base_channels=2, verbose=False)
    with pytest.raises(ValueError, match="schedule"):
        train_recipe(*isbi, schedule="linear", epochs=1, base_channels=2, depth=2, tile=64, verbose=False)
    with pytest.raises(ValueError, match="class_weights"):
        train_recipe(*isbi, class_weights="inverse", epochs=1, base_channels=2, depth=2, tile=64, verbose=False)
    with pytest.raises(ValueError, match="n_held_out"):
        train_recipe(*isbi, n_held_out=30, epochs=1, base_channels=2, depth=2, tile=64, verbose=False)


# -- the shipped weights ---------------------------------------------------------------------
def test_pretrained_weights_reach_their_stated_error_on_the_held_out_slices(isbi):
    model = pretrained("isbi2012")
    info = model.pretrained_info
    assert not model.training and sum(p.numel() for p in model.parameters()) > 1_000_000
    held_out = info["slices"]["held_out"]
    assert held_out == [25, 26, 27, 28, 29]
    assert set(info["slices"]["train"]).isdisjoint(held_out + info["slices"]["validation"])
    images, labels = prepare_data(isbi[0][held_out], isbi[1][held_out])
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        predictions = np.stack([predict_tiled(model, image).argmax(axis=0) for image in images])
    finally:
        torch.set_num_threads(previous)
    confusion = metrics.confusion_matrix(torch.from_numpy(predictions), torch.from_numpy(labels), 2)
    scores = metrics.scores_from_confusion(confusion)
    stated = info["held_out"]
    # The stated error was measured with these (float16-stored) weights; thread counts and
    # convolution algorithms move a few boundary pixels at most.
    assert scores["pixel_error"] == pytest.approx(stated["pixel_error"], abs=1e-3)
    assert scores["dice"] == pytest.approx(stated["dice"], abs=2e-3)
    rand = np.mean([metrics.rand_error(p, t) for p, t in zip(predictions, labels)])
    assert rand == pytest.approx(stated["rand_error"], abs=1e-2)
    # Far better than predicting "cell" everywhere (the membrane share of the held-out pixels).
    assert scores["pixel_error"] < 0.6 * float(np.mean(labels == 0))
    with pytest.raises(ValueError, match="name"):
        pretrained("cityscapes")


# -- the command -----------------------------------------------------------------------------
def test_cli_train_unet_runs_the_recipe(tmp_path, capsys):
    from fastscratch.cli import main

    out = tmp_path / "run"
    assert main(["train", "unet", "--epochs", "1", "--steps-per-epoch", "1", "--batch-size", "2",
                 "--base-channels", "2", "--depth", "2", "--tile", "64", "--no-elastic", "--threads", "1",
                 "--output", str(out)]) == 0
    assert "held out" in capsys.readouterr().out
    for name in ("unet.pt", "learning_curves.png", "prediction.png", "history.json", "train.log"):
        assert (out / name).stat().st_size > 0
    saved = json.loads((out / "history.json").read_text())
    assert saved["slices"]["held_out"] == [25, 26, 27, 28, 29]
    assert saved["recipe"]["elastic"] is False and saved["recipe"]["optimizer"] == RECIPE["optimizer"]
    assert 0 <= saved["history"]["held_out_pixel_error"][0] <= 1
