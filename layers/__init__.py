"""Layer registry, OGC API Features machinery and folium export (pure core + ``store.py``)."""
