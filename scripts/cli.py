"""Entry point of the `sanigrid` command: imports every command module, turns errors into messages."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys
from collections.abc import Callable
from pathlib import Path

import sanigrid.scripts
from sanigrid.layers._errors import SanigridError
from sanigrid.scripts._app import DEFAULT_PROJECT, PROJECT_FLAGS, app, err_console

# One module per concern; each registers its commands on the shared app when imported. Every public module of
# this package is a command module, so a new one cannot be forgotten.
COMMAND_MODULES = sorted(m.name for m in pkgutil.iter_modules(sanigrid.scripts.__path__)
                         if not m.name.startswith("_") and m.name != "cli")
for _name in COMMAND_MODULES:
    importlib.import_module(f"sanigrid.scripts.{_name}")


def _direct(argv: list[str]) -> Callable[[], None] | None:
    """``sanigrid layers`` with at most the project option, run without Typer's parameter parsing.

    Typer (0.29) coerces every parameter through a pydantic ``TypeAdapter``: about 0.15 s of start-up,
    more than the whole listing. Any other form (``--help``, another option, a typo) goes through Typer,
    so its messages and checks stay the same.
    """
    if not argv or argv[0] != "layers":
        return None
    rest = argv[1:]
    if not rest:
        project = DEFAULT_PROJECT
    elif len(rest) == 2 and rest[0] in PROJECT_FLAGS and not rest[1].startswith("-"):
        project = Path(rest[1])
    elif len(rest) == 1 and rest[0].startswith(f"{PROJECT_FLAGS[0]}=") and len(rest[0]) > len(PROJECT_FLAGS[0]) + 1:
        project = Path(rest[0].split("=", 1)[1])
    else:
        return None
    from sanigrid.scripts.project import layers_cmd

    return lambda: layers_cmd(project)


def main() -> None:
    """Run the command line; sanigrid errors print as a message and exit with status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        direct = _direct(sys.argv[1:])
        if direct is not None:
            direct()
            return
        import typer

        from sanigrid.scripts import _help_zh
        from sanigrid.scripts._app import command_scope

        command = _help_zh.apply(typer.main.get_command(app))  # --help in Chinese
        with command_scope():
            command(prog_name="sanigrid")
    except SanigridError as e:
        err_console.print(f"[bold red]错误 error:[/] {e}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
