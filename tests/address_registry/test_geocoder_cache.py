"""The geocoder cache: a write marks it stale when its transaction commits (not before, not on rollback);
typed registry errors; the parser loader tolerates only a model that is not shipped."""

import builtins

import pytest
from sqlalchemy import text

from address_registry import errors, geocoder_cache, service
from geo.errors import Conflict, InvalidInput, NotFound
from gis_api.errors import status_and_code

WHO = ("测试员", "单元测试 unit test")


@pytest.fixture
def house(engine, registry):
    with engine.connect() as conn:
        return conn.execute(text("""SELECT code, parent_code, ST_X(geom) AS lon, ST_Y(geom) AS lat
            FROM standard_address WHERE valid_to IS NULL AND normalized_text = '上海市浦东新区世纪大道1号'""")).first()


def _alias(conn, code: str, alias: str):
    return service.add_alias(conn, code, {"alias": alias, "kind": "poi"}, WHO[0])


def test_a_write_marks_the_geocoder_stale_on_commit_only(engine, house):
    cache = geocoder_cache.open_cache(engine, ttl_s=600)  # no expiry by age during the test
    cache.get(engine)
    assert cache.peek() is not None
    with engine.connect() as conn:
        trans = conn.begin()
        _alias(conn, house.code, "缓存测试回滚大厦")
        assert cache.peek() is not None  # not yet: a reader now would still see the committed registry
        trans.rollback()
    assert cache.peek() is not None  # rolled back: nothing changed, nothing to reload
    with engine.connect() as conn:
        trans = conn.begin()
        _alias(conn, house.code, "缓存测试提交大厦")
        assert cache.peek() is not None
        trans.commit()
    assert cache.peek() is None  # committed: the next geocode checks the stamp and reloads
    try:
        best = service.geocoder_for(engine).geocode("缓存测试提交大厦", limit=1)[0]
        assert best["address_code"] == house.code
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM address_alias WHERE alias = '缓存测试提交大厦'"))
        geocoder_cache.open_cache(engine)


def test_open_cache_replaces_the_cache_of_the_database(engine, registry):
    built = geocoder_cache.open_cache(engine, ttl_s=5.0)
    assert geocoder_cache.cache_for(engine) is built and built.ttl_s == 5.0
    assert len(built.get()) > 0  # bound to its engine: no argument needed
    geocoder_cache.open_cache(engine)  # back to the default for the other tests


def test_registry_errors_are_typed_domain_errors(tx, house):
    with pytest.raises(errors.InvalidAddress) as bad:
        service.create_address(tx, {"level": "nowhere"}, *WHO)
    assert isinstance(bad.value, InvalidInput) and bad.value.kind == "invalid"
    assert status_and_code(bad.value) == (422, "unprocessable")
    with pytest.raises(errors.AddressNotFound) as missing:
        service.retire_address(tx, "31011500000000000000", *WHO)
    assert isinstance(missing.value, NotFound) and status_and_code(missing.value)[0] == 404
    with pytest.raises(errors.AddressConflict) as dup:
        service.create_address(
            tx,
            {"level": "house_number", "parent_code": house.parent_code, "components": {"house_number": "1号"},
             "lon": house.lon, "lat": house.lat},
            *WHO,
        )
    assert isinstance(dup.value, Conflict) and "existing_code" in dup.value.detail
    assert all(issubclass(c, service.RegistryError) for c in (errors.InvalidAddress, errors.AddressConflict))


def test_free_text_parser_tolerates_only_a_model_that_is_not_shipped(monkeypatch):
    real_import = builtins.__import__

    def no_parsing(name, *args, **kwargs):
        if name.startswith("address_registry.parsing"):
            raise ImportError("not shipped")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_parsing)
    assert geocoder_cache.free_text_parser() is None
    monkeypatch.setattr(builtins, "__import__", real_import)

    import address_registry.parsing as parsing

    def broken(_text):
        raise RuntimeError("a broken model")

    monkeypatch.setattr(parsing, "parse", broken)
    with pytest.raises(RuntimeError):
        geocoder_cache.free_text_parser()


def test_catch_up_applies_a_delta_and_never_rebuilds(engine, house, monkeypatch):
    """What a forking server's parent runs before it forks a replacement worker (gis_api/serving.py)."""
    cache = geocoder_cache.open_cache(engine, ttl_s=600)
    try:
        assert cache.catch_up() is False  # nothing loaded yet: nothing to bring up to date (and no build)
        assert cache.peek() is None
        loaded = cache.get()
        with engine.begin() as conn:
            _alias(conn, house.code, "追赶测试大厦")
        assert cache.peek() is None  # the commit marked it stale
        assert cache.catch_up() is True
        assert cache.peek() is loaded  # the same index, brought up to date in place, fresh again
        assert loaded.geocode("追赶测试大厦", limit=1)[0]["address_code"] == house.code
        assert ("alias", house.code) in loaded.names[loaded._norm("追赶测试大厦")]
        assert cache.catch_up() is True  # nothing changed since: current
        # a change the delta cannot take (here: any, by setting the delta's bound below zero) is left alone
        monkeypatch.setattr(geocoder_cache, "MAX_DELTA", -1)
        with engine.begin() as conn:
            _alias(conn, house.code, "追赶测试二号楼")
        assert cache.catch_up() is False
        assert cache.peek() is None  # left stale: the next `get` checks the stamp again
        assert cache._cache.stale("geocoder").geocoder is loaded
        assert loaded._norm("追赶测试二号楼") not in loaded.names  # not applied
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM address_alias WHERE alias IN ('追赶测试大厦', '追赶测试二号楼')"))
        geocoder_cache.open_cache(engine)
