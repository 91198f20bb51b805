"""Small inline SVG plots (tilt scheme, histogram, FSC curve): coordinates computed here, drawn by templates.

Kept to sparklines a page shows beside its numbers; the QC dashboards use the charting library."""

from __future__ import annotations

WIDTH, HEIGHT, PAD = 320, 140, 28


def _scale(values: list[float], low: float, high: float, size: float, invert: bool = False) -> list[float]:
    span = (high - low) or 1.0
    out = [PAD + (v - low) / span * (size - 2 * PAD) for v in values]
    return [size - o for o in out] if invert else out


def tilt_scheme(angles: list[float]) -> dict:
    """Angle against acquisition order: shows the range, the step, and whether the scheme was dose-symmetric."""
    if not angles:
        return {}
    xs = _scale(list(range(len(angles))), 0, max(1, len(angles) - 1), WIDTH)
    ys = _scale(list(angles), -90, 90, HEIGHT, invert=True)
    zero = _scale([0], -90, 90, HEIGHT, invert=True)[0]
    return {
        "width": WIDTH, "height": HEIGHT, "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True)),
        "dots": [(round(x, 1), round(y, 1)) for x, y in zip(xs, ys, strict=True)][:: max(1, len(angles) // 60)],
        "zero": round(zero, 1), "top": round(_scale([90], -90, 90, HEIGHT, invert=True)[0], 1),
        "bottom": round(_scale([-90], -90, 90, HEIGHT, invert=True)[0], 1), "first": angles[0], "last": angles[-1],
        "low": min(angles), "high": max(angles), "count": len(angles),
    }  # fmt: skip


def histogram(data: dict) -> dict:
    counts, edges = (data or {}).get("counts") or [], (data or {}).get("edges") or []
    if not counts:
        return {}
    peak = max(counts) or 1
    bar = (WIDTH - 2 * PAD) / len(counts)
    bars = [
        {"x": round(PAD + i * bar, 1), "w": round(max(bar - 0.5, 0.5), 1),
         "h": round(c / peak * (HEIGHT - 2 * PAD), 1), "y": round(HEIGHT - PAD - c / peak * (HEIGHT - 2 * PAD), 1)}
        for i, c in enumerate(counts)
    ]  # fmt: skip
    return {"width": WIDTH, "height": HEIGHT, "bars": bars, "low": edges[0], "high": edges[-1], "base": HEIGHT - PAD}


def fsc(data: dict, resolution_nm: float | None) -> dict:
    freq, curve = (data or {}).get("frequency_per_nm") or [], (data or {}).get("fsc") or []
    if not freq:
        return {}
    top = max(freq) or 1.0
    xs = _scale(freq, 0, top, WIDTH)
    ys = _scale([max(-0.2, min(1.0, c)) for c in curve], -0.2, 1.0, HEIGHT, invert=True)
    threshold = _scale([0.143], -0.2, 1.0, HEIGHT, invert=True)[0]
    marker = None
    if resolution_nm:
        marker = round(_scale([1.0 / resolution_nm], 0, top, WIDTH)[0], 1)
    return {
        "width": WIDTH, "height": HEIGHT, "points": " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True)),
        "threshold": round(threshold, 1), "marker": marker, "nyquist_nm": round(1.0 / top, 1) if top else None,
    }  # fmt: skip
