"""Preparing projections: flat/dark normalisation, −log, outlier removal, binning, cropping."""

from __future__ import annotations

import numpy as np
import scipy.ndimage as ndi
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.validate import check_finite, check_flat, check_projections

__all__ = [
    "PROJECTION_VALUES",
    "absorbance",
    "bin_projections",
    "crop",
    "normalize",
    "remove_outliers",
    "to_absorbance",
]

#: What the numbers of a tilt series may be; the engine reconstructs absorbance.
PROJECTION_VALUES = ("absorbance", "transmission", "counts")


def normalize(projections: ArrayLike, flat: ArrayLike, dark: ArrayLike | None = None) -> NDArray[np.float32]:
    """Flat/dark normalisation ``I / I0 = (I − dark) / (flat − dark)``.

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns)
    flat : array_like, shape (rows, columns) or (n, rows, columns)
        Flat field(s) (averaged over ``n``); must be above the dark field everywhere.
    dark : array_like, optional
        Dark field(s), same layout.

    Returns
    -------
    ndarray, float32
        Transmission.
    """
    p = check_projections(projections).astype(np.float32)
    f = np.asarray(flat, dtype=np.float32)
    f = f.mean(axis=0) if f.ndim == 3 else f
    d = None
    if dark is not None:
        d = np.asarray(dark, dtype=np.float32)
        d = d.mean(axis=0) if d.ndim == 3 else d
    if f.shape != p.shape[1:] or (d is not None and d.shape != p.shape[1:]):
        raise ValueError(f"flat/dark field shape {f.shape} does not match projections {p.shape[1:]}")
    check_flat(f, d)
    if d is not None:
        return (p - d) / (f - d)
    return p / f


def absorbance(transmission: ArrayLike, floor: float = 1e-6) -> NDArray[np.float32]:
    """−ln(I/I0), with transmission clipped below at ``floor`` (dead or saturated pixels)."""
    t = np.asarray(transmission, dtype=np.float32)
    check_finite(t, "transmission")
    return -np.log(np.maximum(t, np.float32(floor)))


def to_absorbance(
    projections: ArrayLike,
    values: str | None = None,
    *,
    flats: ArrayLike | None = None,
    darks: ArrayLike | None = None,
) -> NDArray[np.float32]:
    """The absorbance the engine reconstructs, from what a file holds.

    The one path from a file's numbers to absorbance: the Python API
    (:meth:`reconstruction.engine.io.TiltSeries.absorbance`), the command line and the LIMS ingest
    all call it.

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns) or (tilts, planes, rows, columns)
    values : {"absorbance", "transmission", "counts"}, optional
        What the numbers are. Default: "counts" when ``flats`` are given, else "absorbance".
        Counts are normalised by the flats (and darks) first, then −log is taken; transmission
        (I/I0) gets −log only; absorbance is returned as float32.
    flats, darks : array_like, shape (n, rows, columns) or (rows, columns), optional
        Flat (I0) and dark frames; averaged over ``n``. Required for counts.

    Returns
    -------
    ndarray, float32
    """
    v = ("counts" if flats is not None else "absorbance") if values is None else str(values).lower()
    if v not in PROJECTION_VALUES:
        raise ValueError(f"unknown projection values {values!r}; choose one of {', '.join(PROJECTION_VALUES)}")
    if v == "counts":
        if flats is None:
            raise ValueError("raw counts need flat frames (I0) to be normalised; give transmission or absorbance")
        return absorbance(normalize(projections, flats, darks))
    p = np.asarray(projections, dtype=np.float32)
    if v == "transmission":
        return absorbance(p)
    return np.ascontiguousarray(p)


def remove_outliers(projections: ArrayLike, threshold: float = 5.0, size: int = 3) -> NDArray[np.float32]:
    """Replace hot/dead pixels by the local median.

    A pixel is an outlier where it differs from the median of its ``size × size`` neighbourhood
    (in its own projection) by more than ``threshold`` robust standard deviations (MAD of the
    differences over the projection).
    """
    p = check_projections(projections, ndim=(2, 3)).astype(np.float32)
    squeeze = p.ndim == 2
    p = p[None] if squeeze else p
    if size < 3 or size % 2 == 0:
        raise ValueError(f"size must be an odd integer ≥ 3, got {size}")
    med = ndi.median_filter(p, size=(1, size, size), mode="reflect")
    diff = p - med
    mad = np.median(np.abs(diff), axis=(1, 2), keepdims=True) * 1.4826
    mad = np.maximum(mad, np.finfo(np.float32).tiny)
    out = np.where(np.abs(diff) > threshold * mad, med, p)
    return out[0] if squeeze else out


def bin_projections(projections: ArrayLike, factor: int = 2) -> NDArray[np.float32]:
    """Average ``factor × factor`` pixel blocks (rows and columns); edges that do not fill a
    block are dropped. Absorbance is dimensionless, so averaging keeps it; reconstructions of the
    binned series come out per (larger) voxel, i.e. ``factor`` times larger."""
    p = check_projections(projections).astype(np.float32)
    if int(factor) != factor or factor < 1:
        raise ValueError(f"binning factor must be a positive integer, got {factor}")
    k = int(factor)
    t, r, c = p.shape
    if r < k or c < k:
        raise ValueError(f"cannot bin {r}×{c} projections by {k}")
    p = p[:, : r - r % k, : c - c % k].reshape(t, r // k, k, c // k, k)
    return p.mean(axis=(2, 4))


def crop(
    projections: ArrayLike,
    rows: tuple[int, int] | None = None,
    columns: tuple[int, int] | None = None,
) -> NDArray:
    """Crop rows ``[r0, r1)`` and columns ``[c0, c1)`` of every projection."""
    p = check_projections(projections)
    t, r, c = p.shape
    r0, r1 = rows if rows is not None else (0, r)
    c0, c1 = columns if columns is not None else (0, c)
    if not (0 <= r0 < r1 <= r and 0 <= c0 < c1 <= c):
        raise ValueError(f"crop rows {r0}:{r1}, columns {c0}:{c1} outside projections {r}×{c}")
    return p[:, r0:r1, c0:c1].copy()
