"""The `shequ` command line. Feature commands plug in from gis_api.commands (each module's register(app))."""

from __future__ import annotations

import importlib
import pkgutil

import typer

from gis_api import commands as commands_pkg

app = typer.Typer(
    name="shequ",
    help="Shequ GIS 社区 GIS：智慧社区空间底座命令行 (embedded PostGIS, demo data, API server, analyses).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    for mod in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands_pkg.__name__}.{mod.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


_register_commands()


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
