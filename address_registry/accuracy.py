"""The accuracy radius of a geocoding answer: metres around the answered point that hold the true place.

Every answer carries ``accuracy`` (how the point was found) and ``radius_m``. A radius is
``FACTOR[kind] * (BASE_M[kind] + SPREAD[kind] * evidence_m)`` where the evidence is, per kind:

| kind | the point is | evidence |
|---|---|---|
| `surveyed` | a house number / building from OSM, an import or a manual entry | its footprints' extent from the point (m) |
| `named` | the footprint that carries the building / POI name asked for | the same |
| `generated` | a number from the odd / even rule on a road without real numbers | — |
| `interpolated` | between two known numbers | the distance between those two anchors (m) |
| `extrapolated` | beyond the known numbers, ≤ 150 m from the nearest | that distance + half the road's usual anchor spacing (m) |
| `road_stretch` | the stretch of road where the number should be | the same, farther than 150 m or off the road's end |
| `road` | the road's own point (no number asked) | half the road's length (m) |
| `compound` | the compound's label point | farthest corner of its area (m) |
| `district` / `township` / `community` | the unit's point on surface | — (the radius is the farthest corner of its polygon when known, else the level's default) |

The (base, spread) of `interpolated`, `extrapolated` and `road_stretch` were calibrated on fold A of
the leave-one-out set (`benchmarks/bench_geocode.py --accuracy-only` prints them: split-conformal, scores
distance / (25 m + evidence), q their ceil((n + 1) * 0.9)-th smallest, radius = q * (25 m + evidence));
fold B is reported as the held-out figure. The others are set by hand (the leave-one-out set cannot measure them) and say so in
docs/address-registry.md.
"""

from __future__ import annotations

# (base, spread) per kind: radius = base + spread * evidence. The estimate kinds (interpolated,
# extrapolated, road_stretch) come from `bench_geocode.py` (split-conformal on fold A); the rest by hand.
MODEL: dict[str, tuple[float, float]] = {
    "surveyed": (10.0, 1.0),
    "named": (10.0, 1.0),
    "generated": (250.0, 0.0),
    "interpolated": (15.6, 0.625),
    "extrapolated": (106.3, 4.253),
    "road_stretch": (25.4, 1.018),
    "road": (50.0, 1.0),
    "compound": (30.0, 1.0),
    "community": (800.0, 0.0),
    "township": (2000.0, 0.0),
    "district": (5000.0, 0.0),
}
# kinds whose answers are at house level (the median house-level radius is taken over them)
HOUSE_KINDS = ("surveyed", "named", "generated", "interpolated", "extrapolated")


def radius_m(kind: str, evidence_m: float = 0.0, model: dict[str, tuple[float, float]] | None = None) -> int:
    """The accuracy radius in whole metres of an answer of ``kind`` with ``evidence_m`` (see above)."""
    base, spread = (model or MODEL).get(kind) or MODEL.get(kind, (100.0, 0.0))
    return int(round(base + spread * evidence_m))
