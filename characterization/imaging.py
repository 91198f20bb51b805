"""Reading light-microscopy images: type by content, refusal of bad files, metadata, previews.

No Django here: paths or file objects in, arrays and dataclasses out; `ImageRefused` says what is
wrong with a file in words a bench scientist understands. The caller (services) turns it into a
DomainError and makes sure nothing of a refused file is stored.
"""

from __future__ import annotations

import io
import math
import re
import struct
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import tifffile
from PIL import Image

TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
# The Laplacian (focus) needs an interior pixel.
MIN_SIDE_PX = 3


class ImageRefused(ValueError):
    """The file is not an image this system accepts; the message says why."""


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_plane_pixels: int
    max_decoded_bytes: int
    # A file that decodes to more than `ratio_from_bytes` and more than `max_ratio` times its own size is
    # a decompression bomb (microscope images compress a few times, not hundreds of times).
    max_ratio: float = 200.0
    ratio_from_bytes: int = 64 * 1024**2


@dataclass
class DecodedImage:
    """An image as (channels, y, x) in its own integer type, with what its metadata says."""

    format: str  # tiff | ome-tiff | png | jpeg
    data: np.ndarray
    bit_depth: int
    planes: int = 1
    pixel_size_um: float | None = None
    channel_names: list[str] = field(default_factory=list)
    objective: str = ""
    metadata_source: str = ""
    rgb: bool = False

    @property
    def channels(self) -> int:
        return int(self.data.shape[0])

    @property
    def height(self) -> int:
        return int(self.data.shape[1])

    @property
    def width(self) -> int:
        return int(self.data.shape[2])


def sniff(head: bytes) -> str | None:
    """The format from the first bytes, or None."""
    if head[:4] in TIFF_MAGIC:
        return "tiff"
    if head.startswith(PNG_MAGIC):
        return "png"
    if head.startswith(JPEG_MAGIC):
        return "jpeg"
    return None


def _describe_head(head: bytes) -> str:
    if head.lstrip().startswith((b"<", b"{", b"%PDF", b"PK")):
        kind = {b"<": "text/HTML/XML", b"{": "JSON", b"%PDF": "a PDF", b"PK": "a ZIP archive"}
        for prefix, name in kind.items():
            if head.lstrip().startswith(prefix):
                return f"it looks like {name}"
    return f"it starts with bytes {head[:8].hex(' ')}"


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def decode(source, *, size: int, name: str = "", limits: Limits) -> DecodedImage:
    """Validate and decode an image file completely (a file object, seekable, or a path).

    Refuses with ImageRefused: files above the size limit, content that is not TIFF, PNG or JPEG
    whatever the name says, declared dimensions beyond the pixel limits (decompression bombs),
    truncated and corrupted files, and pixel types other than 8/16-bit integers (or 32-bit float
    TIFF).
    """
    label = f"{name}: " if name else ""
    if size > limits.max_bytes:
        raise ImageRefused(f"{label}the file is {_human(size)}; the limit is {_human(limits.max_bytes)}.")
    if size == 0:
        raise ImageRefused(f"{label}the file is empty.")
    handle = open(source, "rb") if isinstance(source, str) else source  # noqa: SIM115
    try:
        handle.seek(0)
        head = handle.read(16)
        handle.seek(0)
        kind = sniff(head)
        if kind is None:
            claimed = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            named = f" although its name ends in .{claimed}" if claimed else ""
            raise ImageRefused(
                f"{label}this is not a TIFF, OME-TIFF, PNG or JPEG image{named} (judged by its content: "
                f"{_describe_head(head)})."
            )
        if kind == "tiff":
            decoded = _decode_tiff(handle, size=size, label=label, limits=limits)
        else:
            decoded = _decode_pillow(handle, kind=kind, label=label, limits=limits, size=size)
    finally:
        if isinstance(source, str):
            handle.close()
    if decoded.width < MIN_SIDE_PX or decoded.height < MIN_SIDE_PX:
        raise ImageRefused(
            f"{label}the image is {decoded.width}×{decoded.height} pixels; at least {MIN_SIDE_PX}×{MIN_SIDE_PX} "
            "are needed to measure focus and coverage."
        )
    return decoded


def _check_dimensions(
    label: str, plane_pixels: int, decoded_bytes: int, limits: Limits, shape, size: int | None = None
) -> None:
    if plane_pixels > limits.max_plane_pixels:
        raise ImageRefused(
            f"{label}the image declares {plane_pixels:,} pixels per plane (shape {tuple(shape)}); the limit is "
            f"{limits.max_plane_pixels:,}. Refused as a possible decompression bomb."
        )
    if decoded_bytes > limits.max_decoded_bytes:
        raise ImageRefused(
            f"{label}the image would take {_human(decoded_bytes)} once decoded (shape {tuple(shape)}); the limit is "
            f"{_human(limits.max_decoded_bytes)}. Refused as a possible decompression bomb."
        )
    if size and decoded_bytes > limits.ratio_from_bytes and decoded_bytes > limits.max_ratio * size:
        raise ImageRefused(
            f"{label}the {_human(size)} file would take {_human(decoded_bytes)} once decoded (shape {tuple(shape)}), "
            f"{decoded_bytes / size:,.0f} times its size. Refused as a possible decompression bomb."
        )


_ACCEPTED_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


def _decode_tiff(handle, *, size: int, label: str, limits: Limits) -> DecodedImage:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tif = tifffile.TiffFile(handle)
    except Exception as error:  # tifffile raises many types for a damaged header
        raise ImageRefused(f"{label}the TIFF structure is damaged and cannot be read ({error}).") from None
    with tif:
        try:
            series = tif.series[0]
            shape, dtype, axes = tuple(series.shape), np.dtype(series.dtype), series.axes
            pages = [p for p in series.pages if p is not None]
        except Exception as error:
            raise ImageRefused(f"{label}the TIFF structure is damaged and cannot be read ({error}).") from None
        if "Y" not in axes or "X" not in axes:
            raise ImageRefused(f"{label}the TIFF holds no 2-D image (axes {axes!r}).")
        plane = shape[axes.index("Y")] * shape[axes.index("X")]
        _check_ifd_chain(handle, size=size, label=label)
        _check_dimensions(label, plane, math.prod(shape) * dtype.itemsize, limits, shape, size)
        if dtype not in _ACCEPTED_DTYPES:
            raise ImageRefused(f"{label}pixels of type {dtype} are not supported: use 8 or 16-bit integers.")
        # Truncation: every strip or tile the file declares must lie inside the file.
        for page in pages:
            page = page.keyframe if not hasattr(page, "dataoffsets") else page
            offsets, counts = page.dataoffsets, page.databytecounts
            if not offsets:
                continue
            end = max(o + c for o, c in zip(offsets, counts, strict=False))
            for tag in getattr(page, "tags", {}).values():
                if tag.valueoffset + tag.valuebytecount > size:
                    end = max(end, tag.valueoffset + tag.valuebytecount)
            if end > size or any(c == 0 for c in counts):
                raise ImageRefused(
                    f"{label}the TIFF is truncated: its pixel data should reach byte {end:,} but the file has "
                    f"{size:,} bytes. Upload the complete file."
                )
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error")
                data = series.asarray()
        except (ValueError, KeyError) as error:
            message = str(error)
            if "requires the 'imagecodecs'" in message or "compression" in message.lower():
                raise ImageRefused(
                    f"{label}the TIFF uses a compression this server cannot decode ({message})."
                ) from None
            raise ImageRefused(
                f"{label}the TIFF's pixel data is corrupted and cannot be decoded ({message})."
            ) from None
        except Exception as error:
            raise ImageRefused(f"{label}the TIFF's pixel data is corrupted and cannot be decoded ({error}).") from None
        if data.dtype.kind == "f" and not np.isfinite(data).all():
            raise ImageRefused(
                f"{label}the image holds NaN or infinite pixel values; export it as 8 or 16-bit integers."
            )
        decoded = DecodedImage(format="tiff", data=data, bit_depth=dtype.itemsize * 8)
        try:
            _to_cyx(decoded, axes)
        except (ValueError, IndexError) as error:
            raise ImageRefused(
                f"{label}the TIFF's declared axes ({axes}) do not match its pixel data ({error})."
            ) from None
        _read_tiff_metadata(tif, decoded, label)
    return decoded


def _check_ifd_chain(handle, *, size: int, label: str) -> None:
    """Refuse a TIFF whose chain of image directories points past the end of the file (a file cut off
    after its first page would otherwise read as a complete one-page image)."""
    handle.seek(0)
    header = handle.read(16)
    order = "<" if header[:2] == b"II" else ">"
    big = header[2:4] in (b"+\x00", b"\x00+")
    offset_format, count_format, entry_size = ("Q", "Q", 20) if big else ("I", "H", 12)
    offset = struct.unpack_from(order + offset_format, header, 8 if big else 4)[0]
    seen = set()
    while offset and offset not in seen and len(seen) < 100_000:
        seen.add(offset)
        count_size = struct.calcsize(count_format)
        if offset + count_size > size:
            break
        handle.seek(offset)
        count = struct.unpack(order + count_format, handle.read(count_size))[0]
        next_at = offset + count_size + count * entry_size
        pointer_size = struct.calcsize(offset_format)
        if next_at + pointer_size > size:
            break
        entries = handle.read(count * entry_size)
        if _values_past_end(entries, order=order, big=big, size=size):
            break
        handle.seek(next_at)
        offset = struct.unpack(order + offset_format, handle.read(pointer_size))[0]
        if offset >= size:
            break
    else:
        handle.seek(0)
        return
    handle.seek(0)
    raise ImageRefused(
        f"{label}the TIFF is truncated: its image directories continue past the end of the file ({size:,} bytes). "
        "Upload the complete file."
    )


_TIFF_TYPE_BYTES = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
    17: 8,
    18: 8,
}


def _values_past_end(entries: bytes, *, order: str, big: bool, size: int) -> bool:
    """Whether a directory's entries keep values (stored beyond the entry) past the end of the file."""
    entry_format = order + ("HHQQ" if big else "HHII")
    inline = 8 if big else 4
    for start in range(0, len(entries) - struct.calcsize(entry_format) + 1, struct.calcsize(entry_format)):
        _tag, kind, count, value = struct.unpack_from(entry_format, entries, start)
        length = _TIFF_TYPE_BYTES.get(kind, 1) * count
        if length > inline and value + length > size:
            return True
    return False


def _to_cyx(decoded: DecodedImage, axes: str) -> None:
    """Reorder to (channels, y, x): channels from C (or RGB samples S, or a short unknown leading axis);
    Z planes become their maximum projection; other axes (time, …) keep their first index."""
    data = decoded.data
    axes = list(axes)
    channel_axis = next((a for a in ("C", "S") if a in axes), None)
    if channel_axis is None:
        unknown = [a for a in axes if a in "QIE" and data.shape[axes.index(a)] <= 6]
        channel_axis = unknown[0] if unknown else None
    decoded.rgb = channel_axis == "S" and data.shape[axes.index("S")] in (3, 4)
    planes = 1
    for axis in list(axes):
        if axis in ("Y", "X", channel_axis):
            continue
        index = axes.index(axis)
        planes *= data.shape[index]
        data = data.max(axis=index) if axis == "Z" else np.take(data, 0, axis=index)
        axes.pop(index)
    if channel_axis is None:
        data = data[np.newaxis]
        axes.insert(0, "C")
        channel_axis = "C"
    order = [axes.index(channel_axis), axes.index("Y"), axes.index("X")]
    if order != [0, 1, 2]:
        data = np.ascontiguousarray(np.transpose(data, order))
    if decoded.rgb and data.shape[0] == 4:
        data = data[:3]  # drop alpha
    decoded.data = data
    decoded.planes = planes


_DEFAULT_DPI = {72.0, 96.0, 150.0, 300.0, 600.0}


def _read_tiff_metadata(tif: tifffile.TiffFile, decoded: DecodedImage, label: str = "") -> None:
    if tif.is_ome and tif.ome_metadata:
        decoded.format = "ome-tiff"
        try:
            _read_ome(tif.ome_metadata, decoded)
            decoded.metadata_source = "ome"
        except _HostileXML as error:
            raise ImageRefused(
                f"{label}this OME-TIFF's metadata is refused: {error}, which OME-XML never needs. "
                "Export the file again from the microscope software."
            ) from None
        except (ET.ParseError, ValueError, TypeError, AttributeError):
            pass  # unreadable metadata: the pixels are still good, the metadata is left empty
    if decoded.pixel_size_um is None:
        try:
            size = _tiff_pixel_size(tif)
        except (ValueError, TypeError, ZeroDivisionError, OverflowError, AttributeError):
            size = None
        if size is not None:
            decoded.pixel_size_um = size
            decoded.metadata_source = decoded.metadata_source or "tiff"
    if not decoded.channel_names:
        ij = tif.imagej_metadata or {}
        labels = ij.get("Labels")
        if isinstance(labels, list) and len(labels) == decoded.channels:
            decoded.channel_names = [clean_text(x, 80) for x in labels]
        elif decoded.rgb:
            decoded.channel_names = ["R", "G", "B"]


_UNIT_TO_UM = {"µm": 1.0, "um": 1.0, "micron": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4, "m": 1e6, "Å": 1e-4}


def _number(text: str | None) -> float | None:
    """A finite number from a metadata attribute, or None for text, blanks, NaN and infinities."""
    try:
        value = float(text) if text is not None else None
    except (TypeError, ValueError):
        return None
    return value if value is not None and math.isfinite(value) else None


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clean_text(text: str, limit: int) -> str:
    """Text from a file (a name, a metadata field) without control characters (NUL, newlines), cut to `limit`."""
    return _CONTROL.sub(" ", str(text)).strip()[:limit]


class _HostileXML(ValueError):
    pass


def _read_ome(xml: str, decoded: DecodedImage) -> None:
    # OME-XML never needs a DTD; entity declarations are how "billion laughs" and external-entity
    # attacks start, so such metadata is refused before it is parsed.
    if re.search(r"<!(DOCTYPE|ENTITY)", xml[:65536], re.IGNORECASE):
        raise _HostileXML("the OME metadata declares a DOCTYPE or XML entities")
    root = ET.fromstring(xml)
    ns = {"ome": root.tag.split("}")[0].strip("{")} if root.tag.startswith("{") else {"ome": ""}

    def find(node, path):
        return node.find(path, ns) if ns["ome"] else node.find(path.replace("ome:", ""))

    def findall(node, path):
        return node.findall(path, ns) if ns["ome"] else node.findall(path.replace("ome:", ""))

    image = find(root, "ome:Image")
    pixels = find(image, "ome:Pixels") if image is not None else None
    if pixels is not None:
        size = _number(pixels.get("PhysicalSizeX"))
        if size is not None:
            unit = pixels.get("PhysicalSizeXUnit", "µm")
            factor = _UNIT_TO_UM.get(unit)
            if factor is not None and size > 0:
                decoded.pixel_size_um = size * factor
        names = [c.get("Name") or c.get("Fluor") or "" for c in findall(pixels, "ome:Channel")]
        if len(names) == decoded.channels and any(names):
            decoded.channel_names = [clean_text(n, 80) or f"Channel {i + 1}" for i, n in enumerate(names)]
    objective_id = None
    if image is not None and (settings := find(image, "ome:ObjectiveSettings")) is not None:
        objective_id = settings.get("ID")
    for objective in findall(root, "ome:Instrument/ome:Objective"):
        if objective_id and objective.get("ID") != objective_id:
            continue
        parts = [objective.get("Manufacturer", ""), objective.get("Model", "")]
        magnification, na = _number(objective.get("NominalMagnification")), _number(objective.get("LensNA"))
        if magnification is not None:
            parts.append(f"{magnification:g}x" + (f"/{na:g}" if na is not None else ""))
        immersion = objective.get("Immersion")
        if immersion and immersion not in ("Other", "Multi"):
            parts.append(immersion.lower())
        decoded.objective = clean_text(" ".join(p for p in parts if p), 120)
        break


def _tiff_pixel_size(tif: tifffile.TiffFile) -> float | None:
    page = tif.pages.first
    tag = page.tags.get("XResolution")
    if tag is None:
        return None
    numerator, denominator = tag.value
    if not numerator or not denominator:
        return None
    per_unit = numerator / denominator  # pixels per unit
    unit = page.tags.get("ResolutionUnit")
    unit_value = int(unit.value) if unit is not None else 2
    ij = tif.imagej_metadata or {}
    ij_unit = str(ij.get("unit", "")).replace("\\u00B5", "µ").lower()
    if ij_unit in _UNIT_TO_UM:
        return _UNIT_TO_UM[ij_unit] / per_unit
    if unit_value == 2:  # inch
        if per_unit in _DEFAULT_DPI:
            return None  # a writer's default DPI, not a microscope's pixel size
        return 25400.0 / per_unit
    if unit_value == 3:  # centimetre
        return 10000.0 / per_unit
    return None


def _decode_pillow(handle, *, kind: str, label: str, limits: Limits, size: int | None = None) -> DecodedImage:
    name = "PNG" if kind == "png" else "JPEG"
    try:
        with warnings.catch_warnings():
            # Our own limit (checked below, before decoding) decides; Pillow still refuses
            # anything beyond twice its MAX_IMAGE_PIXELS (DecompressionBombError).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(handle)
            if kind == "png":
                # Chunk CRCs and the end marker: a cut-off or bit-flipped PNG fails here.
                image.verify()
                handle.seek(0)
                image = Image.open(handle)
            width, height = image.size
            bands = len(image.getbands())
            _check_dimensions(label, width * height, width * height * bands * 2, limits, (height, width, bands), size)
            image.load()
    except ImageRefused:
        raise
    except Image.DecompressionBombError:
        raise ImageRefused(
            f"{label}the {name} declares too many pixels; refused as a possible decompression bomb."
        ) from None
    except (OSError, SyntaxError) as error:
        message = str(error)
        if "truncated" in message.lower() or "end of file" in message.lower() or "eof" in message.lower():
            raise ImageRefused(f"{label}the {name} is truncated ({message}). Upload the complete file.") from None
        raise ImageRefused(f"{label}the {name} is corrupted and cannot be decoded ({message}).") from None
    except Exception as error:
        raise ImageRefused(f"{label}the {name} is corrupted and cannot be decoded ({error}).") from None
    mode = image.mode
    rgb = False
    png_depth, png_colour = _png_header(handle) if kind == "png" else (0, 0)
    if png_depth == 16 and png_colour in (2, 4, 6):
        # Pillow reads 16-bit colour (and grey + alpha) PNGs as 8 bit: decode the full depth.
        array, rgb = _png16(handle, png_colour, label)
        bit_depth = 16
    elif mode in ("I;16", "I;16B", "I;16L"):
        array = np.asarray(image, dtype=np.uint16)[np.newaxis]
        bit_depth = 16
    elif mode == "I":
        raw = np.asarray(image)
        array = np.clip(raw, 0, 65535).astype(np.uint16)[np.newaxis]
        bit_depth = 16
    elif mode in ("L", "1", "P", "LA", "PA") and not (
        mode in ("P", "PA") and image.palette and image.palette.mode == "RGB"
    ):
        array = np.asarray(image.convert("L"), dtype=np.uint8)[np.newaxis]
        bit_depth = 8
    else:
        array = np.moveaxis(np.asarray(image.convert("RGB"), dtype=np.uint8), -1, 0)
        array = np.ascontiguousarray(array)
        bit_depth = 8
        rgb = True
    decoded = DecodedImage(format=kind, data=array, bit_depth=bit_depth, rgb=rgb)
    if rgb:
        decoded.channel_names = ["R", "G", "B"]
    dpi = image.info.get("dpi")
    if dpi and dpi[0] and float(dpi[0]) not in _DEFAULT_DPI and float(dpi[0]) > 1000:
        decoded.pixel_size_um = 25400.0 / float(dpi[0])
        decoded.metadata_source = "png" if kind == "png" else "jpeg"
    return decoded


def _png_header(handle) -> tuple[int, int]:
    """(bit depth, colour type) from a PNG's IHDR."""
    handle.seek(0)
    head = handle.read(26)
    handle.seek(0)
    return (head[24], head[25]) if len(head) == 26 and head[12:16] == b"IHDR" else (0, 0)


def _png16(handle, colour_type: int, label: str) -> tuple[np.ndarray, bool]:
    import imagecodecs

    handle.seek(0)
    try:
        array = imagecodecs.png_decode(handle.read())
    except Exception as error:
        raise ImageRefused(f"{label}the PNG is corrupted and cannot be decoded ({error}).") from None
    if array.dtype != np.uint16 or array.ndim != 3:
        raise ImageRefused(f"{label}the PNG could not be decoded at 16 bit (got {array.dtype}, {array.shape}).")
    if colour_type == 4:  # grey + alpha: the grey
        return np.ascontiguousarray(array[..., 0])[np.newaxis], False
    return np.ascontiguousarray(np.moveaxis(array[..., :3], -1, 0)), True


# --- previews --------------------------------------------------------------------------------

PREVIEW_MAX_PX = 1024
THUMB_MAX_PX = 256
STRETCH_PERCENTILES = (0.5, 99.8)

# Colours by common fluorophore or stain name, then a default palette by channel index.
_NAMED_COLOURS = [
    (r"dapi|hoechst|blue|405|bfp", (0, 110, 255)),
    (r"gfp|fitc|488|green|yfp|venus|calcein", (0, 255, 0)),
    (r"mcherry|rfp|tritc|cy3|568|594|561|red|mitotracker|tdtomato|texas", (255, 0, 200)),
    (r"cy5|647|640|far.?red|draq5", (255, 255, 0)),
    (r"bright|^bf$|trans|dic|phase|^tl|reflect", (255, 255, 255)),
]
_PALETTE = [(0, 255, 0), (255, 0, 200), (0, 200, 255), (255, 170, 0), (0, 110, 255), (255, 255, 0)]


def channel_colours(names: Sequence[str], count: int, *, rgb: bool = False) -> list[tuple[int, int, int]]:
    if rgb:
        return [(255, 0, 0), (0, 255, 0), (0, 0, 255)][:count]
    if count == 1:
        return [(255, 255, 255)]
    colours = []
    for index in range(count):
        name = (names[index] if index < len(names) else "").lower()
        colour = next((c for pattern, c in _NAMED_COLOURS if name and re.search(pattern, name)), None)
        colours.append(colour or _PALETTE[index % len(_PALETTE)])
    return colours


def stretch_lut(
    channel: np.ndarray, percentiles: tuple[float, float] = STRETCH_PERCENTILES, stats=None
) -> np.ndarray | tuple:
    """Contrast stretch to 8 bit between two percentiles: a lookup table for integer images."""
    from characterization.metrics import channel_stats

    stats = stats or channel_stats(channel)
    lo, hi = stats.percentile(percentiles[0]), stats.percentile(percentiles[1])
    if hi <= lo:
        hi = lo + 1
    if channel.dtype in (np.uint8, np.uint16):
        values = np.arange(256 if channel.dtype == np.uint8 else 65536, dtype=np.float32)
        return np.clip((values - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)
    return (lo, hi)


def stretch(channel: np.ndarray, stats=None) -> np.ndarray:
    lut = stretch_lut(channel, stats=stats)
    if isinstance(lut, np.ndarray):
        # By blocks of rows: take() converts its indices to int64, a full-size copy otherwise.
        out = np.empty(channel.shape, dtype=np.uint8)
        step = max(1, (1 << 18) // max(channel.shape[1], 1))
        for y0 in range(0, channel.shape[0], step):
            np.take(lut, channel[y0 : y0 + step], out=out[y0 : y0 + step])
        return out
    lo, hi = lut
    out = channel.astype(np.float32)
    out -= lo
    out *= 255.0 / (hi - lo)
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


def _reduce(image: Image.Image, max_px: int) -> Image.Image:
    factor = math.ceil(max(image.size) / max_px)
    return image.reduce(factor) if factor > 1 else image


@dataclass
class Previews:
    preview_jpeg: bytes
    thumbnail_jpeg: bytes
    channel_jpegs: list[bytes]
    colours: list[tuple[int, int, int]]
    size: tuple[int, int]  # preview (width, height)


def _jpeg(image: Image.Image) -> bytes:
    """Previews are JPEG (quality 90): ~40× faster to write than PNG; the original stays exact."""
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def make_previews(
    decoded_data: np.ndarray, *, channel_names: Sequence[str] = (), rgb: bool = False, stats: Sequence | None = None
) -> Previews:
    """8-bit JPEG previews: each channel stretched and reduced to at most 1024 px, coloured and added into
    one overlay (fluorescence) or shown grey (one channel); a thumbnail of at most 256 px."""
    count = decoded_data.shape[0]
    colours = channel_colours(channel_names, count, rgb=rgb)
    reduced = [
        _reduce(Image.fromarray(stretch(decoded_data[i], stats[i] if stats else None)), PREVIEW_MAX_PX)
        for i in range(count)
    ]
    if count == 1:
        overlay = reduced[0]
        channel_jpegs: list[bytes] = []
    else:
        size = reduced[0].size
        accumulator = np.zeros((size[1], size[0], 3), dtype=np.uint16)
        for plane, colour in zip(reduced, colours, strict=True):
            values = np.asarray(plane, dtype=np.uint16)
            for k in range(3):
                if colour[k]:
                    accumulator[..., k] += (values * colour[k] + 127) // 255
        overlay = Image.fromarray(np.minimum(accumulator, 255).astype(np.uint8))
        channel_jpegs = [_jpeg(plane) for plane in reduced]
    thumb = overlay.copy()
    thumb.thumbnail((THUMB_MAX_PX, THUMB_MAX_PX))
    return Previews(
        preview_jpeg=_jpeg(overlay),
        thumbnail_jpeg=_jpeg(thumb),
        channel_jpegs=channel_jpegs,
        colours=colours,
        size=overlay.size,
    )
