"""The grid summaries the QC dashboard reads (``GridSummary``, one row a grid), kept up to date.

Every service that changes what a summary says (a grid registered, seeded, moved, vitrified; a check
recorded or edited; a decision; a dataset accepted; a volume made) ends with
``grids.insights.grid_facts_changed(ids)``, and ``grid_summaries_refresh`` (the listener) recomputes those
grids' rows from their records, inside the same transaction. The same function rebuilds every row
(``grid_summaries_rebuild``; ``manage.py grid_summaries_rebuild``), so a kept row and a rebuilt one cannot
differ by construction, only by a service that forgot to call.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import F, OuterRef, Subquery

from characterization.models import Check, CheckStage, GridSummary, QCDecision
from grids import insights
from grids.models import Grid

CHUNK = 2000
_FIELDS = (
    "lab_id",
    "grid_type_id",
    "state",
    "registered_at",
    "cell_line_id",
    "seeded_at",
    "method",
    "instrument_id",
    "blot_time_s",
    "humidity_percent",
    "decision",
    "post_checked_at",
    "ice_quality_class",
    "reached",
)


def _newest_post_check(column: str) -> Subquery:
    return Subquery(
        Check.objects.filter(grid=OuterRef("pk"), stage=CheckStage.POST_VITRIFICATION)
        .order_by("-checked_at", "-id")
        .values(column)[:1]
    )


def _summaries_of(ids: list[int]) -> list[GridSummary]:
    rows = (
        Grid.objects.filter(pk__in=ids)
        .order_by()
        .values(
            "pk",
            "lab_id",
            "state",
            "registered_at",
            grid_type_id=F("lot__grid_type_id"),
            cell_line_id=F("seeded__seeding__cell_line_id"),
            seeded_at=F("seeded__seeding__seeded_at"),
            plunger=F("vitrification_outcome__plunge_run__instrument_id"),
            hpf=F("vitrification_outcome__hpf_run__instrument_id"),
            blot_time_s=F("vitrification_outcome__plunge_run__blot_time_s"),
            humidity_percent=F("vitrification_outcome__plunge_run__humidity_percent"),
            decision=Subquery(
                QCDecision.objects.filter(grid=OuterRef("pk")).order_by("-decided_at", "-id").values("decision")[:1]
            ),
            post_checked_at=_newest_post_check("checked_at"),
            ice_quality_class=_newest_post_check("ice_quality_class"),
        )
    )
    reached = insights.stage_grids(insights.funnel_stages(), ids)
    summaries = []
    for row in rows:
        plunger, hpf = row.pop("plunger"), row.pop("hpf")
        pk = row.pop("pk")
        summaries.append(
            GridSummary(
                grid_id=pk,
                method="plunger" if plunger is not None else "hpf" if hpf is not None else "",
                instrument_id=plunger if plunger is not None else hpf,
                reached=reached.get(pk, 0),
                **{**row, "decision": row["decision"] or ""},
            )
        )
    return summaries


def grid_summaries_refresh(grid_ids: Iterable[int]) -> None:
    """Recompute the summaries of these grids from their records (rows of grids that no longer exist go)."""
    ids = sorted(set(grid_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        summaries = _summaries_of(chunk)
        GridSummary.objects.bulk_create(
            summaries, update_conflicts=True, unique_fields=["grid"], update_fields=list(_FIELDS)
        )
        found = {s.grid_id for s in summaries}
        if len(found) < len(chunk):
            GridSummary.objects.filter(grid_id__in=set(chunk) - found).delete()


def grid_summaries_rebuild() -> int:
    """Every grid's summary recomputed (after a bulk load, or to repair); returns the number of grids."""
    ids = list(Grid.objects.order_by("pk").values_list("pk", flat=True))
    GridSummary.objects.exclude(grid_id__in=Grid.objects.values("pk")).delete()
    grid_summaries_refresh(ids)
    return len(ids)


def summaries_compare() -> list[tuple]:
    """(grid, field, kept, recomputed) for every difference between the kept summaries and a fresh
    computation from the records; empty when they agree (tests, and a check after repairs by hand)."""
    ids = list(Grid.objects.order_by("pk").values_list("pk", flat=True))
    fresh = {s.grid_id: s for start in range(0, len(ids), CHUNK) for s in _summaries_of(ids[start : start + CHUNK])}
    kept = {s.grid_id: s for s in GridSummary.objects.all()}
    differences = []
    for pk in sorted(set(fresh) | set(kept)):
        a, b = kept.get(pk), fresh.get(pk)
        if a is None or b is None:
            differences.append((pk, "row", a is not None, b is not None))
            continue
        differences += [(pk, f, getattr(a, f), getattr(b, f)) for f in _FIELDS if getattr(a, f) != getattr(b, f)]
    return differences
