"""Weighted (filtered) back-projection, in slabs of slices.

The ramp filter is the band-limited spatial-domain ramp (as in scikit-image's ``iradon``), applied
with ``scipy.fft`` over the zero-padded detector axis, optionally apodised (Shepp–Logan, cosine,
Hamming, Hann). Each tilt is weighted by the angular interval it covers (half the distance to its
neighbours once opposite views are folded together), scaled so the weights sum to π: full turns are
not counted twice, and a limited-range series keeps the true absorption of uniform regions (see
:func:`angle_weights`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.ndimage
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.projectors import back_slab, centre, geometry
from reconstruction.engine.slabs import iter_slabs, slab_size_for
from reconstruction.engine.validate import check_series

__all__ = [
    "FILTERS",
    "WBPOptions",
    "angle_weights",
    "circle_mask",
    "filter_projections",
    "has_missing_wedge",
    "ramp_filter",
    "wbp",
    "wedge_correction",
]

#: Missing-wedge correction: coarsening factor and CGLS iterations (measured, docs/engine.md).
WEDGE_FACTOR = 4
WEDGE_ITERATIONS = 30

FILTERS = ("ram-lak", "shepp-logan", "cosine", "hamming", "hann", "none")


@dataclass(frozen=True)
class WBPOptions:
    """Settings of :func:`wbp`.

    Attributes
    ----------
    filter_name : str
        Filter window, one of :data:`FILTERS`.
    correct_wedge : bool, optional
        Restore the low frequencies a missing wedge takes (default: when the angles leave one).
    """

    filter_name: str = "ram-lak"
    correct_wedge: bool | None = None


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
    k = np.arange(1, size, 2)
    n = np.minimum(k, size - k)  # circular distance of the odd taps (any even size, not only multiples of 4)
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


def _direction_gaps(angles_deg: ArrayLike) -> tuple[NDArray[np.intp], NDArray[np.float64], int, bool]:
    """The tilts' directions folded onto [0, π) and sorted: ``(order, gaps, widest, wedge)``.

    ``gaps[i]`` is the gap (radians) after the ``i``-th sorted direction (the last one across
    180°), ``widest`` the index of the widest, and ``wedge`` whether it is wider than 2.5 times
    the typical (median positive) gap: a missing wedge.
    """
    a = np.deg2rad(np.asarray(angles_deg, dtype=np.float64).ravel())
    folded = np.mod(a, np.pi)
    order = np.argsort(folded, kind="stable")
    s = folded[order]
    gaps = np.empty(a.size)
    gaps[:-1] = np.diff(s)
    gaps[-1] = s[0] + np.pi - s[-1]  # gap across 180°, between the last and the first direction
    positive = gaps[gaps > 1e-9]
    typical = float(np.median(positive)) if positive.size else np.pi
    widest = int(np.argmax(gaps))
    return order, gaps, widest, bool(positive.size and gaps[widest] > 2.5 * typical)


def angle_weights(angles_deg: ArrayLike, *, half_turn: bool = True) -> NDArray[np.float32]:
    """Angular integration weights (radians) of the tilts, summing to π.

    The one angle weighting of the engine (WBP, the focus-stack back-projection).

    Opposite views carry the same line integrals, so the angles are folded onto [0°, 180°) and
    each tilt gets half the (circular) gap to its two neighbours there: a full turn (0…359° or
    −180…179°) shares the weight of each direction between its two views instead of counting it
    twice, and descending or unevenly spaced series are weighted by their real spacing. When the
    series leaves a missing wedge (a gap wider than 2.5 times the typical step), the end tilts of
    the covered range count the gap to their single neighbour in full and the weights are scaled
    to sum to π, as if the covered directions spanned 180° (as ASTRA's FBP, scikit-image's
    ``iradon`` and ODL do). That keeps the absorption of uniform regions at its true value: the
    missing wedge takes the same share of every region's low frequencies, and weighting by the
    real step alone would leave flat regions ~28% low at ±65°.

    With ``half_turn=False`` a series with a missing wedge keeps each tilt's real angular
    interval (the weights sum to the covered range): the focus-stack back-projection of
    :mod:`reconstruction.engine.focus` weights so, its flat regions are then not absolute on a
    limited tilt range.
    """
    n = np.asarray(angles_deg).size
    if n == 1:
        return np.array([np.pi], dtype=np.float32)
    order, gaps, wedge, has_wedge = _direction_gaps(angles_deg)
    if has_wedge:
        # rotate so the wedge is the gap after the last direction; the ends see one neighbour
        shift = wedge + 1
        s_gaps = np.roll(gaps, -shift)  # s_gaps[-1] is the wedge
        lin = s_gaps[:-1]
        w_sorted = np.empty(n)
        w_sorted[1:-1] = 0.5 * (lin[:-1] + lin[1:])
        w_sorted[0] = lin[0]
        w_sorted[-1] = lin[-1]
        w_sorted = np.roll(w_sorted, shift)
        total = w_sorted.sum() if half_turn else np.pi
    else:
        w_sorted = 0.5 * (gaps + np.roll(gaps, 1))
        total = w_sorted.sum()
    if w_sorted.sum() <= 0:  # every tilt in the same direction
        w_sorted = np.full(n, 1.0)
        total = float(n)
    w = np.empty(n)
    w[order] = w_sorted * (np.pi / total)
    return w.astype(np.float32)


def has_missing_wedge(angles_deg: ArrayLike) -> bool:
    """True when the tilts leave a gap in direction wider than 2.5 times their typical step."""
    if np.asarray(angles_deg).size < 2:
        return True
    return _direction_gaps(angles_deg)[3]


def _cubic_matrix(n_fine: int, n_coarse: int, factor: int) -> NDArray[np.float32]:
    """Keys-cubic interpolation from a coarse grid (centres at ``centre(n)`` of both, spacing ``factor``)."""
    t = (np.arange(n_fine) - centre(n_fine)) / factor + centre(n_coarse)
    i0 = np.floor(t).astype(int)
    m = np.zeros((n_fine, n_coarse))
    for k in range(-1, 3):
        d = np.abs(t - (i0 + k))
        w = np.where(d <= 1, 1.5 * d**3 - 2.5 * d**2 + 1, np.where(d < 2, -0.5 * d**3 + 2.5 * d**2 - 4 * d + 2, 0))
        idx = i0 + k
        ok = (idx >= 0) & (idx < n_coarse)
        m[np.arange(n_fine)[ok], idx[ok]] += w[ok]
    return m.astype(np.float32)


def wedge_correction(
    sino: NDArray[np.float32],
    x: NDArray[np.float32],
    angles: NDArray[np.float64],
    *,
    axis_offset: float = 0.0,
    factor: int = WEDGE_FACTOR,
    iterations: int = WEDGE_ITERATIONS,
    backend: str = "auto",
) -> NDArray[np.float32]:
    """Restore the low frequencies a missing wedge takes from a WBP slab (in place, returned).

    The residual of the data, ``b − A x`` (ray-driven projector), is smoothed and resampled on a
    detector ``factor`` times coarser, CGLS (``iterations``) solves for a correction on a grid
    ``factor`` times coarser in both directions (where the bounded support leaves the wedge's low
    frequencies determined), and the correction is interpolated back (Keys cubic) and added.

    ``sino`` is ``(tilts, columns, slices)`` and ``x`` ``(thickness, columns, slices)``, both
    slices-innermost.
    """
    from reconstruction.engine.iterative import cgls
    from reconstruction.engine.projectors import forward_slab_ray

    nt, nc, ns = sino.shape
    nz = x.shape[0]
    cos, sin = geometry(angles)
    resid = forward_slab_ray(x, cos, sin, axis_offset=axis_offset, backend=backend)
    np.subtract(sino, resid, out=resid)
    resid = scipy.ndimage.uniform_filter1d(resid, factor, axis=1, mode="constant")
    ncc = int(np.ceil(nc / factor)) + 1
    nzc = int(np.ceil(nz / factor)) + 1
    # coarse detector sample k at fine position u_k, on the fine detector's centre
    u = centre(nc) + axis_offset + factor * (np.arange(ncc) - centre(ncc))
    i0 = np.floor(u).astype(int)
    w = (u - i0).astype(np.float32)
    padded = np.zeros((nt, nc + 2, ns), dtype=np.float32)
    padded[:, 1:-1] = resid
    lo = np.clip(i0 + 1, 0, nc + 1)
    hi = np.clip(i0 + 2, 0, nc + 1)
    coarse = (1 - w)[None, :, None] * padded[:, lo] + w[None, :, None] * padded[:, hi]
    # (tilts, slices, coarse columns) for cgls; the axis sits at the coarse detector's centre
    d = cgls(np.ascontiguousarray(coarse.transpose(0, 2, 1)), angles, iterations=iterations, thickness=nzc)
    d /= factor  # per coarse voxel length -> per fine voxel length
    mz = _cubic_matrix(nz, nzc, factor)
    mx = _cubic_matrix(nc, ncc, factor)
    tmp = np.einsum("zi,sij->zjs", mz, d, optimize=True)
    x += np.einsum("zjs,xj->zxs", tmp, mx, optimize=True).astype(np.float32)
    return x


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
    """Boolean (thickness, columns) mask of the circle of radius ``columns // 2`` about the axis.

    Centred on the slice's geometric centre ``((thickness − 1) / 2, (columns − 1) / 2)``, so symmetric.
    For odd sizes it is ``iradon(circle=True)``'s circle (its voxels' centres project onto the first to
    the last pixel centre); for even sizes its radius ``columns / 2`` reaches the detector's edges.
    """
    z = np.arange(thickness) - centre(thickness)
    x = np.arange(columns) - centre(columns)
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
    correct_wedge: bool | None = None,
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
        Tilt-axis position relative to the detector centre ``(columns − 1) / 2``, in pixels.
    circle : bool
        Zero the voxels outside the circle of radius ``columns // 2`` about the axis
        (:func:`circle_mask`; as ``iradon(circle=True)`` for odd sizes).
    backend : {"auto", "numba", "numpy"}
        Projector kernels.
    out : ndarray, float32, shape (rows, thickness, columns), optional
        Output array (e.g. a memory map).
    callback : callable, optional
        Called with the number of slices finished after each slab (progress bars).
    correct_wedge : bool, optional
        Restore the low frequencies a missing wedge takes (:func:`wedge_correction`), so uniform
        regions keep their true absorption. Default: on when the angles leave a missing wedge
        (:func:`has_missing_wedge`). Off, a limited-range volume's values are not absolute
        (flat regions 15–25% off at ±60–65°).

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
    wedge = has_missing_wedge(a) if correct_wedge is None else bool(correct_wedge)
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
        if wedge:
            b = np.ascontiguousarray(p[:, r0:r1, :].transpose(0, 2, 1), dtype=np.float32)
            wedge_correction(b, vol, a, axis_offset=axis_offset, backend=backend)
            del b
        if mask is not None:
            vol[~mask] = 0
        out[r0:r1] = vol.transpose(2, 0, 1)
        if callback is not None:
            callback(r1 - r0)
    return out
