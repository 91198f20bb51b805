"""Edge cases from an independent acceptance pass: images the authors' tests did not cover."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest

from characterization import imaging, metrics, services
from characterization.models import CheckImage
from lims.errors import DomainError
from tests.characterization.factories import png_bytes, stored_files, tiff_bytes, upload


def png16(data: np.ndarray, colour_type: int) -> bytes:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit colour)."""
    height, width = data.shape[:2]
    raw = b"".join(b"\x00" + data[row].astype(">u2").tobytes() for row in range(height))

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (2, 50), (50, 1)])
def test_an_image_too_small_to_measure_is_refused_at_upload_not_failed_later(check, member, shape):
    content = tiff_bytes(np.zeros(shape, np.uint16)) if shape[0] != 1 else png_bytes(np.zeros(shape, np.uint8))
    with pytest.raises(DomainError, match="at least 3×3"):
        services.check_image_upload(lm_check=check, upload=upload(content, "tiny.tif"), by=member)
    assert CheckImage.objects.count() == 0
    assert stored_files() == []


def test_a_3x3_image_is_accepted_and_measured():
    data = np.array([[0, 0, 0], [0, 200, 0], [0, 0, 0]], np.uint8)
    result = metrics.compute_metrics(data[np.newaxis])
    assert result["focus"] == 0.0  # one interior pixel: no variance
    assert result["coverage_fraction"] == pytest.approx(1 / 9)


def test_a_16_bit_colour_png_keeps_its_16_bit_values():
    data = np.random.default_rng(1).integers(0, 65535, (20, 30, 3), dtype=np.uint16)
    limits = services.upload_limits()
    decoded = imaging.decode(io.BytesIO(png16(data, 2)), size=1, name="c.png", limits=limits)
    assert (decoded.bit_depth, decoded.channels, decoded.rgb) == (16, 3, True)
    np.testing.assert_array_equal(decoded.data, np.moveaxis(data, -1, 0))


def test_a_16_bit_png_with_alpha_drops_the_alpha_and_keeps_16_bit(check, member):
    rgba = np.random.default_rng(2).integers(0, 65535, (20, 30, 4), dtype=np.uint16)
    grey_alpha = np.random.default_rng(3).integers(0, 65535, (20, 30, 2), dtype=np.uint16)
    colour = services.check_image_upload(lm_check=check, upload=upload(png16(rgba, 6), "rgba.png"), by=member)
    grey = services.check_image_upload(lm_check=check, upload=upload(png16(grey_alpha, 4), "la.png"), by=member)
    assert (colour.channels, colour.bit_depth) == (3, 16)
    assert (grey.channels, grey.bit_depth) == (1, 16)


def test_a_truncated_16_bit_colour_png_is_refused(check, member):
    content = png16(np.random.default_rng(4).integers(0, 65535, (40, 40, 3), dtype=np.uint16), 2)
    with pytest.raises(DomainError, match="truncated|corrupted"):
        services.check_image_upload(lm_check=check, upload=upload(content[: len(content) // 2], "c.png"), by=member)
    assert CheckImage.objects.count() == 0
    assert stored_files() == []


@pytest.mark.parametrize(
    "make",
    [
        lambda rng: rng.normal(300, 30, (256, 256)),  # an empty field: camera noise
        lambda rng: rng.uniform(0, 4000, (256, 256)),  # noise of any level, uniform
        lambda rng: rng.poisson(5, (256, 256)).astype(float),  # few photons
        lambda rng: 2000 - 600 * np.linspace(0, 1, 256)[None, :] + rng.normal(0, 20, (256, 256)),  # a gradient
    ],
    ids=["gaussian-noise", "uniform-noise", "poisson-noise", "illumination-gradient"],
)
def test_coverage_of_a_field_without_cells_is_zero_whatever_its_noise(make):
    image = np.clip(make(np.random.default_rng(7)), 0, 65535).astype(np.uint16)
    assert metrics.coverage_fraction(image) == 0.0
    assert metrics.coverage_fraction(image, bright_foreground=False) == 0.0
    assert metrics.compute_metrics(image[np.newaxis])["coverage_fraction"] == 0.0


def test_coverage_of_discs_five_noise_levels_above_the_background_is_their_area():
    rng = np.random.default_rng(8)
    yy, xx = np.mgrid[:512, :512]
    discs = ((yy - 150) ** 2 + (xx - 150) ** 2 <= 60**2) | ((yy - 350) ** 2 + (xx - 380) ** 2 <= 45**2)
    image = np.clip(rng.normal(300, 30, discs.shape) + discs * 150, 0, 65535).astype(np.uint16)
    assert metrics.coverage_fraction(image) == pytest.approx(discs.mean(), abs=0.02)


def noisy_atlas(*, broken: set, dtype, scale: float, n: int = 10, square: int = 40, bar: int = 10) -> np.ndarray:
    """An n×n atlas: near-black bars (8), film (110), broken film (230), camera noise of 6, all × scale."""
    pitch = square + bar
    size = n * pitch + bar
    image = np.full((size, size), 8.0)
    for row in range(n):
        for column in range(n):
            y0, x0 = bar + row * pitch, bar + column * pitch
            image[y0 : y0 + square, x0 : x0 + square] = 230.0 if (row, column) in broken else 110.0
    image = (image + np.random.default_rng(9).normal(0, 6, image.shape)) * scale
    return np.clip(image, 0, np.iinfo(dtype).max).astype(dtype)


@pytest.mark.parametrize(("dtype", "scale"), [(np.uint8, 1), (np.uint16, 200)], ids=["8-bit", "16-bit"])
@pytest.mark.parametrize("broken_count", [0, 6, 50, 90])
def test_atlas_with_noisy_near_black_bars_finds_every_square_at_8_and_16_bit(dtype, scale, broken_count):
    broken = {(k // 10, k % 10) for k in range(broken_count)}
    found = metrics.atlas_metrics(noisy_atlas(broken=broken, dtype=dtype, scale=scale))
    assert found.squares_found == 100
    assert found.broken_squares == broken_count
    assert found.intact_fraction == pytest.approx((100 - broken_count) / 100)
    assert found.contamination_spots == 0
