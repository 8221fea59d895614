"""Walking isochrones (network buffers of the reached edges): exact reach on small networks, nesting,
no crossing of a river the walk cannot cross, bad input; and on the demo city through the service."""

import numpy as np
import pytest
import shapely

from siting.errors import SitingInputError
from siting.isochrones import isochrones
from siting.network import RoadNetwork


def _river_town() -> RoadNetwork:
    """Two east-west streets 200 m apart (a river between), joined by one bridge at x = 1000 m."""
    xs = np.arange(0, 2001, 100.0)
    south = [(None, np.column_stack([xs, np.zeros_like(xs)]))]
    north = [(None, np.column_stack([xs, np.full_like(xs, 200.0)]))]
    bridge = [(None, np.array([[1000.0, 0.0], [1000.0, 200.0]]))]
    return RoadNetwork.from_ways(south + north + bridge)


def test_reach_along_a_street_is_the_walked_distance():
    net = _river_town()
    iso = isochrones(net, [[500.0, 0.0]], minutes=(5,), speed_m_per_min=80, buffer_m=20)
    (one,) = iso
    assert one.distance_m == 400
    minx, _, maxx, _ = one.geom.bounds
    assert minx == pytest.approx(100 - 20, abs=1) and maxx == pytest.approx(900 + 20, abs=1)


def test_isochrones_nest_and_never_cross_the_river():
    net = _river_town()
    iso = isochrones(net, [[900.0, 0.0]], minutes=(5, 10, 15), speed_m_per_min=80, buffer_m=30)
    assert [i.minutes for i in iso] == [5, 10, 15]
    g5, g10, g15 = (i.geom for i in iso)
    assert g10.buffer(1e-6).contains(g5) and g15.buffer(1e-6).contains(g10)
    # 5 min (400 m): across the bridge 100 m east then 200 m north: 100 m left on the north street
    assert g5.contains(shapely.Point(1000, 200)) and g5.contains(shapely.Point(1090, 200))
    assert not g5.contains(shapely.Point(850, 200))  # 200 m straight across the river; 450 m by the bridge
    assert g10.contains(shapely.Point(700, 200)) and not g10.contains(shapely.Point(400, 200))


def test_facility_off_the_road_walks_to_it_first():
    net = _river_town()
    (one,) = isochrones(net, [[500.0, -100.0]], minutes=(5,), speed_m_per_min=80, buffer_m=20)
    _, _, maxx, _ = one.geom.bounds
    assert maxx == pytest.approx(500 + 300 + 20, abs=1)  # 100 m to the street, 300 m along it


@pytest.mark.parametrize("kw,needle", [
    ({"minutes": (0, 5)}, "minutes"), ({"minutes": ()}, "minutes"), ({"minutes": (90,)}, "60"),
    ({"speed_m_per_min": 0}, "speed"), ({"buffer_m": -1}, "buffer"),
])
def test_bad_parameters_are_clear_errors(kw, needle):
    with pytest.raises(SitingInputError, match=needle):
        isochrones(_river_town(), [[0.0, 0.0]], **kw)


def test_demo_city_isochrones_of_kindergartens(engine):
    from siting import service

    with engine.connect() as conn:
        res = service.isochrone_analysis(conn, "幼儿园")
        s = res["summary"]
        assert s["facilities"] >= 1 and s["isochrones"] == 3 * s["facilities"]
        by = {}
        for f in res["layers"]["isochrones"]["features"]:
            by.setdefault(f["properties"]["facility_id"], {})[f["properties"]["minutes"]] = f["properties"]["area_m2"]
        for areas in by.values():
            assert 0 < areas[5] < areas[10] < areas[15]
            assert areas[15] < np.pi * 1125 ** 2  # never more than the straight-line disc of the same distance
        with pytest.raises(SitingInputError):
            service.isochrone_analysis(conn, "幼儿园", minutes=(-5,))
