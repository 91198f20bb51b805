"""Weighted (filtered) back-projection, in slabs of slices.

The ramp filter is the band-limited spatial-domain ramp (as in scikit-image's ``iradon``), applied
with ``scipy.fft`` over the zero-padded detector axis, optionally apodised (Shepp–Logan, cosine,
Hamming, Hann). Each tilt is weighted by the angular interval it actually covers (half the distance
to its neighbours, in radians), so a ±65° series is scaled by its real angular step and not as if
the angles covered 180°.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.fft
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.projectors import back_slab, geometry
from reconstruction.engine.slabs import iter_slabs, slab_size_for
from reconstruction.engine.validate import check_series

__all__ = [
    "FILTERS",
    "angle_weights",
    "circle_mask",
    "filter_projections",
    "ramp_filter",
    "wbp",
]

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann", "none")


def padded_size(n: int, margin: int = 0) -> int:
    """Even FFT length for filtering ``n`` columns kept with ``margin`` columns each side."""
    size = scipy.fft.next_fast_len(max(64, 2 * n + 2 * margin), real=True)
    while size % 2:
        size = scipy.fft.next_fast_len(size + 1, real=True)
    return int(size)


def detector_margin(thickness: int, columns: int) -> int:
    """Columns kept on each side of the detector after filtering.

    The ramp-filtered projection of zero-extended data is not zero outside the detector; keeping
    it there (as ``iradon(circle=True)`` does) back-projects the filter tails into the rim and the
    corners of the slice instead of cutting them off.
    """
    return int(np.ceil((np.hypot(thickness, columns) - columns) / 2)) + 1


def ramp_filter(n_columns: int, filter_name: str = "ram-lak", margin: int = 0) -> NDArray[np.float64]:
    """Frequency response (rfft layout) of the apodised ramp filter for ``n_columns`` columns.

    Parameters
    ----------
    n_columns : int
        Detector width before padding.
    margin : int
        Extra columns kept each side (see :func:`detector_margin`).
    filter_name : {"ram-lak", "shepp-logan", "cosine", "hamming", "hann", "none"}
        Apodisation window ("none": no filtering, a plain back-projection).

    Returns
    -------
    ndarray, shape (padded_size(n_columns, margin) // 2 + 1,)
        Real gains, ``|ν|`` (cycles per pixel) times the window for "ram-lak".
    """
    name = filter_name.lower().replace("_", "-")
    if name == "ramp":
        name = "ram-lak"
    if name not in FILTERS:
        raise ValueError(f"unknown filter {filter_name!r}; choose one of {', '.join(FILTERS)}")
    size = padded_size(n_columns, margin)
    nfreq = size // 2 + 1
    if name == "none":
        return np.ones(nfreq)
    n = np.concatenate((np.arange(1, size // 2 + 1, 2), np.arange(size // 2 - 1, 0, -2)))
    f = np.zeros(size)
    f[0] = 0.25
    f[1::2] = -1.0 / (np.pi * n) ** 2
    h = np.real(np.fft.fft(f))[:nfreq]  # ≈ |ν| in cycles per pixel, 0.5 at Nyquist
    freq = np.arange(nfreq) / size  # cycles per pixel
    if name == "shepp-logan":
        omega = np.pi * freq[1:]
        h[1:] *= np.sin(omega) / omega
    elif name == "cosine":
        h *= np.cos(np.pi * freq)
    elif name == "hamming":
        h *= 0.54 + 0.46 * np.cos(2 * np.pi * freq)
    elif name == "hann":
        h *= 0.5 + 0.5 * np.cos(2 * np.pi * freq)
    return h


def angle_weights(angles_deg: ArrayLike) -> NDArray[np.float32]:
    """Angular interval (radians) each tilt covers: half the gap to each neighbour.

    End tilts count the gap to their single neighbour in full. For a complete 180° series at a
    constant step this is the step; for a ±65° series the weights sum to about 131°, not 180°.
    """
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64))
    if a.size == 1:
        return np.array([np.pi], dtype=np.float32)
    gaps = np.abs(np.diff(a))
    w = np.empty_like(a)
    w[1:-1] = 0.5 * (gaps[:-1] + gaps[1:])
    w[0] = gaps[0]
    w[-1] = gaps[-1]
    return w.astype(np.float32)


def filter_projections(
    projections: ArrayLike,
    filter_name: str = "ram-lak",
    *,
    margin: int = 0,
    workers: int | None = None,
) -> NDArray[np.float32]:
    """Ramp-filter projections along their last (detector) axis.

    Parameters
    ----------
    projections : array_like, shape (..., columns)
        Projections; the last axis is the detector axis perpendicular to the tilt axis.
    filter_name : str
        See :func:`ramp_filter`.
    margin : int
        Columns of the filtered signal kept on each side beyond the detector.
    workers : int, optional
        Threads for ``scipy.fft`` (default: all cores).

    Returns
    -------
    ndarray, float32, shape (..., columns + 2 * margin)
    """
    p = np.asarray(projections, dtype=np.float32)
    nc = p.shape[-1]
    h = ramp_filter(nc, filter_name, margin).astype(np.float32)
    size = padded_size(nc, margin)
    padded = np.zeros(p.shape[:-1] + (size,), dtype=np.float32)
    padded[..., margin : margin + nc] = p
    if filter_name == "none":
        return np.ascontiguousarray(padded[..., : nc + 2 * margin])
    workers = workers if workers is not None else -1
    spec = scipy.fft.rfft(padded, axis=-1, workers=workers)
    del padded
    spec *= h
    out = scipy.fft.irfft(spec, n=size, axis=-1, workers=workers)
    return np.ascontiguousarray(out[..., : nc + 2 * margin])


def circle_mask(thickness: int, columns: int) -> NDArray[np.bool_]:
    """Boolean (thickness, columns) mask of the circle of radius ``columns // 2`` about the axis."""
    z = np.arange(thickness) - thickness // 2
    x = np.arange(columns) - columns // 2
    return (z[:, None] ** 2 + x[None, :] ** 2) <= (columns // 2) ** 2


def wbp(
    projections: ArrayLike,
    angles: ArrayLike,
    *,
    filter_name: str = "ram-lak",
    thickness: int | None = None,
    slab_size: int | None = None,
    axis_offset: float = 0.0,
    circle: bool = False,
    backend: str = "auto",
    out: NDArray[np.float32] | None = None,
    callback: Callable[[int], None] | None = None,
) -> NDArray[np.float32]:
    """Weighted back-projection of a tilt series.

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns)
        Tilt series (absorption, i.e. after −log), tilt axis along the rows.
    angles : array_like, shape (tilts,)
        Tilt angles in degrees, strictly monotonic.
    filter_name : {"ram-lak", "shepp-logan", "cosine", "hamming", "hann", "none"}
        Filter window.
    thickness : int, optional
        Volume thickness in voxels (default: the column count).
    slab_size : int, optional
        Slices reconstructed at a time (bounded memory); results do not depend on it.
    axis_offset : float
        Tilt-axis position relative to ``columns // 2``, in pixels.
    circle : bool
        Zero the voxels outside the circle of radius ``columns // 2`` (as ``iradon(circle=True)``).
    backend : {"auto", "numba", "numpy"}
        Projector kernels.
    out : ndarray, float32, shape (rows, thickness, columns), optional
        Output array (e.g. a memory map).
    callback : callable, optional
        Called with the number of slices finished after each slab (progress bars).

    Returns
    -------
    ndarray, float32, shape (rows, thickness, columns)
        Reconstruction in the units of the projections per voxel (absorption per voxel length).
    """
    p, a = check_series(projections, angles)
    nt, nr, nc = p.shape
    nz = nc if thickness is None else int(thickness)
    if nz < 1:
        raise ValueError(f"thickness must be positive, got {thickness}")
    ramp_filter(nc, filter_name)  # validates the name before any work
    cos, sin = geometry(a)
    weights = angle_weights(a)
    if out is None:
        out = np.empty((nr, nz, nc), dtype=np.float32)
    elif out.shape != (nr, nz, nc):
        raise ValueError(f"out has shape {out.shape}, expected {(nr, nz, nc)}")
    mask = circle_mask(nz, nc) if circle else None
    margin = detector_margin(nz, nc)
    step = slab_size_for(nt, nz, nc, nr, slab_size, arrays=2)
    for r0, r1 in iter_slabs(nr, step):
        filtered = filter_projections(p[:, r0:r1, :], filter_name, margin=margin)
        sino = np.ascontiguousarray(filtered.transpose(0, 2, 1))
        del filtered
        vol = back_slab(
            sino,
            cos,
            sin,
            nz,
            columns=nc,
            axis_offset=axis_offset + margin,
            weights=weights,
            backend=backend,
        )
        if mask is not None:
            vol[~mask] = 0
        out[r0:r1] = vol.transpose(2, 0, 1)
        if callback is not None:
            callback(r1 - r0)
    return out
