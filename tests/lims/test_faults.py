"""Faults: the database connection dropping in the middle of a request, and the disk filling up while an
image preview or a volume is written. Each ends in a clean answer or a failed task with its reason, with
nothing half-written: no partial rows, no truncated file under a name that looks complete."""

from __future__ import annotations

import errno
import os

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import OperationalError, connection
from django.test import TestCase

from characterization.models import CheckImage, MetricsStatus
from grids.models import Grid, GridLot
from tests.characterization.factories import compute_pending_metrics, make_check, small_tiff, stored_files, upload
from tests.factories import GridLotFactory

# --- the database connection drops ----------------------------------------------------------------


def _drop_connection_at(statement: str, *, after: int):
    """An execute wrapper: the (after+1)-th statement containing `statement` fails as a lost connection
    does (everything before it in the request has run)."""
    seen = {"n": 0}

    def wrapper(execute, sql, params, many, context):
        if statement in sql:
            seen["n"] += 1
            if seen["n"] > after:
                raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, params, many, context)

    return wrapper


@pytest.fixture
def lot(lab, member):
    return GridLotFactory(lab=lab, created_by=member, quantity=20)


def _untouched(lot):
    fresh = GridLot.objects.get(pk=lot.pk)
    return fresh.quantity_left == 20 and not Grid.objects.filter(lot=lot).exists()


def test_a_connection_lost_mid_registration_through_the_api_is_a_503_and_writes_nothing(api, lot):
    # The lot is decremented and two grids are saved before the third INSERT fails.
    with connection.execute_wrapper(_drop_connection_at('INSERT INTO "grids_grid"', after=2)):
        response = api.post(f"/api/v1/grid-lots/{lot.pk}/register-grids/", {"count": 5}, format="json")
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "nothing of this request was saved" in response.json()["detail"]
    assert _untouched(lot)
    assert api.post(f"/api/v1/grid-lots/{lot.pk}/register-grids/", {"count": 5}, format="json").status_code == 201


def test_a_connection_lost_mid_registration_on_the_page_is_a_503_page_and_writes_nothing(web, lot):
    with connection.execute_wrapper(_drop_connection_at('INSERT INTO "grids_grid"', after=2)):
        response = web.post(f"/grids/lots/{lot.pk}/", {"count": 5})
    assert response.status_code == 503
    assert "The database is not answering" in response.content.decode()
    assert _untouched(lot)


def test_other_errors_are_not_mistaken_for_a_lost_connection(api, lot, monkeypatch):
    from grids import services

    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(services, "grids_register", broken)
    api.raise_request_exception = False
    response = api.post(f"/api/v1/grid-lots/{lot.pk}/register-grids/", {"count": 5}, format="json")
    assert response.status_code == 500


# --- the disk fills up ----------------------------------------------------------------------------


class _FullDisk:
    """A file object that writes the first `room` bytes, then fails with ENOSPC, as a full disk does."""

    def __init__(self, real, room: list[int]):
        self._real, self._room = real, room

    def write(self, data):
        if len(data) > self._room[0]:
            self._real.write(data[: self._room[0]])
            self._room[0] = 0
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room[0] -= len(data)
        return self._real.write(data)

    def __getattr__(self, name):
        return getattr(self._real, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._real.close()


@pytest.fixture
def full_disk(monkeypatch):
    """From now on the disk holds `room` more bytes (default 100) for files written by the storage."""
    room = [100]
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        return _FullDisk(real_fdopen(fd, *args, **kwargs), room)

    monkeypatch.setattr("lims.storage.os.fdopen", fdopen)
    return room


def _visible_files():
    return sorted(p for p in stored_files() if not p.name.startswith("."))


def test_a_full_disk_leaves_no_file_under_the_name_being_written(db, full_disk):
    with pytest.raises(OSError, match="No space left"):
        default_storage.save("checks/x/preview.jpg", ContentFile(b"\xff" * 5000))
    assert stored_files() == []  # neither a truncated preview.jpg nor its temporary file


def test_a_file_that_fits_is_stored_complete(db, full_disk):
    full_disk[0] = 10_000
    name = default_storage.save("checks/x/preview.jpg", ContentFile(b"\xff" * 5000))
    assert default_storage.open(name).read() == b"\xff" * 5000
    assert [p.name for p in stored_files()] == ["preview.jpg"]


def test_a_full_disk_while_writing_previews_fails_the_image_with_the_reason_and_keeps_no_preview(
    lab, member, full_disk, django_capture_on_commit_callbacks
):
    from characterization import services

    check = make_check(lab=lab, user=member)
    full_disk[0] = 10**9
    with django_capture_on_commit_callbacks(execute=False):
        image = services.check_image_upload(lm_check=check, upload=upload(small_tiff()), by=member)
    original = _visible_files()
    assert len(original) == 1
    full_disk[0] = 2000  # the preview JPEG does not fit
    compute_pending_metrics()
    image.refresh_from_db()
    assert image.metrics_status == MetricsStatus.FAILED and "No space left" in image.metrics_error
    assert not image.preview and not image.thumbnail
    assert stored_files() == original  # only the original: no truncated preview, no temporary file


def test_a_full_disk_while_recomputing_keeps_the_previews_in_use(lab, member, full_disk):
    from characterization import services

    check = make_check(lab=lab, user=member)
    full_disk[0] = 10**9
    with TestCase.captureOnCommitCallbacks(execute=False):
        image = services.check_image_upload(lm_check=check, upload=upload(small_tiff()), by=member)
    compute_pending_metrics()
    image.refresh_from_db()
    before = {p: p.read_bytes() for p in _visible_files()}
    assert image.preview and image.thumbnail and len(before) >= 3
    CheckImage.objects.filter(pk=image.pk).update(metrics_status=MetricsStatus.PENDING)
    full_disk[0] = 3000  # the new preview does not fit
    compute_pending_metrics()
    image.refresh_from_db()
    assert image.metrics_status == MetricsStatus.FAILED and "No space left" in image.metrics_error
    assert {p: p.read_bytes() for p in stored_files()} == before  # the old previews, whole, still in use
    assert default_storage.exists(image.preview.name) and default_storage.exists(image.thumbnail.name)


@pytest.fixture
def accepted_dataset(lab, member, monkeypatch, tmp_path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from reconstruction import services
    from tests.reconstruction.factories import shipped_grids, write_mrc_series

    session, grids = shipped_grids(lab=lab, member=member, monkeypatch=monkeypatch)
    path, _, _ = write_mrc_series(tmp_path, size=16, rows=4, tilts=21)
    with TestCase.captureOnCommitCallbacks(execute=True):
        dataset = services.dataset_upload(
            by=member, session=session, grid=grids[0], upload=SimpleUploadedFile(path.name, path.read_bytes()),
            angles_file=SimpleUploadedFile("tilt.tlt", path.with_suffix(".tlt").read_bytes()),
        )  # fmt: skip
    with TestCase.captureOnCommitCallbacks(execute=False):  # the default job is not run
        services.dataset_decide(dataset=dataset, accept=True, by=member)
    return dataset


def _volume_files():
    return [p for p in stored_files() if "volumes" in p.parts or p.name.startswith("preview-")]


def _run_wbp(dataset, member):
    from reconstruction import services

    with TestCase.captureOnCommitCallbacks(execute=True):
        # Alignment off: not the recipe's own WBP preview, which stays queued in these tests.
        job, _ = services.job_request(dataset=dataset, method="wbp", parameters={"align": False}, by=member)
    job.refresh_from_db()
    return job


def test_a_full_disk_while_writing_the_volume_fails_the_job_and_leaves_no_volume_file(
    accepted_dataset, member, monkeypatch
):
    from reconstruction.engine import io as engine_io
    from reconstruction.models import Volume

    real = engine_io.write_volume

    def write_half(path, volume, voxel_size_um=None):
        real(path, volume, voxel_size_um)
        with open(path, "r+b") as handle:
            handle.truncate(os.path.getsize(path) // 2)  # what reached the disk before it filled up
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine_io, "write_volume", write_half)
    job = _run_wbp(accepted_dataset, member)
    assert job.state == "failed" and "No space left" in job.error
    assert not Volume.objects.filter(job=job).exists()
    assert _volume_files() == []  # the half-written MRC is gone (it was only ever under a .part name)
    assert not [p for p in stored_files() if p.suffix == ".part"]


def test_a_full_disk_while_writing_the_volume_previews_removes_the_volume_file_too(accepted_dataset, member, full_disk):
    from reconstruction.models import Volume

    full_disk[0] = 50  # the MRC is written by the engine (not through the storage); its previews do not fit
    job = _run_wbp(accepted_dataset, member)
    assert job.state == "failed" and "No space left" in job.error
    assert not Volume.objects.filter(job=job).exists()
    assert _volume_files() == []
