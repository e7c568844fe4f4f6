"""sanigrid data: the layer catalogue, settings, coordinate systems, importers and the store."""

from layers._errors import SanigridError
from layers.catalogue import CATALOGUE, LayerSpec, spec
from layers.project import Project, init_project, open_project
from layers.settings import Settings, load_settings
from layers.store import GeoPackageStore, Store

__all__ = [
    "CATALOGUE", "GeoPackageStore", "LayerSpec", "Project", "SanigridError", "Settings", "Store",
    "init_project", "load_settings", "open_project", "spec",
]
