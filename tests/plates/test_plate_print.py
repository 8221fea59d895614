"""Printed QR door plates on the demo registry: the PDF (API and `shequ plates print`) is rendered to PNG by
poppler, each QR decodes (zxing-cpp) to the signed scan link of its address, the page is the plate's real
size, the CJK TrueType font is embedded and the Chinese text is in the page; bad areas give a clear 4xx."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import zxingcpp  # test dependency (pyproject [test]): decodes the printed QR codes
from sqlalchemy import text
from typer.testing import CliRunner

from address_registry.plate_pdf import MM, SIZES, plate_lines
from address_registry.plates import plate_url


@pytest.fixture(scope="module")
def key(app, client):
    from gis_api.auth.secrets import load_or_create

    return load_or_create("plate-hmac", app.state.auth_settings)


@pytest.fixture(scope="module")
def road(engine, jurisdictions):
    """The road of the test house number, and its active house numbers (code → record)."""
    from address_registry import store

    with engine.connect() as conn:
        rec = store.current(conn, jurisdictions["address"])
        numbers = conn.execute(text("SELECT code FROM standard_address WHERE parent_code = :p AND valid_to IS NULL "
                                    "AND status = 'active' AND level = 'house_number' ORDER BY code"),
                               {"p": rec.parent_code}).scalars().all()
        return rec.parent_code, {c: store.current(conn, c) for c in numbers}


def _pages_png(pdf: Path, dpi: int = 200, last: int = 3) -> list[Path]:
    """The first ``last`` pages rendered to PNG by poppler."""
    prefix = pdf.with_suffix("")
    for old in pdf.parent.glob(prefix.name + "-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", str(dpi), "-l", str(last), "-png", str(pdf), str(prefix)], check=True,
                   timeout=120)
    return sorted(pdf.parent.glob(prefix.name + "-*.png"))


def _page_count(pdf: Path) -> int:
    out = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True, timeout=60).stdout
    return int(re.search(r"Pages:\s+(\d+)", out).group(1))


def _decode(png: Path) -> list[str]:
    from PIL import Image

    with Image.open(png) as img:
        return [b.text for b in zxingcpp.read_barcodes(img) if b.format == zxingcpp.BarcodeFormat.QRCode]


def _fonts(pdf: Path) -> list[str]:
    out = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True, timeout=60).stdout
    return out.splitlines()[2:]


def _page_size_mm(pdf: Path) -> tuple[float, float]:
    out = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True, timeout=60).stdout
    w, h = map(float, re.search(r"Page size:\s+([\d.]+) x ([\d.]+) pts", out).groups())
    return w / MM, h / MM


def test_api_prints_the_roads_plates(client, app, key, road, output_dir):
    code, numbers = road
    res = client.get("/plates/print.pdf", params={"road": code, "size": "medium"})
    assert res.status_code == 200, res.text
    assert res.headers["content-type"] == "application/pdf"
    pdf = output_dir / "plates" / "road-medium.pdf"
    pdf.parent.mkdir(exist_ok=True)
    pdf.write_bytes(res.content)
    # the real plate size, one page per house number
    w, h = _page_size_mm(pdf)
    assert abs(w - 270) < 0.5 and abs(h - 170) < 0.5
    assert _page_count(pdf) == len(numbers)
    pages = _pages_png(pdf)
    # the CJK font is embedded (a TrueType subset) and the Chinese text is on the page
    cjk = [line.split() for line in _fonts(pdf) if "WenQuanYi" in line or "CJK" in line]
    assert cjk and all(f[0][6] == "+" and f[1] == "TrueType" and f[3:5] == ["yes", "yes"] for f in cjk), cjk
    words = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], check=True, capture_output=True,
                           text=True, timeout=60).stdout
    first = numbers[sorted(numbers)[0]]
    place, number = plate_lines(first)
    assert place and place in words and number in words and first.code in words
    # every QR decodes to the signed link of its own address, in code order
    base = app.state.settings.public_base_url
    for page, c in zip(pages[:3], sorted(numbers), strict=False):
        assert _decode(page) == [plate_url(base, c, key)], page


def test_small_plate_qr_still_decodes(client, app, key, road, output_dir):
    code, numbers = road
    first = sorted(numbers)[0]
    res = client.get("/plates/print.pdf", params={"road": code, "size": "small"})
    assert res.status_code == 200
    pdf = output_dir / "plates" / "road-small.pdf"
    pdf.write_bytes(res.content)
    w, h = _page_size_mm(pdf)
    assert (round(w), round(h)) == (SIZES["small"].width, SIZES["small"].height)
    pages = _pages_png(pdf, dpi=150, last=1)
    assert _decode(pages[0]) == [plate_url(app.state.settings.public_base_url, first, key)]


def test_bad_requests_are_clear_4xx(client, jurisdictions, road):
    code, _ = road
    both = client.get("/plates/print.pdf", params={"road": code, "community": jurisdictions["community"]})
    assert both.status_code == 400 and "之一" in both.json()["message"]
    assert client.get("/plates/print.pdf").status_code == 400
    unknown = client.get("/plates/print.pdf", params={"road": "11010100000099999"})
    assert unknown.status_code == 404 and "街路巷" in unknown.json()["message"]
    level = client.get("/plates/print.pdf", params={"road": code, "levels": "house_number,castle"})
    assert level.status_code == 422 and "castle" in level.json()["message"]
    assert client.get("/plates/print.pdf", params={"road": code, "size": "huge"}).status_code == 422
    nothing = client.get("/plates/print.pdf", params={"road": code, "levels": "room"})
    assert nothing.status_code in (200, 404)


def test_jurisdiction_and_roles(anon_client, role_headers, jurisdictions):
    mine = {"community": jurisdictions["community"]}
    other = {"community": jurisdictions["other_community"]}
    assert anon_client.get("/plates/print.pdf", params=mine).status_code == 401
    assert anon_client.get("/plates/print.pdf", params=mine, headers=role_headers["police"]).status_code == 403
    assert anon_client.get("/plates/print.pdf", params=mine,
                           headers=role_headers["community"]).status_code in (200, 413)
    out = anon_client.get("/plates/print.pdf", params=other, headers=role_headers["community"])
    assert out.status_code == 403 and out.json()["error"] == "outside_jurisdiction"


def test_cli_prints_and_audits(engine, road, tmp_path):
    from gis_api.auth.secrets import load_or_create
    from gis_api.cli import app as cli
    from gis_api.settings import get_settings

    code, numbers = road
    out = tmp_path / "plates.pdf"
    res = CliRunner().invoke(cli, ["plates", "print", "--road", code, "--size", "large", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert f"{len(numbers)}" in res.output
    w, h = _page_size_mm(out)
    assert (round(w), round(h)) == (570, 370)
    first = sorted(numbers)[0]
    assert _decode(_pages_png(out, dpi=60, last=1)[0]) == [plate_url(get_settings().public_base_url, first,
                                                             load_or_create("plate-hmac"))]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'plates.print' AND :r = ANY(record_ids)"),
                            {"r": f"road:{code}"}).scalar() >= 1
    bad = CliRunner().invoke(cli, ["plates", "print", "--road", code, "--community", "x", "-o", str(out)])
    assert bad.exit_code != 0
    missing = CliRunner().invoke(cli, ["plates", "print", "--road", "11010100000099999", "-o", str(tmp_path / "n.pdf")])
    assert missing.exit_code == 1 and not (tmp_path / "n.pdf").exists()
