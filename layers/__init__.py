"""sanigrid data: the layer catalogue, settings, coordinate systems, importers and the store.

The names below are loaded on first use (PEP 562), so that importing one light module of the
package (``sanigrid.layers._errors``, ``sanigrid.layers.catalogue``) does not load the store and
its GIS libraries: the command line starts in a fraction of a second.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sanigrid.layers._errors import SanigridError
    from sanigrid.layers.catalogue import CATALOGUE, LayerSpec, spec
    from sanigrid.layers.project import Project, init_project, open_project
    from sanigrid.layers.settings import Settings, load_settings
    from sanigrid.layers.store import GeoPackageStore, Store

_WHERE = {
    "SanigridError": "_errors", "CATALOGUE": "catalogue", "LayerSpec": "catalogue", "spec": "catalogue",
    "Project": "project", "init_project": "project", "open_project": "project", "Settings": "settings",
    "load_settings": "settings", "GeoPackageStore": "store", "Store": "store",
}

__all__ = [
    "CATALOGUE", "GeoPackageStore", "LayerSpec", "Project", "SanigridError", "Settings", "Store",
    "init_project", "load_settings", "open_project", "spec",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'sanigrid.layers' has no attribute '{name}'")
    return getattr(importlib.import_module(f"sanigrid.layers.{_WHERE[name]}"), name)
