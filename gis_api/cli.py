"""The `shequ` command line. Feature commands plug in from gis_api.commands (each module's register(app))."""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys
from typing import Any

import typer
from typer.core import TyperGroup

from geo.errors import ShequError
from gis_api import commands as commands_pkg
from gis_api.errors import cli_message


class ShequGroup(TyperGroup):
    """The top command group: a domain error from any command prints its message and exits with 1."""

    def invoke(self, ctx: Any) -> Any:
        """Run the command; turn a `geo.errors.ShequError` into the shared one-line message."""
        try:
            return super().invoke(ctx)
        except ShequError as exc:
            typer.secho(cli_message(exc), fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from exc


class ShequTyper(typer.Typer):
    """The `shequ` app. Run as a program (no arguments given: they come from ``sys.argv``), plain
    ``shequ parse`` forms go straight to the parser (:func:`gis_api.commands.parse.fast_main`) without
    typer building its parameter machinery, so a one-off parse process starts fast (issue 18);
    everything else, and every in-process call (tests' CliRunner), is the typer app as usual."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the CLI; ``shequ parse`` fast when the arguments are the process's own."""
        if not args and not kwargs and sys.argv[1:2] == ["parse"]:
            from gis_api.commands.parse import fast_main

            try:
                if fast_main(sys.argv[2:]):
                    return None
            except ShequError as exc:
                typer.secho(cli_message(exc), fg=typer.colors.RED, err=True)
                raise SystemExit(1) from exc
            except BrokenPipeError as exc:  # the reader went away (`| head`): exit 1 quietly, as typer does
                # what is still buffered goes to /dev/null instead of failing again at exit (the recipe
                # of the Python docs, "Note on SIGPIPE")
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                raise SystemExit(1) from exc
        return super().__call__(*args, **kwargs)


app = ShequTyper(
    cls=ShequGroup,
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
    """Run the ``shequ`` command line (the console-script entry point)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
