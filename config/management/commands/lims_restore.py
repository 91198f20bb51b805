"""manage.py lims_restore DIR: restore a backup of lims_backup into an empty installation."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from config import backup


class Command(BaseCommand):
    help = (
        "Restore a backup made by lims_backup into this installation, which must be empty (migrated, no users, "
        "no records, no stored files) and at the backup's migrations. Every checksum is verified first."
    )

    def add_arguments(self, parser):
        parser.add_argument("directory", type=Path, help="a folder written by lims_backup")

    def handle(self, *args, directory: Path, **options):
        try:
            summary = backup.backup_restore(directory)
        except backup.BackupError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(
            f"Restored {summary.rows} rows of {summary.models} models and {summary.files} files "
            f"({summary.bytes / 1e6:.1f} MB) from {directory}; every checksum and row count matches the manifest."
        )
