"""The CPU training recipe of the U-Net on ISBI 2012, and its pretrained weights.

The recipe (:data:`RECIPE`, :func:`train_recipe`, ``fastscratch train unet``)
trains a small U-Net (base width 16, "same" padding, batch normalisation) on
random 256 x 256 tiles of the ISBI 2012 slices with AdamW and a one-cycle
learning-rate schedule, flips / 90-degree rotations and the paper's elastic
deformation, and the paper's weighted cross-entropy plus soft Dice. The 30
slices play fixed roles (:func:`split_slices`):

- slices 0-23: training (the only slices patches are drawn from);
- slice 24: validation (scores printed each epoch, used to develop the recipe);
- slices 25-29: held out (scores reported each epoch, never used for training
  nor for choosing the recipe or its number of epochs; the shipped weights are
  those of the last epoch, not the best one).

ISBI slices are consecutive sections of one volume, so the split is contiguous:
neighbouring training slices do not leak into the held-out ones more than the
one slice of distance between 23 and 25.

:func:`pretrained` loads the weights trained by this recipe (shipped in
``fastscratch/segmentation/weights``).
"""

import json
import os
import time
from importlib import resources

import numpy as np

__all__ = ["RECIPE", "N_SLICES", "split_slices", "train_recipe", "pretrained", "plot_recipe_curves",
           "PRETRAINED"]

N_SLICES = 30
"""Slices of the ISBI 2012 training volume."""

RECIPE = {
    "base_channels": 16, "depth": 4, "padding": "same", "batch_norm": True,
    "tile": 256, "batch_size": 4, "steps_per_epoch": 80, "epochs": 50,
    "optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-4, "schedule": "onecycle", "warmup": 0.1,
    "elastic": True, "elastic_sigma": 10.0, "loss": "weighted_ce+dice", "dice_weight": 1.0,
    "w0": 10.0, "sigma": 5.0, "class_weights": "balanced", "channels_last": True, "cpu_bfloat16": True,
    "n_held_out": 5, "n_validation": 1, "seed": 0,
}
"""Defaults of :func:`train_recipe` (and of ``fastscratch train unet``)."""

PRETRAINED = {"isbi2012": "unet_isbi2012.pt"}
"""Names of :func:`pretrained` and their files in ``fastscratch/segmentation/weights``."""


def split_slices(n_slices=N_SLICES, n_held_out=RECIPE["n_held_out"], n_validation=RECIPE["n_validation"]):
    """Indices of the training, validation and held-out slices (contiguous, in this order).

    Returns
    -------
    train, validation, held_out : lists of int
        ``held_out`` are the last ``n_held_out`` slices, ``validation`` the
        ``n_validation`` before them, ``train`` all the others.
    """
    for name, value in (("n_held_out", n_held_out), ("n_validation", n_validation)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}.")
    n_train = n_slices - n_held_out - n_validation
    if n_train < 1:
        raise ValueError(f"n_held_out={n_held_out} and n_validation={n_validation} leave no training slice out "
                         f"of {n_slices}; hold out fewer slices.")
    slices = list(range(n_slices))
    return slices[:n_train], slices[n_train:n_train + n_validation], slices[n_train + n_validation:]


def _augmentation(elastic, elastic_sigma):
    from .transforms import Compose, ElasticDeformation, RandomFlipRotate

    transforms = [RandomFlipRotate()]
    if elastic:
        # Linear interpolation of the image: the cubic spline costs more than a training step's
        # share on two cores and changes nothing visible at sigma = 10 pixels on a 3 x 3 grid.
        transforms.append(ElasticDeformation(sigma=elastic_sigma, grid_size=3, order=1))
    return Compose(transforms)


def train_recipe(images=None, labels=None, *, output=None, epochs=None, steps_per_epoch=None,
                 base_channels=None, depth=None, padding=None, batch_norm=None, tile=None, batch_size=None,
                 optimizer=None, lr=None, weight_decay=None, schedule=None, warmup=None, elastic=None,
                 elastic_sigma=None, loss=None, dice_weight=None, w0=None, sigma=None, class_weights=None,
                 channels_last=None,
                 cpu_bfloat16=None, n_held_out=None, n_validation=None, seed=None, device="auto", amp=True,
                 n_threads=None, progress=False, verbose=True, log=None):
    """Train the U-Net with the recipe; score validation and held-out slices after every epoch.

    Every keyword left at None takes its value from :data:`RECIPE`.

    Parameters
    ----------
    images, labels : ndarrays (30, H, W), default=None
        The ISBI 2012 volume; None loads the shipped one
        (:func:`fastscratch.datasets.load_isbi2012`).
    output : str, default=None
        Directory for ``unet.pt`` (checkpoint after every epoch),
        ``history.json`` and ``learning_curves.png``; None writes nothing.
    epochs, steps_per_epoch : int
        The run is ``epochs * steps_per_epoch`` batches; the schedule spans them all.
    base_channels, depth, padding, batch_norm
        The :class:`~fastscratch.segmentation.unet.UNet`.
    tile, batch_size : int
        Training tiles (network input = output for "same" padding) per batch.
    optimizer, lr, weight_decay, schedule, warmup, loss, dice_weight, channels_last, cpu_bfloat16
        See :class:`~fastscratch.segmentation.train.Trainer` (``schedule="none"``: a constant rate).
    elastic : bool
        Add the paper's elastic deformation (3 x 3 grid, ``elastic_sigma``
        pixels) to the flips and 90-degree rotations, which are always on.
    w0, sigma : float
        The paper's weight map (:func:`~fastscratch.segmentation.losses.weight_map`).
    class_weights : {"balanced", "none"}
        :math:`w_c` of the weight map: "balanced" (the paper's class-frequency
        balancing, per slice) or "none" (1 for both classes; only the border
        term ``w0`` remains).
    n_held_out, n_validation : int
        Roles of the slices, see :func:`split_slices`.
    seed : int
    device : str, default="auto"
    amp : bool, default=True
        float16 autocast on CUDA.
    n_threads : int, default=None
        ``torch.set_num_threads`` for the run (restored afterwards); None leaves it.
    progress, verbose : bool
        tqdm bars; one line per epoch.
    log : str, default=None
        Also append the epoch lines to this file.

    Returns
    -------
    trainer : Trainer
        ``trainer.history`` holds per epoch the training loss and accuracy,
        "val_*" and "held_out_*" loss, pixel error, Dice and Rand error, the
        wall seconds ("seconds") and the process CPU seconds ("cpu_seconds")
        of the epoch (training and scoring). ``trainer.recipe`` is the recipe
        used, ``trainer.slices`` the slice roles, ``trainer.train_dataset``
        the :class:`~fastscratch.segmentation.train.PatchDataset` of the
        training slices.

    Notes
    -----
    One step minimises, over a batch of tiles :math:`B`,

    .. math:: L = \\frac{1}{|B||\\Omega|}\\sum_{b, x} w_b(x)\\,(-\\log p_{b,\\ell_b(x)}(x))
              + \\lambda\\Big(1 - \\frac{1}{K}\\sum_k \\frac{2\\sum p_k g_k + 1}{\\sum p_k + \\sum g_k + 1}\\Big)

    (the paper's weighted cross-entropy, with :math:`w = w_c + w_0
    e^{-(d_1 + d_2)^2 / 2\\sigma^2}`, plus ``dice_weight`` :math:`\\lambda`
    times the soft Dice loss), with AdamW and a one-cycle schedule.
    """
    import torch
    from torch.utils.data import DataLoader

    from ..datasets import load_isbi2012
    from .losses import weight_map
    from .train import PatchDataset, Trainer, prepare_data, resolve_device
    from .unet import UNet

    given = {key: value for key, value in locals().items() if key in RECIPE and value is not None}
    recipe = {**RECIPE, **given}
    if recipe["schedule"] == "none":
        recipe["schedule"] = None
    for name in ("epochs", "steps_per_epoch", "batch_size", "tile", "base_channels", "depth"):
        value = recipe[name]
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    if images is None:
        if labels is not None:
            raise ValueError("labels were given without images; give both or neither (None loads ISBI 2012).")
        images, labels = load_isbi2012()
    images, labels = prepare_data(images, labels)
    train, validation, held_out = split_slices(len(images), recipe["n_held_out"], recipe["n_validation"])
    device = resolve_device(device)
    previous_threads = torch.get_num_threads()
    if n_threads is not None:
        torch.set_num_threads(int(n_threads))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe["seed"])
            model = UNet(in_channels=1, n_classes=2, base_channels=recipe["base_channels"], depth=recipe["depth"],
                         padding=recipe["padding"], batch_norm=recipe["batch_norm"])
        try:
            model.output_size(recipe["tile"])
        except ValueError as error:
            raise ValueError(f"tile={recipe['tile']} does not fit the network: {error}") from error
        total_steps = recipe["epochs"] * recipe["steps_per_epoch"]
        trainer = Trainer(model, optimizer=recipe["optimizer"], lr=recipe["lr"],
                          weight_decay=recipe["weight_decay"], loss=recipe["loss"],
                          dice_weight=recipe["dice_weight"], device=device, amp=amp,
                          schedule=recipe["schedule"], total_steps=total_steps, warmup=recipe["warmup"],
                          channels_last=recipe["channels_last"], cpu_bfloat16=recipe["cpu_bfloat16"],
                          progress=progress)
        uses_weights = recipe["loss"] != "dice"

        if recipe["class_weights"] not in ("balanced", "none"):
            raise ValueError(f"class_weights must be 'balanced' or 'none', got {recipe['class_weights']!r}.")
        class_weights = "balanced" if recipe["class_weights"] == "balanced" else np.ones(2)

        def weights_of(indices):
            if not uses_weights:
                return None
            return np.stack([weight_map(labels[i], w0=recipe["w0"], sigma=recipe["sigma"],
                                        class_weights=class_weights) for i in indices])

        output_size = model.output_size(recipe["tile"])
        dataset = PatchDataset(images[train], labels[train], weights_of(train), recipe["tile"], output_size,
                               length=recipe["steps_per_epoch"] * recipe["batch_size"],
                               transform=_augmentation(recipe["elastic"], recipe["elastic_sigma"]),
                               seed=recipe["seed"])
        loader = DataLoader(dataset, batch_size=recipe["batch_size"], shuffle=False, num_workers=0,
                            pin_memory=device.type == "cuda")
        scored = {"val": (validation, weights_of(validation)), "held_out": (held_out, weights_of(held_out))}
        history = {key: [] for key in ("epoch", "train_loss", "train_accuracy", "lr", "seconds", "cpu_seconds")}
        for prefix in scored:
            for key in ("loss", "pixel_error", "dice", "rand_error"):
                history[f"{prefix}_{key}"] = []
        trainer.history = history
        trainer.recipe = recipe
        trainer.slices = {"train": train, "validation": validation, "held_out": held_out}
        trainer.input_size = recipe["tile"]
        trainer.train_dataset = dataset
        if output is not None:
            os.makedirs(output, exist_ok=True)
        if verbose:
            _say(f"U-Net recipe: train slices {train[0]}-{train[-1]}, validation {validation}, held out "
                 f"{held_out}; {recipe['epochs']} epochs x {recipe['steps_per_epoch']} batches of "
                 f"{recipe['batch_size']} x {recipe['tile']}^2 on {device}, {torch.get_num_threads()} threads",
                 log)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(recipe["seed"])
            for epoch in range(recipe["epochs"]):
                wall, cpu = time.perf_counter(), time.process_time()
                dataset.set_epoch(epoch)
                lr_now = trainer.optimizer.param_groups[0]["lr"]
                train_loss, train_accuracy = trainer.train_epoch(loader)
                trainer.epoch += 1
                row = {"epoch": trainer.epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
                       "lr": lr_now}
                for prefix, (indices, weights) in scored.items():
                    if not indices:
                        scores = {}
                    else:
                        scores = trainer.evaluate(images[indices], labels[indices], weights)
                    for key in ("loss", "pixel_error", "dice", "rand_error"):
                        row[f"{prefix}_{key}"] = scores.get(key, float("nan"))
                row["seconds"] = time.perf_counter() - wall
                row["cpu_seconds"] = time.process_time() - cpu
                for key, value in row.items():
                    history[key].append(value)
                if verbose:
                    _say(f"epoch {trainer.epoch}/{recipe['epochs']}: train loss {train_loss:.4f} | validation "
                         f"pixel error {row['val_pixel_error']:.4f} | held out loss {row['held_out_loss']:.4f}, "
                         f"pixel error {row['held_out_pixel_error']:.4f}, Dice {row['held_out_dice']:.4f}, "
                         f"Rand error {row['held_out_rand_error']:.4f} | {row['seconds']:.1f} s wall, "
                         f"{row['cpu_seconds']:.1f} s CPU", log)
                if output is not None:
                    trainer.save_checkpoint(os.path.join(output, "unet.pt"), recipe=recipe,
                                            slices=trainer.slices)
                    with open(os.path.join(output, "history.json"), "w") as handle:
                        json.dump({"recipe": recipe, "slices": trainer.slices, "history": history}, handle,
                                  indent=1)
        if output is not None:
            plot_recipe_curves(os.path.join(output, "learning_curves.png"), history)
    finally:
        torch.set_num_threads(previous_threads)
    return trainer


def _say(line, log):
    print(line, flush=True)
    if log is not None:
        with open(log, "a") as handle:
            handle.write(line + "\n")


def plot_recipe_curves(path, history):
    """PNG of the learning curves: loss, pixel error, Dice and Rand error per epoch (training,
    validation and held-out slices), and the seconds per epoch."""
    from .train import _figure

    figure = _figure(15, 3.8)
    axes = figure.subplots(1, 5)
    epochs = history["epoch"]
    panels = (("loss", "loss"), ("pixel_error", "pixel error"), ("dice", "Dice (class mean)"),
              ("rand_error", "Rand error"))
    for axis, (key, title) in zip(axes, panels):
        if key == "loss":
            axis.plot(epochs, history["train_loss"], color="C0", label="training")
        if key == "pixel_error":
            axis.plot(epochs, 1.0 - np.asarray(history["train_accuracy"]), color="C0",
                      label="training (augmented tiles)")
        for prefix, name, color in (("val", "validation", "C1"), ("held_out", "held out", "C2")):
            values = np.asarray(history[f"{prefix}_{key}"], dtype=float)
            if np.isfinite(values).any():
                axis.plot(epochs, values, marker=".", color=color, label=name)
        if key == "pixel_error":
            axis.axhline(0.10, color="grey", linestyle=":", label="target 0.10")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.legend(fontsize="small")
    axes[4].plot(epochs, history["seconds"], label="wall")
    axes[4].plot(epochs, np.asarray(history["cpu_seconds"]) / 2, label="CPU / 2")
    axes[4].set_title("seconds per epoch")
    axes[4].set_xlabel("epoch")
    axes[4].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    return path


def pretrained(name="isbi2012", device="cpu"):
    """The U-Net trained by the recipe, in eval mode.

    Parameters
    ----------
    name : {"isbi2012"}, default="isbi2012"
    device : str, default="cpu"

    Returns
    -------
    model : UNet
        In eval mode, float32. It expects each image z-scored on its own
        (:func:`~fastscratch.segmentation.transforms.normalize_zscore`) and
        is meant for :func:`~fastscratch.segmentation.unet.predict_tiled`;
        ``model.pretrained_info`` holds the recipe, the slice roles and the
        scores measured when the weights were saved.

    Notes
    -----
    "isbi2012" (``weights/unet_isbi2012.pt``, 3.9 MB: 1.94 M parameters stored
    as float16, batch-norm statistics float32): trained by ``fastscratch train
    unet --threads 2`` with the defaults of :data:`RECIPE` (with
    ``class_weights="balanced"``): ``UNet(base_channels=16, depth=4,
    padding="same", batch_norm=True)``, 50 epochs x 80 batches of 4 random
    256 x 256 tiles of slices 0-23 (flips, 90-degree rotations and the paper's
    elastic deformation), AdamW (lr 3e-3 peak, weight decay 1e-4) with a
    one-cycle schedule (10 % warm-up), the paper's weighted cross-entropy
    (:math:`w_0 = 10`, :math:`\\sigma = 5`, class-balanced :math:`w_c`) plus soft
    Dice, channels_last and bfloat16 autocast, seed 0. The weights are those of
    the last epoch (no selection on any score). It took 31.8 min wall time on
    a 2-core CPU shared with other jobs (38.2 min of process CPU time, i.e.
    about 19 min on two idle threads).

    Measured with these weights (float32 overlap-tile prediction, threshold 0.5,
    i.e. argmax of the two classes):

    ============================  ============  =======================  ==========
    slices                        pixel error   Dice (mean of 2 classes)  Rand error
    ============================  ============  =======================  ==========
    25-29 (held out)              0.0975        0.8631                   0.1699
    24 (validation)               0.0933        0.8632                   0.1907
    ============================  ============  =======================  ==========

    Per held-out slice the pixel error is 0.086, 0.084, 0.095, 0.097, 0.125.
    The errors are biased towards membrane (the class-balanced weight map
    favours it): on slice 24, 7.7 % of the pixels are cells predicted as
    membrane, 1.4 % membrane predicted as cell. The U-Net paper reports a pixel
    error of 0.0611 on the ISBI 2012 test set (64-channel network, long
    training); the Rand error here is the raw foreground-restricted Rand error
    of :func:`~fastscratch.segmentation.metrics.rand_error`, without the
    challenge's border thinning. The learning curves are in
    ``weights/unet_isbi2012_learning_curves.png`` and
    ``weights/unet_isbi2012_history.json`` of the source tree.
    """
    import torch

    from .train import resolve_device
    from .unet import UNet

    if name not in PRETRAINED:
        raise ValueError(f"name must be one of {sorted(PRETRAINED)}, got {name!r}.")
    weights = resources.files("fastscratch.segmentation") / "weights" / PRETRAINED[name]
    with resources.as_file(weights) as path:
        if not os.path.exists(path):
            raise FileNotFoundError(f"the pretrained weights {PRETRAINED[name]} are not installed ({path}).")
        state = torch.load(path, map_location="cpu", weights_only=True)
    model = UNet(**state["model_config"])
    model.load_state_dict({key: value.float() if value.is_floating_point() else value
                           for key, value in state["model_state"].items()})
    model.pretrained_info = json.loads(state["info"])
    return model.to(resolve_device(device)).eval()


def export_pretrained(checkpoint, path, info):
    """Write the model of a recipe checkpoint as float16 weights (float32 batch-norm statistics) for
    :func:`pretrained`; ``info`` (a JSON-able dict: recipe, slices, measured scores) is stored with them."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    model_state = {}
    for key, value in state["model_state"].items():
        keep = not value.is_floating_point() or "running_" in key
        model_state[key] = value.contiguous() if keep else value.half().contiguous()
    torch.save({"model_config": state["model_config"], "model_state": model_state, "info": json.dumps(info)},
               path)
    return path
