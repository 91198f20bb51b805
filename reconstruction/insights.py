"""What reconstruction adds to the QC dashboard (registered in ReconstructionConfig.ready(); grids knows
nothing of it): the funnel's last steps — a dataset accepted, a volume — and the reconstruction panel
(the job queue, and datasets accepted per shift). Each chart is one aggregate query, whatever the number of
grids or jobs."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Count, Min, Q

from beamtime.insights import per_session, used_sessions
from grids import insights
from grids.insights import Chart, DashboardQuery, Panel, Table, bar_config
from reconstruction.models import (
    Dataset,
    DatasetStatus,
    DatasetTransition,
    JobState,
    JobTransition,
    ReconstructionJob,
    Volume,
)

RECENT_DAYS = 7


def job_queue(query: DashboardQuery) -> list[Chart]:
    """Jobs waiting and running now, and those that ended in the last week: one aggregate query."""
    since = query.now - timedelta(days=RECENT_DAYS)
    recent = Q(finished_at__gte=since)
    jobs = ReconstructionJob.objects.filter(query.q("dataset__summary__")).order_by()
    counts = jobs.aggregate(
        queued=Count("pk", filter=Q(state=JobState.QUEUED)),
        running=Count("pk", filter=Q(state=JobState.RUNNING)),
        failed=Count("pk", filter=Q(state=JobState.FAILED) & recent),
        cancelled=Count("pk", filter=Q(state=JobState.CANCELLED) & recent),
        succeeded=Count("pk", filter=Q(state=JobState.SUCCEEDED) & recent),
        oldest=Min("created_at", filter=Q(state=JobState.QUEUED)),
    )
    rows = [
        ("Queued", counts["queued"]),
        ("Running", counts["running"]),
        (f"Failed in the last {RECENT_DAYS} days", counts["failed"]),
        (f"Cancelled in the last {RECENT_DAYS} days", counts["cancelled"]),
        (f"Succeeded in the last {RECENT_DAYS} days", counts["succeeded"]),
    ]
    waited = ""
    if counts["oldest"] is not None:
        hours = (query.now - counts["oldest"]).total_seconds() / 3600
        waited = f"; the oldest queued job has waited {hours:.0f} h" if hours >= 1 else "; the oldest queued job is new"
    return [
        Chart(
            key="job-queue",
            title="Reconstruction queue",
            table=Table(("Jobs", "Number"), rows if any(n for _, n in rows) else []),
            config=bar_config([f"{label}: {n}" for label, n in rows], [n for _, n in rows], label="Jobs", unit="Jobs"),
            summary=f"{counts['queued']} queued, {counts['running']} running, {counts['failed']} failed "
            f"in the last {RECENT_DAYS} days{waited}",
            note="A failed job keeps its reason on its page; the dataset's page starts it again.",
        )
    ]


def datasets_per_shift(query: DashboardQuery) -> list[Chart]:
    """Per month of running or finished sessions: datasets recorded and accepted, and accepted per shift.
    Two queries: the sessions, and their filtered datasets counted per session."""
    per_session_rows = per_session(
        Dataset.objects.filter(query.q("summary__")),
        used_sessions(query),
        n_recorded=Q(),
        n_accepted=Q(status=DatasetStatus.ACCEPTED),
    )
    months: dict = {}
    for month, shifts, recorded, accepted in per_session_rows:
        m = months.setdefault(month, [0, 0, 0])
        m[0] += shifts
        m[1] += recorded
        m[2] += accepted
    rows = [
        (f"{month:%Y-%m}", shifts, recorded, accepted, round(accepted / shifts, 2) if shifts else 0)
        for month, (shifts, recorded, accepted) in sorted(months.items())
    ]
    return [
        Chart(
            key="datasets-per-shift",
            title="Datasets accepted per shift",
            table=Table(("Month", "Shifts", "Datasets recorded", "Datasets accepted", "Accepted per shift"), rows),
            config=bar_config(
                [f"{r[0]}: {r[4]:g} per shift" for r in rows],
                [r[4] for r in rows],
                label="Datasets accepted per shift",
                unit="Datasets accepted per shift",
            ),
            summary=f"{sum(r[3] for r in rows)} datasets accepted in {sum(r[1] for r in rows)} shifts",
            note="Running and finished sessions, by the month they started.",
        )
    ]


def reconstruction_panel(query: DashboardQuery) -> list[Chart]:
    return job_queue(query) + datasets_per_shift(query)


def register() -> None:
    for model in (Dataset, DatasetTransition, ReconstructionJob, JobTransition, Volume):
        insights.version_source_register(f"reconstruction.{model.__name__}", insights.newest_pk(model))
    insights.funnel_stage_register(
        insights.FunnelStage(
            "dataset-accepted",
            "A dataset accepted",
            80,
            insights.StageRows(Dataset, "grid", "status", DatasetStatus.ACCEPTED),
            bit=7,
        )
    )
    insights.funnel_stage_register(
        insights.FunnelStage(
            "reconstructed", "Reconstructed (a volume)", 90, insights.StageRows(Volume, "job__dataset__grid"), bit=8
        )
    )
    insights.panel_register(
        Panel(
            "reconstruction",
            "Reconstruction",
            80,
            reconstruction_panel,
            "What waits for the workers, what failed lately, and how many datasets each shift gave.",
        )
    )
