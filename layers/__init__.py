"""sanigrid data: the layer catalogue, settings, coordinate systems, importers and the store."""

from sanigrid.layers._errors import SanigridError
from sanigrid.layers.catalogue import CATALOGUE, LayerSpec, spec
from sanigrid.layers.project import Project, init_project, open_project
from sanigrid.layers.settings import Settings, load_settings
from sanigrid.layers.store import GeoPackageStore, Store

__all__ = [
    "CATALOGUE", "GeoPackageStore", "LayerSpec", "Project", "SanigridError", "Settings", "Store",
    "init_project", "load_settings", "open_project", "spec",
]
