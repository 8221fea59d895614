"""The geocoder's lean load and its snapshot (issue 14): the lean records answer exactly as the whole rows
did; a snapshot is written after a whole build, read back by the next process's cache, brought up to date
by a delta after a write, and ignored (rebuilt, rewritten) when it is corrupt, truncated, stale, of another
database or not owner-only."""

from __future__ import annotations

import json
import os
import signal
import stat
import time

import pytest
from sqlalchemy import text

from address_registry import geocoder_cache, geocoder_snapshot, service, store
from address_registry.geocoder import Geocoder
from address_registry.noisy import noisy_queries
from address_registry.store.geocoder_rows import lean_records

WHO = ("测试员", "快照测试 snapshot test")


def _answers(g: Geocoder, queries: list[str]) -> list[list[dict]]:
    return [g.geocode(q, 3) for q in queries]


@pytest.fixture(scope="module")
def whole_and_lean(engine, registry):
    """The geocoder over the registry's whole rows (`all_current`, the load before issue 14's change) and
    over the lean records, from the same inputs otherwise."""
    with engine.connect() as conn:
        inputs = store.load_geocoder_inputs(conn)
        whole = [r for r in store.all_current(conn) if r.status == "active"]
    lean = Geocoder(**inputs)
    return Geocoder(**(inputs | {"records": whole})), lean, whole


def test_lean_records_carry_what_the_geocoder_reads(whole_and_lean):
    _, lean, whole = whole_and_lean
    assert len(lean.by_code) == len(whole) > 8000
    fields = ("code", "level", "components", "lon", "lat", "parent_code", "district_code", "township_code",
              "community_code", "building_id", "compound_code", "source", "status", "version")
    for rec in whole:
        got = lean.by_code[rec.code]
        assert {f: getattr(got, f) for f in fields} == {f: getattr(rec, f) for f in fields}
        assert (got.area is None) == (rec.area is None) and (got.area is None or got.area.equals(rec.area))
        assert got.extra == {} and rec.extra["changed_by"]  # the history fields stay in the database
        if got.parent_code in lean.by_code:  # one string object per code, shared by the children
            assert got.parent_code is lean.by_code[got.parent_code].code
    with pytest.raises(TypeError):
        lean.by_code[whole[0].code].extra["changed_by"] = "x"  # the shared empty `extra` is read-only


def test_the_lean_load_answers_as_the_whole_rows_did(whole_and_lean):
    full, lean, whole = whole_and_lean
    formatted = [r.formatted for r in whole[::12]]
    noisy = [q for _form, q, _code in noisy_queries(whole, seed=3)][::9]
    queries = formatted + noisy + ["黄浦区南京东路", "世纪大道1号3幢", "南京东路999号"]
    assert len(queries) > 1000
    assert _answers(lean, queries) == _answers(full, queries)


def test_streamed_in_small_batches_is_the_same(engine, registry):
    with engine.connect() as conn:
        small = list(lean_records(conn, batch_rows=500))
        big = list(lean_records(conn))
    assert [(r.code, r.components, r.lon) for r in small] == [(r.code, r.components, r.lon) for r in big]


def test_rows_fetched_ahead_keep_their_order_errors_and_stop_early(engine, registry):
    """The row batches are fetched by a thread while the previous one is decoded: same rows in the same
    order; an error while fetching is raised to the reader; a reader that stops early stops the thread."""
    import threading

    from address_registry.store import geocoder_rows

    with engine.connect() as conn:
        batches = [list(b) for b in conn.execute(text(geocoder_rows._SQL)).tuples().partitions(700)]
    assert len(batches) > 10
    assert list(geocoder_rows._prefetched(iter(batches))) == [row for b in batches for row in b]

    def failing():
        yield from batches[:3]
        raise RuntimeError("connection lost")
    got = []
    with pytest.raises(RuntimeError, match="connection lost"):
        for row in geocoder_rows._prefetched(failing()):
            got.append(row)
    assert got == [row for b in batches[:3] for row in b]

    reader = geocoder_rows._prefetched(iter(batches), depth=1)
    assert next(reader) == batches[0][0]
    reader.close()  # the thread blocked on a full queue ends
    assert not [t for t in threading.enumerate() if t.name == "geocoder-rows"]


def _snap(folder) -> list:
    return sorted(folder.glob("geocoder-*.snap"))


def test_snapshot_round_trip_with_a_delta_after_a_write(engine, registry, tmp_path):
    folder = tmp_path / "geocoder"
    first = geocoder_cache.GeocoderCache(engine, ttl_s=0.0, snapshot_dir=folder)
    g1 = first.get()
    assert first.last_load["kind"] == "full"
    assert first.wait_for_snapshot(120)  # written by a forked child after the build was published
    [path] = _snap(folder)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / geocoder_snapshot.KEY_FILE).stat().st_mode) == 0o600
    written = path.stat().st_mtime_ns

    # the next process's cache (a new cache object: nothing shared in memory) reads the snapshot
    second = geocoder_cache.GeocoderCache(engine, ttl_s=0.0, snapshot_dir=folder)
    g2 = second.get()
    assert second.last_load["kind"] == "snapshot" and second.last_load["changed"] == 0
    assert g2 is not g1 and len(g2) == len(g1) and g2.parser is g1.parser
    sample = [r.formatted for r in list(g1.by_code.values())[::11]] + ["南京东路1号", "宁博路", "世纪大道1号"]
    assert _answers(g2, sample) == _answers(g1, sample)

    with engine.connect() as conn:
        house = conn.execute(text("""SELECT parent_code, ST_X(geom) AS lon, ST_Y(geom) AS lat,
            components->>'road' AS road FROM standard_address WHERE valid_to IS NULL AND status = 'active'
            AND level = 'house_number' AND normalized_text = '上海市浦东新区世纪大道1号'""")).one()
    try:
        with engine.begin() as conn:
            made = service.create_address(
                conn, {"level": "house_number", "parent_code": house.parent_code,
                       "components": {"house_number": "9991号"}, "lon": house.lon + 0.0004, "lat": house.lat},
                *WHO)
        # a process starting after the write: the snapshot, then the write as a delta (no rebuild)
        third = geocoder_cache.GeocoderCache(engine, ttl_s=0.0, snapshot_dir=folder)
        g3 = third.get()
        assert third.last_load["kind"] == "snapshot" and third.last_load["changed"] >= 1
        assert path.stat().st_mtime_ns == written  # read, not rewritten
        query = f"上海市浦东新区{house.road}9991号"
        assert g3.geocode(query, 1)[0]["address_code"] == made.code
        with engine.connect() as conn:
            rebuilt = Geocoder(**store.load_geocoder_inputs(conn), parser=g3.parser)
        assert _answers(g3, sample + [query]) == _answers(rebuilt, sample + [query])
        # the caches already running see the write as before: a delta in place
        assert second.get() is g2 and second.last_load["kind"] == "delta"
        assert g2.geocode(query, 1)[0]["address_code"] == made.code
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM standard_address WHERE changed_by = :w"), {"w": WHO[0]})


def _await(path, seconds: float = 120.0) -> None:
    """Wait until the forked writer made ``path`` (its sign that it reached a stage)."""
    end = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < end, f"the snapshot writer never reached {path.name}"
        time.sleep(0.05)


def test_a_delta_while_the_snapshot_is_written_is_live_and_in_the_next_start(engine, registry, tmp_path,
                                                                             monkeypatch):
    """The build is published before its snapshot is written; a write applied as a delta while the child
    is still writing is in the live index at once, the snapshot holds the build as it was at the fork (not a
    half-applied delta), and the next start (snapshot + the delta since it) answers as a fresh build."""
    gate_r, gate_w = os.pipe()
    reached = tmp_path / "writer-started"

    def hold(stage, fh):  # in the child: wait for the test before pickling anything
        if stage == "start":
            os.close(gate_w)
            reached.touch()
            os.read(gate_r, 1)

    monkeypatch.setattr(geocoder_snapshot, "_child_hook", hold)
    folder = tmp_path / "geocoder"
    cache = geocoder_cache.GeocoderCache(engine, ttl_s=0.0, snapshot_dir=folder)
    try:
        g = cache.get()
        writer = cache.snapshot_writer
        assert cache.last_load["kind"] == "full" and writer is not None and writer.pid != os.getpid()
        built_at = cache._cache.stale("geocoder").stamp
        _await(reached)
        assert not writer.wait(0) and _snap(folder) == []  # still being written, nothing published yet

        with engine.connect() as conn:
            house = conn.execute(text("""SELECT parent_code, ST_X(geom) AS lon, ST_Y(geom) AS lat,
                components->>'road' AS road FROM standard_address WHERE valid_to IS NULL AND status = 'active'
                AND level = 'house_number' AND normalized_text = '上海市浦东新区世纪大道1号'""")).one()
        with engine.begin() as conn:
            made = service.create_address(
                conn, {"level": "house_number", "parent_code": house.parent_code,
                       "components": {"house_number": "9993号"}, "lon": house.lon + 0.0005, "lat": house.lat},
                *WHO)
        query = f"上海市浦东新区{house.road}9993号"
        assert cache.get() is g and cache.last_load["kind"] == "delta"  # applied to the live index …
        assert g.geocode(query, 1)[0]["address_code"] == made.code
        assert not writer.wait(0)  # … while the writer still holds its image

        os.write(gate_w, b"go")
        assert cache.wait_for_snapshot(120) and writer.ok
        [path] = _snap(folder)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        snap = geocoder_snapshot.SnapshotStore(folder, _database_key(engine)).read()
        assert snap is not None and snap.stamp == built_at  # the state of the fork, without the delta
        assert made.code not in snap.geocoder.by_code and len(snap.geocoder) == len(g) - 1

        nxt = geocoder_cache.GeocoderCache(engine, ttl_s=0.0, snapshot_dir=folder)
        g2 = nxt.get()
        assert nxt.last_load["kind"] == "snapshot" and nxt.last_load["changed"] >= 1
        with engine.connect() as conn:
            fresh = Geocoder(**store.load_geocoder_inputs(conn), parser=g2.parser)
        assert set(g2.by_code) == set(fresh.by_code) == set(g.by_code)
        sample = [r.formatted for r in list(fresh.by_code.values())[::40]] + [query, "南京东路1号", "世纪大道1号"]
        assert _answers(g2, sample) == _answers(fresh, sample) == _answers(g, sample)
    finally:
        os.close(gate_w)  # a child still waiting reads EOF and goes on
        os.close(gate_r)
        if cache.snapshot_writer is not None and not cache.snapshot_writer.wait(120):
            os.kill(cache.snapshot_writer.pid, signal.SIGKILL)
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM standard_address WHERE changed_by = :w"), {"w": WHO[0]})


def test_a_killed_writer_leaves_no_accepted_snapshot(engine, registry, tmp_path, monkeypatch):
    """The writer killed after pickling, before signing and renaming: no snapshot is accepted (its half file
    is never read), the next start builds and writes a good one and removes the dead writer's leftovers."""
    reached = tmp_path / "payload-written"

    def stall(stage, fh):  # in the child: the payload is on disk, the header not yet
        if stage == "payload":
            fh.flush()
            reached.touch()
            time.sleep(600)

    monkeypatch.setattr(geocoder_snapshot, "_child_hook", stall)
    folder = tmp_path / "geocoder"
    cache = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)
    g = cache.get()
    writer = cache.snapshot_writer
    assert writer is not None
    _await(reached)
    [half] = list(folder.glob(".geocoder-*.tmp"))
    assert half.stat().st_size > 512 + 10**5 and half.name.split("-")[2] == str(writer.pid)
    os.kill(writer.pid, signal.SIGKILL)
    assert writer.wait(30) and not writer.ok and os.WIFSIGNALED(writer.status or 0)
    assert not cache.wait_for_snapshot(0)
    assert _snap(folder) == [] and half.exists()  # the half file stays where no reader looks
    snapshots = geocoder_snapshot.SnapshotStore(folder, _database_key(engine))
    assert snapshots.read() is None and snapshots.last_refusal == "missing"
    assert g.geocode("上海市浦东新区世纪大道1号", 1)[0]["level"] == "house_number"  # the process serves on

    monkeypatch.setattr(geocoder_snapshot, "_child_hook", None)
    again = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)
    assert len(again.get()) == len(g) and again.last_load["kind"] == "full"  # nothing accepted: built
    assert again.wait_for_snapshot(120)
    assert not half.exists() and list(folder.glob(".geocoder-*.tmp")) == []  # the dead writer's file removed
    third = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)
    assert len(third.get()) == len(g) and third.last_load["kind"] == "snapshot"


def test_a_stuck_writer_is_killed_and_frees_the_folder(engine, registry, tmp_path, monkeypatch):
    """A writer that never finishes (stuck on a lock its parent held at the fork, say) is killed after
    ``WRITER_TIMEOUT_S``: no snapshot accepted, and the folder's lock it held is free for the next writer."""
    def stuck(stage, fh):
        if stage == "start":
            time.sleep(600)

    monkeypatch.setattr(geocoder_snapshot, "_child_hook", stuck)
    monkeypatch.setattr(geocoder_snapshot, "WRITER_TIMEOUT_S", 1.0)
    folder = tmp_path / "geocoder"
    cache = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)
    cache.get()
    writer = cache.snapshot_writer
    assert writer is not None and writer.wait(60)
    assert os.WIFSIGNALED(writer.status or 0) and os.WTERMSIG(writer.status or 0) == signal.SIGKILL
    assert 1.0 <= (writer.seconds or 0) < 30 and _snap(folder) == []
    monkeypatch.setattr(geocoder_snapshot, "_child_hook", None)
    again = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)
    again.get()
    assert again.last_load["kind"] == "full" and again.wait_for_snapshot(120) and len(_snap(folder)) == 1


def test_two_workers_starting_together_build_once(engine, registry, tmp_path):
    """Two caches (two workers) starting at once with no snapshot: one builds and writes it while holding
    the folder's lock, the other waits and reads it."""
    import threading

    folder = tmp_path / "geocoder"
    caches = [geocoder_cache.GeocoderCache(engine, snapshot_dir=folder) for _ in range(2)]
    threads = [threading.Thread(target=c.get) for c in caches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c.last_load["kind"] for c in caches) == ["full", "snapshot"]
    assert len(caches[0].get()) == len(caches[1].get()) > 8000


def _rewrite_header(path, **changes) -> None:
    raw = path.read_bytes()
    meta = json.loads(raw[len(geocoder_snapshot.MAGIC):512].split(b"\n", 1)[0])
    head = geocoder_snapshot.MAGIC + json.dumps(meta | changes).encode() + b"\n"
    path.write_bytes(head.ljust(512, b"\0") + raw[512:])


@pytest.fixture(scope="module")
def good_snapshot(engine, registry, tmp_path_factory):
    """A snapshot folder written by a whole load (its snapshot file's and key's bytes)."""
    folder = tmp_path_factory.mktemp("snapshot") / "geocoder"
    cache = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)
    cache.get()
    assert cache.wait_for_snapshot(120)
    [path] = _snap(folder)
    return path.name, path.read_bytes(), (folder / geocoder_snapshot.KEY_FILE).read_bytes()


def _copy_of(good_snapshot, tmp_path):
    name, data, key = good_snapshot
    folder = tmp_path / "geocoder"
    folder.mkdir(mode=0o700)
    (folder / geocoder_snapshot.KEY_FILE).write_bytes(key)
    (folder / name).write_bytes(data)
    for f in folder.iterdir():
        os.chmod(f, 0o600)
    return folder, folder / name, data


@pytest.mark.parametrize(
    ("damage", "refusal"),
    [("flip", "checksum mismatch"), ("truncate", "truncated or padded"), ("format", "format"),
     ("edited", "checksum mismatch"), ("database", "another database"), ("mode", "readable by its owner only"),
     ("key", "checksum mismatch"), ("not a snapshot", "not a snapshot")],
)
def test_a_bad_snapshot_is_refused_before_it_is_unpickled(engine, good_snapshot, tmp_path, damage, refusal):
    folder, path, good = _copy_of(good_snapshot, tmp_path)
    snapshots = geocoder_snapshot.SnapshotStore(folder, _database_key(engine))
    assert snapshots.read() is not None  # the copy itself is good
    if damage == "flip":  # one byte in the middle of the pickle
        raw = bytearray(good)
        raw[len(raw) // 2] ^= 0x5A
        path.write_bytes(bytes(raw))
    elif damage == "truncate":
        path.write_bytes(good[: len(good) - 1000])
    elif damage == "format":
        _rewrite_header(path, format=geocoder_snapshot.FORMAT_VERSION + 1)
    elif damage == "edited":  # a header field changed by hand: the HMAC covers the header too
        _rewrite_header(path, stamp=[10**9, 0, 10**9])
    elif damage == "database":
        _rewrite_header(path, database="pg:1/another")
    elif damage == "mode":
        os.chmod(path, 0o644)
    elif damage == "key":  # written under another key
        (folder / geocoder_snapshot.KEY_FILE).write_bytes(os.urandom(32))
    elif damage == "not a snapshot":
        path.write_bytes(b"\x80\x05 a pickle of something else")
    assert snapshots.read() is None
    assert refusal in (snapshots.last_refusal or "")


def test_the_cache_rebuilds_over_a_bad_snapshot_and_rewrites_it(engine, good_snapshot, tmp_path):
    folder, path, good = _copy_of(good_snapshot, tmp_path)
    path.write_bytes(good[: len(good) // 2])
    cache = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)
    g = cache.get()
    assert cache.last_load["kind"] == "full"  # rebuilt, not trusted …
    assert cache.wait_for_snapshot(120)
    assert len(g) > 8000 and g.geocode("上海市浦东新区世纪大道1号", 1)[0]["level"] == "house_number"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_bytes()) > len(good) // 2
    check = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)  # … and rewritten: the next start reads it
    assert len(check.get()) == len(g) and check.last_load["kind"] == "snapshot"


def test_a_snapshot_ahead_of_the_registry_is_not_used(engine, good_snapshot, tmp_path):
    """A valid snapshot of a later registry (the database restored from an older backup) is rebuilt."""
    folder, _path, _good = _copy_of(good_snapshot, tmp_path)
    snapshots = geocoder_snapshot.SnapshotStore(folder, _database_key(engine))
    snap = snapshots.read()
    assert snap is not None
    snapshots.write(snap.geocoder, (snap.stamp[0] + 10**6, snap.stamp[1], snap.stamp[2]))
    cache = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)
    cache.get()
    assert cache.last_load["kind"] == "full"


def test_a_snapshot_written_by_other_code_is_ignored(engine, good_snapshot, tmp_path, monkeypatch):
    folder, _path, _good = _copy_of(good_snapshot, tmp_path)
    monkeypatch.setattr(geocoder_snapshot, "code_fingerprint", lambda: "another version of the geocoder")
    snapshots = geocoder_snapshot.SnapshotStore(folder, _database_key(engine))
    assert snapshots.read() is None and snapshots.last_refusal == "written by other code"


def test_a_folder_others_may_write_is_refused(engine, good_snapshot, tmp_path):
    folder, _path, _good = _copy_of(good_snapshot, tmp_path)
    os.chmod(folder, 0o777)
    snapshots = geocoder_snapshot.SnapshotStore(folder, _database_key(engine))
    assert snapshots.read() is None and "writable by others" in (snapshots.last_refusal or "")
    cache = geocoder_cache.GeocoderCache(engine, snapshot_dir=folder)  # geocoding goes on, built, not read
    assert len(cache.get()) > 8000 and cache.last_load["kind"] == "full"


def _database_key(engine) -> str:
    with engine.connect() as conn:
        return geocoder_snapshot.database_key(conn, engine.url)


def test_a_served_app_keeps_its_snapshots_in_the_data_folder(pg_url, tmp_path):
    from gis_api.app import create_app
    from gis_api.settings import Settings

    on = create_app(Settings(data_dir=tmp_path, geocoder_snapshots=True), db_url=pg_url)
    assert on.state.geocoder_cache.snapshot_dir == tmp_path / "geocoder"
    off = create_app(Settings(data_dir=tmp_path), db_url=pg_url)  # tests and scripts: no snapshot
    assert off.state.geocoder_cache.snapshot_dir is None
    geocoder_cache.open_cache(off.state.engine)  # the session's cache as the other tests expect it
