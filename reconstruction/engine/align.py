"""Coarse alignment of a tilt series by cross-correlation, and a tilt-axis offset estimate.

1. Translations: each projection is cross-correlated (FFT, windowed, sub-pixel peak by parabola)
   with its neighbour nearer to 0°, working outward from the least-tilted projection; the chained
   shifts bring every projection onto the 0° one.
2. Tilt axis: in a parallel-beam series the column centre of mass of the aligned projections
   follows ``c(θ) = offset + x0·cos θ − z0·sin θ`` (the object's mass centre ``(x0, z0)``);
   a least-squares fit gives the axis offset, and the misfit per projection is its residual.
   Where the object stays in the field of view, the column shifts are then corrected by that misfit
   (a few rounds): neighbour cross-correlation follows the object's motion across the detector and
   drifts by several pixels over a series, the centre-of-mass model does not.

Column shifts are determined only up to ``c0 + c1 cos θ + c2 sin θ`` (a shift of the tilt axis and a
translation of the object, which the reconstruction absorbs through ``axis_offset``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft
import scipy.ndimage as ndi
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.projectors import centre
from reconstruction.engine.validate import check_series

__all__ = ["Alignment", "align", "apply_shifts", "cross_correlation_shift"]


@dataclass
class Alignment:
    """Result of :func:`align`.

    Attributes
    ----------
    shifts : ndarray, shape (tilts, 2)
        Shift (rows, columns) in pixels to apply to each projection (see :func:`apply_shifts`).
    axis_offset : float
        Tilt-axis position relative to the detector centre ``(columns − 1) / 2`` in the aligned
        series (pixels); pass it as ``axis_offset`` to the reconstruction.
    residuals : ndarray, shape (tilts,)
        Per-projection misfit (pixels) of the centre-of-mass model after alignment.
    """

    shifts: NDArray[np.float64]
    axis_offset: float
    residuals: NDArray[np.float64]


def _window(shape: tuple[int, int]) -> NDArray[np.float32]:
    return np.outer(np.hanning(shape[0]), np.hanning(shape[1])).astype(np.float32)


def cross_correlation_shift(reference: ArrayLike, moving: ArrayLike) -> NDArray[np.float64]:
    """Shift (rows, columns) that moves ``moving`` onto ``reference`` (sub-pixel, parabola fit)."""
    a = np.asarray(reference, dtype=np.float32)
    b = np.asarray(moving, dtype=np.float32)
    if a.shape != b.shape or a.ndim != 2:
        raise ValueError(f"images must be 2-D and of equal shape, got {a.shape} and {b.shape}")
    w = _window(a.shape)
    fa = scipy.fft.rfft2((a - a.mean()) * w)
    fb = scipy.fft.rfft2((b - b.mean()) * w)
    cc = scipy.fft.irfft2(fa * np.conj(fb), s=a.shape)
    peak = np.unravel_index(int(np.argmax(cc)), cc.shape)
    shift = np.zeros(2)
    for ax in range(2):
        n = cc.shape[ax]
        i = peak[ax]
        idx = [peak[0], peak[1]]
        vals = []
        for d in (-1, 0, 1):
            idx[ax] = (i + d) % n
            vals.append(cc[tuple(idx)])
        den = vals[0] - 2 * vals[1] + vals[2]
        frac = 0.5 * (vals[0] - vals[2]) / den if den < 0 else 0.0
        s = i + frac
        shift[ax] = s - n if s > n / 2 else s
    return shift


def apply_shifts(projections: ArrayLike, shifts: ArrayLike) -> NDArray[np.float32]:
    """Shift each projection by (rows, columns) pixels (linear interpolation, zero fill)."""
    p = np.asarray(projections, dtype=np.float32)
    sh = np.asarray(shifts, dtype=float)
    if sh.shape != (p.shape[0], 2):
        raise ValueError(f"shifts must have shape ({p.shape[0]}, 2), got {sh.shape}")
    out = np.empty_like(p)
    for i in range(p.shape[0]):
        out[i] = ndi.shift(p[i], sh[i], order=1, mode="constant", cval=0.0)
    return out


def _com_fit(aligned: NDArray[np.float32], theta: NDArray[np.float64]):
    """Column centre of mass per projection, its model fit and the fit coefficients."""
    nt, _, nc = aligned.shape
    profile = aligned.sum(axis=1, dtype=np.float64)
    mass = profile.sum(axis=1)
    cols = np.arange(nc) - centre(nc)
    com = (profile * cols).sum(axis=1) / np.where(mass != 0, mass, 1.0)
    design = np.stack([np.ones(nt), np.cos(theta), -np.sin(theta)], axis=1)
    coef, *_ = np.linalg.lstsq(design, com, rcond=None)
    return com, design @ coef, coef


def _isolated(aligned: NDArray[np.float32], margin: float = 0.05, tol: float = 0.02) -> bool:
    """True when every projection's absorbance near the left/right edges is small (object in view)."""
    profile = np.abs(aligned).sum(axis=1, dtype=np.float64)
    m = max(1, int(round(margin * profile.shape[1])))
    edge = profile[:, :m].sum(axis=1) + profile[:, -m:].sum(axis=1)
    return bool(np.all(edge <= tol * np.maximum(profile.sum(axis=1), 1e-30)))


def align(projections: ArrayLike, angles: ArrayLike, *, iterations: int = 5, refine_columns: bool = True) -> Alignment:
    """Coarse cross-correlation alignment and tilt-axis offset estimate.

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns)
        Absorbance projections.
    angles : array_like, shape (tilts,)
        Tilt angles in degrees, strictly monotonic.
    iterations : int
        Rounds of neighbour cross-correlation (stops early when a round moves < 0.05 px).
    refine_columns : bool
        After cross-correlation, correct the column shifts so that each projection's column centre
        of mass follows the parallel-beam model ``offset + x0 cos θ − z0 sin θ`` (only when the
        object stays inside the field of view in every projection; otherwise skipped).
        Neighbour cross-correlation follows the object's own motion across the detector and
        accumulates several pixels of drift over a series; this removes it.

    Returns
    -------
    Alignment
    """
    p, a = check_series(projections, angles)
    p = p.astype(np.float32)
    nt, nr, nc = p.shape
    shifts = np.zeros((nt, 2))
    i0 = int(np.argmin(np.abs(a)))
    aligned = p
    # The apodising window biases each estimate towards zero; a few rounds on the
    # already-shifted stack remove the bias (each round measures what is left).
    for _ in range(iterations):
        delta = np.zeros((nt, 2))
        for step in (1, -1):
            i = i0 + step
            while 0 <= i < nt:
                delta[i] = delta[i - step] + cross_correlation_shift(aligned[i - step], aligned[i])
                i += step
        shifts += delta
        aligned = apply_shifts(p, shifts)
        if np.abs(delta).max() < 0.05:
            break
    theta = np.deg2rad(a)
    if refine_columns and nt >= 4 and _isolated(aligned):
        for _ in range(5):
            com, model, _ = _com_fit(aligned, theta)
            resid = com - model
            shifts[:, 1] -= resid
            aligned = apply_shifts(p, shifts)
            if np.abs(resid).max() < 0.02:
                break
        # the part of the column shifts in span{1, cos θ, sin θ} only moves the object and the
        # axis: drop it (smallest shifts), the final fit below reports the axis where it is
        span = np.stack([np.ones(nt), np.cos(theta), np.sin(theta)], axis=1)
        coef, *_ = np.linalg.lstsq(span, shifts[:, 1], rcond=None)
        shifts[:, 1] -= span @ coef
        aligned = apply_shifts(p, shifts)
    com, model, coef = _com_fit(aligned, theta)
    residuals = np.abs(com - model)
    return Alignment(shifts=shifts, axis_offset=float(coef[0]), residuals=residuals)
