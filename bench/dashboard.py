"""QC dashboard at scale: server time of the dashboard page with 100 000 grids and their records.

``populate()`` writes a lab's worth of history with bulk inserts (grids along every path of the
lifecycle, seedings, plunge and HPF runs, post-vitrification checks with images and metrics, decisions,
sessions and sample sheets); the tests use it at a small size to check the panels' numbers and the
fixed query count, the bench at 100 000 grids.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import timedelta

# (final state, path of states after registered, share of grids)
PATHS: list[tuple[str, tuple[str, ...], float]] = [
    ("registered", (), 0.05),
    ("seeded", ("seeded",), 0.05),
    ("vitrified", ("seeded", "vitrified"), 0.05),
    ("discarded", ("seeded", "discarded"), 0.05),
    ("rejected", ("seeded", "vitrified", "rejected"), 0.15),
    ("accepted", ("seeded", "vitrified", "accepted"), 0.20),
    ("scheduled", ("seeded", "vitrified", "accepted", "scheduled"), 0.10),
    ("shipped", ("seeded", "vitrified", "accepted", "scheduled", "shipped"), 0.05),
    ("imaged", ("seeded", "vitrified", "accepted", "scheduled", "shipped", "imaged"), 0.30),
]
BLOT_TIMES = (2.0, 4.0, 6.0, 8.0, 10.0)


def _paths(n: int, rng: random.Random) -> list[tuple[str, tuple[str, ...]]]:
    weights = [w for *_, w in PATHS]
    return [(p[0], p[1]) for p in rng.choices(PATHS, weights=weights, k=n)]


def populate(*, lab, user, n_grids: int, seed: int = 0, batch: int = 5000) -> dict:
    """Bulk-write `n_grids` grids of `lab` with their records; returns counts of what was written."""
    from django.db import transaction
    from django.utils import timezone

    from beamtime.models import Beamline, BeamtimeSession, Facility, Proposal, SampleSheetEntry, SessionStatus
    from characterization.models import Check, CheckImage, CheckStage, QCDecision
    from grids.models import CellLine, Grid, GridLot, GridTransition, GridType, SeededGrid, Seeding
    from vitrification.models import GridOutcome, HPFRun, Instrument, InstrumentKind, InstrumentModel, PlungeRun

    rng = random.Random(seed)
    now = timezone.now()
    types = list(GridType.objects.order_by("pk")[:2])
    lots = [
        GridLot.objects.create(
            lab=lab, grid_type=t, lot_number=f"BENCH-{seed}-{i}", quantity=n_grids, quantity_left=0, created_by=user
        )
        for i, t in enumerate(types)
    ]
    lines = [
        CellLine.objects.get_or_create(lab=lab, name=name, defaults={"organism": "Homo sapiens"})[0]
        for name in ("HeLa", "U2OS", "RPE-1")
    ]
    plungers = [
        Instrument.objects.get_or_create(
            lab=lab,
            name=f"Vitrobot {k}",
            defaults={"kind": InstrumentKind.PLUNGER, "model": InstrumentModel.VITROBOT_MARK_IV},
        )[0]
        for k in (1, 2)
    ]
    hpf = Instrument.objects.get_or_create(
        lab=lab, name="EM ICE", defaults={"kind": InstrumentKind.HPF, "model": InstrumentModel.LEICA_EM_ICE}
    )[0]
    beamlines = list(Beamline.objects.order_by("pk"))
    beamline = beamlines[lab.pk % len(beamlines)] if beamlines else None
    facility = beamline.facility if beamline else Facility.objects.create(name="Bench facility", short_name="BENCH")
    proposal = Proposal.objects.create(
        facility=facility,
        number=f"BENCH-{lab.pk}-{seed}",
        lab=lab,
        principal_investigator="Bench",
        title="Dashboard bench",
        shifts_allocated=1000,
        valid_from=(now - timedelta(days=800)).date(),
        valid_until=(now + timedelta(days=30)).date(),
        created_by=user,
    )
    counts = dict.fromkeys(("grids", "transitions", "checks", "images", "decisions", "entries", "sessions"), 0)
    paths = _paths(n_grids, rng)
    prefix = f"B{lab.pk}S{seed}"
    session_start = now - timedelta(days=700) + timedelta(minutes=seed)
    # A second call (more rows for the same lab) books after the sessions already there: they never overlap.
    latest = BeamtimeSession.objects.order_by("-end").values_list("end", flat=True).first()
    if latest is not None:
        session_start = max(session_start, latest + timedelta(hours=1))
    with transaction.atomic():
        for start in range(0, n_grids, batch):
            chunk = paths[start : start + batch]
            grids = Grid.objects.bulk_create(
                Grid(
                    barcode=f"{prefix}-{start + i:07d}",
                    lab=lab,
                    lot=lots[(start + i) % len(lots)],
                    state=final,
                    registered_by=user,
                )
                for i, (final, _) in enumerate(chunk)
            )
            if grids[0].pk is None:  # backends that do not return ids from bulk inserts
                grids = list(
                    Grid.objects.filter(barcode__startswith=f"{prefix}-").order_by("pk")[start : start + batch]
                )
            # Registration days spread over the last two years, a chunk per day.
            registered = now - timedelta(days=700) + timedelta(days=700 * start / max(n_grids, 1))
            Grid.objects.filter(pk__in=[g.pk for g in grids]).update(registered_at=registered)
            counts["grids"] += len(grids)
            transitions, seeded, outcomes, checks_for = [], [], [], []
            seedings = Seeding.objects.bulk_create(
                Seeding(
                    lab=lab,
                    cell_line=lines[k % len(lines)],
                    operator=user,
                    seeded_at=registered + timedelta(days=1, hours=k % 24),
                )
                for k in range(len(grids) // 20 + 1)
            )
            runs = PlungeRun.objects.bulk_create(
                PlungeRun(
                    lab=lab,
                    instrument=plungers[k % 2],
                    operator=user,
                    created_by=user,
                    performed_at=registered + timedelta(days=2),
                    blot_time_s=BLOT_TIMES[k % len(BLOT_TIMES)],
                    humidity_percent=80 + (k * 7) % 21,
                )
                for k in range(len(grids) // 10 + 1)
            )
            hpf_runs = HPFRun.objects.bulk_create(
                HPFRun(
                    lab=lab,
                    instrument=hpf,
                    operator=user,
                    created_by=user,
                    performed_at=registered + timedelta(days=2),
                    pressure_bar=2100,
                )
                for _ in range(len(grids) // 50 + 1)
            )
            if seedings[0].pk is None or runs[0].pk is None:
                raise RuntimeError("populate() needs a database that returns ids from bulk inserts.")
            for i, (grid, (final, path)) in enumerate(zip(grids, chunk, strict=True)):
                previous = "registered"
                transitions.append(GridTransition(grid=grid, from_state="", to_state="registered", by=user))
                for state in path:
                    transitions.append(GridTransition(grid=grid, from_state=previous, to_state=state, by=user))
                    previous = state
                if "seeded" in path:
                    seeded.append(SeededGrid(seeding=seedings[i // 20], grid=grid))
                if "vitrified" in path:
                    if i % 10 == 9:
                        outcomes.append(GridOutcome(grid=grid, hpf_run=hpf_runs[i // 50]))
                    else:
                        outcomes.append(GridOutcome(grid=grid, plunge_run=runs[i // 10]))
                    checks_for.append((grid, final, runs[i // 10].blot_time_s if i % 10 != 9 else None))
            GridTransition.objects.bulk_create(transitions)
            SeededGrid.objects.bulk_create(seeded)
            GridOutcome.objects.bulk_create(outcomes)
            counts["transitions"] += len(transitions)
            checks = []
            for grid, final, blot in checks_for:
                # Longer blotting, thinner ice (a trend for the scatter to show), with noise.
                base = 4 - (blot or 6) / 3.5
                ice = min(4, max(1, round(base + rng.gauss(0, 0.7))))
                checks.append(
                    Check(
                        lab=lab,
                        grid=grid,
                        stage=CheckStage.POST_VITRIFICATION,
                        operator=user,
                        created_by=user,
                        checked_at=now - timedelta(hours=rng.randint(1, 24 * 30))
                        if final == "vitrified"
                        else registered + timedelta(days=3),
                        ice_quality_class=ice,
                        cell_integrity=rng.randint(2, 5),
                        grid_integrity=rng.randint(2, 5),
                    )
                )
            checks = Check.objects.bulk_create(checks)
            counts["checks"] += len(checks)
            decisions, images = [], []
            for check, (grid, final, _) in zip(checks, checks_for, strict=True):
                accepted = final not in ("vitrified", "rejected")
                if final != "vitrified":
                    decisions.append(
                        QCDecision(
                            lab=lab,
                            grid=grid,
                            lm_check=check,
                            decision="accepted" if accepted else "rejected",
                            reasons="bench",
                            decided_by=user,
                        )
                    )
                if grid.pk % 5 == 0:
                    intact = rng.uniform(0.6, 0.95) if accepted else rng.uniform(0.2, 0.7)
                    images.append(
                        CheckImage(
                            lm_check=check,
                            file=f"bench/{grid.pk}.tif",
                            original_name=f"{grid.barcode}.tif",
                            sha256=f"{grid.pk:064x}",
                            size_bytes=1,
                            format="tiff",
                            width=64,
                            height=64,
                            bit_depth=16,
                            uploaded_by=user,
                            metrics_status="done",
                            metrics={
                                "intact_fraction": intact,
                                "coverage_fraction": rng.uniform(0.1, 0.4),
                                "saturated_fraction": rng.uniform(0, 0.02),
                                "squares_found": rng.randint(50, 100),
                                "contamination_spots": rng.randint(0, 20),
                                "focus": rng.uniform(10, 200),
                            },
                        )
                    )
            QCDecision.objects.bulk_create(decisions)
            CheckImage.objects.bulk_create(images)
            counts["decisions"] += len(decisions)
            counts["images"] += len(images)
            on_sheet = [
                g for g, (final, _) in zip(grids, chunk, strict=True) if final in ("scheduled", "shipped", "imaged")
            ]
            entries = []
            for k in range(0, len(on_sheet), 40):
                session_start = max(session_start, registered + timedelta(days=rng.choice((2, 5, 10, 20, 40))))
                finished = session_start < now - timedelta(days=2)
                session = BeamtimeSession.objects.create(
                    beamline=beamline,
                    proposal=proposal,
                    lab=lab,
                    start=session_start,
                    end=session_start + timedelta(hours=24),
                    freeze_at=session_start - timedelta(days=1),
                    shifts=3,
                    status=SessionStatus.FINISHED if finished else SessionStatus.CONFIRMED,
                    created_by=user,
                )
                session_start += timedelta(days=1, hours=1)
                counts["sessions"] += 1
                entries += [
                    SampleSheetEntry(session=session, grid=g, position=p + 1, gate_passed=True, added_by=user)
                    for p, g in enumerate(on_sheet[k : k + 40])
                ]
            SampleSheetEntry.objects.bulk_create(entries)
            counts["entries"] += len(entries)
    return counts


def _time_page(client, url: str, repeats: int, *, cold: bool) -> list[float]:
    from django.core.cache import cache

    times = []
    for _ in range(repeats):
        if cold:
            cache.clear()
        t0 = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, response.status_code
    return times


def run(quick: bool = False) -> str:
    """Build a throwaway SQLite database, fill it, and time the dashboard (all filters off, and one on)."""
    import os
    import tempfile

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    folder = tempfile.mkdtemp(prefix="lims-bench-dashboard-")
    os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from lims.models import Lab, Membership

    call_command("migrate", verbosity=0, interactive=False)
    n = 10_000 if quick else 100_000
    user = get_user_model().objects.create_user("bench-reviewer", password="x")
    lab = Lab.objects.create(name="Bench lab", code="BENCH")
    Membership.objects.create(lab=lab, user=user, role="qc_reviewer")
    t0 = time.perf_counter()
    counts = populate(lab=lab, user=user, n_grids=n)
    fill = time.perf_counter() - t0
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    url = "/grids/qc/"
    grid_type = lab.grid_lots.order_by("pk").first().grid_type_id
    filtered = f"{url}?grid_type={grid_type}&method=plunger&start=2000-01-01"
    _time_page(client, url, 1, cold=True)  # warm templates and SQLite's page cache
    repeats = 3 if quick else 5
    whole = _time_page(client, url, repeats, cold=True)
    narrow = _time_page(client, filtered, repeats, cold=True)
    warm = _time_page(client, url, repeats * 4, cold=False)
    from django.core.cache import cache

    cache.clear()
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    with CaptureQueriesContext(connection) as warm_queries:
        client.get(url)
    from grids import insights

    panel_times = []
    query = insights.query_build(lab_ids=(lab.pk,), values={})
    for panel in insights.panels():
        t = []
        for _ in range(3):
            t0 = time.perf_counter()
            panel.build(query)
            t.append(time.perf_counter() - t0)
        panel_times.append((panel.title, statistics.median(t)))
    lines = [
        "## QC dashboard at scale\n",
        f"Server time of `GET /grids/qc/` (the whole page: every panel, template and chart data) on SQLite with "
        f"{counts['grids']:,} grids, {counts['transitions']:,} lifecycle moves, {counts['checks']:,} checks, "
        f"{counts['images']:,} analysed images, {counts['decisions']:,} QC decisions, {counts['sessions']:,} sessions and "
        f"{counts['entries']:,} sample-sheet entries (written in {fill:.0f} s). Median of {repeats} requests through "
        f"Django's test client after one warm-up.\n",
        "| Request | Median | Min | Queries |",
        "|---|---|---|---|",
        f"| all grids, no filter, computed (cache empty) | {statistics.median(whole) * 1000:.0f} ms "
        f"| {min(whole) * 1000:.0f} ms | {len(queries)} |",
        f"| grid type + plunge freezing + date, computed | {statistics.median(narrow) * 1000:.0f} ms "
        f"| {min(narrow) * 1000:.0f} ms | {len(queries)} |",
        f"| all grids, data unchanged since the last request (cached answer) | {statistics.median(warm) * 1000:.0f} ms "
        f"| {min(warm) * 1000:.0f} ms | {len(warm_queries)} |",
        "",
        "Per panel (median of 3, no filter):\n",
        "| Panel | Median |",
        "|---|---|",
        *[f"| {title} | {t * 1000:.0f} ms |" for title, t in panel_times],
        "",
        "Budget: 300 ms for the whole page. The query count is the same at any size "
        "(tests/grids/test_qc_dashboard.py checks it). An answer is kept with the data's version (newest id of "
        "each table the figures read): while it is current the page is served from the cache; once newer records "
        "exist the page shows it, marked, and a task recomputes it; only filters never asked before are computed "
        "while the person waits (the 'computed' rows).\n",
    ]
    return "\n".join(lines)
