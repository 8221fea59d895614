"""QR door plates (二维码门牌): an SVG plate with the address, its code and a QR code.

The QR code holds the signed scan link of the address (`{base_url}/p/{code}?c={check}`, see
`address_registry.plates`), so a phone scan opens the scan page (standard address, grid, whom to contact);
the code itself is printed under the QR for manual entry.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

import segno

from address_registry.plates import plate_url
from address_registry.records import AddressRecord


def plate_payload(code: str, base_url: str) -> str:
    """The unsigned API link of an address (plates made before signed links; new plates use `plate_url`)."""
    return f"{base_url.rstrip('/')}/addresses/{code}"


def qr_matrix(payload: str) -> list[list[bool]]:
    """The QR modules (True = dark), error correction M, for tests and other renderers."""
    return [[bool(v) for v in row] for row in segno.make(payload, error="m", boost_error=False).matrix]


def plate_svg(rec: AddressRecord, base_url: str, scale: int = 6, key: bytes | None = None) -> str:
    """An SVG door plate: blue field, white QR, the formatted address and the code. With the plate ``key``
    the QR holds the signed scan link (`plate_url`); without it, the old unsigned API link."""
    payload = plate_url(base_url, rec.code, key) if key else plate_payload(rec.code, base_url)
    qr = segno.make(payload, error="m", boost_error=False)
    size = qr.symbol_size(scale=scale)[0]
    qr_svg = qr.svg_inline(scale=scale, dark="#000", light="#fff")
    c = rec.components
    title = c.get("road", "") + c.get("house_number", "") + c.get("building", "") + c.get("unit", "") + \
        c.get("floor", "") + c.get("room", "")
    width = max(size + 40, 360)
    height = size + 150
    qr_x = (width - size) // 2
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Noto Sans CJK SC, sans-serif">'
        f'<rect width="{width}" height="{height}" rx="12" fill="#1f4e9c"/>'
        f'<text x="{width // 2}" y="34" fill="#fff" font-size="22" text-anchor="middle">{escape(title or rec.formatted)}</text>'
        f'<text x="{width // 2}" y="58" fill="#dbe6f7" font-size="12" text-anchor="middle">{escape(rec.formatted)}</text>'
        f'<g transform="translate({qr_x},72)">{qr_svg}</g>'
        f'<text x="{width // 2}" y="{height - 22}" fill="#fff" font-size="14" text-anchor="middle" '
        f'font-family="monospace">{escape(rec.code)}</text>'
        "</svg>"
    )
