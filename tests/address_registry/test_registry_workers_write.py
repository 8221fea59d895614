"""The registry written by the Dask workers (issue 14 §3, `shequ province registry --writer worker`): each
district's task COPYs its records into the run's staging tables with its own connection and the driver moves
them into the registry in one transaction. On the demo in PostGIS, with a LocalCluster of two worker processes:

- rebuilt over a registry that has drifted (rows gone, moved, edited by a person, retired, a text taken by
  another code, a compound's area moved, aliases gone) and built from scratch, the registry it leaves —
  every version's code, fields, geometry, version, change reason and current state, the order the new rows
  were inserted in, the aliases — and its counts equal those `shequ address build` (`build_registry`, one
  process) leaves from the same start; each comparison runs in a transaction rolled back afterwards;
- a task failing mid-way (a bad partition: its COPY breaks on its last record) fails the build, leaves the
  registry exactly as it was and no staging table behind.
"""

from __future__ import annotations

import dataclasses
import json
from functools import partial

import pytest
from sqlalchemy import text

from address_registry import store
from address_registry.build import emission_partitions
from address_registry.province import stage_registry_on_dask
from address_registry.service import build_registry, build_registry_staged

_VERSIONS = text("""
    SELECT code, version, level, parent_code, district_code, township_code, community_code, components::text,
        full_text, normalized_text, ST_AsEWKB(geom) AS geom, building_id, source, status, valid_to IS NULL AS cur,
        changed_by, change_reason, related_codes, compound_code, ST_AsEWKB(area) AS area
    FROM standard_address ORDER BY code, version""")
_ALIASES = text("""
    SELECT address_code, alias, normalized_alias, kind, source, valid_to IS NULL AS cur, changed_by
    FROM address_alias ORDER BY address_code, normalized_alias, valid_to NULLS LAST, id""")


def _state(conn, since: tuple[int, int]) -> dict:
    """The registry as a comparable value: every version and alias, and the order of the rows added."""
    return {
        "versions": [tuple(r) for r in conn.execute(_VERSIONS)],
        "aliases": [tuple(r) for r in conn.execute(_ALIASES)],
        "new_order": [tuple(r) for r in conn.execute(
            text("SELECT code, version FROM standard_address WHERE id > :i ORDER BY id"), {"i": since[0]})],
        "new_alias_order": [tuple(r) for r in conn.execute(
            text("SELECT address_code, normalized_alias FROM address_alias WHERE id > :i ORDER BY id"),
            {"i": since[1]})],
    }


def _max_ids(conn) -> tuple[int, int]:
    return (conn.execute(text("SELECT coalesce(max(id), 0) FROM standard_address")).scalar_one(),
            conn.execute(text("SELECT coalesce(max(id), 0) FROM address_alias")).scalar_one())


def _drift(conn) -> None:
    """The registry drifts from what the data implies (deterministically): every kind of fate apply_plan has."""
    def codes(level: str, n: int, offset: int) -> list[str]:
        return list(conn.execute(text(
            "SELECT code FROM standard_address WHERE valid_to IS NULL AND level = :l AND changed_by = :by "
            "ORDER BY code OFFSET :o LIMIT :n"), {"l": level, "n": n, "o": offset, "by": store.BUILD_USER}).scalars())

    gone = codes("room", 30, 0) + codes("house_number", 5, 40)
    conn.execute(text("DELETE FROM standard_address WHERE code = ANY(:c)"), {"c": gone})  # → created
    moved = codes("building", 25, 0)
    conn.execute(text("UPDATE standard_address SET geom = ST_Translate(geom, 0.00002, 0) "
                      "WHERE valid_to IS NULL AND code = ANY(:c)"), {"c": moved})  # → updated
    conn.execute(text("UPDATE standard_address SET source = 'import' "
                      "WHERE valid_to IS NULL AND code = ANY(:c)"), {"c": codes("floor", 10, 0)})  # → updated
    conn.execute(text("UPDATE standard_address SET area = ST_Multi(ST_Translate(area, 0.00001, 0)) "
                      "WHERE valid_to IS NULL AND code = ANY(:c)"), {"c": codes("compound", 3, 0)})  # → updated
    conn.execute(text("UPDATE standard_address SET changed_by = 'manual-editor', geom = NULL "
                      "WHERE valid_to IS NULL AND code = ANY(:c)"), {"c": codes("unit", 5, 0)})  # → kept
    conn.execute(text("UPDATE standard_address SET status = 'retired' "
                      "WHERE valid_to IS NULL AND code = ANY(:c)"), {"c": codes("room", 5, 100)})  # → kept
    # a room gone, its text now held by another room: the plan's room is skipped as a duplicate text
    for gone_room, holder in zip(codes("room", 3, 200), codes("room", 3, 300), strict=True):
        gone = conn.execute(text("SELECT components, full_text, normalized_text FROM standard_address "
                                 "WHERE code = :g AND valid_to IS NULL"), {"g": gone_room}).one()
        conn.execute(text("DELETE FROM standard_address WHERE code = :g"), {"g": gone_room})
        conn.execute(text("UPDATE standard_address SET components = CAST(:c AS jsonb), full_text = :f, "
                          "normalized_text = :n WHERE code = :h AND valid_to IS NULL"),
                     {"c": json.dumps(gone.components, ensure_ascii=False), "f": gone.full_text,
                      "n": gone.normalized_text, "h": holder})
    conn.execute(text("DELETE FROM address_alias WHERE id IN (SELECT id FROM address_alias ORDER BY id LIMIT 40)"))


def _build_both(engine, client, prepare) -> tuple[dict, dict, dict, dict]:
    """(stats, registry) after the one-process build and after the worker-written one, each from the state
    ``prepare(conn)`` leaves, each in a transaction rolled back after."""
    out = []
    for workers_write in (False, True):
        with store.registry_staging(engine) as staging, engine.connect() as conn:
            trans = conn.begin()
            try:
                prepare(conn)
                since = _max_ids(conn)
                if workers_write:
                    stats = build_registry_staged(conn, staging, client=client)
                    # the staged rows were moved and the staging dropped in this transaction
                    assert staging.records not in store.staging_tables(conn)
                else:
                    stats = build_registry(conn)
                out += [stats, _state(conn, since)]
            finally:
                trans.rollback()
    return out[0], out[1], out[2], out[3]


def test_workers_write_the_registry_address_build_writes(engine, registry, dask_client):
    with engine.connect() as conn:
        before = _state(conn, _max_ids(conn))
    assert len(dask_client.scheduler_info()["workers"]) == 2
    # rebuilt over a registry that drifted
    one, one_reg, staged, staged_reg = _build_both(engine, dask_client, _drift)
    assert staged == one
    assert staged_reg == one_reg
    for key in ("created", "updated", "unchanged", "kept_manual_or_retired", "skipped_duplicate_text",
                "aliases_created"):
        assert one[key] > 0, key
    assert one["created"] >= 35 and one["updated"] >= 30 and one["kept_manual_or_retired"] >= 10
    assert len(staged_reg["new_order"]) == one["created"] + one["updated"]

    # from scratch
    def empty(conn) -> None:
        conn.execute(text("DELETE FROM address_alias"))
        conn.execute(text("DELETE FROM standard_address"))

    one, one_reg, staged, staged_reg = _build_both(engine, dask_client, empty)
    assert staged == one
    assert staged_reg == one_reg
    assert one["created"] == len(one_reg["versions"]) > 5_000 and "updated" not in one
    assert one["aliases_created"] == len(one_reg["aliases"]) > 100
    with engine.connect() as conn:
        assert _state(conn, _max_ids(conn))["versions"] == before["versions"]  # both rolled back
        assert store.staging_tables(conn) == []


def _bad_partitions(hp):
    """The partitions, the last one broken: its last house's building gets an id no bigint column takes, so
    that task's COPY fails on its last records, after the other tasks have staged theirs."""
    parts = emission_partitions(hp)
    bad = parts[-1]
    i, ((street, number), members) = bad.houses[-1]
    b = next(b for b, _, _ in members if b is not None)
    broken = dataclasses.replace(b, id="not-a-building-id")
    bad.metres[broken.id] = bad.metres[b.id]
    members = [(broken if m is b else m, p, s) for m, p, s in members]
    bad.houses[-1] = (i, ((street, number), members))
    return parts


def test_a_worker_failing_midway_leaves_the_registry_as_it_was(engine, registry, dask_client):
    with engine.connect() as conn:
        before = _state(conn, _max_ids(conn))
        ids = _max_ids(conn)
        stamp = store.stamp(conn)
    with pytest.raises(Exception, match="not-a-building-id|bigint"):
        with store.registry_staging(engine) as staging, engine.begin() as conn:
            build_registry_staged(conn, staging, client=dask_client,
                                  stage=partial(stage_registry_on_dask, partitions=_bad_partitions))
    with engine.connect() as conn:
        assert _state(conn, ids) == before
        assert store.stamp(conn) == stamp
        assert store.staging_tables(conn) == []
