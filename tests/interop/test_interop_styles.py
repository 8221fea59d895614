"""The MapLibre style validates with MapLibre's own style-spec validator (npm), and names only sources and
source layers the server really serves."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VALIDATOR = ROOT / "web" / "node_modules" / "@maplibre" / "maplibre-gl-style-spec" / "dist" / "gl-style-validate.mjs"


def _validate(style: dict, tmp_path: Path) -> subprocess.CompletedProcess:
    if not VALIDATOR.exists():
        pytest.fail(f"{VALIDATOR} missing: run scripts/install_assets.sh (npm install in web/)")
    node = shutil.which("node")
    assert node, "node is needed (apt-get install -y nodejs)"
    path = tmp_path / "style.json"
    path.write_text(json.dumps(style, ensure_ascii=False), encoding="utf-8")
    return subprocess.run([node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=60)


def test_style_validates_and_matches_the_tiles(client, anon_client, tmp_path):
    listing = client.get("/styles").json()["styles"]
    href = listing[0]["links"][0]["href"].removeprefix("http://testserver")
    r = client.get(href)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.mapbox.style+json")
    style = r.json()
    run = _validate(style, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    # every source's TileJSON exists and lists the source layers the style draws
    for name, source in style["sources"].items():
        tj = client.get(source["url"].removeprefix("http://testserver"))
        assert tj.status_code == 200, name
        served = {v["id"] for v in tj.json()["vector_layers"]}
        drawn = {lyr["source-layer"] for lyr in style["layers"] if lyr.get("source") == name}
        assert drawn <= served, (name, drawn - served)
    ids = {lyr["metadata"]["shequ:layer"] for lyr in style["layers"] if "metadata" in lyr}
    assert {"road", "building", "water", "poi", "street_block"} <= ids
    # the public style has no internal layers, and still validates
    public = anon_client.get(href).json()
    assert "street_block" not in public["sources"] and _validate(public, tmp_path).returncode == 0


def test_broken_style_fails_the_validator(tmp_path):
    """The validator really checks (so the test above can fail)."""
    bad = {"version": 8, "sources": {}, "layers": [{"id": "x", "type": "fill", "source": "nosuch"}]}
    assert _validate(bad, tmp_path).returncode != 0


def test_unknown_style_is_404(client):
    assert client.get("/styles/nosuch.json").status_code == 404
