"""Noise of absorbance data, estimated from the projections themselves (no flats needed).

Used for data-driven defaults: the regularisation weight of :func:`reconstruction.engine.mbir.mbir`
and the iteration count of SIRT (:func:`sirt_iterations_for`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["estimate_noise_sigma", "relative_noise", "sirt_iterations_for", "sirt_iterations_for_noise"]


def estimate_noise_sigma(projections: ArrayLike) -> float:
    """Standard deviation of white noise on absorbance projections ``(tilts, rows, columns)``.

    The second difference along the columns (and along the rows) removes the smooth object and
    keeps the noise (variance ×6); its median absolute deviation is robust to the object's edges,
    and the smaller of the two directions is taken (the other may cross more structure). Exact on
    pure noise, small on noise-free data.
    """
    p = np.asarray(projections, dtype=np.float32)
    if p.ndim != 3:
        raise ValueError(f"projections must be (tilts, rows, columns), got shape {p.shape}")
    estimates = []
    for axis in (0, 1, 2):
        if p.shape[axis] < 3:
            continue
        n = p.shape[axis]
        d = 2 * p.take(range(1, n - 1), axis) - p.take(range(n - 2), axis) - p.take(range(2, n), axis)
        d = d.ravel()
        if d.size > 4_000_000:
            d = d[:: d.size // 4_000_000 + 1]
        mad = np.median(np.abs(d - np.median(d)))
        estimates.append(1.4826 * mad / np.sqrt(6.0))
    if not estimates:
        raise ValueError("projections need at least 3 rows or columns to estimate their noise")
    return float(min(estimates))


def relative_noise(projections: ArrayLike) -> float:
    """Estimated noise σ over the 99th percentile of the absorbance (the data's noise-to-signal)."""
    p = np.asarray(projections, dtype=np.float32)
    top = float(np.percentile(np.abs(p[:: max(1, p.shape[0] // 32)]), 99))
    return estimate_noise_sigma(p) / top if top > 0 else 0.0


#: Relative noise at or below which SIRT runs its full 50 iterations (noise-free cell data reads
#: about 0.005, 10⁴ photons per pixel 0.013, 2·10³ photons 0.026).
SIRT_QUIET = 0.0065


def sirt_iterations_for(projections: ArrayLike, maximum: int = 50, minimum: int = 25) -> int:
    """Noise-aware SIRT iteration count: the count acts as the regulariser.

    ``maximum`` on quiet data, ``maximum · SIRT_QUIET / noise`` on noisy data (25 at 10⁴ photons
    on a cell phantom at ±65°, where stopping there gives a better SSIM and PSNR within
    0.6 dB of 50 iterations), never under ``minimum`` (fewer gain SSIM but lose PSNR).
    """
    return sirt_iterations_for_noise(relative_noise(projections), maximum=maximum, minimum=minimum)


def sirt_iterations_for_noise(rel: float, maximum: int = 50, minimum: int = 25) -> int:
    """:func:`sirt_iterations_for` from a :func:`relative_noise` already measured, e.g. once on a whole series
    that is then reconstructed in slabs (each slab's own estimate would differ a little, and so its count)."""
    if rel <= SIRT_QUIET:
        return int(maximum)
    return int(np.clip(round(maximum * SIRT_QUIET / rel), minimum, maximum))
