"""Connection tuning (lims.db, issue 10): timestamps read through psycopg's compiled loader are the values
Django's own loader gives, on whichever database the suite runs."""

import datetime

import pytest
from django.db import connection

from lims import db as lims_db


def _now_and_ago(cursor_sql: str) -> list:
    with connection.cursor() as cursor:
        cursor.execute(cursor_sql)
        return cursor.fetchall()


@pytest.mark.summaries_unchecked  # the registration time is rewritten past the services on purpose
def test_timestamps_come_back_aware_in_utc_and_equal_to_what_was_stored(lab, member):
    from tests.factories import make_grids

    grid = make_grids(lab=lab, user=member, count=1)[0]
    stored = datetime.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=datetime.UTC)
    type(grid).objects.filter(pk=grid.pk).update(registered_at=stored)
    read = type(grid).objects.values_list("registered_at", flat=True).get(pk=grid.pk)
    assert read == stored and read.tzinfo is datetime.UTC


def test_a_postgresql_connection_in_utc_reads_timestamps_with_the_compiled_loader(db):
    connection.ensure_connection()
    adapters = getattr(connection.connection, "adapters", None)
    if connection.vendor != "postgresql":
        # SQLite's timestamps are text that Django converts; the hook leaves such a connection as it was.
        lims_db.use_compiled_timestamps(sender=None, connection=connection)
        assert adapters is None
        return
    from psycopg.pq import Format

    loader = adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT)
    assert loader.__name__ == "UtcTimestamptzLoader" and loader.timezone is datetime.UTC
    # Django's per-cursor check accepts it (no loader registered on the cursor), and the values are Django's.
    rows = _now_and_ago(
        "SELECT TIMESTAMPTZ '2026-12-07 14:00:00.5+00', TIMESTAMPTZ '1999-01-01 00:00:00+05', NULL::timestamptz"
    )
    assert rows == [(
        datetime.datetime(2026, 12, 7, 14, 0, 0, 500000, tzinfo=datetime.UTC),
        datetime.datetime(1998, 12, 31, 19, 0, tzinfo=datetime.UTC), None,
    )]  # fmt: skip
    assert rows[0][0].tzinfo is datetime.UTC


def test_only_a_utc_postgresql_connection_gets_the_compiled_loader():
    registered = []

    class Adapters:
        def register_loader(self, name, loader):
            registered.append(name)

    class Raw:
        adapters = Adapters()

        class info:  # noqa: N801 - psycopg's attribute name
            @staticmethod
            def parameter_status(name):
                return "UTC"

    class Wrapper:
        vendor = "postgresql"
        timezone = datetime.UTC
        connection = Raw()

    lims_db.use_compiled_timestamps(sender=None, connection=Wrapper())
    assert registered == ["timestamptz"]
    Wrapper.timezone = datetime.timezone(datetime.timedelta(hours=2))  # a per-database TIME_ZONE
    lims_db.use_compiled_timestamps(sender=None, connection=Wrapper())
    Wrapper.timezone, Wrapper.vendor = datetime.UTC, "sqlite"
    lims_db.use_compiled_timestamps(sender=None, connection=Wrapper())
    assert registered == ["timestamptz"]
