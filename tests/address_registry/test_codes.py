"""Standard-address codes: check digit, hierarchy, levels."""

import pytest

from address_registry import codes


def test_check_digit_detects_every_single_digit_error():
    code = codes.with_check("3101010001700016")
    assert codes.is_valid(code)
    for i in range(len(code)):
        for d in "0123456789":
            if d != code[i]:
                assert not codes.is_valid(code[:i] + d + code[i + 1:]), (i, d)


def test_check_digit_detects_adjacent_swaps():
    code = codes.with_check("3101150000500002001")
    for i in range(len(code) - 1):
        if code[i] != code[i + 1]:
            swapped = code[:i] + code[i + 1] + code[i] + code[i + 2:]
            assert not codes.is_valid(swapped), i


def test_iso7064_mod11_10_verification_rule():
    # processing the code including its check digit ends in the state s == 1 (ISO 7064 hybrid check)
    for body in ("310101", "31010100017", "0", "9999999999999999"):
        p = 10
        for ch in codes.with_check(body):
            s = (p + int(ch)) % 10 or 10
            p = (s * 2) % 11
        assert s == 1


def test_hierarchy_and_levels():
    district = codes.district_code("310101")
    road = codes.child_code(district, "road", 17)
    house = codes.child_code(road, "house_number", 16)
    building = codes.child_code(house, "building", 2)
    unit = codes.child_code(building, "unit", 1)
    floor = codes.child_code(unit, "floor", 3)
    room = codes.child_code(floor, "room", 301)
    chain = [district, road, house, building, unit, floor, room]
    assert [codes.level_of(c) for c in chain] == ["district", "road", "house_number", "building", "unit", "floor",
                                                  "room"]
    for parent, child in zip(chain, chain[1:], strict=False):
        assert codes.parent_of(child) == parent
        assert codes.body(child).startswith(codes.body(parent))
    assert codes.serial_of(room) == 301
    assert codes.district_of(room) == "310101"
    assert codes.level_of(codes.admin_code("310101002")) == "township"
    assert codes.level_of(codes.admin_code("310101002001")) == "community"


def test_rejects_bad_codes():
    with pytest.raises(codes.CodeError):
        codes.child_code(codes.district_code("310101"), "house_number", 1)  # skips the road level
    with pytest.raises(codes.CodeError):
        codes.child_code(codes.district_code("310101"), "road", 100000)
    with pytest.raises(codes.CodeError):
        codes.district_code("31010")
    assert not codes.is_valid("31010100017X")
    assert not codes.is_valid("123")
