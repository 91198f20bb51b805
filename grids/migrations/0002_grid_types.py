"""Grid types in common use for cryo-SXT. Geometry from the vendors' data sheets (nominal values);
a lab edits them in the admin if its lots differ."""

import string

from django.db import migrations


def letters(n):
    return list(string.ascii_uppercase[:n])


def numbers(n):
    return [str(i) for i in range(1, n + 1)]


GRID_TYPES = [
    {
        "name": "HZB-2",
        "vendor": "Gilder Grids",
        "material": "gold",
        "mesh": 100,
        "support_film": "holey carbon",
        "hole_pattern": "R2/2",
        "finder_rows": letters(10),
        "finder_columns": numbers(10),
        "square_pitch_um": 254.0,
        "notes": "Finder grid used at the BESSY II U41 TXM (HZB); lettered rows, numbered columns.",
    },
    {
        "name": "Quantifoil R2/2 Au G200F1",
        "vendor": "Quantifoil",
        "material": "gold",
        "mesh": 200,
        "support_film": "holey carbon",
        "hole_pattern": "R2/2",
        "finder_rows": letters(20),
        "finder_columns": numbers(20),
        "square_pitch_um": 127.0,
        "notes": "Gold finder grid, preferred for mammalian cells (gold is not cytotoxic).",
    },
    {
        "name": "Quantifoil R2/1 Cu 200",
        "vendor": "Quantifoil",
        "material": "copper",
        "mesh": 200,
        "support_film": "holey carbon",
        "hole_pattern": "R2/1",
        "finder_rows": letters(20),
        "finder_columns": numbers(20),
        "square_pitch_um": 127.0,
        "notes": "Plain mesh: squares named by counting from the marked edge.",
    },
    {
        "name": "C-flat CF-2/1 Au 300",
        "vendor": "Protochips",
        "material": "gold",
        "mesh": 300,
        "support_film": "holey carbon",
        "hole_pattern": "CF-2/1",
        "finder_rows": letters(26),
        "finder_columns": numbers(26),
        "square_pitch_um": 84.7,
        "notes": "",
    },
    {
        "name": "Maxtaform H2 finder Cu",
        "vendor": "Ted Pella",
        "material": "copper",
        "mesh": 200,
        "support_film": "formvar/carbon",
        "hole_pattern": "",
        "finder_rows": letters(10),
        "finder_columns": numbers(10),
        "square_pitch_um": 254.0,
        "notes": "Indexed squares (letter + number) for relocating cells between microscopes.",
    },
    {
        "name": "Lacey carbon Au 300",
        "vendor": "Agar Scientific",
        "material": "gold",
        "mesh": 300,
        "support_film": "lacey carbon",
        "hole_pattern": "lacey",
        "finder_rows": letters(26),
        "finder_columns": numbers(26),
        "square_pitch_um": 84.7,
        "notes": "",
    },
]


def create(apps, schema_editor):
    GridType = apps.get_model("grids", "GridType")
    for spec in GRID_TYPES:
        GridType.objects.update_or_create(name=spec["name"], defaults=spec)


def remove(apps, schema_editor):
    apps.get_model("grids", "GridType").objects.filter(name__in=[g["name"] for g in GRID_TYPES]).delete()


class Migration(migrations.Migration):
    dependencies = [("grids", "0001_initial")]
    operations = [migrations.RunPython(create, remove)]
