"""Files beamtime hands out: target lists (CSV, JSON), shipment manifests (PDF, CSV), iCalendar feeds.

Pure functions of already-loaded data; the views and the API pick the rows through the selectors.
"""

from __future__ import annotations

import csv
import datetime
import io
import json

from django.utils import timezone

from grids import labels

TARGET_COLUMNS = ["position", "grid", "square", "offset_x_um", "offset_y_um", "label", "priority"]
MANIFEST_COLUMNS = ["grid", "lab", "grid_type", "box", "box_barcode", "slot", "barcode", "qr_payload", "state"]


def targets_csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=TARGET_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row.get(k) is None else row.get(k) for k in TARGET_COLUMNS})
    return out.getvalue()


def targets_json(session, rows: list[dict]) -> str:
    return json.dumps(
        {
            "session": session.pk,
            "beamline": str(session.beamline),
            "proposal": session.proposal.number,
            "start": session.start.isoformat(),
            "end": session.end.isoformat(),
            "targets": rows,
        },
        indent=2,
        ensure_ascii=False,
    )


def manifest_rows(shipment, items) -> list[dict]:
    return [
        {
            "grid": item.grid.barcode,
            "lab": shipment.lab.code,
            "grid_type": item.grid.lot.grid_type.name,
            "box": item.box_name,
            "box_barcode": item.box_barcode,
            "slot": item.slot or "",
            "barcode": item.grid.barcode,
            "qr_payload": item.grid.barcode,
            "state": item.grid.state,
        }
        for item in items
    ]


def manifest_csv(shipment, items) -> str:
    out = io.StringIO()
    out.write(
        f"# Shipment {shipment.pk}; dewar {shipment.dewar}; courier {shipment.courier or '-'}; "
        f"tracking {shipment.tracking_number or '-'}; session {shipment.session_id} on {shipment.session.beamline}\n"
    )
    writer = csv.DictWriter(out, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(manifest_rows(shipment, items))
    return out.getvalue()


def linear_barcode(value: str, *, height: float, max_width: float):
    """A Code 128 symbol of `value`, its modules as wide as a scanner likes (0.3 mm) or narrower to fit."""
    from reportlab.graphics.barcode import code128
    from reportlab.lib.units import mm

    symbol = code128.Code128(value, barHeight=height, barWidth=0.3 * mm, quiet=False)
    if symbol.width > max_width:
        symbol = code128.Code128(value, barHeight=height, barWidth=0.3 * mm * max_width / symbol.width, quiet=False)
    return symbol


def manifest_pdf(shipment, items) -> bytes:
    """A printable A4 manifest: the shipment header, then one row per grid with its QR code, its barcode (as
    text and as a Code 128 symbol a hand scanner reads), grid type, box (name and Code 128 barcode) and slot."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"Shipment {shipment.pk} manifest")
    pdf.setAuthor("SXT LIMS")
    width, height = A4
    margin = 15 * mm
    session = shipment.session
    rows = manifest_rows(shipment, items)

    def header() -> float:
        y = height - margin
        pdf.setFont("Helvetica-Bold", 14)
        pdf.drawString(margin, y - 5 * mm, f"Shipment manifest #{shipment.pk} — dewar {shipment.dewar}")
        pdf.setFont("Helvetica", 9)
        lines = [
            f"Lab: {shipment.lab.name} ({shipment.lab.code})    Proposal: {session.proposal.number}",
            f"Session {session.pk}: {session.beamline}, "
            f"{timezone.localtime(session.start):%Y-%m-%d %H:%M} – {timezone.localtime(session.end):%Y-%m-%d %H:%M}",
            f"Courier: {shipment.courier or '—'}    Tracking: {shipment.tracking_number or '—'}    "
            f"Status: {shipment.get_status_display()}    Grids: {len(rows)}",
        ]
        for i, line in enumerate(lines):
            pdf.drawString(margin, y - (11 + 5 * i) * mm, line)
        qr = ImageReader(io.BytesIO(labels.qr_png(f"SHIPMENT-{shipment.pk}", scale=4)))
        pdf.drawImage(qr, width - margin - 22 * mm, y - 24 * mm, 22 * mm, 22 * mm)
        y -= 32 * mm
        pdf.setFont("Helvetica-Bold", 9)
        for x, title in ((0, "QR"), (26, "Grid barcode"), (76, "Grid type"), (116, "Box"), (160, "Slot")):
            pdf.drawString(margin + x * mm, y, title)
        pdf.line(margin, y - 2 * mm, width - margin, y - 2 * mm)
        return y - 4 * mm

    y = header()
    row_height = 24 * mm
    for row in rows:
        if y - row_height < margin:
            pdf.showPage()
            y = header()
        qr = ImageReader(io.BytesIO(labels.qr_png(row["barcode"], scale=4)))
        pdf.drawImage(qr, margin, y - 22 * mm, 22 * mm, 22 * mm)
        pdf.setFont("Courier-Bold", 11)
        pdf.drawString(margin + 26 * mm, y - 6 * mm, row["barcode"])
        linear_barcode(row["barcode"], height=9 * mm, max_width=48 * mm).drawOn(pdf, margin + 26 * mm, y - 18 * mm)
        pdf.setFont("Helvetica", 9)
        pdf.drawString(margin + 76 * mm, y - 10 * mm, row["grid_type"][:24])
        pdf.drawString(margin + 116 * mm, y - 6 * mm, (row["box"] or "—")[:26])
        if row["box_barcode"]:
            pdf.setFont("Courier", 8)
            pdf.drawString(margin + 116 * mm, y - 10 * mm, row["box_barcode"])
            linear_barcode(row["box_barcode"], height=7 * mm, max_width=42 * mm).drawOn(
                pdf, margin + 116 * mm, y - 19 * mm
            )
            pdf.setFont("Helvetica", 9)
        pdf.drawString(margin + 160 * mm, y - 10 * mm, str(row["slot"] or "—"))
        pdf.line(margin, y - row_height + 1 * mm, width - margin, y - row_height + 1 * mm)
        y -= row_height
    pdf.setFont("Helvetica", 8)
    pdf.drawString(margin, margin / 2, f"Printed {timezone.localtime():%Y-%m-%d %H:%M} by SXT LIMS")
    pdf.save()
    return buffer.getvalue()


# --- iCalendar (RFC 5545) -----------------------------------------------------------------------


def _ical_escape(text: str) -> str:
    return (
        text.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next line after CRLF and a space."""
    data = line.encode("utf-8")
    if len(data) <= 75:
        return line
    parts, current = [], b""
    for char in line:
        encoded = char.encode("utf-8")
        if len(current) + len(encoded) > (75 if not parts else 74):
            parts.append(current.decode("utf-8"))
            current = b""
        current += encoded
    parts.append(current.decode("utf-8"))
    return "\r\n ".join(parts)


def _utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")


def ical_feed(*, name: str, sessions, host: str, show_lab: bool = True) -> str:
    """A VCALENDAR with one VEVENT per session; cancelled sessions carry STATUS:CANCELLED."""
    now = _utc(timezone.now())
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//SXT LIMS//Beamtime//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_ical_escape(name)}",
    ]
    status_map = {"planned": "TENTATIVE", "confirmed": "CONFIRMED", "running": "CONFIRMED", "finished": "CONFIRMED"}
    for s in sessions:
        summary = f"{s.beamline} beamtime"
        if show_lab:
            summary += f" – {s.lab.code}"
        description = (
            f"Proposal {s.proposal.number}: {s.proposal.title}\n"
            f"Status: {s.get_status_display()}; {s.shifts} shift(s); "
            f"sample sheet freezes {timezone.localtime(s.freeze_at):%Y-%m-%d %H:%M}"
        )
        lines += [
            "BEGIN:VEVENT",
            f"UID:beamtime-session-{s.pk}@{host}",
            f"DTSTAMP:{now}",
            f"DTSTART:{_utc(s.start)}",
            f"DTEND:{_utc(s.end)}",
            f"SUMMARY:{_ical_escape(summary)}",
            f"DESCRIPTION:{_ical_escape(description)}",
            f"LOCATION:{_ical_escape(s.beamline.facility.name)}",
            f"STATUS:{'CANCELLED' if s.status == 'cancelled' else status_map.get(s.status, 'TENTATIVE')}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return "".join(_fold(line) + "\r\n" for line in lines)
