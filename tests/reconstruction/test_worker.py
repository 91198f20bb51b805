"""Jobs through the task queue: eager on SQLite; in .ci/run's PostgreSQL pass a real Redis broker and a
Celery worker with two processes reconstruct the slabs, and one test kills the worker's processes mid-job."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from reconstruction import engine, services
from reconstruction.models import JobSlab, JobState, ReconstructionJob
from tests.reconstruction.factories import PIXEL_UM, write_mrc_series


def _dataset(member, beam_session, grid, path):
    dataset = services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=SimpleUploadedFile(path.name, path.read_bytes()),
        angles_file=SimpleUploadedFile("t.tlt", path.with_suffix(".tlt").read_bytes()),
    )  # fmt: skip
    return dataset


def _finished(job_id):
    return ReconstructionJob.objects.filter(
        pk=job_id, state__in=[JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED]
    ).first()


@pytest.fixture
def clean_media(settings):
    yield
    shutil.rmtree(Path(settings.MEDIA_ROOT) / "reconstruction", ignore_errors=True)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_workers_reconstruct_a_dataset_equal_to_the_engines_own(
    member, beam_session, grid, tmp_path, celery_worker_process, wait_for, clean_media
):
    path, projections, angles = write_mrc_series(tmp_path, rows=16)
    dataset = _dataset(member, beam_session, grid, path)
    default = services.dataset_decide(dataset=dataset, accept=True, by=member)
    spread, _ = services.job_request(
        dataset=dataset, method="wbp", parameters={"slab_size": 2, "align": False}, by=member
    )
    dataset.refresh_from_db()
    aligned = engine.apply_shifts(projections, np.asarray(dataset.alignment["shifts"]))
    for job, method, series in ((default, "sirt", aligned), (spread, "wbp", projections)):
        job = wait_for(lambda job=job: _finished(job.pk), what=f"the {method} job", timeout=180)
        assert job.state == JobState.SUCCEEDED, job.error
        assert job.progress == 100 and job.slab_count == (1 if method == "sirt" else 8)
        with mrcfile.open(default_storage.path(job.volume.file.name)) as mrc:
            data = np.array(mrc.data)
        direct = engine.reconstruct(
            series, angles, method=method, thickness=dataset.columns, axis_offset=job.parameters["axis_offset"]
        )
        np.testing.assert_allclose(data, direct / PIXEL_UM, rtol=1e-5, atol=1e-5)
    workers = set(JobSlab.objects.filter(job=spread).values_list("worker", flat=True))
    assert workers  # recorded per slab (both processes of the worker share its name)


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


@pytest.mark.postgres
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_slab_does_not_lose_the_job(
    member, beam_session, grid, tmp_path, celery_worker_process, wait_for, clean_media
):
    path, _, _ = write_mrc_series(tmp_path, size=96, rows=24, tilts=91)
    dataset = _dataset(member, beam_session, grid, path)
    job = services.dataset_decide(dataset=dataset, accept=True, by=member)  # SIRT, after the WBP preview
    wait_for(lambda: JobSlab.objects.filter(job=job, state="running").exists(), what="a slab to start", timeout=120)
    killed = _children(celery_worker_process.pid)
    assert killed, "the worker has no pool processes"
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    job = wait_for(lambda: _finished(job.pk), what="the job after the kill", timeout=300)
    assert job.state in (JobState.SUCCEEDED, JobState.FAILED)
    preview = wait_for(lambda: _finished(dataset.jobs.get(method="wbp").pk), what="the preview", timeout=120)
    assert preview.state in (JobState.SUCCEEDED, JobState.FAILED)
    if job.state == JobState.FAILED:
        assert job.error  # failed with its reason, never stuck in running
    else:
        assert JobSlab.objects.filter(job=job, attempts__gte=2).exists()  # the lost slab ran again
