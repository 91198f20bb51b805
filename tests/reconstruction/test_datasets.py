"""Datasets: ingest by upload and by registered path, metadata, refusals that leave nothing behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import Http404

from grids.models import Grid, GridTransition
from lims.errors import ConflictError, DomainError
from reconstruction import services
from reconstruction.models import Dataset
from tests.reconstruction.factories import PIXEL_UM, write_mrc_series


def _upload(path: Path, name: str | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name or path.name, path.read_bytes())


def _stored_files(settings) -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_upload_reads_shape_angles_and_pixel_size_and_images_the_grid(member, beam_session, grid, mrc_series):
    path, projections, angles = mrc_series
    dataset = services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=_upload(path),
        angles_file=_upload(path.with_suffix(".tlt")), acquisition=services.Acquisition(photon_energy_ev=520),
    )  # fmt: skip
    assert (dataset.tilts, dataset.rows, dataset.columns) == projections.shape
    assert np.allclose(dataset.angles, angles, atol=1e-3)
    assert dataset.pixel_size_nm == pytest.approx(PIXEL_UM * 1000, rel=1e-4)
    assert dataset.metadata_source == {"pixel_size_nm": "file", "photon_energy_ev": "form"}
    assert dataset.sha256 == services.sha256_of(path)
    assert dataset.montage.name and dataset.file.name
    grid.refresh_from_db()
    assert grid.state == "imaged"
    assert GridTransition.objects.filter(grid=grid, to_state="imaged").count() == 1


def test_second_dataset_of_an_imaged_grid_keeps_it_imaged(member, beam_session, grid, tmp_path):
    first, _, _ = write_mrc_series(tmp_path, "a.mrc")
    second, _, _ = write_mrc_series(tmp_path, "b.mrc", tilts=21)
    for path in (first, second):
        services.dataset_upload(
            by=member,
            session=beam_session,
            grid=grid,
            upload=_upload(path),
            angles_file=_upload(path.with_suffix(".tlt")),
        )
    assert Dataset.objects.filter(grid=grid).count() == 2
    assert GridTransition.objects.filter(grid=grid, to_state="imaged").count() == 1


@pytest.mark.parametrize(
    ("angles_text", "message"),
    [
        ("", "does not hold its tilt angles"),
        ("-60:60:7", "tilt angles were given for 31"),
        ("a, b", "not a number"),
        ("-60:60:0", "step must be positive"),
        ("-1e9:1e9:0.0001", "write from:to:step"),
        ("-100000:100000:0.001", "at most a few thousand"),
    ],
)
def test_bad_angles_are_refused_and_leave_nothing(member, beam_session, grid, tmp_path, settings, angles_text, message):
    path, _, _ = write_mrc_series(tmp_path, tlt=False)
    with pytest.raises(DomainError, match=message):
        services.dataset_upload(
            by=member, session=beam_session, grid=grid, upload=_upload(path), angles_text=angles_text
        )
    assert not Dataset.objects.exists()
    assert _stored_files(settings) == []
    grid.refresh_from_db()
    assert grid.state == "shipped"


def test_typed_angle_range_is_accepted(member, beam_session, grid, tmp_path):
    path, _, _ = write_mrc_series(tmp_path, tlt=False)
    dataset = services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=_upload(path), angles_text="-60:60:4"
    )
    assert dataset.angles[0] == -60 and dataset.angles[-1] == 60 and len(dataset.angles) == 31


def test_missing_pixel_size_is_asked_for_and_out_of_range_refused(member, beam_session, grid, tmp_path):
    path, _, _ = write_mrc_series(tmp_path, pixel_um=None)
    tlt = path.with_suffix(".tlt")
    with pytest.raises(DomainError, match="does not say its pixel size"):
        services.dataset_upload(
            by=member, session=beam_session, grid=grid, upload=_upload(path), angles_file=_upload(tlt)
        )
    with pytest.raises(DomainError, match="pixel_size_nm must be between 1 and 1000 nm"):
        services.dataset_upload(
            by=member, session=beam_session, grid=grid, upload=_upload(path), angles_file=_upload(tlt),
            acquisition=services.Acquisition(pixel_size_nm=5000),
        )  # fmt: skip
    with pytest.raises(DomainError, match="photon_energy_ev must be between"):
        services.dataset_upload(
            by=member, session=beam_session, grid=grid, upload=_upload(path), angles_file=_upload(tlt),
            acquisition=services.Acquisition(pixel_size_nm=15, photon_energy_ev=99999),
        )  # fmt: skip
    dataset = services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=_upload(path), angles_file=_upload(tlt),
        acquisition=services.Acquisition(pixel_size_nm=15),
    )  # fmt: skip
    assert dataset.pixel_size_nm == 15 and dataset.metadata_source["pixel_size_nm"] == "form"


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (b"not an mrc file at all" * 10, "tilt.mrc", "cannot read"),
        (b"\x00" * 100, "tilt.xyz", "not a tilt-series file"),
        (b"", "tilt.tif", "cannot read"),
    ],
)
def test_unreadable_files_are_refused_in_words(member, beam_session, grid, settings, content, name, message):
    with pytest.raises(DomainError, match=message):
        services.dataset_upload(
            by=member, session=beam_session, grid=grid, upload=SimpleUploadedFile(name, content), angles_text="-60:60:4"
        )
    assert not Dataset.objects.exists() and _stored_files(settings) == []


def test_nan_stack_is_refused(member, beam_session, grid, tmp_path):
    from reconstruction.engine import io as engine_io

    data = np.full((5, 8, 8), np.nan, dtype=np.float32)
    engine_io.write_mrc(tmp_path / "nan.mrc", data, 0.02)
    with pytest.raises(DomainError, match="NaN"):
        services.dataset_upload(
            by=member, session=beam_session, grid=grid, upload=_upload(tmp_path / "nan.mrc"), angles_text="-40:40:20"
        )


def test_header_announcing_a_huge_stack_is_refused_before_reading(member, beam_session, grid, tmp_path, settings):
    settings.LIMS_DATASET_MAX_DECODED_BYTES = 1024
    path, _, _ = write_mrc_series(tmp_path)
    with pytest.raises(DomainError, match="the limit is"):
        services.dataset_upload(
            by=member, session=beam_session, grid=grid, upload=_upload(path), angles_text="-60:60:4"
        )


def test_same_file_twice_is_a_conflict(member, beam_session, grid, mrc_series):
    path = mrc_series[0]
    tlt = path.with_suffix(".tlt")
    services.dataset_upload(by=member, session=beam_session, grid=grid, upload=_upload(path), angles_file=_upload(tlt))
    with pytest.raises(ConflictError, match="already dataset"):
        services.dataset_upload(
            by=member, session=beam_session, grid=grid, upload=_upload(path), angles_file=_upload(tlt)
        )


def test_grid_must_be_on_the_sessions_sheet_and_shipped(member, beam_session, lab, mrc_series):
    from tests.factories import make_grids

    path = mrc_series[0]
    stranger = make_grids(lab=lab, user=member, count=1, state="accepted")[0]
    with pytest.raises(DomainError, match="not on the sample sheet"):
        services.dataset_upload(
            by=member, session=beam_session, grid=stranger, upload=_upload(path), angles_text="-60:60:4"
        )


def test_another_lab_cannot_add_a_dataset(outsider, beam_session, grid, mrc_series):
    with pytest.raises(Http404):
        services.dataset_upload(
            by=outsider, session=beam_session, grid=grid, upload=_upload(mrc_series[0]), angles_text="-60:60:4"
        )


def test_facility_staff_of_the_beamline_may_add_but_not_other_facilities(
    staff, alba_staff, beam_session, grid, mrc_series
):
    path = mrc_series[0]
    with pytest.raises(Http404):
        services.dataset_upload(
            by=alba_staff, session=beam_session, grid=grid, upload=_upload(path), angles_text="-60:60:4"
        )
    dataset = services.dataset_upload(
        by=staff, session=beam_session, grid=grid, upload=_upload(path), angles_text="-60:60:4"
    )
    assert dataset.created_by == staff


# --- registration under data roots ---------------------------------------------------------------


def test_registered_path_stays_in_place(member, beam_session, grid, tmp_path, settings):
    root = tmp_path / "beamline-data"
    root.mkdir()
    path, _, _ = write_mrc_series(root, "cell1.mrc")
    settings.LIMS_DATA_ROOTS = [str(root)]
    dataset = services.dataset_register(by=member, session=beam_session, grid=grid, path=str(path))
    assert dataset.source_path == str(path.resolve()) and not dataset.file
    assert len(dataset.angles) == 31  # from cell1.tlt beside it


def test_paths_outside_the_roots_are_refused(member, beam_session, grid, tmp_path, settings):
    root = tmp_path / "data"
    root.mkdir()
    outside, _, _ = write_mrc_series(tmp_path, "secret.mrc")
    (root / "link.mrc").symlink_to(outside)
    settings.LIMS_DATA_ROOTS = [str(root)]
    for text in (
        str(outside),
        f"{root}/../secret.mrc",
        str(root / "link.mrc"),
        "relative/path.mrc",
        "/etc/passwd\x00.mrc",
    ):
        with pytest.raises(DomainError):
            services.dataset_register(by=member, session=beam_session, grid=grid, path=text)
    assert not Dataset.objects.exists()
    assert Grid.objects.get(pk=grid.pk).state == "shipped"


def test_without_data_roots_registration_says_to_upload(member, beam_session, grid, mrc_series, settings):
    settings.LIMS_DATA_ROOTS = []
    with pytest.raises(DomainError, match="upload the file instead"):
        services.dataset_register(by=member, session=beam_session, grid=grid, path=str(mrc_series[0]))


# --- chunked uploads -------------------------------------------------------------------------------


def test_chunked_upload_resumes_and_only_a_complete_one_becomes_a_dataset(member, lab, beam_session, grid, mrc_series):
    path = mrc_series[0]
    data = path.read_bytes()
    upload = services.upload_start(by=member, filename="big.mrc", size_bytes=len(data))
    services.upload_append(upload=upload, offset=0, data=data[:1000], by=member)
    with pytest.raises(ConflictError, match="has 1000 bytes"):
        services.upload_append(upload=upload, offset=500, data=data[500:2000], by=member)  # the dropped request
    with pytest.raises(ConflictError, match="finish the upload first"):
        services.dataset_from_upload(upload=upload, by=member, session=beam_session, grid=grid, angles_text="-60:60:4")
    assert not Dataset.objects.exists()
    upload.refresh_from_db()
    services.upload_append(upload=upload, offset=upload.received_bytes, data=data[1000:], by=member)
    dataset = services.dataset_from_upload(
        upload=upload, by=member, session=beam_session, grid=grid, angles_text="-60:60:4"
    )
    assert dataset.sha256 == services.sha256_of(path)


def test_unfinished_uploads_are_purged_after_two_days_with_their_bytes(member, settings):
    import datetime

    from django.utils import timezone

    from reconstruction.models import DatasetUpload

    old = services.upload_start(by=member, filename="old.mrc", size_bytes=10)
    fresh = services.upload_start(by=member, filename="fresh.mrc", size_bytes=10)
    DatasetUpload.objects.filter(pk=old.pk).update(updated_at=timezone.now() - datetime.timedelta(hours=49))
    old_file = Path(settings.MEDIA_ROOT) / old.storage_name
    assert old_file.exists()
    assert services.uploads_purge_stale() == 1
    assert not old_file.exists() and list(DatasetUpload.objects.values_list("pk", flat=True)) == [fresh.pk]
