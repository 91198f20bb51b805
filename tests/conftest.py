"""Shared fixtures. Tasks run eagerly unless LIMS_REAL_WORKER=1 (then .ci/run has a worker up)."""

from __future__ import annotations

import os

import pytest
from rest_framework.test import APIClient

from tests.factories import LabFactory, MembershipFactory, UserFactory

REAL_WORKER = os.environ.get("LIMS_REAL_WORKER") == "1"


def pytest_collection_modifyitems(config, items):
    """Tests marked `postgres` prove what only PostgreSQL has (row locks under real concurrency,
    exclusion constraints); they are deselected, not skipped, on SQLite and run in CI's PostgreSQL
    pass (.ci/run)."""
    from django.conf import settings

    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        return
    deselected = [item for item in items if item.get_closest_marker("postgres")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("postgres")]


# Reference rows that data migrations create. A transactional test (threads, live server) ends
# with a flush that wipes them, so they are put back before each such test. Each app adds its
# (migration module, function) here.
REFERENCE_DATA = [
    ("grids.migrations.0002_grid_types", "create"),
    ("beamtime.migrations.0002_facilities_and_beamlines", "forwards"),
]


@pytest.fixture(autouse=True)
def _reference_rows(request):
    marker = request.node.get_closest_marker("django_db")
    transactional = (marker and marker.kwargs.get("transaction")) or "live_server" in request.fixturenames
    if not transactional:
        return
    import importlib

    from django.apps import apps

    request.getfixturevalue("_django_db_helper")
    for module_name, function in REFERENCE_DATA:
        getattr(importlib.import_module(module_name), function)(apps, None)


@pytest.fixture(autouse=True)
def _grid_summaries_kept(request):
    """After every database test, the dashboard's grid summaries kept by the services equal the ones a
    rebuild computes from the records: a service that changes a grid's facts and forgets to say so
    (grids.insights.grid_facts_changed) fails whichever test uses it. Tests that write records past the
    services on purpose (bulk loads, hand-made corruption) are marked `summaries_unchecked`."""
    marker = request.node.get_closest_marker("django_db")
    uses_db = marker is not None or "db" in request.fixturenames
    transactional = (marker and marker.kwargs.get("transaction")) or "live_server" in request.fixturenames
    if not uses_db or transactional or request.node.get_closest_marker("summaries_unchecked"):
        yield
        return
    request.getfixturevalue("db")  # torn down after this fixture: the check runs before the rollback
    yield
    from characterization.summaries import summaries_compare

    assert summaries_compare() == [], "grid summaries differ from their records (grid, field, kept, fresh)"


@pytest.fixture(autouse=True)
def _test_settings(request, settings, tmp_path):
    """Tasks run eagerly in-process, except in tests marked `worker` when LIMS_REAL_WORKER=1: those
    send them through the broker to the real worker of `celery_worker_process`."""
    settings.MEDIA_ROOT = tmp_path / "media"
    real = REAL_WORKER and request.node.get_closest_marker("worker") is not None
    if real:
        # The worker is another process: it must see the same files.
        settings.MEDIA_ROOT = _shared_media_root()
        request.getfixturevalue("celery_worker_process")
    settings.CELERY_TASK_ALWAYS_EAGER = not real
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    from config.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = not real
    yield
    app.conf.task_always_eager = previous


def _shared_media_root():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent / "var" / "test-worker-media"
    root.mkdir(parents=True, exist_ok=True)
    return root


@pytest.fixture
def lab(db):
    return LabFactory()


@pytest.fixture
def other_lab(db):
    return LabFactory()


@pytest.fixture
def member(lab):
    return MembershipFactory(lab=lab, role="member").user


@pytest.fixture
def lab_admin(lab):
    return MembershipFactory(lab=lab, role="lab_admin").user


@pytest.fixture
def reviewer(lab):
    return MembershipFactory(lab=lab, role="qc_reviewer").user


@pytest.fixture
def outsider(other_lab):
    return MembershipFactory(lab=other_lab, role="lab_admin").user


@pytest.fixture
def api(member):
    client = APIClient()
    client.force_authenticate(member)
    return client


@pytest.fixture
def api_for():
    def make(user):
        client = APIClient()
        client.force_authenticate(user)
        return client

    return make


@pytest.fixture
def web(client, member):
    client.force_login(member)
    return client


@pytest.fixture
def user(db):
    return UserFactory()


@pytest.fixture(scope="session")
def celery_worker_process(django_db_setup, django_db_blocker):
    """A real Celery worker (a separate process) on the test database, when LIMS_REAL_WORKER=1.

    .ci/run sets it with a Redis broker and PostgreSQL; without it tasks run eagerly in-process and
    this fixture yields None. Tests that use it need `@pytest.mark.django_db(transaction=True)` so
    the worker sees their rows.
    """
    if not REAL_WORKER:
        yield None
        return
    import subprocess
    import sys
    import time
    from pathlib import Path

    from django.db import connection

    settings_dict = connection.settings_dict
    env = dict(os.environ)
    env["MEDIA_ROOT"] = str(_shared_media_root())
    if settings_dict["ENGINE"].endswith("postgresql"):
        env["DATABASE_URL"] = (
            f"postgres://{settings_dict['USER'] or 'postgres'}@{settings_dict['HOST'] or '127.0.0.1'}:"
            f"{settings_dict['PORT'] or 5432}/{settings_dict['NAME']}"
        )
    else:
        env["DATABASE_URL"] = f"sqlite:///{settings_dict['NAME']}"
    root = Path(__file__).resolve().parent.parent
    log = root / "var" / "test-worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "config", "worker", "--loglevel=INFO", "--concurrency=2",
             "--without-gossip", "--without-mingle", "--pool=prefork"],
            cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            raise RuntimeError(f"The Celery worker did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    yield worker
    worker.terminate()
    try:
        worker.wait(timeout=20)
    except subprocess.TimeoutExpired:
        worker.kill()


@pytest.fixture
def wait_for():
    """Poll a condition (a real worker runs tasks asynchronously); fail with `what` after `timeout`."""
    import time

    def wait(condition, *, what: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"Timed out after {timeout:.0f} s waiting for {what}")

    return wait
