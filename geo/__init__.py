"""The bottom floor: pure helpers every package may import, importing nothing of the project.

- `geo.errors`: the domain error classes (no HTTP in them; `gis_api.errors` maps them to statuses).
- `geo.crs`: WGS84 ⇄ GCJ-02, CGCS2000, the China extent, the metric CRS.
- `geo.geometry`: shapely helpers shared by the packages (polygonal parts, MultiPolygon coercion).
- `geo.geojson`: GeoJSON Feature / FeatureCollection building and coordinate transforms.
- `geo.demo_files`: readers of the real demo data files (plain records, no database).
- `geo.cache`: the one idiom for per-database caches that expire.
- `geo.pg`: catalogue probes (does a table / column exist) shared by the stores.
"""
