"""The default recipe of an accepted dataset: the drift found when the series is read, a quick WBP preview, then
the default method on the aligned series; and the form that starts another job with its defaults filled in."""

from __future__ import annotations

import mrcfile
import numpy as np
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from lims.errors import DomainError
from reconstruction import engine, services
from reconstruction.engine import io as engine_io
from reconstruction.engine.phantoms import shepp_logan_3d
from reconstruction.engine.simulate import misalign, project
from reconstruction.forms import JobForm
from reconstruction.models import Dataset, JobState, ReconstructionJob
from tests.reconstruction.factories import PIXEL_UM, phantom_series


def _upload(member, beam_session, grid, path, angles) -> Dataset:
    return services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=SimpleUploadedFile(path.name, path.read_bytes()),
        angles_text=" ".join(f"{a:.4f}" for a in angles),
    )  # fmt: skip


@pytest.fixture
def drifting(member, beam_session, grid, tmp_path):
    """A cell-sized object inside the field of view whose projections drift by up to 3 px (rows and columns):
    (dataset, undrifted projections, applied shifts)."""
    volume = np.zeros((32, 64, 64), np.float32)
    volume[8:24, 16:48, 16:48] = shepp_logan_3d((16, 32, 32)) * 0.5
    angles = np.linspace(-60.0, 60.0, 31)
    projections = np.asarray(project(volume, angles, PIXEL_UM), dtype=np.float32)
    shifted, applied = misalign(projections, 3.0, seed=4)
    path = tmp_path / "drift.mrc"
    engine_io.write_mrc(path, shifted, PIXEL_UM)
    return _upload(member, beam_session, grid, path, angles), projections, applied


def _volume(job: ReconstructionJob) -> np.ndarray:
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    with mrcfile.open(default_storage.path(job.volume.file.name)) as mrc:
        return np.array(mrc.data)


def test_the_drift_is_measured_when_the_series_is_read(drifting):
    dataset, _, applied = drifting
    alignment = dataset.alignment
    assert len(alignment["shifts"]) == dataset.tilts and alignment["binning"] == 1
    error = np.asarray(alignment["shifts"]) + applied  # what is left of the drift after the correction
    # Along the tilt axis the shifts undo the drift up to one common shift; across it, up to a move of the object
    # and of the tilt axis (c0 + c1·cos θ + c2·sin θ), which the reconstruction takes as its axis offset.
    assert np.abs(error[:, 0] - error[:, 0].mean()).max() < 0.2
    theta = np.deg2rad(dataset.angles)
    span = np.stack([np.ones_like(theta), np.cos(theta), np.sin(theta)], axis=1)
    columns = error[:, 1] - span @ np.linalg.lstsq(span, error[:, 1], rcond=None)[0]
    assert np.abs(columns).max() < 0.2
    assert alignment["max_shift_px"] > 1.0


def test_accepting_starts_a_wbp_preview_then_sirt_on_the_aligned_series(drifting, member):
    dataset, _, _ = drifting
    final = services.dataset_decide(dataset=dataset, accept=True, by=member)
    jobs = list(ReconstructionJob.objects.filter(dataset=dataset).order_by("pk"))
    assert [j.method for j in jobs] == ["wbp", "sirt"] and jobs[-1].pk == final.pk
    assert all(j.parameters["align"] is True for j in jobs)
    assert final.parameters["axis_offset"] == round(dataset.alignment["axis_offset"], 1)
    volume = _volume(final)
    aligned = engine.apply_shifts(
        engine_io.read_tilt_series(services.dataset_path(dataset), dataset.angles).projections,
        np.asarray(dataset.alignment["shifts"]),
    )
    direct = engine.reconstruct(
        aligned, dataset.angles, method="sirt", thickness=dataset.columns, axis_offset=final.parameters["axis_offset"]
    )
    np.testing.assert_allclose(volume, direct / PIXEL_UM, rtol=1e-5, atol=1e-5)


def test_alignment_brings_a_drifting_series_closer_to_the_undrifted_reconstruction(drifting, member):
    dataset, clean, _ = drifting
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    unaligned, _ = services.job_request(dataset=dataset, method="sirt", parameters={"align": False}, by=member)
    aligned = ReconstructionJob.objects.get(dataset=dataset, method="sirt", parameters__align=True)
    truth = engine.reconstruct(clean, dataset.angles, method="sirt", thickness=dataset.columns) / PIXEL_UM

    def error(volume: np.ndarray) -> float:
        # Alignment is exact only up to one shift of the whole series: compare after the best whole-voxel shift.
        best = np.inf
        for shift in np.ndindex(5, 5, 5):
            moved = np.roll(volume, np.subtract(shift, 2), axis=(0, 1, 2))
            best = min(best, float(np.sqrt(np.mean((moved[3:-3, 3:-3, 3:-3] - truth[3:-3, 3:-3, 3:-3]) ** 2))))
        return best

    assert error(_volume(aligned)) < 0.7 * error(_volume(unaligned))  # measured: 0.63 (sub-voxel shifts remain)


def test_a_focal_series_is_not_aligned(member, beam_session, grid, tmp_path):
    import json

    from reconstruction.engine.simulate import project

    _, angles, volume = phantom_series(size=24, rows=8, tilts=16)
    planes = [-0.2, 0.2]
    focal = np.asarray(project(volume, angles, PIXEL_UM, focal_planes_um=planes), dtype=np.float32)
    engine_io.write_mrc(tmp_path / "focal.mrc", focal.reshape(-1, *focal.shape[2:]), PIXEL_UM)
    sidecar = json.dumps({"focal_planes_um": planes, "pixel_size_um": PIXEL_UM}).encode()
    dataset = services.dataset_upload(
        by=member, session=beam_session, grid=grid,
        upload=SimpleUploadedFile("focal.mrc", (tmp_path / "focal.mrc").read_bytes()),
        angles_text=" ".join(f"{a:.4f}" for a in angles), sidecar_file=SimpleUploadedFile("focal.focal.json", sidecar),
    )  # fmt: skip
    assert dataset.alignment is None
    job = services.dataset_decide(dataset=dataset, accept=True, by=member)
    assert job.method == "wbp" and job.parameters["align"] is False
    assert ReconstructionJob.objects.filter(dataset=dataset).count() == 1  # WBP is the recipe: no separate preview
    with pytest.raises(DomainError, match="focal series is reconstructed as recorded"):
        services.job_request(dataset=dataset, method="wbp", parameters={"align": True}, by=member)


def test_a_dataset_read_before_alignment_existed_is_aligned_when_first_reconstructed(drifting, member):
    dataset, _, _ = drifting
    stored = dataset.alignment
    Dataset.objects.filter(pk=dataset.pk).update(alignment=None)
    dataset.refresh_from_db()
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    dataset.refresh_from_db()
    assert dataset.alignment == stored


def test_strength_is_for_the_regularised_method_and_checked_against_its_range(drifting, member):
    dataset, _, _ = drifting
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    with pytest.raises(DomainError, match="applies to mbir, psf-mbir only"):
        services.job_request(dataset=dataset, method="sirt", parameters={"strength": 2}, by=member)
    with pytest.raises(DomainError, match="strength must be between 0.05 and 20"):
        services.job_request(dataset=dataset, method="mbir", parameters={"strength": 500}, by=member)
    job, created = services.job_request(
        dataset=dataset, method="mbir", parameters={"strength": 2, "iterations": 3}, by=member
    )
    assert created and job.parameters["strength"] == 2.0
    assert _volume(job).shape == (dataset.rows, dataset.columns, dataset.columns)


def test_the_job_form_explains_each_method_and_fills_in_the_defaults(drifting):
    dataset, _, _ = drifting
    form = JobForm(dataset=dataset)
    labels = dict(form.fields["method"].choices)
    assert set(labels) == set(engine.METHODS)
    for method, label in labels.items():
        assert engine.METHOD_INFO[method]["help"] in label
    assert form.fields["method"].initial == services.default_method(dataset)
    assert form.fields["thickness"].initial == dataset.columns
    assert form.fields["axis_offset"].initial == round(dataset.alignment["axis_offset"], 1)
    assert form.fields["align"].initial is True


def test_the_job_form_passes_what_was_filled_in_and_an_unticked_box_as_no(drifting, member):
    dataset, _, _ = drifting
    posted = {"method": "sirt", "align": "on", "thickness": "48", "axis_offset": "0.5", "slab_size": "8"}
    form = JobForm(posted, dataset=dataset)
    assert form.is_valid(), form.errors
    assert form.parameters() == {"align": True, "thickness": 48, "axis_offset": 0.5, "slab_size": 8}
    unticked = JobForm({"method": "wbp", "thickness": "48"}, dataset=dataset)
    assert unticked.is_valid() and unticked.parameters() == {"align": False, "thickness": 48}


def test_the_job_form_reports_every_problem_at_once_by_its_field(drifting):
    dataset, _, _ = drifting
    form = JobForm({"method": "wbp", "iterations": "7", "strength": "3", "thickness": "99999"}, dataset=dataset)
    assert not form.is_valid()
    assert "no iterations" in form.errors["iterations"][0]
    assert "applies to mbir, psf-mbir only" in form.errors["strength"][0]
    assert form.errors["thickness"] == [
        "Volume thickness must be between 4 and 4096 voxels (the value read was 99999)."
    ]


def test_the_dataset_page_shows_the_drift_and_the_recipe(client, member, drifting):
    dataset, _, _ = drifting
    client.force_login(member)
    url = reverse("reconstruction:dataset-detail", args=[dataset.pk])
    page = client.get(url).content.decode()
    assert "between tilts" in page and "a quick WBP preview first" in page
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    page = client.get(url).content.decode()  # the reconstruct-again form, each method explained
    assert "Reconstruct again" in page
    for method in engine.METHODS:
        assert engine.METHOD_INFO[method]["label"] in page
