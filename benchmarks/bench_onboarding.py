"""Readers of `shequ city import` side by side with their peers (no database): time and counts.

- OSM PBF (the pyrosm wheel's `test.osm.pbf`, Finland): our pyosmium reader (one pass: roads, buildings,
  POIs, water, railways) vs pyrosm's `get_network("all")` + `get_buildings()`.
- OSM XML (the demo's Overpass roads, 4,701 ways): our reader vs the demo's own ElementTree walk
  (`geo.demo_files.read_roads`).
- Surveying file: the demo's 1,321 Tilezen footprints as a GeoPackage in CGCS2000 / 3° GK zone 40
  (EPSG:4528) → WGS84 records (pyogrio + pyproj), with the largest round-trip error in metres.

Median of --rounds runs (min–max). Timings are of this machine (2 shared cores), not a benchmark farm.

    .venv/bin/python benchmarks/bench_onboarding.py [--rounds 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SHARED = ROOT.parent / "shared" / "data"


def _timed(fn, rounds: int):
    times, out = [], None
    for _ in range(rounds):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return out, times


def _fmt(times: list[float]) -> str:
    return f"{statistics.median(times):.2f} s ({min(times):.2f}–{max(times):.2f})"


def main() -> None:
    """Run the comparisons and print a markdown table (also written to bench-output/onboarding.md)."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    rounds = ap.parse_args().rounds

    import geopandas as gpd
    import numpy as np
    from pyproj import Transformer

    from geo.demo_files import read_roads, read_tilezen
    from onboarding import coords
    from onboarding.mapping import load_mapping
    from onboarding.osm import read_osm
    from onboarding.vector import read_file, records_for

    rows = []
    spec = importlib.util.find_spec("pyrosm")
    pbf = Path(next(iter(spec.submodule_search_locations))) / "data" / "test.osm.pbf"  # type: ignore[union-attr]
    (layers, _), t = _timed(lambda: read_osm(pbf), rounds)
    rows.append(
        (
            "PBF test.osm.pbf",
            "shequ (pyosmium, all layers)",
            f"{len(layers['road'])} roads, {len(layers['building'])} buildings",
            _fmt(t),
        )
    )

    def peer():
        from pyrosm import OSM

        o = OSM(str(pbf))
        return o.get_network(network_type="all"), o.get_buildings()

    (net, bld), t = _timed(peer, rounds)
    rows.append(
        (
            "PBF test.osm.pbf",
            "pyrosm (network + buildings)",
            f"{len(net)} roads, {len(bld)} buildings",
            _fmt(t),
        )
    )

    osm_xml = SHARED / "shanghai-bund" / "shanghai_center_roads_overpass.osm"
    (layers, _), t = _timed(lambda: read_osm(osm_xml), rounds)
    rows.append(("XML Overpass roads", "shequ (pyosmium)", f"{len(layers['road'])} roads", _fmt(t)))
    roads, t = _timed(lambda: read_roads(SHARED), rounds)
    rows.append(("XML Overpass roads", "demo loader (ElementTree)", f"{len(roads)} roads", _fmt(t)))

    b = read_tilezen(SHARED)["buildings"]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.gpkg"
        gpd.GeoDataFrame(
            {"osm_id": [r["osm_id"] for r in b]}, geometry=[r["geom"] for r in b], crs=4326
        ).to_crs(4528).to_file(path)
        m = load_mapping(None)["building"]

        def gk():
            raw = read_file(path, m)
            return records_for("building", raw, coords.to_wgs84(raw.geoms, raw.crs), m, 1)[0]

        recs, t = _timed(gk, rounds)
    tr = Transformer.from_crs(4326, 32651, always_xy=True)
    orig = {r["osm_id"]: r["geom"] for r in b}
    err = 0.0
    for r in recs:
        a = np.array(r["geom"].geoms[0].exterior.coords)
        o = np.array(orig[r["osm_id"]].geoms[0].exterior.coords)
        if len(a) == len(o):
            ax, ay = tr.transform(a[:, 0], a[:, 1])
            ox, oy = tr.transform(o[:, 0], o[:, 1])
            err = max(err, float(np.max(np.hypot(ax - ox, ay - oy))))
    rows.append(
        (
            "GeoPackage EPSG:4528",
            "shequ (pyogrio + pyproj)",
            f"{len(recs)} buildings, max error {err * 1000:.3f} mm",
            _fmt(t),
        )
    )

    lines = ["| source | reader | result | time (median, min–max) |", "|---|---|---|---|"]
    lines += [f"| {a} | {b_} | {c} | {d} |" for a, b_, c, d in rows]
    text = "\n".join(lines)
    print(text)
    out = ROOT / "bench-output"
    out.mkdir(exist_ok=True)
    (out / "onboarding.md").write_text(text + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
