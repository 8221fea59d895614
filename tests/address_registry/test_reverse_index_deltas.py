"""The in-memory reverse index's address points under registry deltas (address_registry/reverse_index.py):
after removals, moves and additions — masked in the tree, kept in the overlay, and after the overlay forces a
rebuild — the KNN candidates are exactly the brute-force nearest of the current points (planar degrees, as
PostGIS's ``<->``), and each footprint's addresses are the current ones. On the demo registry's records."""

from __future__ import annotations

import dataclasses
import random

import numpy as np

from address_registry import reverse_index
from address_registry.reverse_index import PointIndex


def _brute(current: dict, lon: float, lat: float, kk: int) -> list[float]:
    d = sorted(float(np.hypot(r.lon - lon, r.lat - lat)) for r in current.values())
    return d[:kk]


def _check(index: PointIndex, current: dict, rng: random.Random, lons, lats) -> None:
    assert len(index) == len(current)
    for _ in range(40):
        lon, lat = rng.uniform(*lons), rng.uniform(*lats)
        got = index.candidates(lon, lat, 24)
        assert all(r.code in current and current[r.code] is r for r in got)
        assert [float(np.hypot(r.lon - lon, r.lat - lat)) for r in got] == _brute(current, lon, lat, 24)
    by_building: dict[int, set[str]] = {}
    for r in current.values():
        if r.building_id is not None:
            by_building.setdefault(r.building_id, set()).add(r.code)
    assert {b: {r.code for r in recs} for b, recs in index.by_building.items()} == by_building


def test_points_stay_exact_under_deltas(geocoder, monkeypatch):
    rng = random.Random(14)
    records = [r for r in geocoder.by_code.values() if r.level in ("house_number", "building") and r.lon is not None]
    assert len(records) > 1000
    current = {r.code: r for r in records}
    lons = (min(r.lon for r in records), max(r.lon for r in records))
    lats = (min(r.lat for r in records), max(r.lat for r in records))
    index = PointIndex(geocoder.by_code.values())  # every level given: only house numbers and buildings kept
    _check(index, current, rng, lons, lats)
    builds = []
    real_points = reverse_index._points
    monkeypatch.setattr(reverse_index, "_points", lambda recs: builds.append(1) or real_points(recs))
    monkeypatch.setattr(reverse_index, "OVERLAY_MAX", 150)
    monkeypatch.setattr(reverse_index, "OVERLAY_SHARE", 0.0)
    serial = 0
    for _round in range(6):  # ~60 changes a round: the overlay passes 150 in the third and the tree is rebuilt
        removed = rng.sample(sorted(current), 20)
        moved = [dataclasses.replace(current[c], lon=current[c].lon + rng.uniform(-1e-3, 1e-3),
                                     lat=current[c].lat + rng.uniform(-1e-3, 1e-3))
                 for c in rng.sample(sorted(set(current) - set(removed)), 20)]
        retired = [dataclasses.replace(current[c], status="retired")
                   for c in rng.sample(sorted(set(current) - set(removed) - {m.code for m in moved}), 5)]
        added = []
        for base in rng.sample(records, 15):
            serial += 1
            added.append(dataclasses.replace(base, code=f"T{serial:019d}", lon=base.lon + 2e-4, lat=base.lat))
        index.apply(moved + retired + added, removed)
        for c in removed:
            current.pop(c, None)
        for r in retired:
            current.pop(r.code, None)
        current.update((r.code, r) for r in moved + added)
        _check(index, current, rng, lons, lats)
    assert builds and len(index._state.overlay) <= 150  # the tree was rebuilt on the way, the overlay kept small
