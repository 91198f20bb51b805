"""Automatic image-quality metrics: pure numpy/scipy, arrays in, numbers out (no Django).

Every metric is defined so that its true value is known for images built by construction
(tests/characterization/test_metrics.py):

focus
    Variance of the 4-neighbour Laplacian of the image normalised to [0, 1] between its 0.1 and
    99.9 percentiles, over the interior pixels (the one-pixel border is left out so the boundary
    rule cannot bias it). A 0/1 checkerboard has Laplacian ±4 everywhere: focus 16; a flat image 0.
    For several channels the sharpest channel counts (focus is about whether focus was found).
saturated_fraction
    Fraction of pixels at the container's maximum (255 for 8 bit, 65535 for 16 bit); for several
    channels the worst channel.
coverage_fraction
    Foreground fraction: Otsu's threshold per channel; foreground is above it for fluorescence and
    reflection, below it for bright field (dark cells on a bright background); a pixel is foreground
    when it is foreground in any channel. A channel whose two Otsu classes are less than
    FOREGROUND_MIN_SEPARATION pooled within-class standard deviations apart has no foreground: a
    unimodal histogram (an empty field's noise, an illumination gradient) splits at 2.65 (Gaussian)
    to 3.46 (uniform); cells a few noise levels above the background lie far beyond.
squares_found, intact_fraction, contamination_spots (atlas images only)
    Grid bars are opaque, so they are the darkest structure: Otsu's threshold on
    log(intensity + 5 % of the median) separates bars from open squares whatever the share of broken film. Open connected regions of
    at least 30 % of the median region area are squares. Broken film transmits more light than
    intact film with ice: the squares' mean intensities are split by Otsu and the bright group
    counts as broken when it is at least 30 % brighter than the dark one (otherwise all squares
    count as intact: an atlas alone cannot tell all-broken from all-intact). Contamination spots
    (frost, ice crystals) are dark blobs inside squares: enclosed holes in a square, or pixels more
    than 2 px from a bar and below 60 % of their square's mean, of at least 4 px.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

METRICS_VERSION = "1.1"

FOCUS_PERCENTILES = (0.1, 99.9)
BROKEN_CONTRAST = 1.3
SPOT_RELATIVE_DARKNESS = 0.6
SPOT_MIN_AREA_PX = 4
SQUARE_MIN_RELATIVE_AREA = 0.3
FOREGROUND_MIN_SEPARATION = 4.0
BAR_LOG_OFFSET = 0.05


@dataclass(frozen=True)
class ChannelStats:
    """A channel's histogram, shared by normalisation, saturation and Otsu (computed once)."""

    counts: np.ndarray  # counts per value (integers) or per bin (floats)
    values: np.ndarray  # the value of each bin
    total: int

    def percentile(self, q: float) -> float:
        cumulative = np.cumsum(self.counts)
        index = int(np.searchsorted(cumulative, q / 100.0 * self.total, side="left"))
        return float(self.values[min(index, len(self.values) - 1)])


def channel_stats(channel: np.ndarray) -> ChannelStats:
    """Histogram of one 2-D channel: exact per value for 8/16-bit integers, 4096 bins otherwise."""
    if channel.ndim != 2:
        raise ValueError(f"channel must be 2-D, got shape {channel.shape}")
    if channel.dtype in (np.uint8, np.uint16):
        size = 256 if channel.dtype == np.uint8 else 65536
        # bincount converts its input to int64: go by blocks of rows to keep that copy small.
        counts = np.zeros(size, dtype=np.int64)
        step = max(1, (1 << 20) // max(channel.shape[1], 1))
        for y0 in range(0, channel.shape[0], step):
            counts += np.bincount(channel[y0 : y0 + step].ravel(), minlength=size)
        return ChannelStats(counts=counts, values=np.arange(size, dtype=np.float64), total=channel.size)
    finite = channel[np.isfinite(channel)]
    if finite.size == 0:
        raise ValueError("the channel holds no finite value")
    counts, edges = np.histogram(finite, bins=4096)
    return ChannelStats(counts=counts, values=(edges[:-1] + edges[1:]) / 2, total=int(finite.size))


def otsu_threshold(counts: np.ndarray, values: np.ndarray) -> float:
    """Otsu's threshold over a weighted histogram (bins may be unevenly spaced).

    Returns the value t such that class 0 is ``x <= t``; for a histogram with a single occupied
    value, that value.
    """
    counts = np.asarray(counts, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    occupied = counts > 0
    counts, values = counts[occupied], values[occupied]
    if values.size > 1 and np.any(np.diff(values) < 0):
        order = np.argsort(values, kind="stable")
        counts, values = counts[order], values[order]
    if counts.size < 2:
        return float(values[0]) if counts.size else 0.0
    w0 = np.cumsum(counts)[:-1]
    total = counts.sum()
    w1 = total - w0
    s0 = np.cumsum(counts * values)[:-1]
    m0 = s0 / w0
    m1 = ((counts * values).sum() - s0) / w1
    between = w0 * w1 * (m0 - m1) ** 2
    return float(values[int(np.argmax(between))])


def _full_scale(dtype: np.dtype) -> float | None:
    return float(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else None


def _normaliser(channel: np.ndarray, lo: float, hi: float):
    """A function rows → float32 rows scaled so lo → 0 and hi → 1, clipped: a lookup table for
    8/16-bit integers (one gather instead of four passes), arithmetic otherwise."""
    scale = np.float32(1.0 / (hi - lo))
    if channel.dtype in (np.uint8, np.uint16):
        size = 256 if channel.dtype == np.uint8 else 65536
        lut = np.arange(size, dtype=np.float32)
        lut -= np.float32(lo)
        lut *= scale
        np.clip(lut, 0.0, 1.0, out=lut)
        return lambda rows: np.take(lut, rows)

    def arithmetic(rows):
        out = rows.astype(np.float32)
        out -= np.float32(lo)
        out *= scale
        return np.clip(out, 0.0, 1.0, out=out)

    return arithmetic


def focus_measure(channel: np.ndarray, stats: ChannelStats | None = None, *, block_rows: int = 128) -> float:
    """Variance of the Laplacian of the percentile-normalised channel, interior pixels only.

    Works through blocks of rows (normalise, Laplacian, sums in float64), so it never holds a
    full-size float copy of the channel.
    """
    if channel.ndim != 2 or min(channel.shape) < 3:
        raise ValueError(f"focus needs a 2-D image of at least 3×3 pixels, got shape {channel.shape}")
    stats = stats or channel_stats(channel)
    lo, hi = stats.percentile(FOCUS_PERCENTILES[0]), stats.percentile(FOCUS_PERCENTILES[1])
    if hi <= lo:
        return 0.0
    normalise = _normaliser(channel, lo, hi)
    height = channel.shape[0]
    total = total_sq = 0.0
    for y0 in range(1, height - 1, block_rows):
        y1 = min(y0 + block_rows, height - 1)
        rows = normalise(channel[y0 - 1 : y1 + 1])
        centre = rows[1:-1, 1:-1]
        lap = rows[:-2, 1:-1] + rows[2:, 1:-1]
        lap += rows[1:-1, :-2]
        lap += rows[1:-1, 2:]
        for _ in range(4):
            lap -= centre
        total += float(lap.sum(dtype=np.float64))
        total_sq += float(np.square(lap, out=lap).sum(dtype=np.float64))
    count = (height - 2) * (channel.shape[1] - 2)
    mean = total / count
    return max(total_sq / count - mean * mean, 0.0)


def saturated_fraction(channel: np.ndarray, stats: ChannelStats | None = None) -> float:
    full = _full_scale(channel.dtype)
    if full is None:
        return 0.0
    stats = stats or channel_stats(channel)
    return float(stats.counts[int(full)] / stats.total)


def class_separation(stats: ChannelStats, threshold: float) -> float:
    """Distance between the means of the two classes split at `threshold`, in pooled within-class
    standard deviations (inf when both classes are exact levels; 0 when one class is empty)."""
    counts = stats.counts.astype(np.float64)
    values = stats.values
    low = values <= threshold
    w0, w1 = counts[low].sum(), counts[~low].sum()
    if w0 == 0 or w1 == 0:
        return 0.0
    m0 = float((counts[low] * values[low]).sum() / w0)
    m1 = float((counts[~low] * values[~low]).sum() / w1)
    within = float(
        ((counts[low] * (values[low] - m0) ** 2).sum() + (counts[~low] * (values[~low] - m1) ** 2).sum()) / (w0 + w1)
    )
    if within <= 0:
        return float("inf")
    return abs(m1 - m0) / within**0.5


def foreground_mask(
    channel: np.ndarray, *, bright_foreground: bool, stats: ChannelStats | None = None
) -> np.ndarray | None:
    """The channel's foreground, or None when its histogram has no distinct foreground class."""
    stats = stats or channel_stats(channel)
    if np.count_nonzero(stats.counts) < 2:
        return None
    threshold = otsu_threshold(stats.counts, stats.values)
    if class_separation(stats, threshold) < FOREGROUND_MIN_SEPARATION:
        return None
    return channel > threshold if bright_foreground else channel <= threshold


def coverage_fraction(
    channel: np.ndarray, *, bright_foreground: bool = True, stats: ChannelStats | None = None
) -> float:
    mask = foreground_mask(channel, bright_foreground=bright_foreground, stats=stats)
    return 0.0 if mask is None else float(np.count_nonzero(mask) / channel.size)


@dataclass(frozen=True)
class AtlasMetrics:
    squares_found: int
    broken_squares: int
    intact_fraction: float | None
    contamination_spots: int
    bar_threshold: float


def _label_sums(
    channel: np.ndarray, labels: np.ndarray, size: int, block_rows: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel count and channel sum per label, by blocks of rows (bincount converts its input to
    int64 and its weights to float64: whole-image calls would cost 4× the label image)."""
    areas = np.zeros(size, dtype=np.int64)
    sums = np.zeros(size, dtype=np.float64)
    for y0 in range(0, channel.shape[0], block_rows):
        block = labels[y0 : y0 + block_rows].ravel()
        areas += np.bincount(block, minlength=size)
        sums += np.bincount(block, weights=channel[y0 : y0 + block_rows].ravel(), minlength=size)
    return areas, sums


def atlas_metrics(channel: np.ndarray, stats: ChannelStats | None = None, *, block_rows: int = 256) -> AtlasMetrics:
    """Squares, broken film and contamination of a low-magnification transmitted-light grid atlas.

    Memory: one int32 label image (2× a 16-bit image) and a boolean mask; contamination is looked
    for square by square.
    """
    stats = stats or channel_stats(channel)
    if np.count_nonzero(stats.counts) < 2:
        return AtlasMetrics(0, 0, None, 0, float(stats.values[0]))
    # Bars are opaque: split dark from the rest on a log scale (robust to bright broken squares).
    # The offset (5 % of the median, at least 1) keeps the camera noise of near-black bars from
    # spreading over many decades of the log scale and dragging the threshold into the bars.
    offset = max(1.0, BAR_LOG_OFFSET * stats.percentile(50))
    log_values = np.log(np.maximum(stats.values, 0) + offset)
    bar_threshold = float(np.exp(otsu_threshold(stats.counts, log_values)) - offset)
    labels, count = ndimage.label(channel > bar_threshold)
    if count == 0:
        return AtlasMetrics(0, 0, None, 0, bar_threshold)
    areas, sums = _label_sums(channel, labels, count + 1, block_rows)
    areas[0] = 0
    candidate = areas >= max(16, channel.size // 10000)
    if not candidate.any():
        return AtlasMetrics(0, 0, None, 0, bar_threshold)
    is_square = candidate & (areas >= SQUARE_MIN_RELATIVE_AREA * np.median(areas[candidate]))
    is_square[0] = False
    squares = int(is_square.sum())
    means = np.divide(sums, areas, out=np.zeros_like(sums), where=areas > 0)
    square_means = means[is_square]
    broken = 0
    if squares >= 2:
        split = otsu_threshold(np.ones_like(square_means), square_means)
        dark, bright = square_means[square_means <= split], square_means[square_means > split]
        if bright.size and dark.size and bright.mean() >= BROKEN_CONTRAST * dark.mean():
            broken = int(bright.size)
    # Contamination, square by square (memory stays small): enclosed dark holes, and pixels more
    # than 2 px from the bars and darker than 60 % of the square's mean.
    spots = 0
    slices = ndimage.find_objects(labels)
    for label in np.flatnonzero(is_square):
        window = slices[label - 1]
        if window is None:
            continue
        square = labels[window] == label
        spot_mask = ndimage.binary_fill_holes(square)
        spot_mask &= ~square
        away = ndimage.binary_erosion(square, iterations=2)
        spot_mask |= away & (channel[window] < SPOT_RELATIVE_DARKNESS * means[label])
        if not spot_mask.any():
            continue
        merged, count_here = ndimage.label(ndimage.binary_dilation(spot_mask, iterations=2))
        spot_areas = np.bincount(merged[spot_mask], minlength=count_here + 1)
        spots += int(np.count_nonzero(spot_areas[1:] >= SPOT_MIN_AREA_PX))
    del labels
    intact = (squares - broken) / squares if squares else None
    return AtlasMetrics(squares, broken, intact, spots, bar_threshold)


def compute_metrics(
    data: np.ndarray,
    *,
    atlas: bool = False,
    bright_foreground: bool = True,
    progress: Callable[[float], None] | None = None,
    stats: list[ChannelStats] | None = None,
) -> dict:
    """All metrics of a (C, Y, X) image. Returns a JSON-ready dict with per-channel detail."""
    if data.ndim != 3:
        raise ValueError(f"data must be (channels, y, x), got shape {data.shape}")
    per_channel = []
    foreground = np.zeros(data.shape[1:], dtype=bool)
    for index in range(data.shape[0]):
        channel = data[index]
        stats_c = stats[index] if stats else channel_stats(channel)
        sat = saturated_fraction(channel, stats_c)
        mask = foreground_mask(channel, bright_foreground=bright_foreground, stats=stats_c)
        if mask is not None:
            foreground |= mask
        del mask
        focus = focus_measure(channel, stats_c)
        per_channel.append({"focus": focus, "saturated_fraction": sat})
        if progress:
            progress((index + 1) / (data.shape[0] + (1 if atlas else 0)))
    coverage = float(np.count_nonzero(foreground) / foreground.size)
    del foreground  # before the atlas pass, which needs a full-size label image
    result = {
        "focus": max(c["focus"] for c in per_channel),
        "saturated_fraction": max(c["saturated_fraction"] for c in per_channel),
        "coverage_fraction": coverage,
        "per_channel": per_channel,
        "version": METRICS_VERSION,
    }
    if atlas:
        found = atlas_metrics(data[0], stats[0] if stats else None)
        result.update(
            squares_found=found.squares_found,
            broken_squares=found.broken_squares,
            intact_fraction=found.intact_fraction,
            contamination_spots=found.contamination_spots,
        )
        if progress:
            progress(1.0)
    return result
