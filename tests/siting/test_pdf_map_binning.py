"""The PDF map of a coverage report stays drawable at city scale: above `MAX_POLYGONS_DRAWN` polygons a layer is
drawn as page cells (one square per cell holding a footprint's centroid), below it every polygon is drawn.
Real footprints: the demo's buildings, and copies of them shifted over a city-sized frame."""

from __future__ import annotations

import math

import pytest
import shapely
from shapely.affinity import translate
from shapely.geometry import mapping

from grid_builder.demo_data import load_demo
from siting import documents


@pytest.fixture(scope="module")
def footprints(shared_data):
    return [b.geom for b in load_demo(str(shared_data)).buildings]


def _features(geoms):
    return [{"type": "Feature", "geometry": mapping(g), "properties": {}} for g in geoms]


def _shapes(drawing, kind):
    return [s for s in drawing.contents if type(s).__name__ == kind]


def test_a_few_footprints_are_each_drawn(footprints):
    d = documents.map_drawing([(_features(footprints), documents.PDF_COVERED, "建筑")], 523, 380)
    assert len(footprints) <= documents.MAX_POLYGONS_DRAWN
    assert len(_shapes(d, "Polygon")) == sum(len(getattr(g, "geoms", [g])) for g in footprints)


def test_city_scale_footprints_are_binned_into_cells_that_hold_them(footprints):
    # 3 × 3 copies of the demo's footprints, 0.05° apart: ~12,000 polygons over ~15 km
    city = [translate(g, 0.05 * i, 0.05 * j) for i in range(3) for j in range(3) for g in footprints]
    assert len(city) > documents.MAX_POLYGONS_DRAWN
    facility = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [121.49, 31.24]}, "properties": {}}
    d = documents.map_drawing([(_features(city), documents.PDF_COVERED, "建筑"),
                               ([facility], documents.PDF_EXISTING, "设施")], 523, 380)
    assert _shapes(d, "Polygon") == []
    cells = [r for r in _shapes(d, "Rect") if r.width == documents.CELL_PT]
    assert 100 < len(cells) < len(city)
    assert all(r.fillColor.hexval().lower() == "0x2b8a3e" for r in cells)
    assert len(_shapes(d, "Circle")) == 1  # points are still drawn one by one
    # every footprint's centroid lands in a drawn cell: recompute the page transform as map_drawing does
    minx, miny, maxx, maxy = shapely.total_bounds(city + [shapely.Point(121.49, 31.24)])
    kx, ky = math.cos(math.radians((miny + maxy) / 2)) * 111_320.0, 110_574.0
    scale = min((523 - 24) / max((maxx - minx) * kx, 50.0), (380 - 24 - 16) / max((maxy - miny) * ky, 50.0))
    drawn = {(round(r.x / documents.CELL_PT), round(r.y / documents.CELL_PT)) for r in cells}
    for g in city[:: 97]:
        c = g.centroid
        x, y = 12 + (c.x - minx) * kx * scale, 12 + 16 + (c.y - miny) * ky * scale
        assert (math.floor(x / documents.CELL_PT), math.floor(y / documents.CELL_PT)) in drawn
