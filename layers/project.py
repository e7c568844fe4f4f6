"""A county project: a folder with the store (``sanigrid.gpkg``) and its settings (``sanigrid.toml``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from layers._errors import SettingsError
from layers.settings import SETTINGS_NAME, Settings, load_settings, save_settings
from layers.store import STORE_NAME, GeoPackageStore, Store


@dataclass
class Project:
    """The folder, its settings and its store."""

    root: Path
    settings: Settings
    store: Store

    @property
    def settings_path(self) -> Path:
        return self.root / SETTINGS_NAME

    def output_path(self, name: str) -> Path:
        """Where exports (xlsx, png, rejects) go: an ``outputs/`` folder beside the store."""
        out = self.root / "outputs"
        out.mkdir(parents=True, exist_ok=True)
        return out / name


def init_project(root: str | Path, *, settings: Settings | None = None, overwrite: bool = False) -> Project:
    """Create the project folder with default (or given) settings and an empty store."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    spath = root / SETTINGS_NAME
    if spath.exists() and not overwrite:
        raise SettingsError(f"{spath} already exists; open the project, or pass overwrite to start again")
    settings = settings or Settings()
    save_settings(settings, spath)
    gpkg = root / STORE_NAME
    if overwrite and gpkg.exists():
        gpkg.unlink()
    store = GeoPackageStore(gpkg, crs=settings.project.crs)
    if settings.project.crs:
        store.set_crs(settings.project.crs)
    return Project(root, settings, store)


def open_project(root: str | Path) -> Project:
    """Open an existing project folder (made by ``sanigrid init`` or ``sanigrid demo``)."""
    root = Path(root)
    spath = root / SETTINGS_NAME
    if not spath.exists():
        raise SettingsError(
            f"{root.resolve()} is not a sanigrid project (no {SETTINGS_NAME}); "
            "run `sanigrid init` there, or `sanigrid demo` for the demo county, or pass --project DIR"
        )
    settings = load_settings(spath)
    return Project(root, settings, GeoPackageStore(root / STORE_NAME, crs=settings.project.crs))
