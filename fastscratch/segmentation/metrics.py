"""Segmentation scores: confusion matrix, pixel accuracy, Dice, IoU and the ISBI 2012 Rand error."""

import numpy as np
import torch
from scipy import ndimage, sparse

__all__ = ["confusion_matrix", "scores_from_confusion", "rand_error"]


def confusion_matrix(prediction, target, n_classes):
    """``C[t, p]`` = number of pixels of true class ``t`` predicted as ``p`` (int64 tensor).

    ``prediction`` and ``target`` are integer tensors (or arrays) of the same
    shape holding class indices; stays on their device.
    """
    prediction = torch.as_tensor(prediction).reshape(-1).long()
    target = torch.as_tensor(target).reshape(-1).long().to(prediction.device)
    return torch.bincount(target * n_classes + prediction, minlength=n_classes ** 2).reshape(n_classes, n_classes)


def scores_from_confusion(confusion):
    """Pixel accuracy, pixel error, and Dice and IoU averaged over the classes present.

    Dice of class ``c``: ``2 TP / (2 TP + FP + FN)``; IoU: ``TP / (TP + FP + FN)``.
    A class absent from both truth and prediction is left out of the averages.
    Returns a dict of floats (also ``dice_per_class`` and ``iou_per_class`` lists).
    """
    confusion = np.asarray(torch.as_tensor(confusion).cpu(), dtype=np.float64)
    total = confusion.sum()
    true_positive = np.diag(confusion)
    false_positive = confusion.sum(axis=0) - true_positive
    false_negative = confusion.sum(axis=1) - true_positive
    union = true_positive + false_positive + false_negative
    present = union > 0
    dice = np.where(present, 2 * true_positive / np.maximum(2 * true_positive + false_positive + false_negative, 1),
                    np.nan)
    iou = np.where(present, true_positive / np.maximum(union, 1), np.nan)
    accuracy = true_positive.sum() / total if total else float("nan")
    return {
        "pixel_accuracy": float(accuracy),
        "pixel_error": float(1.0 - accuracy),
        "dice": float(np.nanmean(dice)) if present.any() else float("nan"),
        "iou": float(np.nanmean(iou)) if present.any() else float("nan"),
        "dice_per_class": dice.tolist(),
        "iou_per_class": iou.tolist(),
    }


def rand_error(prediction, truth, foreground=1, connectivity=1):
    """Foreground-restricted Rand error of the ISBI 2012 challenge: ``1 - Rand F-score``.

    Both class maps are turned into segments, the connected components of
    ``== foreground`` (cells); pixels where the truth is not a cell are
    ignored. Over pairs of the remaining pixels, with the contingency table
    ``p_ij`` (pixels in true segment ``i`` and predicted segment ``j``, where
    predicted background counts as one more segment), row sums ``a_i`` and
    column sums ``b_j``:

    ``precision = sum(p_ij (p_ij - 1)) / sum(b_j (b_j - 1))``,
    ``recall = sum(p_ij (p_ij - 1)) / sum(a_i (a_i - 1))``, and the error is
    ``1 - 2 precision recall / (precision + recall)`` (the "adapted Rand
    error" of Arganda-Carreras et al., 2015, as in scikit-image).

    Parameters
    ----------
    prediction, truth : ndarray of shape (height, width), class indices
    foreground : int, default=1
    connectivity : {1, 2}, default=1

    Returns
    -------
    error : float in [0, 1]
    """
    prediction, truth = np.asarray(prediction), np.asarray(truth)
    if prediction.shape != truth.shape or prediction.ndim != 2:
        raise ValueError(f"prediction and truth must be 2-D class maps of one shape, got {prediction.shape} "
                         f"and {truth.shape}.")
    structure = ndimage.generate_binary_structure(2, connectivity)
    true_segments, _ = ndimage.label(truth == foreground, structure=structure)
    predicted_segments, n_predicted = ndimage.label(prediction == foreground, structure=structure)
    keep = true_segments.ravel() > 0
    rows = true_segments.ravel()[keep]
    cols = predicted_segments.ravel()[keep]
    if rows.size < 2:
        return 0.0
    table = sparse.coo_matrix((np.ones(rows.size), (rows, cols)),
                              shape=(rows.max() + 1, n_predicted + 1)).tocsr()
    table.sum_duplicates()
    counts = table.data
    pairs_joint = float(counts @ counts - counts.sum())
    a = np.asarray(table.sum(axis=1)).ravel()
    b = np.asarray(table.sum(axis=0)).ravel()
    pairs_true = float(a @ a - a.sum())
    pairs_predicted = float(b @ b - b.sum())
    if pairs_joint == 0:
        return 1.0
    precision = pairs_joint / pairs_predicted
    recall = pairs_joint / pairs_true
    return float(1.0 - 2.0 * precision * recall / (precision + recall))
