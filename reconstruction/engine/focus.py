"""Depth of focus: Wiener deconvolution and focal-series (focus-stack) reconstruction.

A soft X-ray zone plate's depth of field (``λ / NA²``, about 1 µm for a 25 nm outer zone at
520 eV) is thinner than a cell, so in any one projection only a slab of the cell is sharp.

* :func:`wiener_deconvolve` divides the projections by the zone plate's transfer function at one
  defocus (fixes the in-focus blur only).
* :func:`reconstruct_focal_series` reconstructs a focal series, projections of shape
  ``(tilts, focal planes, rows, columns)``: filtered back-projection in which, at every tilt, each
  voxel takes its value from the focal plane nearest to its own depth along the beam,
  ``d = z cos θ + x sin θ`` (so the choice of plane changes with the angle). This is the
  focus-stack back-projection of Selin et al. (Opt. Lett. 2015); with one plane it is plain WBP.

Geometry as the rest of the engine: a tilt series ``(tilts, rows, columns)`` with the tilt axis
along the rows; angles in degrees, 0 = beam along the slice's thickness axis; the volume is
``(rows, thickness, columns)``; voxel ``(z, x)`` (offsets from ``n // 2``) projects to column
``x cos θ - z sin θ`` (scikit-image ``radon``'s line integrals); depth along the beam is positive
towards the detector, as ``focal_planes_um``. Output values are line-integral units per pixel;
divide by the pixel size in µm (:func:`reconstruction.engine.quality.to_lac`) for LAC in µm⁻¹.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import fft as sfft

from .psf import ZonePlate, otf, psf_half_width

__all__ = [
    "FILTERS",
    "focus_stack_backproject",
    "mean_defocus_um",
    "ramp_filter",
    "reconstruct_focal_series",
    "wiener_deconvolve",
]

FILTERS = ("ramp", "shepp-logan", "cosine", "hamming", "hann")


def _angle_weights(angles_deg: np.ndarray) -> np.ndarray:
    """Angular integration weights (radians) for the actual spacing of the tilts.

    Each tilt gets half the distance to its two neighbours (one-sided at the ends), so a ±65°
    series is weighted by its true angular range, not as if it covered 180°.
    """
    a = np.deg2rad(angles_deg)
    if a.size == 1:
        return np.array([np.pi])
    order = np.argsort(a)
    s = a[order]
    w = np.empty_like(s)
    w[1:-1] = (s[2:] - s[:-2]) / 2
    w[0] = s[1] - s[0]
    w[-1] = s[-1] - s[-2]
    out = np.empty_like(w)
    out[order] = w
    return out


def ramp_filter(projections: np.ndarray, filter_name: str = "ramp") -> np.ndarray:
    """Ramp-filter projections along the last axis (columns).

    Uses the band-limited spatial-domain Ram-Lak kernel (Kak & Slaney, as scikit-image's
    ``iradon``), zero-padded to at least twice the width, optionally apodised.

    Parameters
    ----------
    projections : numpy.ndarray
        ``(..., columns)``.
    filter_name : str
        One of :data:`FILTERS`.

    Returns
    -------
    numpy.ndarray
        float32, same shape.
    """
    if filter_name not in FILTERS:
        raise ValueError(f"unknown filter {filter_name!r}; choose from {', '.join(FILTERS)}")
    proj = np.asarray(projections, dtype=np.float32)
    n = proj.shape[-1]
    size = max(64, int(2 ** np.ceil(np.log2(2 * n))))
    k = np.concatenate((np.arange(1, size / 2 + 1, 2, dtype=int), np.arange(size / 2 - 1, 0, -2, dtype=int)))
    h = np.zeros(size)
    h[0] = 0.25
    h[1::2] = -1 / (np.pi * k) ** 2
    filt = 2 * np.real(sfft.fft(h))
    omega = np.pi * sfft.fftfreq(size)[1:]
    if filter_name == "shepp-logan":
        filt[1:] *= np.sin(omega) / omega
    elif filter_name == "cosine":
        filt *= sfft.fftshift(np.sin(np.linspace(0, np.pi, size, endpoint=False)))
    elif filter_name == "hamming":
        filt *= sfft.fftshift(np.hamming(size))
    elif filter_name == "hann":
        filt *= sfft.fftshift(np.hanning(size))
    filt_r = filt[: size // 2 + 1].astype(np.float32)
    spec = sfft.rfft(proj, n=size, axis=-1)
    spec *= filt_r
    return sfft.irfft(spec, n=size, axis=-1)[..., :n].astype(np.float32)


def _check_series(projections: Any, angles: Any, planes: Any, pixel_size_um: float):
    proj = np.asarray(projections)
    if proj.ndim != 4:
        raise ValueError(f"a focal series must be 4-D (tilts, focal planes, rows, columns), got shape {proj.shape}")
    if min(proj.shape) < 1:
        raise ValueError(f"focal series has an empty axis: shape {proj.shape}")
    a = np.asarray(angles, dtype=np.float64)
    if a.ndim != 1 or a.size != proj.shape[0]:
        raise ValueError(f"got {a.size} angles for {proj.shape[0]} tilts")
    if not np.all(np.isfinite(a)):
        raise ValueError("angles contain NaN or infinite values")
    if a.size > 1 and np.unique(a).size != a.size:
        raise ValueError("duplicate tilt angles")
    f = np.asarray(planes, dtype=np.float64)
    if f.ndim != 1 or f.size != proj.shape[1]:
        raise ValueError(f"got {f.size} focal plane positions for {proj.shape[1]} focal planes")
    if not np.all(np.isfinite(f)) or np.unique(f).size != f.size:
        raise ValueError("focal plane positions must be finite and distinct")
    if not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um!r}")
    if not np.all(np.isfinite(proj)):
        raise ValueError("projections contain NaN or infinite values")
    return proj, a, f


def focus_stack_backproject(
    filtered: np.ndarray,
    angles: Any,
    *,
    focal_planes_um: Any,
    pixel_size_um: float,
    weights: np.ndarray | None = None,
    thickness: int | None = None,
    blend: str = "nearest",
    rows_per_chunk: int = 64,
    voxels_per_block: int = 16384,
) -> np.ndarray:
    """Back-project a focal series, each voxel from the plane focused nearest to it at each tilt.

    Parameters
    ----------
    filtered : numpy.ndarray
        ``(tilts, planes, rows, columns)`` (already filtered for WBP).
    angles : array_like
        Degrees.
    focal_planes_um : array_like
        Plane positions along the beam, µm from the tilt axis, positive towards the detector.
    pixel_size_um : float
        Voxel size (µm), to turn voxel depths into µm.
    weights : numpy.ndarray, optional
        Per-tilt factor (default 1).
    thickness : int, optional
        Volume thickness in voxels (default: the column count).
    blend : {"nearest", "linear"}
        ``"nearest"`` takes the nearest plane; ``"linear"`` interpolates between the two planes
        bracketing the voxel's depth (nearest outside the outermost planes).
    rows_per_chunk, voxels_per_block : int
        Working-set sizes (memory bound; results do not depend on them).

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, thickness, columns)``.
    """
    if blend not in ("nearest", "linear"):
        raise ValueError(f"blend must be 'nearest' or 'linear', got {blend!r}")
    proj, a, f = _check_series(filtered, angles, focal_planes_um, pixel_size_um)
    n_t, n_k, n_r, n_c = proj.shape
    nz = n_c if thickness is None else int(thickness)
    if nz < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness!r}")
    w_t = np.ones(n_t) if weights is None else np.asarray(weights, dtype=np.float64)
    order = np.argsort(f)
    f_sorted = f[order]
    p = float(pixel_size_um)

    zz = (np.arange(nz) - nz // 2).astype(np.float64)
    xx = (np.arange(n_c) - n_c // 2).astype(np.float64)
    z_flat = np.repeat(zz, n_c)
    x_flat = np.tile(xx, nz)
    n_vox = nz * n_c
    out = np.zeros((n_vox, n_r), dtype=np.float32)
    stride = n_c + 1  # one zero column per plane catches rays outside the detector

    for r0 in range(0, n_r, rows_per_chunk):
        r1 = min(n_r, r0 + rows_per_chunk)
        acc = out[:, r0:r1]
        for it in range(n_t):
            th = np.deg2rad(a[it])
            c, s = np.cos(th), np.sin(th)
            g = np.zeros((n_k, stride, r1 - r0), dtype=np.float32)
            # planes sorted by position, columns then rows (rows innermost, contiguous)
            g[:, :n_c, :] = np.transpose(proj[it, order, r0:r1, :], (0, 2, 1)) * np.float32(w_t[it])
            g = g.reshape(n_k * stride, r1 - r0)
            for v0 in range(0, n_vox, voxels_per_block):
                v1 = min(n_vox, v0 + voxels_per_block)
                zb, xb = z_flat[v0:v1], x_flat[v0:v1]
                t = xb * c - zb * s + n_c // 2
                depth = (zb * c + xb * s) * p
                i0 = np.floor(t).astype(np.int64)
                wt = (t - i0).astype(np.float32)[:, None]
                i1 = i0 + 1
                i0 = np.where((i0 >= 0) & (i0 < n_c), i0, n_c)
                i1 = np.where((i1 >= 0) & (i1 < n_c), i1, n_c)
                if n_k == 1:
                    acc[v0:v1] += g[i0] * (1 - wt) + g[i1] * wt
                    continue
                if blend == "nearest":
                    mids = (f_sorted[1:] + f_sorted[:-1]) / 2
                    k = np.searchsorted(mids, depth)
                    b0 = k * stride
                    acc[v0:v1] += g[b0 + i0] * (1 - wt) + g[b0 + i1] * wt
                else:
                    k1 = np.clip(np.searchsorted(f_sorted, depth), 1, n_k - 1)
                    k0 = k1 - 1
                    lam = (depth - f_sorted[k0]) / (f_sorted[k1] - f_sorted[k0])
                    lam = np.clip(lam, 0.0, 1.0).astype(np.float32)[:, None]
                    b0, b1 = k0 * stride, k1 * stride
                    acc[v0:v1] += (1 - lam) * (g[b0 + i0] * (1 - wt) + g[b0 + i1] * wt) + lam * (
                        g[b1 + i0] * (1 - wt) + g[b1 + i1] * wt
                    )
    return np.ascontiguousarray(out.reshape(nz, n_c, n_r).transpose(2, 0, 1))


def wiener_deconvolve(
    projections: np.ndarray,
    zone_plate: ZonePlate,
    pixel_size_um: float,
    *,
    defocus_um: float = 0.0,
    snr: float = 100.0,
) -> np.ndarray:
    """Wiener deconvolution of projections with the zone-plate PSF at one defocus.

    ``X = conj(H) Y / (|H|² + 1 / snr)`` on each (rows, columns) image, reflect-padded by the PSF
    half width so that the borders do not ring.

    Parameters
    ----------
    projections : numpy.ndarray
        ``(..., rows, columns)`` absorbances.
    zone_plate : ZonePlate
    pixel_size_um : float
    defocus_um : float
        Defocus of the PSF to remove (0 = in focus).
    snr : float
        Signal-to-noise power ratio of the Wiener filter; larger deconvolves harder.

    Returns
    -------
    numpy.ndarray
        float32, same shape.
    """
    proj = np.asarray(projections, dtype=np.float32)
    if proj.ndim < 2:
        raise ValueError(f"projections must be at least 2-D (rows, columns), got shape {proj.shape}")
    if not (snr > 0):
        raise ValueError(f"Wiener SNR must be positive, got {snr!r}")
    if not np.all(np.isfinite(proj)):
        raise ValueError("projections contain NaN or infinite values")
    ny, nx = proj.shape[-2:]
    hw = psf_half_width(zone_plate, defocus_um, pixel_size_um)
    pad = [(0, 0)] * (proj.ndim - 2) + [(hw, hw), (hw, hw)]
    padded = np.pad(proj, pad, mode="reflect" if min(ny, nx) > hw else "edge")
    shape = padded.shape[-2:]
    h = otf(zone_plate, defocus_um, pixel_size_um, shape)
    filt = (np.conj(h) / (np.abs(h) ** 2 + 1.0 / snr)).astype(np.complex64)
    spec = sfft.rfft2(padded, axes=(-2, -1))
    res = sfft.irfft2(spec * filt, s=shape, axes=(-2, -1))
    return res[..., hw : hw + ny, hw : hw + nx].astype(np.float32)


def reconstruct_focal_series(
    projections: np.ndarray,
    angles: Any,
    *,
    focal_planes_um: Any,
    pixel_size_um: float,
    method: str = "wbp",
    iterations: int | None = None,
    filter_name: str = "ramp",
    thickness: int | None = None,
    blend: str = "nearest",
    zone_plate: ZonePlate | None = None,
    wiener_snr: float | None = None,
) -> np.ndarray:
    """Reconstruct a focal series by focus-stack weighted back-projection.

    Parameters
    ----------
    projections : numpy.ndarray
        ``(tilts, focal planes, rows, columns)`` absorbances.
    angles : array_like
        Tilt angles in degrees, one per tilt.
    focal_planes_um : array_like
        Position of each focal plane along the beam, µm from the tilt axis, positive towards the
        detector.
    pixel_size_um : float
        Pixel size at the sample, µm.
    method : {"wbp"}
        Only focus-stack WBP is implemented (see the module notes on the iterative variant).
    iterations : None
        Accepted for API symmetry with ``reconstruct``; must be ``None`` for ``"wbp"``.
    filter_name : str
        WBP filter, one of :data:`FILTERS`.
    thickness : int, optional
        Volume thickness in voxels (default the column count).
    blend : {"nearest", "linear"}
        Plane selection per voxel and tilt (see :func:`focus_stack_backproject`).
    zone_plate : ZonePlate, optional
        With ``wiener_snr``, every plane is Wiener-deconvolved with the in-focus PSF first.
    wiener_snr : float, optional
        SNR of that Wiener filter.

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, thickness, columns)`` in line-integral units per pixel (divide by the
        pixel size in µm for LAC in µm⁻¹).
    """
    if method != "wbp":
        raise ValueError(f"focal-series method must be 'wbp', got {method!r}")
    if iterations is not None:
        raise ValueError("focus-stack WBP takes no iterations")
    if filter_name not in FILTERS:
        raise ValueError(f"unknown filter {filter_name!r}; choose from {', '.join(FILTERS)}")
    if (zone_plate is None) != (wiener_snr is None):
        raise ValueError("Wiener deconvolution needs both zone_plate and wiener_snr")
    proj, a, f = _check_series(projections, angles, focal_planes_um, pixel_size_um)
    if zone_plate is not None:
        proj = wiener_deconvolve(proj, zone_plate, pixel_size_um, snr=float(wiener_snr))
    filtered = ramp_filter(proj, filter_name)
    weights = _angle_weights(a) / 2.0  # the Ram-Lak kernel above is 2|f|
    return focus_stack_backproject(
        filtered,
        a,
        focal_planes_um=f,
        pixel_size_um=pixel_size_um,
        weights=weights,
        thickness=thickness,
        blend=blend,
    )


def mean_defocus_um(
    thickness: int,
    columns: int,
    angles: Any,
    pixel_size_um: float,
    focal_plane_um: float = 0.0,
) -> np.ndarray:
    """Mean distance (µm) of each voxel of a slice from a focal plane, over the tilt series.

    Voxel ``(z, x)`` sits at depth ``d(θ) = (z cos θ + x sin θ) · pixel`` along the beam; this
    returns ``mean_θ |d(θ) - focal_plane_um|`` as a ``(thickness, columns)`` array, used to
    grade reconstructions in the parts of a cell that are out of focus in a single-focus series.
    """
    a = np.deg2rad(np.asarray(angles, dtype=np.float64))
    if a.ndim != 1 or a.size == 0:
        raise ValueError("angles must be a non-empty 1-D sequence")
    if thickness < 1 or columns < 1:
        raise ValueError(f"slice size must be positive, got {thickness}x{columns}")
    zz = (np.arange(thickness) - thickness // 2)[:, None] * float(pixel_size_um)
    xx = (np.arange(columns) - columns // 2)[None, :] * float(pixel_size_um)
    acc = np.zeros((thickness, columns))
    for th in a:
        acc += np.abs(zz * np.cos(th) + xx * np.sin(th) - focal_plane_um)
    return acc / a.size
