"""Phantoms with known values: Shepp-Logan-like slices and volumes, and a thick soft X-ray "cell".

Volumes follow the engine's convention: shape ``(rows, thickness, columns)``, the tilt axis along
the rows, slice ``i`` being the x-z plane of row ``i``. Cell phantoms hold linear absorption
coefficients (LAC) in µm⁻¹ at water-window energies (about 520 eV).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from reconstruction.engine.projectors import centre

__all__ = [
    "CellLAC",
    "CellPhantom",
    "cell_phantom",
    "shepp_logan_2d",
    "shepp_logan_3d",
]

# Modified Shepp-Logan (Toft) in 2-D: value, a, b, x0, y0, angle (deg); coordinates in [-1, 1].
_SL2D = [
    (1.0, 0.69, 0.92, 0.0, 0.0, 0),
    (-0.8, 0.6624, 0.8740, 0.0, -0.0184, 0),
    (-0.2, 0.1100, 0.3100, 0.22, 0.0, -18),
    (-0.2, 0.1600, 0.4100, -0.22, 0.0, 18),
    (0.1, 0.2100, 0.2500, 0.0, 0.35, 0),
    (0.1, 0.0460, 0.0460, 0.0, 0.1, 0),
    (0.1, 0.0460, 0.0460, 0.0, -0.1, 0),
    (0.1, 0.0460, 0.0230, -0.08, -0.605, 0),
    (0.1, 0.0230, 0.0230, 0.0, -0.606, 0),
    (0.1, 0.0230, 0.0460, 0.06, -0.605, 0),
]

# 3-D modified Shepp-Logan (Kak & Slaney's ellipsoids with Toft's contrasts):
# value, semi-axes (x, y, z), centre (x, y, z), rotation about z (deg).
_SL3D = [
    (1.0, (0.69, 0.92, 0.81), (0.0, 0.0, 0.0), 0),
    (-0.8, (0.6624, 0.874, 0.78), (0.0, -0.0184, 0.0), 0),
    (-0.2, (0.11, 0.31, 0.22), (0.22, 0.0, 0.0), -18),
    (-0.2, (0.16, 0.41, 0.28), (-0.22, 0.0, 0.0), 18),
    (0.1, (0.21, 0.25, 0.41), (0.0, 0.35, -0.15), 0),
    (0.1, (0.046, 0.046, 0.05), (0.0, 0.1, 0.25), 0),
    (0.1, (0.046, 0.046, 0.05), (0.0, -0.1, 0.25), 0),
    (0.1, (0.046, 0.023, 0.05), (-0.08, -0.605, 0.0), 0),
    (0.1, (0.023, 0.023, 0.02), (0.0, -0.606, 0.0), 0),
    (0.1, (0.023, 0.046, 0.02), (0.06, -0.605, 0.0), 0),
]


def _check_shape(shape: tuple[int, ...], ndim: int) -> tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != ndim or min(shape) < 2:
        raise ValueError(f"phantom shape must be {ndim} sizes >= 2, got {shape!r}")
    return shape


def shepp_logan_2d(shape: tuple[int, int] = (128, 128), dtype: type = np.float32) -> np.ndarray:
    """Modified Shepp-Logan slice, zero outside the inscribed circle.

    Parameters
    ----------
    shape : (int, int)
        (thickness, columns) of the slice.

    Returns
    -------
    numpy.ndarray
        Values between 0 and 1.
    """
    nz, nx = _check_shape(shape, 2)
    z = (np.arange(nz) - centre(nz)) / (nz / 2)  # about the projectors' rotation centre
    x = (np.arange(nx) - centre(nx)) / (nx / 2)
    zz, xx = np.meshgrid(z, x, indexing="ij")
    out = np.zeros((nz, nx), dtype=np.float64)
    for value, a, b, x0, y0, ang in _SL2D:
        t = np.deg2rad(ang)
        # image y points up, row index down: y = -z
        dx, dy = xx - x0, -zz - y0
        u = dx * np.cos(t) + dy * np.sin(t)
        v = -dx * np.sin(t) + dy * np.cos(t)
        out[(u / a) ** 2 + (v / b) ** 2 <= 1.0] += value
    return np.clip(out, 0, None).astype(dtype)


def shepp_logan_3d(shape: tuple[int, int, int] = (64, 64, 64), dtype: type = np.float32) -> np.ndarray:
    """3-D modified Shepp-Logan volume of shape ``(rows, thickness, columns)``.

    The phantom's long axis runs along the rows (the tilt axis); values between 0 and 1.
    """
    ny, nz, nx = _check_shape(shape, 3)
    y = (np.arange(ny) - centre(ny)) / (ny / 2)  # about the projectors' rotation centre
    z = (np.arange(nz) - centre(nz)) / (nz / 2)
    x = (np.arange(nx) - centre(nx)) / (nx / 2)
    yy, zz, xx = np.meshgrid(y, z, x, indexing="ij")
    out = np.zeros((ny, nz, nx), dtype=np.float64)
    for value, (a, b, c), (x0, y0, z0), ang in _SL3D:
        t = np.deg2rad(ang)
        # ellipsoid's "y" (long) axis along the rows, its "z" along the thickness
        dx, dy, dz = xx - x0, yy - y0, zz - z0
        u = dx * np.cos(t) + dy * np.sin(t)
        v = -dx * np.sin(t) + dy * np.cos(t)
        out[(u / a) ** 2 + (v / b) ** 2 + (dz / c) ** 2 <= 1.0] += value
    return np.clip(out, 0, None).astype(dtype)


@dataclass(frozen=True)
class CellLAC:
    """Linear absorption coefficients (µm⁻¹) of cell compartments near 520 eV.

    Defaults are representative of published cryo-SXT values (ice/water about 0.11, cytoplasm about
    0.3, nucleus about 0.4, mitochondria about 0.45, lipid droplets 0.6-0.8).
    """

    ice: float = 0.109
    cytoplasm: float = 0.30
    nucleus: float = 0.40
    nucleolus: float = 0.50
    nuclear_envelope: float = 0.55
    mitochondrion: float = 0.45
    lipid_droplet: float = 0.72
    vesicle: float = 0.18
    vesicle_membrane: float = 0.50


LABELS = {
    "background": 0,
    "ice": 1,
    "cytoplasm": 2,
    "nucleus": 3,
    "nucleolus": 4,
    "nuclear_envelope": 5,
    "mitochondrion": 6,
    "lipid_droplet": 7,
    "vesicle": 8,
    "vesicle_membrane": 9,
}


@dataclass
class CellPhantom:
    """A simulated cell: LAC volume (µm⁻¹), integer labels and the geometry used."""

    volume: np.ndarray
    labels: np.ndarray
    pixel_size_um: float
    lac: CellLAC
    thickness_um: float
    label_names: dict[str, int] = field(default_factory=lambda: dict(LABELS))

    @property
    def cell_mask(self) -> np.ndarray:
        """Voxels inside the cell (any label other than background and ice)."""
        return self.labels >= LABELS["cytoplasm"]


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    a, b, c, d = q
    return np.array(
        [
            [a * a + b * b - c * c - d * d, 2 * (b * c - a * d), 2 * (b * d + a * c)],
            [2 * (b * c + a * d), a * a - b * b + c * c - d * d, 2 * (c * d - a * b)],
            [2 * (b * d - a * c), 2 * (c * d + a * b), a * a - b * b - c * c + d * d],
        ]
    )


def _ellipsoid_box(
    shape: tuple[int, ...], centre_px: np.ndarray, semi_px: np.ndarray, rotation: np.ndarray
) -> tuple[tuple[slice, ...], np.ndarray] | None:
    """Bounding box (slices) and boolean mask of an ellipsoid in a volume of ``shape``."""
    reach = float(np.max(semi_px)) + 1
    lo = np.maximum(np.floor(centre_px - reach).astype(int), 0)
    hi = np.minimum(np.ceil(centre_px + reach).astype(int) + 1, shape)
    if np.any(hi <= lo):
        return None
    grids = np.meshgrid(*[np.arange(a, b) for a, b in zip(lo, hi, strict=True)], indexing="ij")
    d = np.stack([g - c for g, c in zip(grids, centre_px, strict=True)], axis=-1)
    local = d @ rotation  # coordinates in the ellipsoid's frame
    mask = ((local / semi_px) ** 2).sum(-1) <= 1.0
    return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True)), mask


def _paint_ellipsoid(
    labels: np.ndarray,
    centre_px: np.ndarray,
    semi_px: np.ndarray,
    rotation: np.ndarray,
    label: int,
    *,
    shell_px: float = 0.0,
    shell_label: int = 0,
    inside: np.ndarray | None = None,
) -> None:
    """Paint an ellipsoid (optionally with a membrane shell) into ``labels`` in place."""
    if shell_px > 0:
        box = _ellipsoid_box(labels.shape, centre_px, semi_px + shell_px, rotation)
        if box is not None:
            sl, mask = box
            if inside is not None:
                mask &= inside[sl]
            labels[sl][mask] = shell_label
    box = _ellipsoid_box(labels.shape, centre_px, semi_px, rotation)
    if box is not None:
        sl, mask = box
        if inside is not None:
            mask &= inside[sl]
        labels[sl][mask] = label


def cell_phantom(
    shape: tuple[int, int, int],
    pixel_size_um: float,
    *,
    thickness_um: float | None = None,
    width_fraction: float = 0.9,
    lac: CellLAC | None = None,
    n_mitochondria: int | None = None,
    n_lipid: int | None = None,
    n_vesicles: int | None = None,
    seed: int | np.random.Generator | None = 0,
) -> CellPhantom:
    """A thick cell in a layer of ice, with organelles of known absorption.

    The cell is an ellipsoid (cytoplasm) holding a nucleus with envelope and nucleolus,
    mitochondria (elongated ellipsoids of random orientation), lipid droplets and membrane-bound
    vesicles. Everything lies inside the cylinder inscribed in the slice (radius
    ``min(thickness, columns) / 2``), so that every tilt sees the whole object.

    Parameters
    ----------
    shape : (int, int, int)
        Volume shape ``(rows, thickness, columns)``.
    pixel_size_um : float
        Voxel size in µm.
    thickness_um : float, optional
        Cell thickness along the thickness axis, µm. Default 80 % of the slice's smaller side.
    width_fraction : float
        Cell diameter across the slice and along the rows as a fraction of the inscribed circle
        (along the rows: of the row count).
    lac : CellLAC, optional
        Absorption coefficients, µm⁻¹.
    n_mitochondria, n_lipid, n_vesicles : int, optional
        Organelle counts; defaults scale with the cell volume.
    seed : int or numpy.random.Generator
        Random placement.

    Returns
    -------
    CellPhantom
        ``volume`` (float32, µm⁻¹) and ``labels`` (uint8).
    """
    ny, nz, nx = _check_shape(shape, 3)
    if not np.isfinite(pixel_size_um) or pixel_size_um <= 0:
        raise ValueError(f"pixel size must be a positive number of µm, got {pixel_size_um!r}")
    if not (0 < width_fraction <= 1):
        raise ValueError(f"width_fraction must be in (0, 1], got {width_fraction!r}")
    lac = lac or CellLAC()
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    p = float(pixel_size_um)
    radius_px = min(nz, nx) / 2 - 1.5
    if thickness_um is None:
        thickness_um = 0.8 * 2 * radius_px * p
    half_t = thickness_um / 2 / p
    if half_t > radius_px or half_t < 2:
        raise ValueError(
            f"cell thickness {thickness_um} µm does not fit the slice "
            f"({2 * radius_px * p:.3f} µm inscribed diameter) or is under 4 pixels"
        )
    semi = np.array([max(ny * width_fraction / 2, 2), half_t, max(radius_px * width_fraction, half_t)])
    semi[2] = min(semi[2], radius_px)
    # about the projectors' rotation centre, the geometric centre (n - 1) / 2
    middle = np.array([centre(ny), centre(nz), centre(nx)])

    labels = np.zeros((ny, nz, nx), dtype=np.uint8)
    zz = np.arange(nz)[:, None] - centre(nz)
    xx = np.arange(nx)[None, :] - centre(nx)
    disc = zz**2 + xx**2 <= radius_px**2
    ice_slab = disc & (np.abs(zz) <= min(half_t + 3, radius_px))
    labels[:, ice_slab] = LABELS["ice"]
    _paint_ellipsoid(labels, middle, semi, np.eye(3), LABELS["cytoplasm"])
    cell = labels == LABELS["cytoplasm"]

    # Nucleus: off-centre ellipsoid with an envelope and a nucleolus.
    nuc_semi = semi * np.array([0.45, 0.5, 0.4])
    nuc_c = middle + np.array([0.0, 0.0, 0.25 * semi[2]])
    env_px = max(1.0, 0.03 / p)
    _paint_ellipsoid(
        labels,
        nuc_c,
        nuc_semi,
        np.eye(3),
        LABELS["nucleus"],
        shell_px=env_px,
        shell_label=LABELS["nuclear_envelope"],
        inside=cell,
    )
    _paint_ellipsoid(
        labels,
        nuc_c + nuc_semi * np.array([0.2, -0.2, 0.1]),
        nuc_semi * 0.35,
        np.eye(3),
        LABELS["nucleolus"],
        inside=labels == LABELS["nucleus"],
    )

    vol_um3 = 4 / 3 * np.pi * np.prod(semi) * p**3
    n_mito = n_mitochondria if n_mitochondria is not None else int(np.clip(vol_um3 * 0.6, 3, 60))
    n_lip = n_lipid if n_lipid is not None else int(np.clip(vol_um3 * 0.3, 2, 30))
    n_ves = n_vesicles if n_vesicles is not None else int(np.clip(vol_um3 * 3, 6, 300))

    def place(
        n: int, semi_um: tuple[float, float], label: int, elongation: float, shell: float, shell_label: int
    ) -> None:
        placed = 0
        tries = 0
        while placed < n and tries < 50 * max(n, 1):
            tries += 1
            r = rng.uniform(*semi_um) / p
            s = np.array([r * elongation, r, r])
            # uniform point in the cell ellipsoid, shrunk so that the organelle stays inside
            u = rng.normal(size=3)
            u /= np.linalg.norm(u)
            pos = middle + u * rng.uniform(0, 1) ** (1 / 3) * np.maximum(semi - s.max() - shell - 1, 0)
            ip = np.round(pos).astype(int)
            if labels[tuple(ip)] != LABELS["cytoplasm"]:
                continue
            rot = _random_rotation(rng)
            # reject overlaps with other organelles (check a shrunken footprint)
            box = _ellipsoid_box(labels.shape, pos, s + shell + 1, rot)
            if box is None or np.any(labels[box[0]][box[1]] != LABELS["cytoplasm"]):
                continue
            _paint_ellipsoid(labels, pos, s, rot, label, shell_px=shell, shell_label=shell_label)
            placed += 1

    membrane = max(1.0, 0.02 / p)
    place(n_mito, (0.12, 0.2), LABELS["mitochondrion"], 3.0, 0.0, 0)
    place(n_lip, (0.1, 0.25), LABELS["lipid_droplet"], 1.0, 0.0, 0)
    place(n_ves, (0.04, 0.1), LABELS["vesicle"], 1.0, membrane, LABELS["vesicle_membrane"])

    table = np.zeros(len(LABELS), dtype=np.float32)
    for name, idx in LABELS.items():
        table[idx] = 0.0 if name == "background" else getattr(lac, name)
    return CellPhantom(
        volume=table[labels],
        labels=labels,
        pixel_size_um=p,
        lac=lac,
        thickness_um=float(thickness_um),
    )
