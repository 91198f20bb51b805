"""Demo data for `manage.py load_demo`: instruments of both kinds and one run of each (idempotent)."""

from __future__ import annotations

import datetime

from django.utils import timezone

from grids.lifecycle import GridState
from grids.models import Grid
from vitrification import services
from vitrification.models import GridOutcome, HPFRun, Instrument, InstrumentKind, InstrumentModel, PlungeRun

DEMO_NOTE = "Demo run."

INSTRUMENTS = [
    ("Vitrobot Mark IV", InstrumentKind.PLUNGER, InstrumentModel.VITROBOT_MARK_IV, "Cryo-prep room, bench 2"),
    ("Leica EM GP2", InstrumentKind.PLUNGER, InstrumentModel.LEICA_EM_GP2, "Cryo-prep room, bench 3"),
    ("Leica EM ICE", InstrumentKind.HPF, InstrumentModel.LEICA_EM_ICE, "HPF room"),
]


def load(ctx: dict) -> None:
    """Add instruments to ctx["lab"] and vitrify some of ctx["seeded_grids"]; a second call adds nothing.

    Leaves in ctx: `vitrified_grids` (the lab's vitrified grids), `seeded_grids` (refreshed: those
    still seeded) and `instruments` (name → Instrument).
    """
    lab = ctx.get("lab")
    admin = ctx.get("admin")
    if lab is None or admin is None:
        return
    instruments = {}
    for name, kind, model, location in INSTRUMENTS:
        instrument = Instrument.objects.filter(lab=lab, name=name).first()
        if instrument is None:
            instrument = services.instrument_create(
                lab=lab, name=name, kind=kind, model=model, location=location, by=admin
            )
        instruments[name] = instrument

    grids = [g for g in (ctx.get("seeded_grids") or []) if isinstance(g, Grid)]
    # Only grids still seeded and not in any run yet (a second load must add nothing).
    ready = list(
        Grid.objects.filter(pk__in=[g.pk for g in grids], state=GridState.SEEDED)
        .exclude(pk__in=GridOutcome.objects.values("grid_id"))
        .order_by("barcode")
    )
    now = timezone.now().replace(second=0, microsecond=0)
    if len(ready) >= 2 and not PlungeRun.objects.filter(lab=lab, notes=DEMO_NOTE).exists():
        # Half of the seeded grids, leaving the rest for visitors to vitrify themselves.
        batch = ready[: max(2, len(ready) // 2)]
        services.plunge_run_record(
            grids=batch,
            instrument=instruments["Vitrobot Mark IV"],
            by=admin,
            performed_at=now - datetime.timedelta(hours=3),
            outcomes=[
                {"grid": batch[-1].pk, "outcome": "failed", "reason": "Grid bent while mounting in the tweezers."}
            ],
            blot_time_s=10,
            blot_force=0,
            blot_side="back",
            humidity_percent=95,
            chamber_temperature_c=22,
            wait_time_s=30,
            sample_volume_ul=3,
            cryogen="ETHANE",
            notes=DEMO_NOTE,
        )
        ready = ready[len(batch) :]
    if ready and not HPFRun.objects.filter(lab=lab, notes=DEMO_NOTE).exists():
        services.hpf_run_record(
            grids=ready[:1],
            instrument=instruments["Leica EM ICE"],
            by=admin,
            performed_at=now - datetime.timedelta(hours=2),
            pressure_bar=2100,
            carrier_type="type A 100/200 µm planchette, grid sandwiched",
            cavity_depth_um=100,
            filler="20% BSA in medium",
            notes=DEMO_NOTE,
        )

    # What the later demos (checks after vitrification, beamtime) build on.
    ctx["vitrified_grids"] = list(
        Grid.objects.filter(lab=lab, state=GridState.VITRIFIED, vitrification_outcome__isnull=False).order_by("barcode")
    )
    ctx["seeded_grids"] = list(Grid.objects.filter(pk__in=[g.pk for g in grids], state=GridState.SEEDED))
    ctx["instruments"] = instruments
