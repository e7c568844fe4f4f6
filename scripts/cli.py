"""Entry point of the `sanigrid` command: imports every command module, turns errors into messages."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import sys

import sanigrid.scripts
from sanigrid.layers._errors import SanigridError
from sanigrid.scripts._app import app, err_console

# One module per concern; each registers its commands on the shared app when imported. Every public module of
# this package is a command module, so a new one cannot be forgotten.
COMMAND_MODULES = sorted(m.name for m in pkgutil.iter_modules(sanigrid.scripts.__path__)
                         if not m.name.startswith("_") and m.name != "cli")
for _name in COMMAND_MODULES:
    importlib.import_module(f"sanigrid.scripts.{_name}")


def main() -> None:
    """Run the command line; sanigrid errors print as a message and exit with status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    import typer

    from sanigrid.scripts import _help_zh

    command = _help_zh.apply(typer.main.get_command(app))  # --help in Chinese
    try:
        command(prog_name="sanigrid")
    except SanigridError as e:
        err_console.print(f"[bold red]错误 error:[/] {e}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
