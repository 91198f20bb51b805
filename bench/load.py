"""Load test (issues 10 and 12): gunicorn on PostgreSQL, driven by wrk or locust from a second process, loopback only.

`run()` (the `bench.load` section of `make bench`) and `python -m bench.load` do the same:

1. prepare: create the PostgreSQL database if missing (BENCH_LOAD_DATABASE_URL, default
   postgres://postgres@127.0.0.1:5432/load_bench), migrate, fill it with `bench.dashboard.populate`
   (100 000 grids and their records; `--grids` for fewer) unless it holds that many already, and write
   the run's fixture (accounts with fresh passwords, API keys, ids) for bench/locustfile.py. This step
   runs in a child process, so this module never sets Django up itself;
2. serve: gunicorn (`config.wsgi`, DEBUG off) on a free loopback port, in its own process group, waited
   for until it answers and killed at the end whatever happens;
3. load: another process, one phase at a time: the four endpoints of issue 10 alone (back to back requests),
   then the mixed workload of issue 12. The list, filtered list and provenance phases run under wrk when it is
   installed (`--tool` chooses), whose C client leaves the 2 cores to the server; the CSV export (its row count
   is checked) and the mixed workload (logins, forms, uploads) under locust headless, its stats CSV read back;
4. report: a table per phase (requests, failures, median, 95th percentile, requests/s) and the load average.

`--check` (what .ci/run uses) exits 1 if any request failed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/load_bench"
LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


@dataclass
class Phase:
    key: str
    title: str
    classes: list[str]
    users: int
    seconds: int
    # For wrk: the row's name and the paths requested in turn, from the fixture; None where only locust runs it
    # (the CSV check counts rows, the mixed workload logs in and posts forms).
    wrk_paths: Callable[[dict], list[str]] | None = None
    wrk_name: str = ""


@dataclass
class Row:
    name: str
    requests: int
    failures: int
    median_ms: float
    p95_ms: float
    rps: float


@dataclass
class Result:
    phase: Phase
    rows: list[Row] = field(default_factory=list)
    load: tuple[float, float, float] = (0.0, 0.0, 0.0)
    failures: list[str] = field(default_factory=list)
    tool: str = "locust"


# --- 1. prepare (child process, Django set up on the bench database) ---------------------------------


def _ensure_database(url: str) -> None:
    """Create the database named by `url` on its server when it does not exist (PostgreSQL only)."""
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def prepare(*, db_url: str, n_grids: int, fixture_path: Path) -> dict:
    """Migrate and fill the bench database, then write the fixture the locust users read."""
    if db_url.startswith("postgres"):
        _ensure_database(db_url)
    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from bench.dashboard import populate
    from characterization.models import Check
    from grids.models import Grid, GridLot, GridType
    from lims.models import ApiToken, Lab, Membership, Role
    from lims.tokens import api_token_create

    call_command("migrate", verbosity=0, interactive=False)
    users = {}
    User = get_user_model()
    lab, _ = Lab.objects.get_or_create(code="LOAD", defaults={"name": "Load-test lab"})
    password = secrets.token_urlsafe(16)
    for role, lab_role in (("member", Role.MEMBER), ("reviewer", Role.QC_REVIEWER), ("api", Role.MEMBER)):
        user, _ = User.objects.get_or_create(username=f"load-{role}")
        user.set_password(password)
        user.save()
        Membership.objects.get_or_create(lab=lab, user=user, defaults={"role": lab_role})
        users[role] = user
    have = Grid.objects.filter(lab=lab).count()
    filled = "reused"
    if have < n_grids:
        started = time.perf_counter()
        populate(lab=lab, user=users["member"], n_grids=n_grids - have, seed=have)
        filled = f"filled in {time.perf_counter() - started:.0f} s"
        # VACUUM as well as ANALYZE: populate() moves every grid along its path after inserting it, which leaves
        # one dead row version per grid until autovacuum comes by. Left there, the list's index scan read about
        # 700 pages of them for its first row (1.4 ms of the server's time against 0.08 ms); a facility's
        # database is vacuumed continuously, so the bench measures it in that state.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    # A lot with room for every grid the bench members register during any number of runs.
    lot, _ = GridLot.objects.get_or_create(
        lab=lab, lot_number="LOAD-REGISTER",
        defaults={"grid_type": GridType.objects.order_by("pk").first(), "quantity": 10**6, "quantity_left": 10**6,
                  "created_by": users["member"]},
    )  # fmt: skip
    ApiToken.objects.filter(user__in=users.values()).delete()
    _, read_key = api_token_create(user=users["api"], name="load test, read", read_only=True)
    _, upload_key = api_token_create(user=users["api"], name="load test, upload")
    grids = Grid.objects.filter(lab=lab)
    total = grids.count()
    grid_type = lot.grid_type_id
    fixture = {
        "grids": total,
        "pages": max(1, total // 50),
        "filled": filled,
        "users": {role: [user.username, password] for role, user in users.items()},
        "user_ids": {role: user.pk for role, user in users.items()},
        "read_key": read_key,
        "upload_key": upload_key,
        "lot_id": lot.pk,
        "grid_type": grid_type,
        # The filtered list a person asks for most: one state of one grid type, newest first.
        "filtered_url": f"/api/v1/grids/?state=accepted&grid_type={grid_type}&page_size=50",
        "export_url": "/api/v1/grids/?state=registered&format=csv",
        "grid_ids": list(grids.filter(state="imaged").order_by("?").values_list("pk", flat=True)[:500]),
        "seeded_grid_ids": list(grids.filter(state="seeded").order_by("?").values_list("pk", flat=True)[:500]),
        "check_ids": list(Check.objects.filter(lab=lab).order_by("?").values_list("pk", flat=True)[:500]),
    }
    fixture_path.write_text(json.dumps(fixture))
    return fixture


# --- 2. serve -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(db_url: str, var_dir: Path) -> dict[str, str]:
    """Production-like settings over plain loopback HTTP: DEBUG off, a real secret, persistent database
    connections; LIMS_PRODUCTION's HTTPS-only cookies and redirect are left off (there is no TLS here)."""
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "LIMS_VAR_DIR": str(var_dir),  # uploads and the broker's queue of metrics tasks, thrown away after
        "LOG_LEVEL": "WARNING",
    }


def serve(
    *, db_url: str, port: int, workers: int, var_dir: Path, log: Path, pidfile: Path | None = None
) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"127.0.0.1:{port}", "--workers", str(workers), "--timeout", "300",
        "--error-logfile", "-", "--log-level", "warning",
        *(["--pid", str(pidfile)] if pidfile else []),  # for a caller's trap (.ci/run)
    ]  # fmt: skip
    server = subprocess.Popen(
        command, cwd=ROOT, env=server_env(db_url, var_dir), stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: killed with all its workers
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited ({server.returncode}); see {log}")
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/accounts/login/", timeout=5).read()
            return server
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    stop(server)
    raise RuntimeError(f"gunicorn did not answer within 120 s; see {log}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


# --- 3. load ------------------------------------------------------------------------------------------


def phases(*, quick: bool, seconds: int) -> list[Phase]:
    short = 10 if quick else 20
    readers = [
        Phase("list", "`GET /api/v1/grids/?page_size=50`", ["GridListReader"], 8, short,
              lambda f: ["/api/v1/grids/?page_size=50"], "grids ?page_size=50"),
        Phase("filtered", "filtered list `?state=accepted&grid_type=…&page_size=50`", ["GridFilterReader"], 8, short,
              lambda f: [f["filtered_url"]], "grids, filtered"),
        Phase("provenance", "`GET /api/v1/grids/{id}/provenance/`", ["ProvenanceReader"], 8, short,
              lambda f: [f"/api/v1/grids/{g}/provenance/" for g in f["grid_ids"]], "grids/{id}/provenance/"),
    ]  # fmt: skip
    return [
        *readers,
        Phase("csv", "`GET /api/v1/grids/?format=csv` (every grid)", ["CsvExporter"], 1, 30 if quick else 60),
        Phase("mixed", "mixed workload", ["ApiClient", "BenchMember", "Reviewer", "Uploader"], 12, seconds),
    ]


# wrk's script: the fixture's paths in turn with the read token, and its own summary on one line at the end.
WRK_SCRIPT = """
local paths = {%(paths)s}
local n = 0
wrk.headers["Authorization"] = "Token %(key)s"
wrk.headers["Accept"] = "application/json"
request = function()
  n = n %% #paths + 1
  return wrk.format("GET", paths[n])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("WRK-RESULT %%d %%d %%d %%d %%d\\n", summary.requests,
    e.connect + e.read + e.write + e.status + e.timeout, summary.duration, latency:percentile(50), latency:percentile(95)))
end
"""


def _run_measuring_load(command: list[str], **kwargs) -> tuple[subprocess.CompletedProcess, tuple[float, ...]]:
    """Run a load tool to its end; with it the higher of the load averages before and after, each of the three."""
    before = os.getloadavg()
    done = subprocess.run(command, capture_output=True, text=True, **kwargs)
    return done, tuple(max(a, b) for a, b in zip(before, os.getloadavg(), strict=True))


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def load_wrk(phase: Phase, *, port: int, fixture: dict, out: Path) -> Result:
    """One endpoint phase driven by wrk: C, one thread, `phase.users` connections sending back to back. locust's
    Python took a fifth of one of the 2 cores it shares with the server at 240 requests a second; wrk a few per
    cent. Failures are non-2xx answers and socket errors."""
    paths = phase.wrk_paths(fixture)
    script = out / f"{phase.key}.lua"
    script.write_text(WRK_SCRIPT % {"paths": ", ".join(json.dumps(p) for p in paths), "key": fixture["read_key"]})
    command = ["wrk", "-t1", f"-c{phase.users}", f"-d{phase.seconds}s", "--timeout", "30s", "-s", str(script),
               f"http://127.0.0.1:{port}{paths[0]}"]  # fmt: skip
    done, load = _run_measuring_load(command, timeout=phase.seconds + 120)
    result = Result(phase, load=load, tool="wrk")
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("WRK-RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    requests, failures, micros, median, p95 = (int(v) for v in line.split()[1:])
    result.rows.append(Row(phase.wrk_name, requests, failures, median / 1000, p95 / 1000, requests / (micros / 1e6)))
    if failures:
        result.failures.append(f"GET {phase.wrk_name}: {failures} non-2xx answers or socket errors (wrk)")
    return result


def load(phase: Phase, *, port: int, fixture_path: Path, out: Path) -> Result:
    prefix = out / phase.classes[0]
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", f"http://127.0.0.1:{port}",
        "-u", str(phase.users), "-r", str(phase.users), "-t", f"{phase.seconds}s", "--stop-timeout", "60",
        "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING", *phase.classes,
    ]  # fmt: skip
    env = {**os.environ, "LOAD_FIXTURE": str(fixture_path)}
    done, load = _run_measuring_load(command, cwd=ROOT, env=env, timeout=phase.seconds + 300)
    result = Result(phase, load=load)
    stats = Path(f"{prefix}_stats.csv")
    if not stats.is_file():
        raise RuntimeError(f"locust wrote no stats ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with stats.open() as handle:
        for line in csv.DictReader(handle):
            result.rows.append(
                Row(
                    name=line["Name"] if line["Type"] else "all",
                    requests=int(line["Request Count"]),
                    failures=int(line["Failure Count"]),
                    median_ms=float(line["50%"] or 0),
                    p95_ms=float(line["95%"] or 0),
                    rps=float(line["Requests/s"]),
                )
            )
    failures = Path(f"{prefix}_failures.csv")
    if failures.is_file():
        with failures.open() as handle:
            result.failures = [
                f"{r['Method']} {r['Name']}: {r['Error']} ×{r['Occurrences']}" for r in csv.DictReader(handle)
            ]
    if "Traceback" in done.stderr:
        result.failures.append("locust: " + done.stderr[done.stderr.index("Traceback") :][:2000])
    return result


# --- 4. report ------------------------------------------------------------------------------------------


def table(results: list[Result]) -> list[str]:
    lines = [
        "| Phase | Endpoint | Tool | Users | Requests | Failures | Median (ms) | 95th pct (ms) | Requests/s "
        "| Load avg (1 min) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        for row in result.rows:
            if len(result.rows) == 2 and row.name == "all":
                continue  # a one-endpoint phase: the aggregate repeats the endpoint
            lines.append(
                f"| {result.phase.title} | {row.name} | {result.tool} | {result.phase.users} | {row.requests:,} "
                f"| {row.failures} "
                f"| {row.median_ms:.0f} | {row.p95_ms:.0f} | {row.rps:.1f} | {result.load[0]:.2f} |"
            )
    return lines


def bench(
    *,
    db_url: str,
    n_grids: int,
    seconds: int,
    workers: int,
    quick: bool,
    only: list[str] | None = None,
    pidfile: Path | None = None,
    tool: str = "auto",
) -> tuple[str, list[Result]]:
    with tempfile.TemporaryDirectory(prefix="lims-load-") as tmp:
        folder = Path(tmp)
        fixture_path = folder / "fixture.json"
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "bench.load", "prepare", "--db", db_url, "--grids", str(n_grids),
             "--fixture", str(fixture_path)],
            cwd=ROOT, check=True,
        )  # fmt: skip
        prepared = time.perf_counter() - started
        fixture = json.loads(fixture_path.read_text())
        port = free_port()
        log = folder / "gunicorn.log"
        server = serve(db_url=db_url, port=port, workers=workers, var_dir=folder / "var", log=log, pidfile=pidfile)
        results = []
        try:
            for phase in phases(quick=quick, seconds=seconds):
                if only and phase.key not in only:
                    continue
                print(f"== load: {phase.title}, {phase.users} users, {phase.seconds} s", file=sys.stderr, flush=True)
                if phase.wrk_paths and tool != "locust" and (tool == "wrk" or wrk_available()):
                    results.append(load_wrk(phase, port=port, fixture=fixture, out=folder))
                else:
                    results.append(load(phase, port=port, fixture_path=fixture_path, out=folder))
        finally:
            stop(server)
        errors = [
            line for line in log.read_text(errors="replace").splitlines() if "[ERROR]" in line or "Traceback" in line
        ]
    command = (
        "python -m bench.load"
        + (" --quick" if quick else "")
        + f" --grids {n_grids} --seconds {seconds} --workers {workers}"
        + (f" --tool {tool}" if tool != "auto" else "")
    )
    lines = [
        "## Load test: gunicorn on PostgreSQL, locust from a second process (issues 10 and 12)\n",
        f"{fixture['grids']:,} grids with their records (`bench.dashboard.populate`; {fixture['filled']}, prepare took "
        f"{prepared:.0f} s) in PostgreSQL; gunicorn `config.wsgi` with {workers} sync workers, DEBUG off, persistent "
        "database connections; the load tool on the same machine, loopback only: wrk (C, one thread) for the "
        "single-endpoint phases where it is installed, locust 2 headless for the CSV export, the mixed workload and "
        "wherever wrk is not (the Tool column). Command: "
        f"`{command}` (or `make bench`).\n",
        "Issue 10's endpoints run one at a time, each user sending its next request as soon as the answer came "
        "(a read-only API token); the CSV export is one client fetching every grid again and again. The mixed "
        "workload runs its users together: API clients (lists, filtered lists, provenance, a filtered CSV), bench "
        "members (log in through the login page, register grids from a lot, record and edit checks, read grid "
        "pages), reviewers (review queue, check pages, check list) and an API script uploading 64×64 8-bit PNGs.\n",
        *table(results),
        "",
        f"Load average (1/5/15 min) at the end: {' / '.join(f'{v:.2f}' for v in os.getloadavg())} "
        f"({os.cpu_count()} cores, shared with the load tool).",
    ]
    failed = [f for r in results for f in r.failures]
    if failed or errors:
        lines += ["", "Failures:", "", *[f"- {f}" for f in failed + errors[:20]]]
    return "\n".join(lines) + "\n", results


def run(quick: bool = False) -> str:
    """The `bench.load` section of `make bench`."""
    db_url = os.environ.get("BENCH_LOAD_DATABASE_URL", DEFAULT_DB)
    text, _ = bench(db_url=db_url, n_grids=10_000 if quick else 100_000, seconds=60, workers=4, quick=quick)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", nargs="?", choices=["bench", "prepare"], default="bench")
    parser.add_argument("--db", default=os.environ.get("BENCH_LOAD_DATABASE_URL", DEFAULT_DB))
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--fixture", type=Path)
    parser.add_argument("--seconds", type=int, default=60, help="length of the mixed workload")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers")
    parser.add_argument("--quick", action="store_true", help="shorter single-endpoint phases")
    parser.add_argument("--phases", help="comma-separated: list,filtered,provenance,csv,mixed (default: all)")
    parser.add_argument("--check", action="store_true", help="exit 1 if any request failed (CI)")
    parser.add_argument("--pidfile", type=Path, help="where gunicorn writes its pid")
    parser.add_argument("--tool", choices=["auto", "wrk", "locust"], default="auto",
                        help="load tool of the single-endpoint phases (auto: wrk where installed)")  # fmt: skip
    args = parser.parse_args(argv)
    # A SIGTERM (CI's timeout, a trap) unwinds like Ctrl-C does, so the finally clause stops gunicorn.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.step == "prepare":
        prepare(db_url=args.db, n_grids=args.grids, fixture_path=args.fixture)
        return 0
    text, results = bench(
        db_url=args.db, n_grids=args.grids, seconds=args.seconds, workers=args.workers, quick=args.quick,
        only=args.phases.split(",") if args.phases else None, pidfile=args.pidfile, tool=args.tool,
    )  # fmt: skip
    print(text)
    failed = sum(row.failures for r in results for row in r.rows if row.name == "all" or r.tool == "wrk") + sum(
        1 for r in results for f in r.failures if f.startswith("locust:")
    )
    if args.check and failed:
        print(f"load test: {failed} failed request(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
