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
    from reconstruction.engine.prepare import to_absorbance

    path = Path(args.series)
    sidecar = Path(args.focal_json) if args.focal_json else path.with_suffix(".focal.json")
    extra = {}
    if args.focal_json or sidecar.is_file():
        series, proj, extra = _read_focal_series(path, args.angles, sidecar)
        proj = to_absorbance(proj, args.values)
    else:
        series = read_tilt_series(path, args.angles, entry=args.entry)
        proj = series.absorbance(args.values)  # the API's path: flats/darks, then −log
        if series.entry is not None and not args.quiet:
            others = f" of {len(series.entries)}; --entry picks another" if len(series.entries) > 1 else ""
            print(f"read NXtomo entry {series.entry}{others}", file=sys.stderr)
    pixel = args.pixel_size_um or series.pixel_size_um
    if extra and extra["pixel_size_um"] is None:
        if pixel is None:
            raise ValueError(f"{sidecar}: no pixel_size_um; give --pixel-size-um")
        extra["pixel_size_um"] = pixel
    proj = np.asarray(proj, dtype=np.float32)
    rows = proj.shape[-2]
    options = _options(args, proj.ndim, pixel, extra)
    if proj.ndim == 4:  # focal series: the WBP, then the SIRT iterations started from it
        from reconstruction.engine.focus import FOCAL_DEFAULTS

        iters = 1 if args.method == "wbp" else 1 + (args.iterations or FOCAL_DEFAULTS["sirt_iterations"])
    else:
        from reconstruction.engine import MBIR_DEFAULTS
        from reconstruction.engine.focus import PSF_DEFAULTS, PSF_MBIR_DEFAULTS
        from reconstruction.engine.noise import sirt_iterations_for

        if args.method == "wbp":
            iters = 1
        elif args.method == "mbir":
            iters = 1 + (args.iterations or MBIR_DEFAULTS["iterations"])
        elif args.method == "psf-sirt":
            iters = 1 + (args.iterations or PSF_DEFAULTS["iterations"])
        elif args.method == "psf-mbir":
            iters = 1 + (args.iterations or PSF_MBIR_DEFAULTS["iterations"])
        elif args.method == "sirt":
            iters = args.iterations or sirt_iterations_for(proj)
        else:
            iters = args.iterations or 20
    total = rows * iters
    bar = None
    if not args.quiet:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="slice", desc=args.method, disable=None, mininterval=0.5)
    t0 = time.perf_counter()
    try:
        vol = reconstruct(
            proj,
            series.angles,
            method=args.method,
            options=options,
            thickness=args.thickness,
            slab_size=args.slab_size,
            **({"axis_offset": args.axis_offset} if args.axis_offset else {}),
            **({"callback": bar.update} if bar is not None else {}),
        )
    finally:
        if bar is not None:
            bar.close()
    write_volume(args.output, vol, pixel)
    if not args.quiet:
        print(f"wrote {args.output} {vol.shape} in {time.perf_counter() - t0:.2f} s", file=sys.stderr)
    return 0


def _options(args: argparse.Namespace, ndim: int, pixel: float | None, focal: dict):
    """The method's options dataclass from the command line (and, for a focal series, its sidecar)."""
    from reconstruction.engine import PSF_AWARE, method_options
    from reconstruction.engine.focus import FocalOptions

    if ndim == 4:
        return FocalOptions(**focal, **({"filter_name": args.filter} if args.filter else {}))
    zone_plate = None
    if args.zone_width_nm is not None:
        from reconstruction.engine.psf import ZonePlate

        zone_plate = ZonePlate(args.energy_ev, args.zone_width_nm, zones=args.zones)
    psf = args.method in PSF_AWARE
    if psf and (zone_plate is None or pixel is None):
        raise ValueError(
            f"{args.method} needs the zone plate (--zone-width-nm, --energy-ev, --zones) and the pixel size"
        )
    return method_options(
        args.method,
        iterations=args.iterations,
        filter_name=args.filter,
        strength=args.strength,
        photons=args.photons,
        zone_plate=zone_plate if psf else None,
        pixel_size_um=pixel if psf else None,
        focal_plane_um=args.focal_plane_um,
    )


def _read_focal_series(path: Path, angles_arg: str | None, sidecar: Path):
    """Read a focal series stored tilt-major (section = tilt * planes + plane) with its sidecar.

    Returns ``(TiltSeries, projections (tilts, planes, rows, columns), focal options)``.
    """
    import json

    from reconstruction.engine.io import TiltSeries, read_mrc, read_tiff, read_tlt
    from reconstruction.engine.validate import check_angles

    if not sidecar.is_file():
        raise ValueError(f"cannot read {sidecar}: no such file")
    try:
        meta = json.loads(sidecar.read_text())
        planes = [float(f) for f in meta["focal_planes_um"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{sidecar}: not a focal-series sidecar ({exc})") from None
    if path.suffix.lower() in (".tif", ".tiff"):
        data, px = read_tiff(path), None
    else:
        data, px = read_mrc(path)
    n = len(planes)
    if n == 0 or data.ndim != 3 or data.shape[0] % n:
        raise ValueError(f"{path}: {data.shape[0]} sections are not a whole number of tilts of {n} focal planes")
    proj = data.reshape(data.shape[0] // n, n, *data.shape[1:])
    tlt = Path(angles_arg) if angles_arg else path.with_suffix(".tlt")
    if not tlt.is_file():
        raise ValueError(f"no tilt angles for {path}: give a .tlt file")
    angles = check_angles(read_tlt(tlt), proj.shape[0])
    pixel = meta.get("pixel_size_um") or px
    series = TiltSeries(data, angles, px if px is not None else pixel)
    extra = {"focal_planes_um": planes, "pixel_size_um": pixel}
    if meta.get("zone_plate"):  # optics known: deconvolve (noise-aware Wiener)
        from reconstruction.engine.psf import ZonePlate

        try:
            extra["zone_plate"] = ZonePlate(**meta["zone_plate"])
        except TypeError as exc:
            raise ValueError(f"{sidecar}: bad zone_plate entry ({exc})") from None
    return series, proj, extra


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
    rp.add_argument("--entry", help="NXtomo entry to read (default: the first NXtomo entry in the file)")
    rp.add_argument(
        "--values",
        choices=("absorbance", "transmission", "counts"),
        default=None,
        help="what the projections hold (default: counts, normalised by flats and darks, when the file "
        "carries flat frames; else absorbance); transmission and counts get -log",
    )
    from reconstruction.engine import METHOD_INFO, METHODS

    rp.add_argument(
        "--method",
        choices=METHODS,
        default="wbp",
        help="; ".join(f"{m}: {METHOD_INFO[m]['help']}" for m in METHODS),
    )
    rp.add_argument("--iterations", type=int, default=None, help="SIRT/CGLS/mbir/psf-sirt/psf-mbir iterations")
    rp.add_argument(
        "--strength",
        type=float,
        default=None,
        help="mbir, psf-mbir: multiplies the data-driven regularisation weight (default 1; larger = smoother)",
    )
    rp.add_argument(
        "--photons",
        type=float,
        default=None,
        help="mbir, psf-mbir: incident photons per pixel, when known (Poisson weights)",
    )
    rp.add_argument("--filter", default=None, help="WBP filter: ram-lak (default), shepp-logan, cosine, hamming, hann")
    rp.add_argument(
        "--zone-width-nm",
        type=float,
        default=None,
        help="psf-sirt, psf-mbir: outer zone width of the zone plate (nm); with --energy-ev and --zones",
    )
    rp.add_argument(
        "--energy-ev", type=float, default=520.0, help="psf-sirt, psf-mbir: photon energy (eV, default 520)"
    )
    rp.add_argument(
        "--zones", type=int, default=500, help="psf-sirt, psf-mbir: zone count of the zone plate (default 500)"
    )
    rp.add_argument(
        "--focal-plane-um",
        type=float,
        default=None,
        help="psf-sirt, psf-mbir: focal plane, µm along the beam from the tilt axis (default 0)",
    )
    rp.add_argument("--thickness", type=int, default=None, help="volume thickness (voxels)")
    rp.add_argument("--slab-size", type=int, default=None, help="slices per slab")
    rp.add_argument(
        "--axis-offset",
        type=float,
        default=0.0,
        help="tilt-axis position relative to the detector centre (columns - 1) / 2 (pixels)",
    )
    rp.add_argument(
        "--pixel-size-um", type=float, default=None, help="voxel size for the MRC header (default: from the input)"
    )
    rp.add_argument(
        "--focal-json",
        help="focal-series sidecar (default: SERIES with suffix .focal.json, used when it exists)",
    )
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
