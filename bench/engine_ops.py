"""Before/after timing of the engine's solvers on one small case (issue 9: one SIRT over operators).

``python -m bench.engine_ops [--save DIR] [--compare DIR]`` times WBP, SIRT-50, CGLS-20, mbir and
the focal-series WBP and SIRT (each once, after a warm-up that loads the compiled kernels), prints
the seconds and the load average, and with ``--save`` keeps the volumes so that a later run with
``--compare`` reports the largest difference from them (relative to each volume's range).
Not a section of ``make bench``: it exists to compare two versions of the engine on one machine.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np


def _cases():
    from reconstruction.engine import reconstruct
    from reconstruction.engine.focus import reconstruct_focal_series
    from reconstruction.engine.phantoms import cell_phantom
    from reconstruction.engine.psf import ZonePlate
    from reconstruction.engine.simulate import add_noise, project

    rng = np.random.default_rng(0)
    n, rows = 128, 32
    ang = np.arange(-65.0, 65.1, 1.0)
    vol = np.zeros((rows, n, n), np.float32)
    zz, xx = np.mgrid[:n, :n] - n // 2
    for _ in range(12):
        cz, cx, r = rng.integers(-40, 40), rng.integers(-40, 40), rng.integers(5, 20)
        vol[:, (zz - cz) ** 2 + (xx - cx) ** 2 < r * r] += rng.random()
    from reconstruction.engine import forward_project

    proj = forward_project(vol, ang)
    proj += rng.normal(0, 0.01 * float(proj.max()), proj.shape).astype(np.float32)

    p, zp = 0.04, ZonePlate(520.0, 25.0, zones=500)
    ph = cell_phantom((16, 64, 64), p, thickness_um=2.0, seed=2)
    fang = np.arange(-60.0, 61.0, 3.0)
    planes = np.arange(-1, 2) * zp.depth_of_field_um
    series = add_noise(project(ph.volume, fang, p, zone_plate=zp, focal_planes_um=planes), photons=1e4, seed=3)
    focal = {"focal_planes_um": planes, "pixel_size_um": p}
    return {
        "WBP 128²×32, 131 tilts": lambda: reconstruct(proj, ang, "wbp"),
        "SIRT-50 128²×32": lambda: reconstruct(proj, ang, "sirt", 50),
        "CGLS-20 128²×32": lambda: reconstruct(proj, ang, "cgls", 20),
        "mbir-20 128²×32": lambda: reconstruct(proj, ang, "mbir", 20),
        "focal WBP 64²×16, 41 tilts × 3 planes": lambda: reconstruct_focal_series(series, fang, zone_plate=zp, **focal),
        "focal SIRT-5 64²×16": lambda: reconstruct_focal_series(
            series, fang, zone_plate=zp, method="sirt", iterations=5, **focal
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--save", type=Path)
    ap.add_argument("--compare", type=Path)
    args = ap.parse_args()
    cases = _cases()
    from reconstruction.engine import reconstruct

    reconstruct(np.ones((8, 2, 32), np.float32), np.linspace(-60, 60, 8), "sirt", 1)  # load kernels
    print(f"load average before: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")
    for i, (name, fn) in enumerate(cases.items()):
        fn()  # warm-up (compiles the kernels this case uses)
        t0 = time.perf_counter()
        out = fn()
        dt = time.perf_counter() - t0
        line = f"{name}: {dt:.3f} s"
        if args.save:
            args.save.mkdir(parents=True, exist_ok=True)
            np.save(args.save / f"{i}.npy", out)
        if args.compare:
            ref = np.load(args.compare / f"{i}.npy")
            rng = float(ref.max() - ref.min()) or 1.0
            line += f"  (max |Δ| / range vs saved: {np.abs(out - ref).max() / rng:.2e})"
        print(line, flush=True)
    print(f"load average after: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
