"""Command line: ``python -m reconstruction.engine {reconstruct,simulate} ...``."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

__all__ = ["build_parser", "main"]


def _run_reconstruct(args: argparse.Namespace) -> int:
    import numpy as np

    from reconstruction.engine import reconstruct
    from reconstruction.engine.io import read_tilt_series, write_volume

    series = read_tilt_series(Path(args.series), args.angles)
    proj = series.projections
    if args.focal_json:
        import json

        meta = json.loads(Path(args.focal_json).read_text())
        planes = meta["focal_planes_um"]
        n = len(planes)
        if proj.shape[0] % n:
            raise ValueError(f"{proj.shape[0]} sections are not a multiple of {n} focal planes")
        proj = proj.reshape(proj.shape[0] // n, n, *proj.shape[1:])
        extra = {"focal_planes_um": planes, "pixel_size_um": meta.get("pixel_size_um")}
    else:
        extra = {}
    pixel = args.pixel_size_um or series.pixel_size_um
    if args.focal_json and extra["pixel_size_um"] is None:
        extra["pixel_size_um"] = pixel
    proj = np.asarray(proj, dtype=np.float32)
    rows = proj.shape[-2]
    iters = 1 if args.method == "wbp" else (args.iterations or (20 if args.method == "cgls" else 50))
    total = rows * iters
    bar = None
    if not args.quiet and proj.ndim == 3:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="slice", desc=args.method, disable=None, mininterval=0.5)
    t0 = time.perf_counter()
    try:
        vol = reconstruct(
            proj,
            series.angles,
            method=args.method,
            iterations=args.iterations,
            thickness=args.thickness,
            slab_size=args.slab_size,
            axis_offset=args.axis_offset,
            **({"filter_name": args.filter} if args.method == "wbp" and proj.ndim == 3 else {}),
            **({"callback": bar.update} if bar is not None else {}),
            **extra,
        )
    finally:
        if bar is not None:
            bar.close()
    write_volume(args.output, vol, pixel)
    if not args.quiet:
        print(f"wrote {args.output} {vol.shape} in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The ``argparse`` parser of the engine's command line."""
    parser = argparse.ArgumentParser(
        prog="python -m reconstruction.engine",
        description="Soft X-ray tomography reconstruction engine.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser(
        "reconstruct",
        help="reconstruct a tilt series (MRC+.tlt, TIFF+.tlt, NXtomo) to an MRC volume",
    )
    rp.add_argument("series", help="tilt series: .mrc/.st/.ali, .tif/.tiff or .h5/.nxs (NXtomo)")
    rp.add_argument("--angles", help="IMOD .tlt file (default: SERIES with suffix .tlt)")
    rp.add_argument("--method", choices=["wbp", "sirt", "cgls"], default="wbp")
    rp.add_argument("--iterations", type=int, default=None, help="SIRT/CGLS iterations")
    rp.add_argument("--filter", default="ram-lak", help="WBP filter: ram-lak, shepp-logan, cosine, hamming, hann")
    rp.add_argument("--thickness", type=int, default=None, help="volume thickness (voxels)")
    rp.add_argument("--slab-size", type=int, default=None, help="slices per slab")
    rp.add_argument("--axis-offset", type=float, default=0.0, help="tilt-axis offset (pixels)")
    rp.add_argument(
        "--pixel-size-um", type=float, default=None, help="voxel size for the MRC header (default: from the input)"
    )
    rp.add_argument("--focal-json", help="focal-series sidecar (.focal.json from simulate)")
    rp.add_argument("-o", "--output", required=True, help="output volume (.mrc)")
    rp.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    rp.set_defaults(func=_run_reconstruct)
    try:
        from reconstruction.engine.simulate import register_cli
    except ImportError:  # pragma: no cover - simulate.py is part of the package
        register_cli = None
    if register_cli is not None:
        register_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 with a message on bad input)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
