"""Losses of the U-Net: the paper's weighted pixel-wise softmax cross-entropy, soft Dice, and their sum.

:func:`weight_map` computes the paper's per-pixel weights from a label image
(NumPy, once per training image); the losses are PyTorch modules that take
logits of shape (batch, n_classes, height, width), integer targets of shape
(batch, height, width) and optionally the weight map of the same shape.
"""

import math

import numpy as np
import torch
from scipy import ndimage
from torch import nn
from torch.nn import functional as F

__all__ = ["class_balance_weights", "weight_map", "check_target", "weighted_cross_entropy",
           "soft_dice_loss", "WeightedCrossEntropyLoss", "SoftDiceLoss", "CombinedLoss"]


def class_balance_weights(label, n_classes=2):
    """Per-class weights ``n_pixels / (n_classes * count_c)`` (scikit-learn's "balanced").

    Absent classes get weight 0. Returns an ndarray of shape (n_classes,).
    """
    counts = np.bincount(np.asarray(label).ravel().astype(np.intp), minlength=n_classes)[:n_classes]
    weights = np.zeros(n_classes, dtype=np.float64)
    present = counts > 0
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def _check_label(label, n_classes):
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be a 2-D (height, width) image of class indices, got shape {label.shape}.")
    if label.dtype.kind not in "biu":
        if label.dtype.kind != "f" or not np.all(np.equal(np.mod(label, 1), 0)):
            raise ValueError(f"label must hold integer class indices, got dtype {label.dtype}; "
                             "threshold probability masks first, e.g. (mask > 0.5).astype(np.uint8).")
    if label.size and (label.min() < 0 or label.max() >= n_classes):
        raise ValueError(f"label values must be class indices in [0, {n_classes - 1}], got values in "
                         f"[{label.min()}, {label.max()}]; map them first (e.g. 255 -> 1 with label // 255).")
    return label.astype(np.intp)


def weight_map(label, w0=10.0, sigma=5.0, class_weights="balanced", foreground=1, n_classes=2,
               connectivity=1, dtype=np.float32):
    """The paper's pixel weight map ``w = w_c + w0 * exp(-(d1 + d2)**2 / (2 sigma**2))``.

    Parameters
    ----------
    label : ndarray of shape (height, width)
        Class indices; the connected components of ``label == foreground`` are
        the cells (1 = cell interior, 0 = membrane for ISBI 2012).
    w0 : float, default=10
    sigma : float, default=5
        In pixels.
    class_weights : "balanced" or array-like of shape (n_classes,), default="balanced"
        :math:`w_c`: "balanced" gives ``n_pixels / (n_classes * count_c)``
        computed on this label image.
    foreground : int, default=1
        Class index of the cells.
    n_classes : int, default=2
    connectivity : {1, 2}, default=1
        Neighbourhood of the connected components: 1 = 4-connected (cells that
        touch only at a corner stay separate), 2 = 8-connected.
    dtype : default=np.float32

    Returns
    -------
    weights : ndarray of shape (height, width)

    Notes
    -----
    :math:`d_1(x)` and :math:`d_2(x)` are the Euclidean distances from pixel
    :math:`x` to the nearest and the second nearest cell (distance transform
    of the complement of each connected component). As in the paper's Fig. 3d
    and its reference implementations, the border term is added on background
    (membrane) pixels, where separating touching cells matters; a cell pixel
    has :math:`d_1 = 0`. With fewer than two cells the border term is zero.

    Each cell's distance transform is computed in its bounding box grown by
    :math:`R = \\lceil 6\\sigma \\rceil + 1` pixels; farther pixels have
    :math:`d_1 + d_2 > R` and a border term below
    :math:`w_0 e^{-18} \\approx 1.5 \\cdot 10^{-7}`, which is dropped.
    """
    label = _check_label(label, n_classes)
    if sigma <= 0:
        raise ValueError(f"sigma must be > 0, got {sigma}.")
    if isinstance(class_weights, str):
        if class_weights != "balanced":
            raise ValueError(f"class_weights must be 'balanced' or an array of {n_classes} weights, "
                             f"got {class_weights!r}.")
        class_weights = class_balance_weights(label, n_classes)
    class_weights = np.asarray(class_weights, dtype=np.float64)
    if class_weights.shape != (n_classes,):
        raise ValueError(f"class_weights must have shape ({n_classes},), got {class_weights.shape}.")
    weights = class_weights[label]

    structure = ndimage.generate_binary_structure(2, connectivity)
    cells, n_cells = ndimage.label(label == foreground, structure=structure)
    if n_cells < 2 or w0 == 0:
        return weights.astype(dtype)
    height, width = label.shape
    reach = int(math.ceil(6 * sigma)) + 1
    d1 = np.full(label.shape, np.inf)
    d2 = np.full(label.shape, np.inf)
    for index, box in enumerate(ndimage.find_objects(cells), start=1):
        rows = slice(max(box[0].start - reach, 0), min(box[0].stop + reach, height))
        cols = slice(max(box[1].start - reach, 0), min(box[1].stop + reach, width))
        distance = ndimage.distance_transform_edt(cells[rows, cols] != index)
        first, second = d1[rows, cols], d2[rows, cols]
        closer = distance < first
        second[:] = np.where(closer, first, np.minimum(second, distance))
        first[:] = np.where(closer, distance, first)
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2.0 * sigma ** 2))
    weights = weights + np.where(label != foreground, border, 0.0)
    return weights.astype(dtype)


def check_target(target, n_classes):
    """Raise ValueError unless ``target`` is an integer tensor of class indices in [0, n_classes)."""
    if target.dtype.is_floating_point or target.dtype == torch.bool or target.dtype.is_complex:
        raise ValueError(f"target must be an integer tensor of class indices, got dtype {target.dtype}; "
                         "convert the mask with .long() after thresholding it.")
    if target.numel():
        low, high = int(target.min()), int(target.max())
        if low < 0 or high >= n_classes:
            raise ValueError(f"target values must be class indices in [0, {n_classes - 1}], got values in "
                             f"[{low}, {high}]; map them first (e.g. 255 -> 1).")


def _check_shapes(logits, target, weight):
    if logits.ndim != 4 or target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(f"logits must be (batch, n_classes, height, width) and target (batch, height, width) "
                         f"with the same spatial size, got {tuple(logits.shape)} and {tuple(target.shape)}; "
                         "with padding='valid' crop the target to the output size.")
    if weight is not None and weight.shape != target.shape:
        raise ValueError(f"weight must have the target's shape {tuple(target.shape)}, got {tuple(weight.shape)}.")


def weighted_cross_entropy(logits, target, weight=None, validate=True):
    """Mean over pixels of ``w(x) * -log softmax(logits)_{target(x)}(x)`` (the paper's energy, per pixel).

    ``weight`` None means 1 everywhere: plain cross-entropy, computed by
    ``F.cross_entropy``'s fused mean (the bare training loop's loss, without
    the per-pixel loss tensor and its backward). Computed in float32.
    """
    if validate:
        _check_shapes(logits, target, weight)
        check_target(target, logits.shape[1])
    if weight is None:
        return F.cross_entropy(logits.float(), target.long())
    losses = F.cross_entropy(logits.float(), target.long(), reduction="none")
    return (losses * weight.to(losses.dtype)).mean()


def soft_dice_loss(logits, target, smooth=1.0, validate=True):
    """``1 - mean_c (2 sum p_c g_c + smooth) / (sum p_c + sum g_c + smooth)`` over the classes.

    ``p_c`` are the softmax probabilities of class ``c`` and ``g_c`` its
    one-hot target, summed over the batch and the pixels.
    """
    if validate:
        _check_shapes(logits, target, None)
        check_target(target, logits.shape[1])
    probabilities = torch.softmax(logits.float(), dim=1)
    one_hot = F.one_hot(target.long(), logits.shape[1]).permute(0, 3, 1, 2).to(probabilities.dtype)
    axes = (0, 2, 3)
    intersection = (probabilities * one_hot).sum(axes)
    total = probabilities.sum(axes) + one_hot.sum(axes)
    return 1.0 - ((2.0 * intersection + smooth) / (total + smooth)).mean()


class WeightedCrossEntropyLoss(nn.Module):
    """Pixel-wise softmax cross-entropy weighted by the paper's weight map (see :func:`weight_map`).

    Notes
    -----
    :math:`E = \\frac{1}{|\\Omega|} \\sum_{x \\in \\Omega} w(x) \\, (-\\log p_{\\ell(x)}(x))` with
    :math:`p_k(x) = \\exp(a_k(x)) / \\sum_{k'} \\exp(a_{k'}(x))`, :math:`a` the logits and
    :math:`\\ell(x)` the true class; the paper writes the sum, we take the mean
    so that the loss does not grow with the tile size.
    """

    def forward(self, logits, target, weight=None):
        return weighted_cross_entropy(logits, target, weight)


class SoftDiceLoss(nn.Module):
    """Soft Dice loss, averaged over the classes (see :func:`soft_dice_loss`)."""

    def __init__(self, smooth=1.0):
        super().__init__()
        self.smooth = smooth

    def forward(self, logits, target, weight=None):
        return soft_dice_loss(logits, target, smooth=self.smooth)


class CombinedLoss(nn.Module):
    """``weighted cross-entropy + dice_weight * soft Dice``."""

    def __init__(self, dice_weight=1.0, smooth=1.0):
        super().__init__()
        self.dice_weight, self.smooth = dice_weight, smooth

    def forward(self, logits, target, weight=None):
        _check_shapes(logits, target, weight)
        check_target(target, logits.shape[1])
        return (weighted_cross_entropy(logits, target, weight, validate=False)
                + self.dice_weight * soft_dice_loss(logits, target, self.smooth, validate=False))
