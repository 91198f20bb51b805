"""The file storage of MEDIA_ROOT: Django's FileSystemStorage, writing each new file completely under a
temporary name before it takes its real one.

Django's own `_save` writes straight into the final name; a write that fails half-way (a full disk, a
quota, an I/O error) leaves a truncated file there that looks like a complete one. Here the content goes
to `.<random>.part` beside it first (flushed and synced), and is then moved into place with Django's own
no-overwrite move, so a failure leaves nothing under the real name and the temporary file is removed.
"""

from __future__ import annotations

import os
import tempfile

from django.core.files.storage import FileSystemStorage
from django.utils._os import safe_makedirs


class _Written:
    """A finished temporary file, which FileSystemStorage moves into place instead of copying."""

    def __init__(self, path: str):
        self._path = path

    def temporary_file_path(self) -> str:
        return self._path


class AtomicFileSystemStorage(FileSystemStorage):
    def _save(self, name, content):
        if hasattr(content, "temporary_file_path"):
            return super()._save(name, content)  # already a complete file on disk: moved by a rename
        directory = os.path.dirname(self.path(name))
        if self.directory_permissions_mode is not None:
            safe_makedirs(directory, self.directory_permissions_mode, exist_ok=True)
        else:
            os.makedirs(directory, exist_ok=True)
        fd, partial = tempfile.mkstemp(dir=directory, prefix=".", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as handle:
                for chunk in content.chunks():
                    handle.write(chunk.encode() if isinstance(chunk, str) else chunk)
                handle.flush()
                os.fsync(handle.fileno())
            return super()._save(name, _Written(partial))
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
