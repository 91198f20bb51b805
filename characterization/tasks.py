"""Celery tasks of the characterization app: thin wrappers around services."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

from characterization import services

log = logging.getLogger(__name__)

# Worth another try: the database was locked or away, a shared file system hiccuped.
TRANSIENT = (OperationalError, InterfaceError, TimeoutError, ConnectionError)


@shared_task(bind=True, acks_late=True, max_retries=3, default_retry_delay=5)
def compute_image_metrics(self, image_id: int) -> None:
    """Previews and metrics of one image. Transient errors retry (with back-off); any other error,
    or the last retry, marks the image `failed` with the error, for the page and the API to show."""
    try:
        services.check_image_analyse(image_id=image_id)
    except TRANSIENT as error:
        if self.request.retries < self.max_retries:
            raise self.retry(exc=error, countdown=5 * 2**self.request.retries) from error
        services.check_image_metrics_failed(image_id=image_id, error=f"{type(error).__name__}: {error}")
        log.exception("metrics of image %s failed after %s retries", image_id, self.request.retries)
    except Exception as error:
        services.check_image_metrics_failed(image_id=image_id, error=f"{type(error).__name__}: {error}")
        log.exception("metrics of image %s failed", image_id)
