"""Real points of the demo registry at which reverse geocoding is compared (inside footprints, a few metres
outside, a lattice over the city, in the built grids, in compounds, on address points, outside the city),
shared by the reverse tests of tests/address_registry."""

from __future__ import annotations

import random

from sqlalchemy import text


def reverse_points(conn, on_points: bool = True) -> dict[str, list[tuple[float, float]]]:
    """Real points of the demo, by kind, seeded. ``on_points``: also points exactly on building records' points,
    where a house number and its building tie on distance (a tie the statement-by-statement path may break
    otherwise than the one statement)."""
    rng = random.Random(14)
    inside = conn.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(b.geom) p FROM building b
        WHERE EXISTS (SELECT 1 FROM standard_address s WHERE s.building_id = b.id AND s.valid_to IS NULL)
        ORDER BY b.id) q""")).all()
    # 1–4.5 m outward from a corner of the footprint (away from its centroid): the "within 5 m" tolerance
    near = conn.execute(text("""SELECT ST_X(q), ST_Y(q) FROM (
        SELECT ST_Project(c::geography, 1 + (b.id % 8) * 0.5, ST_Azimuth(ST_Centroid(b.geom), c))::geometry q
        FROM (SELECT id, geom, ST_PointN(ST_ExteriorRing(ST_GeometryN(geom, 1)), 1) c FROM building) b
        ORDER BY b.id) z""")).all()
    x0, y0, x1, y1 = conn.execute(text(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_Extent(geom) e FROM building) q")).one()
    lattice = [(x0 + (x1 - x0) * (i + 0.5) / 16, y0 + (y1 - y0) * (j + 0.5) / 16) for i in range(16) for j in range(16)]
    gridded = conn.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM grid
        WHERE valid_to IS NULL ORDER BY code) q""")).all()
    compounds = conn.execute(text("""SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(area) p
        FROM standard_address WHERE valid_to IS NULL AND level = 'compound' AND area IS NOT NULL ORDER BY code) q""")).all()
    # exactly on address points: a house number and its building record at one spot tie on distance
    on = conn.execute(text("""SELECT ST_X(geom), ST_Y(geom) FROM standard_address
        WHERE valid_to IS NULL AND status = 'active' AND level = 'building' AND geom IS NOT NULL ORDER BY code""")).all()
    return {
        "inside": rng.sample([tuple(r) for r in inside], min(80, len(inside))),
        "near": rng.sample([tuple(r) for r in near], min(80, len(near))),
        "lattice": lattice,
        "gridded": [tuple(r) for r in gridded][:60],
        "compound": [tuple(r) for r in compounds],
        **({"on_points": rng.sample([tuple(r) for r in on], min(20, len(on)))} if on_points else {}),
        # in China, far from the city: no admin unit, no grid, the nearest address kilometres away
        "elsewhere": [(116.397, 39.909), (121.0, 30.5), (122.2, 31.6)],
    }
