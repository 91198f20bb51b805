"""On PostgreSQL: an exclusion constraint so that two active sessions on one beamline never overlap.

It needs the btree_gist extension (for `beamline WITH =`). On other databases, or where the extension
cannot be created (no privilege), nothing is added: the booking service's lock on the beamline row is
the guard there, and on PostgreSQL it is the first guard too.
"""

from django.db import migrations, transaction

CONSTRAINT = "session_no_overlap_per_beamline"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("beamtime", "BeamtimeSession")._meta.db_table
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
            schema_editor.execute(
                f"ALTER TABLE {schema_editor.quote_name(table)} ADD CONSTRAINT {CONSTRAINT} "
                f"EXCLUDE USING gist (beamline_id WITH =, tstzrange(start, \"end\", '[)') WITH &&) "
                f"WHERE (status <> 'cancelled')"
            )
    except Exception:  # noqa: BLE001 - no extension privilege: the service lock still guards
        pass


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    table = apps.get_model("beamtime", "BeamtimeSession")._meta.db_table
    schema_editor.execute(f"ALTER TABLE {schema_editor.quote_name(table)} DROP CONSTRAINT IF EXISTS {CONSTRAINT}")


class Migration(migrations.Migration):
    dependencies = [("beamtime", "0002_facilities_and_beamlines")]

    operations = [migrations.RunPython(forwards, backwards)]
