"""Uploads: type by content, refusals that store nothing, metadata, originals kept byte for byte."""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import numpy as np
import pytest
import tifffile

from characterization import services
from characterization.models import CheckImage, MetricsStatus
from lims.errors import ConflictError, DomainError
from tests.characterization.factories import (
    compute_pending_metrics,
    png_bytes,
    small_tiff,
    stored_files,
    tiff_bytes,
    upload,
)


def assert_refused(check, member, content: bytes, name: str, match: str, **settings_kwargs):
    with pytest.raises(DomainError, match=match) as error:
        services.check_image_upload(lm_check=check, upload=upload(content, name), by=member)
    assert error.value.field == "file"
    assert CheckImage.objects.count() == 0
    assert stored_files() == []


def test_a_tiff_is_kept_byte_for_byte_with_its_sha256(check, member, django_capture_on_commit_callbacks):
    content = small_tiff()
    with django_capture_on_commit_callbacks():
        image = services.check_image_upload(lm_check=check, upload=upload(content, "cells.tif"), by=member)
    compute_pending_metrics()
    assert image.sha256 == hashlib.sha256(content).hexdigest()
    assert Path(image.file.path).read_bytes() == content
    assert (image.format, image.width, image.height, image.channels, image.bit_depth) == ("tiff", 64, 64, 3, 16)
    image.refresh_from_db()
    assert image.metrics_status == MetricsStatus.DONE and image.metrics_progress == 100
    assert image.preview and image.thumbnail and len(image.channel_previews) == 3


def test_a_text_file_named_tif_is_refused_by_content(check, member):
    assert_refused(check, member, b"<html><body>not an image</body></html>", "cells.tif", "not a TIFF.*ends in .tif")


def test_a_truncated_tiff_is_refused(check, member):
    content = small_tiff(shape=(1, 128, 128))
    assert_refused(check, member, content[: len(content) // 2], "cut.tif", "truncated")


def test_a_tiff_with_corrupted_structure_is_refused(check, member):
    content = bytearray(small_tiff())
    content[4:8] = struct.pack("<I", len(content) + 1000)  # first IFD beyond the end
    assert_refused(check, member, bytes(content), "bad.tif", "damaged")


def test_a_png_with_corrupted_bytes_is_refused(check, member):
    content = bytearray(png_bytes((np.random.default_rng(1).random((64, 64)) * 255).astype(np.uint8)))
    content[60] ^= 0xFF
    assert_refused(check, member, bytes(content), "bad.png", "corrupted|truncated")


def test_a_truncated_jpeg_is_refused(check, member):
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)).save(buffer, "JPEG")
    assert_refused(check, member, buffer.getvalue()[:400], "cut.jpg", "truncated")


def test_a_decompression_bomb_tiff_is_refused_before_decoding(check, member):
    content = bytearray(tiff_bytes(np.zeros((16, 16), np.uint8)))
    page = tifffile.TiffFile(__import__("io").BytesIO(bytes(content))).pages.first
    for tag in ("ImageWidth", "ImageLength"):
        offset = page.tags[tag].valueoffset
        kind = page.tags[tag].dtype
        fmt = "<I" if kind == 4 else "<H"
        value = 200_000 if kind == 4 else 60_000
        content[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    assert_refused(check, member, bytes(content), "bomb.tif", "decompression bomb")


def test_a_decompression_bomb_png_is_refused(check, member, settings):
    settings.LIMS_IMAGE_MAX_PIXELS = 1000 * 1000
    content = png_bytes(np.zeros((1500, 1500), np.uint8))
    assert len(content) < 10_000
    assert_refused(check, member, content, "bomb.png", "decompression bomb")


def test_a_file_over_the_size_limit_is_refused(check, member, settings):
    settings.LIMS_IMAGE_MAX_BYTES = 10_000
    assert_refused(check, member, small_tiff(shape=(3, 64, 64)), "big.tif", "the limit is")


def test_an_empty_file_is_refused(check, member):
    assert_refused(check, member, b"", "empty.tif", "empty")


def test_a_failure_after_the_file_is_written_leaves_no_file(check, member, monkeypatch):
    def broken_save(self, *args, **kwargs):
        raise RuntimeError("database went away")

    monkeypatch.setattr(CheckImage, "save", broken_save)
    with pytest.raises(RuntimeError):
        services.check_image_upload(lm_check=check, upload=upload(small_tiff(), "a.tif"), by=member)
    assert stored_files() == []


def test_the_same_file_twice_on_one_check_is_a_conflict(check, member):
    services.check_image_upload(lm_check=check, upload=upload(small_tiff(), "a.tif"), by=member)
    with pytest.raises(ConflictError, match="already attached"):
        services.check_image_upload(lm_check=check, upload=upload(small_tiff(), "b.tif"), by=member)
    assert CheckImage.objects.count() == 1


def test_ome_tiff_metadata_gives_pixel_size_channels_and_objective(check, member):
    data = np.random.default_rng(0).integers(0, 1000, size=(2, 3, 32, 48), dtype=np.uint16)
    channels = "".join(
        f'<Channel ID="Channel:0:{i}" Name="{name}" SamplesPerPixel="1"/>'
        for i, name in enumerate(["Hoechst", "GFP", "MitoTracker Red"])
    )
    description = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        '<Instrument ID="Instrument:0"><Objective ID="Objective:0" Manufacturer="Zeiss" Model="EC Plan-Neofluar" '
        'NominalMagnification="20.0" LensNA="0.5" Immersion="Air"/></Instrument>'
        '<Image ID="Image:0"><ObjectiveSettings ID="Objective:0"/>'
        '<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint16" SizeX="48" SizeY="32" SizeC="3" SizeZ="2" '
        'SizeT="1" PhysicalSizeX="325" PhysicalSizeXUnit="nm" PhysicalSizeY="325" PhysicalSizeYUnit="nm">'
        f'{channels}<TiffData IFD="0" PlaneCount="6"/></Pixels></Image></OME>'
    )
    content = tiff_bytes(data.reshape(6, 32, 48), description=description, metadata=None, photometric="minisblack")
    image = services.check_image_upload(lm_check=check, upload=upload(content, "stack.ome.tif"), by=member)
    assert image.format == "ome-tiff"
    assert image.pixel_size_um == pytest.approx(0.325)
    assert image.channel_names == ["Hoechst", "GFP", "MitoTracker Red"]
    assert image.objective == "Zeiss EC Plan-Neofluar 20x/0.5 air"
    assert (image.channels, image.planes, image.width, image.height) == (3, 2, 48, 32)
    assert image.metadata_source == "ome"


def test_imagej_tiff_resolution_gives_the_pixel_size(check, member):
    content = tiff_bytes(
        np.zeros((2, 16, 16), np.uint16),
        imagej=True,
        resolution=(1 / 0.11, 1 / 0.11),
        metadata={"axes": "CYX", "unit": "um"},
    )
    image = services.check_image_upload(lm_check=check, upload=upload(content, "ij.tif"), by=member)
    assert image.pixel_size_um == pytest.approx(0.11)


def test_missing_metadata_can_be_entered(check, member):
    image = services.check_image_upload(
        lm_check=check,
        upload=upload(small_tiff(), "a.tif"),
        by=member,
        pixel_size_um=0.5,
        channel_names=["DAPI", "GFP", "RFP"],
        objective="10x/0.3",
    )
    assert (image.pixel_size_um, image.channel_names, image.objective) == (0.5, ["DAPI", "GFP", "RFP"], "10x/0.3")
    services.check_image_update(image=image, by=member, pixel_size_um=0.65)
    image.refresh_from_db()
    assert image.pixel_size_um == 0.65


def test_png_and_jpeg_are_accepted(check, member):
    import io

    from PIL import Image

    png = services.check_image_upload(
        lm_check=check, upload=upload(png_bytes(np.arange(256, dtype=np.uint8).reshape(16, 16)), "a.png"), by=member
    )
    buffer = io.BytesIO()
    Image.fromarray((np.random.default_rng(3).random((40, 30, 3)) * 255).astype(np.uint8)).save(buffer, "JPEG")
    jpeg = services.check_image_upload(lm_check=check, upload=upload(buffer.getvalue(), "b.jpeg"), by=member)
    assert (png.format, png.channels, png.bit_depth) == ("png", 1, 8)
    assert (jpeg.format, jpeg.channels, jpeg.width, jpeg.height) == ("jpeg", 3, 30, 40)


def test_lzw_compressed_tiff_is_decoded(check, member):
    content = tiff_bytes(np.arange(64 * 64, dtype=np.uint16).reshape(64, 64), compression="lzw")
    image = services.check_image_upload(lm_check=check, upload=upload(content, "lzw.tif"), by=member)
    assert (image.width, image.bit_depth) == (64, 16)


def test_a_failing_metrics_task_marks_the_image_failed(check, member, monkeypatch, django_capture_on_commit_callbacks):
    from characterization import metrics

    def explode(*args, **kwargs):
        raise ValueError("synthetic failure")

    monkeypatch.setattr(metrics, "compute_metrics", explode)
    with django_capture_on_commit_callbacks():
        image = services.check_image_upload(lm_check=check, upload=upload(small_tiff(), "a.tif"), by=member)
    compute_pending_metrics()
    image.refresh_from_db()
    assert image.metrics_status == MetricsStatus.FAILED
    assert "synthetic failure" in image.metrics_error
    monkeypatch.undo()
    with django_capture_on_commit_callbacks():
        services.check_image_metrics_requeue(image=image, by=member)
    compute_pending_metrics()
    image.refresh_from_db()
    assert image.metrics_status == MetricsStatus.DONE and image.metrics["focus"] > 0


def test_files_left_by_an_outer_rollback_are_found_and_pruned(check, member):
    from io import StringIO

    from django.core.management import call_command
    from django.db import transaction

    kept = services.check_image_upload(lm_check=check, upload=upload(small_tiff(seed=5), "kept.tif"), by=member)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.check_image_upload(lm_check=check, upload=upload(small_tiff(seed=6), "lost.tif"), by=member)
        raise RuntimeError("the caller's transaction fails")
    assert len(stored_files()) == 2
    out = StringIO()
    call_command("prune_image_files", "--delete", "--min-age-minutes=0", stdout=out)
    assert "1 file(s) without a database row removed" in out.getvalue()
    assert [p.name for p in stored_files()] == [Path(kept.file.name).name]
