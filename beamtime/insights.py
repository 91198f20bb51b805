"""What beamtime adds to the QC dashboard: the funnel's steps at the beamline, the time from seeding to
beamtime, and how sessions were used. Registered in BeamtimeConfig.ready()."""

from __future__ import annotations

from django.db.models import Count, F, FloatField, Func, Q
from django.db.models.functions import Floor, TruncMonth

from beamtime.models import BeamtimeSession, SampleSheetEntry, SessionStatus
from grids import insights
from grids.insights import Chart, DashboardQuery, Panel, Table, bar_config
from grids.lifecycle import GridState


class DaysBetween(Func):
    """Days from `start` to `end` as a number, computed natively (julianday on SQLite, epoch on PostgreSQL):
    Django's duration arithmetic calls back into Python for every row on SQLite."""

    output_field = FloatField()
    arity = 2
    template = "(julianday(%(expressions)s))"

    def as_sqlite(self, compiler, connection, **extra):
        end, start = (compiler.compile(e) for e in self.source_expressions)
        return f"(julianday({end[0]}) - julianday({start[0]}))", [*end[1], *start[1]]

    def as_postgresql(self, compiler, connection, **extra):
        end, start = (compiler.compile(e) for e in self.source_expressions)
        return f"(EXTRACT(EPOCH FROM ({end[0]} - {start[0]})) / 86400.0)", [*end[1], *start[1]]


_DAY_BINS = (
    (0, 3, "under 3 days"),
    (3, 7, "3–7 days"),
    (7, 14, "1–2 weeks"),
    (14, 28, "2–4 weeks"),
    (28, None, "over 4 weeks"),
)
USED = (SessionStatus.RUNNING, SessionStatus.FINISHED)
IMAGED = (GridState.IMAGED, GridState.ARCHIVED)


def seeding_to_beamtime(query: DashboardQuery) -> list[Chart]:
    """Days from seeding a grid to the start of the session whose sample sheet it is on: one query grouped by
    whole days."""
    entries = (
        SampleSheetEntry.objects.filter(query.q("summary__"), summary__seeded_at__isnull=False)
        .exclude(session__status=SessionStatus.CANCELLED)
        .annotate(wait=DaysBetween(F("session__start"), F("summary__seeded_at")))
        .order_by()
    )
    # Grouped by whole days (the day difference computed once a row), then binned here: the bins' limits
    # are whole days, so a wait falls in [low, high) exactly when its whole days do.
    by_day = entries.values(days=Floor("wait")).annotate(n=Count("pk")).values_list("days", "n")
    found: dict[int, int] = {}
    for days, n in by_day:
        for i, (low, high, _) in enumerate(_DAY_BINS):
            if days >= low and (high is None or days < high):
                found[i] = found.get(i, 0) + n
    counts = {f"b{i}": found.get(i, 0) for i in range(len(_DAY_BINS))}
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


def used_sessions(query: DashboardQuery):
    """The running or finished sessions in the date range (of the chosen lab)."""
    sessions = BeamtimeSession.objects.filter(query.window("start"), lab_id__in=query.lab_ids, status__in=USED)
    if lab := query.lookups.get("lab_id"):
        sessions = sessions.filter(lab_id=lab)
    return sessions.order_by()


def per_session(rows, sessions, **counts: Q) -> list[tuple]:
    """(month, shifts, *counts) for each session of `sessions`, the `rows` (reaching a session by
    ``session``) counted per session: two queries, the sessions (few) and the rows grouped by session."""
    grouped = (
        rows.filter(session__in=sessions.values("pk"))
        .order_by()
        .values("session_id")
        .annotate(**{name: Count("pk", filter=q) for name, q in counts.items()})
    )
    found = {row.pop("session_id"): row for row in grouped}
    return [
        (month, shifts, *(found.get(pk, {}).get(name, 0) for name in counts))
        for pk, month, shifts in sessions.annotate(month=TruncMonth("start")).values_list("pk", "month", "shifts")
    ]


def beamtime_use(query: DashboardQuery) -> list[Chart]:
    """Per month of running or finished sessions: shifts, grids on the sheets, grids imaged, per shift.
    Two queries: the sessions (few), and their sheets' filtered entries counted per session."""
    per_session_rows = per_session(
        SampleSheetEntry.objects.filter(query.q("summary__")),
        used_sessions(query),
        n_grids=Q(),
        n_imaged=Q(summary__state__in=IMAGED),
    )
    shifts: dict = {}
    grids: dict = {}
    for month, n_shifts, n_grids, n_imaged in per_session_rows:
        shifts[month] = shifts.get(month, 0) + n_shifts
        g = grids.setdefault(month, {"grids": 0, "imaged": 0})
        g["grids"] += n_grids
        g["imaged"] += n_imaged
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
            note="Running and finished sessions, by the month they started. Datasets accepted per shift are in the "
            "Reconstruction panel.",
        )
    ]


def register() -> None:
    from beamtime.models import SessionTransition, ShipmentTransition

    for model in (BeamtimeSession, SampleSheetEntry, SessionTransition, ShipmentTransition):
        insights.version_source_register(f"beamtime.{model.__name__}", insights.newest_pk(model))
    for key, label, order, state, bit in (
        ("scheduled", "Booked into a session", 50, GridState.SCHEDULED, 4),
        ("shipped", "Shipped", 60, GridState.SHIPPED, 5),
        ("imaged", "Imaged", 70, GridState.IMAGED, 6),
    ):
        insights.funnel_stage_register(
            insights.FunnelStage(key, label, order, insights.reached_state(state), state, bit=bit)
        )
    insights.panel_register(
        Panel(
            "seeding-to-beamtime",
            "From seeding to beamtime",
            60,
            seeding_to_beamtime,
            "How long grids wait between seeding and the beam.",
        )
    )
    insights.panel_register(
        Panel(
            "beamtime-use",
            "Beamtime use",
            70,
            beamtime_use,
            "How full the sessions were, and how much of it was imaged.",
        )
    )


# What a person does to give a gate metric a value, for the rules a grid does not yet meet.
_HOW = {
    "squares_found": "upload an atlas image (whole grid, low magnification) to its post-vitrification check",
    "intact_fraction": "upload an atlas image to its post-vitrification check",
    "contamination_spots": "upload an atlas image to its post-vitrification check",
    "target_count": "place targets on an image of its post-vitrification check",
    "qc_accepted": "have a QC reviewer accept it",
    "post_vitrification_check": "record a post-vitrification check",
    "pre_vitrification_check": "record a pre-vitrification check",
}


def _accepted(grid, user):
    from django.urls import reverse
    from django.utils import timezone

    from beamtime import quality
    from grids.next_steps import NextStep

    coming = list(
        BeamtimeSession.objects.filter(
            lab_id=grid.lab_id,
            status__in=(SessionStatus.PLANNED, SessionStatus.CONFIRMED),
            start__gt=timezone.now(),
        )
        .select_related("beamline__facility")
        .order_by("start")[:5]
    )
    if not coming:
        return NextStep(
            "Book it into a beamtime session: no session of your lab is coming up yet, so plan one first.",
            reverse("beamtime:session-create"),
            "Plan a session",
        )
    rules, seen = [], set()
    facts = quality.grid_quality_facts(grid)
    for session in coming:
        if session.beamline_id in seen:
            continue
        seen.add(session.beamline_id)
        evaluation = quality.evaluate(grid=grid, beamline=session.beamline, facts=facts)
        for rule in evaluation.failing:
            how = _HOW.get(rule.metric, "")
            rules.append(f"{session.beamline} asks {rule.message}" + (f": {how} first." if how else "."))
        if evaluation.passed:
            rules.append(f"It passes the gate of {session.beamline}.")
    first = coming[0]
    return NextStep(
        f"Book it into a beamtime session: the next is {first.beamline} on {first.start:%d %b %Y}.",
        reverse("beamtime:session-detail", args=[first.pk]),
        "Open that session's sample sheet",
        rules=rules,
    )


def _scheduled(grid, user):
    from django.urls import reverse

    from grids.next_steps import NextStep

    entry = (
        SampleSheetEntry.objects.filter(grid=grid)
        .exclude(session__status__in=(SessionStatus.CANCELLED, SessionStatus.FINISHED))
        .select_related("session__beamline")
        .order_by("session__start")
        .first()
    )
    if entry is None:
        return None
    return NextStep(
        f"Ship it to {entry.session.beamline} for the session of {entry.session.start:%d %b %Y}: pack it into a "
        "shipment (dewar) with the other grids of the sheet.",
        reverse("beamtime:session-detail", args=[entry.session_id]) + "#pack",
        "Pack a shipment",
    )


def _shipped(grid, user):
    from django.urls import reverse

    from grids.next_steps import NextStep

    item = grid.shipment_items.select_related("shipment").order_by("-shipment__created_at").first()
    return NextStep(
        "On its way to the beamline: facility staff mark the shipment received; once measured, the grid is imaged.",
        reverse("beamtime:shipment-detail", args=[item.shipment_id]) if item else "",
        "Open the shipment" if item else "",
    )


def register_next_steps() -> None:
    from grids.next_steps import next_step_register

    next_step_register(GridState.ACCEPTED, _accepted)
    next_step_register(GridState.SCHEDULED, _scheduled)
    next_step_register(GridState.SHIPPED, _shipped)
