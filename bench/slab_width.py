"""SIRT cost per slice against the slab width, optionally before/after a change (issue 8).

A job cuts its volume into slabs of slices, one per worker; what a slab costs per slice decides how
evenly the work can be split. SIRT, 6 iterations, 4 subsets, 131 tilts (±65°), 256 × 256 slices, on
the calling thread (run with ``NUMBA_NUM_THREADS=1``): once with the ray-driven forward projector (the
default's last iterations) and once with the pixel-driven one (its first). With ``--against REV`` the
projectors of git revision ``REV`` are timed too, alternating with the working tree's in the same run,
and the volumes are checked to be equal bit for bit.

Not a ``make bench`` section (it compares revisions); run::

    NUMBA_NUM_THREADS=1 python -m bench.slab_width --against 371c309
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import numpy as np

from reconstruction.engine import operators, projectors
from reconstruction.engine.iterative import sirt

ROOT = Path(__file__).resolve().parents[1]
#: Where the operators reach the projector kernels: (class or module, attribute, the projectors' name).
KERNELS = (
    (operators.ParallelBeamProjector, "project", "forward_slab"),
    (operators.ParallelBeamProjector, "back_project", "back_slab"),
    (operators.RayDrivenProjector, "project", "forward_slab_ray"),
    (operators, "_nb_back_update", "_nb_back_update"),
)


def _projectors_at(rev: str, into: Path) -> ModuleType:
    """The projectors module as it is at git revision ``rev``, imported under its own name."""
    text = subprocess.run(
        ["git", "show", f"{rev}:reconstruction/engine/projectors.py"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    path = into / f"projectors_{rev.replace('/', '_')}.py"
    path.write_bytes(text)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _use(module: ModuleType) -> None:
    """Make SIRT's operators call ``module``'s kernels. The operator classes hold their projections as
    class attributes (bound when the class was made), so those are what is swapped, not module names."""
    for owner, attribute, name in KERNELS:
        kernel = getattr(module, name)
        setattr(owner, attribute, staticmethod(kernel) if isinstance(owner, type) else kernel)


def _problem(rows: int) -> tuple[np.ndarray, np.ndarray]:
    angles = np.arange(-65.0, 66.0, 1.0)
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:256, :256]
    vol = np.zeros((rows, 256, 256), np.float32)
    vol[:, (yy - 128) ** 2 + (xx - 128) ** 2 < 90**2] = 1.0
    vol *= rng.random((rows, 1, 1), dtype=np.float32) + 0.5
    return projectors.forward_project(vol, angles), angles


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--against", help="git revision whose projectors to time as 'before'")
    parser.add_argument("--widths", type=int, nargs="*", default=[8, 16, 32, 64, 128])
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    proj, angles = _problem(max(args.widths))
    with tempfile.TemporaryDirectory() as tmp:
        impls = {"after": projectors}
        if args.against:
            impls = {"before": _projectors_at(args.against, Path(tmp)), **impls}
        for module in impls.values():  # compile outside the timings
            _use(module)
            for ray in (1, 0):
                sirt(proj[:, :8], angles, iterations=1, ray_iterations=ray, slab_size=8)
        print(f"| forward model | slices | {' | '.join(f'{k} (ms per slice)' for k in impls)} |")
        for ray, label in ((6, "ray-driven"), (0, "pixel-driven")):
            for ns in args.widths:
                times: dict[str, list[float]] = {k: [] for k in impls}
                volumes = {}
                for rep in range(args.reps):
                    order = list(impls) if rep % 2 == 0 else list(impls)[::-1]  # alternate who goes first
                    for name in order:
                        _use(impls[name])
                        t0 = time.perf_counter()
                        volumes[name] = sirt(proj[:, :ns], angles, iterations=6, ray_iterations=ray, slab_size=ns)
                        times[name].append(time.perf_counter() - t0)
                if args.against and not np.array_equal(volumes["before"], volumes["after"]):
                    raise SystemExit(f"{label}, {ns} slices: the volumes differ")
                cells = " | ".join(f"{1e3 * float(np.median(t)) / ns:.1f}" for t in times.values())
                print(f"| {label} | {ns} | {cells} |", flush=True)
    _use(projectors)
    print(f"load average at the end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
