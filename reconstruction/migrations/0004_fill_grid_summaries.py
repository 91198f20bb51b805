"""Fill the QC dashboard's grid summaries (characterization 0003) for the grids already recorded.

Here, in the top app, because a summary reads every app's records (datasets and volumes for the funnel's
last steps), whose tables must exist first."""

from django.db import migrations


def _fill(apps, schema_editor):
    # The live function: the summary is derived data. A database without grids (every fresh install) has
    # nothing to fill, so the live models never meet older tables there.
    if not apps.get_model("grids", "Grid").objects.exists():
        return
    from characterization.summaries import grid_summaries_rebuild

    grid_summaries_rebuild()


class Migration(migrations.Migration):
    dependencies = [
        ("characterization", "0003_grid_summary"),
        ("beamtime", "0003_session_no_overlap_pg"),
        ("reconstruction", "0003_fsc_slabs_noise_workers"),
    ]

    operations = [migrations.RunPython(_fill, migrations.RunPython.noop)]
