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
    from characterization.summaries import grid_summaries_refresh
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
    counts = dict.fromkeys(
        ("grids", "transitions", "checks", "images", "decisions", "entries", "sessions", "datasets", "jobs", "volumes"),
        0,
    )
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
            _datasets_jobs_volumes(entries, lab=lab, user=user, rng=rng, now=now, counts=counts)
            # Rows written in bulk, past the services: their dashboard summaries are computed here.
            grid_summaries_refresh([g.pk for g in grids])
    return counts


def _datasets_jobs_volumes(entries, *, lab, user, rng, now, counts) -> None:
    """A dataset for each imaged grid of the sheets (most accepted), a job for each accepted one (most
    succeeded, with a volume; a few failed, queued or running)."""
    from reconstruction.models import Dataset, ReconstructionJob, Volume

    imaged = [e for e in entries if e.grid.state == "imaged"]
    datasets = []
    for e in imaged:
        roll = rng.random()
        status = "accepted" if roll < 0.85 else ("rejected" if roll < 0.95 else "pending")
        datasets.append(
            Dataset(
                lab=lab,
                session=e.session,
                grid=e.grid,
                name=f"{e.grid.barcode}-tilt",
                format="mrc",
                source_path=f"/data/bench/{e.grid.barcode}.mrc",
                sha256=f"{e.grid.pk:064x}",
                size_bytes=1,
                tilts=61,
                rows=64,
                columns=64,
                angles=[],
                pixel_size_nm=10.0,
                status=status,
                decided_by=None if status == "pending" else user,
                decided_at=None if status == "pending" else e.session.end,
                created_by=user,
            )
        )
    datasets = Dataset.objects.bulk_create(datasets)
    jobs = []
    for d in datasets:
        if d.status != "accepted":
            continue
        roll = rng.random()
        state = "succeeded" if roll < 0.9 else "failed" if roll < 0.95 else "queued" if roll < 0.98 else "running"
        finished = d.decided_at + timedelta(hours=1) if state in ("succeeded", "failed") else None
        if state == "failed" and rng.random() < 0.5:
            finished = now - timedelta(days=rng.randint(0, 14))
        jobs.append(
            ReconstructionJob(
                lab=lab,
                dataset=d,
                method="sirt",
                parameters_key=f"{d.pk:064x}",
                engine_version="bench",
                state=state,
                error="bench failure" if state == "failed" else "",
                created_by=user,
                started_at=d.decided_at if state != "queued" else None,
                finished_at=finished,
            )
        )
    jobs = ReconstructionJob.objects.bulk_create(jobs)
    volumes = [
        Volume(
            job=j,
            lab=lab,
            file=f"bench/{j.pk}.mrc",
            sha256=f"{j.pk:064x}",
            size_bytes=1,
            depth=64,
            thickness=64,
            width=64,
            voxel_size_nm=10.0,
            value_min=0,
            value_max=1,
            value_mean=0.5,
        )
        for j in jobs
        if j.state == "succeeded"
    ]
    Volume.objects.bulk_create(volumes)
    counts["datasets"] += len(datasets)
    counts["jobs"] += len(jobs)
    counts["volumes"] += len(volumes)


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


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def _table_of_counts(counts: dict) -> str:
    return (
        f"{counts['grids']:,} grids, {counts['transitions']:,} lifecycle moves, {counts['checks']:,} checks, "
        f"{counts['images']:,} analysed images, {counts['decisions']:,} QC decisions, {counts['sessions']:,} sessions, "
        f"{counts['entries']:,} sample-sheet entries, {counts['datasets']:,} datasets, {counts['jobs']:,} "
        f"reconstruction jobs and {counts['volumes']:,} volumes"
    )


def run(quick: bool = False) -> str:
    """Fill a database (a throwaway SQLite file, or BENCH_DASHBOARD_DATABASE_URL, e.g. an empty PostgreSQL
    database), and time the dashboard's fresh computation before and after the aggregation rework (issue 11)
    in the same run, then the page itself."""
    import os
    import tempfile

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    url_env = os.environ.get("BENCH_DASHBOARD_DATABASE_URL")
    if url_env:
        os.environ["DATABASE_URL"] = url_env
    else:
        folder = tempfile.mkdtemp(prefix="lims-bench-dashboard-")
        os.environ["DATABASE_URL"] = f"sqlite:///{folder}/bench.sqlite3"
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from bench.dashboard_before import BEFORE
    from grids import insights
    from grids.models import Grid
    from lims.models import Lab, Membership

    call_command("migrate", verbosity=0, interactive=False)
    n = 10_000 if quick else 100_000
    lab = Lab.objects.filter(code="BENCH").first()
    if lab is None:  # an existing bench database (BENCH_DASHBOARD_DATABASE_URL) is used as it is
        user = get_user_model().objects.create_user("bench-reviewer", password="x")
        lab = Lab.objects.create(name="Bench lab", code="BENCH")
        Membership.objects.create(lab=lab, user=user, role="qc_reviewer")
        t0 = time.perf_counter()
        counts = populate(lab=lab, user=user, n_grids=n)
        filled = f"written in {time.perf_counter() - t0:.0f} s"
    else:
        user = get_user_model().objects.get(username="bench-reviewer")
        counts = _count_rows(lab)
        filled = "filled by `bench.dashboard.populate` in an earlier run and reused"
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    vendor = connection.vendor
    load_start = os.getloadavg()
    grid_type = lab.grid_lots.order_by("pk").first().grid_type_id
    from datetime import date

    repeats = 3
    queries = {
        "no filter": insights.query_build(lab_ids=(lab.pk,), values={}),
        "grid type + plunge freezing + date": insights.query_build(
            lab_ids=(lab.pk,), values={"grid_type": str(grid_type), "method": "plunger", "start": date(2000, 1, 1)}
        ),
    }
    panels = insights.panels()
    # Every panel computed, old way and new way, alternating so that both see the same load.
    whole = {}
    for label, query in queries.items():
        before = [p for p in panels if p.key in BEFORE]
        [BEFORE[p.key](query) for p in before]  # warm the page cache
        [p.build(query) for p in before]
        t_before, t_after = [], []
        for _ in range(repeats):
            t_before.append(_median_ms(lambda q=query, b=before: [BEFORE[p.key](q) for p in b], 1))
            t_after.append(_median_ms(lambda q=query, b=before: [p.build(q) for p in b], 1))
        t_all = _median_ms(lambda q=query: [p.build(q) for p in panels], repeats)
        whole[label] = (statistics.median(t_before), statistics.median(t_after), t_all)
    per_panel = []
    query = queries["no filter"]
    for panel in panels:
        with CaptureQueriesContext(connection) as q_after:
            panel.build(query)
        after = _median_ms(lambda p=panel: p.build(query), 3)
        before = _median_ms(lambda p=panel: BEFORE[p.key](query), 3) if panel.key in BEFORE else None
        per_panel.append((panel.title, before, after, len(q_after)))
    # The page, through Django's test client.
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    url = "/grids/qc/"
    filtered = f"{url}?grid_type={grid_type}&method=plunger&start=2000-01-01"
    _time_page(client, url, 1, cold=True)
    threads = insights.PANEL_THREADS
    insights.PANEL_THREADS = 1
    page_serial = _time_page(client, url, repeats * 2, cold=True)
    insights.PANEL_THREADS = threads
    page_whole = _time_page(client, url, repeats * 2, cold=True)
    page_narrow = _time_page(client, filtered, repeats * 2, cold=True)
    page_warm = _time_page(client, url, repeats * 4, cold=False)
    cache.clear()
    insights.PANEL_THREADS = 1  # every query on this connection, to count them
    with CaptureQueriesContext(connection) as page_queries:
        client.get(url)
    insights.PANEL_THREADS = threads
    with CaptureQueriesContext(connection) as warm_queries:
        client.get(url)
    load_end = os.getloadavg()
    n_grids = Grid.objects.filter(lab=lab).count()
    ms = lambda v: "–" if v is None else f"{v:.0f} ms"  # noqa: E731
    lines = [
        f"## QC dashboard at scale ({vendor})\n",
        f"{_table_of_counts(counts)} ({filled}); {vendor}. Command: `python -m bench.run --only bench.dashboard`"
        + (" with `BENCH_DASHBOARD_DATABASE_URL`" if url_env else "")
        + ".\n",
        f"Fresh computation of every panel (the work of a request whose answer is not cached), median of {repeats}; "
        "*before* is the aggregation as it was (kept in `bench/dashboard_before.py`), *after* the reworked one, "
        "run alternately in this process on the same data. Reconstruction's panel is new and has no *before*; "
        "the last column includes it.\n",
        "| Filters | Before | After | After, with the reconstruction panel | Speed-up |",
        "|---|---|---|---|---|",
        *[f"| {label} | {b:.0f} ms | {a:.0f} ms | {t:.0f} ms | {b / a:.1f}× |" for label, (b, a, t) in whole.items()],
        "",
        "Per panel (no filter, median of 3):\n",
        "| Panel | Before | After | Queries after |",
        "|---|---|---|---|",
        *[f"| {title} | {ms(b)} | {ms(a)} | {nq} |" for title, b, a, nq in per_panel],
        "",
        "The page `GET /grids/qc/` through Django's test client (server time, with session, filter form, data "
        f"version and template), median of {repeats * 2}; the panels run on {threads} database connections at "
        "once (`LIMS_DASHBOARD_THREADS`), or one after the other on the request's connection:\n",
        "| Request | Median | Min | Queries |",
        "|---|---|---|---|",
        f"| all {n_grids:,} grids, no filter, computed (cache empty), panels one after the other "
        f"| {statistics.median(page_serial) * 1000:.0f} ms | {min(page_serial) * 1000:.0f} ms | {len(page_queries)} |",
        f"| all {n_grids:,} grids, no filter, computed (cache empty), panels on {threads} connections "
        f"| {statistics.median(page_whole) * 1000:.0f} ms | {min(page_whole) * 1000:.0f} ms | {len(page_queries)} |",
        f"| grid type + plunge freezing + date, computed | {statistics.median(page_narrow) * 1000:.0f} ms "
        f"| {min(page_narrow) * 1000:.0f} ms | {len(page_queries)} |",
        f"| data unchanged since the last request (cached answer) | {statistics.median(page_warm) * 1000:.0f} ms "
        f"| {min(page_warm) * 1000:.0f} ms | {len(warm_queries)} |",
        "",
        "Budget: 300 ms for the whole page. The panels read `characterization.GridSummary` (one row a grid, kept "
        "by the services), so each is one grouped query over it or over one table joined to it. The query count "
        "is fixed (tests/grids/test_qc_dashboard.py asserts the same number at 40 and 440 grids; the panels' "
        "queries run on the request's connection inside a transaction, as there). An answer is also kept with the "
        "data's version (newest id of each table the figures read): while it is current the page is served from "
        "the cache; once newer records exist the page shows it, marked, and a task recomputes it.\n",
        f"Load average (1/5/15 min) at the first timing: {load_start[0]:.2f} / {load_start[1]:.2f} / "
        f"{load_start[2]:.2f}; at the last: {load_end[0]:.2f} / {load_end[1]:.2f} / {load_end[2]:.2f} "
        f"({os.cpu_count()} cores).\n",
    ]
    return "\n".join(lines)


def _count_rows(lab) -> dict:
    from beamtime.models import BeamtimeSession, SampleSheetEntry
    from characterization.models import Check, CheckImage, QCDecision
    from grids.models import Grid, GridTransition
    from reconstruction.models import Dataset, ReconstructionJob, Volume

    return {
        "grids": Grid.objects.filter(lab=lab).count(),
        "transitions": GridTransition.objects.filter(grid__lab=lab).count(),
        "checks": Check.objects.filter(lab=lab).count(),
        "images": CheckImage.objects.filter(lm_check__lab=lab).count(),
        "decisions": QCDecision.objects.filter(lab=lab).count(),
        "sessions": BeamtimeSession.objects.filter(lab=lab).count(),
        "entries": SampleSheetEntry.objects.filter(session__lab=lab).count(),
        "datasets": Dataset.objects.filter(lab=lab).count(),
        "jobs": ReconstructionJob.objects.filter(lab=lab).count(),
        "volumes": Volume.objects.filter(lab=lab).count(),
    }
