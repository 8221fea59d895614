"""`shequ migrate`: upgrade the database to every head (feature branches share the 0001_base root)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from gis_api.db import sqlalchemy_url

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str) -> Config:
    """An Alembic configuration for this project's migrations against ``url``."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", sqlalchemy_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, target: str = "heads") -> None:
    """Upgrade the database at ``url`` to ``target`` (every feature's head by default)."""
    command.upgrade(alembic_config(url), target)


def current_heads(url: str) -> list[str]:
    """The head revisions of the migration scripts (one per feature branch)."""
    from alembic.script import ScriptDirectory

    return list(ScriptDirectory.from_config(alembic_config(url)).get_heads())
