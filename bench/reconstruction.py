"""Reconstruction jobs benchmark: from accept to volume on one and on two Celery workers, against the engine
called directly.

The issue's case: a 256×256-pixel, 64-slice tilt series of 131 tilts (±65° in 1° steps), simulated from the
engine's cell phantom, reconstructed by the default job (SIRT) into a 64 × 256 × 256 volume. Each worker is
one process pinned to one thread (NUMBA_NUM_THREADS=1, OMP_NUM_THREADS=1, pool solo), so the 2-worker ratio
shows distribution and not threading. The timed path is the product's: `dataset_decide(accept=True)` → job
and slabs recorded → tasks through a real broker → slabs on the workers → assembly (MRC, previews, histogram,
even/odd FSC) → `succeeded`. "Direct" is the engine on the same data in one thread, through the call each slab
makes (`services.run_engine`: `reconstruction.engine.reconstruct` with the job's parameters), with no job around it.
After the jobs, the engine alone runs the last 2-worker job's split (each process's slabs as the engine's own calls,
one after another here, then the FSC): what that split allows before any queue, database or assembly, so the report
tells the engine's cost of cutting the volume apart from what the job machinery loses.

It runs in a subprocess on PostgreSQL and Redis when they answer (BENCH_DATABASE_URL, default database
`lims_bench` on 127.0.0.1; Redis db 14), else on a SQLite file and the file-system broker (the embedded default).

Run alone: ``python -m bench.run --only bench.reconstruction``.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PINNED = {"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _services_env(folder: Path) -> dict[str, str]:
    env = dict(os.environ, **PINNED, DJANGO_SETTINGS_MODULE="config.settings", MEDIA_ROOT=str(folder / "media"))
    env["LIMS_VAR_DIR"] = str(folder / "var")
    try:
        import psycopg
        import redis

        url = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/lims_bench")
        admin = url.rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
            conn.execute("DROP DATABASE IF EXISTS lims_bench WITH (FORCE)")
            conn.execute("CREATE DATABASE lims_bench")
        redis.Redis(host="127.0.0.1", port=6379, db=14, socket_connect_timeout=3).flushdb()
        env["DATABASE_URL"] = url
        env["CELERY_BROKER_URL"] = "redis://127.0.0.1:6379/14"
        env["BENCH_BACKEND"] = "PostgreSQL + Redis"
    except Exception:  # no servers: the embedded default
        env["DATABASE_URL"] = f"sqlite:///{folder / 'bench.sqlite3'}"
        env["CELERY_BROKER_URL"] = "filesystem://"
        env["BENCH_BACKEND"] = "SQLite + file-system broker"
    return env


def _start_workers(count: int, env: dict[str, str], folder: Path) -> list[subprocess.Popen]:
    workers = []
    for i in range(count):
        log = folder / f"worker-{i}.log"
        workers.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--pool=solo",
                    "--concurrency=1",
                    "--without-gossip",
                    "--without-mingle",
                    "--without-heartbeat",
                    "-n",
                    f"bench{i}@%h",
                    "--loglevel=WARNING",
                ],
                cwd=ROOT,
                env=env,
                stdout=open(log, "w"),
                stderr=subprocess.STDOUT,
            )  # fmt: skip
        )
    time.sleep(6)  # solo workers log nothing at WARNING when ready; give them time to connect
    return workers


def _stop(workers: list[subprocess.Popen]) -> None:
    for worker in workers:
        worker.terminate()
    for worker in workers:
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()


def _measure(repeats: int, quick: bool) -> dict:
    """In the subprocess (Django configured by env): set up the data, time the jobs, time the engine."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import numpy as np
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from beamtime.models import Beamline, BeamtimeSession, Proposal, SampleSheetEntry
    from grids import services as grid_services
    from grids.models import Grid, GridType
    from lims.models import Lab, Membership
    from reconstruction import services
    from reconstruction.engine import io as engine_io
    from reconstruction.engine.phantoms import cell_phantom
    from reconstruction.engine.simulate import simulate_tilt_series, tilt_angles
    from reconstruction.models import JobState, ReconstructionJob, Volume

    rows, columns = (16, 128) if quick else (64, 256)
    pixel = 0.02
    phantom = cell_phantom((rows, columns, columns), pixel, seed=1)
    angles = tilt_angles(65.0, 1.0)
    series = simulate_tilt_series(phantom.volume, angles, pixel, photons=1e4, seed=2)
    user = get_user_model().objects.create(username="bench")
    lab = Lab.objects.create(code="BENCH", name="Bench lab")
    Membership.objects.create(lab=lab, user=user, role="lab_admin")
    lot = grid_services.grid_lot_create(
        lab=lab, grid_type=GridType.objects.first(), lot_number="B-1", quantity=1, by=user
    )
    grid = grid_services.grids_register(lot=lot, count=1, by=user)[0]
    Grid.objects.filter(pk=grid.pk).update(state="shipped")  # set up, not measured: the bench starts at the beamline
    grid.refresh_from_db()
    beamline = Beamline.objects.first()
    proposal = Proposal.objects.create(
        facility=beamline.facility, number="BENCH", lab=lab, principal_investigator="x", title="x", shifts_allocated=3,
        valid_from=timezone.localdate(), valid_until=timezone.localdate(), created_by=user,
    )  # fmt: skip
    start = timezone.now()
    session = BeamtimeSession.objects.create(
        beamline=beamline, proposal=proposal, lab=lab, start=start, end=start + timezone.timedelta(hours=8),
        shifts=1, freeze_at=start, created_by=user,
    )  # fmt: skip
    SampleSheetEntry.objects.create(session=session, grid=grid, position=1, gate_passed=True, added_by=user)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.mrc"
        engine_io.write_mrc(path, series.projections, pixel)
        dataset = services.dataset_create(
            by=user, session=session, grid=grid, local_path=path, name=path.name, keep="copy",
            angles=[float(a) for a in angles],
        )  # fmt: skip
    from reconstruction.models import Dataset, DatasetStatus

    Dataset.objects.filter(pk=dataset.pk).update(
        status=DatasetStatus.ACCEPTED, decided_by=user, decided_at=timezone.now()
    )
    dataset.refresh_from_db()

    def one_job() -> tuple[float, dict]:
        Volume.objects.filter(job__dataset=dataset).delete()
        ReconstructionJob.objects.filter(dataset=dataset).delete()
        t0 = time.perf_counter()
        # Alignment off: the engine call it is compared with takes the projections as they are.
        job, _ = services.job_request(dataset=dataset, method="sirt", parameters={"align": False}, by=user)
        while True:
            job.refresh_from_db()
            if job.state in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED):
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - t0
        if job.state != JobState.SUCCEEDED:
            raise RuntimeError(f"bench job {job.state}: {job.error}")
        slabs = list(job.slabs.all())
        return elapsed, {
            "slabs": job.slab_count,
            "all_slabs": len(slabs),
            "slab_seconds": sum(s.seconds or 0 for s in slabs),
            "volume_slab_seconds": sum(s.seconds or 0 for s in slabs if s.part == "volume"),
            "iterations": job.parameters.get("iterations"),
            # which process ran what: the split whose engine work split_engine() times
            "layout": [[s.part, s.start, s.stop, s.worker] for s in sorted(slabs, key=lambda s: s.index)],
        }

    results = {"backend": os.environ.get("BENCH_BACKEND"), "shape": [len(angles), rows, columns]}
    # The job's own parameters (its noise-aware SIRT count, measured once on the whole series).
    params = services.normalise_parameters("sirt", {"align": False}, dataset)
    services.projections_of(dataset)  # read once, as each worker does before its first slab
    start, stop = services.fsc_halves(dataset)
    from reconstruction.engine.quality import fourier_shell_correlation

    def slab_engine(part: str, rows: slice | None = None) -> np.ndarray:
        # the engine call a job's slab of this part and these rows makes, without the job around it
        return services.run_engine(dataset, "sirt", params, rows=rows, tilts=services.HALF_TILTS.get(part))

    direct, volume_only, fsc_only = [], [], []
    for _ in range(repeats):
        # The same engine work as the job, in one process: the volume, then the even and odd halves of the central
        # band and their FSC (the job's machinery is what the job adds on top of these).
        t0 = time.perf_counter()
        slab_engine("volume")
        t1 = time.perf_counter()
        halves = [slab_engine(part, slice(start, stop)) for part in ("even", "odd")]
        t2 = time.perf_counter()
        fourier_shell_correlation(*halves, pixel_size_um=pixel)
        direct.append(time.perf_counter() - t0)
        volume_only.append(t1 - t0)
        fsc_only.append(time.perf_counter() - t2)
    results["direct"] = direct
    results["volume_only"] = volume_only
    results["fsc"] = fsc_only

    def split_engine(layout: list, repeats: int) -> list[float]:
        """The engine alone on a job's split: each process's slabs as the engine's own calls, one after another
        in this process, and the FSC once; the busier process's time, per repeat."""
        busiest = []
        for _ in range(repeats):
            per_worker: dict[str, float] = {}
            for part, first, stop, worker in layout:
                t0 = time.perf_counter()
                slab_engine(part, slice(first, stop))
                per_worker[worker] = per_worker.get(worker, 0.0) + time.perf_counter() - t0
            busiest.append(max(per_worker.values()) + statistics.median(fsc_only))
        return busiest

    results["one_job"] = one_job
    results["split_engine"] = split_engine
    return results


def _child(repeats: int, quick: bool, workers: int) -> None:
    results = _measure(repeats, quick)
    one_job = results.pop("one_job")
    split_engine = results.pop("split_engine")
    folder = Path(os.environ["BENCH_FOLDER"])
    env = dict(os.environ)
    timings: dict[str, list[float]] = {}
    details = {}
    for count in (1, 2)[:workers]:
        started = _start_workers(count, env, folder)
        try:
            one_job()  # warm-up: numba compiles in each worker
            runs = [one_job() for _ in range(repeats)]
        finally:
            _stop(started)
        timings[str(count)] = [r[0] for r in runs]
        details[str(count)] = runs[-1][1]
    results["jobs"] = timings
    results["details"] = details
    if str(workers) in details:  # the engine bound of the split the last job of the most workers ran
        results["split_engine"] = split_engine(details[str(workers)]["layout"], len(results["direct"]))
    print("BENCH-RESULT " + json.dumps(results))


def run(quick: bool = False) -> str:
    repeats = 1 if quick else 3
    folder = Path(tempfile.mkdtemp(prefix="lims-bench-"))
    try:
        env = _services_env(folder)
        env["BENCH_FOLDER"] = str(folder)
        done = subprocess.run(
            [sys.executable, "-m", "bench.reconstruction", str(repeats), "1" if quick else "0"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600,
        )  # fmt: skip
        line = next((ln for ln in done.stdout.splitlines() if ln.startswith("BENCH-RESULT ")), None)
        if line is None:
            return f"## Reconstruction jobs\n\nThe benchmark did not finish:\n\n```\n{(done.stdout + done.stderr)[-3000:]}\n```\n"
        data = json.loads(line.split(" ", 1)[1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    direct = statistics.median(data["direct"])
    volume_only = statistics.median(data["volume_only"])
    one = statistics.median(data["jobs"]["1"])
    two = statistics.median(data["jobs"]["2"])
    tilts, rows, columns = data["shape"]
    d1, d2 = data["details"]["1"], data["details"]["2"]
    slab_work = d1["slab_seconds"]
    load = open("/proc/loadavg").read().split()[0] if Path("/proc/loadavg").exists() else "?"
    bound = _split_bound(data, direct, two)
    return "\n".join(
        [
            "## Reconstruction jobs: accept to volume",
            "",
            f"{tilts} tilts of {rows} × {columns} pixels (±65°, 1° steps, 10⁴ photons), default job (SIRT, "
            f"{d1['iterations']} noise-aware iterations, alignment off), volume {rows} × {columns} × {columns}; "
            f"{data['backend']}; each worker one process, one thread; median of {len(data['direct'])} runs after a "
            f"warm-up job; load average {load} at the end. The job cuts the volume into one slab per worker process "
            f"({d1['slabs']} on 1 worker, {d2['slabs']} on 2) and reconstructs the even and odd tilts of the central "
            f"band apart, as 2 more slabs, for the FSC.",
            "",
            "| path | median (s) | runs (s) |",
            "|---|---:|---|",
            f"| engine called directly, one thread: the volume, then the two FSC halves and their FSC | {direct:.2f} | "
            f"{', '.join(f'{t:.2f}' for t in data['direct'])} |",
            f"| of which the volume alone | {volume_only:.2f} | {', '.join(f'{t:.2f}' for t in data['volume_only'])} |",
            f"| job on 1 worker | {one:.2f} | {', '.join(f'{t:.2f}' for t in data['jobs']['1'])} |",
            f"| job on 2 workers | {two:.2f} | {', '.join(f'{t:.2f}' for t in data['jobs']['2'])} |",
            "",
            f"- 2 workers against 1: **{one / two:.2f}×** (aim ≥ 1.8×).",
            f"- Job on 1 worker against the engine doing the same work: **{(one / direct - 1) * 100:+.0f}%** (aim ≤ 15%); "
            f"against the volume alone {(one / volume_only - 1) * 100:+.0f}% (the FSC halves are the product's, not the "
            f"machinery's). Of the 1-worker job, {slab_work:.2f} s is the slabs' engine work "
            f"({(slab_work / direct - 1) * 100:+.0f}% against the direct calls); the rest is the queue, the database and "
            "the assembly (MRC, previews, histogram, FSC).",
            *bound,
            "",
        ]
    )


def _split_bound(data: dict, direct: float, two: float) -> list[str]:
    """What the engine allows for the 2-worker job's split, and how much of it the jobs reach."""
    if "split_engine" not in data:
        return []
    busiest = statistics.median(data["split_engine"])
    layout = data["details"]["2"]["layout"]
    per_worker: dict[str, list[str]] = {}
    for part, first, stop, worker in layout:
        label = f"slices {first}–{stop - 1}" if part == "volume" else f"the {part} half"
        per_worker.setdefault(worker, []).append(label)
    split = "; ".join(" then ".join(labels) for labels in per_worker.values())
    ratio = statistics.median(data["jobs"]["1"]) / two
    return [
        f"- The engine alone on the 2-worker job's split ({split}; each process's slabs as the engine's own calls, "
        f"one after another in one process, then the FSC): {busiest:.2f} s on the busier process (runs "
        f"{', '.join(f'{t:.2f}' for t in data['split_engine'])}), against {direct:.2f} s for the 1-worker work. So "
        f"this split allows at most **{direct / busiest:.2f}×** before any queue, database or assembly; the jobs' "
        f"{ratio:.2f}× is {ratio / (direct / busiest) * 100:.0f}% of it.",
    ]


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    _child(int(sys.argv[1]), sys.argv[2] == "1", 2)
