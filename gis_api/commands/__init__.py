"""CLI command modules: each defines register(app: typer.Typer), called by gis_api.cli."""
