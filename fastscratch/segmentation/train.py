"""Training the U-Net: data set of augmented patches, a plain PyTorch loop, checkpoints, figures, CLI.

- :class:`PatchDataset`: random training patches. Each image, mask and
  weight map is mirror-padded by the network's margin once; a patch is a
  random window of the network's input size whose centre (the output size)
  lies inside the image, augmented (flips and rotations, elastic deformation
  of the paper, optionally small affine transforms) identically for image,
  mask and weight map; the mask and weights are then cropped to the output.
  The random numbers of patch ``i`` of epoch ``e`` come from
  ``default_rng([seed, e, i])``, so results do not depend on the number of
  DataLoader workers.
- :class:`Trainer`: the paper's SGD (momentum 0.99, batch 1), Adam or AdamW,
  optionally a one-cycle or cosine learning-rate schedule stepped per batch,
  channels_last memory format and bfloat16 autocast on CPU, device "auto"
  (CUDA when available, float16 autocast with a GradScaler on CUDA),
  per-epoch training loss and accuracy, validation loss, pixel accuracy and
  error, Dice, IoU and Rand error on whole images (overlap-tile prediction),
  a tqdm progress bar, checkpoints.
- :func:`train_unet`: a configurable training run on arrays of images and
  labels; the tuned CPU recipe of ``fastscratch train unet`` is
  :func:`fastscratch.segmentation.recipe.train_recipe`.
"""

import math
import os
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from .losses import soft_dice_loss, weight_map, weighted_cross_entropy
from .metrics import confusion_matrix, rand_error, scores_from_confusion
from .transforms import Compose, ElasticDeformation, RandomAffine, RandomFlipRotate, normalize_minmax, normalize_zscore
from .unet import UNet, predict_tiled

__all__ = ["PatchDataset", "Trainer", "train_unet", "resolve_device", "default_augmentation",
           "prepare_data", "plot_prediction", "plot_learning_curves"]

LOSSES = ("weighted_ce", "dice", "weighted_ce+dice")
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = (None, "onecycle", "cosine")


def resolve_device(device="auto"):
    """``"auto"`` -> CUDA if available, else CPU; any other value goes to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}.") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='auto' or 'cpu'.")
    return resolved


def default_augmentation(affine=False, elastic_order=3):
    """Flips and 90-degree rotations, (optional small affine,) the paper's elastic deformation."""
    transforms = [RandomFlipRotate()]
    if affine:
        transforms.append(RandomAffine())
    transforms.append(ElasticDeformation(sigma=10.0, grid_size=3, order=elastic_order))
    return Compose(transforms)


def _normalize(images, method):
    if method is None:
        return images.astype(np.float32)
    function = {"zscore": normalize_zscore, "minmax": normalize_minmax}.get(method)
    if function is None:
        raise ValueError(f"normalize must be 'zscore', 'minmax' or None, got {method!r}.")
    return np.stack([function(image) for image in images])


def prepare_data(images, labels, in_channels=1, n_classes=2, normalize="zscore"):
    """Validate and convert images (N, H, W) or (N, C, H, W) and labels (N, H, W).

    Returns float32 normalised images of shape (N, C, H, W) and int64 labels.
    """
    images = np.asarray(images)
    labels = np.asarray(labels)
    if images.ndim == 3:
        images = images[:, None]
    if images.ndim != 4:
        raise ValueError(f"images must have shape (n_images, height, width) or (n_images, channels, height, "
                         f"width), got {images.shape}.")
    if images.shape[1] != in_channels:
        raise ValueError(f"images have {images.shape[1]} channels but the model takes in_channels={in_channels}.")
    if labels.shape != (images.shape[0], *images.shape[2:]):
        raise ValueError(f"labels must have shape {(images.shape[0], *images.shape[2:])} (one class-index mask "
                         f"per image), got {labels.shape}.")
    if labels.dtype.kind not in "biu":
        raise ValueError(f"labels must hold integer class indices, got dtype {labels.dtype}.")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise ValueError(f"label values must be class indices in [0, {n_classes - 1}], got values in "
                         f"[{labels.min()}, {labels.max()}]; map them first (e.g. 255 -> 1).")
    return _normalize(images, normalize), labels.astype(np.int64)


class PatchDataset(Dataset):
    """Random augmented training patches for a U-Net.

    Parameters
    ----------
    images : ndarray (N, C, H, W), float32, normalised
    labels : ndarray (N, H, W), class indices
    weights : ndarray (N, H, W) or None
        Per-pixel loss weights (:func:`~fastscratch.segmentation.losses.weight_map`); None = ones.
    input_size : int
        Side of the network's input window.
    output_size : int
        Side of the network's output (``input_size`` for padding="same").
    length : int
        Patches per epoch.
    transform : callable or None
        ``transform(image, mask, weight, rng=rng)``, e.g. :func:`default_augmentation`.
    seed : int, default=0

    Items are ``(image (C, in, in) float32, mask (out, out) int64, weight (out, out) float32)``.
    """

    def __init__(self, images, labels, weights, input_size, output_size, length, transform=None, seed=0):
        self.images, self.labels = images, labels
        self.weights = np.ones(labels.shape, np.float32) if weights is None else weights.astype(np.float32)
        self.input_size, self.output_size = int(input_size), int(output_size)
        self.length, self.transform, self.seed = int(length), transform, int(seed)
        self.epoch = 0
        margin = (self.input_size - self.output_size) // 2
        height, width = labels.shape[1:]
        # Mirror padding: margin on every side, plus enough to hold one output window.
        pad_h = (margin, margin + max(0, self.output_size - height))
        pad_w = (margin, margin + max(0, self.output_size - width))
        self._spans = (max(height - self.output_size, 0), max(width - self.output_size, 0))
        self._images = np.pad(images, ((0, 0), (0, 0), pad_h, pad_w), mode="reflect")
        self._labels = np.pad(labels, ((0, 0), pad_h, pad_w), mode="reflect")
        self._weights = np.pad(self.weights, ((0, 0), pad_h, pad_w), mode="reflect")
        self._margin = margin

    def set_epoch(self, epoch):
        """Patches of another epoch (other random windows and deformations)."""
        self.epoch = int(epoch)

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        rng = np.random.default_rng([self.seed, self.epoch, int(index)])
        which = int(rng.integers(self.images.shape[0]))
        top = int(rng.integers(self._spans[0] + 1))
        left = int(rng.integers(self._spans[1] + 1))
        size = self.input_size
        image = self._images[which, :, top:top + size, left:left + size]
        mask = self._labels[which, top:top + size, left:left + size]
        weight = self._weights[which, top:top + size, left:left + size]
        if self.transform is not None:
            image, mask, weight = self.transform(image, mask, weight, rng=rng)
        m, out = self._margin, self.output_size
        return (torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(mask[m:m + out, m:m + out], dtype=np.int64)),
                torch.from_numpy(np.ascontiguousarray(weight[m:m + out, m:m + out], dtype=np.float32)))


class Trainer:
    """A plain PyTorch training loop for :class:`~fastscratch.segmentation.unet.UNet`.

    Parameters
    ----------
    model : UNet
    optimizer : {"sgd", "adam", "adamw"}, default="sgd"
        "sgd": stochastic gradient descent with momentum (the paper: 0.99 with
        batch 1); "adam": Adam (``weight_decay`` added to the gradient);
        "adamw": Adam with decoupled weight decay (Loshchilov and Hutter, 2019).
    lr : float, default=None
        Learning rate (the peak rate of a schedule); None: 0.01 for SGD, 1e-3
        for Adam and AdamW.
    momentum : float, default=0.99
        SGD momentum.
    weight_decay : float, default=0.0
    loss : {"weighted_ce", "dice", "weighted_ce+dice"}, default="weighted_ce"
        The paper's weighted softmax cross-entropy, soft Dice, or their sum.
    dice_weight : float, default=1.0
        Factor of the Dice term in "weighted_ce+dice".
    device : str or torch.device, default="auto"
        "auto": CUDA when available, else CPU.
    amp : bool, default=True
        Mixed precision (float16 autocast and gradient scaling) on CUDA; no
        effect on CPU.
    schedule : {None, "onecycle", "cosine"}, default=None
        Learning-rate schedule stepped after every batch over ``total_steps``
        batches: "onecycle" is ``torch.optim.lr_scheduler.OneCycleLR`` (warm-up
        over the first ``warmup`` fraction from ``lr / 25`` to ``lr``, cosine
        annealing to ``lr / 25e4``, momentum / beta1 cycled 0.95 -> 0.85 -> 0.95);
        "cosine" is a linear warm-up over the first ``warmup`` fraction then
        :math:`\\eta_t = \\eta \\frac{1}{2}(1 + \\cos(\\pi t^\\prime))`, :math:`t^\\prime` the
        fraction of the remaining steps done; None keeps ``lr`` fixed.
    total_steps : int, default=None
        Batches of the whole run; required with a schedule.
    warmup : float, default=0.1
        Fraction of ``total_steps`` spent warming up.
    channels_last : bool, default=False
        Keep model and batches in ``torch.channels_last`` memory format
        (NHWC convolutions).
    cpu_bfloat16 : bool, default=False
        Forward pass under bfloat16 autocast on CPU (the loss and the weights
        stay float32). Fast only on CPUs with bfloat16 instructions
        (AVX512-BF16, AMX); ignored on CUDA, where ``amp`` applies.
    progress : bool, default=True
        tqdm progress bars.

    Attributes
    ----------
    history : dict of lists, one entry per epoch ("epoch", "train_loss",
        "train_accuracy", "val_loss", "val_pixel_accuracy", "val_pixel_error",
        "val_dice", "val_iou", "val_rand_error", "seconds").
    epoch : int, epochs done.
    """

    def __init__(self, model, *, optimizer="sgd", lr=None, momentum=0.99, weight_decay=0.0,
                 loss="weighted_ce", dice_weight=1.0, device="auto", amp=True, schedule=None,
                 total_steps=None, warmup=0.1, channels_last=False, cpu_bfloat16=False, progress=True):
        if not isinstance(model, UNet):
            raise TypeError(f"model must be a UNet, got {type(model).__name__}.")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}.")
        self.device = resolve_device(device)
        self.model = model.to(self.device)
        if lr is None:
            lr = 0.01 if optimizer == "sgd" else 1e-3
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}.")
        if schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}.")
        if schedule is not None and (isinstance(total_steps, bool) or not isinstance(total_steps, (int, np.integer))
                                     or total_steps < 1):
            raise ValueError(f"schedule={schedule!r} needs total_steps, the number of batches of the whole run "
                             f"(a positive integer), got {total_steps!r}.")
        if not 0.0 <= warmup < 1.0:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {warmup!r}.")
        self.config = {"optimizer": optimizer, "lr": float(lr), "momentum": float(momentum),
                       "weight_decay": float(weight_decay), "loss": loss, "dice_weight": float(dice_weight),
                       "amp": bool(amp), "schedule": schedule,
                       "total_steps": None if total_steps is None else int(total_steps), "warmup": float(warmup),
                       "channels_last": bool(channels_last), "cpu_bfloat16": bool(cpu_bfloat16)}
        if channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        if optimizer == "sgd":
            self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        elif optimizer == "adam":
            self.optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.scheduler = self._make_scheduler(schedule, total_steps, warmup)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}.")
        self.use_amp = bool(amp) and self.device.type == "cuda"
        self.use_bfloat16 = bool(cpu_bfloat16) and self.device.type == "cpu"
        self.channels_last = bool(channels_last)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.progress = progress
        self.epoch = 0
        self.history = {key: [] for key in ("epoch", "train_loss", "train_accuracy", "val_loss",
                                            "val_pixel_accuracy", "val_pixel_error", "val_dice", "val_iou",
                                            "val_rand_error", "seconds")}

    def _make_scheduler(self, schedule, total_steps, warmup):
        if schedule is None:
            return None
        if schedule == "onecycle":
            return torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=self.config["lr"], total_steps=int(total_steps),
                pct_start=max(float(warmup), 1e-6), anneal_strategy="cos",
                cycle_momentum=True)
        warm = int(round(warmup * total_steps))

        def factor(step):
            if step < warm:
                return (step + 1) / warm
            done = min(1.0, (step - warm) / max(1, total_steps - warm))
            return 0.5 * (1.0 + math.cos(math.pi * done))

        return torch.optim.lr_scheduler.LambdaLR(self.optimizer, factor)

    # -- one step ----------------------------------------------------------------------
    def train_step(self, images, targets, weights=None):
        """One optimisation step on a batch; returns (loss, correct pixels) as 0-d tensors on the device.

        No host synchronisation: the caller reads the values when it needs them.
        """
        device = self.device
        non_blocking = device.type == "cuda"
        images = images.to(device, non_blocking=non_blocking)
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        targets = targets.to(device, non_blocking=non_blocking)
        if weights is not None:
            weights = weights.to(device, non_blocking=non_blocking)
        self.optimizer.zero_grad(set_to_none=True)
        if self.use_bfloat16:
            with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
                logits = self.model(images)
        else:
            with torch.autocast(device_type=device.type, dtype=torch.float16, enabled=self.use_amp):
                logits = self.model(images)
        # The loss is computed in float32 outside autocast.
        loss = self._loss(logits.float(), targets, weights)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None:
            self.scheduler.step()
        with torch.no_grad():
            if logits.shape[1] == 2:  # argmax of two classes, ties to class 0, without a strided reduction
                prediction = logits[:, 1] > logits[:, 0]
            else:
                prediction = logits.argmax(dim=1)
            correct = (prediction == targets).sum()
        return loss.detach(), correct

    def _loss(self, logits, targets, weights):
        loss = self.config["loss"]
        if loss == "weighted_ce":
            return weighted_cross_entropy(logits, targets, weights, validate=False)
        if loss == "dice":
            return soft_dice_loss(logits, targets, validate=False)
        return (weighted_cross_entropy(logits, targets, weights, validate=False)
                + self.config["dice_weight"] * soft_dice_loss(logits, targets, validate=False))

    def train_epoch(self, loader):
        """One pass over ``loader`` (batches of image, mask, weight); returns (mean loss, pixel accuracy)."""
        from tqdm.auto import tqdm

        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct_sum = torch.zeros((), dtype=torch.int64, device=self.device)
        n_batches = n_pixels = 0
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}", leave=False, disable=not self.progress,
                   unit="batch", mininterval=1.0)
        for images, targets, weights in bar:
            loss, correct = self.train_step(images, targets, weights)
            loss_sum += loss
            correct_sum += correct
            n_batches += 1
            n_pixels += targets.numel()
        bar.close()
        if n_batches == 0:
            raise ValueError("the training loader is empty; give it at least one batch.")
        mean_loss = float(loss_sum) / n_batches
        if not math.isfinite(mean_loss):
            raise FloatingPointError(f"training loss became {mean_loss} in epoch {self.epoch + 1}; lower lr "
                                     f"(now {self.config['lr']}).")
        return mean_loss, float(correct_sum) / n_pixels

    # -- evaluation --------------------------------------------------------------------
    def evaluate(self, images, labels, weights=None, tile=None, batch_size=4):
        """Loss and scores on whole images with the overlap-tile prediction.

        ``images`` (N, C, H, W) normalised float32, ``labels`` (N, H, W),
        ``weights`` (N, H, W) or None. Returns a dict with "loss",
        "pixel_accuracy", "pixel_error", "dice", "iou" (class averages over all
        images' pixels) and "rand_error" (mean over images), and
        "predictions" (N, H, W) int64.
        """
        n_classes = self.model.n_classes
        confusion = torch.zeros((n_classes, n_classes), dtype=torch.int64)
        losses, rand_errors, predictions = [], [], []
        for index in range(len(images)):
            logits = predict_tiled(self.model, images[index], tile=tile, batch_size=batch_size,
                                   amp=self.use_amp, return_logits=True)
            logits = torch.from_numpy(logits)[None]
            target = torch.as_tensor(labels[index], dtype=torch.int64)[None]
            weight = None if weights is None else torch.as_tensor(weights[index], dtype=torch.float32)[None]
            losses.append(float(self._loss(logits, target, weight)))
            prediction = logits[0].argmax(dim=0)
            confusion += confusion_matrix(prediction, target[0], n_classes)
            predictions.append(prediction.numpy())
            if n_classes == 2:
                rand_errors.append(rand_error(predictions[-1], labels[index]))
        scores = scores_from_confusion(confusion)
        scores["loss"] = float(np.mean(losses))
        scores["rand_error"] = float(np.mean(rand_errors)) if rand_errors else float("nan")
        scores["predictions"] = np.stack(predictions)
        return scores

    # -- the loop ----------------------------------------------------------------------
    def fit(self, train_loader, epochs, validation=None, checkpoint_path=None, tile=None, verbose=True):
        """Train for ``epochs`` more epochs.

        Parameters
        ----------
        train_loader : DataLoader of (image, mask, weight) batches (its data
            set's ``set_epoch`` is called each epoch when it has one).
        epochs : int
        validation : tuple (images, labels, weights) or None
            Whole images for :meth:`evaluate` after every epoch.
        checkpoint_path : str or None
            Save a checkpoint there after every epoch.
        tile : int or None
            Input tile of the validation prediction.
        verbose : bool
            Print one line per epoch.
        """
        if not isinstance(epochs, (int, np.integer)) or epochs < 0:
            raise ValueError(f"epochs must be a non-negative integer, got {epochs!r}.")
        for _ in range(int(epochs)):
            start = time.perf_counter()
            dataset = getattr(train_loader, "dataset", None)
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(self.epoch)
            train_loss, train_accuracy = self.train_epoch(train_loader)
            self.epoch += 1
            scores = {}
            if validation is not None:
                scores = self.evaluate(*validation, tile=tile)
            seconds = time.perf_counter() - start
            row = {"epoch": self.epoch, "train_loss": train_loss, "train_accuracy": train_accuracy,
                   "val_loss": scores.get("loss", float("nan")),
                   "val_pixel_accuracy": scores.get("pixel_accuracy", float("nan")),
                   "val_pixel_error": scores.get("pixel_error", float("nan")),
                   "val_dice": scores.get("dice", float("nan")), "val_iou": scores.get("iou", float("nan")),
                   "val_rand_error": scores.get("rand_error", float("nan")), "seconds": seconds}
            for key, value in row.items():
                self.history[key].append(value)
            if verbose:
                line = f"epoch {self.epoch}: train loss {train_loss:.4f}, accuracy {train_accuracy:.4f}"
                if validation is not None:
                    line += (f" | val loss {row['val_loss']:.4f}, pixel error {row['val_pixel_error']:.4f}, "
                             f"Dice {row['val_dice']:.4f}, IoU {row['val_iou']:.4f}, "
                             f"Rand error {row['val_rand_error']:.4f}")
                print(line + f" ({seconds:.1f} s)", flush=True)
            if checkpoint_path is not None:
                self.save_checkpoint(checkpoint_path)
        return self.history

    # -- checkpoints -------------------------------------------------------------------
    def save_checkpoint(self, path, **extra):
        """Save model configuration and weights, optimizer and scaler state, epoch and history."""
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        state = {"model_config": self.model.get_config(), "model_state": self.model.state_dict(),
                 "optimizer_state": self.optimizer.state_dict(), "scaler_state": self.scaler.state_dict(),
                 "scheduler_state": None if self.scheduler is None else self.scheduler.state_dict(),
                 "trainer_config": dict(self.config), "epoch": self.epoch,
                 "history": {key: list(values) for key, values in self.history.items()}, "extra": extra}
        temporary = f"{path}.tmp"
        torch.save(state, temporary)
        os.replace(temporary, path)

    @classmethod
    def load_checkpoint(cls, path, device="auto", progress=True):
        """Rebuild a Trainer (model, optimizer, history) from :meth:`save_checkpoint`'s file.

        Returns ``(trainer, extra)`` where ``extra`` holds the keyword arguments
        given to ``save_checkpoint``.
        """
        device = resolve_device(device)
        state = torch.load(path, map_location=device, weights_only=True)
        model = UNet(**state["model_config"])
        model.load_state_dict(state["model_state"])
        config = dict(state["trainer_config"])
        trainer = cls(model, optimizer=config["optimizer"], lr=config["lr"], momentum=config["momentum"],
                      weight_decay=config["weight_decay"], loss=config["loss"], dice_weight=config["dice_weight"],
                      device=device, amp=config["amp"], schedule=config.get("schedule"),
                      total_steps=config.get("total_steps"), warmup=config.get("warmup", 0.1),
                      channels_last=config.get("channels_last", False),
                      cpu_bfloat16=config.get("cpu_bfloat16", False), progress=progress)
        trainer.optimizer.load_state_dict(state["optimizer_state"])
        if trainer.scheduler is not None and state.get("scheduler_state"):
            trainer.scheduler.load_state_dict(state["scheduler_state"])
        if state.get("scaler_state"):
            trainer.scaler.load_state_dict(state["scaler_state"])
        trainer.epoch = int(state["epoch"])
        trainer.history = {key: list(values) for key, values in state["history"].items()}
        return trainer, state.get("extra", {})


# -- figures -------------------------------------------------------------------------------
def _figure(width, height):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    return figure


def plot_prediction(path, image, truth, prediction, title=None):
    """Save a PNG of image / ground truth / prediction side by side (Agg, no display needed)."""
    figure = _figure(12, 4.4)
    axes = figure.subplots(1, 3)
    image = np.asarray(image)
    if image.ndim == 3:
        image = image[0] if image.shape[0] == 1 else np.moveaxis(image, 0, -1)
    top_class = max(1, int(np.max(truth)), int(np.max(prediction)))
    for axis, data, name in zip(axes, (image, truth, prediction), ("image", "ground truth", "prediction")):
        limits = {} if data is image else {"vmin": 0, "vmax": top_class}  # a constant mask stays readable
        axis.imshow(data, cmap="gray", interpolation="nearest", **limits)
        axis.set_title(name)
        axis.set_axis_off()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


def plot_learning_curves(path, history):
    """Save a PNG of the training/validation loss and the validation scores per epoch."""
    figure = _figure(11, 4.2)
    loss_axis, score_axis = figure.subplots(1, 2)
    epochs = history["epoch"]
    loss_axis.plot(epochs, history["train_loss"], marker="o", label="training")
    if np.isfinite(history["val_loss"]).any():
        loss_axis.plot(epochs, history["val_loss"], marker="o", label="validation")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    loss_axis.set_title("loss")
    loss_axis.legend()
    score_axis.plot(epochs, history["train_accuracy"], marker="o", label="training pixel accuracy")
    for key, name in (("val_pixel_accuracy", "validation pixel accuracy"), ("val_dice", "validation Dice"),
                      ("val_iou", "validation IoU"), ("val_rand_error", "validation Rand error")):
        if np.isfinite(history[key]).any():
            score_axis.plot(epochs, history[key], marker="o", label=name)
    score_axis.set_xlabel("epoch")
    score_axis.set_title("scores")
    score_axis.legend(fontsize="small")
    from matplotlib.ticker import MaxNLocator

    for axis in (loss_axis, score_axis):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    return path


# -- the recipe ----------------------------------------------------------------------------
def train_unet(images, labels, *, validation_images=None, validation_labels=None, n_validation=3,
               model=None, base_channels=64, depth=4, padding="valid", batch_norm=False, input_size=None,
               epochs=10, steps_per_epoch=None, batch_size=1, optimizer="sgd", lr=None, momentum=0.99,
               weight_decay=0.0, loss="weighted_ce", dice_weight=1.0, w0=10.0, sigma=5.0, augment=True,
               normalize="zscore", device="auto", amp=True, num_workers=0, seed=0, progress=True,
               checkpoint_path=None, resume=None, verbose=True):
    """Train a U-Net on images and class-index masks; returns the :class:`Trainer`.

    Parameters
    ----------
    images : ndarray (N, H, W) or (N, C, H, W)
        Raw images (normalised here per image, see ``normalize``).
    labels : ndarray (N, H, W) of class indices (ISBI 2012: 1 = cell, 0 = membrane).
    validation_images, validation_labels : ndarrays, default=None
        Validation set; if None, the last ``n_validation`` images are held out
        (ISBI slices are consecutive, so a contiguous split avoids leaking
        neighbouring slices into training).
    n_validation : int, default=3
        Images held out when no validation set is given (0: no validation).
    model : UNet, default=None
        Train this network; None builds ``UNet(C, 2, base_channels, depth, padding, batch_norm)``
        initialised under ``torch.manual_seed(seed)``.
    input_size : int, default=None
        Side of the training patches fed to the network: default 572 for
        "valid" (the paper's tile; the largest valid size not above it for
        other depths), 256 for "same".
    epochs : int, default=10
    steps_per_epoch : int, default=None
        Batches per epoch; None: enough output windows to cover every training
        image once (``N * ceil(H / out) * ceil(W / out) / batch_size``).
    batch_size : int, default=1
        The paper uses 1 (large tiles) with momentum 0.99.
    optimizer, lr, momentum, weight_decay, loss, dice_weight, device, amp
        See :class:`Trainer`.
    w0, sigma : float, default=10, 5
        Weight map parameters (:func:`~fastscratch.segmentation.losses.weight_map`).
    augment : bool, default=True
        Random flips / 90-degree rotations and the paper's elastic deformation.
    normalize : {"zscore", "minmax", None}, default="zscore"
    num_workers : int, default=0
        DataLoader worker processes preparing augmented patches in parallel.
    seed : int, default=0
    progress : bool, default=True
    checkpoint_path : str, default=None
        Save a checkpoint after every epoch.
    resume : str, default=None
        Continue from this checkpoint (model, optimizer, history); ``epochs``
        more epochs are run.
    verbose : bool, default=True

    Returns
    -------
    trainer : Trainer
        ``trainer.model`` is the trained network, ``trainer.history`` the
        per-epoch scores, ``trainer.validation`` the held-out (images, labels,
        weights) arrays after normalisation (or None).
    """
    if steps_per_epoch is not None and (not isinstance(steps_per_epoch, (int, np.integer)) or steps_per_epoch < 1):
        raise ValueError(f"steps_per_epoch must be a positive integer or None, got {steps_per_epoch!r}.")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}.")
    if resume is not None:
        trainer, _ = Trainer.load_checkpoint(resume, device=device, progress=progress)
        model = trainer.model
    else:
        if model is None:
            in_channels = 1 if np.ndim(images) == 3 else np.shape(images)[1]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = UNet(in_channels=in_channels, n_classes=2, base_channels=base_channels, depth=depth,
                             padding=padding, batch_norm=batch_norm)
        trainer = Trainer(model, optimizer=optimizer, lr=lr, momentum=momentum, weight_decay=weight_decay,
                          loss=loss, dice_weight=dice_weight, device=device, amp=amp, progress=progress)
    images, labels = prepare_data(images, labels, model.in_channels, model.n_classes, normalize)
    if validation_images is not None:
        validation = prepare_data(validation_images, validation_labels, model.in_channels, model.n_classes,
                                  normalize)
    elif n_validation:
        if n_validation >= len(images):
            raise ValueError(f"n_validation={n_validation} leaves no training image out of {len(images)}; "
                             "use fewer validation images or pass validation_images.")
        validation = (images[-n_validation:], labels[-n_validation:])
        images, labels = images[:-n_validation], labels[:-n_validation]
    else:
        validation = None

    def weights_of(masks):
        if trainer.config["loss"] == "dice":
            return None
        return np.stack([weight_map(mask, w0=w0, sigma=sigma, n_classes=model.n_classes) for mask in masks])

    train_weights = weights_of(labels)
    if validation is not None:
        validation = (validation[0], validation[1], weights_of(validation[1]))

    if input_size is None:
        if model.padding == "valid":
            candidates = model.valid_input_sizes(model.min_input_size, 572)
            input_size = candidates[-1] if candidates else model.min_input_size
        else:
            input_size = 256
    output_size = model.output_size(input_size)
    height, width = labels.shape[1:]
    if steps_per_epoch is None:
        windows = len(images) * math.ceil(height / output_size) * math.ceil(width / output_size)
        steps_per_epoch = max(1, math.ceil(windows / batch_size))
    transform = default_augmentation() if augment else None
    dataset = PatchDataset(images, labels, train_weights, input_size, output_size,
                           length=steps_per_epoch * batch_size, transform=transform, seed=seed)
    # Workers are not persistent: they are started each epoch with the data set's current epoch.
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=trainer.device.type == "cuda")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + trainer.epoch)
        trainer.fit(loader, epochs, validation=validation, checkpoint_path=checkpoint_path,
                    tile=input_size, verbose=verbose)
    trainer.validation = validation
    trainer.input_size = input_size
    return trainer
