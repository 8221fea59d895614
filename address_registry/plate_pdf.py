"""Print-ready QR door plates as PDF (二维码门牌制作): one plate per page, at its real size.

Sizes follow the plate sizes Chinese cities use (e.g. Tianjin's 2021 rules): ``large`` 570×370 mm with a
120×120 mm QR, ``medium`` 270×170 mm with 75×75 mm, ``small`` 150×90 mm with 40×40 mm. Each page is a
blue field with white text (road or compound, the number, the full standard address, the 17-digit code for
manual entry) and a black-on-white QR code holding the signed scan link (`address_registry.plates`:
``{base}/p/{code}?c={check}``). The text uses a TrueType CJK font (`geo.fonts`), embedded as a subset,
so the PDF shows Chinese on any reader and printer. Pure: records, base URL and key in, PDF bytes out.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass

import segno

from address_registry.plates import plate_url
from address_registry.records import AddressRecord

MM = 72.0 / 25.4  # PDF points per millimetre
BLUE = (0x1F / 255, 0x4E / 255, 0x9C / 255)
PALE = (0xDB / 255, 0xE6 / 255, 0xF7 / 255)
#: quiet zone around the QR symbol, in modules (ISO/IEC 18004 asks for 4; 2 is enough on a white pad
#: that is itself set on the blue field, and keeps the modules larger on small plates)
QUIET = 2


@dataclass(frozen=True)
class PlateSize:
    """A plate's size and its QR code's size, in millimetres."""

    name: str
    title: str
    width: float
    height: float
    qr: float


SIZES: dict[str, PlateSize] = {
    "large": PlateSize("large", "大型门牌", 570, 370, 120),
    "medium": PlateSize("medium", "中型门牌", 270, 170, 75),
    "small": PlateSize("small", "小型门牌", 150, 90, 40),
}
#: the largest number of plates one PDF may hold (CLI and API)
MAX_PLATES = 2000


def plate_lines(rec: AddressRecord) -> tuple[str, str]:
    """The two big lines of a plate: the place (road or compound) and the number at this level."""
    c = rec.components
    if rec.level == "house_number":
        return c.get("road", ""), c.get("house_number", "")
    if rec.level == "road":
        return c.get("district", ""), c.get("road", "")
    if rec.level == "compound":
        return c.get("road", "") + c.get("house_number", ""), c.get("compound", "")
    place = c.get("compound") or (c.get("road", "") + c.get("house_number", ""))
    number = "".join(c.get(k, "") for k in ("building", "unit", "floor", "room"))
    return place, number


def _fit(canvas, text: str, font: str, size: float, width: float) -> float:
    """The font size (at most ``size``) at which ``text`` fits ``width`` points."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    w = stringWidth(text, font, size) if text else 0.0
    return size if w <= width else max(size * width / w, 1.0)


def _draw_qr(canvas, payload: str, x: float, y: float, side: float) -> None:
    """The QR code of ``payload`` on a white square ``side`` points wide at (x, y), dark runs as rectangles."""
    qr = segno.make(payload, error="m", boost_error=False)
    rows = [list(r) for r in qr.matrix]
    n = len(rows) + 2 * QUIET
    module = side / n
    canvas.setFillColorRGB(1, 1, 1)
    canvas.rect(x, y, side, side, stroke=0, fill=1)
    canvas.setFillColorRGB(0, 0, 0)
    for i, row in enumerate(rows):
        top = y + side - (i + QUIET + 1) * module
        j = 0
        while j < len(row):
            if not row[j]:
                j += 1
                continue
            start = j
            while j < len(row) and row[j]:
                j += 1
            # a hair of overlap so adjacent modules print without white seams
            canvas.rect(x + (start + QUIET) * module, top, (j - start) * module + 0.05, module + 0.05,
                        stroke=0, fill=1)


def _draw_plate(canvas, rec: AddressRecord, url: str, size: PlateSize, font: str) -> None:
    """One plate on the current page."""
    w, h = size.width * MM, size.height * MM
    q = size.qr * MM
    margin = (h - q) / 2  # the QR sits centred vertically, as far from the right edge as from top and bottom
    canvas.setFillColorRGB(*BLUE)
    canvas.roundRect(0, 0, w, h, min(w, h) * 0.04, stroke=0, fill=1)
    # a thin white frame, as on the printed plates
    canvas.setStrokeColorRGB(1, 1, 1)
    canvas.setLineWidth(max(h * 0.008, 0.8))
    inset = h * 0.03
    canvas.roundRect(inset, inset, w - 2 * inset, h - 2 * inset, min(w, h) * 0.035, stroke=1, fill=0)
    qx = w - margin - q
    _draw_qr(canvas, url, qx, margin, q)
    text_w = qx - 2 * margin
    left = margin
    place, number = plate_lines(rec)
    canvas.setFillColorRGB(1, 1, 1)
    fs = _fit(canvas, place, font, h * 0.16, text_w)
    canvas.setFont(font, fs)
    canvas.drawString(left, h - margin - fs, place)
    ns = _fit(canvas, number, font, h * 0.30, text_w)
    canvas.setFont(font, ns)
    canvas.drawString(left, h / 2 - ns * 0.45, number)
    canvas.setFillColorRGB(*PALE)
    ss = _fit(canvas, rec.formatted, font, h * 0.055, text_w)
    canvas.setFont(font, ss)
    canvas.drawString(left, margin + h * 0.075, rec.formatted)
    cs = _fit(canvas, rec.code, "Courier-Bold", h * 0.06, text_w)
    canvas.setFont("Courier-Bold", cs)
    canvas.drawString(left, margin, rec.code)


def plates_pdf(records: Iterable[AddressRecord], base_url: str, key: bytes, size: str = "medium",
               title: str = "二维码门牌") -> bytes:
    """A PDF with one page per address (each page the plate's real size); the CJK font embedded."""
    from reportlab.pdfgen.canvas import Canvas

    from geo.fonts import register_cjk_font

    spec = SIZES[size]
    font = register_cjk_font()
    buf = io.BytesIO()
    canvas = Canvas(buf, pagesize=(spec.width * MM, spec.height * MM), pageCompression=1)
    canvas.setTitle(title)
    canvas.setCreator("Shequ GIS 社区 GIS")
    count = 0
    for rec in records:
        _draw_plate(canvas, rec, plate_url(base_url, rec.code, key), spec, font)
        canvas.showPage()
        count += 1
    if count == 0:
        raise ValueError("no plates to print")
    canvas.save()
    return buf.getvalue()
