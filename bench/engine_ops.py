"""Before/after timing of the engine's solvers on one small case (issue 9: one SIRT over operators).

``python bench/engine_ops.py --against OLD_CHECKOUT`` times WBP, SIRT-50, CGLS-20, mbir-20 and the
focal-series WBP and SIRT-5 with the engine of this checkout and with the one in
``OLD_CHECKOUT`` (e.g. ``git worktree add /tmp/old <commit>``), alternating the two in fresh
processes (each loads its compiled kernels and runs the case once to warm up before the timed
run), ``--rounds`` times, and prints the best time of each with the load average and the largest
difference between the two volumes (relative to the range). Without ``--against`` it times this
checkout only. Not a section of ``make bench``: it compares two versions on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
ROOT = HERE.parent.parent

CASES = (
    "WBP 128²×32, 131 tilts",
    "SIRT-50 128²×32",
    "CGLS-20 128²×32",
    "mbir-20 128²×32",
    "focal WBP 64²×16, 41 tilts × 3 planes",
    "focal SIRT-5 64²×16",
)


def _case(index: int):
    from reconstruction.engine import forward_project, reconstruct
    from reconstruction.engine.focus import reconstruct_focal_series
    from reconstruction.engine.phantoms import cell_phantom
    from reconstruction.engine.psf import ZonePlate
    from reconstruction.engine.simulate import add_noise, project

    if index < 4:
        rng = np.random.default_rng(0)
        n, rows = 128, 32
        ang = np.arange(-65.0, 65.1, 1.0)
        vol = np.zeros((rows, n, n), np.float32)
        zz, xx = np.mgrid[:n, :n] - n // 2
        for _ in range(12):
            cz, cx, r = rng.integers(-40, 40), rng.integers(-40, 40), rng.integers(5, 20)
            vol[:, (zz - cz) ** 2 + (xx - cx) ** 2 < r * r] += rng.random()
        proj = forward_project(vol, ang)
        proj += rng.normal(0, 0.01 * float(proj.max()), proj.shape).astype(np.float32)
        method, iters = (("wbp", None), ("sirt", 50), ("cgls", 20), ("mbir", 20))[index]
        return lambda: reconstruct(proj, ang, method, iters)
    p, zp = 0.04, ZonePlate(520.0, 25.0, zones=500)
    ph = cell_phantom((16, 64, 64), p, thickness_um=2.0, seed=2)
    fang = np.arange(-60.0, 61.0, 3.0)
    planes = np.arange(-1, 2) * zp.depth_of_field_um
    series = add_noise(project(ph.volume, fang, p, zone_plate=zp, focal_planes_um=planes), photons=1e4, seed=3)
    kw = {"focal_planes_um": planes, "pixel_size_um": p, "zone_plate": zp}
    if index == 4:
        return lambda: reconstruct_focal_series(series, fang, **kw)
    return lambda: reconstruct_focal_series(series, fang, method="sirt", iterations=5, **kw)


def _run_one(index: int, save: Path) -> None:
    """In a fresh process: load kernels, warm up, time one run, save the volume, print the seconds."""
    from reconstruction.engine import reconstruct

    reconstruct(np.ones((8, 2, 32), np.float32), np.linspace(-60, 60, 8), "sirt", 1)
    fn = _case(index)
    fn()
    t0 = time.perf_counter()
    out = fn()
    dt = time.perf_counter() - t0
    np.save(save, out)
    print(json.dumps({"seconds": dt}))


def _spawn(root: Path, index: int, save: Path) -> float:
    code = (
        f"import sys; sys.path.insert(0, {str(root)!r}); sys.path.insert(1, {str(HERE.parent)!r}); "
        f"import engine_ops; engine_ops._run_one({index}, __import__('pathlib').Path({str(save)!r}))"
    )
    res = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    return float(json.loads(res.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--against", type=Path, help="checkout of the engine to compare with (the 'before')")
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    trees = {"after": ROOT} | ({"before": args.against.resolve()} if args.against else {})
    load = " / ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"load average before: {load}")
    print("| case | " + " | ".join(f"{k} (s)" for k in trees) + (" | max Δ / range |" if args.against else " |"))
    print("|---" * (len(trees) + 1 + bool(args.against)) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(CASES):
            best = {k: float("inf") for k in trees}
            for _ in range(args.rounds):
                for k, root in trees.items():
                    best[k] = min(best[k], _spawn(root, i, Path(tmp) / f"{k}.npy"))
            row = f"| {name} | " + " | ".join(f"{best[k]:.3f}" for k in trees)
            if args.against:
                a, b = np.load(Path(tmp) / "after.npy"), np.load(Path(tmp) / "before.npy")
                row += f" | {np.abs(a - b).max() / (float(b.max() - b.min()) or 1.0):.1e}"
            print(row + " |", flush=True)
    print(f"load average after: {' / '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
