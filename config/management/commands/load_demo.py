"""Demo data for a first look: one lab, its people, grids along the path. Idempotent."""

from __future__ import annotations

import importlib
import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from grids import services as grid_services
from grids.lifecycle import GridState
from grids.models import CellLine, Grid, GridLot, GridType, StorageBox
from lims.models import FacilityStaff, Lab, Membership, Role

# Each app's demo.load(ctx) runs after the grids demo, in this order, and adds to ctx.
APP_DEMOS = ["vitrification.demo", "characterization.demo", "beamtime.demo", "reconstruction.demo"]

DEMO_PASSWORD_ENV = "LIMS_DEMO_PASSWORD"


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the demo admin's login."

    def handle(self, *args, **options):
        password = os.environ.get(DEMO_PASSWORD_ENV, "sxt-demo")
        User = get_user_model()
        with transaction.atomic():
            admin, created = User.objects.get_or_create(
                username="admin", defaults={"is_staff": True, "is_superuser": True, "email": "admin@example.org"}
            )
            if created:
                admin.set_password(password)
                admin.save()
            lab, _ = Lab.objects.get_or_create(
                code="DEMO", defaults={"name": "Demo cell biology lab", "institution": "Example Institute"}
            )
            people = {"admin": (admin, Role.LAB_ADMIN)}
            for username, role in [("bench", Role.MEMBER), ("reviewer", Role.QC_REVIEWER)]:
                person, made = User.objects.get_or_create(
                    username=username, defaults={"email": f"{username}@example.org"}
                )
                if made:
                    person.set_password(password)
                    person.save()
                people[username] = (person, role)
            for person, role in people.values():
                Membership.objects.get_or_create(lab=lab, user=person, defaults={"role": role})
            staff, made = User.objects.get_or_create(username="beamline", defaults={"email": "beamline@example.org"})
            if made:
                staff.set_password(password)
                staff.save()
            FacilityStaff.objects.get_or_create(user=staff)
            ctx = self._grids(lab=lab, admin=admin)
            ctx.update(
                lab=lab, admin=admin, bench=people["bench"][0], reviewer=people["reviewer"][0], facility_staff=staff
            )
        for module_name in APP_DEMOS:
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as error:
                if error.name == module_name:
                    continue  # that app has no demo data yet
                raise
            with transaction.atomic():
                module.load(ctx)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(
            f"Log in at http://127.0.0.1:8000/ as admin / {password} (lab admin, superuser); "
            f"also bench, reviewer and beamline (facility staff), same password."
            + ("" if created else " (existing accounts keep the password they had.)")
        )

    def _grids(self, *, lab, admin) -> dict:
        grid_type = GridType.objects.get(name="HZB-2")
        lot = GridLot.objects.filter(lab=lab, lot_number="DEMO-2026-01").first()
        if lot is None:
            lot = grid_services.grid_lot_create(
                lab=lab, grid_type=grid_type, lot_number="DEMO-2026-01", quantity=50, by=admin, notes="Demo lot"
            )
        box = StorageBox.objects.filter(lab=lab, name="Cryo box A").first() or grid_services.storage_box_create(
            lab=lab, name="Cryo box A", capacity=12, location="Dewar 1, cane 3", by=admin
        )
        if not Grid.objects.filter(lot=lot).exists():
            grid_services.grids_register(lot=lot, count=12, by=admin)
        grids = list(Grid.objects.filter(lot=lot).order_by("barcode"))
        if not Grid.objects.filter(box=box).exists():
            grid_services.grids_move(grids=grids[:4], box=box, by=admin)
        line = CellLine.objects.filter(lab=lab, name="HeLa").first() or grid_services.cell_line_create(
            lab=lab, name="HeLa", organism="Homo sapiens", biosafety_level=2, source="ATCC CCL-2", by=admin
        )
        CellLine.objects.filter(lab=lab, name="NIH/3T3").first() or grid_services.cell_line_create(
            lab=lab, name="NIH/3T3", organism="Mus musculus", biosafety_level=1, source="ATCC CRL-1658", by=admin
        )
        to_seed = [g for g in grids[:8] if g.state == GridState.REGISTERED]
        if len(to_seed) == 8:
            grid_services.seeding_record(
                grids=to_seed, cell_line=line, by=admin, passage=12, density=50000, medium="DMEM + 10% FBS",
                incubation_h=24, fiducial_kind="gold", fiducial_size_nm=100, fiducial_dilution="1:10",
            )  # fmt: skip
        seeded = [g for g in Grid.objects.filter(lot=lot, state=GridState.SEEDED).order_by("barcode")]
        return {"lot": lot, "box": box, "cell_line": line, "grids": grids, "seeded_grids": seeded}
