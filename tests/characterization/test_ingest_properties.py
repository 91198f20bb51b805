"""Property-based tests (hypothesis) of the image ingest: whatever the bytes or the metadata, decoding
either gives an image with sane fields or refuses with ImageRefused; never another exception."""

from __future__ import annotations

import io
import math

import numpy as np
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from characterization import imaging

LIMITS = imaging.Limits(max_bytes=8 * 1024**2, max_plane_pixels=4096 * 4096, max_decoded_bytes=64 * 1024**2)
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _decode(content: bytes, name: str = "x.tif"):
    try:
        decoded = imaging.decode(io.BytesIO(content), size=len(content), name=name, limits=LIMITS)
    except imaging.ImageRefused as error:
        assert str(error).strip(), "a refusal says why"
        return None
    assert decoded.data.ndim == 3 and decoded.channels >= 1
    assert decoded.width >= imaging.MIN_SIDE_PX and decoded.height >= imaging.MIN_SIDE_PX
    assert decoded.pixel_size_um is None or (math.isfinite(decoded.pixel_size_um) and decoded.pixel_size_um > 0)
    assert all("\x00" not in n and "\n" not in n for n in decoded.channel_names)
    return decoded


def _tiff(data, **kwargs) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, data, **kwargs)
    return buffer.getvalue()


MAGIC = st.sampled_from([b"II*\x00", b"MM\x00*", b"II+\x00", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b""])


@FAST
@given(magic=MAGIC, body=st.binary(max_size=4096))
def test_arbitrary_bytes_behind_any_magic_are_decoded_or_refused(magic, body):
    _decode(magic + body)


SMALL = _tiff(np.arange(16 * 16 * 2, dtype=np.uint16).reshape(2, 16, 16), photometric="minisblack")


@FAST
@given(st.lists(st.tuples(st.integers(0, len(SMALL) - 1), st.integers(0, 255)), min_size=1, max_size=12))
def test_a_valid_tiff_with_bytes_flipped_is_decoded_or_refused(flips):
    content = bytearray(SMALL)
    for position, value in flips:
        content[position] = value
    _decode(bytes(content))


@FAST
@given(cut=st.integers(0, len(SMALL) - 1))
def test_a_truncated_tiff_is_refused(cut):
    assert _decode(SMALL[:cut]) is None


ATTRIBUTE = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters='"<&\x00'), max_size=20),
    st.sampled_from(["NaN", "inf", "-inf", "1e999", "-0", "0", "1e-320", "325", "0x10", " 3 "]),
)


@FAST
@given(size=ATTRIBUTE, unit=ATTRIBUTE, magnification=ATTRIBUTE, na=ATTRIBUTE, channel=ATTRIBUTE)
def test_any_ome_attribute_values_give_an_image_or_a_refusal(size, unit, magnification, na, channel):
    from xml.sax.saxutils import quoteattr

    xml = (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/Schemas/OME/2016-06">'
        f'<Instrument><Objective ID="Objective:0" NominalMagnification={quoteattr(magnification)} '
        f'LensNA={quoteattr(na)}/></Instrument><Image ID="Image:0"><ObjectiveSettings ID="Objective:0"/>'
        f'<Pixels ID="Pixels:0" DimensionOrder="XYCZT" Type="uint8" SizeX="8" SizeY="8" SizeC="1" SizeZ="1" SizeT="1" '
        f"PhysicalSizeX={quoteattr(size)} PhysicalSizeXUnit={quoteattr(unit)}>"
        f'<Channel ID="Channel:0:0" Name={quoteattr(channel)}/><TiffData/></Pixels></Image></OME>'
    )
    try:
        content = _tiff(np.zeros((8, 8), np.uint8), description=xml.encode("utf-8"), metadata=None)
    except ValueError:
        return  # tifffile cannot write this description; nothing to upload
    decoded = _decode(content, "meta.ome.tif")
    assert decoded is not None, "bad metadata loses the metadata, not the image"
    assert len(decoded.objective) <= 120


@FAST
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 40), st.integers(1, 40)),
    dtype=st.sampled_from(["uint8", "uint16", "float32", "int16", "float64", "uint32"]),
    fill=st.sampled_from([0.0, 1.0, float("nan"), float("inf"), 70000.0]),
)
def test_any_small_stack_is_decoded_or_refused(shape, dtype, fill):
    data = np.full(shape, fill if np.dtype(dtype).kind == "f" else 0, dtype=dtype)
    decoded = _decode(_tiff(data, photometric="minisblack"))
    if decoded is not None:
        assert decoded.data.dtype in (np.uint8, np.uint16, np.float32)
        if decoded.data.dtype.kind == "f":
            assert np.isfinite(decoded.data).all()
