"""Pictures of tilt series and volumes: projection montages, orthoslices, single slices (PNG/JPEG via Pillow)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

PLANES = ("xy", "xz", "yz")


def to_uint8(image: np.ndarray, low: float | None = None, high: float | None = None) -> np.ndarray:
    """Scale to 0–255 between `low` and `high` (default: the 0.5th and 99.5th percentiles)."""
    data = np.asarray(image, dtype=np.float32)
    finite = data[np.isfinite(data)]
    if low is None or high is None:
        if finite.size:
            p_low, p_high = np.percentile(finite, (0.5, 99.5))
        else:
            p_low, p_high = 0.0, 1.0
        low = p_low if low is None else low
        high = p_high if high is None else high
    if not high > low:
        high = low + max(abs(low) * 1e-6, 1e-6)  # also where low is so large that low + 1e-6 == low
    scaled = (np.nan_to_num(data, nan=low) - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def png_bytes(image: np.ndarray, *, max_side: int | None = None, min_side: int | None = None) -> bytes:
    picture = Image.fromarray(image)
    if min_side and max(picture.size) < min_side:  # small volumes: whole-pixel enlargement, no blur
        factor = -(-min_side // max(picture.size))
        picture = picture.resize((picture.width * factor, picture.height * factor), Image.Resampling.NEAREST)
    if max_side and max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=False)
    return buffer.getvalue()


def montage(projections: np.ndarray, angles: list[float], *, count: int = 12, tile: int = 160) -> bytes:
    """A grid of `count` projections spread over the tilt range (first, middle and last included).

    Displayed as they are recorded (absorbance dark→bright: denser looks brighter); one contrast for all tiles."""
    stack = np.asarray(projections)
    if stack.ndim == 4:  # focal series: the middle focal plane of each tilt
        stack = stack[:, stack.shape[1] // 2]
    n = stack.shape[0]
    picks = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))
    chosen = stack[picks].astype(np.float32)
    low, high = np.percentile(chosen[np.isfinite(chosen)], (0.5, 99.5)) if np.isfinite(chosen).any() else (0, 1)
    columns = min(4, len(picks))
    rows = -(-len(picks) // columns)
    scale = tile / max(stack.shape[1], stack.shape[2])
    th, tw = max(1, round(stack.shape[1] * scale)), max(1, round(stack.shape[2] * scale))
    sheet = Image.new("L", (columns * (tw + 4), rows * (th + 4)), 255)
    for k in range(len(picks)):
        picture = Image.fromarray(to_uint8(chosen[k], low, high)).resize((tw, th), Image.Resampling.BILINEAR)
        sheet.paste(picture, ((k % columns) * (tw + 4) + 2, (k // columns) * (th + 4) + 2))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def montage_angles(n: int, angles: list[float], count: int = 12) -> list[float]:
    picks = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(int))
    return [round(float(angles[i]), 1) for i in picks]


def volume_slice(volume: np.ndarray, plane: str, index: int) -> np.ndarray:
    """One slice of a (rows=y, thickness=z, columns=x) volume; index clipped into range."""
    if plane not in PLANES:
        raise ValueError(f"plane must be one of {', '.join(PLANES)}")
    axis = {"xy": 1, "xz": 0, "yz": 2}[plane]
    index = int(np.clip(index, 0, volume.shape[axis] - 1))
    return np.take(volume, index, axis=axis)


def plane_size(shape: tuple[int, int, int], plane: str) -> int:
    return shape[{"xy": 1, "xz": 0, "yz": 2}[plane]]


def volume_levels(volume: np.ndarray, bins: int = 64) -> tuple[dict, tuple[float, float]]:
    """The histogram (between the 0.1th and 99.9th percentiles) and the preview contrast (0.5th–99.5th) of a
    volume from one partition of its finite values: each percentile call on a 64×256² volume costs ~0.1 s, and
    the assembly of a job waits for them."""
    data = np.asarray(volume, dtype=np.float32)
    finite = data[np.isfinite(data)]
    if not finite.size:
        return {"edges": [], "counts": []}, (0.0, 1.0)
    low, p_low, p_high, high = (float(v) for v in np.percentile(finite, (0.1, 0.5, 99.5, 99.9)))
    if not high > low:
        high = low + max(abs(low) * 1e-6, 1e-6)  # also where low is so large that low + 1e-6 == low
    counts, edges = np.histogram(finite, bins=bins, range=(low, high))
    levels = {"edges": [round(float(e), 6) for e in edges], "counts": [int(c) for c in counts]}
    return levels, (p_low, p_high)
