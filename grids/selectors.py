"""Read queries on grids shared by pages and the API."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.shortcuts import get_object_or_404

from grids.lifecycle import GridState
from grids.models import CellLine, Grid, GridLot, GridTransition, GridType, Seeding, StorageBox
from lims import permissions

# Extension point: a higher app adds who else may see which grids (beamtime: facility staff see the
# grids on their beamlines' sample sheets). A rule takes the user and returns the extra grids, or None;
# apps register theirs in AppConfig.ready(), so grids never imports them.
GridVisibilityRule = Callable[[Any], "QuerySet[Grid] | None"]
_visibility_rules: list[GridVisibilityRule] = []


def grid_visibility_register(rule: GridVisibilityRule) -> None:
    """Let `rule(user)` add grids the user may see (read only) besides those of their labs."""
    if rule not in _visibility_rules:
        _visibility_rules.append(rule)


def _visible_grids(user) -> QuerySet[Grid]:
    """Grids of the user's labs, plus what the registered visibility rules add. Seeing is not changing:
    every write still requires lab membership in the services."""
    own = permissions.scope(Grid.objects.all(), user)
    if getattr(user, "is_superuser", False):
        return own
    extra = [grids for rule in _visibility_rules if (grids := rule(user)) is not None]
    if not extra:
        return own
    visible = Q(pk__in=own.values("pk"))
    for grids in extra:
        visible |= Q(pk__in=grids.values("pk"))
    return Grid.objects.filter(visible)


def grid_list(*, user, filters: dict | None = None) -> QuerySet[Grid]:
    """The grids the user may see, with what a list row shows, in a constant number of queries."""
    qs = _visible_grids(user).select_related("lab", "lot__grid_type", "box")
    filters = filters or {}
    if q := (filters.get("q") or "").strip():
        qs = qs.filter(Q(barcode__icontains=q) | Q(notes__icontains=q) | Q(lot__lot_number__icontains=q))
    if state := filters.get("state"):
        qs = qs.filter(state=state)
    if grid_type := filters.get("grid_type"):
        qs = qs.filter(lot__grid_type_id=grid_type)
    if lot := filters.get("lot"):
        qs = qs.filter(lot_id=lot)
    if lab := filters.get("lab"):
        qs = qs.filter(lab_id=lab)
    if after := filters.get("registered_after"):
        qs = qs.filter(registered_at__date__gte=after)
    if before := filters.get("registered_before"):
        qs = qs.filter(registered_at__date__lte=before)
    return qs


def grid_get(*, user, pk: int) -> Grid:
    return get_object_or_404(grid_list(user=user), pk=pk)


def grid_by_barcode(*, user, barcode: str) -> Grid | None:
    """Exact barcode match (what a scanner types) within the user's labs."""
    if "\x00" in barcode:  # no barcode holds a NUL, and PostgreSQL refuses one in a query
        return None
    return grid_list(user=user).filter(barcode__iexact=barcode.strip()).first()


def grids_by_ids(*, user, ids) -> list[Grid]:
    """Grids with these ids in the user's labs; a missing, foreign or malformed id raises 404."""
    from django.http import Http404

    from lims.forms import parse_id

    parsed = [parse_id(i) for i in ids]
    if None in parsed:
        raise Http404("Grid ids are numbers.")
    ids = parsed
    found = {g.pk: g for g in grid_list(user=user).filter(pk__in=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise Http404(f"No grid with id {missing[0]}.")
    return [found[i] for i in ids]


def grid_state_counts(*, user) -> list[tuple[str, str, int]]:
    counts = dict(
        permissions.scope(Grid.objects.all(), user)
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    return [(state.value, state.label, counts.get(state.value, 0)) for state in GridState]


def transition_recent(*, user, limit: int = 20) -> QuerySet[GridTransition]:
    return (
        permissions.scope(GridTransition.objects.all(), user, "grid__lab")
        .select_related("grid", "by")
        .order_by("-at", "-id")[:limit]
    )


@dataclass(frozen=True)
class TimelineEntry:
    at: datetime
    kind: str  # "transition" or "edit"
    title: str
    who: str
    detail: str


def grid_timeline(*, grid: Grid) -> list[TimelineEntry]:
    """Transitions and record edits of a grid, oldest first."""
    entries = [
        TimelineEntry(
            at=t.at,
            kind="transition",
            title=f"{GridState(t.from_state).label if t.from_state else 'new'} → {GridState(t.to_state).label}",
            who=t.by.get_username(),
            detail=" · ".join(x for x in (t.cause, t.reason) if x),
        )
        for t in grid.transitions.select_related("by")
    ]
    records = list(grid.history.select_related("history_user").order_by("history_date", "history_id"))
    for previous, record in zip(records, records[1:], strict=False):
        delta = record.diff_against(previous)
        changes = [c for c in delta.changes if c.field != "state"]
        if not changes:
            continue
        entries.append(
            TimelineEntry(
                at=record.history_date,
                kind="edit",
                title="Edited " + ", ".join(c.field.replace("_", " ") for c in changes),
                who=record.history_user.get_username() if record.history_user else "system",
                detail="; ".join(f"{c.field}: {c.old or '—'} → {c.new or '—'}" for c in changes)
                + (f" ({record.history_change_reason})" if record.history_change_reason else ""),
            )
        )
    return sorted(entries, key=lambda e: e.at)


def grid_type_list() -> QuerySet[GridType]:
    return GridType.objects.all()


def grid_lot_list(*, user) -> QuerySet[GridLot]:
    return permissions.scope(GridLot.objects.all(), user).select_related("lab", "grid_type", "created_by")


def storage_box_list(*, user) -> QuerySet[StorageBox]:
    return (
        permissions.scope(StorageBox.objects.all(), user)
        .select_related("lab")
        .annotate(used=Count("grids"))
        .order_by("lab__name", "name")
    )


def cell_line_list(*, user) -> QuerySet[CellLine]:
    return permissions.scope(CellLine.objects.all(), user).select_related("lab")


def seeding_list(*, user) -> QuerySet[Seeding]:
    return (
        permissions.scope(Seeding.objects.all(), user)
        .select_related("lab", "cell_line", "operator")
        .prefetch_related("grids")
    )
