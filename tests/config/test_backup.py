"""Backup and restore (manage.py lims_backup / lims_restore): the round trip loses nothing, and a restore
refuses a non-empty installation or a backup that does not match its manifest, changing nothing."""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import pytest
from django.apps import apps
from django.conf import settings
from django.core.management import CommandError, call_command
from django.test import TestCase

from config import backup
from tests.conftest import REFERENCE_DATA
from tests.lims import urlmap


def _empty_installation():
    """What a new installation is after `migrate`: no rows but the migrations' reference rows, no files."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    postgres = connection.vendor == "postgresql"
    if postgres:  # TRUNCATE refuses tables with foreign-key checks still pending in this test's transaction
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    call_command("flush", interactive=False, verbosity=0)
    if postgres:  # back to Django's deferred checks, which loading rows in any order relies on
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
    state_apps = MigrationExecutor(connection).loader.project_state().apps  # the models as migrations see them
    for module_name, function in REFERENCE_DATA:
        getattr(importlib.import_module(module_name), function)(state_apps, None)
    shutil.rmtree(settings.MEDIA_ROOT, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_content_type_cache():
    """A flush recreates content types; the cache must not keep their ids past this test's rollback."""
    from django.contrib.contenttypes.models import ContentType

    yield
    ContentType.objects.clear_cache()


def _state():
    return backup.row_counts(), backup.media_checksums()


@pytest.fixture
def populated(db, settings, tmp_path):
    """One record of every kind (the permission matrix's world), with its stored files, plus an admin
    log entry (a content-type foreign key, written with natural keys)."""
    from django.contrib.admin.models import ADDITION, LogEntry
    from django.contrib.contenttypes.models import ContentType

    from config.celery import app

    app.conf.task_always_eager = True
    world = urlmap.build_world(Path(settings.MEDIA_ROOT))
    LogEntry.objects.create(
        user=world.users["superuser"], content_type=ContentType.objects.get_for_model(world.lab),
        object_id=str(world.lab.pk), object_repr=str(world.lab), action_flag=ADDITION,
    )  # fmt: skip
    return world


def test_round_trip_keeps_every_row_and_every_file(populated, tmp_path):
    counts, files = _state()
    assert counts["reconstruction.Volume"] == 1 and counts["characterization.CheckImage"] == 1
    assert len(files) >= 5, files  # the image and its previews, the dataset, the volume and its previews
    target = tmp_path / "backup"
    call_command("lims_backup", str(target), verbosity=0)
    manifest = json.loads((target / "manifest.json").read_text())
    assert manifest["files"]["database.json"]["sha256"] == backup._sha256(target / "database.json")
    assert {name[len("media/") :] for name in manifest["files"] if name.startswith("media/")} == set(files)

    _empty_installation()
    assert backup.installation_contents() == []
    assert backup.row_counts()["auth.User"] == 0 and not backup.media_checksums()
    with TestCase.captureOnCommitCallbacks(execute=False):
        call_command("lims_restore", str(target), verbosity=0)
    restored_counts, restored_files = _state()
    assert {k: v for k, v in restored_counts.items() if not k.startswith("sessions.")} == {
        k: v for k, v in counts.items() if not k.startswith("sessions.")
    }
    assert restored_files == files
    # Natural keys: the log entry points at the Lab content type of this installation.
    from django.contrib.admin.models import LogEntry

    entry = LogEntry.objects.get()
    assert entry.content_type.model_class()._meta.label == "lims.Lab"
    assert entry.get_edited_object().code == "LABA"


def test_restore_refuses_an_installation_that_is_not_empty(populated, tmp_path):
    target = tmp_path / "backup"
    call_command("lims_backup", str(target), verbosity=0)
    before = _state()
    with pytest.raises(CommandError, match="not empty"):
        call_command("lims_restore", str(target), verbosity=0)
    assert _state() == before


@pytest.mark.parametrize("damage", ["changed file", "missing file", "extra file", "changed database"])
def test_restore_refuses_a_backup_that_does_not_match_its_manifest(populated, tmp_path, damage):
    target = tmp_path / "backup"
    call_command("lims_backup", str(target), verbosity=0)
    media = sorted(p for p in (target / "media").rglob("*") if p.is_file())
    if damage == "changed file":
        content = bytearray(media[0].read_bytes())
        content[len(content) // 2] ^= 0xFF
        media[0].write_bytes(bytes(content))
    elif damage == "missing file":
        media[0].unlink()
    elif damage == "extra file":
        (target / "media" / "stray.txt").write_text("not in the manifest")
    else:
        with open(target / "database.json", "a") as handle:
            handle.write(" ")
    _empty_installation()
    before = _state()
    with pytest.raises(CommandError, match="manifest does not match"):
        call_command("lims_restore", str(target), verbosity=0)
    assert _state() == before


def test_backup_refuses_a_folder_that_is_not_empty(db, tmp_path):
    (tmp_path / "old.json").write_text("{}")
    with pytest.raises(CommandError, match="not empty"):
        call_command("lims_backup", str(tmp_path), verbosity=0)
    assert [p.name for p in tmp_path.iterdir()] == ["old.json"]


def test_only_the_listed_reference_models_have_rows_after_migrate(db):
    """The reference rows an empty installation may hold are exactly what the data migrations create
    (a new data migration must be added to SEEDED_BY_MIGRATIONS, or restores would refuse every
    installation)."""
    seeded = {label for label, n in backup.row_counts().items() if n and not backup._excluded(apps.get_model(label))}
    assert seeded == set(backup.SEEDED_BY_MIGRATIONS)
