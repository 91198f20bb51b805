"""The QC dashboard's panels as they were before the aggregation was reworked (issue 11), kept as the
bench's peer so that "before" and "after" are measured in one run, on the same data and under the same load.

Not used by the product. The funnel asked one correlated EXISTS per step and grid; pass rates and the
light-microscopy panel took each grid's newest decision by a subquery per grid; the ice panel read the
checks once per chart; the bins were separate filtered counts; beamtime use truncated every sheet entry's
date to its month (a Python function per row on SQLite). Their filters now reach the grids through the
summaries, as the new panels' do (the filters are defined once, on the summary).
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Avg, Case, CharField, Count, Exists, F, FloatField, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Round, TruncMonth

from beamtime.insights import _DAY_BINS, IMAGED, USED, DaysBetween
from beamtime.models import BeamtimeSession, SampleSheetEntry, SessionStatus
from characterization.insights import _AGE_BINS, _COUNTS, _FRACTIONS, _bubbles, _fmt
from characterization.models import Check, CheckImage, CheckStage, Decision, IceQualityClass, MetricsStatus, QCDecision
from characterization.selectors import REVIEWABLE_STATES
from grids.insights import Chart, DashboardQuery, Table, bar_config, funnel_stages, percent
from grids.lifecycle import GridState

VITRIFIED_BY = "vitrification_outcome__"


def _reached(rows):
    """The old form of a funnel step: a correlated EXISTS on the grid."""
    where = {rows.grid: OuterRef("pk")}
    if rows.field:
        where[rows.field] = rows.value
    return Exists(rows.model.objects.filter(**where))


def funnel_panel(query: DashboardQuery) -> list[Chart]:
    """Counts of grids that reached each step, and where the others stopped: two queries in all."""
    stages = funnel_stages()
    counts = query.grids.aggregate(
        **{s.key: Count("pk", filter=_reached(s.rows)) if s.rows else Count("pk") for s in stages}
    )
    now_at = dict(query.grids.order_by().values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    first = counts[stages[0].key] if stages else 0
    rows = []
    for i, stage in enumerate(stages):
        reached = counts[stage.key]
        nxt = counts[stages[i + 1].key] if i + 1 < len(stages) else None
        waiting = now_at.get(stage.state, 0) if stage.state else None
        dropped = max(reached - nxt, 0) if nxt is not None else None
        rows.append(
            (
                stage.label,
                reached,
                percent(reached, first),
                "" if waiting is None else waiting,
                "" if dropped is None else dropped,
            )
        )
    discarded = now_at.get(GridState.DISCARDED, 0)
    rejected = now_at.get(GridState.REJECTED, 0)
    table = Table(
        ("Step", "Grids that got this far", "Share of registered", "Still at this step", "Did not reach the next"), rows
    )
    labels = [f"{r[0]}: {r[1]} ({r[2]})" for r in rows]
    return [
        Chart(
            key="funnel",
            title="From registered onwards",
            table=table,
            config=bar_config(labels, [r[1] for r in rows], label="Grids", horizontal=True, unit="Grids"),
            summary=(
                f"{first} grids registered; {discarded} discarded and {rejected} rejected so far."
                if stages
                else "No steps registered."
            ),
            note="“Did not reach the next” counts grids still waiting as well as those discarded or rejected.",
        )
    ]


def _latest_decision(grid_ref: str = "pk"):
    """The decision in force on a grid (its newest), as a subquery."""
    return Subquery(
        QCDecision.objects.filter(grid=OuterRef(grid_ref)).order_by("-decided_at", "-id").values("decision")[:1]
    )


def pass_rates(query: DashboardQuery) -> list[Chart]:
    """One query grouped by (grid type, cell line, method, instrument); the few groups are then summed
    per dimension."""
    method = Case(
        When(**{f"{VITRIFIED_BY}plunge_run__isnull": False}, then=Value("Plunge freezing")),
        When(**{f"{VITRIFIED_BY}hpf_run__isnull": False}, then=Value("High-pressure freezing")),
        default=Value("Not vitrified"),
        output_field=CharField(),
    )
    instrument = Coalesce(
        F(f"{VITRIFIED_BY}plunge_run__instrument__name"), F(f"{VITRIFIED_BY}hpf_run__instrument__name"), Value("—")
    )
    groups = list(
        query.grids.annotate(last=_latest_decision())
        .filter(last__isnull=False)
        .values(
            grid_type=F("lot__grid_type__name"),
            cell_line=Coalesce(F("seeded__seeding__cell_line__name"), Value("—")),
            method=method,
            instrument=instrument,
        )
        .order_by()
        .annotate(decided=Count("pk"), passed=Count("pk", filter=Q(last=Decision.ACCEPTED)))
    )
    charts = []
    for key, title in (
        ("grid_type", "Grid type"),
        ("cell_line", "Cell line"),
        ("method", "Method"),
        ("instrument", "Instrument"),
    ):
        totals: dict[str, list[int]] = {}
        for g in groups:
            t = totals.setdefault(g[key], [0, 0])
            t[0] += g["decided"]
            t[1] += g["passed"]
        rows = [(name, d, p, d - p, percent(p, d)) for name, (d, p) in sorted(totals.items())]
        labels = [f"{r[0]}: {r[4]} of {r[1]}" for r in rows]
        values = [round(100 * r[2] / r[1], 1) if r[1] else 0 for r in rows]
        best = max(rows, key=lambda r: (r[2] / r[1]) if r[1] else 0, default=None)
        charts.append(
            Chart(
                key=f"pass-{key.replace('_', '-')}",
                title=f"Pass rate by {title.lower()}",
                table=Table((title, "Grids decided", "Accepted", "Rejected", "Pass rate"), rows),
                config=bar_config(labels, values, label="Accepted (%)", horizontal=True, unit="Accepted (%)"),
                summary=f"highest: {best[0]} ({best[4]} of {best[1]})" if best else "",
            )
        )
    return charts


def ice_scatter(query: DashboardQuery) -> list[Chart]:
    """Post-vitrification checks of plunge-frozen grids, counted at each (blot time, ice class) and
    (humidity to the nearest per cent, ice class): two grouped queries."""
    checks = Check.objects.filter(
        query.q("grid__qc_summary__"),
        stage=CheckStage.POST_VITRIFICATION,
        ice_quality_class__isnull=False,
    ).order_by()
    run = f"grid__{VITRIFIED_BY}plunge_run__"
    charts = []
    for key, title, expr, unit in (
        ("blot-ice", "Blot time against ice quality", F(f"{run}blot_time_s"), "Blot time (s)"),
        ("humidity-ice", "Humidity against ice quality", Round(F(f"{run}humidity_percent")), "Humidity (%)"),
    ):
        data = (
            checks.exclude(**{f"{run}id__isnull": True})
            .annotate(xv=expr)
            .exclude(xv__isnull=True)
            .values("xv", "ice_quality_class")
            .annotate(n=Count("pk"))
            .order_by("xv", "ice_quality_class")
        )
        rows = [(round(d["xv"], 2), d["ice_quality_class"], d["n"]) for d in data]
        table_rows = [(x, f"{y} · {IceQualityClass(y).label.split(' · ', 1)[1]}", n) for x, y, n in rows]
        good = sum(n for _, y, n in rows if y == IceQualityClass.VITREOUS_THIN)
        total = sum(n for *_, n in rows)
        charts.append(
            Chart(
                key=key,
                title=title,
                table=Table((unit, "Ice quality class", "Checks"), table_rows),
                config=_bubbles(rows, x_title=unit),
                summary=f"{good} of {total} checks vitreous and thin" if total else "",
            )
        )
    return charts


def metrics_vs_decisions(query: DashboardQuery) -> list[Chart]:
    """Mean of each light-microscopy metric over analysed images, for accepted and rejected grids: one
    grouped query."""
    images = (
        CheckImage.objects.filter(query.q("lm_check__grid__qc_summary__"), metrics_status=MetricsStatus.DONE)
        .annotate(last=_latest_decision("lm_check__grid"))
        .filter(last__isnull=False)
        .order_by()
        .values("last")
        .annotate(
            images=Count("pk"),
            **{name: Avg(Cast(KeyTextTransform(name, "metrics"), FloatField())) for name, _ in _FRACTIONS + _COUNTS},
        )
    )
    by_decision = {row["last"]: row for row in images}
    rows = []
    for name, label in _FRACTIONS + _COUNTS:
        acc = by_decision.get(Decision.ACCEPTED, {}).get(name)
        rej = by_decision.get(Decision.REJECTED, {}).get(name)
        rows.append((label, _fmt(acc), _fmt(rej)))
    labels, values = [], []
    for name, label in _FRACTIONS:
        for decision, word in ((Decision.ACCEPTED, "accepted"), (Decision.REJECTED, "rejected")):
            value = by_decision.get(decision, {}).get(name)
            labels.append(f"{label}, {word}: {_fmt(value)}")
            values.append(round(value, 3) if value is not None else None)
    n_acc = by_decision.get(Decision.ACCEPTED, {}).get("images", 0)
    n_rej = by_decision.get(Decision.REJECTED, {}).get("images", 0)
    config = bar_config(labels, values, label="Mean (0–1)", horizontal=True, unit="Mean fraction (0–1)")
    return [
        Chart(
            key="lm-metrics",
            title="Light-microscopy metrics by QC decision",
            table=Table(("Metric", "Mean on accepted grids", "Mean on rejected grids"), rows if by_decision else []),
            config=config,
            summary=f"{n_acc} images of accepted grids, {n_rej} of rejected ones",
        )
    ]


def review_queue_age(query: DashboardQuery) -> list[Chart]:
    """How long the checks waiting for a decision have waited: one aggregate query."""
    waiting = (
        Check.objects.filter(
            query.q("grid__qc_summary__"), stage=CheckStage.POST_VITRIFICATION, grid__state__in=REVIEWABLE_STATES
        )
        .exclude(grid__qc_decisions__isnull=False)
        .order_by()
    )
    now = query.now
    counts = waiting.aggregate(
        **{
            f"b{i}": Count(
                "grid",
                distinct=True,
                filter=Q(checked_at__lte=now - timedelta(days=low))
                & (Q(checked_at__gt=now - timedelta(days=high)) if high else Q()),
            )
            for i, (low, high, _) in enumerate(_AGE_BINS)
        }
    )
    rows = [(label, counts[f"b{i}"]) for i, (_, _, label) in enumerate(_AGE_BINS)]
    total = sum(n for _, n in rows)
    old = sum(n for (low, _, _), (_, n) in zip(_AGE_BINS, rows, strict=True) if low >= 7)
    return [
        Chart(
            key="queue-age",
            title="Review queue by age",
            table=Table(("Waiting for", "Grids"), rows if total else []),
            config=bar_config(
                [f"{label}: {n}" for label, n in rows], [n for _, n in rows], label="Grids", unit="Grids"
            ),
            summary=f"{total} grids wait for a decision, {old} of them for a week or more",
        )
    ]


def seeding_to_beamtime(query: DashboardQuery) -> list[Chart]:
    """Days from seeding a grid to the start of the session whose sample sheet it is on: one aggregate."""
    entries = (
        SampleSheetEntry.objects.filter(query.q("grid__qc_summary__"), grid__seeded__isnull=False)
        .exclude(session__status=SessionStatus.CANCELLED)
        .annotate(wait=DaysBetween(F("session__start"), F("grid__seeded__seeding__seeded_at")))
        .order_by()
    )
    counts = entries.aggregate(
        **{
            f"b{i}": Count(
                "pk",
                filter=Q(wait__gte=low) & (Q(wait__lt=high) if high else Q()),
            )
            for i, (low, high, _) in enumerate(_DAY_BINS)
        }
    )
    rows = [(label, counts[f"b{i}"]) for i, (_, _, label) in enumerate(_DAY_BINS)]
    total = sum(n for _, n in rows)
    return [
        Chart(
            key="seeding-to-beamtime",
            title="Time from seeding to beamtime",
            table=Table(("Seeded before the session", "Grids"), rows if total else []),
            config=bar_config(
                [f"{label}: {n}" for label, n in rows], [n for _, n in rows], label="Grids", unit="Grids"
            ),
            summary=f"{total} grids on sample sheets",
        )
    ]


def beamtime_use(query: DashboardQuery) -> list[Chart]:
    """Per month of running or finished sessions: shifts, grids on the sheets, grids imaged, per shift.
    Two grouped queries (shifts of the sessions; grids of the sheets, with the grid filters)."""
    sessions = BeamtimeSession.objects.filter(query.window("start"), lab_id__in=query.lab_ids, status__in=USED)
    if lab := query.lookups.get("lab_id"):
        sessions = sessions.filter(lab_id=lab)
    shifts = dict(
        sessions.annotate(month=TruncMonth("start"))
        .order_by()
        .values("month")
        .annotate(n=Sum("shifts"))
        .values_list("month", "n")
    )
    grids = {
        row["month"]: row
        for row in SampleSheetEntry.objects.filter(query.q("grid__qc_summary__"), session__in=sessions)
        .annotate(month=TruncMonth("session__start"))
        .order_by()
        .values("month")
        .annotate(grids=Count("pk"), imaged=Count("pk", filter=Q(grid__state__in=IMAGED)))
    }
    rows = []
    for month in sorted(set(shifts) | set(grids)):
        n_shifts = shifts.get(month) or 0
        g = grids.get(month, {"grids": 0, "imaged": 0})
        per = g["grids"] / n_shifts if n_shifts else 0
        per_imaged = g["imaged"] / n_shifts if n_shifts else 0
        rows.append((f"{month:%Y-%m}", n_shifts, g["grids"], g["imaged"], round(per, 2), round(per_imaged, 2)))
    labels = [f"{r[0]}: {r[4]:g} grids, {r[5]:g} imaged per shift" for r in rows]
    return [
        Chart(
            key="beamtime-use",
            title="Grids per shift",
            table=Table(
                ("Month", "Shifts", "Grids on sheets", "Grids imaged", "Grids per shift", "Imaged per shift"), rows
            ),
            config=bar_config(labels, [r[4] for r in rows], label="Grids per shift", unit="Grids per shift"),
            summary=f"{sum(r[1] for r in rows)} shifts used, {sum(r[3] for r in rows)} grids imaged",
            note="Running and finished sessions, by the month they started. Datasets accepted per shift come with "
            "the reconstruction pages.",
        )
    ]


# Panel key -> the old build function.
BEFORE = {
    "funnel": funnel_panel,
    "pass-rates": pass_rates,
    "vitrification-vs-ice": ice_scatter,
    "lm-metrics": metrics_vs_decisions,
    "review-queue": review_queue_age,
    "seeding-to-beamtime": seeding_to_beamtime,
    "beamtime-use": beamtime_use,
}
