"""The shared Typer app, console and options of the `sanigrid` command line.

Each concern registers its commands in its own module (``scripts/<concern>.py``) with
``@app.command()``; ``scripts/cli.py`` imports them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    from sanigrid.layers.project import Project

app = typer.Typer(
    name="sanigrid",
    help="sanigrid: 创卫网格化管理地理工具 / geospatial toolkit for the National Sanitary County campaign.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console()
err_console = Console(stderr=True)

PROJECT_FLAGS = ("--project", "-p")  # the project option of every command
ProjectOpt = Annotated[
    Path,
    typer.Option(*PROJECT_FLAGS, help="project folder (holds sanigrid.gpkg and sanigrid.toml)",
                 envvar="SANIGRID_PROJECT"),
]
DEFAULT_PROJECT = Path(os.environ.get("SANIGRID_PROJECT", "."))


_COMMAND: list[ExitStack] = []  # while :func:`command_scope` runs a command: what closes its stores' connections


@contextmanager
def command_scope() -> Iterator[None]:
    """One command of the command line: the stores it opens with :func:`load` keep their connections for
    the whole command (``Store.kept_connections``: each read no longer opens and closes the file) and
    close them when it ends, so the file on disk has every commit as before."""
    with ExitStack() as stack:
        _COMMAND.append(stack)
        try:
            yield
        finally:
            _COMMAND.remove(stack)


def load(project: Path) -> Project:
    """Open the project named on the command line."""
    from sanigrid.layers.project import open_project

    p = open_project(project)
    keep = getattr(p.store, "kept_connections", None)
    if _COMMAND and keep is not None:
        _COMMAND[-1].enter_context(keep())
    return p
