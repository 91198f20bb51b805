"""Gain of the PSF-aware methods on a single-focus series far from focus (issue 13), measured once.

``python -m bench.psf_gain`` simulates the engine's thick cell (the depth-of-focus test problem:
25 nm zone plate at 520 eV, DOF 1.05 µm, 20 nm pixels, a 3.4 µm cell in 192² slices, 24 rows
simulated and the central 4 graded), focused on the tilt axis, and scores WBP, SIRT and mbir
(no PSF: the single-focus baselines) against ``psf-sirt`` and ``psf-mbir`` (the zone plate's blur in
the forward model): PSNR in LAC over the voxels of the cell more than one depth of field from focus
on average over the tilts, and over those within half a depth of field, SSIM over the far voxels
(the mean of scikit-image's SSIM map of each graded slice there), and time. Two series: 180° at 2°
(clean) and ±65° at 2° with 10⁴ photons per pixel. ``NUMBA_NUM_THREADS=1`` makes the times
comparable on a shared machine.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ThickCell:
    """The depth-of-focus test problem: the phantom (graded rows plus margins), its optics and truth."""

    pixel_um: float
    zone_plate: object
    rows: int
    n: int
    phantom: object
    graded: slice  # the rows scored (the margins let the PSF reach them from both sides)

    @property
    def truth(self):
        return self.phantom.volume[self.graded]

    @property
    def cell(self):
        return self.phantom.cell_mask[self.graded]

    @property
    def data_range(self) -> float:
        return float(self.truth.max() - self.truth.min())


def thick_cell() -> ThickCell:
    from reconstruction.engine.phantoms import cell_phantom
    from reconstruction.engine.psf import ZonePlate

    rows, n, margin, p = 4, 192, 10, 0.02
    ph = cell_phantom((rows + 2 * margin, n, n), p, thickness_um=3.4, seed=1)
    return ThickCell(p, ZonePlate(520.0, 25.0, zones=500), rows, n, ph, slice(margin, -margin))


def masked_ssim(volume: np.ndarray, truth: np.ndarray, mask: np.ndarray, data_range: float) -> float:
    """Mean of scikit-image's SSIM map of each slice over the masked voxels."""
    from skimage.metrics import structural_similarity

    maps = [
        structural_similarity(t, v, data_range=data_range, full=True)[1] for t, v in zip(truth, volume, strict=True)
    ]
    return float(np.stack(maps)[mask].mean())


def main() -> None:
    from reconstruction.engine import reconstruct
    from reconstruction.engine.focus import mean_defocus_um
    from reconstruction.engine.quality import psnr, to_lac
    from reconstruction.engine.simulate import add_noise, project

    case = thick_cell()
    p, zp, n, ph, sl = case.pixel_um, case.zone_plate, case.n, case.phantom, case.graded
    dof = zp.depth_of_field_um
    truth, cell, data_range = case.truth, case.cell, case.data_range
    print(f"load average before: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for label, angles, photons in (
        ("180° / 2°, clean", np.arange(-90.0, 90.0, 2.0), None),
        ("±65° / 2°, 10⁴ photons", np.arange(-65.0, 65.1, 2.0), 1e4),
    ):
        series = project(ph.volume, angles, p, zone_plate=zp)  # focused on the tilt axis
        if photons:
            series = add_noise(series, photons=photons, seed=2)
        md = mean_defocus_um(n, n, angles, p)[None]
        masks = {"far (> 1 DOF)": cell & (md > dof), "in focus (< DOF/2)": cell & (md < dof / 2)}
        optics = {"zone_plate": zp, "pixel_size_um": p}
        runs = {
            "WBP": {"method": "wbp"},
            "SIRT (defaults, no PSF)": {"method": "sirt"},
            "mbir (defaults, no PSF)": {"method": "mbir"},
            "psf-sirt (defaults)": {"method": "psf-sirt", **optics},
            "psf-sirt, 10 iterations": {"method": "psf-sirt", **optics, "iterations": 10},
            "psf-mbir (defaults)": {"method": "psf-mbir", **optics},
            "psf-mbir, strength 1 (mbir's)": {"method": "psf-mbir", **optics, "strength": 1.0},
        }
        if photons:
            runs["psf-mbir, Poisson weights"] = {"method": "psf-mbir", **optics, "photons": photons}
        print(f"\n{label}, {len(angles)} tilts")
        print("| method | far PSNR | in-focus PSNR | far SSIM | time (s) |\n|---|---|---|---|---|")
        for name, kw in runs.items():
            t0 = time.perf_counter()
            vol = reconstruct(series, angles, **kw)
            dt = time.perf_counter() - t0
            v = to_lac(vol, p)[sl]
            scores = [psnr(v, truth, mask=m, data_range=data_range) for m in masks.values()]
            far_ssim = masked_ssim(v, truth, masks["far (> 1 DOF)"], data_range)
            print(f"| {name} | {scores[0]:.2f} | {scores[1]:.2f} | {far_ssim:.3f} | {dt:.1f} |", flush=True)
    print(f"\nload average after: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
