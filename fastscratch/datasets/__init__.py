"""Loaders for the data sets shipped with fastscratch (see data/README.md for provenance)."""

from importlib import resources

import numpy as np

__all__ = ["load_electric_production", "load_co2_mauna_loa", "load_isbi2012", "DATA_DIR"]

DATA_DIR = resources.files(__name__) / "data"


def load_electric_production(as_series=True):
    """Monthly US electric and gas utilities production index, 1985-01 to 2018-01.

    397 months, seasonally unadjusted, index 2017 = 100 (FRED series
    IPG2211A2N, public domain).

    Parameters
    ----------
    as_series : bool, default=True
        Return a pandas Series with a monthly DatetimeIndex (frequency "MS");
        if False, a float64 NumPy array.

    Returns
    -------
    y : pandas.Series or ndarray of shape (397,)
    """
    import pandas as pd

    with resources.as_file(DATA_DIR / "electric_production.csv") as path:
        frame = pd.read_csv(path)
    dates = pd.to_datetime(frame["DATE"], format="%m-%d-%Y")
    values = frame["VALUE"].to_numpy(dtype=np.float64)
    if not as_series:
        return values
    index = pd.DatetimeIndex(dates, freq="MS")
    return pd.Series(values, index=index, name="electric_production")


def load_co2_mauna_loa(as_series=True):
    """Monthly mean atmospheric CO2 at Mauna Loa (ppmv), 1958-03 to 2001-12.

    526 months: the monthly means of the weekly series of
    ``statsmodels.datasets.co2``, five empty months linearly interpolated
    (public domain, Keeling and Whorf 2004; see data/README.md). A trend with
    one asymmetric yearly cycle (peak in May, trough in October).

    Parameters
    ----------
    as_series : bool, default=True
        Return a pandas Series with a monthly DatetimeIndex (frequency "MS");
        if False, a float64 NumPy array.

    Returns
    -------
    y : pandas.Series or ndarray of shape (526,)
    """
    import pandas as pd

    with resources.as_file(DATA_DIR / "co2_mauna_loa_monthly.csv") as path:
        frame = pd.read_csv(path)
    values = frame["VALUE"].to_numpy(dtype=np.float64)
    if not as_series:
        return values
    index = pd.DatetimeIndex(pd.to_datetime(frame["DATE"], format="%Y-%m-%d"), freq="MS")
    return pd.Series(values, index=index, name="co2_mauna_loa")

def load_isbi2012():
    """The 30 ISBI 2012 training images and membrane labels of the U-Net paper.

    Serial-section TEM of the Drosophila first instar larva ventral nerve cord.
    Free for non-commercial segmentation software; cite Cardona et al. (2010)
    and Arganda-Carreras et al. (2015) (data/README.md).

    Returns
    -------
    images : ndarray of shape (30, 512, 512), uint8
        Grayscale electron-microscopy sections.
    labels : ndarray of shape (30, 512, 512), uint8
        1 = cell interior, 0 = membrane (the files store 255 and 0).
    """
    from PIL import Image

    images, labels = [], []
    for number in range(30):
        name = f"{number:02d}.png"
        with resources.as_file(DATA_DIR / "isbi2012_membrane" / "images" / name) as path:
            images.append(np.asarray(Image.open(path).convert("L"), dtype=np.uint8))
        with resources.as_file(DATA_DIR / "isbi2012_membrane" / "labels" / name) as path:
            labels.append((np.asarray(Image.open(path).convert("L")) > 127).astype(np.uint8))
    return np.stack(images), np.stack(labels)
