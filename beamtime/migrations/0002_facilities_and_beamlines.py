"""BESSY II U41 TXM (HZB), ALBA MISTRAL and Diamond B24, each with a default quality policy."""

from django.db import migrations

from beamtime.defaults import DEFAULT_RULES, FACILITIES


def forwards(apps, schema_editor):
    Facility = apps.get_model("beamtime", "Facility")
    Beamline = apps.get_model("beamtime", "Beamline")
    QualityPolicy = apps.get_model("beamtime", "QualityPolicy")
    QualityRule = apps.get_model("beamtime", "QualityRule")
    for short, name, city, country, website, beamlines in FACILITIES:
        facility, _ = Facility.objects.get_or_create(
            short_name=short, defaults={"name": name, "city": city, "country": country, "website": website}
        )
        for bl_name, code, capacity, shift_hours, energy, description in beamlines:
            beamline, _ = Beamline.objects.get_or_create(
                code=code,
                defaults={
                    "facility": facility,
                    "name": bl_name,
                    "capacity": capacity,
                    "shift_hours": shift_hours,
                    "photon_energy_ev": energy,
                    "description": description,
                },
            )
            policy, created = QualityPolicy.objects.get_or_create(
                beamline=beamline, defaults={"name": f"{short} {bl_name} default gate"}
            )
            if created:
                for order, (metric, operator, threshold) in enumerate(DEFAULT_RULES):
                    QualityRule.objects.create(
                        policy=policy, metric=metric, operator=operator, threshold=threshold, order=order
                    )


class Migration(migrations.Migration):
    dependencies = [("beamtime", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop)]
