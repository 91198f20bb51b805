"""Read queries on vitrification shared by the pages and the API (lab-scoped, bounded queries)."""

from __future__ import annotations

from django.db.models import Prefetch, QuerySet
from django.shortcuts import get_object_or_404

from grids import selectors as grid_selectors
from grids.lifecycle import GridState
from grids.models import Grid
from lims import permissions
from vitrification.models import GridOutcome, HPFRun, Instrument, InstrumentKind, PlungeRun


def instrument_list(*, user, kind: str | None = None, active: bool | None = None) -> QuerySet[Instrument]:
    qs = permissions.scope(Instrument.objects.all(), user).select_related("lab")
    if kind:
        qs = qs.filter(kind=kind)
    if active is not None:
        qs = qs.filter(active=active)
    return qs


def instrument_get(*, user, pk: int) -> Instrument:
    return get_object_or_404(instrument_list(user=user), pk=pk)


def instruments_for_run(*, user, kind: str) -> QuerySet[Instrument]:
    """The instruments a new run of this kind may use: active, of the right kind, in the user's labs."""
    return instrument_list(user=user, kind=kind, active=True)


def _outcomes() -> Prefetch:
    return Prefetch("outcomes", queryset=GridOutcome.objects.select_related("grid").order_by("grid__barcode"))


def _runs(model, *, user, filters: dict | None) -> QuerySet:
    qs = (
        permissions.scope(model.objects.all(), user)
        .select_related("lab", "instrument", "operator", "created_by")
        .prefetch_related(_outcomes())
    )
    filters = filters or {}
    if lab := filters.get("lab"):
        qs = qs.filter(lab_id=lab)
    if instrument := filters.get("instrument"):
        qs = qs.filter(instrument_id=instrument)
    if grid := filters.get("grid"):
        qs = qs.filter(outcomes__grid_id=grid)
    if barcode := (filters.get("barcode") or "").strip():
        qs = qs.filter(outcomes__grid__barcode__iexact=barcode)
    if after := filters.get("performed_after"):
        qs = qs.filter(performed_at__date__gte=after)
    if before := filters.get("performed_before"):
        qs = qs.filter(performed_at__date__lte=before)
    return qs


def plunge_run_list(*, user, filters: dict | None = None) -> QuerySet[PlungeRun]:
    qs = _runs(PlungeRun, user=user, filters=filters)
    if cryogen := (filters or {}).get("cryogen"):
        qs = qs.filter(cryogen=cryogen)
    return qs


def plunge_run_get(*, user, pk: int) -> PlungeRun:
    return get_object_or_404(plunge_run_list(user=user), pk=pk)


def hpf_run_list(*, user, filters: dict | None = None) -> QuerySet[HPFRun]:
    return _runs(HPFRun, user=user, filters=filters)


def hpf_run_get(*, user, pk: int) -> HPFRun:
    return get_object_or_404(hpf_run_list(user=user), pk=pk)


RUN_KINDS = {InstrumentKind.PLUNGER: PlungeRun, InstrumentKind.HPF: HPFRun}


def last_run(*, user, kind: str):
    """The user's most recent run of this kind (its settings prefill the next form), or None."""
    model = RUN_KINDS[kind]
    return permissions.scope(model.objects.all(), user).filter(created_by=user).order_by("-created_at", "-id").first()


def grids_ready_for_vitrification(*, user) -> QuerySet[Grid]:
    """Seeded grids of the user's labs: the only ones a run may take."""
    return grid_selectors.grid_list(user=user).filter(state=GridState.SEEDED).order_by("barcode")


def grid_outcome(*, grid: Grid) -> GridOutcome | None:
    """How (and in which run) the grid was vitrified, or None; for the grid page."""
    return GridOutcome.objects.select_related("plunge_run__instrument", "hpf_run__instrument").filter(grid=grid).first()
