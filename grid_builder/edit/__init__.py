"""Editing a community's grids (网格编辑): pure operations, the invariant validator, figures, workflow.

- `ops.py`: the edit operations on plain data (metric shapely geometries): move a shared vertex, move
  buildings to a neighbouring grid, split a grid by a line, merge adjacent grids;
- `invariants.py`: what every edit must keep (cover within 0.5 m, no overlap above 1 m², one connected
  piece per grid, every building in exactly one grid, micro-grids nested);
- `figures.py`: live figures of an edit (households against the band, compactness, what moves);
- `store.py` (SQL) and `service.py` (drafts, review, versions, rollback, history) on top.

See `docs/grid-editing.md`.
"""
