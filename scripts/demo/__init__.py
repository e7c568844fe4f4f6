"""`sanigrid demo`: the demo county, real Guixi (贵溪) streets and synthetic everything else.

A face of the house, like the rest of ``scripts``: it builds its layers with the same OSM reader and
road-class rules as a user's import (:mod:`sanigrid.layers.osm`), the same grid assignment
(:func:`sanigrid.geo.grids.assign_grid`) and the same case rules and deadlines
(:mod:`sanigrid.geo.problems`).

Modules: :mod:`.facts` (place, codes, period, words), :mod:`.town` (streets, alleys, built-up
area, grids, compounds), :mod:`.facilities`, :mod:`.problems`, :mod:`.county`
(:func:`make_demo_layers`) and :mod:`.command` (:func:`build_demo` and the ``demo`` command).
Importing the package registers the command only; the generator loads when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from sanigrid.scripts.demo.command import build_demo, demo, summary_table

_LAZY = {"DemoData": "county", "make_demo_layers": "county", "demo_settings": "town", "grid_order": "town"}

__all__ = ["DemoData", "build_demo", "demo", "demo_settings", "grid_order", "make_demo_layers", "summary_table"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"sanigrid.scripts.demo.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
