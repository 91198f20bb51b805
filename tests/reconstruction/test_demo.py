"""`make run`'s demo: an imaged grid with a simulated tilt series and focal series, ready to reconstruct."""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.core.management import call_command

from reconstruction import services
from reconstruction.models import Dataset, JobState


def test_demo_has_an_imaged_grid_whose_tilt_series_reconstructs(db):
    call_command("load_demo")
    call_command("load_demo")  # idempotent
    datasets = {d.format: d for d in Dataset.objects.select_related("grid")}
    assert set(datasets) == {"mrc", "focal"}, [d.name for d in Dataset.objects.all()]
    tilt = datasets["mrc"]
    assert tilt.grid.state == "imaged" and tilt.status == "pending"
    assert tilt.photon_energy_ev == 520 and tilt.tilts == 61 and datasets["focal"].focal_planes == 3
    assert datasets["focal"].zone_plate_outer_zone_nm == 25
    for name in ("projection", "wbp", "wbp-hann", "sirt"):
        assert default_storage.exists(f"reconstruction/guide/{name}.png")
    job = services.dataset_decide(dataset=tilt, accept=True, by=tilt.created_by)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    assert 0.0 < job.volume.value_mean < 2.0  # µm⁻¹: a cell in ice at 520 eV
