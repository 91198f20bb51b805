"""Forward model of a soft X-ray tilt series: projection, depth-of-focus blur, noise, misalignment.

Geometry (the engine's conventions): a volume is ``(rows, thickness, columns)``; at tilt angle
``θ`` (degrees, 0 = beam along the thickness axis) the voxel at thickness offset ``z`` and column
offset ``x`` (pixels from the slice's geometric centre ``(n − 1) / 2``) lands on detector column
``t = x cos θ - z sin θ`` from the detector centre ``(columns − 1) / 2`` (ASTRA's parallel-beam
line integrals; scikit-image's ``radon`` for odd sizes) at depth
``d = z cos θ + x sin θ`` along the beam. Positive ``d`` is towards the detector; focal-plane
positions are given on the same axis, in µm from the tilt axis.

Projections are absorbances ``-ln(I / I0) = ∫ μ dl``: the volume's LAC (µm⁻¹) summed along the
ray times the pixel size (µm). With ``pixel_size_um=1`` they are plain pixel sums, as ``radon``.

Depth of focus: the volume is resampled on a (depth, column) grid for each tilt, the depth axis
is cut into bins of ``depth_step_um`` (default one eighth of the depth of field), each bin's
partial projection is convolved with the zone-plate PSF for its own defocus (bin centre minus the
focal plane) and the blurred partial projections are summed. So each depth is blurred by the PSF
of its distance from the focal plane, not the whole projection once.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import fft as sfft
from scipy import ndimage

from .phantoms import cell_phantom, shepp_logan_3d
from .projectors import centre
from .psf import ZonePlate, otf, psf_half_width
from .validate import check_angles

__all__ = [
    "SimulatedSeries",
    "add_noise",
    "misalign",
    "project",
    "register_cli",
    "simulate_tilt_series",
    "tilt_angles",
]


def tilt_angles(max_angle: float = 65.0, step: float = 1.0, min_angle: float | None = None) -> np.ndarray:
    """Angles from ``min_angle`` (default ``-max_angle``) to ``max_angle`` inclusive, degrees."""
    lo = -max_angle if min_angle is None else min_angle
    if step <= 0 or not np.isfinite(step):
        raise ValueError(f"angle step must be positive, got {step!r}")
    if max_angle <= lo:
        raise ValueError(f"max angle {max_angle} must exceed min angle {lo}")
    n = int(math.floor((max_angle - lo) / step + 1e-9)) + 1
    return lo + step * np.arange(n, dtype=np.float64)


def _support_radius(volume: np.ndarray) -> float:
    """Radius (pixels, from the slice centre) of the smallest disc holding the non-zero voxels."""
    _, nz, nx = volume.shape
    occupied = np.any(volume != 0, axis=0)
    if not occupied.any():
        return 1.0
    zi, xi = np.nonzero(occupied)
    r2 = (zi - centre(nz)) ** 2 + (xi - centre(nx)) ** 2
    return float(np.sqrt(r2.max())) + 1.5


class _BeamResampler:
    """Resample a volume on (rows, depth along the beam, detector column) grids, one per tilt.

    Bilinear in the slice plane, the rows being the innermost (vectorised) axis; the same
    interpolation as scikit-image's ``radon`` (zero outside the volume). Only points inside the
    disc holding the volume's non-zero voxels are computed.
    """

    def __init__(self, volume: np.ndarray, depth: int, radius: float) -> None:
        ny, nz, nx = volume.shape
        self.shape = (ny, nz, nx)
        self.depth = depth
        # (nz + 1) x (nx + 1) grid of row-vectors with a zero border for out-of-range samples
        padded = np.zeros((nz + 1, nx + 1, ny), dtype=np.float32)
        padded[:nz, :nx] = np.transpose(volume, (1, 2, 0))
        self.flat = padded.reshape(-1, ny)
        dd = np.arange(depth) - depth // 2  # depth is odd: samples centred on the tilt axis
        tt = np.arange(nx) - centre(nx)
        d2, t2 = np.meshgrid(dd, tt, indexing="ij")
        keep = d2**2 + t2**2 <= (radius + 1.5) ** 2
        self.index = np.flatnonzero(keep)
        self.d = d2.ravel()[self.index].astype(np.float64)
        self.t = t2.ravel()[self.index].astype(np.float64)

    def __call__(self, theta_deg: float) -> np.ndarray:
        ny, nz, nx = self.shape
        th = np.deg2rad(theta_deg)
        c, s = np.cos(th), np.sin(th)
        z = centre(nz) + self.d * c - self.t * s
        x = centre(nx) + self.d * s + self.t * c
        z0 = np.floor(z).astype(np.int64)
        x0 = np.floor(x).astype(np.int64)
        wz = (z - z0).astype(np.float32)[:, None]
        wx = (x - x0).astype(np.float32)[:, None]
        stride = nx + 1
        zero = nz * stride + nx

        def idx(zi: np.ndarray, xi: np.ndarray) -> np.ndarray:
            ok = (zi >= 0) & (zi < nz) & (xi >= 0) & (xi < nx)
            return np.where(ok, zi * stride + xi, zero)

        f = self.flat
        val = (f[idx(z0, x0)] * (1 - wx) + f[idx(z0, x0 + 1)] * wx) * (1 - wz) + (
            f[idx(z0 + 1, x0)] * (1 - wx) + f[idx(z0 + 1, x0 + 1)] * wx
        ) * wz
        out = np.zeros((self.depth * nx, ny), dtype=np.float32)
        out[self.index] = val
        return out.reshape(self.depth, nx, ny).transpose(2, 0, 1)


def project(
    volume: np.ndarray,
    angles: Any,
    pixel_size_um: float = 1.0,
    *,
    zone_plate: ZonePlate | None = None,
    focal_planes_um: Any = None,
    depth_step_um: float | None = None,
) -> np.ndarray:
    """Project a volume to a tilt series, optionally with depth-dependent zone-plate blur.

    Parameters
    ----------
    volume : numpy.ndarray
        ``(rows, thickness, columns)``, LAC in µm⁻¹ (or any unit with ``pixel_size_um=1``).
    angles : array_like
        Tilt angles in degrees.
    pixel_size_um : float
        Voxel size in µm; projections are ``∑ μ · pixel_size_um``.
    zone_plate : ZonePlate, optional
        Objective whose depth-of-focus blur to apply. Without it the projections are ideal.
    focal_planes_um : float or sequence of float, optional
        Focal-plane positions along the beam, µm from the tilt axis, positive towards the
        detector. A sequence gives a focal series; default a single plane at 0.
    depth_step_um : float, optional
        Depth bin for the blur model (default ``DOF / 8``, at least one pixel).

    Returns
    -------
    numpy.ndarray
        float32 ``(tilts, rows, columns)`` when ``focal_planes_um`` is a scalar or ``None``,
        ``(tilts, planes, rows, columns)`` when it is a sequence.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3 or min(vol.shape) < 1:
        raise ValueError(f"volume must be 3-D (rows, thickness, columns), got shape {vol.shape}")
    if not np.all(np.isfinite(vol)):
        raise ValueError("volume contains NaN or infinite values")
    a = check_angles(angles, monotonic=False)
    if not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um!r}")
    series = focal_planes_um is not None and np.ndim(focal_planes_um) == 1
    planes = np.atleast_1d(np.asarray(0.0 if focal_planes_um is None else focal_planes_um, float))
    if planes.ndim != 1 or planes.size == 0 or not np.all(np.isfinite(planes)):
        raise ValueError("focal_planes_um must be a finite number or a non-empty 1-D sequence")
    vol = vol.astype(np.float32, copy=False)
    ny, _, nx = vol.shape
    p = float(pixel_size_um)
    radius = _support_radius(vol)
    depth = 2 * int(math.ceil(radius)) + 1
    out = np.zeros((a.size, planes.size, ny, nx), dtype=np.float32)
    resample = _BeamResampler(vol, depth, radius)

    if zone_plate is None:
        for i, th in enumerate(a):
            out[i, :] = resample(th).sum(axis=1, dtype=np.float64) * p
        return out if series else out[:, 0]

    step = depth_step_um if depth_step_um is not None else zone_plate.depth_of_field_um / 8
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"depth step must be positive, got {depth_step_um!r}")
    step_px = max(1, int(round(step / p)))
    d_um = (np.arange(depth) - depth // 2) * p
    # bins centred on depth 0 so that a focal plane at the tilt axis falls in a bin's centre
    start = depth // 2 - step_px // 2
    edges = sorted({0, *range(start % step_px, depth, step_px)})
    if edges[0] != 0:
        edges = [0, *edges]
    bounds = [*edges, depth]
    centres = np.array([d_um[lo:hi].mean() for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)])
    max_defocus = float(np.max(np.abs(centres[:, None] - planes[None, :])))
    hw = psf_half_width(zone_plate, max_defocus, p)
    shape = (sfft.next_fast_len(ny + 2 * hw), sfft.next_fast_len(nx + 2 * hw, real=True))
    otfs: dict[tuple[int, int], np.ndarray] = {}

    def transfer(b: int, k: int) -> np.ndarray:
        key = (b, k)
        if key not in otfs:
            otfs[key] = otf(zone_plate, float(centres[b] - planes[k]), p, shape).astype(np.complex64)
        return otfs[key]

    for i, th in enumerate(a):
        rot = resample(th)
        layers = np.add.reduceat(rot, edges, axis=1, dtype=np.float64) * p  # (ny, bins, nx)
        acc = np.zeros((planes.size, shape[0], shape[1] // 2 + 1), dtype=np.complex64)
        for b in range(layers.shape[1]):
            layer = layers[:, b, :]
            if not np.any(layer):
                continue
            spec = sfft.rfft2(layer, s=shape).astype(np.complex64)
            for k in range(planes.size):
                acc[k] += transfer(b, k) * spec
        blurred = sfft.irfft2(acc, s=shape, axes=(-2, -1))
        out[i] = blurred[:, :ny, :nx]
    return out if series else out[:, 0]


def add_noise(
    projections: np.ndarray,
    *,
    photons: float | None = None,
    sigma: float | None = None,
    seed: int | np.random.Generator | None = 0,
) -> np.ndarray:
    """Detector noise on absorbance projections.

    Parameters
    ----------
    projections : numpy.ndarray
        Absorbances ``-ln(I / I0)``, any shape.
    photons : float, optional
        Incident photons per pixel ``I0``: counts are drawn as ``Poisson(I0 exp(-p))`` (at least
        one count) and turned back into absorbance.
    sigma : float, optional
        Standard deviation of additional Gaussian noise on the absorbance.
    seed : int or numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        float32 noisy absorbances, same shape.
    """
    proj = np.asarray(projections, dtype=np.float64)
    if photons is not None and not (photons > 0):
        raise ValueError(f"photon count must be positive, got {photons!r}")
    if sigma is not None and not (sigma >= 0):
        raise ValueError(f"noise sigma must be >= 0, got {sigma!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    out = proj
    if photons is not None:
        counts = rng.poisson(photons * np.exp(-proj))
        out = -np.log(np.maximum(counts, 1) / photons)
    if sigma:
        out = out + rng.normal(0.0, sigma, size=out.shape)
    return out.astype(np.float32)


def misalign(
    projections: np.ndarray,
    max_shift_px: float,
    *,
    seed: int | np.random.Generator | None = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Shift each projection by a random (row, column) translation.

    The same shift applies to every focal plane of a tilt in a 4-D series.

    Returns
    -------
    shifted : numpy.ndarray
        float32, same shape as ``projections``.
    shifts : numpy.ndarray
        ``(tilts, 2)`` applied (row, column) shifts in pixels, uniform in ``±max_shift_px``.
    """
    proj = np.asarray(projections, dtype=np.float32)
    if proj.ndim not in (3, 4):
        raise ValueError(f"projections must be 3-D or 4-D, got shape {proj.shape}")
    if not (max_shift_px >= 0):
        raise ValueError(f"max shift must be >= 0, got {max_shift_px!r}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    shifts = rng.uniform(-max_shift_px, max_shift_px, size=(proj.shape[0], 2))
    out = np.empty_like(proj)
    for i in range(proj.shape[0]):
        shift = (0.0, *shifts[i]) if proj.ndim == 4 else tuple(shifts[i])
        out[i] = ndimage.shift(proj[i], shift, order=1, mode="nearest")
    return out, shifts


@dataclass
class SimulatedSeries:
    """A simulated tilt series with its ground truth."""

    projections: np.ndarray
    angles: np.ndarray
    volume: np.ndarray
    pixel_size_um: float
    focal_planes_um: np.ndarray | None
    zone_plate: ZonePlate | None
    shifts: np.ndarray | None
    labels: np.ndarray | None = None


def simulate_tilt_series(
    volume: np.ndarray,
    angles: Any,
    pixel_size_um: float,
    *,
    zone_plate: ZonePlate | None = None,
    focal_planes_um: Any = None,
    photons: float | None = None,
    sigma: float | None = None,
    max_shift_px: float = 0.0,
    depth_step_um: float | None = None,
    seed: int | None = 0,
    labels: np.ndarray | None = None,
) -> SimulatedSeries:
    """Project, blur, add noise and misalign: a complete simulated acquisition.

    See :func:`project`, :func:`add_noise` and :func:`misalign` for the parameters.
    """
    rng = np.random.default_rng(seed)
    proj = project(
        volume,
        angles,
        pixel_size_um,
        zone_plate=zone_plate,
        focal_planes_um=focal_planes_um,
        depth_step_um=depth_step_um,
    )
    if photons is not None or sigma:
        proj = add_noise(proj, photons=photons, sigma=sigma, seed=rng)
    shifts = None
    if max_shift_px > 0:
        proj, shifts = misalign(proj, max_shift_px, seed=rng)
    planes = None if focal_planes_um is None else np.atleast_1d(np.asarray(focal_planes_um, float))
    return SimulatedSeries(
        projections=proj,
        angles=np.asarray(angles, float),
        volume=np.asarray(volume),
        pixel_size_um=float(pixel_size_um),
        focal_planes_um=planes,
        zone_plate=zone_plate,
        shifts=shifts,
        labels=labels,
    )


# --- command line -----------------------------------------------------------------------------


def _write_mrc(path: Path, data: np.ndarray, voxel_size_angstrom: float) -> None:
    import mrcfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        mrc.voxel_size = voxel_size_angstrom


def _run_simulate(args: argparse.Namespace) -> int:
    rows, thick, cols = args.shape
    p = args.pixel_size_um
    if args.phantom == "cell":
        ph = cell_phantom((rows, thick, cols), p, thickness_um=args.thickness_um, seed=args.seed)
        volume = ph.volume
    else:
        volume = shepp_logan_3d((rows, thick, cols)) * np.float32(args.lac_scale)
    zp = None
    if not args.no_blur:
        zp = ZonePlate(args.energy_ev, args.zone_width_nm, zones=args.zones)
    angles = tilt_angles(args.max_angle, args.step)
    planes = args.focal_planes_um
    series = simulate_tilt_series(
        volume,
        angles,
        p,
        zone_plate=zp,
        focal_planes_um=planes if planes and len(planes) > 1 else (planes[0] if planes else None),
        photons=args.photons,
        sigma=args.sigma,
        max_shift_px=args.misalign_px,
        seed=args.seed,
    )
    out = Path(args.output)
    proj = series.projections
    if proj.ndim == 4:
        # MRC is 3-D: focal series stored tilt-major (tilt 0 plane 0, tilt 0 plane 1, ...),
        # with the plane positions in a JSON sidecar.
        meta = {
            "layout": "tilt-major focal series: section = tilt * planes + plane",
            "focal_planes_um": [float(f) for f in planes],
            "pixel_size_um": p,
            "tilts": int(proj.shape[0]),
        }
        if zp is not None:
            meta["zone_plate"] = {
                "energy_ev": zp.energy_ev,
                "outer_zone_width_nm": zp.outer_zone_width_nm,
                "zones": zp.zones,
            }
        out.with_suffix(".focal.json").write_text(json.dumps(meta, indent=2))
        proj = proj.reshape(-1, *proj.shape[2:])
    _write_mrc(out, proj, p * 1e4)
    out.with_suffix(".tlt").write_text("".join(f"{a:.2f}\n" for a in angles))
    if series.shifts is not None:
        np.savetxt(
            out.with_suffix(".shifts.txt"),
            series.shifts,
            fmt="%.3f",
            header="applied shifts per tilt: rows columns (pixels)",
        )
    if args.truth:
        _write_mrc(Path(args.truth), volume, p * 1e4)
    msg = f"wrote {out} ({proj.shape[0]} sections), {out.with_suffix('.tlt')}"
    if zp is not None:
        msg += f"; optics: {zp.describe()}"
    print(msg)
    return 0


def register_cli(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``simulate`` subcommand to an ``argparse`` subparsers object.

    Returns the new parser; its default ``func`` runs the simulation and returns an exit code.
    """
    sp = subparsers.add_parser(
        "simulate",
        help="simulate a tilt series (phantom, missing wedge, noise, misalignment, depth of focus)",
        description=(
            "Project a phantom to an MRC tilt series with an IMOD .tlt file. Absorbances are "
            "-ln(I/I0) = sum(LAC * pixel size); a focal series (several --focal-planes-um) is "
            "written tilt-major with a .focal.json sidecar."
        ),
    )
    sp.add_argument("-o", "--output", required=True, help="output tilt series (.mrc)")
    sp.add_argument("--truth", help="also write the ground-truth volume (LAC, µm⁻¹) here (.mrc)")
    sp.add_argument("--phantom", choices=["cell", "shepp-logan"], default="cell")
    sp.add_argument("--shape", type=int, nargs=3, default=[32, 128, 128], metavar=("ROWS", "THICKNESS", "COLUMNS"))
    sp.add_argument("--pixel-size-um", type=float, default=0.02)
    sp.add_argument("--thickness-um", type=float, default=None, help="cell thickness (cell phantom)")
    sp.add_argument("--lac-scale", type=float, default=0.4, help="LAC in µm⁻¹ of the Shepp-Logan phantom's value 1")
    sp.add_argument("--max-angle", type=float, default=65.0)
    sp.add_argument("--step", type=float, default=1.0, help="tilt step, degrees")
    sp.add_argument("--photons", type=float, default=None, help="incident photons per pixel")
    sp.add_argument("--sigma", type=float, default=None, help="Gaussian noise on absorbance")
    sp.add_argument("--misalign-px", type=float, default=0.0, help="max random shift, pixels")
    sp.add_argument("--no-blur", action="store_true", help="ideal projections, no zone-plate blur")
    sp.add_argument("--energy-ev", type=float, default=520.0)
    sp.add_argument("--zone-width-nm", type=float, default=25.0)
    sp.add_argument("--zones", type=int, default=500)
    sp.add_argument(
        "--focal-planes-um",
        type=float,
        nargs="+",
        default=None,
        help="focal plane positions (µm from the tilt axis, + towards detector)",
    )
    sp.add_argument("--seed", type=int, default=0)
    sp.set_defaults(func=_run_simulate)
    return sp
