"""Builders for characterization tests: checks through the service, image files made in memory."""

from __future__ import annotations

import io

import numpy as np
import tifffile
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from characterization import services
from characterization.models import CheckStage
from tests.factories import make_grids


def tiff_bytes(data: np.ndarray, **kwargs) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, **kwargs)
    return buffer.getvalue()


def png_bytes(data: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(data).save(buffer, format="PNG")
    return buffer.getvalue()


def upload(content: bytes, name: str = "image.tif") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


def small_tiff(seed: int = 0, shape=(3, 64, 64)) -> bytes:
    rng = np.random.default_rng(seed)
    return tiff_bytes(
        rng.integers(0, 4000, size=shape, dtype=np.uint16), metadata={"axes": "CYX"}, photometric="minisblack"
    )


def make_check(*, lab, user, stage: str = CheckStage.POST_VITRIFICATION, grid=None, **kwargs):
    if grid is None:
        state = "seeded" if stage == CheckStage.PRE_VITRIFICATION else "vitrified"
        grid = make_grids(lab=lab, user=user, count=1, state=state)[0]
    return services.check_create(grid=grid, stage=stage, by=user, **kwargs)


def compute_pending_metrics() -> None:
    """Run the metrics task in this process for every pending image, as the worker would.

    Tests capture the upload's on-commit queueing (nothing reaches a broker) and run the task here,
    so they behave the same with eager tasks and with LIMS_REAL_WORKER=1.
    """
    from characterization import tasks
    from characterization.models import CheckImage, MetricsStatus

    for pk in CheckImage.objects.filter(metrics_status=MetricsStatus.PENDING).values_list("pk", flat=True):
        tasks.compute_image_metrics.apply(args=[pk])


def stored_files() -> list:
    """Every file under MEDIA_ROOT (a refused upload must leave none behind)."""
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
