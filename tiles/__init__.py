"""Vector tiles (ST_AsMVT) with a server-side cache: exact invalidation and an LRU size cap."""
