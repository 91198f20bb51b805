"""Reading tilt series and writing volumes: MRC (+ IMOD .tlt), TIFF stacks, HDF5/NXtomo.

Every reader checks what it reads and raises ``ValueError`` naming the file and the problem
(missing, unreadable, truncated, wrong dimensions, angle count) before any heavy work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import ArrayLike, NDArray

from reconstruction.engine.validate import check_angles

__all__ = [
    "TiltSeries",
    "nxtomo_data_shape",
    "nxtomo_entries",
    "read_mrc",
    "read_nxtomo",
    "read_tiff",
    "read_tilt_series",
    "read_tlt",
    "write_mrc",
    "write_nxtomo",
    "write_tlt",
    "write_volume",
]

MRC_SUFFIXES = {".mrc", ".mrcs", ".st", ".ali", ".rec", ".map"}
TIFF_SUFFIXES = {".tif", ".tiff"}
HDF5_SUFFIXES = {".h5", ".hdf5", ".hdf", ".nx", ".nxs"}


@dataclass
class TiltSeries:
    """A tilt series as read from disk.

    Attributes
    ----------
    projections : ndarray, shape (tilts, rows, columns)
    angles : ndarray, shape (tilts,), degrees, or None if the file holds none
    pixel_size_um : float or None
    flats, darks : ndarray or None
        Flat (I0) and dark images (NXtomo ``image_key`` 1 and 2), shape (n, rows, columns).
    entry : str or None
        NXtomo only: the entry read (e.g. ``entry0000``); ``entries`` lists every NXtomo entry in
        the file, so a reader of a multi-entry file can say which one it took.
    photon_energy_ev, exposure_s : float or None
        NXtomo only: photon energy and exposure per frame, when the file gives them.
    """

    projections: NDArray
    angles: NDArray[np.float64] | None = None
    pixel_size_um: float | None = None
    flats: NDArray | None = None
    darks: NDArray | None = None
    entry: str | None = None
    entries: tuple[str, ...] = ()
    photon_energy_ev: float | None = None
    exposure_s: float | None = None

    def absorbance(self, values: str | None = None) -> NDArray[np.float32]:
        """The projections as absorbance (−ln I/I0), by :func:`reconstruction.engine.prepare.to_absorbance`.

        ``values`` says what the file holds ("absorbance", "transmission" or "counts"); by default
        counts when the series carries flat frames (normalised by flats and darks), else absorbance.
        """
        from reconstruction.engine.prepare import to_absorbance

        return to_absorbance(self.projections, values, flats=self.flats, darks=self.darks)


def _exists(path: Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"cannot read {path}: no such file")
    return path


def read_tlt(path: str | Path) -> NDArray[np.float64]:
    """Read an IMOD ``.tlt`` file (one angle in degrees a line; blank lines ignored)."""
    path = _exists(Path(path))
    values = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            values.append(float(text.split()[0]))
        except ValueError:
            raise ValueError(f"{path}, line {n}: not a tilt angle: {text!r}") from None
    return check_angles(values)


def write_tlt(path: str | Path, angles: ArrayLike) -> None:
    """Write angles (degrees) as an IMOD ``.tlt`` file."""
    Path(path).write_text("".join(f"{a:.3f}\n" for a in np.asarray(angles, float).ravel()))


def read_mrc(path: str | Path) -> tuple[NDArray, float | None]:
    """Read an MRC stack; returns ``(data, pixel size in µm or None)``."""
    import mrcfile

    path = _exists(Path(path))
    try:
        with mrcfile.open(path, permissive=False, mode="r") as mrc:
            data = np.array(mrc.data)
            vx = float(mrc.voxel_size.x)
    except Exception as exc:  # mrcfile raises ValueError/OSError/EOFError for bad files
        raise ValueError(f"cannot read {path} as MRC (unreadable or truncated): {exc}") from exc
    if data.ndim == 2:
        data = data[None]
    return data, (vx * 1e-4 if vx > 0 else None)


def write_mrc(path: str | Path, data: ArrayLike, voxel_size_um: float | None = None) -> None:
    """Write a float32 MRC file; the voxel size goes to the header in Å (IMOD, Chimera, napari)."""
    import mrcfile

    arr = np.ascontiguousarray(data, dtype=np.float32)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with mrcfile.new(path, overwrite=True) as mrc:
        mrc.set_data(arr)
        if voxel_size_um is not None:
            mrc.voxel_size = float(voxel_size_um) * 1e4
        mrc.update_header_stats()


def write_volume(path: str | Path, volume: ArrayLike, voxel_size_um: float | None = None) -> None:
    """Write a reconstructed volume ``(rows, thickness, columns)`` as MRC.

    The MRC sections are the volume's first axis (rows along the tilt axis), so each section is one
    reconstructed x–z slice.
    """
    vol = np.asarray(volume)
    if vol.ndim != 3:
        raise ValueError(f"a volume must be 3-D, got shape {vol.shape}")
    write_mrc(path, vol, voxel_size_um)


def read_tiff(path: str | Path) -> NDArray:
    """Read a multi-page TIFF stack as ``(tilts, rows, columns)``."""
    import tifffile

    path = _exists(Path(path))
    try:
        data = tifffile.imread(path)
    except Exception as exc:
        raise ValueError(f"cannot read {path} as TIFF (unreadable or truncated): {exc}") from exc
    return data[None] if data.ndim == 2 else data


def write_nxtomo(
    path: str | Path,
    projections: ArrayLike,
    angles: ArrayLike,
    *,
    flats: ArrayLike | None = None,
    darks: ArrayLike | None = None,
    pixel_size_um: float | None = None,
) -> None:
    """Write an NXtomo HDF5 file (``/entry/data/data``, ``image_key``, ``rotation_angle``)."""
    import h5py

    proj = np.asarray(projections)
    parts, keys, ang = [proj], [np.zeros(len(proj), int)], [np.asarray(angles, float)]
    for extra, key in ((flats, 1), (darks, 2)):
        if extra is not None:
            e = np.asarray(extra, dtype=proj.dtype)
            e = e[None] if e.ndim == 2 else e
            parts.append(e)
            keys.append(np.full(len(e), key))
            ang.append(np.zeros(len(e)))
    with h5py.File(path, "w") as f:
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.create_dataset("definition", data="NXtomo")
        det = entry.create_group("instrument/detector")
        det.attrs["NX_class"] = "NXdetector"
        det.create_dataset("data", data=np.concatenate(parts))
        det.create_dataset("image_key", data=np.concatenate(keys))
        if pixel_size_um is not None:
            d = det.create_dataset("x_pixel_size", data=float(pixel_size_um) * 1e-6)
            d.attrs["units"] = "m"
        sample = entry.create_group("sample")
        sample.attrs["NX_class"] = "NXsample"
        ra = sample.create_dataset("rotation_angle", data=np.concatenate(ang))
        ra.attrs["units"] = "degree"
        data = entry.create_group("data")
        data.attrs["NX_class"] = "NXdata"
        data["data"] = det["data"]
        data["rotation_angle"] = ra
        data["image_key"] = det["image_key"]


_NX_LENGTH_TO_UM = {
    "m": 1e6,
    "metre": 1e6,
    "meter": 1e6,
    "mm": 1e3,
    "um": 1.0,
    "µm": 1.0,
    "micron": 1.0,
    "micrometer": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
}
_NX_ENERGY_TO_EV = {"ev": 1.0, "kev": 1e3, "j": 1 / 1.602176634e-19}
_NX_TIME_TO_S = {"s": 1.0, "second": 1.0, "seconds": 1.0, "sec": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}
_NX_DATA_PATHS = ("instrument/detector/data", "data/data")


def _nx_text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.ndarray):
        return _nx_text(value.ravel()[0]) if value.size else ""
    return str(value)


def _nx_definition(group) -> str:
    """The application definition a group declares (``definition`` field or attribute), or ''."""
    import h5py

    if "definition" in group and isinstance(group["definition"], h5py.Dataset):
        return _nx_text(group["definition"][()]).strip()
    return _nx_text(group.attrs.get("definition", "")).strip()


def _nx_class(group) -> str:
    return _nx_text(group.attrs.get("NX_class", "")).strip()


def _nx_data_path(group) -> str | None:
    for key in _NX_DATA_PATHS:
        if key in group:
            return key
    return None


def _nx_find_entries(f) -> list[str]:
    """NXtomo entries of an open file, in file order (top-level groups and their NXsubentry groups).

    An entry is a group whose ``definition`` is NXtomo; when none declares it, NXentry groups (or a
    group named ``entry``) holding ``instrument/detector/data`` or ``data/data`` are taken instead.
    """
    import h5py

    groups: list[tuple[str, object]] = []
    for name, obj in f.items():
        if isinstance(obj, h5py.Group):
            groups.append((name, obj))
            for sub, child in obj.items():
                if isinstance(child, h5py.Group) and _nx_class(child) == "NXsubentry":
                    groups.append((f"{name}/{sub}", child))
    tomo = [n for n, g in groups if _nx_definition(g).lower() == "nxtomo" and _nx_data_path(g)]
    if tomo:
        return tomo
    return [
        n
        for n, g in groups
        if (_nx_class(g) in ("NXentry", "NXsubentry") or n == "entry") and _nx_data_path(g) and "/" not in n
    ]


def _nx_pick_entry(f, entry: str | None) -> tuple[str, list[str]]:
    entries = _nx_find_entries(f)
    if entry is not None:
        name = str(entry).strip("/")
        if name not in f or name not in entries:
            found = ", ".join(entries) if entries else "none"
            raise ValueError(f"no NXtomo entry {name!r} (NXtomo entries in the file: {found})")
        return name, entries
    if not entries:
        tops = ", ".join(f.keys()) or "nothing"
        raise ValueError(
            "no NXtomo entry: no group with definition NXtomo (or NXentry) holding "
            f"instrument/detector/data or data/data (top level holds: {tops})"
        )
    return entries[0], entries


def _nx_quantity(group, keys: tuple[str, ...], units: dict[str, float], default_unit: str) -> float | None:
    """The first finite value found under ``keys`` in a unit we know, converted by its ``units`` attribute."""
    for key in keys:
        if key not in group:
            continue
        try:
            values = np.asarray(group[key][()], dtype=float).ravel()
        except (TypeError, ValueError):
            continue
        values = values[np.isfinite(values)]
        if not values.size:
            continue
        unit = _nx_text(group[key].attrs.get("units", default_unit)).strip() or default_unit
        scale = units.get(unit.lower(), units.get(unit))
        if scale is None:  # a unit we cannot convert: better unknown than wrong
            continue
        return float(values.mean()) * scale
    return None


def nxtomo_entries(path: str | Path) -> list[str]:
    """Names of the NXtomo entries a file holds, in file order (found by ``definition``, not by name)."""
    import h5py

    path = _exists(Path(path))
    try:
        with h5py.File(path, "r") as f:
            return _nx_find_entries(f)
    except Exception as exc:
        raise ValueError(f"cannot read {path} as HDF5 (unreadable or truncated): {exc}") from exc


def nxtomo_data_shape(path: str | Path, entry: str | None = None) -> tuple[int, ...]:
    """Shape of an NXtomo entry's frames (projections, flats and darks), read without decoding them."""
    import h5py

    path = _exists(Path(path))
    try:
        with h5py.File(path, "r") as f:
            name, _ = _nx_pick_entry(f, entry)
            return tuple(int(n) for n in f[name][_nx_data_path(f[name])].shape)
    except ValueError as exc:
        raise ValueError(f"cannot read {path} as NXtomo: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"cannot read {path} as HDF5 (unreadable or truncated): {exc}") from exc


def read_nxtomo(path: str | Path, entry: str | None = None) -> TiltSeries:
    """Read one NXtomo entry: projections, angles, flats and darks split by ``image_key``.

    Parameters
    ----------
    path : str or Path
        An HDF5 file holding one or more NXtomo entries (e.g. ``/entry`` or ESRF ``nxtomo``'s
        ``/entry0000``, ``/entry0001``); entries are found by their ``definition`` (NXtomo).
    entry : str, optional
        The entry to read (default: the first NXtomo entry). The one taken, and all the file holds,
        come back in ``TiltSeries.entry`` and ``TiltSeries.entries``; see :func:`nxtomo_entries`.

    Notes
    -----
    Frames are told apart by ``image_key_control`` when present (−1 alignment frames are dropped),
    else ``image_key`` (0 projection, 1 flat, 2 dark, 3 invalid). Angles, the pixel size (at the
    sample when ``sample/x_pixel_size`` is given), the photon energy and the exposure are converted
    from their ``units`` attributes.
    """
    import h5py

    path = _exists(Path(path))
    try:
        with h5py.File(path, "r") as f:
            name, entries = _nx_pick_entry(f, entry)
            g = f[name]
            data = np.array(g[_nx_data_path(g)])
            keys = None
            for key in (
                "instrument/detector/image_key_control",
                "instrument/detector/image_key",
                "data/image_key",
            ):
                if key in g:
                    keys = np.asarray(g[key][()], dtype=int).ravel()
                    break
            ang = None
            for key in ("sample/rotation_angle", "data/rotation_angle"):
                if key in g:
                    ang = np.asarray(g[key][()], dtype=float).ravel()
                    unit = _nx_text(g[key].attrs.get("units", "degree")).strip().lower()
                    if unit in ("rad", "radian", "radians"):
                        ang = np.rad2deg(ang)
                    elif unit not in ("degree", "degrees", "deg", ""):
                        raise ValueError(f"{g.name}/{key}: unknown angle unit {unit!r}")
                    break
            px = _nx_quantity(
                g,
                (
                    "sample/x_pixel_size",
                    "instrument/detector/x_magnified_pixel_size",
                    "instrument/detector/x_pixel_size",
                ),
                _NX_LENGTH_TO_UM,
                "m",
            )
            energy = _nx_quantity(
                g,
                (
                    "instrument/beam/incident_energy",
                    "beam/incident_energy",
                    "instrument/source/energy",
                    "instrument/monochromator/energy",
                ),
                _NX_ENERGY_TO_EV,
                "keV",
            )
            exposure = _nx_quantity(g, ("instrument/detector/count_time",), _NX_TIME_TO_S, "s")
    except ValueError as exc:
        raise ValueError(f"cannot read {path} as NXtomo: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"cannot read {path} as HDF5 (unreadable or truncated): {exc}") from exc
    where = f"{path} (entry {name})"
    if data.ndim != 3:
        raise ValueError(f"{where}: NXtomo data must be 3-D (frames, rows, columns), got {data.shape}")
    if keys is None:
        keys = np.zeros(len(data), int)
    if len(keys) != len(data):
        raise ValueError(f"{where}: {len(keys)} image keys for {len(data)} frames")
    if ang is not None and len(ang) != len(data):
        raise ValueError(f"{where}: {len(ang)} rotation angles for {len(data)} frames")
    sel = keys == 0
    if not sel.any():
        raise ValueError(f"{where}: no projections (no frame has image_key 0)")
    flats = data[keys == 1] if np.any(keys == 1) else None
    darks = data[keys == 2] if np.any(keys == 2) else None
    try:
        angles = check_angles(ang[sel], int(sel.sum())) if ang is not None else None
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return TiltSeries(
        data[sel],
        angles,
        px,
        flats,
        darks,
        entry=name,
        entries=tuple(entries),
        photon_energy_ev=energy,
        exposure_s=exposure,
    )


def read_tilt_series(
    path: str | Path, angles: str | Path | ArrayLike | None = None, *, entry: str | None = None
) -> TiltSeries:
    """Read a tilt series by file type (MRC, TIFF, HDF5/NXtomo) with its angles.

    Parameters
    ----------
    path : str or Path
        ``.mrc/.st/.ali/.mrcs``, ``.tif/.tiff`` or ``.h5/.hdf5/.nxs``.
    angles : path to a .tlt file, or array_like of degrees, optional
        Required for MRC and TIFF unless a ``.tlt`` file with the same stem exists next to an MRC.
    entry : str, optional
        NXtomo only: the entry to read (default: the first NXtomo entry; see :func:`read_nxtomo`).

    Returns
    -------
    TiltSeries
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if entry is not None and suffix not in HDF5_SUFFIXES:
        raise ValueError(f"{path}: an entry applies to NXtomo (HDF5) files only")
    if suffix in HDF5_SUFFIXES:
        series = read_nxtomo(path, entry)
    elif suffix in MRC_SUFFIXES:
        data, px = read_mrc(path)
        series = TiltSeries(data, None, px)
    elif suffix in TIFF_SUFFIXES:
        series = TiltSeries(read_tiff(path))
    else:
        _exists(path)
        raise ValueError(f"cannot read {path}: unknown tilt-series format {suffix!r}")
    if angles is not None:
        if isinstance(angles, (str, Path)):
            series.angles = read_tlt(angles)
        else:
            series.angles = check_angles(angles)
    elif series.angles is None and path.with_suffix(".tlt").is_file():
        series.angles = read_tlt(path.with_suffix(".tlt"))
    if series.angles is None:
        raise ValueError(f"no tilt angles for {path}: give a .tlt file or a list of angles")
    if series.projections.ndim != 3:
        raise ValueError(f"{path}: a tilt series must be 3-D, got shape {series.projections.shape}")
    check_angles(series.angles, series.projections.shape[0])
    return series
