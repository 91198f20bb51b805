"""Demo data for reconstruction (idempotent): a grid imaged in the session running now with a simulated tilt series and a
simulated focal series, both waiting to be accepted, and the pictures of the newcomer's guide.

The series come from the engine's simulator (a thick cell with organelles of known absorption at 520 eV), so a
new user can open a dataset and reconstruct it in the first minute of `make run`.
"""

from __future__ import annotations

import datetime
import json
import logging
import tempfile
from pathlib import Path

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from beamtime import services as beamtime_services
from beamtime.models import BeamtimeSession, Proposal, SampleSheetEntry, Shipment, ShipmentStatus
from grids.lifecycle import GridState
from grids.models import Grid
from lims.errors import DomainError
from reconstruction import previews, services
from reconstruction.models import Dataset

log = logging.getLogger(__name__)

PIXEL_UM = 0.04
SHAPE = (32, 64, 64)  # rows, thickness, columns


def _simulated(focal: bool):
    from reconstruction.engine.phantoms import cell_phantom
    from reconstruction.engine.psf import ZonePlate
    from reconstruction.engine.simulate import simulate_tilt_series, tilt_angles

    phantom = cell_phantom(SHAPE, PIXEL_UM, seed=7)
    volume = getattr(phantom, "volume", phantom)
    angles = tilt_angles(60.0, 2.0 if not focal else 4.0)
    zone_plate = ZonePlate(energy_ev=520.0, outer_zone_width_nm=25.0, diameter_um=60.0)
    planes = [-0.8, 0.0, 0.8] if focal else None
    series = simulate_tilt_series(
        volume, angles, PIXEL_UM, zone_plate=zone_plate if focal else None, focal_planes_um=planes, photons=2e4, seed=3
    )
    return series, zone_plate, planes


def _running_session(ctx):
    """A session on the demo proposal that started two hours ago: its grid is at the beamline and imaged."""
    proposal = Proposal.objects.filter(number="DEMO-2026-0042").first()
    if proposal is None:
        return None
    session = BeamtimeSession.objects.filter(proposal=proposal, start__lt=timezone.now()).order_by("start").first()
    if session is not None:
        return session
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=2)
    end = start + datetime.timedelta(hours=24)
    beamline = proposal.sessions.select_related("beamline").first()
    try:
        return beamtime_services.session_schedule(
            beamline=beamline.beamline if beamline else ctx["beamtime_session"].beamline,
            proposal=proposal, start=start, end=end, freeze_at=end, by=ctx["admin"],
            notes="Demo: the session running now; its grid was imaged this morning.",
        )  # fmt: skip
    except (DomainError, KeyError, AttributeError) as error:
        log.warning("reconstruction demo: no session (%s)", getattr(error, "message", error))
        return None


def _shipped_grid(ctx, session):
    entry = SampleSheetEntry.objects.filter(session=session).select_related("grid").first()
    if entry is None:
        on_sheets = SampleSheetEntry.objects.values("grid_id")
        grid = (
            Grid.objects.filter(lab=ctx["lab"], state__in=(GridState.ACCEPTED, GridState.VITRIFIED))
            .exclude(pk__in=on_sheets)
            .order_by("barcode")
            .first()
        )
        if grid is None:
            return None
        try:
            beamtime_services.sample_sheet_add(session=session, grid=grid, by=ctx["admin"])
        except DomainError:
            try:
                beamtime_services.sample_sheet_add(
                    session=session, grid=grid, by=ctx.get("reviewer") or ctx["admin"],
                    override_reason="Demo: admitted to show the path to a volume.",
                )  # fmt: skip
            except DomainError as error:
                log.warning("reconstruction demo: %s not put on the sheet (%s)", grid, error.message)
                return None
        entry = SampleSheetEntry.objects.get(session=session, grid=grid)
    grid = entry.grid
    if grid.state in (GridState.SHIPPED, GridState.IMAGED):
        return grid
    shipment = Shipment.objects.filter(session=session).first()
    try:
        if shipment is None:
            shipment = beamtime_services.shipment_create(
                session=session, dewar="DEMO-DEWAR", courier="Demo courier", by=ctx["admin"]
            )
        if shipment.status == ShipmentStatus.PREPARED:
            beamtime_services.shipment_transition(shipment=shipment, to_status="shipped", by=ctx["admin"])
    except DomainError as error:
        log.warning("reconstruction demo: shipment not made (%s)", error.message)
        return None
    grid.refresh_from_db()
    return grid if grid.state == GridState.SHIPPED else None


def _guide_pictures(series) -> None:
    """One projection and one slice by WBP (two filters) and SIRT, for the guide page."""
    from reconstruction import engine

    if default_storage.exists("reconstruction/guide/sirt.png"):
        return
    middle = series.projections.shape[1] // 2
    sino = np.ascontiguousarray(series.projections[:, middle : middle + 1, :])
    zero = int(np.argmin(np.abs(series.angles)))
    pictures = {"projection": series.projections[zero]}
    for name, kwargs in {
        "wbp": {"method": "wbp"},
        "wbp-hann": {"method": "wbp", "filter_name": "hann"},
        "sirt": {"method": "sirt"},
    }.items():
        pictures[name] = engine.reconstruct(sino, series.angles, **kwargs)[0]
    low, high = np.percentile(pictures["sirt"], (0.5, 99.5))
    for name, image in pictures.items():
        scaled = previews.to_uint8(image) if name == "projection" else previews.to_uint8(image, low, high)
        picture = previews.png_bytes(np.kron(scaled, np.ones((4, 4), np.uint8)))  # 4× for the page
        default_storage.save(f"reconstruction/guide/{name}.png", ContentFile(picture))


def load(ctx: dict) -> None:
    if ctx.get("lab") is None or ctx.get("admin") is None:
        return
    session = _running_session(ctx)
    grid = _shipped_grid(ctx, session) if session is not None else None
    if grid is None:
        return
    admin = ctx["admin"]
    with tempfile.TemporaryDirectory() as folder:
        if not Dataset.objects.filter(grid=grid, name="demo-cell-tilt-series.mrc").exists():
            from reconstruction.engine import io as engine_io

            series, _, _ = _simulated(focal=False)
            path = Path(folder) / "demo-cell-tilt-series.mrc"
            engine_io.write_mrc(path, series.projections, PIXEL_UM)
            engine_io.write_tlt(path.with_suffix(".tlt"), series.angles)
            services.dataset_create(
                by=admin, session=session, grid=grid, local_path=path, name=path.name, keep="copy",
                angles=[float(a) for a in series.angles],
                acquisition=services.Acquisition(photon_energy_ev=520.0, exposure_s=1.0),
                notes="Simulated by the engine: a 2.6 µm thick cell at 40 nm pixels, ±60° in 2° steps, 2·10⁴ photons per pixel.",
            )  # fmt: skip
            _guide_pictures(series)
        if not Dataset.objects.filter(grid=grid, name="demo-cell-focal-series.mrc").exists():
            from reconstruction.engine import io as engine_io

            series, zone_plate, planes = _simulated(focal=True)
            stack = series.projections.reshape(-1, *series.projections.shape[2:])
            path = Path(folder) / "demo-cell-focal-series.mrc"
            engine_io.write_mrc(path, stack, PIXEL_UM)
            sidecar = {
                "focal_planes_um": planes,
                "pixel_size_um": PIXEL_UM,
                "zone_plate": {"energy_ev": 520.0, "outer_zone_width_nm": 25.0, "diameter_um": 60.0},
            }
            services.dataset_create(
                by=admin, session=session, grid=grid, local_path=path, name=path.name, keep="copy",
                angles=[float(a) for a in series.angles], sidecar=json.loads(json.dumps(sidecar)),
                notes="Simulated focal series: three focal planes 0.8 µm apart at each tilt (±60° in 4° steps).",
            )  # fmt: skip
    ctx["imaged_grid"] = grid
