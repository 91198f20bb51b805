"""The QC dashboard's extension point, and the part of it grids owns.

The dashboard is about grids, so grids keeps the registries; every app adds what it knows in its
``AppConfig.ready()`` (grids never imports a higher app):

- ``filter_register``: a filter (vitrification adds method and instrument). A filter turns the chosen
  value into lookups relative to ``Grid``, so a panel can filter any table that reaches a grid through a
  prefix (``grid__``) with a join instead of an ``IN`` over 100 000 ids.
- ``funnel_stage_register``: a step of the funnel, as the rows of a table that show a grid got that far
  (``StageRows``; beamtime adds scheduled/shipped/imaged, reconstruction a dataset accepted and a volume).
- ``panel_register``: a panel that answers with one or more charts, each carrying its own table, which is
  what the CSV link serves.

Every panel aggregates in the database (grouped ``values().annotate()``, ``Count(filter=…)``), reads each
table once, and uses a fixed number of queries, whatever the number of grids; Python only arranges the few
groups the database returns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from grids.lifecycle import GridState
from grids.models import CellLine, Grid, GridTransition, GridType
from lims import permissions
from lims.models import Lab, Role

# Who may open the dashboard, and for which labs.
DASHBOARD_ROLES = (Role.QC_REVIEWER, Role.LAB_ADMIN)


@dataclass(frozen=True)
class Table:
    """What a chart shows, as rows; the CSV link serves exactly this."""

    columns: tuple[str, ...]
    rows: list[tuple]

    def csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(self.columns)
        writer.writerows(self.rows)
        return out.getvalue()


@dataclass(frozen=True)
class Chart:
    """One chart: its key (unique on the page), title, table, and the Chart.js configuration drawn from
    the table. ``summary`` says the finding in words, for people who cannot read the chart."""

    key: str
    title: str
    table: Table
    config: dict
    summary: str = ""
    note: str = ""


@dataclass(frozen=True)
class DashboardQuery:
    """The dashboard's filters, resolved: the labs it covers and lookups relative to a grid."""

    lab_ids: tuple[int, ...]
    lookups: dict[str, Any]
    start: date | None = None
    end: date | None = None
    now: datetime = field(default_factory=timezone.now)

    def q(self, prefix: str = "") -> Q:
        """The filters as a Q on a model that reaches a grid through `prefix` (e.g. ``grid__``)."""
        q = Q(**{f"{prefix}lab_id__in": self.lab_ids})
        if self.lookups:
            q &= Q(**{f"{prefix}{key}": value for key, value in self.lookups.items()})
        return q

    @property
    def grids(self) -> QuerySet[Grid]:
        return Grid.objects.filter(self.q())

    def window(self, field_name: str) -> Q:
        """The date range applied to another date-time field (a session's start, a check's time)."""
        q = Q()
        if self.start:
            q &= Q(**{f"{field_name}__gte": _day_start(self.start)})
        if self.end:
            q &= Q(**{f"{field_name}__lt": _day_start(self.end + timedelta(days=1))})
        return q


@dataclass(frozen=True)
class DashboardFilter:
    key: str
    label: str
    order: int
    # (lab ids) -> [(value, label)]: the choices a person of those labs can pick.
    choices: Callable[[tuple[int, ...]], list[tuple[str, str]]]
    # (chosen value) -> lookups relative to Grid.
    lookups: Callable[[str], dict[str, Any]]


@dataclass(frozen=True)
class StageRows:
    """The rows that show a grid got to a funnel step: rows of `model` whose `field` equals `value` (any row
    of it when `field` is empty), reaching their grid through the lookup path `grid`.

    Stages read from the same table and field are counted together, in one grouped query
    (``values(field).annotate(Count(grid, distinct=True))``), so the funnel costs one query per table,
    whatever the number of steps or grids."""

    model: Any
    grid: str = "grid"
    field: str = ""
    value: Any = None


@dataclass(frozen=True)
class FunnelStage:
    key: str
    label: str
    order: int
    # The rows that show a grid got this far (None: every grid counts).
    rows: StageRows | None = None
    # The grid state of grids still waiting at this step, when the step is a state.
    state: str = ""


@dataclass(frozen=True)
class Panel:
    key: str
    title: str
    order: int
    build: Callable[[DashboardQuery], list[Chart]]
    # One sentence under the title: what the panel answers.
    question: str = ""


_filters: dict[str, DashboardFilter] = {}
_stages: dict[str, FunnelStage] = {}
_panels: dict[str, Panel] = {}


def filter_register(item: DashboardFilter) -> None:
    _filters[item.key] = item


def funnel_stage_register(item: FunnelStage) -> None:
    _stages[item.key] = item


def panel_register(item: Panel) -> None:
    _panels[item.key] = item


def filters() -> list[DashboardFilter]:
    return sorted(_filters.values(), key=lambda f: (f.order, f.key))


def funnel_stages() -> list[FunnelStage]:
    return sorted(_stages.values(), key=lambda s: (s.order, s.key))


def panels() -> list[Panel]:
    return sorted(_panels.values(), key=lambda p: (p.order, p.key))


def panel_get(key: str) -> Panel | None:
    return _panels.get(key)


# --- who sees what ------------------------------------------------------------------------------------


def dashboard_lab_ids(user) -> tuple[int, ...]:
    """Labs whose dashboard the user may read: where they review or administer (all for superusers)."""
    if getattr(user, "is_superuser", False):
        return tuple(Lab.objects.order_by("name").values_list("pk", flat=True))
    return tuple(sorted(permissions.lab_ids(user, roles=DASHBOARD_ROLES)))


def may_see_dashboard(user) -> bool:
    return bool(dashboard_lab_ids(user))


# --- helpers panels share -----------------------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def reached_state(state: str) -> StageRows:
    """A funnel step that is a grid state: the grid's history has a move into `state`."""
    return StageRows(GridTransition, "grid", "to_state", state)


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f} %" if whole else "–"


def bar_config(labels: list[str], values: list[float], *, label: str, horizontal: bool = False, unit: str = "") -> dict:
    """A one-series bar chart. The numbers sit in the category labels, so no colour is needed to read it."""
    return {
        "type": "bar",
        "data": {"labels": labels, "datasets": [{"label": label, "data": values, "borderWidth": 1}]},
        "options": {
            "indexAxis": "y" if horizontal else "x",
            "plugins": {"legend": {"display": False}},
            "scales": {
                ("x" if horizontal else "y"): {"beginAtZero": True, "title": {"display": True, "text": unit or label}}
            },
        },
    }


# --- what grids itself contributes --------------------------------------------------------------------


def _lab_choices(lab_ids):
    return [(str(pk), name) for pk, name in Lab.objects.filter(pk__in=lab_ids).values_list("pk", "name")]


def _grid_type_choices(lab_ids):
    rows = GridType.objects.filter(lots__lab_id__in=lab_ids).distinct().values_list("pk", "name")
    return [(str(pk), name) for pk, name in rows]


def _cell_line_choices(lab_ids):
    return [(str(pk), f"{name}") for pk, name in CellLine.objects.filter(lab_id__in=lab_ids).values_list("pk", "name")]


def stage_counts(query: DashboardQuery, stages: list[FunnelStage]) -> dict[str, int]:
    """Grids that reached each stage: one grouped query per (table, field) the stages read, in the database."""
    groups: dict[tuple, list[FunnelStage]] = {}
    for stage in stages:
        if stage.rows is not None:
            groups.setdefault((stage.rows.model, stage.rows.grid, stage.rows.field), []).append(stage)
    counts: dict[str, int] = {}
    for (model, grid, field_name), members in groups.items():
        rows = model.objects.filter(query.q(f"{grid}__")).order_by()
        if not field_name:
            n = rows.aggregate(n=Count(grid, distinct=True))["n"]
            counts.update(dict.fromkeys((m.key for m in members), n))
            continue
        found = dict(
            rows.filter(**{f"{field_name}__in": sorted({m.rows.value for m in members})})
            .values(field_name)
            .annotate(n=Count(grid, distinct=True))
            .values_list(field_name, "n")
        )
        counts.update({m.key: found.get(m.rows.value, 0) for m in members})
    return counts


def funnel_panel(query: DashboardQuery) -> list[Chart]:
    """Counts of grids that reached each step, and where the others stopped: the grids by state (one
    query) and one grouped query per table the steps read (transitions, checks, datasets, volumes)."""
    stages = funnel_stages()
    now_at = dict(query.grids.order_by().values_list("state").annotate(n=Count("pk")).values_list("state", "n"))
    counts = stage_counts(query, stages)
    everyone = sum(now_at.values())
    counts.update({s.key: everyone for s in stages if s.rows is None})
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


def register_grid_parts() -> None:
    """grids' own filters, the first funnel steps and the funnel panel (called from GridsConfig.ready)."""
    filter_register(DashboardFilter("lab", "Lab", 10, _lab_choices, lambda v: {"lab_id": int(v)}))
    filter_register(
        DashboardFilter("grid_type", "Grid type", 20, _grid_type_choices, lambda v: {"lot__grid_type_id": int(v)})
    )
    filter_register(
        DashboardFilter(
            "cell_line", "Cell line", 30, _cell_line_choices, lambda v: {"seeded__seeding__cell_line_id": int(v)}
        )
    )
    version_source_register("grids.transition", newest_pk(GridTransition))
    version_source_register("grids.grid", newest_pk(Grid))
    funnel_stage_register(FunnelStage("registered", "Registered", 10, None, GridState.REGISTERED))
    funnel_stage_register(FunnelStage("seeded", "Seeded", 20, reached_state(GridState.SEEDED), GridState.SEEDED))
    funnel_stage_register(
        FunnelStage("vitrified", "Vitrified", 30, reached_state(GridState.VITRIFIED), GridState.VITRIFIED)
    )
    panel_register(
        Panel(
            "funnel",
            "Funnel",
            10,
            funnel_panel,
            "How many grids got through each step, and how many stopped there.",
        )
    )


def query_build(*, lab_ids: tuple[int, ...], values: dict) -> DashboardQuery:
    """The dashboard query for the chosen filter values (already checked by the filter form)."""
    lookups: dict[str, Any] = {}
    for item in filters():
        if value := values.get(item.key):
            lookups.update(item.lookups(value))
    start, end = values.get("start"), values.get("end")
    if start:
        lookups["registered_at__gte"] = _day_start(start)
    if end:
        lookups["registered_at__lt"] = _day_start(end + timedelta(days=1))
    return DashboardQuery(lab_ids=lab_ids, lookups=lookups, start=start, end=end)


# --- answers kept while the data has not changed --------------------------------------------------------
#
# Every panel is aggregated in the database, but at 100 000 grids a full pass over the tables costs seconds
# on SQLite. The answer for one set of filters is therefore kept in the cache with the data's version it
# was computed from: a handful of O(1) look-ups (the newest id of each table whose rows change the figures,
# registered by the apps like the panels). When the version has moved on, the page shows the last answer
# with its time, and a task (grids.tasks.qc_dashboard_refresh) computes the new one; only a set of filters
# never asked before is computed while the person waits. Edits that add no row (a corrected score) show
# within CACHE_SECONDS.

CACHE_SECONDS = 600
KEEP_SECONDS = 7 * 24 * 3600
_versions: dict[str, Callable[[], Any]] = {}


def version_source_register(key: str, source: Callable[[], Any]) -> None:
    """Let `source()` (one cheap query) say whether data the dashboard reads has changed."""
    _versions[key] = source


def data_version() -> tuple:
    return tuple((key, _versions[key]()) for key in sorted(_versions))


def _cache_key(query: DashboardQuery) -> str:
    import hashlib

    raw = repr((query.lab_ids, sorted(query.lookups.items()), query.start, query.end, sorted(_panels)))
    return "qc-dashboard:" + hashlib.sha256(raw.encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    charts: list[tuple[Panel, list[Chart]]]
    computed_at: datetime
    # Newer records exist than these figures count; a refresh is on its way.
    stale: bool = False


def answer_compute(query: DashboardQuery) -> dict:
    """Compute every panel now and keep the answer with the version it counts."""
    from django.core.cache import cache

    version = data_version()
    entry = {
        "version": version,
        "at": timezone.now(),
        "charts": [(panel.key, panel.build(query)) for panel in panels()],
        "expires": timezone.now() + timedelta(seconds=CACHE_SECONDS),
    }
    cache.set(_cache_key(query), entry, KEEP_SECONDS)
    return entry


def answer_get(query: DashboardQuery, *, params: dict | None = None) -> Answer:
    """The dashboard's answer: from the cache while current, the last one (marked stale, with a refresh
    queued) once newer records exist, computed now only the first time these filters are asked for."""
    from django.core.cache import cache
    from django.db import transaction

    key = _cache_key(query)
    entry = cache.get(key)
    if entry is None:
        entry = answer_compute(query)
    elif entry["version"] != data_version() or entry["expires"] < timezone.now():
        if cache.add(f"{key}:refreshing", 1, 300):
            from grids.tasks import qc_dashboard_refresh

            args = (list(query.lab_ids), dict(params or {}))
            transaction.on_commit(lambda: qc_dashboard_refresh.delay(*args))
        refreshed = cache.get(key)  # an eager task (tests, no worker) has already refreshed it
        if refreshed is not None and refreshed["version"] == data_version():
            entry = refreshed
        else:
            return Answer(_with_panels(entry), entry["at"], stale=True)
    return Answer(_with_panels(entry), entry["at"])


def _with_panels(entry: dict) -> list[tuple[Panel, list[Chart]]]:
    return [(_panels[k], charts) for k, charts in entry["charts"] if k in _panels]


def charts_build(query: DashboardQuery) -> list[tuple[Panel, list[Chart]]]:
    """Every panel's charts, computed now (no cache)."""
    return [(panel, panel.build(query)) for panel in panels()]


def newest_pk(model) -> Callable[[], Any]:
    """A version source: the newest primary key of `model` (an index look-up)."""

    def source():
        return model.objects.order_by("-pk").values_list("pk", flat=True).first()

    return source
