"""The metrics task: thin, retries transient errors, marks the image failed otherwise."""

from __future__ import annotations

import pytest
from django.db import OperationalError

from characterization import services, tasks
from characterization.models import MetricsStatus
from tests.characterization.factories import make_check, small_tiff, upload


@pytest.fixture
def image(lab, member):
    check = make_check(lab=lab, user=member)
    return services.check_image_upload(lm_check=check, upload=upload(small_tiff()), by=member)


def test_the_task_computes_previews_and_metrics(image):
    assert image.metrics_status == MetricsStatus.PENDING
    tasks.compute_image_metrics.apply(args=[image.pk])
    image.refresh_from_db()
    assert image.metrics_status == MetricsStatus.DONE and image.metrics_version
    assert image.metrics_started_at <= image.metrics_finished_at


def test_a_transient_error_is_retried_then_succeeds(image, monkeypatch):
    real = services.check_image_analyse
    calls = []

    def flaky(*, image_id):
        calls.append(image_id)
        if len(calls) < 3:
            raise OperationalError("database is locked")
        return real(image_id=image_id)

    monkeypatch.setattr(services, "check_image_analyse", flaky)
    result = tasks.compute_image_metrics.apply(args=[image.pk])
    assert result.successful()
    image.refresh_from_db()
    assert len(calls) == 3 and image.metrics_status == MetricsStatus.DONE


def test_a_transient_error_past_the_retries_marks_the_image_failed(image, monkeypatch):
    def locked(*, image_id):
        raise OperationalError("database is locked")

    monkeypatch.setattr(services, "check_image_analyse", locked)
    tasks.compute_image_metrics.apply(args=[image.pk])
    image.refresh_from_db()
    assert image.metrics_status == MetricsStatus.FAILED and "database is locked" in image.metrics_error


def test_a_done_image_is_not_computed_twice(image):
    services.check_image_analyse(image_id=image.pk)
    assert services.check_image_analyse(image_id=image.pk) is None


def test_a_missing_original_fails_with_the_reason(image):
    image.file.storage.delete(image.file.name)
    tasks.compute_image_metrics.apply(args=[image.pk])
    image.refresh_from_db()
    assert image.metrics_status == MetricsStatus.FAILED and image.metrics_error
