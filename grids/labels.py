"""QR labels for grids and boxes (segno: pure-Python QR encoder, SVG and PNG without extra deps)."""

from __future__ import annotations

import io

import segno


def qr_svg(text: str, *, scale: int = 4) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="svg", scale=scale, border=2, xmldecl=False)
    return buffer.getvalue()


def qr_png(text: str, *, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    segno.make(text, error="m", micro=False).save(buffer, kind="png", scale=scale, border=2)
    return buffer.getvalue()


def qr_data_uri(text: str, *, scale: int = 4) -> str:
    """An inline SVG data URI, for printable label sheets that load nothing from outside."""
    return segno.make(text, error="m", micro=False).svg_data_uri(scale=scale, border=2)
