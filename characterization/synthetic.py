"""Synthetic light-microscopy images whose true metrics are known by construction.

Used by the demo data, the benchmark and the tests; no binary file is committed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

BAR_LEVEL = 3000
INTACT_LEVEL = 30000
BROKEN_LEVEL = 58000


@dataclass
class Atlas:
    image: np.ndarray  # (Y, X) uint16
    squares: int
    broken: set[tuple[int, int]]
    spots: int
    pitch_px: int
    origin_px: tuple[float, float]  # pixel centre (x, y) of square (0, 0)
    centres: dict[tuple[int, int], tuple[float, float]] = field(default_factory=dict)


def render_atlas(
    *,
    rows: int = 8,
    columns: int = 8,
    pitch_px: int = 48,
    bar_px: int = 10,
    margin_px: int = 12,
    broken: Iterable[tuple[int, int]] = (),
    spots: Sequence[tuple[int, int]] = (),
    spot_radius_px: int = 4,
    spot_level: int = 6000,
    noise: float = 400.0,
    seed: int = 0,
) -> Atlas:
    """A transmitted-light atlas of a finder grid: dark bars, intact squares (film + ice) and broken
    squares (no film: brighter); `spots` are (row, column) squares with one dark ice crystal each,
    at the square's centre."""
    if bar_px >= pitch_px:
        raise ValueError("bar_px must be smaller than pitch_px")
    broken = set(broken)
    height = 2 * margin_px + rows * pitch_px + bar_px
    width = 2 * margin_px + columns * pitch_px + bar_px
    image = np.full((height, width), BAR_LEVEL, dtype=np.float32)
    centres = {}
    open_px = pitch_px - bar_px
    for r in range(rows):
        for c in range(columns):
            y0 = margin_px + bar_px + r * pitch_px
            x0 = margin_px + bar_px + c * pitch_px
            image[y0 : y0 + open_px, x0 : x0 + open_px] = BROKEN_LEVEL if (r, c) in broken else INTACT_LEVEL
            centres[(r, c)] = (x0 + (open_px - 1) / 2, y0 + (open_px - 1) / 2)
    yy, xx = np.mgrid[0:height, 0:width]
    for r, c in spots:
        cx, cy = centres[(r, c)]
        image[(xx - cx) ** 2 + (yy - cy) ** 2 <= spot_radius_px**2] = spot_level
    rng = np.random.default_rng(seed)
    image += rng.normal(0, noise, image.shape).astype(np.float32)
    image = np.clip(image, 0, 65535).astype(np.uint16)
    return Atlas(
        image=image,
        squares=rows * columns,
        broken=broken,
        spots=len(spots),
        pitch_px=pitch_px,
        origin_px=centres[(0, 0)],
        centres=centres,
    )


def render_discs(
    *,
    shape: tuple[int, int] = (256, 256),
    discs: Sequence[tuple[float, float, float]] = (),
    background: int = 1000,
    level: int = 20000,
    noise: float = 0.0,
    seed: int = 0,
    dtype=np.uint16,
) -> tuple[np.ndarray, float]:
    """Bright discs (x, y, radius) on a dark background; returns the image and the true covered fraction."""  # fmt: skip
    yy, xx = np.mgrid[0 : shape[0], 0 : shape[1]]
    mask = np.zeros(shape, dtype=bool)
    for x, y, radius in discs:
        mask |= (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    image = np.where(mask, level, background).astype(np.float32)
    if noise:
        image += np.random.default_rng(seed).normal(0, noise, shape).astype(np.float32)
    info = np.iinfo(dtype)
    return np.clip(image, info.min, info.max).astype(dtype), float(mask.mean())


def render_cells(
    *, shape: tuple[int, int] = (512, 512), channels: int = 3, cells: int = 40, seed: int = 0
) -> np.ndarray:
    """A fluorescence field of view (C, Y, X) uint16: nuclei, cytoplasm and a punctate channel."""
    rng = np.random.default_rng(seed)
    height, width = shape
    yy, xx = np.ogrid[0:height, 0:width]
    data = np.empty((channels, height, width), dtype=np.uint16)
    centres = rng.uniform([0, 0], [width, height], size=(cells, 2))
    radii = rng.uniform(0.02, 0.05, size=cells) * min(shape)
    for ch in range(channels):
        plane = np.full(shape, 800.0, dtype=np.float32)
        scale = (0.5, 1.0, 0.3)[ch % 3]
        for (cx, cy), radius in zip(centres, radii, strict=True):
            r = radius * scale * (1.6 if ch == 1 else 1.0)
            y0, y1 = int(max(cy - r - 1, 0)), int(min(cy + r + 2, height))
            x0, x1 = int(max(cx - r - 1, 0)), int(min(cx + r + 2, width))
            sub = (xx[:, x0:x1] - cx) ** 2 + (yy[y0:y1, :] - cy) ** 2 <= r**2
            plane[y0:y1, x0:x1][sub] += 12000.0 / (ch + 1)
        plane += rng.normal(0, 300, shape).astype(np.float32)
        np.clip(plane, 0, 65535, out=plane)
        data[ch] = plane.astype(np.uint16)
    return data
