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
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from address_registry.build import (
    LanduseIn,
    RegistryPlan,
    emission_partitions,
    emit_partition,
    finish_plan,
    merge_emitted,
    plan_houses,
)
from address_registry.records import AddressRecord
from geo.cluster import run_partitions


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


__all__ = ["plan_registry_on_dask"]
