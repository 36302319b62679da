"""Semantic segmentation: the U-Net of Ronneberger, Fischer and Brox (2015) and what it needs.

- :mod:`.unet`: :class:`~.unet.UNet` and the overlap-tile :func:`~.unet.predict_tiled`.
- :mod:`.transforms`: intensity normalisation, flips and rotations, affine and
  the paper's elastic deformation, applied alike to image, mask and weight map.
- :mod:`.losses`: the paper's weight map and weighted softmax cross-entropy,
  soft Dice, their sum.
- :mod:`.metrics`: pixel accuracy, Dice, IoU, the ISBI 2012 Rand error.
- :mod:`.train`: patches, the training loop, checkpoints and figures.
- :mod:`.recipe`: the CPU training recipe (``fastscratch train unet``) and
  :func:`pretrained`, the U-Net it trained on ISBI 2012.

``fastscratch.UNet`` imports :mod:`.unet` on first use (PyTorch loads then).
"""

from .recipe import RECIPE, pretrained, train_recipe  # imports no PyTorch

__all__ = ["RECIPE", "pretrained", "train_recipe"]
