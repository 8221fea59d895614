"""The accuracy radius of a geocoding answer: metres around the answered point that hold the true place.

Every answer carries ``accuracy`` (how the point was found) and ``radius_m``. A radius is
``FACTOR[kind] * (BASE_M[kind] + SPREAD[kind] * evidence_m)`` where the evidence is, per kind:

| kind | the point is | evidence |
|---|---|---|
| `surveyed` | a house number / building from OSM, an import or a manual entry | — |
| `named` | the footprint that carries the building / POI name asked for | — |
| `generated` | a number from the odd / even rule on a road without real numbers | — |
| `interpolated` | between two known numbers | the gap between them along the road (m) |
| `extrapolated` | beyond the known numbers, ≤ 150 m from the nearest | that distance (m) |
| `road_stretch` | the stretch of road where the number should be | distance from the nearest anchor (m) |
| `road` | the road's own point (no number asked) | half the road's length (m) |
| `compound` | the compound's label point | farthest corner of its area (m) |
| `district` / `township` / `community` | the unit's point on surface | — |

The factors of `interpolated`, `extrapolated` and `road_stretch` were calibrated on fold A of the
leave-one-out set (`benchmarks/bench_geocode.py --calibrate`: the smallest factor that puts the true
point inside the radius for ≥ 90 % of fold A's answers of that kind); fold B is reported as the
held-out figure. The others are set by hand (the leave-one-out set cannot measure them) and say so in
docs/address-registry.md.
"""

from __future__ import annotations

BASE_M = {
    "surveyed": 40.0,
    "named": 40.0,
    "generated": 250.0,
    "interpolated": 15.0,
    "extrapolated": 25.0,
    "road_stretch": 50.0,
    "road": 50.0,
    "compound": 30.0,
    "community": 800.0,
    "township": 2000.0,
    "district": 5000.0,
}
SPREAD = {
    "interpolated": 0.5,
    "extrapolated": 1.0,
    "road_stretch": 1.0,
    "road": 1.0,
    "compound": 1.0,
}
FACTOR = {
    "interpolated": 1.0,
    "extrapolated": 1.0,
    "road_stretch": 1.0,
}
# kinds whose answers are at house level (the median house-level radius is taken over them)
HOUSE_KINDS = ("surveyed", "named", "generated", "interpolated", "extrapolated")


def radius_m(kind: str, evidence_m: float = 0.0, factors: dict[str, float] | None = None) -> int:
    """The accuracy radius in whole metres of an answer of ``kind`` with ``evidence_m`` (see above)."""
    f = (factors or FACTOR).get(kind, 1.0)
    return int(round(f * (BASE_M.get(kind, 100.0) + SPREAD.get(kind, 0.0) * evidence_m)))
