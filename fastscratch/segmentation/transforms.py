"""Normalisation and data augmentation for segmentation, applied alike to image, mask and weight map.

Every geometric transform moves the image, the mask and (optionally) the
per-pixel loss weight map with the same coordinates: the image with cubic or
linear interpolation, the weight map with linear interpolation, the mask with
nearest-neighbour interpolation so that it keeps its class indices. Borders
are filled by mirroring (``mode="reflect"``), as the paper does for its tiles.

Transforms are callables ``t(image, mask, weight=None, *, rng)`` returning
``(image, mask, weight)``; ``image`` is (height, width) or (channels, height,
width), ``mask`` and ``weight`` are (height, width). :class:`Compose` chains
them. The functions behind them (:func:`elastic_deformation`, ...) can be
called directly.
"""

import numpy as np
from scipy import ndimage

__all__ = [
    "normalize_zscore", "normalize_minmax", "Normalize",
    "flip_rotate", "RandomFlipRotate",
    "affine_matrix", "affine_transform", "RandomAffine",
    "elastic_displacement", "elastic_deformation", "ElasticDeformation",
    "Compose",
]


def _as_image(image):
    image = np.asarray(image)
    if image.ndim not in (2, 3):
        raise ValueError(f"image must have shape (height, width) or (channels, height, width), got {image.shape}.")
    return image


def _check_pair(image, mask, weight):
    spatial = image.shape[-2:]
    if mask is not None and np.shape(mask) != spatial:
        raise ValueError(f"mask has shape {np.shape(mask)} but the image's spatial shape is {spatial}; "
                         "give a (height, width) mask of class indices aligned with the image.")
    if weight is not None and np.shape(weight) != spatial:
        raise ValueError(f"weight has shape {np.shape(weight)} but the image's spatial shape is {spatial}.")


def _rng(rng):
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


# -- intensity normalisation ---------------------------------------------------------------
def normalize_zscore(image, eps=1e-8):
    """Per-image (per-channel) z-score: ``(x - mean) / std``, float32.

    A constant image becomes zeros (the standard deviation is floored at ``eps``).
    """
    image = _as_image(image).astype(np.float32)
    axes = (-2, -1)
    mean = image.mean(axis=axes, keepdims=True, dtype=np.float64)
    std = image.std(axis=axes, keepdims=True, dtype=np.float64)
    return ((image - mean) / np.maximum(std, eps)).astype(np.float32)


def normalize_minmax(image, eps=1e-8):
    """Per-image (per-channel) min-max scaling to [0, 1], float32 (a constant image becomes zeros)."""
    image = _as_image(image).astype(np.float32)
    axes = (-2, -1)
    low = image.min(axis=axes, keepdims=True)
    high = image.max(axis=axes, keepdims=True)
    return ((image - low) / np.maximum(high - low, eps)).astype(np.float32)


class Normalize:
    """Intensity normalisation: ``method`` "zscore" (default) or "minmax"; mask and weight unchanged."""

    def __init__(self, method="zscore"):
        if method not in ("zscore", "minmax"):
            raise ValueError(f"method must be 'zscore' or 'minmax', got {method!r}.")
        self.method = method

    def __call__(self, image, mask=None, weight=None, *, rng=None):
        function = normalize_zscore if self.method == "zscore" else normalize_minmax
        return function(image), mask, weight

    def __repr__(self):
        return f"Normalize(method={self.method!r})"


# -- flips and 90-degree rotations ---------------------------------------------------------
def flip_rotate(array, flip, quarter_turns):
    """Flip the last axis if ``flip``, then rotate the last two axes by ``quarter_turns`` x 90 degrees."""
    if array is None:
        return None
    if flip:
        array = array[..., ::-1]
    return np.ascontiguousarray(np.rot90(array, k=quarter_turns, axes=(-2, -1)))


class RandomFlipRotate:
    """A random element of the dihedral group: mirror with probability 1/2, rotate by 0, 90, 180 or 270 degrees."""

    def __call__(self, image, mask=None, weight=None, *, rng=None):
        image = _as_image(image)
        _check_pair(image, mask, weight)
        rng = _rng(rng)
        flip = bool(rng.integers(2))
        turns = int(rng.integers(4))
        return (flip_rotate(image, flip, turns), flip_rotate(mask, flip, turns),
                flip_rotate(weight, flip, turns))

    def __repr__(self):
        return "RandomFlipRotate()"


# -- warping ---------------------------------------------------------------------------------
def _warp(array, coordinates, order):
    """Sample ``array`` (2-D or channels-first 3-D) at ``coordinates`` (2, height, width), spline ``order``."""
    if array is None:
        return None
    dtype = np.float32 if array.dtype != np.float64 else np.float64
    if array.ndim == 2:
        return ndimage.map_coordinates(array.astype(dtype, copy=False), coordinates, order=order,
                                       mode="reflect").astype(dtype, copy=False)
    return np.stack([_warp(channel, coordinates, order) for channel in array])


def _reflect_index(index, size):
    """Indices outside [0, size) mirrored like scipy's mode="reflect" (edge pixel repeated)."""
    period = 2 * size
    index = np.mod(index, period)
    return np.where(index >= size, period - 1 - index, index)


def _warp_all(image, mask, weight, coordinates, order):
    if mask is not None:
        # Nearest neighbour by rounding: exact class indices, any dtype.
        mask = np.asarray(mask)
        rows = np.rint(coordinates[0]).astype(np.intp)
        cols = np.rint(coordinates[1]).astype(np.intp)
        mask = np.ascontiguousarray(mask[_reflect_index(rows, mask.shape[0]),
                                         _reflect_index(cols, mask.shape[1])])
    return _warp(image, coordinates, order), mask, _warp(weight, coordinates, 1)


# -- affine ----------------------------------------------------------------------------------
def affine_matrix(rotation=0.0, scale=1.0, shear=0.0, translation=(0.0, 0.0)):
    """2x3 matrix (row, column coordinates) of a rotation (degrees), isotropic scale, shear (degrees)
    and translation (pixels) about the image centre; maps output to input coordinates.

    A positive rotation turns the image counterclockwise as displayed (row axis pointing down), like
    ``scipy.ndimage.rotate``: ``rotation=90`` gives ``np.rot90(image)``.
    """
    theta = np.deg2rad(rotation)
    shear = np.deg2rad(shear)
    rotate = np.array([[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]])
    shear_matrix = np.array([[1.0, np.tan(shear)], [0.0, 1.0]])
    linear = rotate @ shear_matrix / scale
    return np.hstack([linear, np.asarray(translation, dtype=np.float64).reshape(2, 1)])


def affine_transform(image, mask=None, weight=None, matrix=None, order=1):
    """Warp image, mask and weight with ``matrix`` (from :func:`affine_matrix`) about the centre.

    The identity matrix returns the inputs unchanged.
    """
    image = _as_image(image)
    _check_pair(image, mask, weight)
    height, width = image.shape[-2:]
    matrix = affine_matrix() if matrix is None else np.asarray(matrix, dtype=np.float64)
    centre = np.array([(height - 1) / 2.0, (width - 1) / 2.0])
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                             indexing="ij")
    offset = np.stack([rows - centre[0], cols - centre[1]])
    coordinates = np.einsum("ij,jhw->ihw", matrix[:, :2], offset) + (centre + matrix[:, 2])[:, None, None]
    return _warp_all(image, mask, weight, coordinates, order)


class RandomAffine:
    """Small random affine transform: uniform rotation, scale, shear and translation.

    Parameters
    ----------
    rotation : float, default=10
        Maximum rotation in degrees (uniform in [-rotation, rotation]).
    scale : tuple of float, default=(0.9, 1.1)
        Range of the isotropic scale factor.
    shear : float, default=5
        Maximum shear angle in degrees.
    translation : float, default=0.05
        Maximum translation as a fraction of the image size.
    order : int, default=1
        Interpolation order for the image (1 linear, 3 cubic spline).
    """

    def __init__(self, rotation=10.0, scale=(0.9, 1.1), shear=5.0, translation=0.05, order=1):
        self.rotation, self.scale, self.shear = rotation, tuple(scale), shear
        self.translation, self.order = translation, order

    def __call__(self, image, mask=None, weight=None, *, rng=None):
        image = _as_image(image)
        rng = _rng(rng)
        height, width = image.shape[-2:]
        matrix = affine_matrix(
            rotation=rng.uniform(-self.rotation, self.rotation),
            scale=rng.uniform(*self.scale),
            shear=rng.uniform(-self.shear, self.shear),
            translation=(rng.uniform(-1, 1) * self.translation * height,
                         rng.uniform(-1, 1) * self.translation * width))
        return affine_transform(image, mask, weight, matrix, order=self.order)

    def __repr__(self):
        return (f"RandomAffine(rotation={self.rotation}, scale={self.scale}, shear={self.shear}, "
                f"translation={self.translation}, order={self.order})")


# -- elastic deformation ---------------------------------------------------------------------
def elastic_displacement(shape, rng=None, sigma=10.0, grid_size=3, coarse=None):
    """Per-pixel displacement field (2, height, width) of the paper's elastic deformation.

    Random displacement vectors on a coarse ``grid_size`` x ``grid_size`` grid
    spanning the image (corners on the corner pixels), drawn from a Gaussian
    with ``sigma`` pixels standard deviation, are interpolated to every pixel
    with bicubic (cubic spline) interpolation.

    Parameters
    ----------
    shape : tuple (height, width)
    rng : Generator or int, default=None
    sigma : float, default=10
        Standard deviation of the coarse displacements in pixels.
    grid_size : int, default=3
        Points of the coarse grid along each axis.
    coarse : ndarray of shape (2, grid_size, grid_size), default=None
        Use these coarse displacements instead of random ones.
    """
    height, width = shape
    if coarse is None:
        coarse = _rng(rng).normal(0.0, sigma, size=(2, grid_size, grid_size))
    coarse = np.asarray(coarse, dtype=np.float64)
    grid_rows, grid_cols = coarse.shape[1:]
    # The 2-D cubic spline is a tensor product: interpolate along rows, then along columns,
    # with the (pixels x grid points) matrices of the 1-D interpolation (same numbers as
    # ndimage.map_coordinates on the 2-D grid, a thousand times fewer operations).
    along_rows = _spline_matrix(height, grid_rows)
    along_cols = _spline_matrix(width, grid_cols)
    return np.einsum("hi,cij,wj->chw", along_rows, coarse, along_cols, optimize=True)


def _spline_matrix(n_pixels, n_grid, order=3):
    """(n_pixels, n_grid) matrix of 1-D cubic spline interpolation from a grid spanning the pixels."""
    positions = np.linspace(0.0, n_grid - 1, n_pixels)[None]
    basis = np.eye(n_grid)
    return np.stack([ndimage.map_coordinates(basis[k], positions, order=order, mode="nearest")
                     for k in range(n_grid)], axis=1)


def elastic_deformation(image, mask=None, weight=None, *, rng=None, sigma=10.0, grid_size=3, order=3,
                        displacement=None):
    """The paper's elastic deformation, applied identically to image, mask and weight.

    Each output pixel ``x`` takes the value at ``x + displacement(x)``: the
    image with cubic-spline (``order=3``) or linear (``order=1``) interpolation,
    the weight map with linear and the mask with nearest-neighbour
    interpolation (so its values stay class indices). Zero displacement is the
    identity.

    Parameters
    ----------
    image : ndarray (height, width) or (channels, height, width)
    mask, weight : ndarray (height, width), default=None
    rng : Generator or int, default=None
    sigma, grid_size : see :func:`elastic_displacement` (10 pixels, 3x3 grid in the paper).
    order : {1, 3}, default=3
    displacement : ndarray (2, height, width), default=None
        Per-pixel displacement to use instead of a random one.

    Returns
    -------
    image, mask, weight : the deformed arrays (None stays None).
    """
    image = _as_image(image)
    _check_pair(image, mask, weight)
    if order not in (1, 3):
        raise ValueError(f"order must be 1 (linear) or 3 (cubic), got {order!r}.")
    height, width = image.shape[-2:]
    if displacement is None:
        displacement = elastic_displacement((height, width), rng, sigma=sigma, grid_size=grid_size)
    displacement = np.asarray(displacement, dtype=np.float64)
    if displacement.shape != (2, height, width):
        raise ValueError(f"displacement must have shape (2, {height}, {width}), got {displacement.shape}.")
    grid = np.stack(np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                                indexing="ij"))
    return _warp_all(image, mask, weight, grid + displacement, order)


class ElasticDeformation:
    """Random elastic deformation of the paper (3x3 coarse grid, sigma 10 pixels, bicubic).

    Parameters
    ----------
    sigma : float, default=10
    grid_size : int, default=3
    order : {1, 3}, default=3
        Interpolation of the image (the mask is always nearest).
    p : float, default=1.0
        Probability of applying the deformation.
    """

    def __init__(self, sigma=10.0, grid_size=3, order=3, p=1.0):
        self.sigma, self.grid_size, self.order, self.p = sigma, grid_size, order, p

    def __call__(self, image, mask=None, weight=None, *, rng=None):
        rng = _rng(rng)
        if self.p < 1.0 and rng.random() >= self.p:
            return image, mask, weight
        return elastic_deformation(image, mask, weight, rng=rng, sigma=self.sigma,
                                   grid_size=self.grid_size, order=self.order)

    def __repr__(self):
        return f"ElasticDeformation(sigma={self.sigma}, grid_size={self.grid_size}, order={self.order}, p={self.p})"


class Compose:
    """Apply transforms in order, threading the same ``rng`` through them."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, mask=None, weight=None, *, rng=None):
        rng = _rng(rng)
        for transform in self.transforms:
            image, mask, weight = transform(image, mask, weight, rng=rng)
        return image, mask, weight

    def __repr__(self):
        return f"Compose({self.transforms!r})"
