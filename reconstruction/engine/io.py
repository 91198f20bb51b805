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
    """

    projections: NDArray
    angles: NDArray[np.float64] | None = None
    pixel_size_um: float | None = None
    flats: NDArray | None = None
    darks: NDArray | None = None


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


def read_nxtomo(path: str | Path) -> TiltSeries:
    """Read an NXtomo file: projections, angles, flats and darks split by ``image_key``."""
    import h5py

    path = _exists(Path(path))
    try:
        with h5py.File(path, "r") as f:
            if "entry/instrument/detector/data" in f:
                det = f["entry/instrument/detector"]
                data = np.array(det["data"])
                keys = np.array(det["image_key"]) if "image_key" in det else None
            elif "entry/data/data" in f:
                data = np.array(f["entry/data/data"])
                keys = np.array(f["entry/data/image_key"]) if "entry/data/image_key" in f else None
            else:
                raise ValueError("no /entry/instrument/detector/data or /entry/data/data dataset")
            ang = None
            for key in ("entry/sample/rotation_angle", "entry/data/rotation_angle"):
                if key in f:
                    ang = np.array(f[key], dtype=float)
                    if f[key].attrs.get("units", "degree") in ("rad", "radian", "radians"):
                        ang = np.rad2deg(ang)
                    break
            px = None
            if "entry/instrument/detector/x_pixel_size" in f:
                px = float(np.array(f["entry/instrument/detector/x_pixel_size"])) * 1e6
    except ValueError as exc:
        raise ValueError(f"cannot read {path} as NXtomo: {exc}") from exc
    except Exception as exc:
        raise ValueError(f"cannot read {path} as HDF5 (unreadable or truncated): {exc}") from exc
    if data.ndim != 3:
        raise ValueError(f"{path}: NXtomo data must be 3-D (frames, rows, columns), got {data.shape}")
    if keys is None:
        keys = np.zeros(len(data), int)
    if ang is not None and len(ang) != len(data):
        raise ValueError(f"{path}: {len(ang)} rotation angles for {len(data)} frames")
    sel = keys == 0
    flats = data[keys == 1] if np.any(keys == 1) else None
    darks = data[keys == 2] if np.any(keys == 2) else None
    angles = check_angles(ang[sel], int(sel.sum())) if ang is not None else None
    return TiltSeries(data[sel], angles, px, flats, darks)


def read_tilt_series(path: str | Path, angles: str | Path | ArrayLike | None = None) -> TiltSeries:
    """Read a tilt series by file type (MRC, TIFF, HDF5/NXtomo) with its angles.

    Parameters
    ----------
    path : str or Path
        ``.mrc/.st/.ali/.mrcs``, ``.tif/.tiff`` or ``.h5/.hdf5/.nxs``.
    angles : path to a .tlt file, or array_like of degrees, optional
        Required for MRC and TIFF unless a ``.tlt`` file with the same stem exists next to an MRC.

    Returns
    -------
    TiltSeries
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in HDF5_SUFFIXES:
        series = read_nxtomo(path)
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
