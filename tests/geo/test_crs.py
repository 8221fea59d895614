import numpy as np
import pytest

from geo.crs import CrsError, check_in_china, gcj02_to_wgs84, normalize_crs, wgs84_to_gcj02


def test_gcj02_roundtrip_and_offset():
    lon, lat = 121.4903, 31.2400  # the Bund
    glon, glat = wgs84_to_gcj02(lon, lat)
    # the GCJ-02 shift in Shanghai is roughly +0.0045° lon, -0.002° lat (a few hundred metres)
    assert 0.003 < glon - lon < 0.006 and -0.004 < glat - lat < 0.0
    back = gcj02_to_wgs84(glon, glat)
    assert abs(back[0] - lon) < 1e-7 and abs(back[1] - lat) < 1e-7


def test_array_and_outside_china_unchanged():
    lons = np.array([121.49, 2.35])
    lats = np.array([31.24, 48.85])  # Shanghai, Paris
    glon, glat = wgs84_to_gcj02(lons, lats)
    assert glon[1] == 2.35 and glat[1] == 48.85 and glon[0] != 121.49


def test_check_in_china_and_names():
    check_in_china(121.49, 31.24)
    with pytest.raises(CrsError, match="outside China"):
        check_in_china(2.35, 48.85)
    with pytest.raises(CrsError, match="malformed"):
        check_in_china("abc", 31)
    assert normalize_crs("EPSG:4490") == "cgcs2000"
    with pytest.raises(CrsError):
        normalize_crs("EPSG:3857")
