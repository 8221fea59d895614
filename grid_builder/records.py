"""Plain records shared by the pure core and the store (no logic beyond a few derived measures).

Inputs read from the database (`RoadIn`, `BuildingRec`, lon/lat), the metric building of the core
(`BuildingIn`) and its output unit (`Area`: a grid or a micro-grid).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shapely.geometry.base import BaseGeometry

from grid_builder.geom import n_parts, polsby_popper


@dataclass
class RoadIn:
    """A road of the base layer (lon/lat), with the OSM tags that decide whether it bounds a block."""

    kind: str
    geom: BaseGeometry  # lon/lat
    name: str | None = None
    tags: dict | None = None


@dataclass
class BuildingRec:
    """A building of the base layer (lon/lat) with its household count."""

    id: int
    geom: BaseGeometry  # lon/lat
    households: int


@dataclass
class BuildingIn:
    """A building as the pure core sees it: metric footprint and (fractional) households."""

    id: int
    geom: BaseGeometry  # metric footprint
    households: float


@dataclass
class Area:
    """A grid or micro-grid built by the core (metric geometry, the buildings it holds)."""

    code: str
    level: str  # grid | microgrid
    parent_code: str
    geom: BaseGeometry  # metric MultiPolygon
    households: float
    building_ids: list[int]
    flags: list[str] = field(default_factory=list)
    # a micro-grid that is a range of units (单元) of one large building: {"building_id", "units": [first,
    # last] (household ordinals, 1-based), "part", "parts", "unit_households"}; None for whole buildings
    part: dict | None = None

    @property
    def area_m2(self) -> float:
        """Area in m² (the geometry is metric)."""
        return self.geom.area

    @property
    def compactness(self) -> float:
        """Polsby-Popper compactness (1 = a circle)."""
        return polsby_popper(self.geom)

    @property
    def contiguous(self) -> bool:
        """True when the area is one piece (parts closer than a few centimetres count as one)."""
        return n_parts(self.geom) <= 1


__all__ = ["Area", "BuildingIn", "BuildingRec", "RoadIn"]
