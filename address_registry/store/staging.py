"""The registry build written by the Dask workers (issue 14 §3): staging tables, the workers' COPY, one commit.

`shequ province registry --writer worker` does not send the records back to the driver. Each district's task
COPYs its records and aliases (psycopg 3 ``copy``) into two UNLOGGED staging tables made for this run
(:func:`registry_staging`: created and committed before the tasks start, so the workers' connections see them;
dropped when the run ends, whatever happened) and answers with counts. The driver stages its own few records
(the roads of stage 1 and the compounds) the same way, inside its transaction, and then :func:`apply_staged`
moves the staged rows into `standard_address` and `address_alias` with ``INSERT … SELECT`` in that one
transaction, with the semantics of `store.apply_plan` row for row:

- the plan's order is the staged ``(o1, o2)``: the driver's roads (``o1 = -1``), then every house's records at
  its place in the one-process order (``o1`` = the house's index, ``o2`` = the record's index in it), then the
  compounds (``o1`` = the number of houses). New rows are inserted in that order, as `apply_plan` inserts them.
- an active full text belongs to its current owner; else to the first staged record (in that order) that
  has it: every other record with that text is ``skipped_duplicate_text`` (apply_plan's ``active_text``).
- a code without a current version is ``created`` (version 1); a current version that is retired or last
  written by a person is ``kept_manual_or_retired``; one with the same content (`writing.same_content`: every
  stored field, points to 7 decimals, areas at 1e-7 normalised) is ``unchanged``; any other is ``updated``:
  closed (valid_to = now()) and followed by version + 1. Same change reasons, same changed_by.
- aliases: those whose normalised text is empty or the name of a planned road dropped (`build._plan`), those
  of a code neither planned nor in the registry dropped; the first of each (code, text) in plan order is
  inserted unless a current alias has it (``aliases_created``).

One difference in arithmetic, not in meaning: the 7-decimal comparison of points is PostgreSQL's
``round(numeric, 7)`` (of the 15 significant digits a float8 casts to), not Python's ``round``; the two can
disagree only for a coordinate within ~1e-13 of a half of the 7th decimal.

All or nothing: the workers write only the staging tables; the registry changes only in the driver's
transaction, which a failing task aborts (the exception reaches the driver); the staging is dropped in that
transaction when it commits, and again (IF EXISTS) after it ends, so a failed run leaves none behind. A task
that Dask runs again replaces its district's staged rows (delete + COPY in one transaction, under an advisory
lock), and the driver checks the staged counts against the counts the tasks answered before it writes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import shapely
from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine

from address_registry.errors import RegistryError
from address_registry.records import AddressRecord, AliasRecord
from address_registry.store.writing import BUILD_CREATED_REASON, BUILD_UPDATED_REASON, BUILD_USER
from address_registry.textnorm import normalize_text

#: staging tables of a run are named ``registry_stage_<hex>`` and ``registry_stage_<hex>_alias``
STAGE_PREFIX = "registry_stage_"
#: ``part`` of the rows the driver stages itself
DRIVER_PART = ""

_REC_COLUMNS = ("part", "o1", "o2", "code", "level", "parent_code", "district_code", "township_code",
                "community_code", "components", "full_text", "normalized_text", "lon", "lat", "building_id",
                "source", "status", "compound_code", "area", "related_codes", "road_key")
_ALIAS_COLUMNS = ("part", "o1", "o2", "address_code", "alias", "normalized_alias", "kind", "source")


@dataclass(frozen=True)
class Staging:
    """The staging tables of one run (names made here, never from input)."""

    records: str
    aliases: str


def new_staging() -> Staging:
    """Fresh, unique table names for one run."""
    name = STAGE_PREFIX + uuid.uuid4().hex[:16]
    return Staging(name, name + "_alias")


def create_staging(engine: Engine, staging: Staging) -> None:
    """Create the run's UNLOGGED staging tables and commit (the workers' connections must see them)."""
    with engine.begin() as conn:
        conn.execute(text(f"""CREATE UNLOGGED TABLE {staging.records} (
            part text NOT NULL, o1 bigint NOT NULL, o2 integer NOT NULL, code text NOT NULL, level text NOT NULL,
            parent_code text, district_code text, township_code text, community_code text,
            components jsonb NOT NULL, full_text text NOT NULL, normalized_text text NOT NULL,
            lon float8, lat float8, building_id bigint, source text NOT NULL, status text NOT NULL,
            compound_code text, area geometry, related_codes text[] NOT NULL, road_key text)"""))
        conn.execute(text(f"""CREATE UNLOGGED TABLE {staging.aliases} (
            part text NOT NULL, o1 bigint NOT NULL, o2 integer NOT NULL, address_code text NOT NULL,
            alias text NOT NULL, normalized_alias text NOT NULL, kind text NOT NULL, source text NOT NULL)"""))


def drop_staging(engine: Engine, staging: Staging) -> None:
    """Drop the run's staging tables (if still there)."""
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE IF EXISTS {staging.records}, {staging.aliases}"))


@contextmanager
def registry_staging(engine: Engine) -> Iterator[Staging]:
    """Staging tables for one run, dropped when the block ends (open the registry's transaction inside it)."""
    staging = new_staging()
    create_staging(engine, staging)
    try:
        yield staging
    finally:
        drop_staging(engine, staging)


def staging_tables(conn: Connection) -> list[str]:
    """The staging tables present in the database (none once every run has ended)."""
    return list(conn.execute(text(
        "SELECT tablename FROM pg_tables WHERE tablename LIKE :p ORDER BY tablename"),
        {"p": STAGE_PREFIX.replace("_", r"\_") + "%"}).scalars())


def _record_row(part: str, o1: int, o2: int, rec: AddressRecord) -> tuple:
    area = None
    if rec.area is not None:  # EWKB, as PostGIS reads it from COPY text
        area = shapely.to_wkb(shapely.set_srid(rec.area, 4326), hex=True, include_srid=True)
    return (
        part, o1, o2, rec.code, rec.level, rec.parent_code, rec.district_code, rec.township_code,
        rec.community_code, json.dumps(rec.components, ensure_ascii=False), rec.formatted, rec.normalized,
        rec.lon, rec.lat, rec.building_id, rec.source, rec.status, rec.compound_code, area,
        list((rec.extra or {}).get("related_codes", [])),
        normalize_text(rec.components.get("road") or "") if rec.level == "road" else None,
    )


def _alias_row(part: str, o1: int, o2: int, a: AliasRecord) -> tuple:
    return (part, o1, o2, a.address_code, a.alias, normalize_text(a.alias), a.kind, a.source)


#: one staged chunk: (o1, its records, its aliases) — records and aliases numbered o2 = 0, 1, … within it
Chunk = tuple[int, Sequence[AddressRecord], Sequence[AliasRecord]]


def stage_chunks(conn: Connection, staging: Staging, part: str, chunks: Iterable[Chunk]) -> tuple[int, int]:
    """Replace the staged rows of ``part`` by ``chunks`` (COPY, in ``conn``'s transaction): (records, aliases)."""
    # a district's COPY is one statement of up to ~10⁶ rows: not bounded by the API's statement timeout
    conn.execute(text("SET LOCAL statement_timeout = 0"))
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"{staging.records}/{part}"})
    conn.execute(text(f"DELETE FROM {staging.records} WHERE part = :p"), {"p": part})
    conn.execute(text(f"DELETE FROM {staging.aliases} WHERE part = :p"), {"p": part})
    chunks = list(chunks)
    raw = conn.connection.driver_connection
    assert raw is not None
    n_rec = n_alias = 0
    with raw.cursor() as cur:
        with cur.copy(f"COPY {staging.records} ({', '.join(_REC_COLUMNS)}) FROM STDIN") as copy:
            for o1, recs, _ in chunks:
                for o2, rec in enumerate(recs):
                    copy.write_row(_record_row(part, o1, o2, rec))
                    n_rec += 1
        with cur.copy(f"COPY {staging.aliases} ({', '.join(_ALIAS_COLUMNS)}) FROM STDIN") as copy:
            for o1, _, aliases in chunks:
                for o2, a in enumerate(aliases):
                    copy.write_row(_alias_row(part, o1, o2, a))
                    n_alias += 1
    return n_rec, n_alias


def apply_staged(conn: Connection, staging: Staging, expected: dict[str, tuple[int, int]]) -> dict[str, int]:
    """Write the staged plan into the registry in ``conn``'s transaction (`store.apply_plan`'s semantics, see
    the module), after checking that every part staged the (records, aliases) it announced in ``expected``;
    drop the staging tables in the same transaction. The counts, as `apply_plan` returns them."""
    got = {p: (int(n), 0) for p, n in conn.execute(
        text(f"SELECT part, count(*) FROM {staging.records} GROUP BY part"))}
    for p, n in conn.execute(text(f"SELECT part, count(*) FROM {staging.aliases} GROUP BY part")):
        got[p] = (got.get(p, (0, 0))[0], int(n))
    want = {p: c for p, c in expected.items() if c != (0, 0)}
    if got != want:
        raise RegistryError(
            f"暂存的地址与各分区报告的不符 the staged rows do not match the partitions' counts: {got} ≠ {want}")
    rec, ali = staging.records, staging.aliases
    # the whole registry in a few statements (10⁶ rows took more than the API's 60 s): a batch job's transaction
    conn.execute(text("SET LOCAL statement_timeout = 0"))
    conn.execute(text("DROP TABLE IF EXISTS _registry_plan"))
    # the plan's fate, row by row: skipped (another owns the text), or the current version it meets
    conn.execute(text(f"""
        CREATE TEMP TABLE _registry_plan ON COMMIT DROP AS
        SELECT s.*,
            coalesce(o.code, f.code) <> s.code AS skipped,
            c.code IS NOT NULL AS exists_now,
            c.version AS old_version,
            (c.status <> 'active' OR c.changed_by <> :by) AS kept,
            (c.level = s.level AND c.parent_code IS NOT DISTINCT FROM s.parent_code
             AND c.district_code IS NOT DISTINCT FROM s.district_code
             AND c.township_code IS NOT DISTINCT FROM s.township_code
             AND c.community_code IS NOT DISTINCT FROM s.community_code
             AND c.compound_code IS NOT DISTINCT FROM s.compound_code
             AND c.components = s.components AND c.building_id IS NOT DISTINCT FROM s.building_id
             AND c.source = s.source
             AND ((c.geom IS NULL AND s.lon IS NULL) OR (c.geom IS NOT NULL AND s.lon IS NOT NULL
                  AND round(ST_X(c.geom)::numeric, 7) = round(s.lon::numeric, 7)
                  AND round(ST_Y(c.geom)::numeric, 7) = round(s.lat::numeric, 7)))
             AND ((c.area IS NULL AND s.area IS NULL) OR (c.area IS NOT NULL AND s.area IS NOT NULL
                  AND ST_OrderingEquals(ST_Normalize(ST_ReducePrecision(c.area, 1e-7)),
                                        ST_Normalize(ST_ReducePrecision(s.area, 1e-7)))))) AS same
        FROM {rec} s
        LEFT JOIN standard_address o
            ON o.normalized_text = s.normalized_text AND o.valid_to IS NULL AND o.status = 'active'
        LEFT JOIN (SELECT DISTINCT ON (normalized_text) normalized_text, code FROM {rec}
                   ORDER BY normalized_text, o1, o2) f ON f.normalized_text = s.normalized_text
        LEFT JOIN standard_address c ON c.code = s.code AND c.valid_to IS NULL"""), {"by": BUILD_USER})
    counts: dict[str, int] = {}
    for key, n in conn.execute(text("""
        SELECT CASE WHEN skipped THEN 'skipped_duplicate_text' WHEN NOT exists_now THEN 'created'
                    WHEN kept THEN 'kept_manual_or_retired' WHEN same THEN 'unchanged' ELSE 'updated' END, count(*)
        FROM _registry_plan GROUP BY 1""")):
        counts[key] = int(n)
    conn.execute(text("""
        UPDATE standard_address a SET valid_to = now() FROM _registry_plan p
        WHERE a.code = p.code AND a.valid_to IS NULL
          AND NOT p.skipped AND p.exists_now AND NOT p.kept AND NOT p.same"""))
    conn.execute(text("""
        INSERT INTO standard_address (code, version, level, parent_code, district_code, township_code,
            community_code, components, full_text, normalized_text, geom, building_id, source, status,
            changed_by, change_reason, related_codes, compound_code, area)
        SELECT code, CASE WHEN exists_now THEN old_version + 1 ELSE 1 END, level, parent_code, district_code,
            township_code, community_code, components, full_text, normalized_text,
            CASE WHEN lon IS NULL THEN NULL ELSE ST_SetSRID(ST_MakePoint(lon, lat), 4326) END,
            building_id, source, status, :by,
            CASE WHEN exists_now THEN :updated ELSE :created END, related_codes, compound_code,
            ST_Multi(area)
        FROM _registry_plan
        WHERE NOT skipped AND (NOT exists_now OR (NOT kept AND NOT same))
        ORDER BY o1, o2"""), {"by": BUILD_USER, "updated": BUILD_UPDATED_REASON, "created": BUILD_CREATED_REASON})
    created = conn.execute(text(f"""
        INSERT INTO address_alias (address_code, alias, normalized_alias, kind, source, changed_by)
        SELECT address_code, alias, normalized_alias, kind, source, :by FROM (
            SELECT DISTINCT ON (address_code, normalized_alias) * FROM {ali} a
            WHERE normalized_alias <> ''
              AND normalized_alias NOT IN (SELECT road_key FROM {rec} WHERE road_key IS NOT NULL)
              AND (EXISTS (SELECT 1 FROM {rec} r WHERE r.code = a.address_code)
                   OR EXISTS (SELECT 1 FROM standard_address x WHERE x.code = a.address_code AND x.valid_to IS NULL))
            ORDER BY address_code, normalized_alias, o1, o2) first_of_each
        ORDER BY o1, o2
        ON CONFLICT (address_code, normalized_alias) WHERE valid_to IS NULL DO NOTHING"""), {"by": BUILD_USER}).rowcount
    if created:
        counts["aliases_created"] = created
    conn.execute(text(f"DROP TABLE {rec}, {ali}"))
    conn.execute(text("DROP TABLE _registry_plan"))
    return counts


__all__ = [
    "Staging",
    "apply_staged",
    "create_staging",
    "drop_staging",
    "new_staging",
    "registry_staging",
    "stage_chunks",
    "staging_tables",
]
