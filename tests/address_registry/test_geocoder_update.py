"""Incremental geocoder updates (issue 14): `Geocoder.update` gives the answers of a full rebuild, and the
per-database cache applies a registry write as a delta (a create is found, a retirement is gone)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from sqlalchemy import text

from address_registry import geocoder_cache, service, store
from address_registry.geocoder import Geocoder
from address_registry.noisy import noisy_queries

WHO = ("测试员", "增量索引测试 incremental index test")


@pytest.fixture(scope="module")
def inputs(engine, registry):
    with engine.connect() as conn:
        return store.load_geocoder_inputs(conn)


def _index_state(g: Geocoder) -> dict:
    return {
        "by_code": set(g.by_code),
        "below": dict(g.below),
        "in_compound": {k: list(v) for k, v in g.in_compound.items() if v},
        "names": g.names,
        "fuzzy": list(g.fuzzy_choices),
        "axes": {k: round(v.length, 6) for k, v in g.axes.items()},
        "houses_on_road": {k: list(v) for k, v in g.houses_on_road.items() if v},
        "numbering": {k: (round(n.slope, 9), n.slope_learned, n.real, len(n.anchors)) for k, n in g.numbering.items()},
        "global_slope": g.global_slope,
    }


def _answers(g: Geocoder, queries: list[str]) -> list:
    out = []
    for q in queries:
        out.append([(r["address_code"], r["level"], r["score"], round(r["lon"] or 0, 7), round(r["lat"] or 0, 7),
                     r["radius_m"]) for r in g.geocode(q, 3)])
    return out


def _changes(records):
    """A retired house number with everything under it, a moved house, a new house on a road with real
    numbers, a new road with a house, a renamed compound, a new building under an existing house."""
    by_code = {r.code: r for r in records}
    houses = [r for r in records if r.level == "house_number" and r.lon is not None]
    with_children = {r.parent_code for r in records if r.level == "building"}
    retire = next(h for h in houses if h.code in with_children)
    subtree = {retire.code}
    grew = True
    while grew:
        more = {r.code for r in records if r.parent_code in subtree} - subtree
        subtree |= more
        grew = bool(more)
    moved = dataclasses.replace(copy.deepcopy(next(h for h in houses[::-1] if h.code not in subtree)),
                                version=2)
    moved.lon += 0.0004
    road = by_code[moved.parent_code]
    taken = {r.components.get("house_number") for r in records if r.parent_code == road.code}
    n = next(k for k in range(301, 999, 2) if f"{k}号" not in taken)
    new_house = dataclasses.replace(moved, code=road.code[:-1] + "99990", version=1,
                                    components={**moved.components, "house_number": f"{n}号"},
                                    lon=moved.lon + 0.0003, building_id=None)
    district = road.parent_code
    new_road = dataclasses.replace(road, code=district[:-1] + "999990", components={**road.components,
                                   "road": "增量测试路"}, lon=road.lon + 0.001)
    new_road_house = dataclasses.replace(new_house, code=new_road.code[:-1] + "000010", parent_code=new_road.code,
                                         components={**new_road.components, "house_number": "8号"})
    compound = next((r for r in records if r.level == "compound"), None)
    renamed = []
    if compound is not None:
        renamed = [dataclasses.replace(compound, version=compound.version + 1,
                                       components={**compound.components, "compound": "增量更名小区"})]
    retired = [dataclasses.replace(by_code[c], status="retired") for c in sorted(subtree)]
    return retired + [moved, new_house, new_road, new_road_house] + renamed, subtree


def test_update_equals_a_full_rebuild(inputs):
    records = inputs["records"]
    changed, subtree = _changes(records)
    incremental = Geocoder(**{**inputs, "records": list(records)})
    stats = incremental.update(changed)
    assert stats["removed"] == len(subtree)
    now = {r.code: r for r in records}
    for r in changed:
        now[r.code] = r
    full = Geocoder(**{**inputs, "records": [r for _, r in sorted(now.items())]})
    assert _index_state(incremental) == _index_state(full)
    sample = [r for r in records[::23] if r.code not in subtree]
    queries = [r.formatted for r in sample] + [r.formatted for r in changed]
    queries += [q for _form, q, _code in noisy_queries(sample, inputs["aliases"], seed=7)][::3]
    assert len(queries) > 500
    assert _answers(incremental, queries) == _answers(full, queries)
    # the changes are visible: the new addresses found, the retired ones gone
    new_house = changed[-3 - (1 if changed[-1].level == "compound" else 0)]
    assert incremental.geocode(new_house.formatted, 1)[0]["address_code"] == new_house.code
    assert all(c not in {a["address_code"] for a in incremental.geocode(now[c].formatted, 5)} for c in subtree)


def test_update_is_undone_by_the_inverse_update(inputs):
    records = inputs["records"]
    changed, subtree = _changes(records)
    g = Geocoder(**{**inputs, "records": list(records)})
    before = _index_state(g)
    g.update(changed)
    by_code = {r.code: r for r in records}
    g.update([by_code[r.code] for r in changed if r.code in by_code],
             removed=[r.code for r in changed if r.code not in by_code])
    assert _index_state(g) == before


def test_a_registry_write_reaches_the_cached_geocoder_as_a_delta(engine, registry):
    cache = geocoder_cache.open_cache(engine, ttl_s=0.0)
    try:
        first = cache.get(engine)
        with engine.connect() as conn:
            house = conn.execute(text("""SELECT code, parent_code, ST_X(geom) AS lon, ST_Y(geom) AS lat,
                components->>'road' AS road FROM standard_address WHERE valid_to IS NULL AND status = 'active'
                AND level = 'house_number' AND normalized_text = '上海市浦东新区世纪大道1号'""")).one()
        with engine.begin() as conn:
            created = service.create_address(
                conn,
                {"level": "house_number", "parent_code": house.parent_code,
                 "components": {"house_number": "9997号"}, "lon": house.lon + 0.0005, "lat": house.lat},
                *WHO,
            )
        second = cache.get(engine)
        assert second is first  # the same index, updated in place: no rebuild
        assert cache.last_load["kind"] == "delta" and cache.last_load["changed"] >= 1
        best = second.geocode(f"上海市浦东新区{house.road}9997号", 1)[0]
        assert best["address_code"] == created.code and best["level"] == "house_number"
        with engine.begin() as conn:
            service.retire_address(conn, created.code, *WHO)
        third = cache.get(engine)
        assert third is first and cache.last_load["kind"] == "delta"
        again = third.geocode(f"上海市浦东新区{house.road}9997号", 3)
        assert created.code not in {a["address_code"] for a in again}
        # and a full rebuild of the registry as it is now answers the same
        with engine.connect() as conn:
            rebuilt = Geocoder(**store.load_geocoder_inputs(conn), parser=third.parser)
        queries = [f"上海市浦东新区{house.road}9997号", f"{house.road}1号", f"{house.road}9995号"]
        assert _answers(third, queries) == _answers(rebuilt, queries)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM standard_address WHERE changed_by = :w"), {"w": WHO[0]})
        geocoder_cache.open_cache(engine)


def test_a_row_committed_behind_the_last_seen_one_forces_a_full_rebuild(engine, registry):
    """Two writers: A takes a row id first but commits after B. The delta (rows after the last id seen)
    cannot see A's row; the row count can, and the cache rebuilds whole instead of missing it."""
    cache = geocoder_cache.open_cache(engine, ttl_s=0.0)
    try:
        first = cache.get(engine)
        with engine.connect() as conn:
            # two roads: each writer allocates under its own road (allocation locks the parent)
            a, b = conn.execute(text("""SELECT DISTINCT ON (parent_code) parent_code, ST_X(geom) AS lon,
                ST_Y(geom) AS lat, components->>'road' AS road FROM standard_address
                WHERE valid_to IS NULL AND status = 'active' AND level = 'house_number' AND geom IS NOT NULL
                  AND district_code = '310115' ORDER BY parent_code, code LIMIT 2""")).all()

        def data(house, number):
            return {"level": "house_number", "parent_code": house.parent_code,
                    "components": {"house_number": f"{number}号"}, "lon": house.lon + 0.0002, "lat": house.lat}

        with engine.connect() as conn_a:
            trans_a = conn_a.begin()
            late = service.create_address(conn_a, data(a, 9993), *WHO)  # row id taken, not committed
            with engine.begin() as conn_b:
                early = service.create_address(conn_b, data(b, 9991), *WHO)
            assert cache.get(engine) is first and cache.last_load["kind"] == "delta"
            assert first.geocode(f"浦东新区{b.road}9991号", 1)[0]["address_code"] == early.code
            trans_a.commit()
        latest = cache.get(engine)
        assert cache.last_load["kind"] == "full" and latest is not first
        assert latest.geocode(f"浦东新区{a.road}9993号", 1)[0]["address_code"] == late.code
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM standard_address WHERE changed_by = :w"), {"w": WHO[0]})
        geocoder_cache.open_cache(engine)
