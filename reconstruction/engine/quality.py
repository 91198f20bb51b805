"""Calibration and quality: LAC units, even/odd half-volumes, FSC/FRC resolution, previews.

Calibration: projections are absorbances ``-ln(I / I0) = ∫ μ dl``. The engine's reconstructions use
line integrals summed per pixel (as scikit-image's ``radon``), so a reconstructed voxel holds
``μ · pixel size``; dividing by the pixel size in µm gives the linear absorption coefficient in
µm⁻¹ (:func:`to_lac`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import fft as sfft

__all__ = [
    "FSCResult",
    "fourier_shell_correlation",
    "half_volumes",
    "orthoslice_preview",
    "psnr",
    "resolution_from_fsc",
    "to_lac",
]


def to_lac(volume: np.ndarray, pixel_size_um: float) -> np.ndarray:
    """Convert a reconstruction (line-integral units per pixel) to LAC in µm⁻¹.

    Parameters
    ----------
    volume : numpy.ndarray
        Reconstruction of absorbance projections.
    pixel_size_um : float
        Voxel size in µm.

    Returns
    -------
    numpy.ndarray
        float32 ``volume / pixel_size_um``.
    """
    if not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um!r}")
    return (np.asarray(volume, dtype=np.float32) / np.float32(pixel_size_um)).astype(np.float32)


def psnr(
    estimate: np.ndarray,
    truth: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    data_range: float | None = None,
) -> float:
    """Peak signal-to-noise ratio in dB, optionally over a mask.

    ``data_range`` defaults to the truth's range (max - min over the whole array).
    """
    est = np.asarray(estimate, dtype=np.float64)
    ref = np.asarray(truth, dtype=np.float64)
    if est.shape != ref.shape:
        raise ValueError(f"shapes differ: estimate {est.shape}, truth {ref.shape}")
    if data_range is None:
        data_range = float(ref.max() - ref.min())
    sel = np.ones(ref.shape, bool) if mask is None else np.asarray(mask, bool)
    if sel.shape != ref.shape or not sel.any():
        raise ValueError("mask must have the volume's shape and select at least one voxel")
    mse = float(np.mean((est[sel] - ref[sel]) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(data_range**2 / mse)


def half_volumes(
    projections: np.ndarray,
    angles: Any,
    reconstruct: Callable[[np.ndarray, np.ndarray], np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Reconstruct the even and the odd tilts separately.

    Parameters
    ----------
    projections : numpy.ndarray
        Tilt series, tilts first (3-D, or 4-D for a focal series).
    angles : array_like
        Degrees, one per tilt.
    reconstruct : callable
        ``reconstruct(projections, angles) -> volume``, e.g.
        ``functools.partial(reconstruction.engine.reconstruct, method="wbp")``.

    Returns
    -------
    even, odd : numpy.ndarray
        Volumes from tilts 0, 2, 4, ... and 1, 3, 5, ... (in acquisition order).
    """
    proj = np.asarray(projections)
    a = np.asarray(angles, dtype=np.float64)
    if proj.ndim not in (3, 4):
        raise ValueError(f"projections must be 3-D or 4-D, got shape {proj.shape}")
    if a.ndim != 1 or a.size != proj.shape[0]:
        raise ValueError(f"got {a.size} angles for {proj.shape[0]} tilts")
    if a.size < 4:
        raise ValueError("an even/odd split needs at least 4 tilts")
    return reconstruct(proj[0::2], a[0::2]), reconstruct(proj[1::2], a[1::2])


@dataclass
class FSCResult:
    """Fourier shell (3-D) or ring (2-D) correlation curve.

    ``frequency`` is in cycles per pixel (0 to 0.5) and, with a pixel size, ``frequency_per_nm``
    in cycles per nm. ``resolution_nm`` maps thresholds (0.143, 0.5) to the resolution (1 / the
    first crossing frequency, interpolated) in nm, or ``None`` when the curve never drops below.
    """

    frequency: np.ndarray
    fsc: np.ndarray
    counts: np.ndarray
    pixel_size_um: float | None
    resolution_px: dict[float, float | None]

    @property
    def frequency_per_nm(self) -> np.ndarray | None:
        if self.pixel_size_um is None:
            return None
        return self.frequency / (self.pixel_size_um * 1e3)

    @property
    def resolution_nm(self) -> dict[float, float | None]:
        if self.pixel_size_um is None:
            return {}
        return {t: (None if r is None else r * self.pixel_size_um * 1e3) for t, r in self.resolution_px.items()}


def resolution_from_fsc(frequency: np.ndarray, fsc: np.ndarray, threshold: float) -> float | None:
    """Resolution in pixels (1 / frequency) where the curve first falls below ``threshold``.

    Linear interpolation between the shells on either side of the crossing; ``None`` if the
    curve stays above the threshold up to Nyquist.
    """
    f = np.asarray(frequency, float)
    c = np.asarray(fsc, float)
    below = np.flatnonzero((c < threshold) & (f > 0))
    if below.size == 0:
        return None
    i = int(below[0])
    if i == 0:
        return float(1.0 / f[0]) if f[0] > 0 else None
    f0, f1, c0, c1 = f[i - 1], f[i], c[i - 1], c[i]
    fx = f0 + (c0 - threshold) * (f1 - f0) / (c0 - c1) if c0 != c1 else f1
    return float(1.0 / fx) if fx > 0 else None


def fourier_shell_correlation(
    volume_a: np.ndarray,
    volume_b: np.ndarray,
    *,
    pixel_size_um: float | None = None,
    thresholds: tuple[float, ...] = (0.143, 0.5),
    mask: np.ndarray | None = None,
) -> FSCResult:
    """Fourier shell (3-D) or ring (2-D) correlation of two half reconstructions.

    ``FSC(k) = Re Σ A B* / sqrt(Σ|A|² Σ|B|²)`` over shells one frequency step wide
    (``1 / max(shape)`` cycles per pixel), radial frequency computed per axis so that non-cubic
    volumes work. A ``mask`` (e.g. a soft cell mask) multiplies both volumes first.

    Parameters
    ----------
    volume_a, volume_b : numpy.ndarray
        2-D or 3-D arrays of the same shape.
    pixel_size_um : float, optional
        Voxel size, for resolutions in nm.
    thresholds : tuple of float
        FSC thresholds (0.143 for half-map comparisons, 0.5 the conservative criterion).
    mask : numpy.ndarray, optional

    Returns
    -------
    FSCResult
    """
    a = np.asarray(volume_a, dtype=np.float64)
    b = np.asarray(volume_b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"half volumes differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or min(a.shape) < 4:
        raise ValueError(f"FSC needs 2-D or 3-D arrays at least 4 voxels a side, got {a.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("half volumes contain NaN or infinite values")
    if pixel_size_um is not None and not (pixel_size_um > 0):
        raise ValueError(f"pixel size must be positive, got {pixel_size_um!r}")
    if mask is not None:
        m = np.asarray(mask, dtype=np.float64)
        if m.shape != a.shape:
            raise ValueError(f"mask shape {m.shape} differs from volume shape {a.shape}")
        a, b = a * m, b * m
    a = a - a.mean()
    b = b - b.mean()
    fa = sfft.rfftn(a)
    fb = sfft.rfftn(b)
    axes = [sfft.fftfreq(n) for n in a.shape[:-1]] + [sfft.rfftfreq(a.shape[-1])]
    grids = np.meshgrid(*axes, indexing="ij", sparse=True)
    radius = np.sqrt(sum(g**2 for g in grids))
    step = 1.0 / max(a.shape)
    shell = np.rint(radius / step).astype(np.int64)
    n_shells = int(np.floor(0.5 / step)) + 1
    # rfft keeps half of the spectrum: weight the non-redundant columns twice
    weight = np.full(fa.shape[-1], 2.0)
    weight[0] = 1.0
    if a.shape[-1] % 2 == 0:
        weight[-1] = 1.0
    w = np.broadcast_to(weight, fa.shape)
    sel = shell < n_shells
    idx = shell[sel]
    cross = np.bincount(idx, (w * (fa * np.conj(fb)).real)[sel], minlength=n_shells)
    pa = np.bincount(idx, (w * np.abs(fa) ** 2)[sel], minlength=n_shells)
    pb = np.bincount(idx, (w * np.abs(fb) ** 2)[sel], minlength=n_shells)
    counts = np.bincount(idx, minlength=n_shells)
    with np.errstate(invalid="ignore", divide="ignore"):
        fsc = np.where(pa * pb > 0, cross / np.sqrt(pa * pb), 0.0)
    freq = np.arange(n_shells) * step
    # skip the DC shell (removed by mean subtraction) in the curve handed back
    freq, fsc, counts = freq[1:], fsc[1:], counts[1:]
    res = {float(t): resolution_from_fsc(freq, fsc, t) for t in thresholds}
    return FSCResult(frequency=freq, fsc=fsc, counts=counts, pixel_size_um=pixel_size_um, resolution_px=res)


def orthoslice_preview(
    volume: np.ndarray,
    path: str | Path | None = None,
    *,
    index: tuple[int, int, int] | None = None,
    percentiles: tuple[float, float] = (1.0, 99.0),
    gap: int = 4,
) -> np.ndarray:
    """Three orthogonal central slices side by side as an 8-bit image, optionally saved as PNG.

    Panels, left to right: the x-z slice (``volume[i]``, one tilt-axis row), the x-y view
    (``volume[:, j]``, at a thickness index) and the y-z view (``volume[:, :, k]``). The contrast
    is stretched between the given percentiles of the three slices together.

    Parameters
    ----------
    volume : numpy.ndarray
        ``(rows, thickness, columns)``.
    path : str or Path, optional
        Where to write the PNG (Pillow).
    index : (int, int, int), optional
        Slice indices; default the centre.
    percentiles : (float, float)
        Contrast stretch limits.
    gap : int
        Pixels of black between panels.

    Returns
    -------
    numpy.ndarray
        The uint8 image.
    """
    vol = np.asarray(volume, dtype=np.float32)
    if vol.ndim != 3:
        raise ValueError(f"preview needs a 3-D volume, got shape {vol.shape}")
    if not np.all(np.isfinite(vol)):
        raise ValueError("volume contains NaN or infinite values")
    lo_p, hi_p = percentiles
    if not (0 <= lo_p < hi_p <= 100):
        raise ValueError(f"percentiles must satisfy 0 <= low < high <= 100, got {percentiles!r}")
    i, j, k = index if index is not None else tuple(n // 2 for n in vol.shape)
    for n, v in zip(vol.shape, (i, j, k), strict=True):
        if not 0 <= v < n:
            raise ValueError(f"slice index {v} out of range for axis of length {n}")
    panels = [vol[i], vol[:, j, :], vol[:, :, k].T]
    lo, hi = np.percentile(np.concatenate([p.ravel() for p in panels]), [lo_p, hi_p])
    if hi <= lo:
        hi = lo + 1.0
    h = max(p.shape[0] for p in panels)
    w = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    img = np.zeros((h, w), dtype=np.uint8)
    x = 0
    for p in panels:
        img[: p.shape[0], x : x + p.shape[1]] = (np.clip((p - lo) / (hi - lo), 0, 1) * 255 + 0.5).astype(np.uint8)
        x += p.shape[1] + gap
    if path is not None:
        from PIL import Image

        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(path)
    return img
