"""List (or delete) stored image files that no CheckImage refers to.

An upload stores its file inside the database transaction and removes it again if that transaction
fails; only a rollback of an enclosing transaction (a caller that wrapped the upload in its own
`atomic()`) can leave a file behind. This command finds such files.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from characterization.models import CheckImage


class Command(BaseCommand):
    help = "List stored characterization files without a database row; --delete removes them."

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="remove them (default: only list)")
        parser.add_argument(
            "--min-age-minutes", type=int, default=60, help="leave files younger than this (uploads in flight)"
        )

    def handle(self, *args, delete: bool = False, min_age_minutes: int = 60, **options):
        root = Path(settings.MEDIA_ROOT)
        folder = root / "characterization"
        if not folder.exists():
            self.stdout.write("No stored characterization files.")
            return
        known: set[str] = set()
        for image in CheckImage.objects.only("file", "preview", "thumbnail", "channel_previews"):
            known.update(n for n in (image.file.name, image.preview.name, image.thumbnail.name) if n)
            known.update(c.get("file", "") for c in image.channel_previews or [])
        cutoff = time.time() - 60 * min_age_minutes
        orphans = [
            path
            for path in folder.rglob("*")
            if path.is_file() and path.relative_to(root).as_posix() not in known and path.stat().st_mtime < cutoff
        ]
        for path in orphans:
            self.stdout.write(("deleted " if delete else "orphan ") + str(path.relative_to(root)))
            if delete:
                path.unlink()
        self.stdout.write(f"{len(orphans)} file(s) without a database row{' removed' if delete else ''}.")
