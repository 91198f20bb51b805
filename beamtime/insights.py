"""What beamtime adds to the QC dashboard: the funnel's steps at the beamline, the time from seeding to
beamtime, and how sessions were used. Registered in BeamtimeConfig.ready()."""

from __future__ import annotations

from django.db.models import Case, Count, F, FloatField, Func, IntegerField, OuterRef, Q, Subquery, Value, When
from django.db.models.functions import TruncMonth

from beamtime.models import BeamtimeSession, SampleSheetEntry, SessionStatus
from grids import insights
from grids.insights import Chart, DashboardQuery, Panel, Table, bar_config
from grids.lifecycle import GridState


class _CountOf(Subquery):
    template = "(SELECT COUNT(*) FROM (%(subquery)s) AS counted)"
    output_field = IntegerField()


def count_of(rows):
    """The number of `rows` (a queryset correlated with OuterRef) as a subquery."""
    return _CountOf(rows.order_by().values("pk"))


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
    bin (the number of days is computed once a row)."""
    entries = (
        SampleSheetEntry.objects.filter(query.q("grid__"), grid__seeded__isnull=False)
        .exclude(session__status=SessionStatus.CANCELLED)
        .annotate(wait=DaysBetween(F("session__start"), F("grid__seeded__seeding__seeded_at")))
        .order_by()
    )
    wait_bin = Case(
        *[
            When(Q(wait__gte=low) & (Q(wait__lt=high) if high else Q()), then=Value(i))
            for i, (low, high, _) in enumerate(_DAY_BINS)
        ],
        default=Value(-1),
        output_field=IntegerField(),
    )
    found = dict(entries.values(days=wait_bin).annotate(n=Count("pk")).values_list("days", "n"))
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


def beamtime_use(query: DashboardQuery) -> list[Chart]:
    """Per month of running or finished sessions: shifts, grids on the sheets, grids imaged, per shift.
    One query, a row a session (sessions are few; their sheets' entries are counted by subqueries)."""
    sessions = BeamtimeSession.objects.filter(query.window("start"), lab_id__in=query.lab_ids, status__in=USED)
    if lab := query.lookups.get("lab_id"):
        sessions = sessions.filter(lab_id=lab)
    # One row a session (its month, shifts, and the filtered grids of its sheet, counted by a subquery on
    # the sheet), summed per month below: the month is computed once a session, not once a sheet entry.
    sheet = SampleSheetEntry.objects.filter(query.q("grid__"), session=OuterRef("pk"))
    per_session = (
        sessions.order_by()
        .annotate(
            month=TruncMonth("start"),
            n_grids=count_of(sheet),
            n_imaged=count_of(sheet.filter(grid__state__in=IMAGED)),
        )
        .values_list("month", "shifts", "n_grids", "n_imaged")
    )
    shifts: dict = {}
    grids: dict = {}
    for month, n_shifts, n_grids, n_imaged in per_session:
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
    for key, label, order, state in (
        ("scheduled", "Booked into a session", 50, GridState.SCHEDULED),
        ("shipped", "Shipped", 60, GridState.SHIPPED),
        ("imaged", "Imaged", 70, GridState.IMAGED),
    ):
        insights.funnel_stage_register(insights.FunnelStage(key, label, order, insights.reached_state(state), state))
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
