"""Connection tuning (lims.db, issue 10): timestamps read through psycopg's compiled loader are the values
Django's own loader gives, on whichever database the suite runs."""

import datetime

import pytest
from django.db import connection

from lims import db as lims_db


@pytest.mark.summaries_unchecked  # the registration time is rewritten past the services on purpose
def test_timestamps_come_back_aware_in_utc_and_equal_to_what_was_stored(lab, member):
    from tests.factories import make_grids

    grid = make_grids(lab=lab, user=member, count=1)[0]
    stored = datetime.datetime(2026, 3, 29, 1, 30, 15, 123456, tzinfo=datetime.UTC)
    type(grid).objects.filter(pk=grid.pk).update(registered_at=stored)
    read = type(grid).objects.values_list("registered_at", flat=True).get(pk=grid.pk)
    assert read == stored and read.tzinfo is datetime.UTC


def test_the_compiled_loader_is_in_place_exactly_on_a_postgresql_connection(db):
    from django.db.models import DateTimeField, Value

    from grids.models import GridType

    connection.ensure_connection()
    adapters = getattr(connection.connection, "adapters", None)
    registered = None
    if adapters is not None:
        from psycopg.pq import Format

        registered = adapters.get_loader(adapters.types["timestamptz"].oid, Format.TEXT).__name__
    # SQLite's timestamps are text that Django converts: the hook leaves such a connection alone.
    assert (registered == "UtcTimestamptzLoader") == (connection.vendor == "postgresql")
    # Either way a timestamp sent and read back is the same aware value in datetime's own UTC, whatever the
    # offset it was written with; on PostgreSQL it came back through that loader (no cursor-level one).
    sent = datetime.datetime(1999, 1, 1, 0, 0, 0, 500000, tzinfo=datetime.timezone(datetime.timedelta(hours=5)))
    # (grid types are seeded by a migration, so the query has a row to carry the value)
    value = GridType.objects.annotate(t=Value(sent, output_field=DateTimeField())).values_list("t", flat=True)[0]
    assert value == sent and value.tzinfo is datetime.UTC


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
