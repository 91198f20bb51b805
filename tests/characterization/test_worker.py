"""The metrics task through the task queue: eager here, a real Celery worker under LIMS_REAL_WORKER=1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from characterization.models import CheckImage, MetricsStatus
from tests.characterization.factories import make_check, small_tiff, upload


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_uploaded_image_gets_its_metrics_from_the_worker(
    lab, member, api, settings, celery_worker_process, wait_for
):
    check = make_check(lab=lab, user=member)
    response = api.post(
        "/api/v1/check-images/", {"check": check.pk, "file": upload(small_tiff(seed=11), "w.tif")}, format="multipart"
    )
    assert response.status_code == 201, response.content
    image_id = response.data["id"]
    try:
        image = wait_for(
            lambda: CheckImage.objects.filter(
                pk=image_id, metrics_status__in=[MetricsStatus.DONE, MetricsStatus.FAILED]
            ).first(),
            what="the metrics task",
        )
        assert image.metrics_status == MetricsStatus.DONE, image.metrics_error
        data = api.get(f"/api/v1/check-images/{image_id}/").data
        assert data["metrics_progress"] == 100 and data["metrics"]["focus"] > 0
        assert api.get(data["preview_url"]).status_code == 200
    finally:
        folder = Path(settings.MEDIA_ROOT) / "characterization" / str(check.lab_id) / str(check.pk)
        shutil.rmtree(folder, ignore_errors=True)
