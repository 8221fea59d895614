"""Onboarding a city from its own base data: OSM extracts, surveying files, commercial POIs, address lists.

Readers (`osm.py`, `vector.py`) turn files into the same plain records `geo.demo_files` makes for the demo
(dicts with shapely geometry in WGS84); `validate.py` repairs geometry and checks the declared area;
`store.py` writes the records into the demo's own tables, scoped by `city_id`. See docs/onboarding.md.
"""
