"""Serving stored originals and previews: only through views that checked the lab first.

MEDIA_ROOT is private (never served as static files); callers pass an image they fetched through a
lab-scoped selector, so another lab's image has already answered 404.
"""

from __future__ import annotations

import mimetypes

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404

from characterization.models import CheckImage

ORIGINAL_TYPES = {"tiff": "image/tiff", "ome-tiff": "image/tiff", "png": "image/png", "jpeg": "image/jpeg"}


def image_file_response(image: CheckImage, which: str, *, index: int | None = None) -> FileResponse:
    """The original (as an attachment, under its uploaded name) or a derived JPEG preview."""
    if which == "original":
        name, content_type = image.file.name, ORIGINAL_TYPES.get(image.format, "application/octet-stream")
    elif which == "preview":
        name, content_type = image.preview.name, "image/jpeg"
    elif which == "thumbnail":
        name, content_type = image.thumbnail.name, "image/jpeg"
    elif which == "channel":
        entry = next((c for c in image.channel_previews or [] if c.get("index") == index), None)
        name, content_type = (entry or {}).get("file", ""), "image/jpeg"
    else:
        raise Http404("No such file.")
    if not name or not default_storage.exists(name):
        raise Http404("Not available (yet): previews appear once the metrics task has run.")
    handle = default_storage.open(name, "rb")
    if which == "original":
        response = FileResponse(handle, as_attachment=True, filename=image.original_name, content_type=content_type)
        response["X-Content-SHA256"] = image.sha256
    else:
        response = FileResponse(handle, content_type=content_type or mimetypes.guess_type(name)[0])
        response["Cache-Control"] = "private, max-age=300"
    response["X-Content-Type-Options"] = "nosniff"
    return response
