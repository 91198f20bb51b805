"""What characterization adds to the QC dashboard (registered in CharacterizationConfig.ready()).

Pass rates by grid type, cell line, method and instrument; blot time and humidity against ice quality;
light-microscopy metrics against QC decisions; the review queue's age. Each panel is one or two
aggregate queries, whatever the number of grids.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import (
    Avg,
    Case,
    Count,
    F,
    FloatField,
    Func,
    IntegerField,
    Max,
    Q,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast

from characterization.models import (
    Check,
    CheckImage,
    CheckStage,
    Decision,
    IceQualityClass,
    MetricsStatus,
    QCDecision,
)
from characterization.selectors import REVIEWABLE_STATES
from grids import insights
from grids.insights import Chart, DashboardQuery, Panel, Table, bar_config, percent


class RoundFloat(Func):
    """ROUND of a float as a float: Django's Round casts to numeric on PostgreSQL, which cost more than the
    rest of the ice query."""

    function = "ROUND"
    arity = 1
    output_field = FloatField()


_METHOD_NAMES = {"plunger": "Plunge freezing", "hpf": "High-pressure freezing"}
ICE_AXIS = "Ice quality class (1 vitreous, thin … 4 crystalline; lower is better)"


def pass_rates(query: DashboardQuery) -> list[Chart]:
    """One query over the summaries of decided grids, grouped by the ids of (grid type, cell line, method,
    instrument) — the decision in force is the summary's —, and three small look-ups of those names; the few
    groups are then summed per dimension."""
    from grids.models import CellLine, GridType
    from vitrification.models import Instrument

    by_ids = (
        query.summary.exclude(decision="")
        .values("grid_type_id", "cell_line_id", "method", "instrument_id")
        .annotate(decided=Count("pk"), passed=Count("pk", filter=Q(decision=Decision.ACCEPTED)))
    )
    labs = query.lab_ids
    grid_type = dict(GridType.objects.values_list("pk", "name"))
    line_name = dict(CellLine.objects.filter(lab_id__in=labs).values_list("pk", "name"))
    instrument_name = dict(Instrument.objects.filter(lab_id__in=labs).values_list("pk", "name"))
    groups = [
        {
            "grid_type": grid_type.get(g["grid_type_id"], "—"),
            "cell_line": line_name.get(g["cell_line_id"], "—"),
            "method": _METHOD_NAMES.get(g["method"], "Not vitrified"),
            "instrument": instrument_name.get(g["instrument_id"], "—"),
            "decided": g["decided"],
            "passed": g["passed"],
        }
        for g in by_ids
    ]
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


def _bubbles(rows, *, x_title: str) -> dict:
    """Counts at (x, ice class) as bubbles whose area grows with the count; the table has the numbers."""
    biggest = max((n for _, _, n in rows), default=1)
    points = [{"x": x, "y": y, "r": 4 + 16 * (n / biggest) ** 0.5, "n": n} for x, y, n in rows]
    return {
        "type": "bubble",
        "data": {
            "datasets": [{"label": "Grids (bubble area = number of grids)", "data": points, "pointStyle": "rectRot"}]
        },
        "options": {
            "scales": {
                "x": {"title": {"display": True, "text": x_title}},
                "y": {"min": 0.5, "max": 4.5, "ticks": {"stepSize": 1}, "title": {"display": True, "text": ICE_AXIS}},
            }
        },
    }


def ice_scatter(query: DashboardQuery) -> list[Chart]:
    """Plunge-frozen grids counted at each (blot time, ice class) and (humidity to the nearest per cent, ice
    class), the ice class being that of the grid's newest post-vitrification check (a grid checked twice
    counts once, as it is now): one grouped query over the summaries for both charts."""
    groups = list(
        query.summary.filter(method="plunger", ice_quality_class__isnull=False)
        .values("ice_quality_class", blot=F("blot_time_s"), humidity=RoundFloat(F("humidity_percent")))
        .annotate(n=Count("pk"))
    )
    charts = []
    for key, title, axis, unit in (
        ("blot-ice", "Blot time against ice quality", "blot", "Blot time (s)"),
        ("humidity-ice", "Humidity against ice quality", "humidity", "Humidity (%)"),
    ):
        # The few (blot time, humidity, ice class) groups summed over the other axis.
        summed: dict[tuple, int] = {}
        for g in groups:
            if g[axis] is not None:
                at = (round(g[axis], 2), g["ice_quality_class"])
                summed[at] = summed.get(at, 0) + g["n"]
        rows = [(x, y, n) for (x, y), n in sorted(summed.items())]
        table_rows = [(x, f"{y} · {IceQualityClass(y).label.split(' · ', 1)[1]}", n) for x, y, n in rows]
        good = sum(n for _, y, n in rows if y == IceQualityClass.VITREOUS_THIN)
        total = sum(n for *_, n in rows)
        charts.append(
            Chart(
                key=key,
                title=title,
                table=Table((unit, "Ice quality class", "Grids"), table_rows),
                config=_bubbles(rows, x_title=unit),
                summary=f"{good} of {total} grids vitreous and thin" if total else "",
                note="Each grid counts once, with the ice class of its newest post-vitrification check.",
            )
        )
    return charts


# Metrics that are fractions (0–1) share one axis; the others are in the table only.
_FRACTIONS = (
    ("intact_fraction", "Intact squares (atlas)"),
    ("coverage_fraction", "Cell coverage"),
    ("saturated_fraction", "Saturated pixels"),
)
_COUNTS = (
    ("squares_found", "Squares found (atlas)"),
    ("contamination_spots", "Contamination spots (atlas)"),
    ("focus", "Focus (variance of the Laplacian)"),
)


def metrics_vs_decisions(query: DashboardQuery) -> list[Chart]:
    """Mean of each light-microscopy metric over analysed images, for accepted and rejected grids: one
    grouped query."""
    images = (
        CheckImage.objects.filter(query.q("lm_check__summary__"), metrics_status=MetricsStatus.DONE)
        .exclude(lm_check__summary__decision="")
        .order_by()
        .values(last=F("lm_check__summary__decision"))
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


def _fmt(value) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.0f}"


_AGE_BINS = (
    (0, 1, "under a day"),
    (1, 3, "1–3 days"),
    (3, 7, "3–7 days"),
    (7, 14, "1–2 weeks"),
    (14, None, "over 2 weeks"),
)


def review_queue_age(query: DashboardQuery) -> list[Chart]:
    """How long the grids waiting for a decision have waited since their newest post-vitrification check:
    one query over the summaries, grouped by age bin."""
    waiting = query.summary.filter(state__in=REVIEWABLE_STATES, decision="", post_checked_at__isnull=False)
    now = query.now
    age_bin = Case(
        *[
            When(
                Q(post_checked_at__lte=now - timedelta(days=low))
                & (Q(post_checked_at__gt=now - timedelta(days=high)) if high else Q()),
                then=Value(i),
            )
            for i, (low, high, _) in enumerate(_AGE_BINS)
        ],
        default=Value(-1),
        output_field=IntegerField(),
    )
    found = dict(waiting.values(age=age_bin).annotate(n=Count("pk")).values_list("age", "n"))
    counts = {f"b{i}": found.get(i, 0) for i in range(len(_AGE_BINS))}
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


def register() -> None:
    from characterization.models import GridSummary
    from characterization.summaries import grid_summaries_refresh

    insights.summary_register(GridSummary, related_name="qc_summary")
    insights.grid_facts_listener_register(grid_summaries_refresh)
    # New rows, and edits (a check's history row), and finished metrics change the figures.
    for model in (Check, Check.history.model, QCDecision, CheckImage):
        insights.version_source_register(f"characterization.{model.__name__}", insights.newest_pk(model))
    insights.version_source_register(
        "characterization.metrics", lambda: CheckImage.objects.aggregate(m=Max("metrics_finished_at"))["m"]
    )
    insights.funnel_stage_register(
        insights.FunnelStage(
            "checked",
            "Checked after vitrification",
            35,
            insights.StageRows(Check, "grid", "stage", CheckStage.POST_VITRIFICATION),
            bit=2,
        )
    )
    insights.funnel_stage_register(
        insights.FunnelStage("accepted", "Accepted by QC", 40, insights.reached_state("accepted"), "accepted", bit=3)
    )
    insights.panel_register(
        Panel("pass-rates", "Pass rates", 20, pass_rates, "Of the grids a reviewer decided on, how many were accepted.")
    )
    insights.panel_register(
        Panel(
            "vitrification-vs-ice",
            "Vitrification against ice",
            30,
            ice_scatter,
            "Plunge-frozen grids: blot time and chamber humidity against the ice class of their post-vitrification checks.",
        )
    )
    insights.panel_register(
        Panel(
            "lm-metrics",
            "Light microscopy and decisions",
            40,
            metrics_vs_decisions,
            "Do the automatic metrics tell accepted grids from rejected ones?",
        )
    )
    insights.panel_register(
        Panel(
            "review-queue",
            "Review queue",
            50,
            review_queue_age,
            "Grids checked after vitrification that wait for a decision.",
        )
    )


def _vitrified(grid, user):
    from django.urls import reverse

    from grids.next_steps import NextStep

    post = Check.objects.filter(grid=grid, stage=CheckStage.POST_VITRIFICATION).order_by("-checked_at", "-id").first()
    new_check = f"{reverse('characterization:check-create', args=[grid.pk])}?stage=post_vitrification"
    if post is None:
        return NextStep(
            "Look at it under the light microscope: record a post-vitrification check with the ice class, an atlas "
            "image of the whole grid and the cells to image (targets).",
            new_check,
            "Record the post-vitrification check",
        )
    from lims import permissions
    from lims.models import Role

    reviewer = user is not None and permissions.has_role(user, grid.lab_id, [Role.QC_REVIEWER, Role.LAB_ADMIN])
    return NextStep(
        "Decide: accept it for the beamline or reject it, on its post-vitrification check."
        if reviewer
        else "Wait for a QC reviewer to accept or reject it (its post-vitrification check is recorded). "
        "Add images or targets meanwhile if the check lacks them.",
        reverse("characterization:check-detail", args=[post.pk]),
        "Review the check" if reviewer else "Open the check",
    )


def _rejected(grid, user):
    from grids.next_steps import NextStep

    return NextStep(
        "Rejected by QC: discard it below, or ask a reviewer to revise the decision on a new check. A reviewer can "
        "still put it on a sample sheet with a written override."
    )


def register_next_steps() -> None:
    from grids.next_steps import next_step_register

    next_step_register("vitrified", _vitrified)
    next_step_register("rejected", _rejected)
