"""Characterization benchmark: upload-to-metrics time of a light-microscopy image, and its memory.

The image is the issue's case: 2048×2048 pixels, 3 channels, 16 bit (24 MiB decoded), a synthetic
fluorescence field of view written as an uncompressed TIFF (and, for comparison, LZW-compressed).
Each run follows the product's path step for step (the functions the upload service and the
metrics task call), without the database writes (a few milliseconds):

1. upload: validate by content (full decode, limits, truncation check), SHA-256, store the original;
2. task, read: decode the stored original again;
3. task, previews: per-channel contrast stretch, colour overlay, channel PNGs and thumbnail;
4. task, metrics: focus, saturated fraction, coverage (per channel).

Peak memory is traced with tracemalloc (numpy reports its buffers to it) over the whole path and
compared with the decoded image size; the aim is at most 1 s and less than 4× the decoded image.

Run alone: ``python -m bench.run --only bench.characterization``.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np
import tifffile

from characterization import imaging, metrics, synthetic

LIMITS = imaging.Limits(max_bytes=2 * 1024**3, max_plane_pixels=16384**2, max_decoded_bytes=4 * 1024**3)


def _pipeline(path: Path, store: Path, *, atlas: bool = False) -> dict[str, float]:
    """One upload-to-metrics pass; returns seconds per phase."""
    times: dict[str, float] = {}
    size = path.stat().st_size
    t0 = time.perf_counter()
    with path.open("rb") as handle:
        decoded = imaging.decode(handle, size=size, name=path.name, limits=LIMITS)
    del decoded
    t1 = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(4 * 1024 * 1024):
            digest.update(chunk)
    shutil.copyfile(path, store / "original.tif")
    t2 = time.perf_counter()
    with (store / "original.tif").open("rb") as handle:
        decoded = imaging.decode(handle, size=size, name=path.name, limits=LIMITS)
    t3 = time.perf_counter()
    stats = [metrics.channel_stats(channel) for channel in decoded.data]
    previews = imaging.make_previews(
        decoded.data, channel_names=["DAPI", "GFP", "mCherry"], rgb=decoded.rgb, stats=stats
    )
    (store / "preview.jpg").write_bytes(previews.preview_jpeg)
    (store / "thumb.jpg").write_bytes(previews.thumbnail_jpeg)
    for index, jpeg in enumerate(previews.channel_jpegs):
        (store / f"channel-{index}.jpg").write_bytes(jpeg)
    del previews
    t4 = time.perf_counter()
    metrics.compute_metrics(decoded.data, atlas=atlas, stats=stats)
    t5 = time.perf_counter()
    times.update(validate=t1 - t0, store=t2 - t1, read=t3 - t2, previews=t4 - t3, metrics=t5 - t4, total=t5 - t0)
    return times


def _measure(path: Path, repeats: int, *, atlas: bool = False) -> tuple[dict[str, float], int]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp)
        _pipeline(path, store, atlas=atlas)  # warm-up (imports, page cache)
        runs = [_pipeline(path, store, atlas=atlas) for _ in range(repeats)]
        tracemalloc.start()
        _pipeline(path, store, atlas=atlas)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    medians = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    return medians, peak


def _write(data: np.ndarray, path: Path, **kwargs) -> None:
    tifffile.imwrite(
        path, data, photometric="minisblack", metadata={"axes": "CYX" if data.ndim == 3 else "YX"}, **kwargs
    )


def run(quick: bool = False) -> str:
    repeats = 3 if quick else 7
    shape = (2048, 2048)
    data = synthetic.render_cells(shape=shape, channels=3, cells=120, seed=1)
    decoded_bytes = data.nbytes
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cases = [("TIFF, uncompressed", Path(tmp) / "cells.tif", {}, data, False)]
        if not quick:
            cases.append(("TIFF, LZW", Path(tmp) / "cells-lzw.tif", {"compression": "lzw"}, data, False))
            atlas = synthetic.render_atlas(rows=20, columns=20, pitch_px=100, bar_px=18, margin_px=14, seed=2).image
            cases.append(("atlas, 1 ch 2024², uncompressed", Path(tmp) / "atlas.tif", {}, atlas, True))
        for label, path, kwargs, array, is_atlas in cases:
            _write(array, path, **kwargs)
            medians, peak = _measure(path, repeats, atlas=is_atlas)
            reading = medians["validate"] + medians["read"]
            rows.append(
                f"| {label} | {path.stat().st_size / 2**20:.1f} | {medians['total'] * 1000:.0f} "
                f"| {100 * reading / medians['total']:.0f} % | {100 * medians['previews'] / medians['total']:.0f} % "
                f"| {100 * medians['metrics'] / medians['total']:.0f} % | {100 * medians['store'] / medians['total']:.0f} % "
                f"| {peak / 2**20:.0f} MiB = {peak / array.nbytes:.2f}× |"
            )
    header = (
        "## Characterization: upload to metrics\n\n"
        f"A 2048×2048, 3-channel, 16-bit image ({decoded_bytes / 2**20:.0f} MiB decoded), median of {repeats} runs "
        "through the product's upload and metrics-task path (validation with a full decode, SHA-256 and store; "
        "then read, previews, metrics), database writes excluded. Reading = the validating decode at upload plus "
        "the task's decode. Peak memory by tracemalloc over one whole pass, against the decoded image. "
        "Aim: ≤ 1 s, < 4× decoded.\n\n"
        "| file | MiB on disk | total (ms) | reading | previews | metrics | hash + store | peak memory |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    return header + "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(run(quick=False))
