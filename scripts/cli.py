"""Entry point of the `sanigrid` command: imports every command module, turns errors into messages."""

from __future__ import annotations

import importlib
import logging
import sys

from layers._errors import SanigridError
from scripts._app import app, err_console

# one module per concern; each registers its commands on the shared app
_COMMAND_MODULES = ("project", "demo", "coverage", "problems", "sampling", "web", "analyses")
for _name in _COMMAND_MODULES:
    importlib.import_module(f"scripts.{_name}")


def main() -> None:
    """Run the command line; sanigrid errors print as a message and exit with status 2."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        app()
    except SanigridError as e:
        err_console.print(f"[bold red]错误 error:[/] {e}", highlight=False)
        sys.exit(2)


if __name__ == "__main__":
    main()
