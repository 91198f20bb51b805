"""PSF-aware iterative reconstruction of single-focus series (depth of focus in the forward model).

A soft X-ray objective's depth of field (about 1 µm at 520 eV and 25 nm zones) is shorter than a
thick cell: voxels far from the focal plane are seen blurred. This method fits the volume to the
data through the depth-dependent zone-plate forward model
(:class:`reconstruction.engine.focus.FocalSeriesOperator` with one focal plane: each voxel's
projection is blurred by the PSF of its own defocus), with ordered subsets, non-negativity and the
same edge-preserving Huber prior and data-driven weight as :func:`reconstruction.engine.mbir.mbir`.

The 3-D PSF couples neighbouring rows, so the volume is made in slabs of rows that overlap by the
PSF's reach (``halo`` rows each side, computed from the optics): each slab is reconstructed with
its halo and only its core kept, so memory is bounded by the slab, not the volume. Measured far
from focus it beats every single-focus method without the PSF (docs/engine.md).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.focus import FocalSeriesOperator
from reconstruction.engine.mbir import _huber_grad, regularisation_weight
from reconstruction.engine.mbir import MBIR_DEFAULTS as _MB
from reconstruction.engine.noise import estimate_noise_sigma
from reconstruction.engine.psf import ZonePlate, psf_half_width
from reconstruction.engine.validate import check_series
from reconstruction.engine.wbp import wbp

__all__ = ["PSF_DEFAULTS", "psf_halo", "reconstruct_psf"]

#: Defaults (measured, docs/engine.md): iterations, ordered subsets, rows per slab core.
PSF_DEFAULTS = {"iterations": 8, "subsets": 10, "slab_rows": 32, "strength": 1.0}


def psf_halo(zone_plate: ZonePlate, pixel_size_um: float, thickness: int, columns: int, focal_plane_um: float) -> int:
    """Rows each slab must extend beyond its core: the PSF's reach at the largest defocus."""
    radius = min(thickness, columns) / 2.0 + 1
    dmax = radius * float(pixel_size_um) + abs(float(focal_plane_um))
    return psf_half_width(zone_plate, dmax, pixel_size_um)


def reconstruct_psf(
    projections: ArrayLike,
    angles: ArrayLike,
    *,
    zone_plate: ZonePlate,
    pixel_size_um: float,
    focal_plane_um: float = 0.0,
    iterations: int | None = None,
    strength: float | None = None,
    subsets: int | None = None,
    thickness: int | None = None,
    slab_size: int | None = None,
    callback: Callable[[int], None] | None = None,
) -> NDArray[np.float32]:
    """PSF-aware, regularised, non-negative reconstruction of a single-focus tilt series.

    Parameters
    ----------
    projections : array_like, shape (tilts, rows, columns)
        Absorbance.
    angles : array_like
        Tilt angles in degrees.
    zone_plate : ZonePlate
        The objective (its depth-dependent PSF is the forward model).
    pixel_size_um : float
        Pixel size at the sample.
    focal_plane_um : float
        Focal plane along the beam, µm from the tilt axis (0: focused on the axis).
    iterations, subsets : int, optional
        Passes over the tilts (default 8) and ordered subsets (default 10).
    strength : float, optional
        Multiplies the data-driven prior weight (as in mbir; 0 switches the prior off).
    thickness : int, optional
        Volume thickness (default the column count).
    slab_size : int, optional
        Core rows per slab (default 32); slabs overlap by the PSF's reach.
    callback : callable, optional
        Progress in slice-units: ``rows`` for the starting WBP, then ``rows`` per iteration.

    Returns
    -------
    ndarray, float32, shape (rows, thickness, columns)
        Per voxel length, zero outside the disc inscribed in each slice.
    """
    if not isinstance(zone_plate, ZonePlate):
        raise ValueError("the PSF-aware method needs the zone plate (energy, outer zone width, zones)")
    if not (np.isfinite(pixel_size_um) and pixel_size_um > 0):
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um!r}")
    n_iter = PSF_DEFAULTS["iterations"] if iterations is None else iterations
    if int(n_iter) != n_iter or n_iter < 0:
        raise ValueError(f"iterations must be a non-negative integer, got {iterations}")
    n_iter = int(n_iter)
    k = PSF_DEFAULTS["strength"] if strength is None else float(strength)
    if not np.isfinite(k) or k < 0:
        raise ValueError(f"strength must be a non-negative number, got {strength}")
    core = PSF_DEFAULTS["slab_rows"] if slab_size is None else int(slab_size)
    if core < 1:
        raise ValueError(f"slab_size must be a positive number of slices, got {slab_size}")
    p, a = check_series(projections, angles)
    nt, nr, nc = p.shape
    nz = nc if thickness is None else int(thickness)
    if nz < 1:
        raise ValueError(f"thickness must be positive, got {thickness}")
    n_sub = max(1, min(PSF_DEFAULTS["subsets"] if subsets is None else int(subsets), nt))

    out = wbp(p, a, thickness=nz)  # start: the wedge-corrected WBP
    if callback is not None:
        callback(nr)
    top = float(np.percentile(np.abs(p[:: max(1, nt // 32)]), 99))
    from reconstruction.engine.mbir import _MODEL_ERROR

    sigma = max(estimate_noise_sigma(p), _MODEL_ERROR * top, 1e-12)
    contrast = float(np.percentile(np.abs(out[:: max(1, nr // 16)]), 99))
    lam = regularisation_weight(contrast, k)
    delta = float(_MB["delta"] * max(contrast, 1e-12))
    halo = psf_halo(zone_plate, pixel_size_um, nz, nc, focal_plane_um)
    groups = [np.arange(s, nt, n_sub) for s in range(n_sub)]
    ops: dict[int, FocalSeriesOperator] = {}
    result = np.zeros_like(out)

    for c0 in range(0, nr, core):
        c1 = min(nr, c0 + core)
        r0, r1 = max(0, c0 - halo), min(nr, c1 + halo)
        n = r1 - r0
        op = ops.get(n)
        if op is None:
            op = FocalSeriesOperator(
                (n, nz, nc), a, focal_planes_um=[focal_plane_um], pixel_size_um=pixel_size_um, zone_plate=zone_plate
            )
            ops = {n: op}  # at most the two slab heights of a volume; keep the latest
        y = p[:, None, r0:r1, :]
        ones = np.ones((op.z.size, n), np.float32)
        row_inv = []
        back = np.zeros((op.z.size, n), np.float32)
        for g in groups:
            fwd = op.forward(ones, g)
            row_inv.append(np.where(fwd > 1e-6 * fwd.max(), 1.0 / np.maximum(fwd, 1e-30), 0.0).astype(np.float32))
            back += op.adjoint(np.ones((g.size, 1, n, nc), np.float32), g)
        # the prior in the data's metric: λ σ² times the mean inverse ray length
        beta = np.float32(lam * sigma**2 * float(np.mean([r[r > 0].mean() for r in row_inv])))
        denom = np.where(back > 1e-6 * back.max(), 1.0 / np.maximum(back + 8 * beta, 1e-30), 0.0).astype(np.float32)
        del back
        x = op.to_flat(out[r0:r1])
        np.maximum(x, 0, out=x)
        mask = op.disc
        for _ in range(n_iter):
            for g, ri in zip(groups, row_inv, strict=True):
                res = (y[g] - op.forward(x, g)) * ri
                upd = len(groups) * op.adjoint(res, g)
                if beta > 0:
                    vol = np.zeros((nz, nc, n), np.float32)
                    vol[mask] = x
                    upd -= beta * _huber_grad(vol, delta)[mask]
                x += denom * upd
                np.maximum(x, 0, out=x)
            if callback is not None:
                callback(c1 - c0)
        result[c0:c1] = op.from_flat(x)[c0 - r0 : c0 - r0 + (c1 - c0)]
    return result
