"""Create / correct / retire / merge / split through the API: validation and kept history."""

import pytest
from sqlalchemy import text

from address_registry import service, store

WHO = {"changed_by": "测试员", "reason": "单元测试 unit test"}


@pytest.fixture(scope="module")
def house(client, registry, engine):
    """An existing OSM house number to hang new addresses under."""
    with engine.connect() as conn:
        row = conn.execute(text("""SELECT code, parent_code, ST_X(geom) AS lon, ST_Y(geom) AS lat, components
            FROM standard_address WHERE valid_to IS NULL AND normalized_text = '上海市浦东新区世纪大道1号'""")).first()
    return row


def _create(client, **body):
    return client.post("/addresses", json={**WHO, **body})


def test_create_building_unit_room_and_geocode_them(client, house):
    b = _create(client, level="building", parent_code=house.code, components={"building": "9号楼"},
                lon=house.lon, lat=house.lat)
    assert b.status_code == 201, b.text
    bj = b.json()
    assert bj["components"]["building"] == "9幢" and bj["version"] == 1 and bj["source"] == "manual"
    assert bj["district_code"] == "310115" and bj["parent_code"] == house.code
    u = _create(client, level="unit", parent_code=bj["address_code"], components={"unit": "二单元"},
                lon=house.lon, lat=house.lat)
    f = _create(client, level="floor", parent_code=u.json()["address_code"], components={"floor": "3层"},
                lon=house.lon, lat=house.lat)
    r = _create(client, level="room", parent_code=f.json()["address_code"], components={"room": "301室"},
                lon=house.lon, lat=house.lat)
    assert r.status_code == 201, r.text
    room = r.json()
    assert room["formatted"].endswith("世纪大道1号9幢2单元3层301室")
    got = client.get("/geocode", params={"q": "浦东新区世纪大道一号9栋2门三楼301户"}).json()["results"][0]
    assert got["address_code"] == room["address_code"] and got["level"] == "room"
    # floor left out: the room is still found under its unit
    got = client.get("/geocode", params={"q": "世纪大道1号9号楼2单元301室"}).json()["results"][0]
    assert got["address_code"] == room["address_code"]
    # a room that does not exist: the deepest existing level, with a lower score
    got = client.get("/geocode", params={"q": "世纪大道1号9幢2单元3层999室"}).json()["results"][0]
    assert got["level"] == "floor" and got["score"] < 1


def test_validation_errors(client, house, registry):
    dup = _create(client, level="house_number", parent_code=house.parent_code, components={"house_number": "1号"},
                  lon=house.lon, lat=house.lat)
    assert dup.status_code == 409 and "existing_code" in dup.json()["detail"]
    outside = _create(client, level="house_number", parent_code=house.parent_code,
                      components={"house_number": "9991号"}, lon=121.47, lat=31.23)  # 黄浦区, across the river
    assert outside.status_code == 422 and "district" in outside.json()["message"]
    wrong_parent = _create(client, level="room", parent_code=house.code, components={"room": "1室"},
                           lon=house.lon, lat=house.lat)
    assert wrong_parent.status_code == 422
    inconsistent = _create(client, level="house_number", parent_code=house.parent_code,
                           components={"house_number": "9993号", "road": "南京东路"}, lon=house.lon, lat=house.lat)
    assert inconsistent.status_code == 422 and "road" in inconsistent.json()["detail"]
    bad_number = _create(client, level="house_number", parent_code=house.parent_code,
                         components={"house_number": "东门"}, lon=house.lon, lat=house.lat)
    assert bad_number.status_code == 422
    no_reason = client.post("/addresses", json={"changed_by": "x", "reason": "", "level": "building",
                                                "parent_code": house.code, "components": {"building": "1幢"},
                                                "lon": house.lon, "lat": house.lat})
    assert no_reason.status_code == 422
    bad_code = client.get("/addresses/31011500005000013")  # wrong check digit
    assert bad_code.status_code == 422
    foreign = _create(client, level="building", parent_code=house.code, components={"building": "5幢"},
                      lon=2.35, lat=48.85)
    assert foreign.status_code == 422


def test_correct_keeps_the_old_version_and_cascades(client, house):
    new = _create(client, level="house_number", parent_code=house.parent_code, components={"house_number": "9001号"},
                  lon=house.lon, lat=house.lat).json()
    code = new["address_code"]
    child = _create(client, level="building", parent_code=code, components={"building": "1幢"},
                    lon=house.lon, lat=house.lat).json()
    r = client.patch(f"/addresses/{code}", json={"changed_by": "户籍民警", "reason": "门牌号录入错误",
                                                 "components": {"house_number": "9003"}})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 2 and r.json()["components"]["house_number"] == "9003号"
    hist = client.get(f"/addresses/{code}/history").json()["versions"]
    assert [v["version"] for v in hist] == [1, 2]
    assert hist[0]["valid_to"] is not None and hist[1]["valid_to"] is None
    assert hist[0]["components"]["house_number"] == "9001号"
    # changed_by is the authenticated caller (the `client` fixture's admin), not the body's "户籍民警"
    assert hist[1]["changed_by"] == "m-client-admin" and hist[1]["change_reason"] == "门牌号录入错误"
    c = client.get(f"/addresses/{child['address_code']}").json()
    assert c["components"]["house_number"] == "9003号" and c["version"] == 2
    # the old text is free again, the new one is taken
    assert client.get("/geocode", params={"q": "世纪大道9003号1幢"}).json()["results"][0]["address_code"] == \
        child["address_code"]
    same = client.patch(f"/addresses/{code}", json={**WHO, "components": {"house_number": "9003号"}})
    assert same.status_code == 422  # nothing changes


def test_retire_merge_split(client, house, engine):
    def mk(n):
        return _create(client, level="house_number", parent_code=house.parent_code,
                       components={"house_number": n}, lon=house.lon, lat=house.lat).json()["address_code"]

    a, b, c = mk("9101号"), mk("9103号"), mk("9105号")
    kid = _create(client, level="building", parent_code=a, components={"building": "1幢"},
                  lon=house.lon, lat=house.lat).json()["address_code"]
    blocked = client.post(f"/addresses/{a}/retire", json=WHO)
    assert blocked.status_code == 409 and kid in blocked.json()["detail"]["active_children"]
    assert client.post(f"/addresses/{kid}/retire", json=WHO).json()["status"] == "retired"
    assert client.post(f"/addresses/{kid}/retire", json=WHO).status_code == 409

    merged = client.post("/addresses/merge", json={**WHO, "codes": [b, c], "into": a})
    assert merged.status_code == 200, merged.text
    assert set(merged.json()["related_codes"]) == {b, c}
    bj = client.get(f"/addresses/{b}").json()
    assert bj["status"] == "retired" and bj["related_codes"] == [a]

    parts = [{"components": {"house_number": "9101-1号"}}, {"components": {"house_number": "9101-2号"}}]
    sp = client.post(f"/addresses/{a}/split", json={**WHO, "parts": parts})
    assert sp.status_code == 201, sp.text
    new_codes = [x["address_code"] for x in sp.json()["created"]]
    assert all(x["related_codes"] == [a] for x in sp.json()["created"])
    old = client.get(f"/addresses/{a}").json()
    assert old["status"] == "retired" and sorted(old["related_codes"]) == sorted(new_codes)
    # nothing was deleted: every version of a is still there
    with engine.connect() as conn:
        versions = conn.execute(text("SELECT count(*) FROM standard_address WHERE code = :c"), {"c": a}).scalar()
    assert versions >= 4
    # retired addresses are no longer geocoded; the split parts are
    got = client.get("/geocode", params={"q": "世纪大道9101-2号"}).json()["results"][0]
    assert got["address_code"] == new_codes[1]


def test_aliases(client, house):
    r = client.post(f"/addresses/{house.code}/aliases", json={"alias": "明珠塔", "kind": "variant",
                                                               "changed_by": "测试员"})
    assert r.status_code == 201
    assert client.post(f"/addresses/{house.code}/aliases", json={"alias": "明珠塔", "changed_by": "x"}).status_code == 409
    got = client.get("/geocode", params={"q": "明珠塔"}).json()["results"][0]
    assert got["address_code"] == house.code


def test_point_must_fall_in_its_community(engine, registry, house):
    """With community polygons present, a point outside the named community is refused."""
    with engine.connect() as conn:
        tx = conn.begin()
        try:
            conn.execute(text("""INSERT INTO admin_unit (code, name, level, parent_code, source, geom)
                VALUES ('310115998', '试验街道', 'township', '310115', 'provisional',
                        ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 0.003))),
                       ('310115998001', '甲居委会', 'community', '310115998', 'provisional',
                        ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), 0.001))),
                       ('310115998002', '乙居委会', 'community', '310115998', 'provisional',
                        ST_Multi(ST_Buffer(ST_SetSRID(ST_MakePoint(:lon + 0.002, :lat), 4326), 0.0009)))"""),
                         {"lon": house.lon, "lat": house.lat})
            data = {"level": "house_number", "parent_code": house.parent_code,
                    "components": {"house_number": "9777号"},
                    "lon": house.lon, "lat": house.lat, "community_code": "310115998002"}
            with pytest.raises(service.RegistryError) as exc:
                service.create_address(conn, data, **WHO)
            assert exc.value.kind == "invalid" and "community" in exc.value.message
            rec = service.create_address(conn, {**data, "community_code": "310115998001"}, **WHO)
            assert rec.community_code == "310115998001" and rec.components["community"] == "甲居委会"
            assert rec.township_code == "310115998"
            assert store.current(conn, rec.code) is not None
            # a child inherits the community: its point must lie in 甲, not in 乙
            child = {"level": "building", "parent_code": rec.code, "components": {"building": "1幢"},
                     "lon": house.lon + 0.002, "lat": house.lat}
            with pytest.raises(service.RegistryError) as exc:
                service.create_address(conn, child, **WHO)
            assert "community" in exc.value.message
            with pytest.raises(service.RegistryError):
                service.create_address(conn, {**child, "community_code": "310115998002"}, **WHO)
            building = service.create_address(conn, {**child, "lon": house.lon}, **WHO)
            assert building.community_code == "310115998001"
        finally:
            tx.rollback()


def test_qr_plate(client, house):
    import xml.etree.ElementTree as ET

    from address_registry.qr import plate_payload, qr_matrix

    r = client.get(f"/addresses/{house.code}/qr.svg")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    root = ET.fromstring(r.text)
    texts = "".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert house.code in texts and "世纪大道1号" in texts
    payload = plate_payload(house.code, "http://testserver/")
    assert payload == f"http://testserver/addresses/{house.code}"
    matrix = qr_matrix(payload)
    assert len(matrix) == len(matrix[0]) >= 21 and any(any(row) for row in matrix)
    assert client.get("/addresses/31011500005000013/qr.svg").status_code == 422


def test_list_addresses(client, house, engine):
    r = client.get("/addresses", params={"parent_code": house.parent_code, "level": "house_number", "limit": 5})
    assert r.status_code == 200
    body = r.json()
    with engine.connect() as conn:
        expected = conn.execute(text("""SELECT count(*) FROM standard_address WHERE valid_to IS NULL
            AND status = 'active' AND parent_code = :p AND level = 'house_number'"""), {"p": house.parent_code}).scalar()
    assert body["total"] == expected and len(body["addresses"]) == min(5, expected)
    assert [a["address_code"] for a in body["addresses"]] == sorted(a["address_code"] for a in body["addresses"])
    page2 = client.get("/addresses", params={"parent_code": house.parent_code, "level": "house_number",
                                             "limit": 5, "offset": 5}).json()
    assert not {a["address_code"] for a in page2["addresses"]} & {a["address_code"] for a in body["addresses"]}
    pre = client.get("/addresses", params={"prefix": "上海市浦东新区世纪大道1号"}).json()
    assert house.code in [a["address_code"] for a in pre["addresses"]]
    assert all(a["normalized_text"].startswith("上海市浦东新区世纪大道1") for a in pre["addresses"])
    assert client.get("/addresses", params={"level": "planet"}).status_code == 422
    assert client.get("/addresses", params={"status": "gone"}).status_code == 422
