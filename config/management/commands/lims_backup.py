"""manage.py lims_backup DIR: the database of every app and the stored files, with a manifest of checksums."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config import backup


class Command(BaseCommand):
    help = (
        "Back up the whole installation into DIR (new or empty): database.json (every app, natural keys), "
        "media/ (every stored file) and manifest.json (SHA-256 of each file, rows per model, migrations)."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="a new or empty folder")

    def handle(self, *args, directory: Path, **options):
        created = not directory.exists()
        try:
            summary = backup.backup_create(directory)
        except backup.BackupError as error:
            raise CommandError(str(error)) from None
        except BaseException:
            if created:
                backup.remove_partial(directory)  # no half-written backup that looks like one
            raise
        self.stdout.write(
            f"Backed up {summary.rows} rows of {summary.models} models and {summary.files} files "
            f"({summary.bytes / 1e6:.1f} MB) into {directory}."
        )
