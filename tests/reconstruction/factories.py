"""Reconstruction test data: a shipped grid on a session's sheet, and small simulated tilt-series files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beamtime import quality
from beamtime import services as beamtime_services
from characterization.selectors import GridQualityFacts
from reconstruction.engine import io as engine_io
from reconstruction.engine.phantoms import shepp_logan_3d
from reconstruction.engine.simulate import project
from tests.beamtime.factories import GOOD_FACTS, ProposalFactory, beamline, schedule
from tests.factories import make_grids

PIXEL_UM = 0.02


def shipped_grids(*, lab, member, monkeypatch, count: int = 2):
    """`count` grids of `lab` on a session's sample sheet, shipped to the beamline; returns (session, grids)."""
    monkeypatch.setattr(quality, "characterization_facts", lambda grid: GridQualityFacts(grid_id=grid.pk, **GOOD_FACTS))
    proposal = ProposalFactory(lab=lab, created_by=member, facility=beamline().facility)
    session = schedule(proposal=proposal, by=member, days=10, hours=24)
    grids = make_grids(lab=lab, user=member, count=count, state="accepted")
    for grid in grids:
        beamtime_services.sample_sheet_add(session=session, grid=grid, by=member)
    shipment = beamtime_services.shipment_create(session=session, dewar="CX-1", courier="courier", by=member)
    beamtime_services.shipment_transition(shipment=shipment, to_status="shipped", by=member)
    for grid in grids:
        grid.refresh_from_db()
    return session, grids


def phantom_series(size: int = 32, rows: int = 12, tilts: int = 31, max_angle: float = 60.0):
    """A small Shepp–Logan volume projected at ±max_angle: (projections, angles, volume)."""
    volume = shepp_logan_3d((rows, size, size)).astype(np.float32) * 0.5  # LAC in µm⁻¹
    angles = np.linspace(-max_angle, max_angle, tilts)
    projections = project(volume, angles, PIXEL_UM)
    return np.asarray(projections, dtype=np.float32), angles, volume


def write_mrc_series(
    folder: Path, name: str = "tilt.mrc", *, tlt: bool = True, pixel_um: float | None = PIXEL_UM, **kw
):
    projections, angles, volume = phantom_series(**kw)
    path = folder / name
    engine_io.write_mrc(path, projections, pixel_um)
    if tlt:
        engine_io.write_tlt(path.with_suffix(".tlt"), angles)
    return path, projections, angles
