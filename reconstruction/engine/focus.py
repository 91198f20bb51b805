"""Depth of focus: Wiener deconvolution and focal-series (focus-stack) reconstruction.

A soft X-ray zone plate's depth of field (``λ / NA²``, about 1 µm for a 25 nm outer zone at
520 eV) is thinner than a cell, so in any one projection only a slab of the cell is sharp.

* :func:`wiener_deconvolve` divides the projections by the zone plate's transfer function at one
  defocus (fixes the in-focus blur only).
* :func:`reconstruct_focal_series` reconstructs a focal series, projections of shape
  ``(tilts, focal planes, rows, columns)``: filtered back-projection in which, at every tilt, each
  voxel takes its value from the focal plane nearest to its own depth along the beam,
  ``d = z cos θ + x sin θ`` (so the choice of plane changes with the angle). This is the
  focus-stack back-projection of Selin et al. (Opt. Lett. 2015); with one plane over a half turn
  it is plain WBP (on a limited range each tilt keeps its real angular interval).
  Its ramp filter and angle weights are WBP's (:mod:`reconstruction.engine.wbp`).
* :func:`sirt_focal_series` and :func:`psf_sirt` (a single-focus series, in overlapping slabs)
  run the engine's SIRT (:func:`reconstruction.engine.iterative.solve_sirt`) over
  :class:`FocalSeriesOperator`, the depth-dependent zone-plate forward model;
  :func:`psf_mbir` runs mbir's objective and solver (:func:`reconstruction.engine.mbir.solve_os_sqs`)
  over the same model, in the same slabs.

Geometry as the rest of the engine: a tilt series ``(tilts, rows, columns)`` with the tilt axis
along the rows; angles in degrees, 0 = beam along the slice's thickness axis; the volume is
``(rows, thickness, columns)``; voxel ``(z, x)`` (offsets from the geometric centre
``(n − 1) / 2``) projects to column ``x cos θ - z sin θ`` from the detector centre
``(columns − 1) / 2`` (ASTRA's parallel-beam line integrals); depth along the beam is positive
towards the detector, as ``focal_planes_um``. Output values are line-integral units per pixel;
divide by the pixel size in µm (:func:`reconstruction.engine.quality.to_lac`) for LAC in µm⁻¹.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import fft as sfft

from .iterative import solve_sirt
from .joseph import joseph_weights_np as _joseph_np_weights
from .joseph import joseph_widths
from .mbir import (
    _huber_grad,
    poisson_weights,
    prior_from_data,
    regularised_options,
    solve_os_sqs,
    tilt_subsets,
)
from .operators import LinearOperator
from .projectors import centre
from .psf import ZonePlate, otf, psf_half_width
from .slabs import iter_slabs
from .validate import check_angles, check_focal_series, check_pixel_size, check_projections
from .wbp import FILTERS, angle_weights, filter_projections

try:  # numba compiles the depth-binned projector of the iterative variant; numpy otherwise
    import numba
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

__all__ = [
    "FOCAL_DEFAULTS",
    "FocalOptions",
    "PSF_DEFAULTS",
    "PSFOptions",
    "PSF_MBIR_DEFAULTS",
    "PSFMBIROptions",
    "FocalSeriesOperator",
    "estimate_noise_power",
    "focus_stack_backproject",
    "mean_defocus_um",
    "psf_mbir",
    "psf_sirt",
    "reconstruct_focal_series",
    "refocus",
    "refocus_depths",
    "sirt_focal_series",
    "wiener_deconvolve",
]


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
    proj, a, f = check_focal_series(filtered, angles, focal_planes_um, pixel_size_um)
    n_t, n_k, n_r, n_c = proj.shape
    nz = n_c if thickness is None else int(thickness)
    if nz < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness!r}")
    w_t = np.ones(n_t) if weights is None else np.asarray(weights, dtype=np.float64)

    return _backproject_stream(
        lambda it: proj[it],
        a,
        f,
        (n_r, nz, n_c),
        pixel_size_um=pixel_size_um,
        weights=w_t,
        blend=blend,
        rows_per_chunk=rows_per_chunk,
        voxels_per_block=voxels_per_block,
    )


def _backproject_stream(
    tilt_data: Any,
    a: np.ndarray,
    f: np.ndarray,
    shape: tuple[int, int, int],
    *,
    pixel_size_um: float,
    weights: np.ndarray,
    blend: str,
    rows_per_chunk: int,
    voxels_per_block: int,
    callback: Any = None,
) -> np.ndarray:
    """Focus-stack back-projection with the tilts outermost: ``tilt_data(it)`` gives tilt ``it``.

    Each tilt's ``(planes, rows, columns)`` data is asked for once, used for every slab of
    ``rows_per_chunk`` rows and dropped, so only one tilt is held besides the volume. Every voxel
    sums the tilts in the same order with the same arithmetic whatever ``rows_per_chunk``, so
    the result does not depend on it. ``callback(rows)`` is called as the tilts are done
    (``rows`` in all).
    """
    n_r, nz, n_c = shape
    n_t, n_k = a.size, f.size
    order = np.argsort(f)
    f_sorted = f[order]
    p = float(pixel_size_um)
    cx = centre(n_c)
    zz = np.arange(nz) - centre(nz)
    xx = np.arange(n_c) - cx
    z_flat = np.repeat(zz, n_c)
    x_flat = np.tile(xx, nz)
    n_vox = nz * n_c
    out = np.zeros((n_vox, n_r), dtype=np.float32)
    stride = n_c + 1  # one zero column per plane catches rays outside the detector
    done = 0
    for it in range(n_t):
        th = np.deg2rad(a[it])
        c, s = np.cos(th), np.sin(th)
        data = np.asarray(tilt_data(it), dtype=np.float32)
        if data.shape != (n_k, n_r, n_c):
            raise ValueError(f"tilt {it}: expected data of shape {(n_k, n_r, n_c)}, got {data.shape}")
        for r0 in range(0, n_r, rows_per_chunk):
            r1 = min(n_r, r0 + rows_per_chunk)
            acc = out[:, r0:r1]
            g = np.zeros((n_k, stride, r1 - r0), dtype=np.float32)
            # planes sorted by position, columns then rows (rows innermost, contiguous)
            g[:, :n_c, :] = np.transpose(data[order, r0:r1, :], (0, 2, 1)) * np.float32(weights[it])
            g = g.reshape(n_k * stride, r1 - r0)
            for v0 in range(0, n_vox, voxels_per_block):
                v1 = min(n_vox, v0 + voxels_per_block)
                zb, xb = z_flat[v0:v1], x_flat[v0:v1]
                t = xb * c - zb * s + cx
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
        del data
        if callback is not None:
            step = (n_r * (it + 1)) // n_t - done
            if step > 0:
                callback(step)
                done += step
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
    return _WienerFilter(zone_plate, pixel_size_um, proj.shape[-2:], defocus_um, snr)(proj)


class _WienerFilter:
    """The fixed-SNR Wiener filter of :func:`wiener_deconvolve` for images of one shape."""

    def __init__(self, zone_plate: ZonePlate, pixel_size_um: float, image_shape, defocus_um: float, snr: float):
        ny, nx = (int(v) for v in image_shape)
        self.ny, self.nx = ny, nx
        self.hw = psf_half_width(zone_plate, defocus_um, pixel_size_um)
        self.mode = "reflect" if min(ny, nx) > self.hw else "edge"
        self.shape = (ny + 2 * self.hw, nx + 2 * self.hw)
        h = otf(zone_plate, defocus_um, pixel_size_um, self.shape)
        self.filt = (np.conj(h) / (np.abs(h) ** 2 + 1.0 / snr)).astype(np.complex64)

    def __call__(self, proj: np.ndarray) -> np.ndarray:
        hw = self.hw
        pad = [(0, 0)] * (proj.ndim - 2) + [(hw, hw), (hw, hw)]
        padded = np.pad(np.asarray(proj, dtype=np.float32), pad, mode=self.mode)
        spec = sfft.rfft2(padded, axes=(-2, -1))
        res = sfft.irfft2(spec * self.filt, s=self.shape, axes=(-2, -1))
        return res[..., hw : hw + self.ny, hw : hw + self.nx].astype(np.float32)


def _window_power(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean power spectrum of Hann-windowed images ``(n, rows, columns)`` and the radius grid.

    Normalised so that white noise of variance ``σ²`` per pixel gives ``σ²`` at every frequency.
    """
    n_r, n_c = images.shape[-2:]
    wr = np.hanning(n_r + 2)[1:-1] if n_r > 2 else np.ones(n_r)
    wc = np.hanning(n_c + 2)[1:-1] if n_c > 2 else np.ones(n_c)
    win = (wr[:, None] * wc[None, :]).astype(np.float32)
    x = images - images.mean(axis=(-2, -1), keepdims=True)
    spec = sfft.rfft2(x * win, axes=(-2, -1))
    power = (np.abs(spec) ** 2).mean(axis=0) / float((win**2).sum())
    rho = np.hypot(sfft.fftfreq(n_r)[:, None], sfft.rfftfreq(n_c)[None, :])
    return power, rho


def _sample_images(proj: np.ndarray, max_images: int = 64) -> np.ndarray:
    """Up to ``max_images`` (rows, columns) images spread over a stack ``(..., rows, columns)``."""
    flat = proj.reshape(-1, *proj.shape[-2:])
    step = max(1, flat.shape[0] // max_images)
    return np.asarray(flat[::step], dtype=np.float32)


_NOISE_BAND = 0.6  # cycles/pixel: the corners of the spectrum, where the noise is read


def estimate_noise_power(projections: np.ndarray) -> float:
    """Variance per pixel of the white detector noise of absorbance projections, from the data.

    The power spectrum of Hann-windowed images ``(..., rows, columns)`` (a sample of at most 64;
    normalised so that white noise of variance ``σ²`` reads ``σ²``) is averaged over the corners
    of the spectrum, beyond 0.6 cycles/pixel radially. There the zone plate's transfer function
    (cut-off ``1 / Δr``; 35 cycles/µm at the corner for 20 nm pixels against 40 for a 25 nm
    zone plate) and the object's spectrum leave almost no signal, while -log(Poisson counts)
    noise is white. Its variance follows the absorbance, so this is a mean weighted like the
    window (towards the centre of the field, where the specimen is), the same weighting as the
    signal spectrum in :func:`refocus`. With pixels much coarser than the resolution the signal
    reaches the corners and this overestimates the noise, i.e. it errs towards more
    regularisation.
    """
    proj = np.asarray(projections)
    if proj.ndim < 2 or min(proj.shape[-2:]) < 4:
        raise ValueError(f"noise estimation needs images of at least 4x4 pixels, got {proj.shape}")
    power, rho = _window_power(_sample_images(proj))
    band = rho >= _NOISE_BAND
    if band.sum() < 4:
        band = rho >= np.quantile(rho, 0.9)
    return float(power[band].mean())


def _tomographic_samples(angles: np.ndarray, columns: int, shape: tuple[int, int]) -> np.ndarray:
    """Projection samples per Cartesian frequency cell of the slice, at each detector frequency.

    ``n`` tilts over an angular range ``Θ`` put ``n / (Θ k)`` samples in each cell at radius
    ``k`` (cells of the ``columns``-point DFT), so the noise of a reconstructed Fourier
    coefficient is averaged over that many projections at low frequency and not at all beyond
    ``k = n / Θ``; returned on the ``rfft2`` grid of ``shape`` (detector frequency along the
    columns), at most the number of tilts (below 1 at high
    frequency: there FBP interpolates between sparse samples and the noise grows with ``k``).
    """
    a = np.deg2rad(np.sort(angles))
    span = float(a[-1] - a[0] + (np.median(np.diff(a)) if a.size > 1 else np.pi))
    span = min(max(span, 1e-3), np.pi)
    k = np.abs(sfft.rfftfreq(shape[1]))[None, :] * columns
    m = a.size / (span * np.maximum(k, 0.5))
    return np.broadcast_to(np.minimum(m, float(a.size)), (shape[0], shape[1] // 2 + 1))


def refocus(
    projections: np.ndarray,
    angles: Any,
    *,
    focal_planes_um: Any,
    pixel_size_um: float,
    zone_plate: ZonePlate,
    depths_um: Any,
    noise_power: float | None = None,
    regularization: float = 1.0,
) -> np.ndarray:
    """Noise-aware multi-plane Wiener deconvolution of a focal series, towards chosen depths.

    For every tilt and every output depth ``d`` it estimates the in-focus projection of the
    layers around ``d`` from all focal planes ``k`` at once::

        X_d = Σ_k H(d - f_k) Y_k / (Σ_k |H(d - f_k)|² + γ N / (m S))

    with ``H(z)`` the zone plate's transfer function at defocus ``z``, ``N`` the white noise
    power (:func:`estimate_noise_power` unless given), ``S`` the radial power spectrum of the
    in-focus projections (estimated from the data: measured power minus noise over the mean
    ``|H|²`` of the series' depths and planes), ``m`` the number of tilts that average each
    Fourier coefficient of the reconstruction (:func:`_tomographic_samples`: the filter is a
    Wiener filter for the *volume*, not for each projection) and ``γ = regularization``.
    Planes focused near ``d`` dominate where they carry the detail; at low frequencies, where
    every plane sees the same, they are averaged (more photons, less noise).

    Parameters
    ----------
    projections : numpy.ndarray
        ``(tilts, planes, rows, columns)`` absorbances (one plane for a single-focus series).
    angles : array_like
        Degrees (for the tomographic noise averaging).
    focal_planes_um, pixel_size_um, zone_plate
        The series' focal planes (µm along the beam), pixel (µm) and objective.
    depths_um : array_like
        Depths (µm along the beam, same axis as the planes) to refocus to.
    noise_power : float, optional
        Per-pixel noise variance of the absorbances; estimated from the data by default.
    regularization : float
        Scale ``γ`` of the noise term (1 = Wiener).

    Returns
    -------
    numpy.ndarray
        float32 ``(tilts, depths, rows, columns)``.
    """
    proj, a, f = check_focal_series(projections, angles, focal_planes_um, pixel_size_um)
    apply = _RefocusFilter(proj, a, f, pixel_size_um, zone_plate, depths_um, noise_power, regularization)
    out = np.empty((proj.shape[0], apply.depths.size, *proj.shape[2:]), dtype=np.float32)
    for t in range(proj.shape[0]):
        out[t] = apply(proj[t])
    return out


class _RefocusFilter:
    """The filter of :func:`refocus`, designed from the whole series, applied one tilt at a time.

    The noise power and the signal spectrum are estimated from the whole series, so applying it
    tilt by tilt gives exactly the stacked result of :func:`refocus` without holding it.
    """

    def __init__(self, proj, a, f, pixel_size_um, zone_plate, depths_um, noise_power, regularization):
        d = np.atleast_1d(np.asarray(depths_um, dtype=np.float64))
        if d.ndim != 1 or d.size == 0 or not np.all(np.isfinite(d)):
            raise ValueError("depths_um must be a non-empty 1-D sequence of finite µm")
        if not (regularization >= 0):
            raise ValueError(f"regularization must be >= 0, got {regularization!r}")
        p = float(pixel_size_um)
        n_t, n_k, n_r, n_c = proj.shape
        if noise_power is None:
            noise_power = estimate_noise_power(proj)
        if not (np.isfinite(noise_power) and noise_power >= 0):
            raise ValueError(f"noise power must be a finite number >= 0, got {noise_power!r}")
        hw = psf_half_width(zone_plate, float(np.max(np.abs(d[:, None] - f[None, :]))), p)
        shape = (sfft.next_fast_len(n_r + 2 * hw), sfft.next_fast_len(n_c + 2 * hw, real=True))
        # transfer functions (real: centred symmetric kernels), (depths, planes, F0, F1)
        h = np.empty((d.size, n_k, shape[0], shape[1] // 2 + 1), dtype=np.float32)
        for j, dj in enumerate(d):
            for k, fk in enumerate(f):
                h[j, k] = otf(zone_plate, float(dj - fk), p, shape).real
        # signal model S(ρ) from the measured power: P = S <|H|²> + N
        power, rho_img = _window_power(_sample_images(proj))
        nb = 48
        rmax = float(np.hypot(0.5, 0.5)) + 1e-9
        bins_img = np.minimum((rho_img / rmax * nb).astype(int), nb - 1)
        p_b = np.bincount(bins_img.ravel(), power.ravel(), nb) / np.maximum(np.bincount(bins_img.ravel(), None, nb), 1)
        half = 0.5 * p * max(n_c, 1)  # depth range of the object along the beam (µm)
        z_obj = np.linspace(-half, half, 9)
        h2 = np.zeros(power.shape)
        for fk in f:
            for z in z_obj:
                h2 += np.abs(otf(zone_plate, float(z - fk), p, (n_r, n_c))) ** 2
        h2 /= f.size * z_obj.size
        h_b = np.bincount(bins_img.ravel(), h2.ravel(), nb) / np.maximum(np.bincount(bins_img.ravel(), None, nb), 1)
        centres = (np.arange(nb) + 0.5) * rmax / nb
        s_b = np.maximum(p_b - noise_power, 0.0) / np.maximum(h_b, 1e-12)
        # where the measured power is not clearly above the noise (and where |H|² is tiny) S is not
        # measurable: continue the last reliable value with a steep power-law fall
        reliable = (p_b > 2.0 * noise_power) & (h_b > 1e-4) & (np.bincount(bins_img.ravel(), None, nb) > 0)
        reliable[0] = True
        last = int(np.flatnonzero(reliable).max())
        s_last = max(float(s_b[last]), 1e-30)
        s_b[last + 1 :] = s_last * (centres[last + 1 :] / centres[last]) ** -4.0
        s_b = np.maximum(s_b, s_last * (centres / centres[last]) ** -4.0 * (centres > centres[last]))
        s_b = np.maximum(s_b, 1e-30)
        rho = np.hypot(sfft.fftfreq(shape[0])[:, None], sfft.rfftfreq(shape[1])[None, :])
        # the padded grid has finer frequency steps: interpolate the binned model on it
        s = np.exp(np.interp(rho, centres, np.log(s_b)))
        m = _tomographic_samples(a, n_c, shape)
        reg = (regularization * noise_power / (m * s)).astype(np.float32)
        filt = h / (np.sum(h**2, axis=1, keepdims=True) + reg)  # (depths, planes, F0, F1)
        self.depths = d
        self.filt = filt
        self.shape = shape
        self.hw = hw
        self.mode = "reflect" if min(n_r, n_c) > 1 else "edge"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        """One tilt ``(planes, rows, columns)`` -> ``(depths, rows, columns)`` float32."""
        hw, shape = self.hw, self.shape
        n_r, n_c = image.shape[-2:]
        pad = ((0, 0), (hw, hw), (hw, hw))
        spec = sfft.rfft2(np.pad(image.astype(np.float32), pad, mode=self.mode), s=shape)
        est = np.einsum("jkab,kab->jab", self.filt, spec.astype(np.complex64))
        return sfft.irfft2(est, s=shape, axes=(-2, -1))[:, hw : hw + n_r, hw : hw + n_c]


# --- iterative focal-series reconstruction --------------------------------------------------


def _splat_np(vals, col, bins, out, widths):
    """out[b, i, r] += Joseph's weights * vals[v, r] (numpy fallback of the numba kernel)."""
    n_c = out.shape[1] - 2
    i0, w0, w1 = _joseph_np_weights(col, widths)
    ok0 = (i0 >= 0) & (i0 < n_c)
    ok1 = (i0 + 1 >= 0) & (i0 + 1 < n_c)
    flat = out.reshape(-1, out.shape[2])
    base = bins * (n_c + 2) + 1
    np.add.at(flat, base[ok0] + i0[ok0], w0[ok0, None] * vals[ok0])
    np.add.at(flat, base[ok1] + i0[ok1] + 1, w1[ok1, None] * vals[ok1])


def _gather_np(layers, col, bins, out, widths):
    """out[v, r] += Joseph's interpolation of layers[bins[v], :, r] at col[v] (numpy fallback)."""
    n_c = layers.shape[1] - 2
    i0, w0, w1 = _joseph_np_weights(col, widths)
    i0c = np.clip(i0, -1, n_c) + 1
    i1c = np.clip(i0 + 1, -1, n_c) + 1
    flat = layers.reshape(-1, layers.shape[2])
    base = bins * (n_c + 2)
    out += w0[:, None] * flat[base + i0c] + w1[:, None] * flat[base + i1c]


if numba is not None:
    from .joseph import joseph_weights as _joseph_weights

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _splat_nb(vals, col, bins, out, widths):  # pragma: no cover - compiled
        n_v, n_r = vals.shape
        n_c = out.shape[1] - 2
        iw, iw2, k1 = widths[0], widths[1], widths[2]
        blk = 4
        n_blk = (n_r + blk - 1) // blk
        for rb in numba.prange(n_blk):
            r0 = rb * blk
            r1 = min(n_r, r0 + blk)
            for v in range(n_v):
                i0, w0, w1 = _joseph_weights(col[v], iw, iw2, k1)
                if i0 < -1 or i0 >= n_c:
                    continue
                b = bins[v]
                for r in range(r0, r1):
                    x = vals[v, r]
                    out[b, i0 + 1, r] += w0 * x
                    out[b, i0 + 2, r] += w1 * x

    @numba.njit(parallel=True, cache=True, nogil=True)
    def _gather_nb(layers, col, bins, out, widths):  # pragma: no cover - compiled
        n_v, n_r = out.shape
        n_c = layers.shape[1] - 2
        iw, iw2, k1 = widths[0], widths[1], widths[2]
        for v in numba.prange(n_v):
            i0, w0, w1 = _joseph_weights(col[v], iw, iw2, k1)
            if i0 < -1 or i0 >= n_c:
                continue
            b = bins[v]
            for r in range(n_r):
                out[v, r] += w0 * layers[b, i0 + 1, r] + w1 * layers[b, i0 + 2, r]


class FocalSeriesOperator(LinearOperator):
    """Linear forward model of a focal series and its exact adjoint.

    ``A x``: at each tilt every voxel (inside the disc inscribed in the slice) is projected,
    with Joseph's weights onto the detector columns (:mod:`reconstruction.engine.joseph`: line
    integrals, as mbir's; the face-on interpolation of the pixel-driven pair cost psf-mbir
    up to 2 dB), into the depth bin (``depth_step_um``
    thick, along the beam) holding its depth ``d = (z cos θ + x sin θ) · pixel``; each bin's
    partial projection ``(rows, columns)`` is convolved with the 2-D zone-plate PSF of its
    defocus from each focal plane (so neighbouring slices are coupled), and the bins are
    summed: ``Y_k = Σ_b PSF(d_b - f_k) ⊛ L_b``. ``Aᵀ`` reverses each step (the PSF is
    symmetric; zero padding makes the convolutions linear). It works on the whole slab of rows
    at once.

    Parameters
    ----------
    shape : (rows, thickness, columns)
        Volume shape.
    angles, focal_planes_um, pixel_size_um, zone_plate
        Geometry and optics.
    depth_step_um : float, optional
        Depth bin (default ``DOF / 4``, at least one pixel).
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        angles: Any,
        *,
        focal_planes_um: Any,
        pixel_size_um: float,
        zone_plate: ZonePlate,
        depth_step_um: float | None = None,
    ) -> None:
        n_r, n_z, n_c = (int(v) for v in shape)
        self.shape = (n_r, n_z, n_c)
        self.angles = np.asarray(angles, dtype=np.float64)
        self.n_tilts = self.angles.size
        self.planes = np.asarray(focal_planes_um, dtype=np.float64)
        p = float(pixel_size_um)
        step = zone_plate.depth_of_field_um / 4 if depth_step_um is None else float(depth_step_um)
        if not (np.isfinite(step) and step > 0):
            raise ValueError(f"depth step must be positive, got {depth_step_um!r}")
        step = max(step, p)
        zz = np.arange(n_z) - centre(n_z)
        xx = np.arange(n_c) - centre(n_c)
        radius = min(n_z, n_c) / 2.0
        z2, x2 = np.meshgrid(zz, xx, indexing="ij")
        self.disc = (z2**2 + x2**2) <= radius**2
        self.z = z2[self.disc].astype(np.float64)
        self.x = x2[self.disc].astype(np.float64)
        half_bins = int(np.ceil((radius + 1) * p / step + 0.5))
        self.centres = (np.arange(2 * half_bins + 1) - half_bins) * step
        self.half_bins = half_bins
        self.step = step
        self.pixel = p
        dmax = float(np.max(np.abs(self.centres[:, None] - self.planes[None, :])))
        self.hw = psf_half_width(zone_plate, dmax, p)
        self.fshape = (
            sfft.next_fast_len(n_r + self.hw),
            sfft.next_fast_len(n_c + self.hw, real=True),
        )
        h = np.empty((self.centres.size, self.planes.size, self.fshape[0], self.fshape[1] // 2 + 1), np.float32)
        for b, d in enumerate(self.centres):
            for k, f in enumerate(self.planes):
                h[b, k] = otf(zone_plate, float(d - f), p, self.fshape).real
        self.h = h
        # per tilt (1/W, 1/W², 1/W − 1/W²) of Joseph's weights, rows of a C array the kernels index
        cos, sin = np.cos(np.deg2rad(self.angles)), np.sin(np.deg2rad(self.angles))
        self.widths = np.ascontiguousarray(np.stack(joseph_widths(cos, sin), axis=1))
        self._splat = _splat_nb if numba is not None else _splat_np
        self._gather = _gather_nb if numba is not None else _gather_np

    def _geometry(self, tilt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each disc voxel's detector column and depth bin at one tilt, and the tilt's Joseph widths."""
        th = np.deg2rad(self.angles[tilt])
        c, s = np.cos(th), np.sin(th)
        n_c = self.shape[2]
        col = self.x * c - self.z * s + centre(n_c)
        depth = (self.z * c + self.x * s) * self.pixel
        bins = np.clip(np.rint(depth / self.step).astype(np.int64) + self.half_bins, 0, self.centres.size - 1)
        return col, bins, self.widths[tilt]

    def to_flat(self, volume: np.ndarray) -> np.ndarray:
        """``(rows, thickness, columns)`` -> ``(disc voxels, rows)`` float32."""
        return np.ascontiguousarray(np.asarray(volume, np.float32).transpose(1, 2, 0)[self.disc])

    def from_flat(self, flat: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`to_flat` (zero outside the disc)."""
        n_r, n_z, n_c = self.shape
        out = np.zeros((n_z, n_c, n_r), np.float32)
        out[self.disc] = flat
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def ones_volume(self) -> np.ndarray:
        return np.ones((self.z.size, self.shape[0]), np.float32)

    def ones_data(self, tilts: np.ndarray) -> np.ndarray:
        n_r, _, n_c = self.shape
        return np.ones((len(tilts), self.planes.size, n_r, n_c), np.float32)

    def forward(self, flat: np.ndarray, tilts: np.ndarray | None = None) -> np.ndarray:
        """``A x`` for the given tilts: ``(len(tilts), planes, rows, columns)`` float32."""
        tilts = np.arange(self.n_tilts) if tilts is None else tilts
        n_r, _, n_c = self.shape
        out = np.empty((len(tilts), self.planes.size, n_r, n_c), np.float32)
        for i, t in enumerate(tilts):
            col, bins, widths = self._geometry(t)
            layers = np.zeros((self.centres.size, n_c + 2, n_r), np.float32)
            self._splat(flat, col, bins, layers, widths)
            used = np.flatnonzero(np.any(layers, axis=(1, 2)))
            spec = sfft.rfft2(layers[used, 1:-1, :].transpose(0, 2, 1), s=self.fshape)
            acc = np.einsum("bkxy,bxy->kxy", self.h[used], spec.astype(np.complex64))
            out[i] = sfft.irfft2(acc, s=self.fshape, axes=(-2, -1))[:, :n_r, :n_c]
        return out

    def adjoint(self, data: np.ndarray, tilts: np.ndarray | None = None) -> np.ndarray:
        """``Aᵀ y`` for the given tilts' data ``(len(tilts), planes, rows, columns)``."""
        tilts = np.arange(self.n_tilts) if tilts is None else tilts
        n_r, _, n_c = self.shape
        out = np.zeros((self.z.size, n_r), np.float32)
        for i, t in enumerate(tilts):
            col, bins, widths = self._geometry(t)
            used = np.unique(bins)
            spec = sfft.rfft2(np.asarray(data[i], np.float32), s=self.fshape).astype(np.complex64)
            acc = np.einsum("bkxy,kxy->bxy", self.h[used], spec)
            img = sfft.irfft2(acc, s=self.fshape, axes=(-2, -1))[:, :n_r, :n_c]
            layers = np.zeros((self.centres.size, n_c + 2, n_r), np.float32)
            layers[used, 1:-1, :] = img.transpose(0, 2, 1)
            self._gather(layers, col, bins, out, widths)
        return out


def sirt_focal_series(
    projections: np.ndarray,
    angles: Any,
    *,
    focal_planes_um: Any,
    pixel_size_um: float,
    zone_plate: ZonePlate,
    iterations: int = 10,
    subsets: int = 10,
    relaxation: float = 1.0,
    nonnegative: bool = True,
    x0: np.ndarray | None = None,
    thickness: int | None = None,
    depth_step_um: float | None = None,
    callback: Any = None,
) -> np.ndarray:
    """Ordered-subsets SIRT with the depth-dependent zone-plate forward model.

    The engine's SIRT (:func:`reconstruction.engine.iterative.solve_sirt`) over
    :class:`FocalSeriesOperator`: ``x ← max(0, x + λ C Aᵀ R (y - A x))`` over interleaved
    subsets of the tilts, with ``R = 1 / A 1`` per subset and ``C = subsets / Aᵀ 1`` shared.
    Memory: the data twice (per-subset copies and ``R``), a few volumes.
    Started from ``x0`` (e.g. the focus-stack WBP) or zero. Line-integral units per pixel, like
    the other reconstructions; zero outside the disc inscribed in the slice.
    """
    proj, a, f = check_focal_series(projections, angles, focal_planes_um, pixel_size_um)
    n_t, _, n_r, n_c = proj.shape
    n_z = n_c if thickness is None else int(thickness)
    if int(iterations) != iterations or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    if not 0 < relaxation < 2:
        raise ValueError(f"relaxation must be in (0, 2), got {relaxation}")
    subsets = max(1, min(int(subsets), n_t))
    op = FocalSeriesOperator(
        (n_r, n_z, n_c),
        a,
        focal_planes_um=f,
        pixel_size_um=pixel_size_um,
        zone_plate=zone_plate,
        depth_step_um=depth_step_um,
    )
    x = op.to_flat(x0) if x0 is not None else np.zeros((op.z.size, n_r), np.float32)
    solve_sirt(
        [op] * int(iterations),
        np.asarray(proj, np.float32),
        x,
        subsets=subsets,
        relaxation=relaxation,
        nonnegative=nonnegative,
        shared_column_weights=True,
        callback=callback,
        progress=n_r,
    )
    return op.from_flat(x)


FOCAL_DEFAULTS = {"regularization": 3.0, "sirt_iterations": 5, "subsets": 10}
"""Defaults of :func:`reconstruct_focal_series`, chosen by measurement (bench/focus.py)."""


@dataclass(frozen=True)
class FocalOptions:
    """Settings of a focal-series reconstruction (:func:`reconstruct_focal_series`).

    ``focal_planes_um`` and ``pixel_size_um`` are required; the rest as documented there.
    """

    focal_planes_um: Any = None
    pixel_size_um: float | None = None
    zone_plate: ZonePlate | None = None
    filter_name: str = "ram-lak"
    blend: str = "nearest"
    wiener_snr: float | None = None
    noise_power: float | None = None
    regularization: float | None = None
    depth_step_um: float | None = None
    subsets: int | None = None
    nonnegative: bool = True


def refocus_depths(focal_planes_um: Any, depth_of_field_um: float, step_um: float | None = None) -> np.ndarray:
    """Evenly spaced depths from the first to the last focal plane, at most ``DOF / 2`` apart."""
    f = np.sort(np.asarray(focal_planes_um, dtype=np.float64))
    step = depth_of_field_um / 2 if step_um is None else float(step_um)
    if not (np.isfinite(step) and step > 0):
        raise ValueError(f"refocus step must be positive, got {step_um!r}")
    span = float(f[-1] - f[0])
    n = int(np.ceil(span / step - 1e-9)) + 1 if span > 0 else 1
    return np.linspace(f[0], f[-1], n) if n > 1 else f[:1].copy()


def reconstruct_focal_series(
    projections: np.ndarray,
    angles: Any,
    *,
    focal_planes_um: Any,
    pixel_size_um: float,
    method: str = "wbp",
    iterations: int | None = None,
    filter_name: str = "ram-lak",
    thickness: int | None = None,
    blend: str = "nearest",
    zone_plate: ZonePlate | None = None,
    wiener_snr: float | None = None,
    noise_power: float | None = None,
    regularization: float | None = None,
    depth_step_um: float | None = None,
    subsets: int | None = None,
    nonnegative: bool = True,
    slab_size: int | None = None,
    callback: Any = None,
) -> np.ndarray:
    """Reconstruct a focal series (focus-stack WBP, optionally deconvolved, or iterative).

    Parameters
    ----------
    projections : numpy.ndarray
        ``(tilts, focal planes, rows, columns)`` absorbances (one plane = a single-focus series).
    angles : array_like
        Tilt angles in degrees, one per tilt.
    focal_planes_um : array_like
        Position of each focal plane along the beam, µm from the tilt axis, positive towards the
        detector.
    pixel_size_um : float
        Pixel size at the sample, µm.
    method : {"wbp", "sirt"}
        ``"wbp"``: focus-stack weighted back-projection; with ``zone_plate`` the projections are
        first refocused by the noise-aware multi-plane Wiener filter (:func:`refocus`) to depths
        at most ``DOF / 2`` apart (``depth_step_um``), each voxel then reading the depth nearest
        its own. ``"sirt"``: that result refined by ordered-subsets SIRT with the
        depth-dependent zone-plate forward model (:func:`sirt_focal_series`, non-negative);
        needs ``zone_plate``.
    iterations : int, optional
        SIRT iterations (default ``FOCAL_DEFAULTS["sirt_iterations"]``); ``None`` for WBP.
    filter_name : str
        WBP filter, one of :data:`reconstruction.engine.wbp.FILTERS` (the engine's one ramp
        filter, :func:`reconstruction.engine.wbp.filter_projections`).
    thickness : int, optional
        Volume thickness in voxels (default the column count).
    blend : {"nearest", "linear"}
        Plane selection per voxel and tilt (see :func:`focus_stack_backproject`).
    zone_plate : ZonePlate, optional
        The objective: enables the deconvolution.
    wiener_snr : float, optional
        Instead of the noise-aware filter, a fixed-SNR in-focus Wiener filter per plane
        (:func:`wiener_deconvolve`; amplifies noise on noisy data, kept for comparison).
    noise_power, regularization : float, optional
        Passed to :func:`refocus` (default: noise estimated from the data; ``γ`` =
        ``FOCAL_DEFAULTS["regularization"]``).
    depth_step_um : float, optional
        Spacing of the refocused depths (default ``DOF / 2``).
    subsets, nonnegative
        SIRT settings.
    slab_size : int, optional
        Rows per slab of the back-projection's working set (default 64); the result does not
        depend on it. The projections are deconvolved, filtered and back-projected one tilt at a
        time (the deconvolution filter is designed once from the whole series), so besides the
        input and the volume only one tilt's refocused stack is held, never all of them.
    callback : callable, optional
        Progress: called with slice-units done, ``rows`` for the WBP (as the tilts are done) and
        ``rows`` more per SIRT iteration.

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, thickness, columns)`` in line-integral units per pixel (divide by the
        pixel size in µm for LAC in µm⁻¹).
    """
    if method not in ("wbp", "sirt"):
        raise ValueError(f"focal-series method must be 'wbp' or 'sirt', got {method!r}")
    if method == "wbp" and iterations is not None:
        raise ValueError("focus-stack WBP takes no iterations")
    if method == "sirt" and zone_plate is None:
        raise ValueError("the iterative focal-series method needs the zone_plate (its forward model)")
    if filter_name.lower().replace("_", "-") not in (*FILTERS, "ramp"):
        raise ValueError(f"unknown filter {filter_name!r}; choose one of {', '.join(FILTERS)}")
    if wiener_snr is not None and zone_plate is None:
        raise ValueError("Wiener deconvolution needs the zone_plate")
    if blend not in ("nearest", "linear"):
        raise ValueError(f"blend must be 'nearest' or 'linear', got {blend!r}")
    proj, a, f = check_focal_series(projections, angles, focal_planes_um, pixel_size_um)
    _, _, n_r, n_c = proj.shape
    nz = n_c if thickness is None else int(thickness)
    if nz < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness!r}")
    rows_per_chunk = 64 if slab_size is None else int(slab_size)
    if rows_per_chunk < 1:
        raise ValueError(f"slab_size must be a positive number of slices, got {slab_size!r}")
    planes = f
    if zone_plate is not None and wiener_snr is not None:
        if not (wiener_snr > 0):
            raise ValueError(f"Wiener SNR must be positive, got {wiener_snr!r}")
        deconvolve = _WienerFilter(zone_plate, pixel_size_um, (n_r, n_c), 0.0, float(wiener_snr))
    elif zone_plate is not None:
        gamma = FOCAL_DEFAULTS["regularization"] if regularization is None else regularization
        planes = refocus_depths(f, zone_plate.depth_of_field_um, depth_step_um)
        deconvolve = _RefocusFilter(proj, a, f, pixel_size_um, zone_plate, planes, noise_power, gamma)
    else:
        deconvolve = None

    def tilt_data(it: int) -> np.ndarray:
        image = proj[it] if deconvolve is None else deconvolve(proj[it])
        return filter_projections(image, filter_name, workers=1)  # one small tilt at a time: threads cost more

    # each tilt's real angular interval (not scaled to a half turn: see angle_weights)
    weights = angle_weights(a, half_turn=False)
    volume = _backproject_stream(
        tilt_data,
        a,
        planes,
        (n_r, nz, n_c),
        pixel_size_um=pixel_size_um,
        weights=weights,
        blend=blend,
        rows_per_chunk=rows_per_chunk,
        voxels_per_block=16384,
        callback=callback,
    )
    if method == "wbp":
        return volume
    return sirt_focal_series(
        projections,
        a,
        focal_planes_um=f,
        pixel_size_um=pixel_size_um,
        zone_plate=zone_plate,
        iterations=FOCAL_DEFAULTS["sirt_iterations"] if iterations is None else iterations,
        subsets=FOCAL_DEFAULTS["subsets"] if subsets is None else subsets,
        nonnegative=nonnegative,
        x0=volume,
        thickness=thickness,
        callback=callback,
    )


PSF_DEFAULTS = {"iterations": 5, "subsets": 10, "slab_size": 32}
"""Defaults of :func:`psf_sirt` (iterations and subsets of the focal-series SIRT, measured in docs/engine.md)."""


@dataclass(frozen=True)
class PSFOptions:
    """Settings of the PSF-aware reconstruction of a single-focus series (:func:`psf_sirt`).

    ``pixel_size_um`` and ``zone_plate`` are required; ``focal_plane_um`` is where the series was
    focused (µm along the beam from the tilt axis, positive towards the detector).
    """

    pixel_size_um: float | None = None
    zone_plate: ZonePlate | None = None
    focal_plane_um: float = 0.0
    iterations: int | None = None
    subsets: int | None = None
    relaxation: float = 1.0
    nonnegative: bool = True
    depth_step_um: float | None = None
    noise_power: float | None = None


def _check_single_focus(
    projections: np.ndarray, angles: Any, pixel_size_um: float, zone_plate: Any, focal_plane_um: float
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The inputs every PSF-aware method of a single-focus series checks: ``(proj, angles, pixel, focal plane)``."""
    proj = check_projections(projections)
    a = check_angles(angles, proj.shape[0])
    px = check_pixel_size(pixel_size_um)
    if not isinstance(zone_plate, ZonePlate):
        raise ValueError("the PSF-aware method needs the zone plate (zone_plate=ZonePlate(...)) as its forward model")
    f = float(focal_plane_um)
    if not np.isfinite(f):
        raise ValueError(f"focal plane must be a finite position in µm, got {focal_plane_um!r}")
    return proj, a, px, f


def _refocused_start(series, a, f, px, zone_plate, noise_power, n_z, step, callback) -> np.ndarray:
    """The starting volume of the PSF-aware methods: the noise-aware refocused focus-stack WBP of one plane."""
    return reconstruct_focal_series(
        series,
        a,
        focal_planes_um=[f],
        pixel_size_um=px,
        zone_plate=zone_plate,
        noise_power=noise_power,
        thickness=n_z,
        slab_size=min(step, 64),
        callback=callback,
    )


def _slab_margin(zone_plate: ZonePlate, n_z: int, n_c: int, px: float, f: float) -> int:
    """Rows reconstructed and dropped on each side of a slab: the PSF's half width at the slice's largest defocus."""
    radius_um = 0.5 * float(np.hypot(n_z, n_c)) * px
    return psf_half_width(zone_plate, radius_um + abs(f), px)


def _slab_and_thickness(defaults: dict, slab_size: int | None, thickness: int | None, columns: int) -> tuple[int, int]:
    """Rows per slab and the volume's thickness of a PSF-aware method, checked."""
    step = defaults["slab_size"] if slab_size is None else int(slab_size)
    if step < 1:
        raise ValueError(f"slab_size must be a positive number of slices, got {slab_size!r}")
    n_z = columns if thickness is None else int(thickness)
    if n_z < 1:
        raise ValueError(f"thickness must be >= 1, got {thickness!r}")
    return step, n_z


def psf_sirt(
    projections: np.ndarray,
    angles: Any,
    *,
    pixel_size_um: float,
    zone_plate: ZonePlate,
    focal_plane_um: float = 0.0,
    iterations: int | None = None,
    subsets: int | None = None,
    relaxation: float = 1.0,
    nonnegative: bool = True,
    depth_step_um: float | None = None,
    noise_power: float | None = None,
    thickness: int | None = None,
    slab_size: int | None = None,
    callback: Any = None,
) -> np.ndarray:
    """PSF-aware SIRT of a single-focus tilt series, in overlapping slabs of rows.

    The engine's SIRT (:func:`reconstruction.engine.iterative.solve_sirt`) over the depth-of-focus
    forward model (:class:`FocalSeriesOperator` with one focal plane: each depth of the slice
    blurred by the zone plate's PSF at its defocus), started from the noise-aware refocused
    focus-stack WBP (:func:`reconstruct_focal_series` with the zone plate). The 3-D PSF couples
    neighbouring rows, so the rows are reconstructed ``slab_size`` at a time, each slab with a
    margin of the PSF's half width (at the largest defocus in the slice) on both sides that is
    reconstructed and dropped: memory is bounded by the slab, and the margin keeps the slab
    edges from showing.

    Parameters
    ----------
    projections : numpy.ndarray
        ``(tilts, rows, columns)`` absorbances of one focal plane.
    angles : array_like
        Degrees, strictly monotonic.
    pixel_size_um, zone_plate, focal_plane_um
        The pixel at the sample (µm), the objective, and the focal plane (µm along the beam).
    iterations, subsets, relaxation, nonnegative
        SIRT settings (defaults :data:`PSF_DEFAULTS`; non-negative).
    depth_step_um : float, optional
        Depth bins of the forward model (default ``DOF / 4``).
    noise_power : float, optional
        Per-pixel noise variance for the starting WBP's refocusing (estimated by default).
    thickness : int, optional
        Volume thickness in voxels (default the column count).
    slab_size : int, optional
        Rows per slab, without the margins (default ``PSF_DEFAULTS["slab_size"]``).
    callback : callable, optional
        Progress in slice-units: ``rows`` for the starting WBP, ``rows`` more per iteration.

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, thickness, columns)`` in line-integral units per pixel.
    """
    proj, a, px, f = _check_single_focus(projections, angles, pixel_size_um, zone_plate, focal_plane_um)
    n_iter = PSF_DEFAULTS["iterations"] if iterations is None else iterations
    if int(n_iter) != n_iter or n_iter < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    n_t, n_r, n_c = proj.shape
    step, n_z = _slab_and_thickness(PSF_DEFAULTS, slab_size, thickness, n_c)
    series = proj[:, None]  # (tilts, 1 plane, rows, columns), a view
    start = _refocused_start(series, a, f, px, zone_plate, noise_power, n_z, step, callback)
    margin = _slab_margin(zone_plate, n_z, n_c, px, f)
    out = np.empty((n_r, n_z, n_c), np.float32)
    for r0, r1 in iter_slabs(n_r, step):
        lo, hi = max(0, r0 - margin), min(n_r, r1 + margin)
        done = r1 - r0
        vol = sirt_focal_series(
            series[:, :, lo:hi],
            a,
            focal_planes_um=[f],
            pixel_size_um=px,
            zone_plate=zone_plate,
            iterations=int(n_iter),
            subsets=PSF_DEFAULTS["subsets"] if subsets is None else subsets,
            relaxation=relaxation,
            nonnegative=nonnegative,
            x0=start[lo:hi],
            thickness=n_z,
            depth_step_um=depth_step_um,
            callback=None if callback is None else (lambda _rows, k=done: callback(k)),
        )
        out[r0:r1] = vol[r0 - lo : r1 - lo]
    return out


PSF_MBIR_DEFAULTS = {"iterations": 30, "strength": 0.3, "subsets": 8, "slab_size": 32}
"""Defaults of :func:`psf_mbir`: mbir's most passes and subsets, psf-sirt's slab of rows, and a strength
measured on the thick cell of ``bench.psf_gain`` (20 nm pixels, 3.2 DOF): far from focus 0.2–0.3 was best
both clean at 180° and at ±65° with 10⁴ photons (29.9 and 26.8 dB against 28.9 and 24.7 at mbir's 1; in
focus 0.3 against 1: +1.5 and +0.8 dB). The deblurring data term leaves the prior more to do than mbir's."""


@dataclass(frozen=True)
class PSFMBIROptions:
    """Settings of the PSF-aware regularised reconstruction of a single-focus series (:func:`psf_mbir`).

    ``pixel_size_um`` and ``zone_plate`` are required; ``focal_plane_um`` as in :class:`PSFOptions`;
    ``strength``, ``weight`` and ``photons`` as in :class:`~reconstruction.engine.mbir.MBIROptions`.
    """

    pixel_size_um: float | None = None
    zone_plate: ZonePlate | None = None
    focal_plane_um: float = 0.0
    iterations: int | None = None
    strength: float | None = None
    weight: float | None = None
    photons: float | None = None
    subsets: int | None = None
    depth_step_um: float | None = None
    noise_power: float | None = None


class _DiscPrior:
    """mbir's 8-neighbour Huber prior per slice, on the unknowns ``(disc voxels, rows)`` of
    :class:`FocalSeriesOperator`: the pairs inside the disc only (outside it nothing is unknown)."""

    def __init__(self, disc: np.ndarray, delta: float) -> None:
        self.disc = disc
        self.delta = float(delta)

    def __call__(self, flat: np.ndarray) -> np.ndarray:
        grid = np.zeros((*self.disc.shape, flat.shape[1]), np.float32)
        grid[self.disc] = flat
        return _huber_grad(grid, self.delta, support=self.disc)[self.disc]


def psf_mbir(
    projections: np.ndarray,
    angles: Any,
    *,
    pixel_size_um: float,
    zone_plate: ZonePlate,
    focal_plane_um: float = 0.0,
    iterations: int | None = None,
    strength: float | None = None,
    weight: float | None = None,
    photons: float | None = None,
    subsets: int | None = None,
    depth_step_um: float | None = None,
    noise_power: float | None = None,
    thickness: int | None = None,
    slab_size: int | None = None,
    callback: Any = None,
) -> np.ndarray:
    """PSF-aware regularised reconstruction of a single-focus tilt series, in overlapping slabs of rows.

    mbir's objective and solver (:func:`reconstruction.engine.mbir.solve_os_sqs`: noise-weighted
    least squares plus the 8-neighbour Huber prior in each slice, ``x ≥ 0``, OS-SQS with
    Nesterov momentum, each slice stopped once a pass changes it by less than 0.2%) over the
    depth-of-focus forward model of :func:`psf_sirt` (:class:`FocalSeriesOperator` with one focal
    plane), started from the same refocused focus-stack WBP and run in the same slabs of rows
    with a margin of the PSF's half width. Data-driven defaults as mbir's: σ from the projections
    (at least mbir's model-error floor), contrast = 99th percentile of the starting volume,
    ``λ = regularisation_weight(contrast, strength)``, ``δ = contrast / 100``.

    Parameters
    ----------
    projections : numpy.ndarray
        ``(tilts, rows, columns)`` absorbances of one focal plane.
    angles : array_like
        Degrees, strictly monotonic.
    pixel_size_um, zone_plate, focal_plane_um
        The pixel at the sample (µm), the objective, and the focal plane (µm along the beam).
    iterations : int, optional
        Passes over all tilts. Default: until a pass changes a slice by less than 0.2% (at most
        ``PSF_MBIR_DEFAULTS["iterations"]``); a number given runs exactly that many.
    strength : float, optional
        Multiplies the data-driven regularisation weight (default
        ``PSF_MBIR_DEFAULTS["strength"]``, 0.3; larger = smoother).
    weight, photons, subsets
        As in :func:`reconstruction.engine.mbir.mbir`.
    depth_step_um, noise_power
        As in :func:`psf_sirt`.
    thickness : int, optional
        Volume thickness in voxels (default the column count).
    slab_size : int, optional
        Rows per slab, without the margins (default ``PSF_MBIR_DEFAULTS["slab_size"]``).
    callback : callable, optional
        Progress in slice-units: ``rows`` for the starting WBP, ``rows`` more per pass (in all
        ``rows * (iterations + 1)``).

    Returns
    -------
    numpy.ndarray
        float32 ``(rows, thickness, columns)`` in line-integral units per pixel, zero outside the
        disc inscribed in the slice.
    """
    proj, a, px, f = _check_single_focus(projections, angles, pixel_size_um, zone_plate, focal_plane_um)
    n_iter, tol, k, n_sub = regularised_options(
        PSF_MBIR_DEFAULTS, iterations=iterations, strength=strength, weight=weight, photons=photons, subsets=subsets
    )
    n_t, n_r, n_c = proj.shape
    step, n_z = _slab_and_thickness(PSF_MBIR_DEFAULTS, slab_size, thickness, n_c)
    series = proj[:, None]  # (tilts, 1 plane, rows, columns), a view
    start = _refocused_start(series, a, f, px, zone_plate, noise_power, n_z, step, callback)
    sigma, lam, delta = prior_from_data(proj, start, strength=k, weight=weight)
    # at least ~12 tilts per subset, as mbir (smaller subsets destabilise the momentum)
    groups = tilt_subsets(n_t, min(n_sub, max(1, n_t // 12)))
    margin = _slab_margin(zone_plate, n_z, n_c, px, f)
    out = np.empty((n_r, n_z, n_c), np.float32)
    for r0, r1 in iter_slabs(n_r, step):
        lo, hi = max(0, r0 - margin), min(n_r, r1 + margin)
        op = FocalSeriesOperator(
            (hi - lo, n_z, n_c),
            a,
            focal_planes_um=[f],
            pixel_size_um=px,
            zone_plate=zone_plate,
            depth_step_um=depth_step_um,
        )
        b = np.ascontiguousarray(series[:, :, lo:hi], dtype=np.float32)
        if photons is not None:
            w = poisson_weights(b, photons)
            ws = [np.ascontiguousarray(w[g]) for g in groups]
        else:  # one number broadcast over the data: no data-sized array of weights
            ws = [np.full((1, 1, 1, 1), 1.0 / sigma**2, np.float32)] * len(groups)
        bs = [np.ascontiguousarray(b[g]) for g in groups]
        del b
        x = solve_os_sqs(
            op,
            groups,
            bs,
            ws,
            op.to_flat(start[lo:hi]),
            prior_weight=lam,
            prior_gradient=_DiscPrior(op.disc, delta),
            iterations=n_iter,
            tolerance=tol,
            callback=callback,
            progress=r1 - r0,  # the margins are reconstructed and dropped: progress counts the slab
        )
        out[r0:r1] = op.from_flat(x)[r0 - lo : r1 - lo]
    return out


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
    a = np.deg2rad(check_angles(angles, monotonic=False))
    if thickness < 1 or columns < 1:
        raise ValueError(f"slice size must be positive, got {thickness}x{columns}")
    zz = (np.arange(thickness) - centre(thickness))[:, None] * float(pixel_size_um)
    xx = (np.arange(columns) - centre(columns))[None, :] * float(pixel_size_um)
    acc = np.zeros((thickness, columns))
    for th in a:
        acc += np.abs(zz * np.cos(th) + xx * np.sin(th) - focal_plane_um)
    return acc / a.size
