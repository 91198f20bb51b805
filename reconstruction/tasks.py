"""Celery tasks of the reconstruction app: thin wrappers around services.

A slab task is acknowledged after it ran (settings: acks late, reject on worker lost), so a worker
killed mid-slab hands the slab to another worker; a slab that keeps losing its worker fails the job
with that reason (services.MAX_SLAB_ATTEMPTS). Any error inside the engine fails the job with it.
"""

from __future__ import annotations

import logging
import socket
import time

from celery import shared_task
from celery.signals import worker_ready, worker_shutdown
from django.db import InterfaceError, OperationalError

from lims.errors import DomainError
from reconstruction import services

log = logging.getLogger(__name__)

TRANSIENT = (OperationalError, InterfaceError, TimeoutError, ConnectionError)
MAX_RETRIES = 3


def _job_of_slab(slab_id: int) -> int | None:
    from reconstruction.models import JobSlab

    return JobSlab.objects.filter(pk=slab_id).values_list("job_id", flat=True).first()


def _reason(error: BaseException) -> str:
    if isinstance(error, MemoryError):
        return "The worker ran out of memory; try smaller slabs (slab_size) or a thinner volume."
    if isinstance(error, DomainError):
        return error.message
    if isinstance(error, ValueError):
        return f"The engine refused the data: {error}"
    return f"{type(error).__name__}: {error}"


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def reconstruct_slab(self, slab_id: int) -> str:
    """Reconstruct one slab of a job; the last one sends the assembly."""
    worker = f"{socket.gethostname()}:{self.request.hostname or 'local'}"
    if self.request.hostname and not self.request.is_eager:
        services.worker_active(name=self.request.hostname)
    attempt = 0
    while True:
        try:
            outcome = services.slab_run(slab_id=slab_id, worker=worker)
            return outcome
        except TRANSIENT as error:
            if self.request.is_eager and attempt < MAX_RETRIES:
                attempt += 1
                time.sleep(0.05 * attempt)
                continue
            if not self.request.is_eager and self.request.retries < MAX_RETRIES:
                raise self.retry(exc=error, countdown=5 * 2**self.request.retries) from error
            job_id = _job_of_slab(slab_id)
            if job_id:
                services.job_fail(job_id=job_id, error=_reason(error))
            return "failed"
        except Exception as error:
            log.exception("slab %s failed", slab_id)
            job_id = _job_of_slab(slab_id)
            if job_id:
                services.job_fail(job_id=job_id, error=_reason(error))
            return "failed"


@shared_task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def assemble_volume(self, job_id: int) -> None:
    """Join a job's slabs into its volume (MRC, previews, histogram, FSC)."""
    try:
        services.volume_assemble(job_id=job_id)
    except TRANSIENT as error:
        if not self.request.is_eager and self.request.retries < MAX_RETRIES:
            raise self.retry(exc=error, countdown=5 * 2**self.request.retries) from error
        services.job_fail(job_id=job_id, error=_reason(error))
    except Exception as error:
        log.exception("assembly of job %s failed", job_id)
        services.job_fail(job_id=job_id, error=f"Assembling the volume failed: {_reason(error)}")


@shared_task
def dispatch_pending() -> int:
    """Send jobs recorded while the task queue was down."""
    return services.jobs_dispatch_pending()


@worker_ready.connect
def _send_waiting_jobs(sender=None, **kwargs) -> None:
    """A worker that starts (or comes back with the broker) says so, then sends what waited for it."""
    try:
        controller = getattr(sender, "controller", None)
        services.worker_seen(
            name=str(getattr(sender, "hostname", "") or socket.gethostname()),
            processes=int(getattr(controller, "concurrency", 1) or 1),
        )
    except Exception:  # never keep a worker from starting
        log.exception("could not record this worker")
    try:
        services.jobs_dispatch_pending()
    except Exception:  # never keep a worker from starting
        log.exception("could not send waiting reconstruction jobs")


@worker_shutdown.connect
def _worker_stops(sender=None, **kwargs) -> None:
    """A worker that stops cleanly takes no more slabs: the next job is cut for the workers left."""
    try:
        services.worker_gone(name=str(getattr(sender, "hostname", "") or ""))
    except Exception:  # a stopping worker must stop
        log.exception("could not record that this worker stops")


@shared_task
def purge_stale_uploads() -> int:
    """Remove chunked uploads nobody finished for two days (their partial files too)."""
    return services.uploads_purge_stale()
