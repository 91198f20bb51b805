"""Database settings from the environment: what a facility gets on PostgreSQL unless it says otherwise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _database_settings(**env: str) -> dict:
    """settings.DATABASES["default"] as config/settings.py builds it in a fresh interpreter with `env`."""
    code = (
        "import json, django; from django.conf import settings; django.setup(); "
        "d = settings.DATABASES['default']; "
        "print(json.dumps({k: d.get(k) for k in ('ENGINE', 'CONN_MAX_AGE', 'CONN_HEALTH_CHECKS', 'OPTIONS')}))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_")}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**clean, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_on_postgresql_a_server_process_keeps_its_connection_with_a_health_check():
    found = _database_settings(DATABASE_URL="postgres://lims@db.example.org:5432/lims")
    assert found["ENGINE"].endswith("postgresql")
    assert found["CONN_MAX_AGE"] == 60 and found["CONN_HEALTH_CHECKS"] is True
    assert "jit=off" in found["OPTIONS"]["options"]
    assert found["OPTIONS"]["server_side_binding"] is True and found["OPTIONS"]["prepare_threshold"] == 5


def test_prepared_statements_can_be_switched_off_for_a_pooler_that_cannot_keep_them():
    found = _database_settings(
        DATABASE_URL="postgres://lims@db.example.org:5432/lims", DATABASE_PREPARED_STATEMENTS="0"
    )
    assert "server_side_binding" not in found["OPTIONS"] and "prepare_threshold" not in found["OPTIONS"]


@pytest.mark.parametrize(("env", "age", "checks"), [({"DATABASE_CONN_MAX_AGE": "0"}, 0, True),
                                                     ({"DATABASE_CONN_HEALTH_CHECKS": "0"}, 60, False)])  # fmt: skip
def test_a_facility_can_set_the_connection_age_and_health_check(env, age, checks):
    found = _database_settings(DATABASE_URL="postgres://lims@db.example.org:5432/lims", **env)
    assert found["CONN_MAX_AGE"] == age and found["CONN_HEALTH_CHECKS"] is checks


def test_with_postgresqls_jit_turned_back_on_the_other_options_still_apply():
    found = _database_settings(DATABASE_URL="postgres://lims@db.example.org:5432/lims", DATABASE_JIT="1")
    assert "options" not in found["OPTIONS"] and found["OPTIONS"]["server_side_binding"] is True


def test_sqlite_opens_a_connection_per_request_by_default(tmp_path):
    found = _database_settings(DATABASE_URL=f"sqlite:///{tmp_path / 'lims.sqlite3'}")
    assert found["ENGINE"].endswith("sqlite3") and found["CONN_MAX_AGE"] == 0
    assert found["CONN_HEALTH_CHECKS"] is False
