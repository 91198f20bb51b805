"""Run several calls at the same moment in threads, as racing requests would (for race tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection

from lims.errors import ConflictError


def race(calls: list[Callable[[], object]], *, refusal: Callable[[ConflictError], str] | None = None) -> list[str]:
    """Start every call together (a barrier), each in its own thread with its own DB connection.

    Returns one outcome per call, sorted: "ok", the label `refusal` gives a ConflictError (default
    "refused"), or "error: …" for anything else, so a test asserts the exact mix it expects.
    """
    results: list[str] = []
    barrier = threading.Barrier(len(calls))
    label = refusal or (lambda error: "refused")

    def run(call):
        try:
            barrier.wait()
            call()
            results.append("ok")
        except ConflictError as error:
            results.append(label(error))
        except Exception as error:  # noqa: BLE001 - reported in the outcome the test asserts on
            results.append(f"error: {error!r}")
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(results)
