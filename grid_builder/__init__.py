"""Grid builder: provisional townships and communities, street blocks, grids, micro-grids and H3 cells."""
