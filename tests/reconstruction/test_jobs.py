"""Reconstruction jobs: accept → slabs on workers → one volume equal to the engine's own; duplicates,
cancellation, a broker that is down, a failing engine, a lost worker."""

from __future__ import annotations

from pathlib import Path

import mrcfile
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from lims.errors import ConflictError, DomainError
from reconstruction import engine, services, tasks
from reconstruction.models import JobSlab, JobState, ReconstructionJob, Volume
from tests.reconstruction.factories import PIXEL_UM


@pytest.fixture
def dataset(member, beam_session, grid, mrc_series):
    path = mrc_series[0]
    return services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=SimpleUploadedFile(path.name, path.read_bytes()),
        angles_file=SimpleUploadedFile("tilt.tlt", path.with_suffix(".tlt").read_bytes()),
    )  # fmt: skip


def test_accepting_starts_the_default_job_and_makes_a_volume_equal_to_the_engines(dataset, member, mrc_series):
    _, projections, angles = mrc_series
    job = services.dataset_decide(dataset=dataset, accept=True, by=member)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.method == "sirt" and job.progress == 100 and job.slab_count == 1
    assert job.started_at and job.finished_at and job.engine_version
    volume = job.volume
    with mrcfile.open(default_storage.path(volume.file.name)) as mrc:
        data = np.array(mrc.data)
        assert float(mrc.voxel_size.x) == pytest.approx(PIXEL_UM * 1e4, rel=1e-4)  # Å in the header
    # The recipe corrects the drift found when the series was read (none here: the shifts are a fraction of a pixel).
    dataset.refresh_from_db()
    assert job.parameters["align"] and np.abs(dataset.alignment["shifts"]).max() < 1.0
    aligned = engine.apply_shifts(projections, np.asarray(dataset.alignment["shifts"]))
    direct = (
        engine.reconstruct(
            aligned, angles, method="sirt", thickness=dataset.columns, axis_offset=job.parameters["axis_offset"]
        )
        / PIXEL_UM
    )
    assert data.shape == direct.shape == (volume.depth, volume.thickness, volume.width)
    np.testing.assert_allclose(data, direct, rtol=1e-5, atol=1e-5)
    assert volume.units == "µm⁻¹" and volume.absolute
    assert volume.sha256 == services.sha256_of(Path(default_storage.path(volume.file.name)))
    assert set(volume.previews) == {"xy", "xz", "yz"}
    assert sum(volume.histogram["counts"]) > 0
    assert volume.fsc["fsc"] and len(volume.fsc["fsc"]) == len(volume.fsc["frequency_per_nm"])
    # Slabs spread over workers give the same volume as the engine in one piece.
    wbp, _ = services.job_request(dataset=dataset, method="wbp", parameters={"slab_size": 5, "align": False}, by=member)
    wbp.refresh_from_db()
    assert wbp.slab_count == 3 and wbp.state == JobState.SUCCEEDED
    assert not JobSlab.objects.filter(job=wbp).exclude(state="done").exists()
    assert not list(Path(default_storage.path(services.slab_folder(wbp))).glob("slab-*.npy"))  # cleaned up
    with mrcfile.open(default_storage.path(wbp.volume.file.name)) as mrc:
        in_slabs = np.array(mrc.data)
    whole = engine.reconstruct(projections, angles, method="wbp", thickness=dataset.columns) / PIXEL_UM
    np.testing.assert_allclose(in_slabs, whole, rtol=1e-5, atol=1e-5)
    # Whether values are absolute is the engine's word for the method and tilt range (WBP corrects the wedge).
    assert wbp.volume.absolute == engine.value_note("wbp", angles)["absolute"]


def test_the_same_request_twice_returns_the_existing_job(dataset, member):
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    preview = dataset.jobs.get(method="wbp")
    first, created = services.job_request(dataset=dataset, method="wbp", parameters={"slab_size": 4}, by=member)
    assert not created and first.pk == preview.pk  # slabs do not change the result: the preview is that job
    first, created = services.job_request(dataset=dataset, method="wbp", parameters={"align": False}, by=member)
    again, created_again = services.job_request(
        dataset=dataset, method="WBP", parameters={"align": False, "slab_size": 6}, by=member
    )
    assert created and not created_again and again.pk == first.pk
    other, created_other = services.job_request(
        dataset=dataset, method="wbp", parameters={"filter_name": "hann"}, by=member
    )
    assert created_other and other.pk != first.pk


def test_a_dataset_must_be_accepted_before_reconstructing(dataset, member):
    with pytest.raises(ConflictError, match="accept it before"):
        services.job_request(dataset=dataset, method="wbp", parameters={}, by=member)


def test_rejecting_needs_a_reason_and_starts_nothing(dataset, member):
    with pytest.raises(DomainError, match="say why"):
        services.dataset_decide(dataset=dataset, accept=False, by=member)
    assert services.dataset_decide(dataset=dataset, accept=False, by=member, note="drift") is None
    dataset.refresh_from_db()
    assert dataset.status == "rejected" and not ReconstructionJob.objects.exists()
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    with pytest.raises(ConflictError, match="cannot become rejected"):
        services.dataset_decide(dataset=dataset, accept=False, by=member, note="changed my mind")


@pytest.mark.parametrize(
    ("method", "parameters", "message"),
    [
        ("fbp-magic", {}, "not a reconstruction method"),
        ("sirt", {"iterations": 0}, "iterations must be between 1 and 500"),
        ("sirt", {"iterations": "many"}, "not a number"),
        ("sirt", {"iterations": float("nan")}, "iterations must be"),
        ("wbp", {"iterations": 5}, "no iterations"),
        ("sirt", {"filter_name": "hann"}, "applies to wbp only"),
        ("wbp", {"filter_name": "sharpest"}, "filter_name: use one of"),
        ("sirt", {"colour": "blue"}, "Unknown parameter"),
        ("sirt", {"thickness": 10**9}, "thickness must be"),
    ],
)
def test_bad_parameters_are_refused_in_words(dataset, member, method, parameters, message):
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    before = ReconstructionJob.objects.count()
    with pytest.raises(DomainError, match=message):
        services.job_request(dataset=dataset, method=method, parameters=parameters, by=member)
    assert ReconstructionJob.objects.count() == before


def test_another_lab_cannot_decide_or_reconstruct(dataset, outsider, member):
    from django.http import Http404

    with pytest.raises(Http404):
        services.dataset_decide(dataset=dataset, accept=True, by=outsider)
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    with pytest.raises(Http404):
        services.job_request(dataset=dataset, method="wbp", parameters={}, by=outsider)


def test_broker_down_keeps_the_job_and_sends_it_when_back(dataset, member, monkeypatch):
    from kombu.exceptions import OperationalError

    services.dataset_decide(dataset=dataset, accept=True, by=member)

    def down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    with monkeypatch.context() as patched:
        patched.setattr(tasks.reconstruct_slab, "delay", down)
        job, created = services.job_request(dataset=dataset, method="wbp", parameters={"align": False}, by=member)
    job.refresh_from_db()
    assert created and job.state == JobState.QUEUED and job.dispatched_at is None
    assert "waiting for the task queue" in job.log
    assert services.jobs_dispatch_pending() == 1
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED and job.dispatched_at is not None


def test_cancel_stops_the_remaining_slabs(dataset, member, monkeypatch):
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    sent = []
    monkeypatch.setattr(tasks.reconstruct_slab, "delay", lambda slab_id: sent.append(slab_id))
    job, _ = services.job_request(dataset=dataset, method="wbp", parameters={"slab_size": 3, "align": False}, by=member)
    assert job.slab_count == 4 and len(sent) == 4 + 2  # and the two FSC halves
    assert services.slab_run(slab_id=sent[0]) == "done"
    services.job_cancel(job=job, by=member)
    assert [services.slab_run(slab_id=s) for s in sent[1:]] == ["skipped"] * 5
    job.refresh_from_db()
    assert job.state == JobState.CANCELLED and not Volume.objects.filter(job=job).exists()
    with pytest.raises(ConflictError, match="cancelled reconstruction job cannot become cancelled"):
        services.job_cancel(job=job, by=member)


def test_engine_error_fails_the_job_with_its_reason(dataset, member, monkeypatch):
    services.dataset_decide(dataset=dataset, accept=True, by=member)

    def boom(*args, **kwargs):
        raise ValueError("projections contain NaN")

    monkeypatch.setattr(engine, "reconstruct", boom)
    job, _ = services.job_request(dataset=dataset, method="wbp", parameters={"slab_size": 6, "align": False}, by=member)
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "projections contain NaN" in job.error
    assert job.finished_at is not None


def test_a_slab_whose_worker_keeps_dying_fails_the_job_instead_of_hanging(dataset, member, monkeypatch):
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    sent = []
    monkeypatch.setattr(tasks.reconstruct_slab, "delay", lambda slab_id: sent.append(slab_id))
    job, _ = services.job_request(dataset=dataset, method="wbp", parameters={"slab_size": 6, "align": False}, by=member)
    # Three deliveries that each died mid-slab (claimed, never finished): the fourth gives up with a reason.
    JobSlab.objects.filter(pk=sent[0]).update(state="running", attempts=services.MAX_SLAB_ATTEMPTS)
    assert services.slab_run(slab_id=sent[0]) == "skipped"
    job.refresh_from_db()
    assert job.state == JobState.FAILED and "worker was lost" in job.error


def test_a_redelivered_slab_runs_again_and_the_job_completes(dataset, member, monkeypatch):
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    sent = []
    with monkeypatch.context() as patched:
        patched.setattr(tasks.reconstruct_slab, "delay", lambda slab_id: sent.append(slab_id))
        job, _ = services.job_request(
            dataset=dataset, method="wbp", parameters={"slab_size": 6, "align": False}, by=member
        )
    JobSlab.objects.filter(pk=sent[0]).update(state="running", attempts=1)  # its worker was killed
    for slab_id in sent:
        services.slab_run(slab_id=slab_id)
    services.slab_run(slab_id=sent[-1])  # a late duplicate delivery changes nothing
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED
    assert JobSlab.objects.get(pk=sent[0]).attempts == 2
    assert Volume.objects.filter(job=job).count() == 1


def test_focal_series_reconstructs_as_one_slab(member, beam_session, grid, tmp_path):
    import json

    from reconstruction.engine import io as engine_io
    from reconstruction.engine.simulate import project
    from tests.reconstruction.factories import phantom_series

    _, angles, volume = phantom_series(size=24, rows=8, tilts=16)
    planes = [-0.2, 0.2]
    focal = np.asarray(project(volume, angles, PIXEL_UM, focal_planes_um=planes), dtype=np.float32)
    stack = focal.reshape(-1, *focal.shape[2:])
    engine_io.write_mrc(tmp_path / "focal.mrc", stack, PIXEL_UM)
    sidecar = json.dumps({"focal_planes_um": planes, "pixel_size_um": PIXEL_UM}).encode()
    dataset = services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=SimpleUploadedFile("focal.mrc", (tmp_path / "focal.mrc").read_bytes()),
        angles_text=" ".join(f"{a:.4f}" for a in angles), sidecar_file=SimpleUploadedFile("focal.focal.json", sidecar),
    )  # fmt: skip
    assert dataset.format == "focal" and dataset.focal_planes == 2 and dataset.tilts == 16
    job = services.dataset_decide(dataset=dataset, accept=True, by=member)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    assert job.slab_count == 1 and job.volume.depth == 8


def test_a_single_focus_series_with_its_zone_plate_gets_the_psf_aware_method(member, beam_session, grid, mrc_series):
    path, projections, angles = mrc_series
    optics = services.Acquisition(photon_energy_ev=520.0, zone_plate_outer_zone_nm=25.0, zone_plate_diameter_um=50.0)
    dataset = services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=SimpleUploadedFile(path.name, path.read_bytes()),
        angles_file=SimpleUploadedFile("tilt.tlt", path.with_suffix(".tlt").read_bytes()), acquisition=optics,
    )  # fmt: skip
    assert services.default_method(dataset) == "psf-mbir"  # the regularised PSF-aware method
    job = services.dataset_decide(dataset=dataset, accept=True, by=member)
    job.refresh_from_db()
    assert job.method == "psf-mbir" and job.state == JobState.SUCCEEDED, job.error
    assert job.slab_count == 1  # the engine overlaps its own slabs: the 3-D PSF couples neighbouring rows
    optics = {"zone_plate": services.zone_plate_of(dataset), "pixel_size_um": dataset.pixel_size_um}

    def volume_of(job) -> np.ndarray:
        with mrcfile.open(default_storage.path(job.volume.file.name)) as mrc:
            return np.array(mrc.data)

    # It takes the tilt axis in the centre: the drift-corrected projections are moved by minus the axis offset.
    dataset.refresh_from_db()
    shifts = np.asarray(dataset.alignment["shifts"]) - [0.0, job.parameters["axis_offset"]]
    expected = engine.reconstruct(
        engine.apply_shifts(projections, shifts), angles, method="psf-mbir", thickness=dataset.columns, **optics
    )
    np.testing.assert_allclose(volume_of(job), expected / dataset.pixel_size_um, rtol=1e-5, atol=1e-5)
    # psf-sirt, asked for, with the tilt axis moved by hand: the same path (projections moved to the centre).
    moved, _ = services.job_request(
        dataset=dataset, method="psf-sirt", parameters={"axis_offset": 2, "align": False}, by=member
    )
    moved.refresh_from_db()
    expected = engine.reconstruct(
        engine.apply_shifts(projections, np.tile([0.0, -2.0], (len(angles), 1))), angles, method="psf-sirt",
        thickness=dataset.columns, **optics,
    )  # fmt: skip
    np.testing.assert_allclose(volume_of(moved), expected / dataset.pixel_size_um, rtol=1e-5, atol=1e-5)


def test_the_psf_aware_method_needs_the_zone_plate(dataset, member):
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    assert services.default_method(dataset) == "sirt"
    with pytest.raises(DomainError, match="psf-sirt needs the zone plate"):
        services.job_request(dataset=dataset, method="psf-sirt", parameters={}, by=member)
    with pytest.raises(DomainError, match="psf-mbir needs the zone plate.*or use mbir"):
        services.job_request(dataset=dataset, method="psf-mbir", parameters={}, by=member)
