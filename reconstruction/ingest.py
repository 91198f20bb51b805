"""Reading a tilt-series file the way the engine will: shape, angles and whatever metadata it carries.

Every reader here goes through `reconstruction.engine.io`, so a file the ingest accepts is a file the
reconstruction can read. Problems come back as `IngestRefused` with a sentence a bench scientist can act on.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reconstruction.engine import io as engine_io
from reconstruction.engine.prepare import to_absorbance
from reconstruction.engine.validate import check_angles
from reconstruction.models import DatasetFormat, ProjectionValues

# Above this the ingest refuses a series before reading it (decoded float32 size of the projections).
DEFAULT_MAX_DECODED_BYTES = 16 * 1024**3
ANGLE_RANGE = re.compile(
    r"^\s*(-?\d+(?:\.\d+)?)\s*(?::|to|\.\.)\s*(-?\d+(?:\.\d+)?)\s*(?::|step)\s*(\d+(?:\.\d+)?)\s*$"
)


class IngestRefused(ValueError):
    """The file cannot become a dataset; the message says why and what to do."""

    def __init__(self, message: str, field: str = "file"):
        super().__init__(message)
        self.field = field


@dataclass
class SeriesInfo:
    """What a tilt-series file says about itself."""

    format: str
    tilts: int
    rows: int
    columns: int
    angles: list[float] | None
    focal_planes: int = 1
    focal_planes_um: list[float] | None = None
    pixel_size_nm: float | None = None
    photon_energy_ev: float | None = None
    exposure_s: float | None = None
    zone_plate: dict[str, Any] | None = None
    projection_values: str = ProjectionValues.ABSORBANCE
    found: list[str] = field(default_factory=list)
    nxtomo_entry: str | None = None  # the NXtomo entry read, e.g. "entry0000 (first of 2 NXtomo entries)"


def parse_angles(text: str) -> list[float]:
    """Angles typed on a form: "-60:60:2" (from:to:step) or numbers separated by commas, spaces or lines."""
    text = (text or "").strip()
    if not text:
        raise IngestRefused("Give the tilt angles: a .tlt file, or type them as -60:60:2 or a list.", "angles")
    match = ANGLE_RANGE.match(text)
    if match:
        low, high, step = (float(g) for g in match.groups())
        if step <= 0:
            raise IngestRefused("The angle step must be positive (e.g. -60:60:2).", "angles")
        count = int(round(abs(high - low) / step)) + 1
        if count > 100_000:
            raise IngestRefused(f"{text!r} gives {count} angles; a tilt series has at most a few thousand.", "angles")
        direction = 1 if high >= low else -1
        values = [low + direction * i * step for i in range(count)]
    elif ":" in text:
        raise IngestRefused(
            f"Tilt angles: {text!r} is not a range; write from:to:step in degrees with plain numbers, e.g. -60:60:2.",
            "angles",
        )
    else:
        values = []
        for token in re.split(r"[,;\s]+", text):
            if not token:
                continue
            try:
                values.append(float(token))
            except ValueError:
                raise IngestRefused(f"Tilt angles: {token!r} is not a number of degrees.", "angles") from None
    try:
        return [float(a) for a in check_angles(values)]
    except ValueError as error:
        raise IngestRefused(f"Tilt angles: {error}.", "angles") from None


def read_tlt_text(data: bytes) -> list[float]:
    """An IMOD .tlt file's content (one angle a line)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise IngestRefused(
            "The angles file is not text: give an IMOD .tlt file, one angle a line.", "angles"
        ) from None
    lines = [line.split()[0] for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return parse_angles("\n".join(lines))


def parse_sidecar(data: bytes | str | dict) -> dict[str, Any]:
    """A focal-series sidecar: {"focal_planes_um": [...], "pixel_size_um": ..., "zone_plate": {...}}."""
    try:
        meta = data if isinstance(data, dict) else json.loads(data)
        planes = [float(f) for f in meta["focal_planes_um"]]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise IngestRefused(
            f"The focal-series sidecar must be JSON with a focal_planes_um list ({error}).", "sidecar"
        ) from None
    if not planes or len(planes) > 64 or not all(np.isfinite(planes)):
        raise IngestRefused("The sidecar's focal_planes_um must list 1 to 64 finite focal positions in µm.", "sidecar")
    clean: dict[str, Any] = {"focal_planes_um": planes}
    if meta.get("pixel_size_um") is not None:
        clean["pixel_size_um"] = float(meta["pixel_size_um"])
    if meta.get("zone_plate"):
        if not isinstance(meta["zone_plate"], dict):
            raise IngestRefused("The sidecar's zone_plate must be an object of zone-plate parameters.", "sidecar")
        clean["zone_plate"] = meta["zone_plate"]
    return clean


def format_of(name: str, has_sidecar: bool) -> str:
    suffix = Path(name).suffix.lower()
    if has_sidecar:
        if suffix in engine_io.MRC_SUFFIXES | engine_io.TIFF_SUFFIXES:
            return DatasetFormat.FOCAL_SERIES
        raise IngestRefused("A focal series is an MRC or TIFF stack (tilt-major) with its sidecar.", "sidecar")
    if suffix in engine_io.MRC_SUFFIXES:
        return DatasetFormat.MRC
    if suffix in engine_io.TIFF_SUFFIXES:
        return DatasetFormat.TIFF
    if suffix in engine_io.HDF5_SUFFIXES:
        return DatasetFormat.NXTOMO
    raise IngestRefused(
        f"{Path(name).name}: not a tilt-series file this LIMS reads. Use an MRC stack (.mrc, .st, .ali) with a "
        ".tlt file, a TIFF stack (.tif) with angles, or HDF5/NXtomo (.h5, .nxs)."
    )


def _guess_values(sample: np.ndarray) -> str:
    """Transmission lies in (0, ~1.2]; absorbance of a cell on a grid rarely exceeds 5 and is mostly > 0."""
    finite = sample[np.isfinite(sample)]
    if finite.size and finite.min() > 0 and finite.max() <= 1.2 and np.median(finite) > 0.2:
        return ProjectionValues.TRANSMISSION
    return ProjectionValues.ABSORBANCE


def declared_shape(path: Path, *, name: str, fmt: str) -> tuple[int, ...] | None:
    """The shape a file's header announces, read without decoding the pixels (None: not stated)."""
    suffix = Path(name).suffix.lower()
    try:
        if fmt == DatasetFormat.NXTOMO:
            return engine_io.nxtomo_data_shape(path)
        if suffix in engine_io.TIFF_SUFFIXES:
            import tifffile

            with tifffile.TiffFile(path) as tif:
                return tuple(int(n) for n in tif.series[0].shape) if tif.series else None
        import mrcfile

        with mrcfile.open(path, header_only=True, permissive=True) as mrc:
            header = mrc.header
            return (int(header.nz), int(header.ny), int(header.nx))
    except Exception:  # unreadable headers are reported by the full read that follows
        return None


def inspect(
    path: Path, *, name: str, angles: list[float] | None, sidecar: dict | None, max_decoded_bytes: int
) -> SeriesInfo:
    """Read the file as the engine will and describe it; refuses what the engine could not reconstruct."""
    fmt = format_of(name, sidecar is not None)
    shape = declared_shape(path, name=name, fmt=fmt)
    if shape and int(np.prod(shape, dtype=np.float64)) * 4 > max_decoded_bytes:
        raise IngestRefused(
            f"{name}: its header announces {' × '.join(map(str, shape))} values "
            f"({np.prod(shape, dtype=np.float64) * 4 / 2**30:.1f} GiB as float32); the limit is "
            f"{max_decoded_bytes / 2**30:.1f} GiB. Bin the projections first, or check the file is not damaged."
        )
    try:
        if fmt == DatasetFormat.NXTOMO:
            series = engine_io.read_nxtomo(path)
            data, found_angles = series.projections, series.angles
            px_um = series.pixel_size_um
            extras = {
                key: getattr(series, key)
                for key in ("photon_energy_ev", "exposure_s")
                if getattr(series, key) is not None
            }
            values = ProjectionValues.COUNTS if series.flats is not None else None
            entry = series.entry
            if len(series.entries) > 1:
                entry += f" (first of {len(series.entries)} NXtomo entries)"
        elif Path(name).suffix.lower() in engine_io.TIFF_SUFFIXES:
            data, px_um, found_angles, extras, values = engine_io.read_tiff(path), None, None, {}, None
            entry = None
        else:
            data, px_um = engine_io.read_mrc(path)
            found_angles, extras, values, entry = None, {}, None, None
    except MemoryError:
        raise IngestRefused(f"{name}: too large to read on this server.") from None
    except ValueError as error:
        text = str(error).replace(str(path), name)
        raise IngestRefused(f"{text}. Is the file complete and in the format its name says?") from None
    data = np.asarray(data)
    if data.ndim == 2:
        data = data[None]
    if data.ndim != 3:
        raise IngestRefused(f"{name}: a tilt series is a stack of 2-D projections; this file holds shape {data.shape}.")
    if data.dtype.kind not in "iuf":
        raise IngestRefused(f"{name}: projections must be numbers (integers or floats), not {data.dtype}.")
    if data.size * 4 > max_decoded_bytes:
        raise IngestRefused(
            f"{name}: {data.shape} is {data.size * 4 / 2**30:.1f} GiB as float32; the limit is "
            f"{max_decoded_bytes / 2**30:.1f} GiB. Bin the projections first."
        )
    planes = 1
    focal_um = None
    if fmt == DatasetFormat.FOCAL_SERIES:
        focal_um = sidecar["focal_planes_um"]
        planes = len(focal_um)
        if data.shape[0] % planes:
            raise IngestRefused(
                f"{name}: {data.shape[0]} sections are not a whole number of tilts of {planes} focal planes "
                "(a focal series is stored tilt-major: section = tilt × planes + plane).",
                "sidecar",
            )
    tilts = data.shape[0] // planes
    sample = data[:: max(1, data.shape[0] // 8)].astype(np.float32, copy=False)
    if not np.all(np.isfinite(sample)):
        raise IngestRefused(f"{name}: the projections contain NaN or infinite values; export them again.")
    found: list[str] = []
    if found_angles is not None:
        found.append("angles")
        if angles is None:
            angles = [float(a) for a in found_angles]
    if angles is not None and len(angles) != tilts:
        raise IngestRefused(f"{len(angles)} tilt angles were given for {tilts} projections in {name}.", "angles")
    if angles is not None:
        try:
            check_angles(angles, tilts)
        except ValueError as error:
            raise IngestRefused(f"Tilt angles: {error}.", "angles") from None
    info = SeriesInfo(
        format=fmt,
        tilts=tilts,
        rows=int(data.shape[1]),
        columns=int(data.shape[2]),
        angles=angles,
        focal_planes=planes,
        focal_planes_um=focal_um,
        projection_values=values or _guess_values(sample),
        nxtomo_entry=entry,
    )
    if px_um is None and sidecar and sidecar.get("pixel_size_um"):
        px_um = sidecar["pixel_size_um"]
    if px_um:
        info.pixel_size_nm = float(px_um) * 1000.0
        found.append("pixel_size_nm")
    for key, value in extras.items():
        setattr(info, key, value)
        found.append(key)
    if sidecar and sidecar.get("zone_plate"):
        info.zone_plate = sidecar["zone_plate"]
        found.append("zone_plate")
    info.found = found
    return info


def load_projections(
    path: Path, *, fmt: str, projection_values: str, focal_planes: int = 1, name: str | None = None
) -> np.ndarray:
    """The absorbance the engine reconstructs: (tilts, rows, columns), or (tilts, planes, rows, columns)."""
    if fmt == DatasetFormat.NXTOMO:
        series = engine_io.read_nxtomo(path)
        if series.flats is not None:  # the engine's one path: normalised by flats and darks, then −log
            return series.absorbance(ProjectionValues.COUNTS)
        data = series.projections
    elif Path(name or path.name).suffix.lower() in engine_io.TIFF_SUFFIXES:
        data = engine_io.read_tiff(path)
    else:
        data, _ = engine_io.read_mrc(path)
    data = np.asarray(data, dtype=np.float32)
    if data.ndim == 2:
        data = data[None]
    if projection_values == ProjectionValues.TRANSMISSION:
        data = to_absorbance(data, ProjectionValues.TRANSMISSION)
    if focal_planes > 1:
        data = data.reshape(data.shape[0] // focal_planes, focal_planes, *data.shape[1:])
    return np.ascontiguousarray(data, dtype=np.float32)
