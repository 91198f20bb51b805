"""Input checks run before any heavy work: each failure is a ``ValueError`` naming the problem."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "check_angles",
    "check_finite",
    "check_flat",
    "check_focal_series",
    "check_pixel_size",
    "check_projections",
    "check_series",
]


def check_angles(angles: ArrayLike, n_projections: int | None = None, *, monotonic: bool = True) -> NDArray[np.float64]:
    """Check tilt angles (degrees): 1-D, finite, strictly monotonic, count matching the stack.

    The one angle check of the engine (reconstruction, projectors, simulator, readers).

    Parameters
    ----------
    angles : array_like
        Tilt angles in degrees.
    n_projections : int, optional
        Number of projections in the stack they belong to.
    monotonic : bool
        Require a strictly monotonic series without duplicates and spanning less than a full turn
        (a tilt series); ``False`` for projecting at arbitrary angles.

    Returns
    -------
    ndarray, float64
        The angles as a float64 array.
    """
    a = np.asarray(angles, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"angles must be a 1-D sequence, got an array of shape {a.shape}")
    if a.size == 0:
        raise ValueError("no tilt angles given")
    if not np.all(np.isfinite(a)):
        raise ValueError("tilt angles contain NaN or infinite values")
    if n_projections is not None and a.size != n_projections:
        raise ValueError(f"angle count does not match the stack: {a.size} angles for {n_projections} projections")
    if monotonic and a.size > 1:
        d = np.diff(a)
        if np.any(d == 0):
            i = int(np.flatnonzero(d == 0)[0])
            raise ValueError(f"duplicate tilt angle {a[i]:g}° at positions {i} and {i + 1}")
        if not (np.all(d > 0) or np.all(d < 0)):
            i = int(np.flatnonzero(np.sign(d) != np.sign(d[0]))[0])
            raise ValueError(f"tilt angles are not monotonic: {a[i]:g}° then {a[i + 1]:g}° at position {i + 1}")
        if abs(a[-1] - a[0]) >= 360:
            raise ValueError(f"tilt angles span {abs(a[-1] - a[0]):g}°, more than a full turn")
    return a


def check_finite(array: NDArray, what: str = "projections") -> None:
    """Raise if ``array`` holds NaN or infinite values, saying where the first one is."""
    if np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.complexfloating):
        bad = ~np.isfinite(array)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"{what} contain {int(bad.sum())} NaN or infinite pixels (first at index {where})")


def check_projections(projections: ArrayLike, ndim: tuple[int, ...] = (3,)) -> NDArray:
    """Check a projection stack: numeric, expected dimensionality, non-empty, finite."""
    p = np.asarray(projections)
    if p.dtype == object or not (np.issubdtype(p.dtype, np.floating) or np.issubdtype(p.dtype, np.integer)):
        raise ValueError(f"projections must be a numeric array, got dtype {p.dtype}")
    if p.ndim not in ndim:
        layouts = {3: "(tilts, rows, columns)", 4: "(tilts, focal planes, rows, columns)"}
        raise ValueError(
            "projections have the wrong dimensions: expected "
            + " or ".join(f"{n}-D {layouts.get(n, '')}".rstrip() for n in ndim)
            + f", got shape {p.shape}"
        )
    if 0 in p.shape:
        raise ValueError(f"projections are empty: shape {p.shape}")
    if p.ndim >= 2 and p.shape[-1] < 2:
        raise ValueError(f"projections need at least 2 detector columns, got shape {p.shape}")
    check_finite(p)
    return p


def check_series(projections: ArrayLike, angles: ArrayLike) -> tuple[NDArray, NDArray[np.float64]]:
    """Check a (tilts, rows, columns) series and its angles together."""
    p = check_projections(projections)
    a = check_angles(angles, p.shape[0])
    return p, a


def check_focal_series(
    projections: ArrayLike, angles: ArrayLike, focal_planes_um: ArrayLike, pixel_size_um: float
) -> tuple[NDArray, NDArray[np.float64], NDArray[np.float64]]:
    """Check a focal series ``(tilts, focal planes, rows, columns)``, its angles and its optics.

    Returns the projections, the angles (:func:`check_angles`) and the plane positions (µm along
    the beam: finite, distinct, one per plane) as float64.
    """
    p = check_projections(projections, ndim=(4,))
    a = check_angles(angles, p.shape[0])
    f = np.asarray(focal_planes_um, dtype=np.float64)
    if f.ndim != 1 or f.size != p.shape[1]:
        raise ValueError(f"got {f.size} focal plane positions for {p.shape[1]} focal planes")
    if not np.all(np.isfinite(f)) or np.unique(f).size != f.size:
        raise ValueError("focal plane positions must be finite and distinct")
    check_pixel_size(pixel_size_um)
    return p, a, f


def check_pixel_size(pixel_size_um: float) -> float:
    """A pixel size in µm: a finite positive number."""
    try:
        v = float(pixel_size_um)
    except (TypeError, ValueError):
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um!r}") from None
    if not (np.isfinite(v) and v > 0):
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um!r}")
    return v


def check_flat(flat: ArrayLike, dark: ArrayLike | None = None) -> None:
    """Check a flat field (and dark field): finite, and flat − dark strictly positive."""
    f = np.asarray(flat, dtype=np.float64)
    check_finite(f, "flat field")
    ref = f
    if dark is not None:
        d = np.asarray(dark, dtype=np.float64)
        check_finite(d, "dark field")
        ref = f - d
    bad = ref <= 0
    if bad.any():
        raise ValueError(
            f"flat field has {int(bad.sum())} zero or negative pixels"
            + (" after dark subtraction" if dark is not None else "")
        )
