"""Exports for other tools: a dataset or a volume as an RO-Crate zip, and a tilt series' metadata in the
vocabulary public cryo-ET/SXT portals ask for.

Reconstruction is the top app, so it reads every lower app's records; the sample's preparation comes from
the grid's provenance document (`grids.provenance.grid_provenance`, filled by each app).

An RO-Crate (https://w3id.org/ro/crate/1.1) is a zip whose `ro-crate-metadata.json` (JSON-LD, schema.org
terms) describes every file in it (with its SHA-256), the instrument and acquisition parameters, the
sample's preparation as actions (who, when, with what), and the licence. The zip is streamed: each file
is read from disk in chunks and written into the response as it goes, so a 50 GB tilt series never sits
in memory or on the web server's temporary disk.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import statistics
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from drf_spectacular.utils import OpenApiExample

from grids.provenance import grid_provenance
from lims.errors import ConflictError
from reconstruction import services
from reconstruction.models import Dataset, DatasetFormat, JobState, ReconstructionJob, Volume
from vitrification import mmcif
from vitrification.models import GridOutcome

RO_CRATE_VERSION = "1.1"
RO_CRATE_CONTEXT = f"https://w3id.org/ro/crate/{RO_CRATE_VERSION}/context"
# schema.org has no checksum property; the Workflow Run RO-Crate term for SHA-256 is the one crates use.
EXTRA_TERMS = {"sha256": "https://w3id.org/ro/terms/workflow-run#sha256"}
METADATA_SCHEMA = "sxt-lims/tilt-series-metadata/1"
ENGINE_NAME = "SXT LIMS reconstruction engine"
READ_CHUNK = 1024 * 1024
DEFAULT_LICENSE = "https://creativecommons.org/licenses/by/4.0/"
DEFAULT_LICENSE_NAME = "Creative Commons Attribution 4.0 International (CC BY 4.0)"

ENCODING = {
    DatasetFormat.MRC: "application/octet-stream",
    DatasetFormat.FOCAL_SERIES: "application/octet-stream",
    DatasetFormat.TIFF: "image/tiff",
    DatasetFormat.NXTOMO: "application/x-hdf5",
}
# The PSF-aware methods are SIRT and MBIR with a depth-of-focus forward model: SIRT and MBIR in the portals'
# vocabulary.
RECONSTRUCTION_METHOD_NAMES = {
    "wbp": "WBP", "sirt": "SIRT", "cgls": "CGLS", "mbir": "MBIR", "psf-sirt": "SIRT", "psf-mbir": "MBIR",
}  # fmt: skip


# --- tilt-series metadata (portal vocabulary) -----------------------------------------------------------


def tilt_scheme(angles: Iterable[float]) -> dict[str, Any]:
    """Step and scheme of a tilt series from its angles in acquisition order.

    The scheme uses the CryoET Data Portal's words: "min to max tilt" or "max to min tilt" (one direction),
    "bidirectional" (from a start angle to one end, then from near the start to the other end) and
    "dose symmetric" (alternating sides with growing angle); anything else is "other".
    """
    order = [float(a) for a in angles]
    if len(order) < 2:
        return {"tilt_step": None, "tilting_scheme": "other", "uniform_step": False}
    ordered = sorted(order)
    steps = [b - a for a, b in zip(ordered, ordered[1:], strict=False) if b - a > 1e-6]
    step = round(statistics.median(steps), 4) if steps else None
    uniform = bool(steps) and max(steps) - min(steps) <= max(0.05, 0.05 * (step or 0))
    diffs = [b - a for a, b in zip(order, order[1:], strict=False)]
    if all(d > 0 for d in diffs):
        scheme = "min to max tilt"
    elif all(d < 0 for d in diffs):
        scheme = "max to min tilt"
    elif _bidirectional(order, diffs, step):
        scheme = "bidirectional"
    elif _dose_symmetric(order):
        scheme = "dose symmetric"
    else:
        scheme = "other"
    return {"tilt_step": step, "tilting_scheme": scheme, "uniform_step": uniform}


def _bidirectional(order: list[float], diffs: list[float], step: float | None) -> bool:
    """One run from the start angle to one end, then back near the start and on to the other end."""
    changes = [i for i in range(1, len(diffs)) if (diffs[i] > 0) != (diffs[i - 1] > 0)]
    if len(changes) != 1 or step is None:
        return False
    restart = order[changes[0] + 1]  # the first angle of the second run
    return abs(restart - order[0]) <= 2.5 * step and (restart - order[0]) * diffs[0] < 0


def _dose_symmetric(order: list[float]) -> bool:
    start = order[0]
    offsets = [a - start for a in order[1:]]
    growing = all(abs(b) >= abs(a) - 1e-6 for a, b in zip(offsets, offsets[1:], strict=False))
    sides = sum(1 for a, b in zip(offsets, offsets[1:], strict=False) if (a > 0) != (b > 0))
    return growing and sides >= len(offsets) // 3


def _angstrom(nm: float | None) -> float | None:
    return None if nm is None else round(nm * 10.0, 6)


def _when(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def reconstruction_metadata(job: ReconstructionJob, volume: Volume | None) -> dict[str, Any]:
    """One reconstruction in the portals' tomogram vocabulary (voxel spacing in Å), plus what SXT adds."""
    return {
        "job": job.pk,
        "state": job.state,
        "reconstruction_method": RECONSTRUCTION_METHOD_NAMES.get(job.method, job.method.upper()),
        "reconstruction_software": ENGINE_NAME,
        "software_version": job.engine_version,
        "parameters": job.parameters,
        "processing": "raw",
        "volume": None
        if volume is None
        else {
            "id": volume.pk,
            "voxel_spacing": _angstrom(volume.voxel_size_nm),
            "voxel_spacing_nm": volume.voxel_size_nm,
            "size_x": volume.width,
            "size_y": volume.depth,
            "size_z": volume.thickness,
            "units": volume.units,
            "values_absolute": volume.absolute,
            "resolution_nm": volume.resolution_nm,
            "resolution_criterion": "even/odd FSC 0.143" if volume.resolution_nm is not None else None,
            "sha256": volume.sha256,
            "size_bytes": volume.size_bytes,
            "created_at": _when(volume.created_at),
        },
        "requested_by": _who(job.created_by),
        "started_at": _when(job.started_at),
        "finished_at": _when(job.finished_at),
    }


def _who(user) -> str | None:
    return user.get_username() if user is not None else None


def tilt_series_metadata(dataset: Dataset, *, jobs: Iterable[ReconstructionJob] | None = None) -> dict[str, Any]:
    """The metadata a cryo-ET/SXT portal asks of a tilt series and its reconstructions.

    Field names follow the CryoET Data Portal's tilt-series and tomogram metadata (`tilt_min`, `tilt_max`,
    `tilt_range`, `tilt_step`, `tilting_scheme`, `pixel_spacing` and `voxel_spacing` in Å,
    `reconstruction_method`, `reconstruction_software`); soft X-ray adds the photon energy (in place of the
    acceleration voltage) and the zone-plate objective.
    """
    angles = [float(a) for a in dataset.angles or []]
    low, high = (min(angles), max(angles)) if angles else (None, None)
    scheme = tilt_scheme(angles)
    session = dataset.session
    beamline = session.beamline
    if jobs is None:
        jobs = dataset.jobs.select_related("created_by").order_by("pk")
    reconstructions = []
    for job in jobs:
        volume = getattr(job, "volume", None) if job.state == JobState.SUCCEEDED else None
        reconstructions.append(reconstruction_metadata(job, volume))
    return {
        "schema": METADATA_SCHEMA,
        "dataset": dataset.pk,
        "name": dataset.name,
        "grid": dataset.grid.barcode,
        "modality": "cryo soft X-ray tomography",
        "tilt_series": {
            "tilt_min": low,
            "tilt_max": high,
            "tilt_range": None if low is None else round(high - low, 4),
            "tilt_step": scheme["tilt_step"],
            "uniform_step": scheme["uniform_step"],
            "tilting_scheme": scheme["tilting_scheme"],
            "tilt_axis": None,
            "tilt_count": dataset.tilts,
            "angles": angles,
            "pixel_spacing": _angstrom(dataset.pixel_size_nm),
            "pixel_spacing_nm": dataset.pixel_size_nm,
            "photon_energy_ev": dataset.photon_energy_ev,
            "exposure_s": dataset.exposure_s,
            "image_size": {"x": dataset.columns, "y": dataset.rows},
            "focal_planes": dataset.focal_planes,
            "focal_planes_um": dataset.focal_planes_um,
            "projection_values": dataset.projection_values,
            "zone_plate": None
            if dataset.zone_plate_outer_zone_nm is None
            else {
                "outer_zone_width_nm": dataset.zone_plate_outer_zone_nm,
                "diameter_um": dataset.zone_plate_diameter_um,
            },
            "microscope": {
                "facility": beamline.facility.name,
                "beamline": beamline.name,
                "beamline_code": beamline.code,
            },
            "metadata_source": dataset.metadata_source,
            "file": {
                "name": dataset.name,
                "format": dataset.format,
                "sha256": dataset.sha256,
                "size_bytes": dataset.size_bytes,
            },
            "acquired_in_session": {
                "id": session.pk,
                "start": _when(session.start),
                "end": _when(session.end),
                "proposal": session.proposal.number,
            },
        },
        "reconstructions": reconstructions,
    }


# --- the crate --------------------------------------------------------------------------------------


@dataclass
class Member:
    """One file of the zip: read from `path` in chunks, or `data` (small, made here)."""

    name: str
    path: Path | None = None
    data: bytes | None = None
    compress: bool = True


@dataclass
class Crate:
    metadata: dict[str, Any]
    members: list[Member] = field(default_factory=list)
    filename: str = "ro-crate.zip"


def _ref(entity_id: str) -> dict[str, str]:
    return {"@id": entity_id}


def _person(user, lab=None) -> dict[str, Any] | None:
    if user is None:
        return None
    entity = {
        "@id": f"#person-{user.get_username()}",
        "@type": "Person",
        "name": user.get_full_name() or user.get_username(),
    }
    if lab is not None:
        entity["affiliation"] = _ref(f"#lab-{lab.code}")
    return entity


def _value(name: str, value, unit: str | None = None, code: str | None = None) -> dict[str, Any] | None:
    if value is None or value == "":
        return None
    entity = {"@type": "PropertyValue", "name": name, "value": value}
    if unit:
        entity["unitText"] = unit
    if code:
        entity["unitCode"] = code
    return entity


def _values(pairs) -> list[dict[str, Any]]:
    return [v for v in (_value(*pair) for pair in pairs) if v is not None]


class _Graph:
    """The @graph under construction: entities by @id, the first copy of each kept."""

    def __init__(self):
        self.entities: dict[str, dict[str, Any]] = {}

    def add(self, entity: dict[str, Any] | None) -> dict[str, str] | None:
        if entity is None:
            return None
        self.entities.setdefault(entity["@id"], entity)
        return _ref(entity["@id"])

    def person(self, user, lab=None) -> dict[str, str] | None:
        return self.add(_person(user, lab))

    def person_named(self, username: str | None, lab=None) -> dict[str, str] | None:
        if not username:
            return None
        entity = {"@id": f"#person-{username}", "@type": "Person", "name": username}
        if lab is not None:
            entity["affiliation"] = _ref(f"#lab-{lab.code}")
        return self.add(entity)


def _json_bytes(document) -> bytes:
    return json.dumps(document, indent=2, ensure_ascii=False, default=str).encode()


def _sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _license() -> tuple[str, str]:
    return (
        getattr(settings, "LIMS_EXPORT_LICENSE", "") or DEFAULT_LICENSE,
        getattr(settings, "LIMS_EXPORT_LICENSE_NAME", "") or DEFAULT_LICENSE_NAME,
    )


def _absolute(request, path: str) -> str:
    return request.build_absolute_uri(path) if request is not None else path


def _file_entity(name: str, *, size: int, sha256: str, encoding: str, description: str, **more) -> dict[str, Any]:
    entity = {
        "@id": name,
        "@type": "File",
        "name": Path(name).name,
        "description": description,
        "encodingFormat": encoding,
        "contentSize": str(size),
        "sha256": sha256,
    }
    entity.update({k: v for k, v in more.items() if v is not None})
    return entity


def _add_small_file(crate_files: list, members: list[Member], name: str, data: bytes, *, encoding: str,
                    description: str, **more) -> dict[str, str]:  # fmt: skip
    members.append(Member(name=name, data=data))
    entity = _file_entity(name, size=len(data), sha256=_sha256_bytes(data), encoding=encoding,
                          description=description, **more)  # fmt: skip
    crate_files.append(entity)
    return _ref(name)


def _check_file(path: Path, *, size: int, what: str) -> None:
    """A file listed in the crate must be there with the size on record (its checksum is the recorded one)."""
    try:
        actual = os.stat(path).st_size
    except OSError:
        raise ConflictError(f"The file of {what} is missing from {path}; restore it before exporting.") from None
    if actual != size:
        raise ConflictError(
            f"The file of {what} at {path} is {actual} bytes, not the {size} on record: it changed since it was "
            "registered, so its checksum would be wrong. Register it again before exporting."
        )


def _preparation(graph: _Graph, grid, provenance: dict[str, Any]) -> list[dict[str, str]]:
    """The sample's preparation as actions (seeding, vitrification, checks, QC decisions) with who and when."""
    lab = grid.lab
    grid_ref = _ref(f"#grid-{grid.barcode}")
    actions: list[dict[str, str]] = []
    lot = provenance.get("lot") or {}
    if lot:
        grid_type = lot.get("grid_type") or {}
        graph.add({
            "@id": f"#grid-lot-{lot['id']}", "@type": "Product", "name": f"Grid lot {lot.get('lot_number')}",
            "manufacturer": lot.get("vendor"), "model": grid_type.get("name"),
            "additionalProperty": _values([
                ("material", grid_type.get("material")), ("mesh", grid_type.get("mesh")),
                ("support film", grid_type.get("support_film")), ("hole pattern", grid_type.get("hole_pattern")),
            ]),
        })  # fmt: skip
    for seeding in provenance.get("seedings") or []:
        line = seeding.get("cell_line") or {}
        line_ref = graph.add({
            "@id": f"#cell-line-{line.get('id')}", "@type": "Thing", "name": line.get("name"),
            "description": f"Cell line {line.get('name')} ({line.get('organism') or 'organism not given'}), "
                           f"biosafety level {line.get('biosafety_level')}, from {line.get('source') or 'an unnamed source'}",
        })  # fmt: skip
        parameters = seeding.get("parameters") or {}
        actions.append(graph.add({
            "@id": f"#seeding-{seeding['id']}", "@type": "CreateAction", "name": "Cell seeding on the grid",
            "agent": graph.person_named(seeding.get("operator"), lab), "startTime": seeding.get("seeded_at"),
            "object": [line_ref] + _values((k, v) for k, v in parameters.items() if not isinstance(v, list | dict))
            + [_value(k, json.dumps(v)) for k, v in parameters.items() if isinstance(v, list | dict) and v],
            "result": grid_ref,
        }))  # fmt: skip
    vitrification = provenance.get("vitrification")
    if vitrification:
        instrument = vitrification.get("instrument") or {}
        instrument_ref = graph.add({
            "@id": f"#instrument-{instrument.get('id')}", "@type": "IndividualProduct",
            "name": instrument.get("name"), "model": instrument.get("model"),
            "serialNumber": instrument.get("serial_number") or None,
        })  # fmt: skip
        kind = "plunge freezing" if vitrification.get("kind") == "plunge" else "high-pressure freezing"
        actions.append(graph.add({
            "@id": f"#vitrification-run-{vitrification['run']}", "@type": "CreateAction",
            "name": f"Vitrification ({kind})", "instrument": instrument_ref,
            "agent": graph.person_named(vitrification.get("operator"), lab),
            "startTime": vitrification.get("performed_at"),
            "object": [grid_ref] + _values(vitrification_unit(k) for k in (vitrification.get("parameters") or {}).items()),
            "result": grid_ref,
            "actionStatus": "http://schema.org/CompletedActionStatus" if vitrification.get("outcome") == "ok"
            else "http://schema.org/FailedActionStatus",
            "description": " ".join(x for x in (f"Outcome: {vitrification.get('outcome')}.", vitrification.get("reason") or "",
                                                 vitrification.get("notes") or "") if x),
        }))  # fmt: skip
    for check in provenance.get("checks") or []:
        scores = check.get("scores") or {}
        actions.append(graph.add({
            "@id": f"#check-{check['id']}", "@type": "AssessAction",
            "name": f"Light-microscopy check ({str(check.get('stage', '')).replace('_', '-')})",
            "agent": graph.person_named(check.get("operator"), lab), "startTime": check.get("checked_at"),
            "object": grid_ref, "result": _values(scores.items()),
            "description": f"{len(check.get('images') or [])} image(s), with metrics and targets in "
                           "metadata/grid-provenance.json",
        }))  # fmt: skip
    for decision in provenance.get("qc_decisions") or []:
        actions.append(graph.add({
            "@id": f"#qc-decision-{decision['id']}", "@type": "AssessAction",
            "name": f"QC decision: {decision.get('decision')}", "agent": graph.person_named(decision.get("decided_by"), lab),
            "endTime": decision.get("decided_at"), "object": grid_ref,
            "description": decision.get("reasons") or None,
        }))  # fmt: skip
    return actions


VITRIFICATION_UNITS = {
    "blot_time_s": ("s", "SEC"), "wait_time_s": ("s", "SEC"), "humidity_percent": ("%", "P1"),
    "chamber_temperature_c": ("°C", "CEL"), "sample_volume_ul": ("µl", "4G"), "pressure_bar": ("bar", "BAR"),
    "cavity_depth_um": ("µm", "4H"),
}  # fmt: skip


def vitrification_unit(item):
    name, value = item
    unit, code = VITRIFICATION_UNITS.get(name, (None, None))
    return name, value, unit, code


def _acquisition(graph: _Graph, dataset: Dataset, series_ref: dict[str, str]) -> dict[str, str]:
    """The beamline (and its zone plate) as instruments, and the acquisition in its session."""
    session = dataset.session
    beamline = session.beamline
    facility = beamline.facility
    facility_ref = graph.add({
        "@id": f"#facility-{facility.pk}", "@type": "Organization", "name": facility.name,
        "alternateName": facility.short_name, "url": facility.website or None,
    })  # fmt: skip
    instruments = [graph.add({
        "@id": f"#beamline-{beamline.code}", "@type": "IndividualProduct",
        "name": f"{facility.short_name} {beamline.name}", "description": beamline.description or None,
        "manufacturer": facility_ref,
        "additionalProperty": _values([("typical photon energy", beamline.photon_energy_ev, "eV", "A53")]),
    })]  # fmt: skip
    if dataset.zone_plate_outer_zone_nm is not None:
        instruments.append(graph.add({
            "@id": "#zone-plate", "@type": "IndividualProduct", "name": "Zone-plate objective",
            "additionalProperty": _values([
                ("outer zone width", dataset.zone_plate_outer_zone_nm, "nm", "C45"),
                ("diameter", dataset.zone_plate_diameter_um, "µm", "4H"),
            ]),
        }))  # fmt: skip
    return graph.add({
        "@id": f"#acquisition-{dataset.pk}", "@type": "CreateAction",
        "name": f"Tilt-series acquisition at {facility.short_name} {beamline.name}",
        "instrument": instruments, "object": _ref(f"#grid-{dataset.grid.barcode}"), "result": series_ref,
        "agent": graph.person(session.local_contact) if session.local_contact_id else None,
        "startTime": _when(session.start), "endTime": _when(session.end),
        "description": f"Beamtime session #{session.pk} of proposal {session.proposal.number}",
    })  # fmt: skip


def _acquisition_values(dataset: Dataset, metadata: dict[str, Any]) -> list[dict[str, Any]]:
    series = metadata["tilt_series"]
    return _values([
        ("photon energy", dataset.photon_energy_ev, "eV", "A53"),
        ("pixel size", dataset.pixel_size_nm, "nm", "C45"),
        ("tilt min", series["tilt_min"], "°", "DD"), ("tilt max", series["tilt_max"], "°", "DD"),
        ("tilt range", series["tilt_range"], "°", "DD"), ("tilt step", series["tilt_step"], "°", "DD"),
        ("tilting scheme", series["tilting_scheme"]), ("tilt count", dataset.tilts),
        ("exposure", dataset.exposure_s, "s", "SEC"),
        ("zone plate outer zone width", dataset.zone_plate_outer_zone_nm, "nm", "C45"),
        ("zone plate diameter", dataset.zone_plate_diameter_um, "µm", "4H"),
        ("focal planes", dataset.focal_planes if dataset.focal_planes > 1 else None),
        ("image size (columns × rows)", f"{dataset.columns} × {dataset.rows}", "px"),
        ("projection values", dataset.get_projection_values_display()),
    ])  # fmt: skip


def _dataset_files(graph: _Graph, dataset: Dataset, metadata: dict[str, Any], *, members: list[Member],
                   files: list[dict], include_data: bool, request) -> dict[str, str]:  # fmt: skip
    """The tilt series itself (or a reference to it), its angles (.tlt), sidecar and montage."""
    stem = Path(dataset.name).stem or f"dataset-{dataset.pk}"
    described = {
        "dateCreated": _when(dataset.created_at),
        "additionalProperty": _acquisition_values(dataset, metadata),
    }
    if include_data:
        path = services.dataset_path(dataset)
        _check_file(path, size=dataset.size_bytes, what=f"dataset {dataset.name}")
        name = f"data/{Path(dataset.name).name}"
        members.append(Member(name=name, path=path, compress=False))
        files.append(_file_entity(
            name, size=dataset.size_bytes, sha256=dataset.sha256, encoding=ENCODING.get(dataset.format, "application/octet-stream"),
            description=f"Tilt series ({dataset.get_format_display()}) of grid {dataset.grid.barcode}", **described,
        ))  # fmt: skip
        series_ref = _ref(name)
    else:
        url = _absolute(request, reverse("dataset-ro-crate", args=[dataset.pk]))
        graph.add({
            "@id": f"#tilt-series-{dataset.pk}", "@type": "CreativeWork", "name": dataset.name,
            "description": f"Tilt series of grid {dataset.grid.barcode}, not in this crate: its own RO-Crate is at "
                           f"{url}", "url": url, "sha256": dataset.sha256, "contentSize": str(dataset.size_bytes),
            "encodingFormat": ENCODING.get(dataset.format, "application/octet-stream"), **described,
        })  # fmt: skip
        series_ref = _ref(f"#tilt-series-{dataset.pk}")
    if include_data:
        angles = "".join(f"{a:.4f}\n" for a in dataset.angles or []).encode()
        _add_small_file(files, members, f"data/{stem}.tlt", angles, encoding="text/plain",
                        description="Tilt angles in degrees, one a line in acquisition order (IMOD .tlt)")  # fmt: skip
        if dataset.sidecar:
            _add_small_file(files, members, f"data/{stem}.focal.json", _json_bytes(dataset.sidecar),
                            encoding="application/json", description="Focal-series sidecar (focal planes, zone plate)")  # fmt: skip
        if dataset.montage and default_storage.exists(dataset.montage.name):
            data = default_storage.open(dataset.montage.name, "rb").read()
            _add_small_file(files, members, "previews/montage.png", data, encoding="image/png",
                            description="Twelve projections across the tilt range")  # fmt: skip
    return series_ref


def _common(graph: _Graph, dataset: Dataset, *, members: list[Member], files: list[dict], metadata: dict[str, Any],
            series_ref: dict[str, str]) -> list[dict[str, str]]:  # fmt: skip
    """Lab, sample, preparation, acquisition, registration and decision of a dataset; the metadata files."""
    grid = dataset.grid
    lab = dataset.lab
    graph.add({"@id": f"#lab-{lab.code}", "@type": "Organization", "name": lab.name,
               "parentOrganization": {"@id": f"#institution-{lab.code}"} if lab.institution else None})  # fmt: skip
    if lab.institution:
        graph.add({"@id": f"#institution-{lab.code}", "@type": "Organization", "name": lab.institution})
    provenance = grid_provenance(grid=grid)
    lot = provenance.get("lot") or {}
    graph.add({
        "@id": f"#grid-{grid.barcode}", "@type": "Thing", "name": f"Grid {grid.barcode}", "identifier": grid.barcode,
        "description": f"A {(lot.get('grid_type') or {}).get('name', '')} grid of lab {lab.name} carrying "
                       "vitrified cells; its whole history is in metadata/grid-provenance.json",
        "isBasedOn": _ref(f"#grid-lot-{lot['id']}") if lot else None,
    })  # fmt: skip
    actions = _preparation(graph, grid, provenance)
    actions.append(_acquisition(graph, dataset, series_ref))
    actions.append(graph.add({
        "@id": f"#registration-{dataset.pk}", "@type": "CreateAction", "name": "Dataset added to the LIMS",
        "agent": graph.person(dataset.created_by, lab), "endTime": _when(dataset.created_at), "result": series_ref,
        "description": f"Values taken from the file or the form: {json.dumps(dataset.metadata_source)}",
    }))  # fmt: skip
    if dataset.decided_by_id:
        actions.append(graph.add({
            "@id": f"#decision-{dataset.pk}", "@type": "AssessAction", "name": f"Dataset {dataset.status}",
            "agent": graph.person(dataset.decided_by), "endTime": _when(dataset.decided_at), "object": series_ref,
            "description": dataset.decision_note or None,
        }))  # fmt: skip
    _add_small_file(files, members, "metadata/tilt-series.json", _json_bytes(metadata), encoding="application/json",
                    description="Tilt-series metadata in the vocabulary of public cryo-ET/SXT portals",
                    conformsTo=_ref(f"#{METADATA_SCHEMA}"))  # fmt: skip
    graph.add({"@id": f"#{METADATA_SCHEMA}", "@type": "CreativeWork", "name": METADATA_SCHEMA,
               "description": "SXT LIMS tilt-series metadata, field names after the CryoET Data Portal"})  # fmt: skip
    _add_small_file(files, members, "metadata/grid-provenance.json", _json_bytes(provenance),
                    encoding="application/json", description=f"The whole history of grid {grid.barcode}: lot, "
                    "seeding, vitrification, checks with metrics and targets, QC decisions, gate, sessions, "
                    "shipments, datasets, jobs and volumes, each with who and when")  # fmt: skip
    outcome = GridOutcome.objects.filter(grid=grid).select_related("plunge_run__instrument", "hpf_run__instrument")
    run = next(((o.plunge_run or o.hpf_run) for o in outcome[:1]), None)
    if run is not None:
        _add_small_file(files, members, f"metadata/vitrification-run-{run.pk}.cif",
                        mmcif.run_fragment(run).encode(), encoding="chemical/x-mmcif",
                        description=f"The vitrification run as a PDBx/mmCIF {mmcif.category(run)} fragment")  # fmt: skip
    return actions


def _engine(graph: _Graph, version: str) -> dict[str, str]:
    return graph.add({
        "@id": f"#engine-{version}", "@type": "SoftwareApplication", "name": ENGINE_NAME, "version": version,
        "description": "Pure numpy/numba tomographic reconstruction (WBP, SIRT, CGLS, MBIR) with depth-of-focus "
                       "handling for soft X-ray zone-plate microscopes",
    })  # fmt: skip


def _job_action(graph: _Graph, job: ReconstructionJob, *, series_ref, volume_ref=None) -> dict[str, str]:
    status = {
        JobState.SUCCEEDED: "http://schema.org/CompletedActionStatus",
        JobState.FAILED: "http://schema.org/FailedActionStatus",
        JobState.RUNNING: "http://schema.org/ActiveActionStatus",
        JobState.QUEUED: "http://schema.org/PotentialActionStatus",
    }.get(job.state, "http://schema.org/FailedActionStatus")
    parameters = [_value(k, v if not isinstance(v, list | dict) else json.dumps(v)) for k, v in job.parameters.items()]
    return graph.add({
        "@id": f"#reconstruction-job-{job.pk}", "@type": "CreateAction",
        "name": f"Reconstruction ({RECONSTRUCTION_METHOD_NAMES.get(job.method, job.method)}), job #{job.pk}",
        "instrument": _engine(graph, job.engine_version), "agent": graph.person(job.created_by),
        "object": [series_ref] + [p for p in parameters if p is not None], "result": volume_ref,
        "startTime": _when(job.started_at or job.created_at), "endTime": _when(job.finished_at),
        "actionStatus": status, "error": job.error or None,
    })  # fmt: skip


def _document(*, root: dict[str, Any], files: list[dict], graph: _Graph) -> dict[str, Any]:
    license_url, license_name = _license()
    graph.add({"@id": license_url, "@type": "CreativeWork", "name": license_name})
    root = {
        "@id": "./", "@type": "Dataset", "datePublished": timezone.now().isoformat(),
        "license": _ref(license_url), "hasPart": [_ref(f["@id"]) for f in files], **root,
    }  # fmt: skip
    descriptor = {
        "@id": "ro-crate-metadata.json",
        "@type": "CreativeWork",
        "conformsTo": _ref(f"https://w3id.org/ro/crate/{RO_CRATE_VERSION}"),
        "about": _ref("./"),
    }
    entities = [_clean(e) for e in [descriptor, root, *files, *graph.entities.values()]]
    return {"@context": [RO_CRATE_CONTEXT, EXTRA_TERMS], "@graph": _flattened(entities)}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", str(text)).strip("-").lower() or "x"


def _flattened(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """RO-Crate's @graph is flat: each nested entity (a PropertyValue of a file or an action) gets an @id
    of its own, made from its owner's and its name, and the owner refers to it."""
    out: list[dict[str, Any]] = []
    taken = {e["@id"] for e in entities}

    def lift(value, owner: str):
        if isinstance(value, list):
            return [lift(v, owner) for v in value]
        if isinstance(value, dict) and "@type" in value and "@id" not in value:
            base = f"#{_slug(owner.lstrip('#'))}-{_slug(value.get('name', 'value'))}"
            entity_id, n = base, 1
            while entity_id in taken:
                n += 1
                entity_id = f"{base}-{n}"
            taken.add(entity_id)
            out.append({"@id": entity_id, **{k: lift(v, entity_id) for k, v in value.items()}})
            return {"@id": entity_id}
        return value

    for entity in entities:
        out.append({k: lift(v, entity["@id"]) for k, v in entity.items()})
    return out


def _clean(entity):
    """Drop the properties that have no value (JSON-LD has no use for nulls or empty lists)."""
    if isinstance(entity, dict):
        return {k: _clean(v) for k, v in entity.items() if v is not None and v != [] and v != ""}
    if isinstance(entity, list):
        return [_clean(v) for v in entity if v is not None]
    return entity


def dataset_crate(dataset: Dataset, *, request=None) -> Crate:
    """The dataset as an RO-Crate: its file, angles, sidecar, montage and metadata, the sample's preparation,
    the acquisition, and the reconstructions asked of it (their volumes are in each volume's own crate)."""
    graph = _Graph()
    members: list[Member] = []
    files: list[dict] = []
    jobs = list(dataset.jobs.select_related("created_by", "volume").order_by("pk"))
    metadata = tilt_series_metadata(dataset, jobs=jobs)
    series_ref = _dataset_files(graph, dataset, metadata, members=members, files=files, include_data=True,
                                request=request)  # fmt: skip
    actions = _common(graph, dataset, members=members, files=files, metadata=metadata, series_ref=series_ref)
    for job in jobs:
        volume = getattr(job, "volume", None) if job.state == JobState.SUCCEEDED else None
        volume_ref = None
        if volume is not None:
            url = _absolute(request, reverse("volume-ro-crate", args=[volume.pk]))
            volume_ref = graph.add({
                "@id": f"#volume-{volume.pk}", "@type": "CreativeWork", "name": f"Volume #{volume.pk}",
                "description": f"MRC volume in {volume.units}, not in this crate: its own RO-Crate is at {url}",
                "url": url, "sha256": volume.sha256, "contentSize": str(volume.size_bytes),
            })  # fmt: skip
        actions.append(_job_action(graph, job, series_ref=series_ref, volume_ref=volume_ref))
    people = sorted({a["@id"] for a in graph.entities.values() if a.get("@type") == "Person"})
    root = {
        "name": f"Tilt series {dataset.name} of grid {dataset.grid.barcode}",
        "description": f"Cryo soft X-ray tilt series of grid {dataset.grid.barcode} ({dataset.tilts} tilts, "
                       f"{metadata['tilt_series']['tilt_min']}° to {metadata['tilt_series']['tilt_max']}°, "
                       f"{dataset.pixel_size_nm} nm pixels) from lab {dataset.lab.name}, with its sample's "
                       "preparation, acquisition and reconstructions.",
        "identifier": f"sxt-lims-dataset-{dataset.pk}", "dateCreated": _when(dataset.created_at),
        "author": [_ref(p) for p in people], "publisher": _ref(f"#lab-{dataset.lab.code}"),
        "about": _ref(f"#grid-{dataset.grid.barcode}"), "mentions": actions,
    }  # fmt: skip
    document = _document(root=root, files=files, graph=graph)
    return Crate(metadata=document, members=members, filename=f"{Path(dataset.name).stem or 'dataset'}-ro-crate.zip")


def volume_crate(volume: Volume, *, request=None) -> Crate:
    """The volume as an RO-Crate: the MRC, its orthoslice previews and FSC curve, the reconstruction that made
    it (engine, version, parameters, who, when), and the tilt series it came from with its preparation (the
    series itself is referenced by checksum and by the URL of its own crate)."""
    job = volume.job
    dataset = job.dataset
    graph = _Graph()
    members: list[Member] = []
    files: list[dict] = []
    metadata = tilt_series_metadata(dataset, jobs=[job])
    series_ref = _dataset_files(graph, dataset, metadata, members=members, files=files, include_data=False,
                                request=request)  # fmt: skip
    path = services.volume_path(volume)
    _check_file(path, size=volume.size_bytes, what=f"volume #{volume.pk}")
    name = f"data/{Path(dataset.name).stem}-{job.method}-job{job.pk}.mrc"
    members.append(Member(name=name, path=path, compress=False))
    files.append(_file_entity(
        name, size=volume.size_bytes, sha256=volume.sha256, encoding="application/octet-stream",
        description=f"Reconstructed volume (MRC, {volume.width} × {volume.depth} × {volume.thickness} voxels of "
                    f"{volume.voxel_size_nm} nm) in {volume.units}"
                    + ("" if volume.absolute else "; values are not absolute"),
        dateCreated=_when(volume.created_at),
        additionalProperty=_values([
            ("voxel size", volume.voxel_size_nm, "nm", "C45"), ("units", volume.units),
            ("values absolute", volume.absolute), ("resolution (even/odd FSC 0.143)", volume.resolution_nm, "nm", "C45"),
            ("value min", volume.value_min), ("value max", volume.value_max), ("value mean", volume.value_mean),
        ]),
    ))  # fmt: skip
    volume_ref = _ref(name)
    for plane, stored in sorted((volume.previews or {}).items()):
        if stored and default_storage.exists(stored):
            _add_small_file(files, members, f"previews/{plane}.png", default_storage.open(stored, "rb").read(),
                            encoding="image/png", description=f"Orthoslice preview, plane {plane}")  # fmt: skip
    if volume.fsc:
        _add_small_file(files, members, "metadata/fsc.json",
                        _json_bytes({"fsc": volume.fsc, "resolution_nm": volume.resolution_nm, "threshold": 0.143}),
                        encoding="application/json", description="Even/odd Fourier shell correlation of the volume")  # fmt: skip
    actions = _common(graph, dataset, members=members, files=files, metadata=metadata, series_ref=series_ref)
    actions.append(_job_action(graph, job, series_ref=series_ref, volume_ref=volume_ref))
    people = sorted({a["@id"] for a in graph.entities.values() if a.get("@type") == "Person"})
    root = {
        "name": f"Volume #{volume.pk}: {RECONSTRUCTION_METHOD_NAMES.get(job.method, job.method)} reconstruction of "
                f"{dataset.name} (grid {dataset.grid.barcode})",
        "description": f"Cryo soft X-ray tomogram of grid {dataset.grid.barcode} from lab {dataset.lab.name}, "
                       f"reconstructed by {ENGINE_NAME} {job.engine_version}, with the acquisition and the sample's "
                       "preparation.",
        "identifier": f"sxt-lims-volume-{volume.pk}", "dateCreated": _when(volume.created_at),
        "author": [_ref(p) for p in people], "publisher": _ref(f"#lab-{dataset.lab.code}"),
        "about": _ref(f"#grid-{dataset.grid.barcode}"), "mentions": actions, "isBasedOn": series_ref,
    }  # fmt: skip
    document = _document(root=root, files=files, graph=graph)
    return Crate(metadata=document, members=members, filename=f"volume-{volume.pk}-ro-crate.zip")


# --- streaming the zip --------------------------------------------------------------------------------


class _Sink:
    """A write-only, unseekable file for zipfile: what is written is collected until taken."""

    def __init__(self):
        self._parts: list[bytes] = []

    def write(self, data) -> int:
        self._parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def _zip_time(moment: datetime.datetime | None = None) -> tuple[int, int, int, int, int, int]:
    moment = timezone.localtime(moment or timezone.now())
    return (max(moment.year, 1980), moment.month, moment.day, moment.hour, moment.minute, moment.second)


def crate_chunks(crate: Crate) -> Iterator[bytes]:
    """The crate's zip, piece by piece: metadata first, then each file read in READ_CHUNK pieces.

    zipfile writes to an unseekable sink with data descriptors (sizes and CRC after each file), so nothing
    is held beyond one chunk. Large files are stored (their bytes are not compressible enough to pay for
    deflating gigabytes); small metadata files are deflated. ZIP64 is used where a file needs it.
    """
    sink = _Sink()
    stamp = _zip_time()
    with zipfile.ZipFile(sink, mode="w", allowZip64=True) as archive:
        members = [Member(name="ro-crate-metadata.json", data=_json_bytes(crate.metadata)), *crate.members]
        for member in members:
            info = zipfile.ZipInfo(member.name, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED if member.compress else zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            if member.data is not None:
                with archive.open(info, mode="w") as out:
                    out.write(member.data)
                yield sink.take()
                continue
            size = os.stat(member.path).st_size
            with open(member.path, "rb") as source, archive.open(info, mode="w", force_zip64=size > 2**31) as out:
                while block := source.read(READ_CHUNK):
                    out.write(block)
                    yield sink.take()
            yield sink.take()
    yield sink.take()


def crate_response(crate: Crate) -> StreamingHttpResponse:
    response = StreamingHttpResponse(crate_chunks(crate), content_type="application/zip")
    response["Content-Disposition"] = content_disposition_header(True, crate.filename)
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response


METADATA_EXAMPLE = OpenApiExample(
    "A tilt series with one SIRT reconstruction",
    response_only=True,
    value={
        "schema": METADATA_SCHEMA,
        "dataset": 1,
        "name": "cell-01.mrc",
        "grid": "DEMO-0001-002",
        "modality": "cryo soft X-ray tomography",
        "tilt_series": {
            "tilt_min": -60.0, "tilt_max": 60.0, "tilt_range": 120.0, "tilt_step": 2.0, "uniform_step": True,
            "tilting_scheme": "min to max tilt", "tilt_axis": None, "tilt_count": 61, "angles": [-60.0, -58.0, "…"],
            "pixel_spacing": 400.0, "pixel_spacing_nm": 40.0, "photon_energy_ev": 520.0, "exposure_s": 1.5,
            "image_size": {"x": 64, "y": 32}, "focal_planes": 1, "focal_planes_um": None,
            "projection_values": "absorbance",
            "zone_plate": {"outer_zone_width_nm": 25.0, "diameter_um": 60.0},
            "microscope": {"facility": "Helmholtz-Zentrum Berlin", "beamline": "U41 TXM", "beamline_code": "hzb-u41"},
            "metadata_source": {"pixel_size_nm": "file", "photon_energy_ev": "form"},
            "file": {"name": "cell-01.mrc", "format": "mrc", "sha256": "5c63a5c7…", "size_bytes": 1000448},
            "acquired_in_session": {"id": 2, "start": "2026-05-04T08:00:00+00:00", "end": "2026-05-05T08:00:00+00:00",
                                    "proposal": "DEMO-2026-0042"},
        },
        "reconstructions": [{
            "job": 1, "state": "succeeded", "reconstruction_method": "SIRT",
            "reconstruction_software": ENGINE_NAME, "software_version": "1.1.0",
            "parameters": {"iterations": 30, "thickness": 64}, "processing": "raw",
            "volume": {"id": 1, "voxel_spacing": 400.0, "voxel_spacing_nm": 40.0, "size_x": 64, "size_y": 32,
                       "size_z": 64, "units": "µm⁻¹", "values_absolute": True, "resolution_nm": 96.5,
                       "resolution_criterion": "even/odd FSC 0.143", "sha256": "9a1e…", "size_bytes": 525312,
                       "created_at": "2026-05-04T10:12:00+00:00"},
            "requested_by": "bench", "started_at": "2026-05-04T10:10:00+00:00",
            "finished_at": "2026-05-04T10:12:00+00:00",
        }],
    },
)  # fmt: skip
