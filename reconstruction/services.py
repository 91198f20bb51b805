"""Every write of the reconstruction app: datasets (upload, registration, decision), jobs and their slabs,
volumes. Pages, the API, tasks and the demo all call these."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F
from django.http import Http404
from django.utils import timezone

from beamtime import access
from beamtime.models import BeamtimeSession, SampleSheetEntry
from characterization.models import Target
from grids import insights
from grids import services as grid_services
from grids.lifecycle import GridState
from grids.models import Grid
from lims import permissions
from lims.errors import ConflictError, DomainError
from lims.lifecycle import Lifecycle, transition
from lims.ranges import validated
from reconstruction import ingest, previews, selectors
from reconstruction.engine._version import __version__ as ENGINE_VERSION
from reconstruction.models import (
    Dataset,
    DatasetFormat,
    DatasetStatus,
    DatasetTransition,
    DatasetUpload,
    JobSlab,
    JobState,
    JobTransition,
    ProjectionValues,
    ReconstructionJob,
    ReconstructionWorker,
    SlabPart,
    SlabState,
    Volume,
)
from reconstruction.ranges import RANGES

log = logging.getLogger(__name__)

# --- lifecycles -------------------------------------------------------------------------------------

D, J = DatasetStatus, JobState
DATASET_LIFECYCLE = Lifecycle(
    noun="dataset",
    states=DatasetStatus,
    moves={
        D.PENDING: frozenset({D.ACCEPTED, D.REJECTED}),
        D.REJECTED: frozenset({D.ACCEPTED}),
        D.ACCEPTED: frozenset(),
    },
    word="status",
)
JOB_LIFECYCLE = Lifecycle(
    noun="reconstruction job",
    states=JobState,
    moves={
        J.QUEUED: frozenset({J.RUNNING, J.FAILED, J.CANCELLED}),
        J.RUNNING: frozenset({J.SUCCEEDED, J.FAILED, J.CANCELLED}),
        J.SUCCEEDED: frozenset(),
        J.FAILED: frozenset(),
        J.CANCELLED: frozenset(),
    },
)

# States of a grid a dataset can be added in: at the beamline, or already imaged.
DATASET_GRID_STATES = (GridState.SHIPPED, GridState.IMAGED)
MAX_SLAB_ATTEMPTS = 3


# --- who may do what ------------------------------------------------------------------------------


def may_handle_dataset(user, *, lab_id: int, session: BeamtimeSession) -> bool:
    """The grid's lab, or the staff of the facility whose beamline the session ran on."""
    return permissions.is_member(user, lab_id) or access.is_staff_of(user, session.beamline.facility_id)


def _require_dataset_rights(user, dataset: Dataset) -> None:
    if not may_handle_dataset(user, lab_id=dataset.lab_id, session=dataset.session):
        raise Http404("No such dataset.")


# --- files ------------------------------------------------------------------------------------------


def data_roots() -> list[Path]:
    """The folders registered datasets may live in (LIMS_DATA_ROOTS), resolved."""
    return [Path(root).resolve() for root in getattr(settings, "LIMS_DATA_ROOTS", []) if root]


def resolve_data_path(text: str) -> Path:
    """A path under a data root, with every `..` and symbolic link resolved first; anything else is refused."""
    text = (text or "").strip()
    if not text:
        raise DomainError("path: give the full path of the tilt-series file on the facility's storage.", field="path")
    if "\x00" in text or "\n" in text or "\r" in text:
        raise DomainError("path: the path contains a control character; copy it again.", field="path")
    roots = data_roots()
    if not roots:
        raise DomainError(
            "This installation has no data roots (LIMS_DATA_ROOTS), so files cannot be registered by path; "
            "upload the file instead.",
            field="path",
        )
    candidate = Path(text)
    if not candidate.is_absolute():
        raise DomainError(f"path: {text!r} is not an absolute path (it must start with /).", field="path")
    resolved = candidate.resolve()
    if not any(resolved == root or root in resolved.parents for root in roots):
        where = ", ".join(str(r) for r in roots)
        raise DomainError(
            f"path: {text} is outside the data roots ({where}); only files there can be registered.", field="path"
        )
    if not resolved.is_file():
        raise DomainError(f"path: there is no file at {text}.", field="path")
    return resolved


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(4 * 1024 * 1024), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _max_decoded_bytes() -> int:
    return int(getattr(settings, "LIMS_DATASET_MAX_DECODED_BYTES", ingest.DEFAULT_MAX_DECODED_BYTES))


def dataset_path(dataset: Dataset) -> Path:
    """Where the dataset's file is on this host."""
    if dataset.source_path:
        return Path(dataset.source_path)
    return Path(default_storage.path(dataset.file.name))


def _delete_stored(names) -> None:
    for name in names:
        if name:
            try:
                default_storage.delete(name)
            except OSError:
                log.warning("could not remove %s", name)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write to a temporary name beside `path`, then rename: a crash never leaves a file that looks complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# --- datasets -------------------------------------------------------------------------------------


@dataclass
class Acquisition:
    """What the person says about the acquisition (None: not said; the file's value, if any, is used)."""

    pixel_size_nm: float | None = None
    photon_energy_ev: float | None = None
    exposure_s: float | None = None
    zone_plate_outer_zone_nm: float | None = None
    zone_plate_diameter_um: float | None = None
    projection_values: str | None = None


def _check_grid_for_dataset(by, *, session: BeamtimeSession, grid: Grid) -> None:
    if not may_handle_dataset(by, lab_id=grid.lab_id, session=session):
        raise Http404("No such grid or session.")
    if not SampleSheetEntry.objects.filter(session=session, grid=grid).exists():
        raise DomainError(
            f"grid: {grid.barcode} is not on the sample sheet of session #{session.pk}; a dataset belongs to a grid "
            "that was imaged in that session.",
            field="grid",
        )
    if grid.state not in DATASET_GRID_STATES:
        raise ConflictError(
            f"grid: {grid.barcode} is {grid.get_state_display().lower()}; datasets are added once the grid has been "
            "shipped to the beamline (mark the shipment as shipped first).",
            field="grid",
        )


def dataset_create(
    *,
    by,
    session: BeamtimeSession,
    grid: Grid,
    local_path: Path,
    name: str,
    keep: str,
    angles: list[float] | None = None,
    sidecar: dict | None = None,
    target: Target | None = None,
    acquisition: Acquisition | None = None,
    notes: str = "",
) -> Dataset:
    """Read the file as the engine will, check its metadata against physical ranges, then record it.

    `keep` is "copy" (an upload: the file is copied into storage) or "register" (a file under a data root:
    it stays where it is). A refused file leaves no row and no stored file. The grid's first dataset moves
    the grid to `imaged`.
    """
    _check_grid_for_dataset(by, session=session, grid=grid)
    if target is not None and target.image.lm_check.grid_id != grid.pk:
        raise DomainError("target: this target was marked on another grid.", field="target")
    acquisition = acquisition or Acquisition()
    try:
        info = ingest.inspect(
            local_path, name=name, angles=angles, sidecar=sidecar, max_decoded_bytes=_max_decoded_bytes()
        )
    except ingest.IngestRefused as error:
        raise DomainError(str(error), field=error.field) from None
    if info.angles is None:
        raise DomainError(
            f"angles: {name} does not hold its tilt angles; give a .tlt file or type them (e.g. -60:60:2).",
            field="angles",
        )
    source: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key in ("pixel_size_nm", "photon_energy_ev", "exposure_s"):
        given, found = getattr(acquisition, key), getattr(info, key)
        values[key] = given if given is not None else found
        if values[key] is not None:
            source[key] = "form" if given is not None else "file"
    if info.nxtomo_entry:
        source["nxtomo_entry"] = info.nxtomo_entry
    zp = info.zone_plate or {}
    values["zone_plate_outer_zone_nm"] = (
        acquisition.zone_plate_outer_zone_nm
        if acquisition.zone_plate_outer_zone_nm is not None
        else zp.get("outer_zone_width_nm")
    )
    values["zone_plate_diameter_um"] = (
        acquisition.zone_plate_diameter_um if acquisition.zone_plate_diameter_um is not None else zp.get("diameter_um")
    )
    if values["photon_energy_ev"] is None and zp.get("energy_ev"):
        values["photon_energy_ev"], source["photon_energy_ev"] = zp["energy_ev"], "file"
    if values["pixel_size_nm"] is None:
        raise DomainError(
            f"pixel_size_nm: {name} does not say its pixel size; give it in nm (at the sample, e.g. 10–20 nm).",
            field="pixel_size_nm",
        )
    projection_values = acquisition.projection_values or info.projection_values
    if projection_values not in ProjectionValues.values:
        raise DomainError(
            f"projection_values: use one of {', '.join(ProjectionValues.values)}.", field="projection_values"
        )
    if projection_values == ProjectionValues.COUNTS and info.format != DatasetFormat.NXTOMO:
        raise DomainError(
            "projection_values: raw counts need flat and dark frames, which only an NXtomo file carries; "
            "give transmission or absorbance.",
            field="projection_values",
        )
    sha = sha256_of(local_path)
    existing = Dataset.objects.filter(grid=grid, sha256=sha).first()
    if existing:
        raise ConflictError(
            f"file: this file is already dataset #{existing.pk} ({existing.name}) of this grid.", field="file"
        )
    dataset = Dataset(
        lab_id=grid.lab_id,
        session=session,
        grid=grid,
        target=target,
        name=(Path(name).name or "tilt series")[:200],
        format=info.format,
        sidecar=sidecar,
        sha256=sha,
        size_bytes=local_path.stat().st_size,
        projection_values=projection_values,
        tilts=info.tilts,
        focal_planes=info.focal_planes,
        rows=info.rows,
        columns=info.columns,
        angles=[round(float(a), 4) for a in info.angles],
        focal_planes_um=info.focal_planes_um,
        metadata_source=source,
        notes=notes,
        created_by=by,
        **values,
    )
    validated(dataset, exclude=["file", "montage", "sha256", "created_by", "session", "grid", "lab", "angles"])
    if dataset.zone_plate_outer_zone_nm is not None and dataset.photon_energy_ev is None:
        raise DomainError(
            "photon_energy_ev: give the photon energy too; the zone plate's depth of focus depends on it.",
            field="photon_energy_ev",
        )
    projections = ingest.load_projections(
        local_path, fmt=info.format, projection_values=projection_values, focal_planes=info.focal_planes, name=name
    )
    montage = previews.montage(projections, dataset.angles)
    dataset.alignment = series_alignment(projections, dataset.angles)
    dataset.relative_noise = series_noise(projections)
    del projections
    stored: list[str] = []
    try:
        with transaction.atomic():
            if keep == "register":
                dataset.source_path = str(local_path)
            else:
                with open(local_path, "rb") as handle:
                    dataset.file.save(dataset.name, File(handle, name=dataset.name), save=False)
                stored.append(dataset.file.name)
            dataset.montage.save("montage.png", ContentFile(montage), save=False)
            stored.append(dataset.montage.name)
            dataset.save()
            grid = Grid.objects.select_for_update().get(pk=grid.pk)
            if grid.state == GridState.SHIPPED:
                grid_services.grids_transition(
                    grids=[grid], to_state=GridState.IMAGED, by=by, cause=f"dataset {dataset.pk}",
                    reason=f"first dataset: {dataset.name}", authorized=True, from_states=[GridState.SHIPPED],
                )  # fmt: skip
    except IntegrityError:
        _delete_stored(stored)
        raise ConflictError("file: this file is already a dataset of this grid.", field="file") from None
    except BaseException:
        _delete_stored(stored)
        raise
    return dataset


def dataset_upload(
    *, by, session, grid, upload, angles_text: str = "", angles_file=None, sidecar_file=None, **kwargs
) -> Dataset:
    """An uploaded file (Django UploadedFile) becomes a dataset; see `dataset_create`."""
    angles = _angles_from(angles_text, angles_file)
    sidecar = _sidecar_from(sidecar_file)
    name = getattr(upload, "name", "") or "upload"
    if hasattr(upload, "temporary_file_path"):
        return dataset_create(
            by=by, session=session, grid=grid, local_path=Path(upload.temporary_file_path()), name=name,
            keep="copy", angles=angles, sidecar=sidecar, **kwargs,
        )  # fmt: skip
    suffix = "".join(Path(name).suffixes[-1:])
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        for chunk in upload.chunks():
            tmp.write(chunk)
        tmp.flush()
        return dataset_create(
            by=by, session=session, grid=grid, local_path=Path(tmp.name), name=name, keep="copy",
            angles=angles, sidecar=sidecar, **kwargs,
        )  # fmt: skip


def dataset_register(
    *, by, session, grid, path: str, angles_text: str = "", angles_file=None, sidecar_file=None, **kwargs
) -> Dataset:
    """A file already on the facility's storage (under LIMS_DATA_ROOTS) becomes a dataset, left where it is."""
    resolved = resolve_data_path(path)
    angles = _angles_from(angles_text, angles_file)
    if angles is None and resolved.with_suffix(".tlt").is_file():
        angles = _parse(ingest.read_tlt_text, resolved.with_suffix(".tlt").read_bytes())
    sidecar = _sidecar_from(sidecar_file)
    if sidecar is None and resolved.with_suffix(".focal.json").is_file():
        sidecar = _parse(ingest.parse_sidecar, resolved.with_suffix(".focal.json").read_bytes())
    return dataset_create(
        by=by, session=session, grid=grid, local_path=resolved, name=resolved.name, keep="register",
        angles=angles, sidecar=sidecar, **kwargs,
    )  # fmt: skip


def _parse(function, value):
    try:
        return function(value)
    except ingest.IngestRefused as error:
        raise DomainError(str(error), field=error.field) from None


def _angles_from(text: str, upload) -> list[float] | None:
    if upload is not None:
        if getattr(upload, "size", 0) > 1024 * 1024:
            raise DomainError("angles: a .tlt file is a few kB; this one is over 1 MB.", field="angles")
        return _parse(ingest.read_tlt_text, upload.read())
    if text and text.strip():
        return _parse(ingest.parse_angles, text)
    return None


def _sidecar_from(upload) -> dict | None:
    if upload is None:
        return None
    if getattr(upload, "size", 0) > 1024 * 1024:
        raise DomainError(
            "sidecar: a focal-series sidecar is a small JSON file; this one is over 1 MB.", field="sidecar"
        )
    return _parse(ingest.parse_sidecar, upload.read())


def dataset_decide(*, dataset: Dataset, accept: bool, by, note: str = "") -> ReconstructionJob | None:
    """Accept (and start the default reconstruction) or reject a dataset; returns the started job."""
    _require_dataset_rights(by, dataset)
    to_status = DatasetStatus.ACCEPTED if accept else DatasetStatus.REJECTED
    if not accept and not note.strip():
        raise DomainError(
            "note: say why the dataset is rejected (out of focus, drift, ice, wrong grid…).", field="note"
        )
    now = timezone.now()

    def on_move(row: Dataset) -> None:
        row.decided_by, row.decided_at, row.decision_note = by, now, note.strip()

    with transaction.atomic():
        transition(
            lifecycle=DATASET_LIFECYCLE,
            queryset=Dataset.objects.all(),
            ids=[dataset.pk],
            to_state=to_status,
            field="status",
            audit=lambda row, before: DatasetTransition(
                dataset=row, from_status=before, to_status=to_status, by=by, reason=note.strip()
            ),
            on_move=on_move,
            change_reason=f"dataset {to_status}",
        )
        dataset.refresh_from_db()
        insights.grid_facts_changed([dataset.grid_id])
        job = None
        if accept:
            for method in default_jobs(dataset):  # the preview first: its slabs reach the workers first
                job, _ = job_request(dataset=dataset, method=method, parameters={}, by=by)
    return job


# --- alignment --------------------------------------------------------------------------------------

# Alignment works on a copy binned to at most this many columns: drift is a few pixels, the cross-correlation's
# cost grows with the area, and the shifts scale back with the binning.
ALIGNMENT_MAX_COLUMNS = 256


def series_alignment(projections: np.ndarray, angles: list[float]) -> dict[str, Any] | None:
    """The drift correction of a single-focus series (the engine's cross-correlation and centre-of-mass fit), as
    stored on the dataset; None for a focal series (its planes share one stage position per tilt)."""
    from reconstruction import engine

    if projections.ndim != 3:
        return None
    factor = max(1, min(math.ceil(projections.shape[2] / ALIGNMENT_MAX_COLUMNS), projections.shape[1]))
    binned = engine.bin_projections(projections, factor) if factor > 1 else projections
    try:
        found = engine.align(binned, np.asarray(angles, dtype=np.float64))
    except ValueError as error:
        return {"failed": str(error)[:500]}
    shifts = np.asarray(found.shifts, dtype=np.float64) * factor
    return {
        "shifts": [[round(float(r), 3), round(float(c), 3)] for r, c in shifts],
        # the binned detector's centre is the centre of the columns it kept (bin_projections drops the last
        # columns % factor): (kept - 1) / 2, (columns % factor) / 2 left of the full detector's (columns - 1) / 2
        "axis_offset": round(float(found.axis_offset) * factor - (projections.shape[2] % factor) / 2, 3),
        "residual_px": round(float(np.sqrt(np.mean(np.square(found.residuals)))) * factor, 3),
        "max_shift_px": round(float(np.abs(shifts).max()), 3),
        "binning": factor,
    }


def dataset_alignment(dataset: Dataset) -> dict[str, Any] | None:
    """The dataset's stored alignment, computed (and stored) for a series added before alignment existed."""
    if dataset.alignment is None and dataset.focal_planes == 1:
        alignment = series_alignment(_raw_projections(dataset), dataset.angles)
        Dataset.objects.filter(pk=dataset.pk, alignment__isnull=True).update(alignment=alignment)
        dataset.alignment = alignment
    return dataset.alignment


def series_noise(projections: np.ndarray) -> float | None:
    """The series' relative noise (the engine's estimate), measured once on the whole series; None for a focal
    series (no method takes its count from it)."""
    from reconstruction.engine.noise import relative_noise

    if projections.ndim != 3:
        return None
    return round(float(relative_noise(projections)), 6)


def dataset_noise(dataset: Dataset) -> float:
    """The dataset's stored relative noise, measured (and stored) for a series added before it was kept."""
    if dataset.relative_noise is None:
        noise = series_noise(_raw_projections(dataset)) or 0.0
        Dataset.objects.filter(pk=dataset.pk, relative_noise__isnull=True).update(relative_noise=noise)
        dataset.relative_noise = noise
    return dataset.relative_noise


def aligned_axis_offset(dataset: Dataset) -> float:
    """The alignment's tilt-axis offset to a tenth of a pixel (the form's step; finer does not change a volume)."""
    return round(float(dataset.alignment["axis_offset"]), 1) + 0.0  # + 0.0: never "-0.0"


def alignment_usable(dataset: Dataset) -> bool:
    alignment = dataset.alignment
    return bool(alignment) and len(alignment.get("shifts", ())) == dataset.tilts


# --- jobs -------------------------------------------------------------------------------------------


def engine_methods() -> tuple[str, ...]:
    from reconstruction import engine

    return tuple(engine.METHODS)


def method_choices() -> list[tuple[str, dict[str, Any]]]:
    """Each method with the engine's one-sentence explanation (label, help)."""
    from reconstruction import engine

    return [(m, dict(engine.METHOD_INFO.get(m, {}))) for m in engine.METHODS]


def default_jobs(dataset: Dataset) -> list[str]:
    """The methods accepting a dataset starts, in order: a quick WBP preview, then the default method."""
    final = default_method(dataset)
    return [final] if final == "wbp" else ["wbp", final]


def default_method(dataset: Dataset) -> str:
    """SIRT: quantitative on limited-range data and robust to noise; the engine's first PSF-aware method
    (the regularised one) where it offers one and the dataset carries its zone-plate parameters."""
    methods = engine_methods()
    if dataset.focal_planes > 1 and zone_plate_of(dataset) is None:
        return "wbp"  # the iterative focal-series method needs the zone plate as its forward model
    if dataset.focal_planes == 1 and zone_plate_of(dataset) is not None:
        for method in PSF_METHODS:
            if method in methods:
                return method
    return "sirt" if "sirt" in methods else methods[0]


#: The engine's PSF-aware reconstructions of a single-focus series, preferred first (one slab each: the engine
#: overlaps its own slabs), each with the method to use without the zone plate. psf-mbir measured 3–6 dB above
#: psf-sirt and mbir far from focus (docs/engine.md).
PSF_METHODS = {"psf-mbir": "mbir", "psf-sirt": "sirt"}

# Parameters a job may set, and the methods they apply to (None: every method).
PARAMETERS: dict[str, tuple[str, ...] | None] = {
    "iterations": None,
    "filter_name": ("wbp",),
    "thickness": None,
    "axis_offset": None,
    "circle": None,
    "align": None,
    "strength": ("mbir", "psf-mbir"),
    "slab_size": None,
}


def parameters_not_for(method: str, parameters: dict[str, Any]) -> dict[str, str]:
    """The parameters given that the method does not take, each with what to do (the form shows them all)."""
    problems = {}
    for key, value in parameters.items():
        applies = PARAMETERS.get(key)
        if value is None or value == "" or applies is None or method in applies:
            continue
        problems[key] = f"applies to {', '.join(applies)} only, not {method}; empty it or choose {applies[0]}."
    if method == "wbp" and parameters.get("iterations") not in (None, ""):
        problems["iterations"] = "weighted back-projection has no iterations; empty it, or choose sirt or cgls."
    return problems


def wbp_filters() -> tuple[str, ...]:
    from reconstruction.engine import FILTERS

    return tuple(FILTERS)


def normalise_parameters(method: str, parameters: dict[str, Any], dataset: Dataset) -> dict[str, Any]:
    """Check a job's parameters; returns them with the ones that shape the result filled in."""
    method = str(method or "").strip().lower()
    methods = engine_methods()
    if method not in methods:
        raise DomainError(
            f"method: {method or '(none)'} is not a reconstruction method; use one of {', '.join(methods)}.",
            field="method",
        )
    clean: dict[str, Any] = {}
    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        raise DomainError(
            f"Unknown parameter(s): {', '.join(unknown)}; a job takes {', '.join(PARAMETERS)}.", field=unknown[0]
        )
    for key, message in parameters_not_for(method, parameters).items():
        raise DomainError(f"{key}: {message}", field=key)
    for key, value in parameters.items():
        if value is None or value == "":
            continue
        if key == "filter_name":
            if value not in wbp_filters():
                raise DomainError(f"filter_name: use one of {', '.join(wbp_filters())}.", field=key)
            clean[key] = value
        elif key in ("circle", "align"):
            if not isinstance(value, bool):
                raise DomainError(f"{key}: true or false.", field=key)
            clean[key] = value
        else:
            rng = RANGES[key]
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise DomainError(f"{key}: {value!r} is not a number.", field=key) from None
            if not math.isfinite(number) or not rng.low <= number <= rng.high:
                raise DomainError(f"{key} must be {rng.describe()} (got {value}).", field=key)
            if rng.integer and number != int(number):
                raise DomainError(f"{key}: a whole number, please (got {value}).", field=key)
            clean[key] = int(number) if rng.integer else number
    if dataset.focal_planes > 1 and method != "wbp" and zone_plate_of(dataset) is None:
        raise DomainError(
            f"method: {method} of a focal series needs the zone plate (outer zone width and photon energy) as its "
            "forward model; add them to the dataset, or use wbp.",
            field="method",
        )
    if method in PSF_METHODS and dataset.focal_planes == 1:
        if zone_plate_of(dataset) is None or not dataset.pixel_size_um:
            raise DomainError(
                f"method: {method} needs the zone plate (outer zone width and photon energy) and the pixel size "
                f"as its forward model; add them to the dataset, or use {PSF_METHODS[method]}.",
                field="method",
            )
        if clean.get("circle"):
            raise DomainError(f"circle: does not apply to {method}; leave it at its default.", field="circle")
    if method == "wbp":
        clean.setdefault("filter_name", "ram-lak")
    if dataset.focal_planes > 1:
        if clean.get("align"):
            raise DomainError(
                "align: a focal series is reconstructed as recorded (its planes share one stage position per "
                "tilt); switch alignment off.",
                field="align",
            )
        clean["align"] = False
    else:
        clean.setdefault("align", True)
        if clean["align"]:
            dataset_alignment(dataset)
            if not alignment_usable(dataset):
                reason = (dataset.alignment or {}).get("failed", "no alignment could be found")
                raise DomainError(
                    f"align: this series could not be aligned ({reason}); switch alignment off.", field="align"
                )
            # The tilt axis the alignment found, unless the user set one.
            clean.setdefault("axis_offset", aligned_axis_offset(dataset))
    if method == "sirt" and dataset.focal_planes == 1 and "iterations" not in clean:
        # SIRT's count is noise-aware: measured on the whole series here, so that every slab and both FSC halves
        # stop alike (each slab's own estimate differs a little) and the job records the count it ran.
        from reconstruction.engine.iterative import SIRT_DEFAULTS
        from reconstruction.engine.noise import sirt_iterations_for_noise

        clean["iterations"] = sirt_iterations_for_noise(dataset_noise(dataset), maximum=SIRT_DEFAULTS.iterations)
    clean.setdefault("thickness", dataset.columns)
    clean.setdefault("axis_offset", 0.0)
    clean.setdefault("circle", False)
    return clean


# Slices per slab. The engine vectorises over the slices of a slab, and a slab's fixed cost per voxel and tilt is
# shared by its slices: measured here (SIRT, 131 tilts, 256 columns, one thread, the same 64 slices) 4 slabs of 16
# took 2.5×, 2 slabs of 32 1.4× the time of one slab of 64 (1.22× after the projector changes of 2026-12-08, see
# docs/benchmarks.md). So a job is cut into no more slabs than its worker processes can run at once: the volume's
# rows and the two FSC halves (each half the tilts of the central band: together about the work of the band's rows)
# are shared out over the processes, each slab of at least MIN_SLAB_ROWS and at most MAX_SLAB_ROWS slices (more
# slabs than processes beyond: a slab lost with its worker is then a small part of the job); 32 when no worker said
# it is up.
DEFAULT_SLAB_ROWS = 32
MIN_SLAB_ROWS = 16
MAX_SLAB_ROWS = 128


def worker_seen(*, name: str, processes: int = 1) -> None:
    """A worker is up (it said it is ready, or it ran a slab): record it and its processes."""
    ReconstructionWorker.objects.update_or_create(
        name=name[:200], defaults={"processes": max(1, min(int(processes or 1), 1000)), "seen_at": timezone.now()}
    )


def worker_active(*, name: str) -> None:
    """A known worker took a slab: it is still up (an idle worker is counted for WORKER_SEEN_HOURS)."""
    ReconstructionWorker.objects.filter(name=name[:200]).update(seen_at=timezone.now())


def worker_gone(*, name: str) -> None:
    """A worker stopped cleanly: its processes take no more slabs."""
    ReconstructionWorker.objects.filter(name=name[:200]).delete()


def default_slab_size(dataset: Dataset) -> int:
    """The volume's share of the worker processes, one slab each, within MIN_SLAB_ROWS–MAX_SLAB_ROWS slices (on 2
    processes a 64-slice series is two slabs of 32, and each process takes one of the two FSC halves too); a focal
    series is one slab (the zone plate's blur couples neighbouring rows)."""
    if dataset.focal_planes > 1:
        return dataset.rows
    processes = selectors.worker_processes()
    if not processes:
        return max(1, min(DEFAULT_SLAB_ROWS, dataset.rows))
    band = fsc_halves(dataset)
    halves_rows = band[1] - band[0] if band else 0  # two halves of half the tilts: the work of the band's rows
    share = processes * dataset.rows / (dataset.rows + halves_rows)

    def size_for(slabs: int) -> int:
        return max(1, min(max(MIN_SLAB_ROWS, min(MAX_SLAB_ROWS, math.ceil(dataset.rows / slabs))), dataset.rows))

    def finish(slabs: int) -> float:
        # When the last process is done, the slabs and halves handed out longest first to the least busy
        # (a slab of 32 slices costs about what it does in a slab of 64, since the projectors' 8-slice updates).
        size = size_for(slabs)
        work = [min(size, dataset.rows - start) for start in range(0, dataset.rows, size)]
        work += [halves_rows / 2] * (2 if band else 0)
        busy = [0.0] * processes
        for item in sorted(work, reverse=True):
            busy[busy.index(min(busy))] += item
        return max(busy)

    candidates = sorted({max(1, math.floor(share)), max(1, math.ceil(share))})
    return size_for(min(candidates, key=lambda slabs: (finish(slabs), slabs)))


def fsc_halves(dataset: Dataset) -> tuple[int, int] | None:
    """The central band of rows [start, stop) whose even and odd tilts are reconstructed apart for the FSC; None
    when the series is too short to split (fewer than 8 tilts)."""
    if dataset.tilts < 8:
        return None
    band = min(dataset.rows, FSC_BAND_ROWS) if dataset.focal_planes == 1 else dataset.rows
    start = (dataset.rows - band) // 2
    return start, start + band


#: Rows of the FSC's central band: enough voxels in every Fourier shell, a quarter of the tilts' work or less.
FSC_BAND_ROWS = 32
#: The tilts each FSC half reconstructs.
HALF_TILTS = {SlabPart.EVEN: slice(0, None, 2), SlabPart.ODD: slice(1, None, 2)}


def parameters_key(dataset: Dataset, method: str, parameters: dict[str, Any]) -> str:
    shaping = {k: v for k, v in parameters.items() if k != "slab_size"}  # slabs do not change the result
    text = json.dumps(
        {"dataset": dataset.sha256, "values": dataset.projection_values, "pixel": dataset.pixel_size_nm,
         "method": method, "parameters": shaping, "engine": ENGINE_VERSION},
        sort_keys=True,
    )  # fmt: skip
    return hashlib.sha256(text.encode()).hexdigest()


def job_request(*, dataset: Dataset, method: str, parameters: dict[str, Any], by) -> tuple[ReconstructionJob, bool]:
    """Ask for a reconstruction; the same dataset and parameters return the existing job (created False)."""
    _require_dataset_rights(by, dataset)
    if dataset.status != DatasetStatus.ACCEPTED:
        raise ConflictError(
            f"dataset: #{dataset.pk} is {dataset.get_status_display().lower()}; accept it before reconstructing it.",
            field="dataset",
        )
    clean = normalise_parameters(method, dict(parameters or {}), dataset)
    method = method.strip().lower()
    key = parameters_key(dataset, method, clean)
    active = (J.QUEUED, J.RUNNING, J.SUCCEEDED)
    existing = ReconstructionJob.objects.filter(dataset=dataset, parameters_key=key, state__in=active).first()
    if existing:
        return existing, False
    slab_size = (
        dataset.rows
        if method in PSF_METHODS
        else default_slab_size(dataset)
        if dataset.focal_planes > 1
        else clean.get("slab_size") or default_slab_size(dataset)
    )
    bounds = [(start, min(dataset.rows, start + slab_size)) for start in range(0, dataset.rows, slab_size)]
    band = fsc_halves(dataset)
    try:
        with transaction.atomic():
            job = ReconstructionJob.objects.create(
                lab_id=dataset.lab_id, dataset=dataset, method=method, parameters=clean, parameters_key=key,
                engine_version=ENGINE_VERSION, slab_count=len(bounds), created_by=by,
                log=f"{timezone.now():%Y-%m-%d %H:%M:%S} queued: {method}, {len(bounds)} slab(s) of ≤ {slab_size} slices"
                + (" and the two FSC halves" if band else "") + "\n",
            )  # fmt: skip
            slabs = [JobSlab(job=job, index=i, start=start, stop=stop) for i, (start, stop) in enumerate(bounds)]
            if band:
                slabs += [
                    JobSlab(job=job, index=len(bounds) + i, part=part, start=band[0], stop=band[1])
                    for i, part in enumerate((SlabPart.EVEN, SlabPart.ODD))
                ]
            JobSlab.objects.bulk_create(slabs)
            transaction.on_commit(lambda: job_dispatch(job_id=job.pk))
    except IntegrityError:
        existing = ReconstructionJob.objects.filter(dataset=dataset, parameters_key=key, state__in=active).first()
        if existing is None:
            raise
        return existing, False
    return job, True


def _append_log(job_id: int, line: str) -> None:
    from django.db.models import Value
    from django.db.models.functions import Concat

    ReconstructionJob.objects.filter(pk=job_id).update(
        log=Concat(F("log"), Value(f"{timezone.now():%Y-%m-%d %H:%M:%S} {line}\n"))
    )


BROKER_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, OSError, TimeoutError)


def _broker_errors() -> tuple[type[BaseException], ...]:
    from kombu.exceptions import OperationalError

    return (*BROKER_ERRORS, OperationalError)


def job_dispatch(*, job_id: int) -> bool:
    """Send a queued job's pending slabs to the workers. With the broker down the job stays recorded and
    unsent (`dispatched_at` empty) and `jobs_dispatch_pending` sends it once the broker is back."""
    from reconstruction import tasks

    job = ReconstructionJob.objects.filter(pk=job_id, state=J.QUEUED).first()
    if job is None:
        return False
    # Index order: the volume's slabs first, the FSC halves (half the tilts each) after them.
    slab_ids = list(job.slabs.filter(state=SlabState.PENDING).order_by("index").values_list("pk", flat=True))
    try:
        for slab_id in slab_ids:
            tasks.reconstruct_slab.delay(slab_id)
    except _broker_errors() as error:
        log.warning("job %s not sent: the task queue is unreachable (%s)", job_id, error)
        _append_log(job_id, f"waiting for the task queue ({type(error).__name__}); it is sent when the queue is back")
        return False
    ReconstructionJob.objects.filter(pk=job_id, dispatched_at__isnull=True).update(dispatched_at=timezone.now())
    return True


def jobs_dispatch_pending() -> int:
    """Send every queued job the broker has not received yet (at worker start, and on demand)."""
    sent = 0
    for job_id in ReconstructionJob.objects.filter(state=J.QUEUED, dispatched_at__isnull=True).values_list(
        "pk", flat=True
    ):
        sent += job_dispatch(job_id=job_id)
    return sent


def job_cancel(*, job: ReconstructionJob, by) -> ReconstructionJob:
    """Stop a queued or running job: slabs not yet started are skipped, no volume is made."""
    _require_dataset_rights(by, job.dataset)
    _job_move(job.pk, J.CANCELLED, by=by, reason="cancelled")
    _append_log(job.pk, f"cancelled by {by}")
    job.refresh_from_db()
    return job


def _job_move(job_id: int, to_state: str, *, by=None, reason: str = "", **fields) -> None:
    def on_move(row: ReconstructionJob) -> None:
        now = timezone.now()
        if to_state == J.RUNNING:
            row.started_at = row.started_at or now
        if to_state in (J.SUCCEEDED, J.FAILED, J.CANCELLED):
            row.finished_at = now
        for key, value in fields.items():
            setattr(row, key, value)

    transition(
        lifecycle=JOB_LIFECYCLE,
        queryset=ReconstructionJob.objects.all(),
        ids=[job_id],
        to_state=to_state,
        audit=lambda row, before: JobTransition(job=row, from_state=before, to_state=to_state, by=by, reason=reason),
        on_move=on_move,
    )


def job_fail(*, job_id: int, error: str) -> None:
    """Mark a job failed with its reason (no-op when it already finished)."""
    try:
        _job_move(job_id, J.FAILED, reason=error[:2000], error=error[:5000] or "failed")
    except ConflictError:
        return
    _append_log(job_id, f"failed: {error}")


# --- running slabs ------------------------------------------------------------------------------

_PROJECTION_CACHE: dict[tuple, np.ndarray] = {}


def _raw_projections(dataset: Dataset) -> np.ndarray:
    path = dataset_path(dataset)
    if not path.is_file():
        raise DomainError(f"The file of dataset #{dataset.pk} is gone from {path}; restore it or register it again.")
    return ingest.load_projections(
        path, fmt=dataset.format, projection_values=dataset.projection_values,
        focal_planes=dataset.focal_planes, name=dataset.name,
    )  # fmt: skip


def projections_of(dataset: Dataset, *, aligned: bool = False, column_shift: float = 0.0) -> np.ndarray:
    """The dataset's absorbance, drift-corrected by its stored alignment when `aligned`, read once per worker
    process for all its slabs. The shifts move content across rows, so they apply to the whole series before a
    slab takes its rows. `column_shift` moves every projection across the detector as well: for a method that
    takes the tilt axis in the centre, a uniform shift by minus the axis offset puts it there."""
    key = (dataset.pk, dataset.sha256, dataset.projection_values, aligned, column_shift)
    if key not in _PROJECTION_CACHE:
        _PROJECTION_CACHE.clear()
        projections = _raw_projections(dataset)
        if aligned or column_shift:
            from reconstruction import engine

            shifts = np.zeros((dataset.tilts, 2))
            if aligned:
                if not alignment_usable(dataset):
                    raise DomainError(
                        f"Dataset #{dataset.pk} has no usable alignment; start the job with alignment off."
                    )
                shifts = np.asarray(dataset.alignment["shifts"], dtype=np.float64)
            projections = engine.apply_shifts(projections, shifts + [0.0, column_shift])
        _PROJECTION_CACHE[key] = projections
    return _PROJECTION_CACHE[key]


def engine_arguments(dataset: Dataset, method: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of `reconstruction.engine.reconstruct` for a job (slabbing aside)."""
    kwargs = {
        k: v
        for k, v in parameters.items()
        if k in ("iterations", "filter_name", "thickness", "axis_offset", "circle", "strength")
    }
    if dataset.focal_planes > 1:
        kwargs.pop("circle", None)
        kwargs.pop("axis_offset", None)
        kwargs.pop("filter_name", None)
        kwargs["focal_planes_um"] = dataset.focal_planes_um
        kwargs["pixel_size_um"] = dataset.pixel_size_um
        zone_plate = zone_plate_of(dataset)
        if zone_plate is not None:
            kwargs["zone_plate"] = zone_plate
    elif method in PSF_METHODS:
        for key in ("circle", "axis_offset", "filter_name"):
            kwargs.pop(key, None)
        kwargs["pixel_size_um"] = dataset.pixel_size_um
        kwargs["zone_plate"] = zone_plate_of(dataset)
    return kwargs


def zone_plate_of(dataset: Dataset):
    if dataset.zone_plate_outer_zone_nm is None or dataset.photon_energy_ev is None:
        return None
    from reconstruction.engine.psf import ZonePlate

    return ZonePlate(
        energy_ev=dataset.photon_energy_ev,
        outer_zone_width_nm=dataset.zone_plate_outer_zone_nm,
        diameter_um=dataset.zone_plate_diameter_um,
    )


def run_engine(dataset: Dataset, method: str, parameters: dict[str, Any], *, rows: slice | None = None,
               tilts: slice | None = None, callback: Callable[[int], None] | None = None) -> np.ndarray:  # fmt: skip
    """Reconstruct (part of) a dataset as the engine's own call would; raw units (per voxel)."""
    from reconstruction import engine

    # The PSF-aware methods take the tilt axis in the centre: its projections are moved there instead.
    column_shift = -float(parameters.get("axis_offset") or 0.0) if method in PSF_METHODS else 0.0
    projections = projections_of(dataset, aligned=bool(parameters.get("align")), column_shift=column_shift)
    angles = np.asarray(dataset.angles, dtype=np.float64)
    if tilts is not None:
        projections, angles = projections[tilts], angles[tilts]
    if rows is not None:
        projections = projections[..., rows, :]
    return engine.reconstruct(
        np.ascontiguousarray(projections), angles, method=method, callback=callback,
        **engine_arguments(dataset, method, parameters),
    )  # fmt: skip


def slab_folder(job: ReconstructionJob) -> str:
    return f"reconstruction/jobs/{job.lab_id}/{job.pk}"


def slab_run(*, slab_id: int, worker: str = "") -> str:
    """Reconstruct one slab (claimed under the job's lock); the last slab done sends the assembly.

    Returns what happened: "done", "skipped" (job finished or slab already done), or "assemble"."""
    with transaction.atomic():
        slab = JobSlab.objects.select_for_update().filter(pk=slab_id).first()
        if slab is None:
            return "skipped"
        job = ReconstructionJob.objects.select_for_update().get(pk=slab.job_id)
        if job.finished:
            return "skipped"
        if slab.state == SlabState.DONE:
            # Redelivered after it finished: make sure the assembly was sent.
            return _maybe_assemble(job)
        if slab.attempts >= MAX_SLAB_ATTEMPTS:
            reason = (
                f"slab {slab.index + 1} ({_slab_label(slab)}) was started "
                f"{slab.attempts} times without finishing: its worker was lost each time (out of memory?). "
                "Try smaller slabs."
            )
            transaction.on_commit(lambda: job_fail(job_id=job.pk, error=reason))
            return "skipped"
        JobSlab.objects.filter(pk=slab.pk).update(
            state=SlabState.RUNNING, attempts=F("attempts") + 1, worker=worker[:200]
        )
        if job.state == J.QUEUED:
            _job_move(job.pk, J.RUNNING, reason=f"first slab on {worker or 'a worker'}")
        attempt = slab.attempts + 1
    if attempt > 1:
        _append_log(job.pk, f"slab {slab.index + 1}: attempt {attempt} (the previous worker stopped)")
    dataset = job.dataset
    started = time.perf_counter()
    rows = slab.stop - slab.start
    total = max(1, rows * (1 if job.method == "wbp" else int(job.parameters.get("iterations") or 50)))
    slabs_in_job = job.slabs.count()
    done_units = [0]
    last = [0.0]
    owner = threading.get_ident()
    lock = threading.Lock()

    def progress(units: int) -> None:
        # The engine may call this from its own threads: count there, write from the task's thread only
        # (a database connection belongs to one thread), and never let a progress write fail the slab.
        with lock:
            done_units[0] += units
        now = time.monotonic()
        if threading.get_ident() != owner or now - last[0] < 1.0:
            return
        last[0] = now
        fraction = min(1.0, done_units[0] / total)
        try:
            finished = job.slabs.filter(state=SlabState.DONE).count()
            value = int(95 * (finished + fraction) / slabs_in_job)
            ReconstructionJob.objects.filter(pk=job.pk, progress__lt=value).update(progress=value)
        except DatabaseError:
            log.warning("progress of job %s not recorded", job.pk, exc_info=True)

    volume = run_engine(
        dataset, job.method, job.parameters, rows=slice(slab.start, slab.stop), tilts=HALF_TILTS.get(slab.part),
        callback=progress,
    )  # fmt: skip
    name = f"{slab_folder(job)}/slab-{slab.index:05d}.npy"
    _atomic_write(Path(default_storage.path(name)), lambda p: _save_npy(p, volume))
    if slab.part != SlabPart.VOLUME:
        _fsc_when_both_halves(job, dataset, slab, volume)
    seconds = time.perf_counter() - started
    with transaction.atomic():
        job = ReconstructionJob.objects.select_for_update().get(pk=job.pk)
        if job.finished:
            return "skipped"
        JobSlab.objects.filter(pk=slab.pk).update(state=SlabState.DONE, seconds=seconds, result=name)
        finished = job.slabs.filter(state=SlabState.DONE).count()
        ReconstructionJob.objects.filter(pk=job.pk).update(progress=int(95 * finished / slabs_in_job))
        outcome = _maybe_assemble(job)
    _append_log(
        job.pk,
        f"slab {slab.index + 1}/{slabs_in_job} ({_slab_label(slab)}) done in {seconds:.1f} s on {worker or 'a worker'}",
    )
    return outcome if outcome == "assemble" else "done"


def _slab_label(slab: JobSlab) -> str:
    rows = f"slices {slab.start}–{slab.stop - 1}"
    return rows if slab.part == SlabPart.VOLUME else f"{slab.get_part_display().lower()}, {rows}"


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array, dtype=np.float32))


def _maybe_assemble(job: ReconstructionJob) -> str:
    if job.slabs.exclude(state=SlabState.DONE).exists() or Volume.objects.filter(job=job).exists():
        return "done"
    from reconstruction import tasks

    transaction.on_commit(lambda: _send_assembly(tasks, job.pk))
    return "assemble"


def _send_assembly(tasks, job_id: int) -> None:
    try:
        tasks.assemble_volume.delay(job_id)
    except _broker_errors() as error:  # the slab task is acked late: its redelivery sends it again
        log.warning("assembly of job %s not sent (%s)", job_id, error)


# --- volumes ----------------------------------------------------------------------------------------


def volume_assemble(*, job_id: int) -> Volume | None:
    """Join the slabs, write the MRC (µm⁻¹, voxel size in the header), previews, histogram and the even/odd
    FSC; the job succeeds. Safe to run twice: the second finds the volume (or the job finished) and stops."""
    job = ReconstructionJob.objects.select_related("dataset").get(pk=job_id)
    if job.state != J.RUNNING or Volume.objects.filter(job=job).exists():
        return None
    slabs = list(job.slabs.order_by("index"))
    if any(s.state != SlabState.DONE for s in slabs):
        return None
    dataset = job.dataset
    halves = {s.part: s for s in slabs if s.part != SlabPart.VOLUME}
    raw = np.concatenate([np.load(default_storage.path(s.result)) for s in slabs if s.part == SlabPart.VOLUME], axis=0)
    from reconstruction.engine.quality import to_lac

    volume = to_lac(raw, dataset.pixel_size_um)
    del raw
    name = f"reconstruction/volumes/{job.lab_id}/job-{job.pk}-{job.method}.mrc"
    target = Path(default_storage.path(name))

    def write(path: Path) -> None:
        from reconstruction.engine.io import write_volume

        write_volume(path, volume, dataset.pixel_size_um)

    _atomic_write(target, write)
    preview_names = {}
    try:
        sha = sha256_of(target)
        centre = {"xy": volume.shape[1] // 2, "xz": volume.shape[0] // 2, "yz": volume.shape[2] // 2}
        levels, (low, high) = previews.volume_levels(volume)
        for plane, index in centre.items():
            picture = previews.png_bytes(
                previews.to_uint8(previews.volume_slice(volume, plane, index), low, high), max_side=512, min_side=256
            )
            preview_names[plane] = default_storage.save(f"{slab_folder(job)}/preview-{plane}.png", ContentFile(picture))
        fsc, resolution = _even_odd_fsc(job, dataset, halves)
    except BaseException:
        # No volume row will point at these: remove them (a disk that filled up gets its space back).
        _delete_stored([name, *preview_names.values()])
        raise
    _append_log(
        job.pk,
        "volume written; " + (f"resolution {resolution:.0f} nm (FSC 0.143)" if resolution else "FSC: no crossing"),
    )
    try:
        with transaction.atomic():
            made = Volume.objects.create(
                job=job, lab_id=job.lab_id, file=name, sha256=sha, size_bytes=target.stat().st_size,
                depth=volume.shape[0], thickness=volume.shape[1], width=volume.shape[2],
                voxel_size_nm=dataset.pixel_size_nm, absolute=values_are_absolute(job, dataset),
                value_min=float(volume.min()), value_max=float(volume.max()), value_mean=float(volume.mean()),
                histogram=levels, fsc=fsc, resolution_nm=resolution, previews=preview_names,
            )  # fmt: skip
            _job_move(job.pk, J.SUCCEEDED, reason="volume assembled", progress=100)
            insights.grid_facts_changed([dataset.grid_id])
    except (IntegrityError, ConflictError):
        return Volume.objects.filter(job=job).first()
    _delete_stored([s.result for s in slabs] + [_fsc_name(job)])
    return made


def values_are_absolute(job: ReconstructionJob, dataset: Dataset) -> bool:
    """Whether the volume holds true absorption values: the engine says so per method and tilt range."""
    from reconstruction import engine

    return bool(engine.value_note(job.method, dataset.angles)["absolute"])


def _fsc_name(job: ReconstructionJob) -> str:
    return f"{slab_folder(job)}/fsc.json"


def _fsc_when_both_halves(job: ReconstructionJob, dataset: Dataset, slab: JobSlab, half: np.ndarray) -> None:
    """The second FSC half to finish computes the FSC while the volume's slabs may still run, so the assembly
    (which every worker waits for) does not; if both finish at once neither does, and the assembly does."""
    other = JobSlab.objects.filter(job=job, state=SlabState.DONE).exclude(part__in=(SlabPart.VOLUME, slab.part)).first()
    if other is None:
        return
    try:
        loaded = np.load(default_storage.path(other.result))
    except (OSError, ValueError):
        return
    even, odd = (half, loaded) if slab.part == SlabPart.EVEN else (loaded, half)
    curve, resolution = _fsc_of(job, dataset, even, odd)
    text = json.dumps({"fsc": curve, "resolution_nm": resolution})
    _atomic_write(Path(default_storage.path(_fsc_name(job))), lambda p: p.write_text(text))


def _stored_fsc(job: ReconstructionJob) -> tuple[dict, float | None] | None:
    try:
        stored = json.loads(Path(default_storage.path(_fsc_name(job))).read_text())
        return stored["fsc"], stored["resolution_nm"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _even_odd_fsc(job: ReconstructionJob, dataset: Dataset, halves: dict[str, JobSlab]) -> tuple[dict, float | None]:
    """Even and odd tilts reconstructed apart over a central band of slices give the resolution: read from the
    FSC the halves' own slabs left, else from their results, else (a job recorded without half slabs)
    reconstructed here."""
    band = fsc_halves(dataset)
    if band is None:
        return {}, None
    both = SlabPart.EVEN in halves and SlabPart.ODD in halves
    if both and (stored := _stored_fsc(job)) is not None:
        return stored
    try:
        if both:
            even, odd = (np.load(default_storage.path(halves[p].result)) for p in HALF_TILTS)
        else:
            even, odd = (
                run_engine(dataset, job.method, job.parameters, rows=slice(*band), tilts=t) for t in HALF_TILTS.values()
            )
    except (ValueError, MemoryError) as error:
        log.warning("FSC of job %s skipped: %s", job.pk, error)
        return {}, None
    return _fsc_of(job, dataset, even, odd)


def _fsc_of(job: ReconstructionJob, dataset: Dataset, even: np.ndarray, odd: np.ndarray) -> tuple[dict, float | None]:
    from reconstruction.engine.quality import fourier_shell_correlation

    if min(even.shape) < 4:
        return {}, None
    try:
        result = fourier_shell_correlation(even, odd, pixel_size_um=dataset.pixel_size_um)
    except (ValueError, MemoryError) as error:
        log.warning("FSC of job %s skipped: %s", job.pk, error)
        return {}, None
    curve = {
        "frequency_per_nm": [round(float(f), 6) for f in result.frequency_per_nm],
        "fsc": [round(float(c), 4) for c in result.fsc],
    }
    return curve, result.resolution_nm.get(0.143)


def volume_path(volume: Volume) -> Path:
    return Path(default_storage.path(volume.file.name))


def uploads_purge_stale(*, older_than_hours: float = 48) -> int:
    """Remove chunked uploads nobody finished (their partial files too)."""
    cutoff = timezone.now() - timezone.timedelta(hours=older_than_hours)
    stale = list(DatasetUpload.objects.filter(updated_at__lt=cutoff))
    for upload in stale:
        _delete_stored([upload.storage_name])
        upload.delete()
    return len(stale)


# --- chunked uploads ------------------------------------------------------------------------------


def _max_upload_bytes() -> int:
    return int(getattr(settings, "LIMS_DATASET_MAX_BYTES", 64 * 1024**3))


def upload_start(*, by, filename: str, size_bytes: int) -> DatasetUpload:
    """Open a resumable upload of `size_bytes`, owned by the person (only they can add to it or use it)."""
    name = Path(str(filename or "")).name.strip()
    if not name or any(c in name for c in "\x00\n\r") or name in (".", ".."):
        raise DomainError("filename: give the file's name (e.g. cell3_tilt.mrc).", field="filename")
    try:
        size = int(size_bytes)
    except (TypeError, ValueError):
        raise DomainError("size_bytes: the file's size in bytes, a whole number.", field="size_bytes") from None
    if size <= 0 or size > _max_upload_bytes():
        raise DomainError(
            f"size_bytes: a tilt series here is 1 byte to {_max_upload_bytes() / 2**30:.0f} GiB (got {size}).",
            field="size_bytes",
        )
    _parse(lambda n: ingest.format_of(n, False), name)
    upload = DatasetUpload.objects.create(created_by=by, filename=name[:255], size_bytes=size)
    path = Path(default_storage.path(upload.storage_name))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    return upload


def upload_append(*, upload: DatasetUpload, offset: int, data: bytes, by) -> DatasetUpload:
    """Add a chunk at `offset` (which must be what the server has: a resumed upload asks for it first)."""
    if upload.created_by_id != by.pk:
        raise Http404("No such upload.")
    with transaction.atomic():
        locked = DatasetUpload.objects.select_for_update().get(pk=upload.pk)
        if offset != locked.received_bytes:
            raise ConflictError(
                f"offset: the server has {locked.received_bytes} bytes of this upload; send from there.",
                field="offset", details={"received_bytes": locked.received_bytes},
            )  # fmt: skip
        if locked.received_bytes + len(data) > locked.size_bytes:
            raise DomainError(f"This chunk goes past the announced size ({locked.size_bytes} bytes).", field="file")
        path = Path(default_storage.path(locked.storage_name))
        with open(path, "r+b") as handle:
            handle.seek(offset)
            handle.write(data)
            handle.truncate(offset + len(data))
            handle.flush()
            os.fsync(handle.fileno())
        locked.received_bytes = offset + len(data)
        locked.save(update_fields=["received_bytes", "updated_at"])
    return locked


def dataset_from_upload(
    *, upload: DatasetUpload, by, session, grid, angles_text: str = "", angles_file=None, sidecar_file=None, **kwargs
) -> Dataset:
    """A completed chunked upload becomes a dataset; a refused one keeps its bytes for another try."""
    if upload.created_by_id != by.pk:
        raise Http404("No such upload.")
    upload.refresh_from_db()
    if not upload.complete:
        raise ConflictError(
            f"upload: {upload.received_bytes} of {upload.size_bytes} bytes have arrived; finish the upload first.",
            field="upload",
        )
    angles = _angles_from(angles_text, angles_file)
    sidecar = _sidecar_from(sidecar_file)
    path = Path(default_storage.path(upload.storage_name))
    suffix = Path(upload.filename).suffix
    with tempfile.TemporaryDirectory(dir=path.parent) as folder:
        local = Path(folder) / f"series{suffix}"
        shutil.move(str(path), local)
        try:
            dataset = dataset_create(
                by=by, session=session, grid=grid, local_path=local, name=upload.filename, keep="copy",
                angles=angles, sidecar=sidecar, **kwargs,
            )  # fmt: skip
        except BaseException:
            shutil.move(str(local), path)  # keep the bytes: the person may fix the metadata and try again
            raise
    upload.delete()
    return dataset
