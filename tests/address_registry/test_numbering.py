"""The generated-numbering rule and interpolation on a simple geometry."""

from shapely.geometry import LineString, Point

from address_registry.numbering import (
    assign_numbers,
    first_number,
    interpolate_on_axis,
    position_on_axis,
    road_axis,
    signed_offset,
)


def test_axis_starts_east_for_east_west_roads_and_south_for_north_south():
    ew = road_axis([LineString([(0, 0), (500, 10)])])
    assert ew.coords[0][0] == 500  # eastern end first
    ns = road_axis([LineString([(0, 300), (5, 0)])])
    assert ns.coords[0][1] == 0  # southern end first


def test_odd_left_even_right_increasing_from_start():
    axis = road_axis([LineString([(0, 0), (1000, 0)])])  # runs from x=1000 westwards
    # looking west from the start, north (y > 0) is on the right
    m, left = position_on_axis(axis, Point(900, -20))
    assert left and round(m) == 100
    items = [("a", *position_on_axis(axis, Point(900, -20))), ("b", *position_on_axis(axis, Point(500, -20))),
             ("c", *position_on_axis(axis, Point(900, 20))), ("d", *position_on_axis(axis, Point(895, -20)))]
    numbers = assign_numbers(items, taken={11})
    assert numbers["a"] % 2 == 1 and numbers["c"] % 2 == 0
    assert numbers["a"] == 13  # 11 is taken by a real address: next free odd number
    assert numbers["d"] == 15  # same slot as "a": moved up
    assert numbers["b"] > numbers["d"]  # further from the start, larger
    assert first_number(0, True) == 1 and first_number(0, False) == 2


def test_interpolation_between_neighbours_on_the_same_side():
    axis = road_axis([LineString([(0, 0), (1000, 0)])])
    known = [(11, 100.0, 20.0), (21, 300.0, 20.0)]
    x, y = interpolate_on_axis(axis, known, 15)
    m, left = position_on_axis(axis, Point(x, y))
    assert abs(m - 180.0) < 1e-6 and left
    assert abs(signed_offset(axis, Point(x, y)) - 20.0) < 1e-6
    assert interpolate_on_axis(axis, known, 25) is None  # no known number above
