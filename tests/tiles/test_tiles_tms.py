"""Tile arithmetic and the tile SQL builder (pure)."""

import math

import pytest

from layers import registry
from tiles.sql import envelope_3857, envelope_lonlat, tile_sql
from tiles.tms import Tile, TileError, min_area_deg2, parse_tile, tile_for_lonlat, tiles_for_bbox


@pytest.mark.parametrize(
    "z, x, y", [(-1, 0, 0), (23, 0, 0), (3, 8, 0), (3, 0, 8), (3, -1, 0), ("a", 0, 0), (2, "1.5", 0)]
)
def test_out_of_range_tiles_rejected(z, x, y):
    with pytest.raises(TileError):
        parse_tile(z, x, y)


def test_tile_envelope_matches_st_tile_envelope_formula():
    t = Tile(16, 54886, 26776)
    x0, y0, x1, y1 = envelope_3857(t)
    half = math.pi * 6378137.0
    assert x1 - x0 == pytest.approx(2 * half / 2**16)
    assert x0 == pytest.approx(-half + 54886 * 2 * half / 2**16)
    lon0, lat0, lon1, lat1 = envelope_lonlat(t, margin=0)
    assert (lon0, lat0, lon1, lat1) == pytest.approx(t.bounds_lonlat())


def test_lonlat_to_tile_and_back():
    t = tile_for_lonlat(121.4985, 31.2387, 16)
    lon0, lat0, lon1, lat1 = t.bounds_lonlat()
    assert lon0 <= 121.4985 < lon1 and lat0 <= 31.2387 < lat1
    tiles = tiles_for_bbox((121.48, 31.226, 121.521, 31.251), 14)
    assert t.z == 16 and 4 <= len(tiles) <= 9


def test_thinning_threshold_shrinks_with_zoom():
    a12 = min_area_deg2(Tile(12, 3430, 1673), 4.0)
    a14 = min_area_deg2(Tile(14, 13721, 6694), 4.0)
    assert a12 == pytest.approx(a14 * 16, rel=0.01)


def test_tile_sql_binds_values_and_skips_layers_outside_zoom():
    road, poi = registry.get("road"), registry.get("poi")
    sql, params = tile_sql([road, poi], Tile(12, 3430, 1673))
    assert "FROM road t" in sql and "FROM poi t" not in sql  # poi starts at z14
    assert "3430" not in sql and params["l0_name"] == "road"
    assert params["l0_kinds"]  # major roads only below full zoom
    sql16, params16 = tile_sql([road, poi], Tile(16, 54886, 26776))
    assert "FROM poi t" in sql16 and "l0_kinds" not in params16


def test_tile_error_is_a_bad_request():
    from geo.errors import BadRequest
    from gis_api.errors import status_and_code

    with pytest.raises(TileError) as info:
        parse_tile(3, 8, 0)
    assert isinstance(info.value, BadRequest) and status_and_code(info.value) == (400, "bad_request")
