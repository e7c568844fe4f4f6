"""A county project: a folder with the store (``sanigrid.gpkg``) and its settings (``sanigrid.toml``)."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sanigrid.layers._errors import SettingsError
from sanigrid.layers.crs import metric_crs
from sanigrid.layers.settings import SETTINGS_NAME, Settings, load_settings, save_settings

if TYPE_CHECKING:  # the store (and its GIS libraries) is imported when a project is opened
    from sanigrid.layers.store import Store


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

    def new_output_path(self, name: str) -> Path:
        """Like :meth:`output_path`, but never an existing file: ``name`` with ``-2``, ``-3`` … before the
        suffix when taken (two reports about the same file in the same second keep both)."""
        path = self.output_path(name)
        n = 1
        while path.exists():
            n += 1
            path = path.with_name(f"{Path(name).stem}-{n}{Path(name).suffix}")
        return path


def init_project(root: str | Path, *, settings: Settings | None = None, overwrite: bool = False) -> Project:
    """Create the project folder with default (or given) settings and an empty store."""
    root = Path(root)
    spath = root / SETTINGS_NAME
    if spath.exists() and not overwrite:
        raise SettingsError(f"{spath} already exists; open the project, or pass overwrite to start again")
    settings = settings or Settings()
    if settings.project.crs:  # refused before anything is written: a wrong CRS leaves nothing behind
        metric_crs(settings.project.crs, what="--crs")
    from sanigrid.layers.store import STORE_NAME, release

    made_root = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    gpkg = root / STORE_NAME
    had_settings = spath.exists()
    try:
        save_settings(settings, spath)
        if overwrite and gpkg.exists():
            release(gpkg)  # this process's writing connection closes (and folds its log in) first
            for p in (gpkg, gpkg.with_name(gpkg.name + "-wal"), gpkg.with_name(gpkg.name + "-shm")):
                p.unlink(missing_ok=True)
        store = _open_store(root, settings)
        if settings.project.crs:
            store.set_crs(settings.project.crs)
    except BaseException:
        if not had_settings:
            spath.unlink(missing_ok=True)
        if made_root:
            shutil.rmtree(root, ignore_errors=True)
        raise
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
    return Project(root, settings, _open_store(root, settings))


def _open_store(root: Path, settings: Settings) -> Store:
    """The GeoPackage beside the settings, or the shared PostGIS store when ``project.store_url`` is set."""
    if settings.project.store_url:
        from sanigrid.layers.postgis import PostGISStore

        return PostGISStore(settings.project.store_url, schema=settings.project.store_schema,
                            crs=settings.project.crs)
    from sanigrid.layers.store import STORE_NAME, GeoPackageStore

    return GeoPackageStore(root / STORE_NAME, crs=settings.project.crs)
