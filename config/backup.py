"""Backup and restore of a whole installation: the database of every app and the stored files.

`manage.py lims_backup DIR` writes into DIR (new or empty):

- `database.json`: `dumpdata` of every app with natural foreign keys (content types and permissions are
  rebuilt by `migrate`, so they are left out, and so are sessions: a backup carries no one's login);
- `media/…`: every file under MEDIA_ROOT, as it is;
- `manifest.json`: the SHA-256 and size of every file above, the row count of every model, and the
  migrations the database was at.

`manage.py lims_restore DIR` checks the manifest first (every file present with its checksum and no file
the manifest does not list), refuses an installation that is not empty (any user, any record beyond the
reference rows the migrations create, any stored file) or whose migrations differ from the backup's,
then loads the database in one transaction and copies the files; it finally compares every model's row
count and every file's checksum with the manifest.

Files registered in place under LIMS_DATA_ROOTS (datasets kept where the beamline wrote them) are not
under MEDIA_ROOT and are not in the backup; the manifest lists their paths so they can be copied with
the facility's own tools.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.management import call_command
from django.db import connection, transaction
from django.db.migrations.recorder import MigrationRecorder

FORMAT = 1
DATABASE = "database.json"
MANIFEST = "manifest.json"
MEDIA = "media"
# Rebuilt by `migrate` (content types, permissions) or not worth keeping (sessions: logins).
EXCLUDED = ("contenttypes", "auth.permission", "sessions")
# Reference rows that data migrations create in every installation: an empty installation has them, and
# a restore replaces them with the backup's (which may have been edited since).
SEEDED_BY_MIGRATIONS = (
    "beamtime.QualityRule",
    "beamtime.QualityPolicy",
    "beamtime.Beamline",
    "beamtime.Facility",
    "grids.GridType",
)
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Summary:
    rows: int
    models: int
    files: int
    bytes: int


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy(source: Path, target: Path) -> str:
    """Copy `source` to `target` (through a temporary name, renamed when complete); the SHA-256 of what
    was written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    digest = hashlib.sha256()
    try:
        with open(source, "rb") as reader, open(partial, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _models():
    return [m for m in apps.get_models(include_auto_created=True) if not m._meta.proxy and m._meta.managed]


def _label(model) -> str:
    return model._meta.label


def _excluded(model) -> bool:
    return model._meta.app_label in EXCLUDED or model._meta.label_lower in EXCLUDED


def row_counts() -> dict[str, int]:
    """Rows per model (every concrete model, the many-to-many tables included)."""
    return {_label(m): m._base_manager.count() for m in _models()}


def _media_files(root: Path) -> list[Path]:
    if not root.exists():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def media_checksums(root: Path | None = None) -> dict[str, str]:
    """SHA-256 of every file under MEDIA_ROOT, by its path relative to it."""
    root = Path(root or settings.MEDIA_ROOT)
    return {p.relative_to(root).as_posix(): _sha256(p) for p in _media_files(root)}


def _migrations() -> dict[str, str]:
    applied: dict[str, list[str]] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        applied.setdefault(app, []).append(name)
    return {app: sorted(names)[-1] for app, names in sorted(applied.items())}


def _outside_paths() -> list[str]:
    """Datasets registered in place under the data roots (not stored under MEDIA_ROOT)."""
    from reconstruction.models import Dataset

    return sorted(set(Dataset._base_manager.exclude(source_path="").values_list("source_path", flat=True)))


def backup_create(directory: Path) -> Summary:
    """Write the database, the stored files and the manifest into `directory` (new or empty)."""
    directory = Path(directory)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise BackupError(f"{directory} is not empty: give a new or empty folder, so no older backup is mixed in.")
    directory.mkdir(parents=True, exist_ok=True)
    media_root = Path(settings.MEDIA_ROOT)
    files: dict[str, dict] = {}
    # One transaction, so the rows and their counts are one moment's (PostgreSQL: repeatable read).
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if connection.vendor == "postgresql" and outermost:  # must be the transaction's first statement
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        counts = {label: n for label, n in row_counts().items() if not _excluded(apps.get_model(label))}
        call_command(
            "dumpdata", *[f"--exclude={name}" for name in EXCLUDED], natural_foreign=True,
            output=str(directory / DATABASE), indent=None, verbosity=0,
        )  # fmt: skip
        migrations = _migrations()
        outside = _outside_paths()
    files[DATABASE] = {"sha256": _sha256(directory / DATABASE), "bytes": (directory / DATABASE).stat().st_size}
    total = 0
    for path in _media_files(media_root):
        relative = path.relative_to(media_root).as_posix()
        target = directory / MEDIA / relative
        files[f"{MEDIA}/{relative}"] = {"sha256": _copy(path, target), "bytes": target.stat().st_size}
        total += target.stat().st_size
    manifest = {
        "format": FORMAT,
        "created_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "database_vendor": connection.vendor,
        "migrations": migrations,
        "rows": counts,
        "files": files,
        "not_included": {"registered_in_place": outside},
    }
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return Summary(rows=sum(counts.values()), models=len(counts), files=len(files) - 1, bytes=total)


def _read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    if not path.is_file():
        raise BackupError(f"{directory} has no {MANIFEST}: it is not a backup made by lims_backup.")
    try:
        manifest = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as error:
        raise BackupError(f"{path} cannot be read ({error}); the backup is damaged.") from None
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or not isinstance(manifest.get("files"), dict)
    ):
        raise BackupError(f"{path} is not a manifest of format {FORMAT}; the backup is damaged or of another version.")
    return manifest


def backup_verify(directory: Path) -> dict:
    """The manifest, once every file it lists is present with its checksum and nothing else is there."""
    directory = Path(directory)
    manifest = _read_manifest(directory)
    listed = manifest["files"]
    if DATABASE not in listed:
        raise BackupError(f"The manifest lists no {DATABASE}; the backup is damaged.")
    present = {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()} - {MANIFEST}
    if missing := sorted(set(listed) - present):
        raise BackupError(f"The manifest does not match the backup: {len(missing)} file(s) missing, e.g. {missing[0]}.")
    if extra := sorted(present - set(listed)):
        raise BackupError(
            f"The manifest does not match the backup: {len(extra)} file(s) it does not list, e.g. {extra[0]}."
        )
    for name, entry in sorted(listed.items()):
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise BackupError(f"The manifest names a file outside the backup ({name}); refusing it.")
        if _sha256(directory / name) != entry.get("sha256"):
            raise BackupError(
                f"The manifest does not match the backup: the checksum of {name} differs (changed or damaged)."
            )
    return manifest


def installation_contents() -> list[str]:
    """What makes this installation not empty: models with rows beyond the migrations' reference rows, and
    stored files."""
    found = []
    for label, count in row_counts().items():
        model = apps.get_model(label)
        if count and not _excluded(model) and label not in SEEDED_BY_MIGRATIONS:
            found.append(f"{count} {label}")
    files = _media_files(Path(settings.MEDIA_ROOT))
    if files:
        found.append(f"{len(files)} stored file(s) under {settings.MEDIA_ROOT}")
    return found


def backup_restore(directory: Path) -> Summary:
    """Restore a backup made by `backup_create` into this empty installation (migrated, no data)."""
    directory = Path(directory)
    manifest = backup_verify(directory)
    if contents := installation_contents():
        raise BackupError(
            "This installation is not empty (" + ", ".join(contents[:5]) + (", …" if len(contents) > 5 else "")
            + "): restore only into a new database and an empty MEDIA_ROOT, so nothing is overwritten."
        )  # fmt: skip
    if (here := _migrations()) != manifest.get("migrations"):
        differ = sorted(
            app for app in set(here) | set(manifest.get("migrations", {}))
            if here.get(app) != manifest["migrations"].get(app)
        )  # fmt: skip
        raise BackupError(
            "The backup was made at other migrations than this installation has (" + ", ".join(differ[:5])
            + "): run the version of SXT LIMS that made it, restore, then upgrade with `manage.py migrate`."
        )  # fmt: skip
    media_root = Path(settings.MEDIA_ROOT)
    copied: list[Path] = []
    try:
        with transaction.atomic():
            for label in SEEDED_BY_MIGRATIONS:  # the backup holds them, as they were there
                queryset = apps.get_model(label)._base_manager.all()
                queryset._raw_delete(queryset.db)  # no signals: a history row per deletion is not wanted
            call_command("loaddata", str(directory / DATABASE), verbosity=0)
            for name, entry in sorted(manifest["files"].items()):
                if not name.startswith(f"{MEDIA}/"):
                    continue
                target = media_root / name[len(MEDIA) + 1 :]
                copied.append(target)
                if _copy(directory / name, target) != entry["sha256"]:
                    raise BackupError(f"{name} changed while it was restored; nothing was restored.")
            counts = {label: n for label, n in row_counts().items() if not _excluded(apps.get_model(label))}
            if differ := sorted(
                k for k in set(counts) | set(manifest["rows"]) if counts.get(k, 0) != manifest["rows"].get(k, 0)
            ):
                raise BackupError(
                    "After loading, the row counts differ from the manifest (" + ", ".join(differ[:5])
                    + "); nothing was restored."
                )  # fmt: skip
    except BaseException:
        for path in copied:
            path.unlink(missing_ok=True)
        raise
    files = [n for n in manifest["files"] if n.startswith(f"{MEDIA}/")]
    return Summary(
        rows=sum(manifest["rows"].values()), models=len(manifest["rows"]), files=len(files),
        bytes=sum(manifest["files"][n]["bytes"] for n in files),
    )  # fmt: skip


def remove_partial(directory: Path) -> None:
    """Remove a backup folder that failed half-way (used by the command when it created the folder)."""
    shutil.rmtree(directory, ignore_errors=True)
