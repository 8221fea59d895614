"""The registry of many districts planned on Dask (issue 14 §3), equal to the one-process plan.

`plan_registry` has four stages. Roads (one address per road name across districts), the placing of house
numbers (a road's numbers need all of its buildings) and the compound records (a few hundred) see the whole
area and run on the driver. The records of the houses, their buildings and the units, floors and rooms of
every block of flats — the bulk of the work and of the codes issued — and the compound each of them falls in
split by district: a house's codes lie under its road and its road under one district, so each district's
partition issues the codes the one-process plan would (`address_registry.build.emission_partitions`). The
driver merges the partitions' records in the one-process order. The partitions go to the cluster of
`geo.cluster` (a LocalCluster by default, a scheduler or the caller's client), or run in this process with
``workers=0``.

`stage_registry_on_dask` is the same plan written by the workers (`shequ province registry --writer worker`):
each district's task COPYs its records and aliases into the run's staging tables with its own connection
(`geo.cluster.worker_engine`) and answers only with counts; the driver stages its roads and compounds, and
`store.apply_staged` moves everything into the registry in the driver's one transaction, with
`store.apply_plan`'s semantics (`address_registry.store.staging`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Connection

from address_registry.build import (
    EmitPartition,
    EmitShared,
    HousePlan,
    LanduseIn,
    RegistryPlan,
    emission_partitions,
    emit_partition,
    emit_records,
    finish_plan,
    merge_emitted,
    plan_houses,
)
from address_registry.records import AddressRecord
from address_registry.store.staging import DRIVER_PART, Staging, stage_chunks
from geo.cluster import run_partitions, worker_engine


def plan_registry_on_dask(
    *,
    landuse: Sequence[LanduseIn] = (),
    existing: Sequence[AddressRecord] = (),
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
    **inputs: Any,
) -> RegistryPlan:
    """`plan_registry(existing=…, landuse=…, **inputs)` with stage 3 run per district on Dask: the same plan
    (records, codes, order, aliases and counts)."""
    hp = plan_houses(existing=existing, landuse=landuse, **inputs)
    parts = emission_partitions(hp)
    results = run_partitions(emit_partition, parts, workers=workers, scheduler=scheduler, client=client,
                             shared=hp.shared)
    merge_emitted(hp, results)
    return finish_plan(hp)


@dataclass
class StagedPart:
    """What a district's task answers when it writes its records itself: its counts, nothing else."""

    district: str
    stats: dict[str, int]
    records: int
    aliases: int


@dataclass
class StagedPlan:
    """The plan staged for `store.apply_staged`: its counts (as `RegistryPlan.stats`), the (records, aliases)
    each part staged, and how many records were planned."""

    stats: dict[str, int]
    expected: dict[str, tuple[int, int]]
    planned: int


def stage_partition(shared: EmitShared, part: EmitPartition, staging: Staging) -> StagedPart:
    """A worker's task: stage 3 of one district (`build.emit_records`), its records and aliases COPYed into
    the run's staging tables with the worker's own connection, in one transaction; the counts back."""
    state, bounds = emit_records(shared, part)
    chunks = [(i, state.records[r0:r1], state.aliases[a0:a1]) for i, r0, r1, a0, a1 in bounds]
    with worker_engine().begin() as conn:
        n_rec, n_alias = stage_chunks(conn, staging, part.district, chunks)
    return StagedPart(part.district, dict(state.stats), n_rec, n_alias)


def stage_registry_on_dask(
    conn: Connection,
    staging: Staging,
    *,
    landuse: Sequence[LanduseIn] = (),
    existing: Sequence[AddressRecord] = (),
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
    partitions: Callable[[HousePlan], list[EmitPartition]] = emission_partitions,
    **inputs: Any,
) -> StagedPlan:
    """`plan_registry_on_dask` with the records written into ``staging`` instead of sent back: the driver's
    roads and compounds staged in ``conn``'s transaction, every district's records by its task (on the
    workers' own connections, committed: ``staging`` must be committed before). ``partitions`` cuts stage 3
    (`build.emission_partitions`). Apply with `store.apply_staged(conn, staging, plan.expected)`."""
    hp = plan_houses(existing=existing, landuse=landuse, **inputs)
    parts = partitions(hp)
    state = hp.state
    # the plan's order: the roads of stage 1, every house at its place (o1), the compounds after the houses
    driver = [(-1, list(state.records), list(state.aliases)),
              (len(hp.ordered), hp.compounds, hp.compound_aliases)]
    expected = {DRIVER_PART: stage_chunks(conn, staging, DRIVER_PART, driver)}
    results = run_partitions(stage_partition, parts, staging, workers=workers, scheduler=scheduler, client=client,
                             shared=hp.shared)
    stats: dict[str, int] = defaultdict(int, state.stats)
    for r in results:
        expected[r.district] = (r.records, r.aliases)
        for key, n in r.stats.items():
            stats[key] += n
    stats["compound"] = len(hp.compounds)
    stats["in_compound"] += 0  # as finish_plan: present (0) when nothing is in a compound
    return StagedPlan(dict(stats), expected, sum(n for n, _ in expected.values()))


__all__ = ["StagedPart", "StagedPlan", "plan_registry_on_dask", "stage_partition", "stage_registry_on_dask"]
