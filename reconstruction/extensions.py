"""What reconstruction adds to the lower apps' extension points: the grid's provenance (datasets, jobs,
volumes) and its next step once it is at the beamline or imaged. Registered in ReconstructionConfig.ready()."""

from __future__ import annotations

from django.urls import reverse

from grids.lifecycle import GridState
from grids.next_steps import NextStep, next_step_register
from grids.provenance import provenance_section_register, when, who
from reconstruction.models import Dataset, DatasetStatus, JobState


def datasets_section(grid, request=None) -> list[dict]:
    """Each dataset of the grid with its decision, its jobs (method, parameters, engine) and their volumes."""
    rows = (
        Dataset.objects.filter(grid=grid)
        .select_related("session__beamline", "created_by", "decided_by")
        .prefetch_related("jobs__created_by", "jobs__volume")
        .order_by("created_at", "pk")
    )
    out = []
    for d in rows:
        jobs = []
        for j in sorted(d.jobs.all(), key=lambda j: j.pk):
            volume = getattr(j, "volume", None) if j.state == JobState.SUCCEEDED else None
            jobs.append({
                "id": j.pk, "method": j.method, "parameters": j.parameters, "engine_version": j.engine_version,
                "state": j.state, "error": j.error or None, "by": who(j.created_by), "at": when(j.created_at),
                "started_at": when(j.started_at), "finished_at": when(j.finished_at),
                "volume": None if volume is None else {
                    "id": volume.pk, "sha256": volume.sha256, "voxel_size_nm": volume.voxel_size_nm,
                    "units": volume.units, "absolute": volume.absolute, "resolution_nm": volume.resolution_nm,
                    "at": when(volume.created_at),
                },
            })  # fmt: skip
        out.append({
            "id": d.pk, "name": d.name, "format": d.format, "sha256": d.sha256, "session": d.session_id,
            "beamline": str(d.session.beamline), "tilts": d.tilts, "tilt_range": list(d.tilt_range),
            "pixel_size_nm": d.pixel_size_nm, "photon_energy_ev": d.photon_energy_ev, "status": d.status,
            "decided_by": who(d.decided_by), "decided_at": when(d.decided_at), "by": who(d.created_by),
            "at": when(d.created_at), "jobs": jobs,
        })  # fmt: skip
    return out


def _at_the_beamline(grid, user):
    return NextStep(
        "The grid is at the beamline. When its tilt series is recorded, add it as a dataset.",
        url=f"{reverse('reconstruction:dataset-add')}?grid={grid.pk}",
        button="Add a dataset (tilt series)",
    )


def _imaged(grid, user):
    pending = Dataset.objects.filter(grid=grid, status=DatasetStatus.PENDING).order_by("pk").first()
    if pending is not None:
        return NextStep(
            f"Check the projections of {pending.name} and accept it: its reconstruction starts by itself.",
            url=reverse("reconstruction:dataset-detail", args=[pending.pk]),
            button="Check and accept the dataset",
        )
    latest = Dataset.objects.filter(grid=grid).order_by("-pk").first()
    if latest is None:
        return None
    return NextStep(
        f"Follow the reconstructions of {latest.name}, or add another tilt series of this grid.",
        url=reverse("reconstruction:dataset-detail", args=[latest.pk]) + "#jobs",
        button="See the reconstructions",
        also=[("Add a dataset", f"{reverse('reconstruction:dataset-add')}?grid={grid.pk}")],
    )


def register() -> None:
    provenance_section_register("datasets", datasets_section, order=110)
    next_step_register(GridState.SHIPPED, _at_the_beamline)
    next_step_register(GridState.IMAGED, _imaged)
