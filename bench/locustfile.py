"""Locust users for the load test (issues 10 and 12); `bench/load.py` starts gunicorn and runs this headless.

The run's accounts, keys and record ids come from the JSON file named by LOAD_FIXTURE (written by
`python -m bench.load prepare`), so this file needs no Django and no database access of its own: every
request goes over loopback HTTP to gunicorn, as a person's browser or a lab's script would send it.

Classes (pick some by name on locust's command line):

- issue 10, one endpoint each, no pause between requests: GridListReader, GridFilterReader,
  ProvenanceReader, CsvExporter;
- issue 12, the mixed workload: ApiClient (lists, a filtered list, provenance, a filtered CSV),
  BenchMember (logs in through the login page, registers grids from a lot, records and edits checks),
  Reviewer (logs in, reads the review queue, checks and the check list), Uploader (an API script
  uploading small PNGs to checks).

Any answer that is not 2xx (or the 302 a page form answers) is a failure; none is expected.
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import struct
import zlib
from datetime import UTC, datetime, timedelta
from functools import cache

from locust import FastHttpUser, HttpUser, between, constant, task

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@cache
def fixture() -> dict:
    with open(os.environ["LOAD_FIXTURE"]) as handle:
        return json.load(handle)


def _png(width: int = 64, height: int = 64) -> bytes:
    """An 8-bit greyscale PNG of noise, different on every call (the app refuses the same file twice on a check)."""
    rows = b"".join(b"\x00" + os.urandom(width) for _ in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def _token_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Token {key}", "Accept": "application/json"}


# --- issue 10: one endpoint per class, back to back -----------------------------------------------


class _Reader(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        self.headers = _token_headers(fixture()["read_key"])


class GridListReader(_Reader):
    @task
    def grid_list(self) -> None:
        # The first page, as the issue asks: what a script or the newest-first list page reads most.
        self.client.get("/api/v1/grids/?page_size=50", headers=self.headers, name="grids ?page_size=50")


class GridFilterReader(_Reader):
    @task
    def grid_list_filtered(self) -> None:
        self.client.get(fixture()["filtered_url"], headers=self.headers, name="grids, filtered")


class ProvenanceReader(_Reader):
    @task
    def provenance(self) -> None:
        grid = random.choice(fixture()["grid_ids"])
        self.client.get(f"/api/v1/grids/{grid}/provenance/", headers=self.headers, name="grids/{id}/provenance/")


class CsvExporter(_Reader):
    @task
    def export(self) -> None:
        headers = {**self.headers, "Accept": "text/csv"}
        with self.client.get("/api/v1/grids/?format=csv", headers=headers, name="grids ?format=csv (all)",
                             catch_response=True) as response:  # fmt: skip
            rows = response.content.count(b"\n") - 1 if response.content else 0
            if response.status_code == 200 and rows != fixture()["grids"]:
                response.failure(f"{rows} rows, expected {fixture()['grids']}")


# --- issue 12: the mixed workload -------------------------------------------------------------------


class ApiClient(_Reader):
    """A lab's script: reads lists and provenance, now and then exports a filtered CSV."""

    fixed_count = 4
    wait_time = between(0.05, 0.2)

    @task(6)
    def grid_list(self) -> None:
        page = random.randint(1, min(20, fixture()["pages"]))
        self.client.get(
            f"/api/v1/grids/?page_size=50&page={page}", headers=self.headers, name="grids ?page_size=50&page=N"
        )

    @task(3)
    def grid_list_filtered(self) -> None:
        GridFilterReader.grid_list_filtered(self)

    @task(3)
    def provenance(self) -> None:
        ProvenanceReader.provenance(self)

    @task(1)
    def export_filtered(self) -> None:
        headers = {**self.headers, "Accept": "text/csv"}
        self.client.get(fixture()["export_url"], headers=headers, name="grids ?format=csv, filtered")


class _Person(HttpUser):
    """Someone at the bench with a browser: logs in through the login page (CSRF token from the form)."""

    abstract = True
    role = "member"
    wait_time = between(0.5, 2)

    def on_start(self) -> None:
        username, password = fixture()["users"][self.role]
        token = self._csrf("/accounts/login/", name="login page")
        response = self.client.post(
            "/accounts/login/",
            {"username": username, "password": password, "csrfmiddlewaretoken": token},
            allow_redirects=False,
            name="login",
        )
        if response.status_code != 302 or "/accounts/login/" in response.headers.get("Location", ""):
            raise RuntimeError(f"login as {username} failed: {response.status_code}")

    def _csrf(self, url: str, *, name: str) -> str:
        response = self.client.get(url, name=name)
        match = CSRF.search(response.text or "")
        return match.group(1) if match else ""  # without one the POST is refused (403): a failure

    def _post_form(self, url: str, data: dict, *, name: str) -> str | None:
        """POST a page's form with the token from that page; returns the redirect's target (a form that saved)."""
        data = {**data, "csrfmiddlewaretoken": self._csrf(url, name=f"{name} (form)")}
        with self.client.post(url, data, allow_redirects=False, name=name, catch_response=True) as response:
            if response.status_code != 302:
                response.failure(f"expected a redirect after saving, got {response.status_code}")
                return None
            return response.headers.get("Location")


class BenchMember(_Person):
    fixed_count = 4

    @task(3)
    def register_grids(self) -> None:
        lot = fixture()["lot_id"]
        self._post_form(f"/grids/lots/{lot}/", {"count": random.randint(1, 4), "box": ""}, name="register grids")

    @task(3)
    def record_and_edit_check(self) -> None:
        grid = random.choice(fixture()["seeded_grid_ids"])
        checked = (datetime.now(UTC) - timedelta(minutes=10)).strftime("%Y-%m-%dT%H:%M")
        location = self._post_form(
            f"/characterization/checks/new/{grid}/?stage=pre_vitrification",
            {"stage": "pre_vitrification", "checked_at": checked, "operator": fixture()["user_ids"]["member"],
             "microscope": "Zeiss Axio Observer", "notes": "load test"},
            name="record check",
        )  # fmt: skip
        match = re.search(r"/checks/(\d+)/", location or "")
        if match:
            self._post_form(
                f"/characterization/checks/{match.group(1)}/edit/",
                {"stage": "pre_vitrification", "checked_at": checked, "objective": "10x/0.3 air", "notes": "edited"},
                name="edit check",
            )

    @task(2)
    def grid_pages(self) -> None:
        self.client.get(f"/grids/?page={random.randint(1, 50)}", name="grid list page")
        self.client.get(f"/grids/{random.choice(fixture()['grid_ids'])}/", name="grid page")


class Reviewer(_Person):
    role = "reviewer"
    fixed_count = 2

    @task(3)
    def review_queue(self) -> None:
        self.client.get("/characterization/review/", name="review queue page")

    @task(2)
    def check_page(self) -> None:
        self.client.get(f"/characterization/checks/{random.choice(fixture()['check_ids'])}/", name="check page")

    @task(1)
    def check_list(self) -> None:
        self.client.get("/characterization/checks/", name="check list page")


class Uploader(HttpUser):
    """A microscope PC's script: uploads a small 8-bit PNG to a check through the API."""

    fixed_count = 2
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.headers = _token_headers(fixture()["upload_key"])

    @task
    def upload(self) -> None:
        check = random.choice(fixture()["check_ids"])
        files = {"file": (f"load-{random.getrandbits(32):08x}.png", io.BytesIO(_png()), "image/png")}
        self.client.post(
            "/api/v1/check-images/", data={"check": check}, files=files, headers=self.headers, name="upload image"
        )
