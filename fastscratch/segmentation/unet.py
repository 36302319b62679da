"""The U-Net of Ronneberger, Fischer and Brox (MICCAI 2015) and its overlap-tile prediction.

With its defaults :class:`UNet` is the network of the paper (Fig. 1): a
contracting path of repeated 3x3 unpadded convolutions with ReLU and 2x2 max
pooling (stride 2) that doubles the feature channels at each step, an
expansive path of 2x2 up-convolutions that halve them, concatenated with the
centre-cropped feature map of the same level, and a final 1x1 convolution to
the classes. It has 31,030,658 parameters and maps a 572 x 572 tile to a
388 x 388 segmentation. :func:`predict_tiled` is the paper's overlap-tile
strategy (Fig. 2): the image border is extended by mirroring so that any image
size is segmented seamlessly.
"""

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["UNet", "predict_tiled"]

PADDINGS = ("valid", "same")


class _DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by (batch norm and) ReLU."""

    def __init__(self, in_channels, out_channels, padding, batch_norm):
        layers = []
        for channels_in in (in_channels, out_channels):
            layers.append(nn.Conv2d(channels_in, out_channels, kernel_size=3,
                                    padding=1 if padding == "same" else 0, bias=not batch_norm))
            if batch_norm:
                layers.append(nn.BatchNorm2d(out_channels))
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def _center_crop(tensor, height, width):
    top = (tensor.shape[-2] - height) // 2
    left = (tensor.shape[-1] - width) // 2
    return tensor[..., top:top + height, left:left + width]


class UNet(nn.Module):
    """U-Net for semantic segmentation (Ronneberger, Fischer and Brox, 2015).

    Parameters
    ----------
    in_channels : int, default=1
        Channels of the input image (1 for the grayscale ISBI 2012 data).
    n_classes : int, default=2
        Classes of the pixel-wise softmax; the output has this many channels.
    base_channels : int, default=64
        Feature channels of the first level; level ``l`` has
        ``base_channels * 2**l`` (64, 128, 256, 512, 1024 in the paper).
    depth : int, default=4
        Number of 2x2 max-pooling steps (4 in the paper).
    padding : {"valid", "same"}, default="valid"
        "valid": unpadded convolutions as in the paper; the output is smaller
        than the input (572 -> 388) and only some input sizes are possible
        (:meth:`valid_input_sizes`). "same": zero-padded convolutions, output
        size = input size, which must be a multiple of ``2**depth``.
    batch_norm : bool, default=False
        Batch normalisation after each 3x3 convolution (not in the paper; the
        convolutions then have no bias).

    Attributes
    ----------
    encoder : ModuleList of the contracting path's double convolutions.
    bottleneck : the double convolution at the lowest resolution.
    upconvs, decoder : ModuleLists of the expansive path.
    head : the final 1x1 convolution.

    Notes
    -----
    With :math:`c_l = \\text{base\\_channels} \\cdot 2^l`, level
    :math:`l = 0, \\dots, \\text{depth}-1` of the contracting path computes
    :math:`e_l = \\mathrm{ReLU}(W_{l,2} * \\mathrm{ReLU}(W_{l,1} * x_l))` and
    :math:`x_{l+1} = \\mathrm{maxpool}_{2\\times 2}(e_l)`; the bottleneck is
    the same double convolution at level ``depth``. The expansive path computes
    :math:`u_l = \\mathrm{DoubleConv}([\\mathrm{crop}(e_l), U_l \\star u_{l+1}])`
    where :math:`U_l \\star` is a 2x2 transposed convolution with stride 2
    from :math:`c_{l+1}` to :math:`c_l` channels and ``crop`` cuts the centre
    of :math:`e_l` to the size of the up-sampled map. The output is
    :math:`W_{\\text{head}} * u_0` (1x1 convolution, logits of the softmax).

    In "valid" mode a 3x3 convolution removes 2 pixels from each dimension,
    so an input of size :math:`s` works if every level's size before a pooling
    is even; with :math:`b` the bottleneck's output size,
    :math:`s = 2^{d}(b + 8) - 4` and the output is
    :math:`2^{d}(b - 4) + 4` (``d`` = depth; 572 -> 388 for :math:`b = 28`).

    Initialisation as in the paper: weights drawn from a Gaussian with
    standard deviation :math:`\\sqrt{2/N}` (He et al., 2015), :math:`N` the
    number of incoming nodes of one neuron (:math:`9 c_{in}` for a 3x3
    convolution, :math:`c_{in}` for the 2x2 stride-2 up-convolution and the
    1x1 convolution); biases zero.

    References
    ----------
    O. Ronneberger, P. Fischer and T. Brox, "U-Net: Convolutional Networks for
    Biomedical Image Segmentation", MICCAI 2015, LNCS 9351, pp. 234-241.

    Examples
    --------
    >>> import torch
    >>> from fastscratch import UNet
    >>> model = UNet()
    >>> sum(p.numel() for p in model.parameters())
    31030658
    >>> model.output_size(572)
    388
    """

    def __init__(self, in_channels=1, n_classes=2, base_channels=64, depth=4, padding="valid",
                 batch_norm=False):
        super().__init__()
        for name, value, minimum in (("in_channels", in_channels, 1), ("n_classes", n_classes, 1),
                                     ("base_channels", base_channels, 1), ("depth", depth, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
        if padding not in PADDINGS:
            raise ValueError(f"padding must be one of {PADDINGS}, got {padding!r}.")
        self.in_channels = int(in_channels)
        self.n_classes = int(n_classes)
        self.base_channels = int(base_channels)
        self.depth = int(depth)
        self.padding = padding
        self.batch_norm = bool(batch_norm)

        channels = [self.base_channels * 2 ** level for level in range(self.depth + 1)]
        self.encoder = nn.ModuleList()
        previous = self.in_channels
        for level in range(self.depth):
            self.encoder.append(_DoubleConv(previous, channels[level], padding, self.batch_norm))
            previous = channels[level]
        self.bottleneck = _DoubleConv(previous, channels[-1], padding, self.batch_norm)
        self.upconvs = nn.ModuleList()
        self.decoder = nn.ModuleList()
        for level in reversed(range(self.depth)):
            self.upconvs.append(nn.ConvTranspose2d(channels[level + 1], channels[level], kernel_size=2, stride=2))
            self.decoder.append(_DoubleConv(2 * channels[level], channels[level], padding, self.batch_norm))
        self.head = nn.Conv2d(channels[0], self.n_classes, kernel_size=1)
        self.reset_parameters()

    # -- construction ------------------------------------------------------------------
    def reset_parameters(self, generator=None):
        """He-normal initialisation of the paper: std = sqrt(2 / incoming nodes), zero biases."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.in_channels * module.kernel_size[0] * module.kernel_size[1]
            elif isinstance(module, nn.ConvTranspose2d):
                # Stride = kernel size: every output pixel sees one tap of each input channel.
                fan_in = module.in_channels
            elif isinstance(module, nn.BatchNorm2d):
                module.reset_parameters()
                continue
            else:
                continue
            with torch.no_grad():
                module.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                if module.bias is not None:
                    module.bias.zero_()

    def get_config(self):
        """Constructor arguments, so that ``UNet(**model.get_config())`` rebuilds the network."""
        return {"in_channels": self.in_channels, "n_classes": self.n_classes,
                "base_channels": self.base_channels, "depth": self.depth,
                "padding": self.padding, "batch_norm": self.batch_norm}

    def extra_repr(self):
        return ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())

    # -- size arithmetic ---------------------------------------------------------------
    def _trace_size(self, size):
        """Sizes of the skip and up-sampled maps for one dimension, or None if invalid."""
        if self.padding == "same":
            return size if size >= 1 and size % 2 ** self.depth == 0 else None
        for _ in range(self.depth):
            size -= 4
            if size < 2 or size % 2:
                return None
            size //= 2
        size -= 4
        if size < 1:
            return None
        for _ in range(self.depth):
            size = 2 * size - 4
            if size < 1:
                return None
        return size

    def output_size(self, input_size):
        """Output size (one dimension) for an input of ``input_size`` pixels.

        Raises ValueError, naming the nearest sizes that work, if the network
        cannot take that size.
        """
        output = self._trace_size(int(input_size))
        if output is None:
            raise ValueError(self._size_message(int(input_size)))
        return output

    def is_valid_input_size(self, input_size):
        """True if the network accepts ``input_size`` pixels along one dimension."""
        return self._trace_size(int(input_size)) is not None

    @property
    def min_input_size(self):
        """The smallest input size (one dimension) the network accepts."""
        size = 1
        while self._trace_size(size) is None:
            size += 1
        return size

    def valid_input_sizes(self, start=1, stop=1024):
        """Input sizes in ``[start, stop]`` that the network accepts (572, 556, ... for the paper's)."""
        return [size for size in range(max(1, int(start)), int(stop) + 1) if self._trace_size(size) is not None]

    def input_size_for(self, output_size):
        """Smallest valid input size whose output has at least ``output_size`` pixels."""
        size = self.min_input_size
        step = 2 ** self.depth
        while self._trace_size(size) < output_size:
            size += step
        return size

    def margin(self):
        """Pixels of context lost on each side: ``(input - output) / 2`` (92 for the paper's net)."""
        if self.padding == "same":
            return 0
        size = self.min_input_size
        return (size - self._trace_size(size)) // 2

    def _size_message(self, size):
        if self.padding == "same":
            step = 2 ** self.depth
            lower = max(step, size // step * step)
            return (f"input size {size} does not work with padding='same' and depth={self.depth}: "
                    f"use a multiple of {step} (e.g. {lower} or {lower + step}), or pad the image.")
        minimum = self.min_input_size
        if size < minimum:
            return (f"input size {size} is smaller than the network's minimum {minimum} "
                    f"(padding='valid', depth={self.depth}); use predict_tiled(), which mirror-pads "
                    f"small images, or a valid size such as {minimum}.")
        step = 2 ** self.depth
        lower = minimum + (size - minimum) // step * step
        return (f"input size {size} does not work with padding='valid' and depth={self.depth}: "
                f"the valid sizes are {minimum} + {step}k ({lower} and {lower + step} are the nearest; "
                f"the paper's are 572, 556, ...); crop or mirror-pad the image, or use predict_tiled().")

    def check_input(self, x):
        """Raise ValueError for a tensor the network cannot take (shape, channels or size)."""
        if x.ndim != 4:
            raise ValueError(f"UNet expects a 4-D tensor (batch, channels, height, width), got shape "
                             f"{tuple(x.shape)}; add the batch (and channel) axis with x[None] / x[:, None].")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"UNet(in_channels={self.in_channels}) got an input with {x.shape[1]} "
                             f"channels (shape {tuple(x.shape)}); convert the image or build "
                             f"UNet(in_channels={x.shape[1]}).")
        for size in x.shape[2:]:
            if self._trace_size(int(size)) is None:
                raise ValueError(self._size_message(int(size)))

    # -- forward -----------------------------------------------------------------------
    def forward(self, x):
        """Class logits of shape (batch, n_classes, out_height, out_width)."""
        self.check_input(x)
        skips = []
        for block in self.encoder:
            x = block(x)
            skips.append(x)
            x = F.max_pool2d(x, kernel_size=2, stride=2)
        x = self.bottleneck(x)
        for upconv, block, skip in zip(self.upconvs, self.decoder, reversed(skips)):
            x = upconv(x)
            skip = _center_crop(skip, x.shape[-2], x.shape[-1])
            x = block(torch.cat([skip, x], dim=1))
        return self.head(x)


def _model_device(model):
    for parameter in model.parameters():
        return parameter.device
    return torch.device("cpu")


def _tile_output_size(model, tile):
    """The network's output size for an input tile, with an error that names ``tile``."""
    try:
        return model.output_size(tile)
    except ValueError as error:
        raise ValueError(f"tile={tile} does not fit this network: {error}") from None


def predict_tiled(model, image, tile=None, *, margin=None, batch_size=4, amp=False, return_logits=False):
    """Segment an image of any size with the overlap-tile strategy of the paper.

    The image is cut into tiles whose outputs abut; each tile's input extends
    ``margin`` pixels beyond its output on every side, and the missing context
    at the image border is filled by mirroring the image (Fig. 2 of the
    paper). With ``padding="valid"`` the margin is fixed by the network
    (92 pixels for the paper's) and the result equals a single pass over the
    mirror-padded image, without seams.

    Parameters
    ----------
    model : UNet
        The network (its device is used; it is put in eval mode during the call).
    image : array-like or Tensor of shape (height, width) or (channels, height, width)
        The image, already normalised as during training (float).
    tile : int, default=None
        Input tile size, a size the network accepts. Default: for "valid", the
        smallest tile whose output is at least ``min(388, max(height, width))``
        (572 for the paper's network); for "same", the smallest multiple of
        ``2**depth`` holding 256 output pixels (or the image) plus the margins.
    margin : int, default=None
        Only for ``padding="same"``: context pixels discarded on each side of
        a tile (default ``2**(depth+1)``, 32 for depth 4). Must be None for
        "valid" networks, whose margin is ``model.margin()``.
    batch_size : int, default=4
        Tiles per forward pass.
    amp : bool, default=False
        Run the forward pass under float16 autocast (CUDA only; ignored on CPU).
    return_logits : bool, default=False
        Return the logits instead of the softmax probabilities.

    Returns
    -------
    probabilities : ndarray of shape (n_classes, height, width), float32
        Softmax probabilities (or logits); ``argmax(axis=0)`` is the segmentation.
    """
    if not isinstance(model, UNet):
        raise TypeError(f"predict_tiled needs a UNet, got {type(model).__name__}.")
    array = image.detach().cpu().numpy() if isinstance(image, torch.Tensor) else np.asarray(image)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise ValueError(f"image must have shape (height, width) or (channels, height, width), got {array.shape}.")
    if array.shape[0] != model.in_channels:
        raise ValueError(f"image has {array.shape[0]} channels but UNet(in_channels={model.in_channels}); "
                         "give an image of shape (channels, height, width) with the right channel count.")
    if np.iscomplexobj(array) or not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise TypeError(f"image must hold real numbers, got dtype {array.dtype}; "
                        "give a float image normalised as during training.")
    if array.shape[1] == 0 or array.shape[2] == 0:
        raise ValueError(f"image is empty (shape {array.shape}); give at least one pixel per axis.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1, got {batch_size!r}.")
    array = array.astype(np.float32, copy=False)
    if not np.isfinite(array).all():
        what = "NaN" if np.isnan(array).any() else "infinity (or values beyond float32's range)"
        raise ValueError(f"image contains {what}; segment finite pixel values, normalised as during training.")
    _, height, width = array.shape
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1):
        raise ValueError(f"tile must be an integer >= 1 that the network accepts, got {tile!r}.")
    if model.padding == "valid":
        if margin is not None:
            raise ValueError("margin is fixed by a padding='valid' network (model.margin()); leave margin=None.")
        margin = model.margin()
        if tile is None:
            tile = model.input_size_for(min(388, max(height, width)))
        out = _tile_output_size(model, tile)
    else:
        step = 2 ** model.depth
        margin = 2 * step if margin is None else int(margin)
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}.")
        if tile is None:
            tile = -(-(min(256, max(height, width)) + 2 * margin) // step) * step
        _tile_output_size(model, tile)
        out = tile - 2 * margin
        if out < 1:
            raise ValueError(f"tile={tile} leaves no output with margin={margin}; use tile > {2 * margin}.")
    n_rows, n_cols = -(-height // out), -(-width // out)
    pad_bottom = n_rows * out - height + margin
    pad_right = n_cols * out - width + margin
    padded = np.pad(array, ((0, 0), (margin, pad_bottom), (margin, pad_right)), mode="reflect")

    device = _model_device(model)
    use_amp = amp and device.type == "cuda"
    positions = [(row * out, col * out) for row in range(n_rows) for col in range(n_cols)]
    result = np.empty((model.n_classes, n_rows * out, n_cols * out), dtype=np.float32)
    crop = 0 if model.padding == "valid" else margin
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(positions), batch_size):
                chunk = positions[start:start + batch_size]
                batch = np.stack([padded[:, top:top + tile, left:left + tile] for top, left in chunk])
                inputs = torch.from_numpy(batch).to(device)
                with torch.autocast(device_type="cuda", dtype=torch.float16, enabled=use_amp):
                    logits = model(inputs)
                logits = logits[..., crop:crop + out, crop:crop + out].float()
                if not return_logits:
                    logits = torch.softmax(logits, dim=1)
                logits = logits.cpu().numpy()
                for (top, left), values in zip(chunk, logits):
                    result[:, top:top + out, left:left + out] = values
    finally:
        model.train(was_training)
    return result[:, :height, :width]
