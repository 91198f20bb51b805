"""Reads of the reconstruction app: what a person may see, scoped like the rest of the LIMS.

A lab sees its own datasets, jobs and volumes; facility staff see those of sessions on their facilities'
beamlines. Anything else reads as absent (404).
"""

from __future__ import annotations

from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from beamtime import access
from beamtime.models import BeamtimeSession, SampleSheetEntry
from characterization.models import Target
from grids.lifecycle import GridState
from lims import permissions
from reconstruction.models import Dataset, ReconstructionJob, ReconstructionWorker, Volume

#: A worker that has not been heard of for this long (killed without a goodbye) no longer counts.
WORKER_SEEN_HOURS = 24


def worker_processes() -> int:
    """How many worker processes can take slabs now (0 when no worker said it is up)."""
    since = timezone.now() - timezone.timedelta(hours=WORKER_SEEN_HOURS)
    total = ReconstructionWorker.objects.filter(seen_at__gte=since).aggregate(n=Sum("processes"))["n"]
    return int(total or 0)


def _dataset_q(user, prefix: str = "") -> Q | None:
    if getattr(user, "is_superuser", False):
        return None
    return Q(**{f"{prefix}lab__in": permissions.lab_ids(user)}) | Q(
        **{f"{prefix}session__beamline__facility__in": access.staff_facility_ids(user)}
    )


def dataset_list(*, user) -> QuerySet[Dataset]:
    q = _dataset_q(user)
    qs = Dataset.objects.select_related(
        "grid", "session__beamline__facility", "lab", "created_by", "decided_by", "target"
    )
    # Meta.ordering is dropped from a GROUP BY query: order explicitly, so pages are stable.
    qs = qs.annotate(job_count=Count("jobs", distinct=True)).order_by("-created_at", "-id")
    return qs if q is None else qs.filter(q)


def job_list(*, user) -> QuerySet[ReconstructionJob]:
    q = _dataset_q(user, "dataset__")
    qs = ReconstructionJob.objects.select_related("dataset__grid", "dataset__session__beamline", "created_by", "volume")
    return qs if q is None else qs.filter(q)


def volume_list(*, user) -> QuerySet[Volume]:
    q = _dataset_q(user, "job__dataset__")
    qs = Volume.objects.select_related("job__dataset__grid", "job__dataset__session__beamline", "job__created_by")
    return qs if q is None else qs.filter(q)


def sheet_entries_for_datasets(*, user) -> QuerySet[SampleSheetEntry]:
    """The (session, grid) pairs a person may add a dataset to: grids shipped to, or imaged at, a session."""
    sessions = access.scope_sessions(BeamtimeSession.objects.all(), user)
    return (
        SampleSheetEntry.objects.filter(session__in=sessions, grid__state__in=(GridState.SHIPPED, GridState.IMAGED))
        .select_related("grid", "session__beamline__facility")
        .order_by("-session__start", "position")
    )


def targets_for_datasets(*, user) -> QuerySet[Target]:
    """Light-microscopy targets of the person's labs, the ones a dataset may be linked to."""
    return Target.objects.filter(image__lm_check__lab__in=permissions.lab_ids(user))


def grid_datasets(*, user, grid_id: int) -> QuerySet[Dataset]:
    return dataset_list(user=user).filter(grid_id=grid_id)
