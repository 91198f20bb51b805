"""What pages and the API share: one way to turn a request's fields into a dataset, and file responses
(only for records the caller fetched through a scoped selector; MEDIA_ROOT is never served directly)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse

from lims.errors import DomainError
from reconstruction import previews, services
from reconstruction.models import DatasetUpload, Volume

ACQUISITION_FIELDS = (
    "pixel_size_nm", "photon_energy_ev", "exposure_s", "zone_plate_outer_zone_nm", "zone_plate_diameter_um",
    "projection_values",
)  # fmt: skip


def create_dataset(*, user, data: dict[str, Any]):
    """`data`: session, grid, one of file / upload (id) / path, and optional angles, angles_text, sidecar,
    target, notes and acquisition fields (validated by the form or serializer that produced them)."""
    acquisition = services.Acquisition(**{k: data.get(k) or None for k in ACQUISITION_FIELDS})
    common = dict(
        by=user, session=data["session"], grid=data["grid"], angles_text=data.get("angles_text") or "",
        angles_file=data.get("angles"), sidecar_file=data.get("sidecar"), target=data.get("target"),
        acquisition=acquisition, notes=data.get("notes") or "",
    )  # fmt: skip
    if data.get("file"):
        return services.dataset_upload(upload=data["file"], **common)
    if data.get("upload"):
        upload = DatasetUpload.objects.filter(pk=data["upload"], created_by=user).first()
        if upload is None:
            raise DomainError("upload: no such upload of yours; start it again.", field="upload")
        return services.dataset_from_upload(upload=upload, **common)
    if data.get("path"):
        return services.dataset_register(path=data["path"], **common)
    raise DomainError("file: choose the tilt-series file, or give its path on the facility's storage.", field="file")


def stored_file_response(name: str, content_type: str) -> FileResponse:
    """A file of MEDIA_ROOT by its storage name (empty or missing: 404)."""
    if not name or not default_storage.exists(name):
        raise Http404("Not available (yet).")
    response = FileResponse(default_storage.open(name, "rb"), content_type=content_type)
    response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response


def volume_download(volume: Volume) -> FileResponse:
    path = services.volume_path(volume)
    if not path.is_file():
        raise Http404("The volume's file is missing.")
    dataset = volume.job.dataset
    filename = f"{Path(dataset.name).stem}-{volume.job.method}-job{volume.job_id}.mrc"
    response = FileResponse(
        open(path, "rb"), as_attachment=True, filename=filename, content_type="application/octet-stream"
    )
    response["X-Content-SHA256"] = volume.sha256
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _number(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and np.isfinite(value) else None


def volume_slice_png(volume: Volume, plane: str, index: str | int, low: str | None, high: str | None) -> HttpResponse:
    """One slice as PNG; contrast from `low`/`high` (µm⁻¹) or the volume's histogram; indexes clipped."""
    import mrcfile

    if plane not in previews.PLANES:
        raise Http404("No such plane; use xy, xz or yz.")
    try:
        position = int(index)
    except (TypeError, ValueError):
        position = 0
    path = services.volume_path(volume)
    if not path.is_file():
        raise Http404("The volume's file is missing.")
    with mrcfile.mmap(path, mode="r", permissive=True) as mrc:
        image = np.array(previews.volume_slice(mrc.data, plane, position))
    edges = (volume.histogram or {}).get("edges") or [volume.value_min, volume.value_max]
    lo, hi = _number(low), _number(high)
    lo = edges[0] if lo is None else lo
    hi = edges[-1] if hi is None else hi
    response = HttpResponse(previews.png_bytes(previews.to_uint8(image, lo, hi)), content_type="image/png")
    response["Cache-Control"] = "private, max-age=300"
    return response
