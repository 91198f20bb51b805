"""A grid's whole history as one JSON document, built from sections each app contributes.

Extension point: an app registers `provenance_section_register(name, builder, order=…)` in its
AppConfig.ready(); `builder(grid, request=…)` returns JSON-ready data (a dict, a list, or None when the
app has nothing on the grid). grids never imports the apps that add sections (vitrification runs,
checks and QC decisions, gate evaluations, sessions and sample sheets, shipments, and — as the
reconstruction app lands — datasets, jobs and volumes). Every record in a section says who and when.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.utils import timezone
from drf_spectacular.utils import OpenApiExample

from grids.models import Grid

SCHEMA = "sxt-lims/grid-provenance/1"

ProvenanceBuilder = Callable[..., object]


@dataclass(frozen=True)
class ProvenanceSection:
    name: str
    builder: ProvenanceBuilder
    order: int


_sections: dict[str, ProvenanceSection] = {}


def provenance_section_register(name: str, builder: ProvenanceBuilder, *, order: int = 100) -> None:
    """Add (or replace) the section `name` of every grid's provenance document."""
    _sections[name] = ProvenanceSection(name=name, builder=builder, order=order)


def provenance_sections() -> list[ProvenanceSection]:
    return sorted(_sections.values(), key=lambda s: (s.order, s.name))


def who(user) -> str | None:
    return user.get_username() if user is not None else None


def when(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def grid_provenance(*, grid: Grid, request=None) -> dict:
    """{"schema", "generated_at", <section>: …} for one grid the caller may see (scoping is the caller's)."""
    document: dict[str, object] = {"schema": SCHEMA, "generated_at": when(timezone.now())}
    for section in provenance_sections():
        document[section.name] = section.builder(grid, request=request)
    return document


# --- grids' own sections ---------------------------------------------------------------------


def _grid(grid: Grid, request=None) -> dict:
    return {
        "id": grid.pk,
        "barcode": grid.barcode,
        "lab": {"id": grid.lab_id, "code": grid.lab.code, "name": grid.lab.name},
        "state": grid.state,
        "notes": grid.notes,
        "registered_at": when(grid.registered_at),
        "updated_at": when(grid.updated_at),
    }


def _lot(grid: Grid, request=None) -> dict:
    lot = grid.lot
    grid_type = lot.grid_type
    return {
        "id": lot.pk,
        "lot_number": lot.lot_number,
        "vendor": lot.vendor,
        "received_on": when(lot.received_on),
        "expires_on": when(lot.expires_on),
        "quantity": lot.quantity,
        "grid_type": {
            "id": grid_type.pk,
            "name": grid_type.name,
            "vendor": grid_type.vendor,
            "material": grid_type.material,
            "mesh": grid_type.mesh,
            "support_film": grid_type.support_film,
            "hole_pattern": grid_type.hole_pattern,
        },  # fmt: skip
        "created_by": who(lot.created_by),
        "created_at": when(lot.created_at),
    }


def _storage(grid: Grid, request=None) -> dict | None:
    if grid.box_id is None:
        return None
    box = grid.box
    return {
        "box": {"id": box.pk, "name": box.name, "barcode": box.barcode, "location": box.location},
        "slot": grid.slot,
    }


def _lifecycle(grid: Grid, request=None) -> list[dict]:
    return [
        {
            "from_state": t.from_state or None,
            "to_state": t.to_state,
            "cause": t.cause,
            "reason": t.reason,
            "by": who(t.by),
            "at": when(t.at),
        }  # fmt: skip
        for t in grid.transitions.select_related("by").order_by("at", "pk")
    ]


SEEDING_PARAMETERS = (
    "passage", "density", "density_unit", "medium", "incubation_h", "temperature_c", "co2_percent", "treatments",
    "fluorescent_labels", "fiducial_kind", "fiducial_size_nm", "fiducial_dilution", "notes",
)  # fmt: skip


def _seedings(grid: Grid, request=None) -> list[dict]:
    return [
        {
            "id": s.pk,
            "cell_line": {
                "id": s.cell_line_id,
                "name": s.cell_line.name,
                "organism": s.cell_line.organism,
                "biosafety_level": s.cell_line.biosafety_level,
                "source": s.cell_line.source,
            },
            "parameters": {name: getattr(s, name) for name in SEEDING_PARAMETERS},
            "operator": who(s.operator),
            "seeded_at": when(s.seeded_at),
            "created_at": when(s.created_at),
        }  # fmt: skip
        for s in grid.seedings.select_related("cell_line", "operator").order_by("seeded_at", "pk")
    ]


def register_grid_sections() -> None:
    provenance_section_register("grid", _grid, order=0)
    provenance_section_register("lot", _lot, order=10)
    provenance_section_register("storage", _storage, order=20)
    provenance_section_register("lifecycle", _lifecycle, order=30)
    provenance_section_register("seedings", _seedings, order=40)


EXAMPLE = OpenApiExample(
    "A grid through to a beamline",
    response_only=True,
    value={
        "schema": SCHEMA,
        "generated_at": "2026-05-06T10:00:00+00:00",
        "grid": {"id": 7, "barcode": "G-DEMO-000007", "lab": {"id": 1, "code": "DEMO", "name": "Demo lab"},
                 "state": "shipped", "notes": "", "registered_at": "2026-04-01T09:00:00+00:00",
                 "updated_at": "2026-05-02T08:00:00+00:00"},
        "lot": {"id": 1, "lot_number": "DEMO-2026-01", "vendor": "Quantifoil", "quantity": 50,
                "grid_type": {"id": 1, "name": "HZB-2", "material": "gold"}, "created_by": "admin",
                "created_at": "2026-04-01T08:55:00+00:00"},
        "storage": None,
        "lifecycle": [{"from_state": None, "to_state": "registered", "cause": "registered from lot DEMO-2026-01",
                       "reason": "", "by": "admin", "at": "2026-04-01T09:00:00+00:00"}],
        "seedings": [{"id": 3, "cell_line": {"id": 1, "name": "HeLa"}, "parameters": {"passage": 12},
                      "operator": "bench", "seeded_at": "2026-04-02T10:00:00+00:00"}],
        "vitrification": {"kind": "plunge", "run": 4, "parameters": {"blot_time_s": 10.0, "cryogen": "ETHANE"},
                          "outcome": "ok", "operator": "bench", "performed_at": "2026-04-03T11:00:00+00:00"},
        "checks": [{"id": 5, "stage": "post_vitrification", "scores": {"ice_quality_class": 1},
                    "images": [{"id": 9, "metrics": {"focus": 0.8}, "targets": [{"label": "cell 1", "x": 10.0}]}],
                    "operator": "bench", "checked_at": "2026-04-04T09:00:00+00:00"}],
        "qc_decisions": [{"id": 2, "check": 5, "decision": "accepted", "reasons": "even ice",
                          "decided_by": "reviewer", "decided_at": "2026-04-04T12:00:00+00:00"}],
        "gate_evaluations": [{"session": 8, "beamline": "hzb-u41-txm", "passed": True, "rules": [],
                              "evaluated_by": "bench", "evaluated_at": "2026-04-20T09:00:00+00:00"}],
        "sample_sheets": [{"entry": 11, "position": 1, "session": {"id": 8, "beamline": {"code": "hzb-u41-txm"}}}],
        "shipments": [{"id": 2, "dewar": "D-12", "status": "shipped", "created_by": "bench",
                       "shipped_at": "2026-05-02T08:00:00+00:00"}],
    },
)  # fmt: skip
