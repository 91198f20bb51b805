"""Celery tasks of the characterization app: thin wrappers around services."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.db import InterfaceError, OperationalError

from characterization import services

log = logging.getLogger(__name__)

# Worth another try: the database was locked or away, a shared file system hiccuped.
TRANSIENT = (OperationalError, InterfaceError, TimeoutError, ConnectionError)
MAX_RETRIES = 3


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def compute_image_metrics(self, image_id: int) -> None:
    """Previews and metrics of one image (acknowledged after it ran: a crashed worker's job is
    redelivered and re-claims the image). Transient errors retry with back-off; any other error,
    or the last retry, marks the image `failed` with the error for the pages and the API."""
    attempt = 0
    while True:
        try:
            services.check_image_analyse(image_id=image_id)
            return
        except TRANSIENT as error:
            if self.request.is_eager:
                # Run inline (tests, CELERY_TASK_ALWAYS_EAGER): retry here instead of re-queueing.
                if attempt < MAX_RETRIES:
                    attempt += 1
                    time.sleep(0.05 * attempt)
                    continue
            elif self.request.retries < MAX_RETRIES:
                raise self.retry(exc=error, countdown=5 * 2**self.request.retries) from error
            services.check_image_metrics_failed(image_id=image_id, error=f"{type(error).__name__}: {error}")
            log.exception("metrics of image %s failed after %s retries", image_id, MAX_RETRIES)
            return
        except Exception as error:
            services.check_image_metrics_failed(image_id=image_id, error=f"{type(error).__name__}: {error}")
            log.exception("metrics of image %s failed", image_id)
            return
