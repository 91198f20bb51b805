"""Depth-of-focus benchmark: focal-series reconstructions against single-focus ones.

A simulated cell several depths of field thick is projected with the depth-dependent zone-plate
blur of :mod:`reconstruction.engine.simulate` (each depth bin blurred by the pupil-based PSF of
its own defocus), as a focal series of 7 planes at -3…+3 DOF. It is reconstructed from the
central focal plane only (single focus) and from the whole series, by plain WBP, with the
noise-aware multi-plane Wiener filter (:func:`reconstruction.engine.focus.refocus`), with the
old fixed-SNR in-focus Wiener filter, and iteratively (SIRT with the depth-dependent PSF forward
model, started from the deconvolved focus-stack WBP). All rows of the detector are
reconstructed (as with real data: the PSF couples neighbouring slices, so the deconvolution
needs them) and the central rows are graded. PSNR (dB) against the ground-truth LAC (µm⁻¹),
peak = LAC range, over cell voxels whose mean distance from the central focal plane over the
tilt series exceeds one depth of field ("far") and under half a DOF ("in focus").

Run alone: ``python -m bench.focus`` (prints the Markdown section), or
``python -m bench.run --only bench.focus -o FILE``.
"""

from __future__ import annotations

import time

import numpy as np

from reconstruction.engine import reconstruct
from reconstruction.engine.focus import (
    FOCAL_DEFAULTS,
    mean_defocus_um,
    reconstruct_focal_series,
)
from reconstruction.engine.phantoms import cell_phantom
from reconstruction.engine.psf import ZonePlate
from reconstruction.engine.quality import fourier_shell_correlation, psnr, to_lac
from reconstruction.engine.simulate import add_noise, project, tilt_angles
from reconstruction.engine.wbp import FILTERS

PIXEL_UM = 0.02
OLD_WIENER_SNR = 300.0
MARGIN = 14  # rows simulated and reconstructed on each side of the graded rows


def _simulate(rows: int, size: int, thickness_um: float, angles: np.ndarray, zp: ZonePlate):
    p = PIXEL_UM
    ph = cell_phantom((rows + 2 * MARGIN, size, size), p, thickness_um=thickness_um, seed=1)
    planes = np.arange(-3, 4) * zp.depth_of_field_um
    t0 = time.perf_counter()
    series = project(ph.volume, angles, p, zone_plate=zp, focal_planes_um=planes)
    return ph, planes, series, time.perf_counter() - t0


def _case(ph, planes, clean, angles, photons, zp, *, iterative_single, fsc, focal_photons=None):
    p = PIXEL_UM
    dof = zp.depth_of_field_um
    noisy = add_noise(clean, photons=photons, seed=2) if photons else clean
    series = noisy
    if focal_photons is not None:  # dose-matched: the focal series' images get less dose each
        series = add_noise(clean, photons=focal_photons, seed=3)
    sl = slice(MARGIN, -MARGIN)
    truth = ph.volume[sl]
    cell = ph.cell_mask[sl]
    size = truth.shape[-1]
    md = mean_defocus_um(size, size, angles, p)[None]
    far = cell & (md > dof)
    focused = cell & (md < dof / 2)
    centre = int(np.argmin(np.abs(planes)))
    one = noisy[:, centre : centre + 1]
    rng = float(truth.max() - truth.min())

    def grade(v):
        v = to_lac(v, p)[sl]
        return tuple(psnr(v, truth, mask=m, data_range=rng) for m in (far, focused, cell))

    def timed(fn):
        t = time.perf_counter()
        v = fn()
        return (*grade(v), time.perf_counter() - t)

    def focal(proj, f, **kw):
        return lambda: reconstruct_focal_series(proj, angles, focal_planes_um=f, pixel_size_um=p, **kw)

    res: dict[str, tuple[float, ...]] = {}
    res["single-focus WBP (ramp)"] = timed(focal(one, [0.0]))
    windows = [f for f in FILTERS if f not in ("ram-lak", "none")]  # the apodised ramps
    best = max(windows, key=lambda fl: grade(focal(one, [0.0], filter_name=fl)())[0])
    res[f"single-focus WBP, best filter ({best})"] = timed(focal(one, [0.0], filter_name=best))
    res["single-focus WBP + noise-aware Wiener"] = timed(focal(one, [0.0], zone_plate=zp))
    res["single-focus SIRT (engine defaults, no PSF)"] = timed(lambda: reconstruct(one[:, 0], angles, method="sirt"))
    if iterative_single:
        res["single-focus SIRT with PSF model"] = timed(focal(one, [0.0], zone_plate=zp, method="sirt"))
    res["focal-series WBP (plain)"] = timed(focal(series, planes))
    res[f"focal-series WBP + in-focus Wiener, fixed SNR {OLD_WIENER_SNR:g}"] = timed(
        focal(series, planes, zone_plate=zp, wiener_snr=OLD_WIENER_SNR)
    )
    res["**focal-series WBP + noise-aware Wiener** (`method='wbp'`)"] = timed(focal(series, planes, zone_plate=zp))
    if focal_photons is None:  # skipped on the dose-matched case (time; no gain on 180°)
        res["**focal-series SIRT with PSF model** (`method='sirt'`)"] = timed(
            focal(series, planes, zone_plate=zp, method="sirt")
        )
    out = {"results": res, "far": int(far.sum()), "focused": int(focused.sum()), "best": best}
    if fsc:
        ev = reconstruct_focal_series(
            series[0::2], angles[0::2], focal_planes_um=planes, pixel_size_um=p, zone_plate=zp
        )
        od = reconstruct_focal_series(
            series[1::2], angles[1::2], focal_planes_um=planes, pixel_size_um=p, zone_plate=zp
        )
        out["fsc"] = fourier_shell_correlation(ev[sl], od[sl], pixel_size_um=p).resolution_nm
    return out


def _fmt_res(r: float | None) -> str:
    return "beyond Nyquist" if r is None else f"{r:.0f} nm"


def measure(quick: bool = False) -> list[tuple[str, dict]]:
    """Run the cases; returns ``[(title, case result), ...]``."""
    zp = ZonePlate(520.0, 25.0, zones=500)
    size = 192 if quick else 256
    thickness = 3.4 if quick else 4.5
    rows = 4 if quick else 8
    full = np.arange(-90.0, 90.0, 1.0)
    wedge = tilt_angles(65, 1)
    cases = [
        ("full rotation (capillary), 180 tilts at 1°, noise-free", full, None),
        ("full rotation, 180 tilts at 1°, 10⁴ photons/pixel per image", full, 1e4),
        (
            "full rotation, 180 tilts at 1°, dose-matched: single focus 10⁴ photons/pixel, "
            "each of the 7 focal images 10⁴/7",
            full,
            (1e4, 1e4 / 7),
        ),
        ("±65° at 1° (grid, missing wedge), noise-free", wedge, None),
        ("±65° at 1°, 10⁴ photons/pixel per image", wedge, 1e4),
    ]
    if quick:
        cases = cases[:1]
    out = []
    sims: dict[int, tuple] = {}
    for title, angles, photons in cases:
        key = angles.size
        if key not in sims:
            sims[key] = _simulate(rows, size, thickness, angles, zp)
        ph, planes, clean, t_sim = sims[key]
        photons, focal_photons = photons if isinstance(photons, tuple) else (photons, None)
        r = _case(
            ph,
            planes,
            clean,
            angles,
            photons,
            zp,
            focal_photons=focal_photons,
            iterative_single=angles.size < 180,
            fsc=not out,
        )
        r.update(t_sim=t_sim, size=size, rows=rows, thickness=thickness, zp=zp)
        out.append((title, r))
    return out


def run(quick: bool = False) -> str:
    """Markdown section for docs/benchmarks.md."""
    measured = measure(quick)
    first = measured[0][1]
    zp = first["zp"]
    lines = [
        "## Depth of focus: focal-series vs single-focus reconstruction\n",
        f"Optics: {zp.describe()}. Pixel {PIXEL_UM * 1e3:.0f} nm; simulated cell "
        f"{first['thickness']} µm thick ({first['thickness'] / zp.depth_of_field_um:.1f} DOF) in "
        f"{first['size']}×{first['size']} slices; {first['rows'] + 2 * MARGIN} detector rows "
        f"reconstructed, the central {first['rows']} graded; 7 focal planes at −3…+3 DOF. "
        "Forward model: each depth bin (DOF/8) blurred by the pupil-based PSF of its own "
        "defocus. PSNR (dB) against the ground-truth LAC, peak = LAC range; *far* = cell "
        "voxels whose mean distance from the central focal plane over the series exceeds 1 DOF, "
        "*in focus* = under DOF/2. Noise: Poisson counts per image (a focal series of 7 planes "
        "gets 7× the dose of the single-focus series, except in the dose-matched case). Noise-aware Wiener: noise power read "
        "from the data, γ = "
        f"{FOCAL_DEFAULTS['regularization']:g}; SIRT: {FOCAL_DEFAULTS['sirt_iterations']} "
        f"iterations × {FOCAL_DEFAULTS['subsets']} subsets, non-negative, depth bins DOF/4. "
        f"Command: `python -m bench.focus{' --quick' if quick else ''}` "
        "(or `python -m bench.run --only bench.focus`).\n",
    ]
    for title, r in measured:
        lines.append(f"\n### {title}\n")
        lines.append(f"{r['far']} far voxels, {r['focused']} in-focus voxels; simulation {r['t_sim']:.1f} s.\n")
        lines.append("| reconstruction | PSNR far | PSNR in focus | PSNR whole cell | time |")
        lines.append("|---|---|---|---|---|")
        res = r["results"]
        for name, (pf, pn, pc, dt) in res.items():
            lines.append(f"| {name} | {pf:.2f} | {pn:.2f} | {pc:.2f} | {dt:.1f} s |")
        base = res["single-focus WBP (ramp)"][0]
        best_single_wbp = max(v[0] for k, v in res.items() if k.startswith("single-focus WBP"))
        best_single = max(v[0] for k, v in res.items() if k.startswith("single-focus"))
        wbp_w = res["**focal-series WBP + noise-aware Wiener** (`method='wbp'`)"][0]
        sirt = res.get("**focal-series SIRT with PSF model** (`method='sirt'`)", (-np.inf,))[0]
        top = max(wbp_w, sirt)
        which = "SIRT" if sirt > wbp_w else "WBP + noise-aware Wiener"
        target = "meets" if top - base >= 3.0 else "misses"
        lines.append(
            f"\nFar from focus, best focal-series method ({which}): **{top - base:+.2f} dB** "
            f"against single-focus WBP ({target} the issue's 3 dB target); "
            f"{top - best_single_wbp:+.2f} dB against the best single-focus WBP (any filter, "
            f"with or without the same deconvolution); {top - best_single:+.2f} dB against the "
            "best single-focus reconstruction of any kind above."
        )
        if "fsc" in r:
            lines.append(
                f" Even/odd FSC of the focal-series WBP + Wiener volume: 0.143 → "
                f"{_fmt_res(r['fsc'].get(0.143))}, 0.5 → {_fmt_res(r['fsc'].get(0.5))}."
            )
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    import sys

    print(run(quick="--quick" in sys.argv[1:]))
