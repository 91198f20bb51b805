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

The filters and most panels read a summary of one row a grid (``summary_register``: characterization's
``GridSummary``, with the grid's lab, type, cell line, method, instrument, decision in force and the funnel
steps it reached as bits), so that a panel is one grouped pass over a narrow table. The services that change
what a summary says call ``grid_facts_changed(grid_ids)``; the app that keeps the summary listens
(``grid_facts_listener_register``), so grids and vitrification need not know it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Count, F, Q, QuerySet, Sum
from django.utils import timezone

from grids.lifecycle import GridState
from grids.models import CellLine, Grid, GridTransition, GridType
from lims import permissions
from lims.env import env_int
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
        """The filters as a Q on a model that reaches the grid's summary through `prefix` ("" on the summary
        itself; ``summary__`` on the tables that join it directly — checks, sheet entries, datasets)."""
        q = Q(**{f"{prefix}lab_id__in": self.lab_ids})
        if self.lookups:
            q &= Q(**{f"{prefix}{key}": value for key, value in self.lookups.items()})
        return q

    @property
    def grids(self) -> QuerySet[Grid]:
        return Grid.objects.filter(self.q(f"{_summary['related_name']}__"))

    @property
    def summary(self) -> QuerySet:
        """The summary rows (one a grid) of the grids the filters select."""
        return _summary["model"].objects.filter(self.q()).order_by()

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
    # (chosen value) -> lookups on the grid's summary (summary_register).
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
    # The bit of the summary's `reached` that says a grid got this far (stages with rows only). Fixed per
    # stage, since summaries already written carry it; a new stage takes a new bit and a rebuild.
    bit: int | None = None


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
    if (item.rows is None) != (item.bit is None):
        raise ValueError(f"Funnel stage {item.key!r}: a stage read from rows needs a bit of its own, and only it.")
    taken = {s.bit: s.key for s in _stages.values() if s.bit is not None and s.key != item.key}
    if item.bit is not None and (item.bit in taken or not 0 <= item.bit < 63):
        raise ValueError(f"Funnel stage {item.key!r}: bit {item.bit} is taken or out of range ({taken}).")
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


# --- the summary the panels read, and who keeps it ------------------------------------------------------

_summary: dict[str, Any] = {}
_fact_listeners: list[Callable[[list[int]], None]] = []


def summary_register(model, *, related_name: str) -> None:
    """The table of one row a grid the filters and panels read (reached from Grid by `related_name`)."""
    _summary.update(model=model, related_name=related_name)


def grid_facts_changed(grid_ids) -> None:
    """Say that what the dashboard knows of these grids may have changed (their state, seeding,
    vitrification, checks, decisions, datasets…); called by services inside their transaction."""
    ids = sorted({int(pk) for pk in grid_ids})
    if ids:
        for listener in _fact_listeners:
            listener(ids)


def grid_facts_listener_register(listener: Callable[[list[int]], None]) -> None:
    if listener not in _fact_listeners:
        _fact_listeners.append(listener)


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


def reached_bit(stage: FunnelStage) -> int:
    return 1 << stage.bit


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


def stage_grids(stages: list[FunnelStage], grid_ids: list[int]) -> dict[int, int]:
    """The `reached` bits of the given grids, from the rows that show each step: one query per (table,
    field) the stages read, whatever the number of steps (what the summary keeps, recomputed)."""
    groups: dict[tuple, list[FunnelStage]] = {}
    for stage in stages:
        if stage.rows is not None:
            groups.setdefault((stage.rows.model, stage.rows.grid, stage.rows.field), []).append(stage)
    bits: dict[int, int] = dict.fromkeys(grid_ids, 0)
    for (model, grid, field_name), members in groups.items():
        rows = model.objects.filter(**{f"{grid}__in": grid_ids}).order_by()
        if not field_name:
            for pk in rows.values_list(grid, flat=True).distinct():
                for m in members:
                    bits[pk] |= reached_bit(m)
            continue
        by_value = {m.rows.value: reached_bit(m) for m in members}
        for pk, value in (
            rows.filter(**{f"{field_name}__in": sorted(by_value)}).values_list(grid, field_name).distinct()
        ):
            bits[pk] |= by_value[value]
    return bits


def funnel_panel(query: DashboardQuery) -> list[Chart]:
    """Counts of grids that reached each step, and where the others stopped: one grouped query over the
    summaries (by state, with the sum of each step's bit)."""
    stages = funnel_stages()
    with_bits = [s for s in stages if s.bit is not None]
    # One pass over the summary: grids by state, and per state the sum of each step's bit.
    by_state = (
        query.summary.values("state")
        .annotate(n=Count("pk"), **{f"b{s.bit}": Sum(F("reached").bitand(reached_bit(s))) for s in with_bits})
        .order_by()
    )
    now_at: dict[str, int] = {}
    counts = dict.fromkeys((s.key for s in with_bits), 0)
    for row in by_state:
        now_at[row["state"]] = row["n"]
        for s in with_bits:
            counts[s.key] += (row[f"b{s.bit}"] or 0) // reached_bit(s)
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
        DashboardFilter("grid_type", "Grid type", 20, _grid_type_choices, lambda v: {"grid_type_id": int(v)})
    )
    filter_register(
        DashboardFilter("cell_line", "Cell line", 30, _cell_line_choices, lambda v: {"cell_line_id": int(v)})
    )
    version_source_register("grids.transition", newest_pk(GridTransition))
    version_source_register("grids.grid", newest_pk(Grid))
    funnel_stage_register(FunnelStage("registered", "Registered", 10, None, GridState.REGISTERED))
    funnel_stage_register(FunnelStage("seeded", "Seeded", 20, reached_state(GridState.SEEDED), GridState.SEEDED, bit=0))
    funnel_stage_register(
        FunnelStage("vitrified", "Vitrified", 30, reached_state(GridState.VITRIFIED), GridState.VITRIFIED, bit=1)
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
        "charts": [(panel.key, charts) for panel, charts in charts_build(query)],
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
    """Every panel's charts, computed now (no cache).

    The panels are independent reads, so they run on `PANEL_THREADS` database connections at once (the
    database uses a core per query): the request's own connection and `PANEL_THREADS - 1` more, the
    panels handed out longest first by their last measured time, so that the connections finish
    together. Inside a transaction they run on the caller's connection, one after the other: other
    connections could not see its uncommitted rows."""
    import time

    from django.db import connection

    ordered = panels()
    threads = min(PANEL_THREADS, len(ordered))
    if threads <= 1 or connection.in_atomic_block:
        return [(panel, panel.build(query)) for panel in ordered]
    import queue
    import threading

    todo: queue.SimpleQueue = queue.SimpleQueue()
    for i, panel in sorted(enumerate(ordered), key=lambda item: -_PANEL_SECONDS.get(item[1].key, 1.0)):
        todo.put((i, panel))
    results: dict[int, list[Chart]] = {}
    failures: list[BaseException] = []

    def work() -> None:
        try:
            while True:
                try:
                    i, panel = todo.get_nowait()
                except queue.Empty:
                    return
                started = time.perf_counter()
                results[i] = panel.build(query)
                _PANEL_SECONDS[panel.key] = time.perf_counter() - started
        except BaseException as error:  # handed to the request's thread below
            failures.append(error)

    def work_elsewhere() -> None:
        from django.db import connections

        try:
            work()
        finally:
            connections.close_all()  # this thread's own connections (Django keeps them per thread)

    workers = [threading.Thread(target=work_elsewhere, name=f"qc-panel-{n}") for n in range(threads - 1)]
    for worker in workers:
        worker.start()
    work()  # the request's thread takes its share on its own connection
    for worker in workers:
        worker.join()
    if failures:
        raise failures[0]
    return [(panel, results[i]) for i, panel in enumerate(ordered)]


# Seconds each panel took when last computed in this process, to hand out the longest first.
_PANEL_SECONDS: dict[str, float] = {}

# Connections the dashboard's panels are computed on at once (1: all on the request's own connection).
PANEL_THREADS = env_int("LIMS_DASHBOARD_THREADS", 2)


def newest_pk(model) -> Callable[[], Any]:
    """A version source: the newest primary key of `model` (an index look-up)."""

    def source():
        return model.objects.order_by("-pk").values_list("pk", flat=True).first()

    return source
