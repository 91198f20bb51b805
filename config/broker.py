"""The embedded broker (`filesystem://`): kombu's file-system transport, with messages that appear whole.

kombu 5.x writes a message in place (open, lock, write) while a consumer may already have listed the file and moved
it away unlocked: it then reads an empty file, the worker dies on `JSONDecodeError` ("Unrecoverable error") and the
message is lost. Seen here with `make run` when two slabs of one job sent the assembly at once. This transport
writes each message to a staging folder beside the queue and renames it in (atomic on one file system), and a file
that still cannot be read as a message is moved aside with a warning instead of stopping the worker.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path
from time import monotonic

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

log = logging.getLogger(__name__)


class Channel(filesystem.Channel):
    def _staging_folder(self) -> Path:
        folder = Path(self.data_folder_out).parent / "staging"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _put(self, queue, payload, **kwargs):
        """Put a message on `queue`: written and flushed under a staging name, then renamed into the queue."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        staged = self._staging_folder() / name
        try:
            with open(staged, "wb") as handle:
                handle.write(str_to_bytes(dumps(payload)))
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(staged, os.path.join(self.data_folder_out, name))
        except OSError as exc:
            staged.unlink(missing_ok=True)
            raise filesystem.ChannelError(f"Cannot add file {name!r} to directory") from exc

    def _get(self, queue):
        while True:
            try:
                return super()._get(queue)
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                # A message written by a producer without this transport, caught half-written: skip it, keep going.
                log.warning("skipped an unreadable message on queue %s (%s)", queue, exc)


class Transport(filesystem.Transport):
    Channel = Channel


def install() -> None:
    """Make `filesystem://` mean this transport (kombu looks the scheme up in its aliases when it connects)."""
    TRANSPORT_ALIASES["filesystem"] = "config.broker:Transport"
