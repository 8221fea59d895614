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


def _reference_check_digit(body: str) -> str:
    """ISO 7064 MOD 11,10 written out from the standard, independent of the cached incremental one."""
    p = 10
    for ch in body:
        s = (p + int(ch)) % 10 or 10
        p = (s * 2) % 11
    return str((11 - p) % 10)


def test_child_codes_continue_from_the_parent_state_exactly():
    """A child's check digit continues from its parent's cached state (issue 14): every code of a tree of
    thousands, issued interleaved across parents and with the cache cleared half-way, equals the digit
    computed from scratch over the whole body; a corrupted parent is still refused."""
    import random

    rng = random.Random(14)
    alloc = codes.SerialAllocator()
    floors = []
    for d in ("310101", "310106", "310115"):
        road = alloc.next_code(codes.district_code(d), "road")
        for _ in range(6):
            house = alloc.next_code(road, "house_number")
            unit = alloc.next_code(alloc.next_code(house, "building"), "unit")
            floors += [alloc.next_code(unit, "floor") for _ in range(8)]
    issued = []
    for i in range(3000):
        if i == 1500:
            codes._state.cache_clear()
        parent = rng.choice(floors)
        issued.append((parent, alloc.next_code(parent, "room")))
    for parent, room in issued:
        assert room[-1] == _reference_check_digit(room[:-1]) and room.startswith(parent[:-1])
        assert codes.is_valid(room) and codes.parent_of(room) == parent
    assert len({room for _, room in issued}) == 3000
    bad = floors[0][:-1] + str((int(floors[0][-1]) + 1) % 10)
    with pytest.raises(codes.CodeError):
        codes.child_code(bad, "room", 1)
