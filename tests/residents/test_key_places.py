"""Key places (重点场所) on the demo: seeded from the real OSM POIs by the category mapping (idempotent, tied to
the nearest standard address), the registry API (staff read, office staff edit within jurisdiction,
audited), counts per grid and community, the staff-only map layer through OGC API Features, and the nearby
key places on the plate scan."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from residents import key_places as kp


@pytest.fixture(scope="module")
def seeded(engine):
    with engine.begin() as conn:
        first = kp.seed_from_pois(conn, "tester")
    with engine.begin() as conn:
        again = kp.seed_from_pois(conn, "tester")
    return first, again


def test_seed_maps_pois_by_category(engine, seeded):
    first, again = seeded
    assert again == {}  # idempotent: one key place per POI
    with engine.connect() as conn:
        pois = dict(conn.execute(text("SELECT kind, count(*) FROM poi GROUP BY kind")).all())
        per_cat = dict(conn.execute(text(
            "SELECT category, count(*) FROM key_place WHERE source = 'osm' GROUP BY 1")).all())
        tied = conn.execute(text("SELECT count(*) FILTER (WHERE address_code IS NOT NULL), count(*), "
                                 "max(address_distance_m) FROM key_place WHERE source = 'osm'")).one()
        wrong = conn.execute(text(
            "SELECT count(*) FROM key_place k JOIN poi p ON p.id = k.poi_id JOIN key_place_category c "
            "ON c.code = k.category WHERE NOT p.kind = ANY(c.osm_kinds)")).scalar()
    if not pois.get("school"):
        pytest.skip("the demo has no school POIs")
    assert per_cat.get("school") == pois["school"]
    assert per_cat.get("hospital", 0) == pois.get("hospital", 0)
    assert per_cat.get("finance", 0) == pois.get("bank", 0) + pois.get("bureau_de_change", 0)
    assert wrong == 0 and "traffic_signals" not in per_cat
    assert tied[0] >= 0.8 * tied[1] and tied[2] <= 150  # most sit within 150 m of a standard address


def test_api_registry_counts_and_edits(anon_client, role_headers, seeded, jurisdictions, demo_addresses, engine):
    staff = role_headers["planner"]
    cats = anon_client.get("/key-places/categories", headers=staff).json()["categories"]
    assert {"school", "hospital", "elderly_care", "market", "fuel"} <= {c["code"] for c in cats}
    assert all(1 <= c["risk_level"] <= 3 and c["inspection_days"] > 0 for c in cats)
    schools = anon_client.get("/key-places", params={"category": "school"}, headers=staff).json()
    assert schools["total"] >= 1 and all(p["category_name"] == "学校" for p in schools["key_places"])
    by_comm = anon_client.get("/key-places/counts", params={"by": "community"}, headers=staff).json()["units"]
    by_grid = anon_client.get("/key-places/counts", params={"by": "grid"}, headers=staff).json()["units"]
    assert sum(u["total"] for u in by_comm) >= schools["total"] and by_grid
    assert anon_client.get("/key-places").status_code == 401
    assert anon_client.get("/key-places/counts", params={"by": "x"}, headers=staff).status_code == 422

    h = role_headers["community"]
    body = {"name": "测试养老院", "category": "elderly_care", "address_code": demo_addresses["house_number"]}
    res = anon_client.post("/key-places", json=body, headers=h)
    assert res.status_code == 201, res.text
    place = res.json()
    try:
        assert place["source"] == "manual" and place["address_code"] == body["address_code"]
        assert place["risk_level"] == 3 and place["community_code"] == jurisdictions["community"]
        outside = anon_client.post("/key-places", json=body | {"address_code": demo_addresses["other_house_number"]},
                                   headers=h)
        assert outside.status_code == 403
        assert anon_client.post("/key-places", json=body | {"category": "zoo"}, headers=h).status_code == 422
        assert anon_client.post("/key-places", json=body | {"address_code": demo_addresses["room"]},
                                headers=role_headers["admin"]).status_code == 422
        assert anon_client.post("/key-places", json=body | {"address_code": "31010199999999999"},
                                headers=role_headers["admin"]).status_code == 404
        assert anon_client.post("/key-places", json=body, headers=role_headers["grid_manager"]).status_code == 403
        closed = anon_client.patch(f"/key-places/{place['id']}", json={"status": "closed", "category": "clinic"},
                                   headers=h)
        assert closed.status_code == 200 and closed.json()["status"] == "closed"
        assert closed.json()["category_name"] == "诊所、药店"
        assert anon_client.patch("/key-places/999999999", json={"status": "closed"},
                                 headers=role_headers["admin"]).status_code == 404
        with engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM audit_log WHERE action IN ('key_place.create', "
                                  "'key_place.update') AND :r = ANY(record_ids)"), {"r": f"key_place:{place['id']}"})
            assert n.scalar() == 2
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM key_place WHERE id = :i"), {"i": place["id"]})


def test_layer_is_staff_only(anon_client, role_headers, seeded):
    res = anon_client.get("/collections/key_place/items", params={"limit": 5}, headers=role_headers["grid_manager"])
    assert res.status_code == 200, res.text
    feats = res.json()["features"]
    assert feats and {"name", "category_name", "risk_level"} <= set(feats[0]["properties"])
    assert anon_client.get("/collections/key_place/items", params={"limit": 5}).status_code in (401, 403, 404)


def test_scan_shows_nearby_key_places(anon_client, app, engine, seeded):
    from address_registry.plates import plate_check
    from gis_api.auth.secrets import load_or_create

    with engine.connect() as conn:
        code = conn.execute(text(
            "SELECT a.code FROM key_place k JOIN standard_address a ON a.code = k.address_code AND a.valid_to IS NULL "
            "WHERE k.status = 'active' AND a.level = 'house_number' ORDER BY k.id LIMIT 1")).scalar()
    if code is None:
        pytest.skip("no key place at a house number")
    check = plate_check(code, load_or_create("plate-hmac", app.state.auth_settings))
    d = anon_client.get(f"/plates/{code}", params={"c": check}).json()
    assert d["key_places"] and d["key_places"][0]["distance_m"] <= 300
    assert set(d["key_places"][0]) == {"name", "category_name", "distance_m"}


def test_cli_seed_is_idempotent(seeded, engine):
    from typer.testing import CliRunner

    from gis_api.cli import app as cli

    res = CliRunner().invoke(cli, ["key-places", "seed"])
    assert res.exit_code == 0, res.output
    assert "+0" in res.output  # everything was seeded by the fixture already
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'key_place.seed'")).scalar() >= 1
    bad = CliRunner().invoke(cli, ["key-places", "seed", "--max-address-m", "0"])
    assert bad.exit_code != 0
