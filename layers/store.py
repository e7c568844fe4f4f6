"""The store: where a county project's layers live.

:class:`Store` is the interface; :class:`GeoPackageStore` is the embedded default (one
GeoPackage file that QGIS opens as it is). A PostGIS backend implements the same methods.

Writes are atomic. A GeoPackage write happens inside :meth:`GeoPackageStore.transaction`:
the writer takes an exclusive lock, copies the file, writes the copy and renames it over the
original only when every step succeeded, so a failure half-way leaves the store exactly as it
was, and concurrent writers (threads or processes) are serialised and lose nothing. Readers
always see the last committed file.

All feature layers are kept in one projected CRS in metres (:attr:`Store.crs`), chosen from the
data's longitude on the first write unless the settings name one.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Protocol

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from sanigrid.layers._errors import CRSError, StoreError
from sanigrid.layers.catalogue import CATALOGUE, LayerSpec, spec
from sanigrid.layers.crs import project_crs
from sanigrid.layers.filters import Where, as_where, check_fields

log = logging.getLogger(__name__)

STORE_NAME = "sanigrid.gpkg"
META_TABLE = "sanigrid_meta"
PROJECT_TABLE = "sanigrid_project"
_SYSTEM_TABLES = (META_TABLE, PROJECT_TABLE)


@dataclass(frozen=True)
class LayerInfo:
    """A summary row of ``sanigrid layers``."""

    kind: str
    title: str
    count: int
    crs: str | None
    bounds: tuple[float, float, float, float] | None
    updated_at: str | None
    synthetic: bool
    params: dict[str, Any]


class Store(Protocol):
    """What every backend offers. Frames are GeoDataFrames in :attr:`crs`."""

    @property
    def crs(self) -> CRS | None: ...

    @property
    def location(self) -> str:
        """Where the store is (a file path or a database URL without password), for messages."""
        ...

    def version(self) -> tuple[Any, ...]:
        """A token that changes whenever a write is committed (for caches)."""
        ...

    def max_value(self, kind: str, field: str) -> Any:
        """The largest value of ``field`` in ``kind`` (``None`` if the layer is empty or absent)."""
        ...

    def set_crs(self, crs: CRS | str) -> None: ...

    def has(self, kind: str) -> bool: ...

    def read(
        self,
        kind: str,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        where: Where | None = None,
        columns: Sequence[str] | None = None,
    ) -> gpd.GeoDataFrame:
        """Rows of ``kind`` intersecting ``bbox`` (store CRS) that satisfy the typed filter ``where``."""
        ...

    def write(self, kind: str, frame: gpd.GeoDataFrame, *, params: Mapping[str, Any] | None = None,
              synthetic: bool = False) -> None: ...

    def append(self, kind: str, frame: gpd.GeoDataFrame) -> None: ...

    def update(self, kind: str, key: str, changes: Mapping[Any, Mapping[str, Any]]) -> int: ...

    def drop(self, kind: str) -> None: ...

    def read_table(self, name: str) -> pd.DataFrame: ...

    def write_table(self, name: str, frame: pd.DataFrame) -> None: ...

    def append_table(self, name: str, frame: pd.DataFrame) -> None: ...

    def meta(self, kind: str) -> dict[str, Any]: ...

    def info(self) -> list[LayerInfo]: ...

    def transaction(self) -> Any: ...


def empty_frame(kind: str, crs: CRS | str | None) -> gpd.GeoDataFrame:
    """An empty GeoDataFrame with the catalogue columns of ``kind``."""
    s = spec(kind)
    cols: dict[str, pd.Series] = {f.name: pd.Series(dtype=_pandas_dtype(f.dtype)) for f in s.fields}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def _pandas_dtype(dtype: str) -> str:
    return {"str": "object", "int": "Int64", "float": "float64", "bool": "boolean",
            "date": "datetime64[ms]", "datetime": "datetime64[ms]"}[dtype]


_LOCKS: dict[str, threading.RLock] = {}
_LOCKS_GUARD = threading.Lock()


def _thread_lock(path: Path) -> threading.RLock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(str(path.resolve()), threading.RLock())


class StoreBase:
    """What every backend shares: the project CRS (chosen once, then kept) and free-table names.

    A backend provides ``location``, ``transaction()``, ``_project_value`` and ``_set_project_value``
    (the latter inside a transaction) and sets ``_configured_crs``.
    """

    _configured_crs: CRS | None

    @property
    def location(self) -> str:
        raise NotImplementedError

    def transaction(self) -> Any:
        raise NotImplementedError

    def _project_value(self, key: str) -> str | None:
        raise NotImplementedError

    def _set_project_value(self, key: str, value: str) -> None:
        raise NotImplementedError

    @property
    def crs(self) -> CRS | None:
        recorded = self._project_value("crs")
        if recorded:
            return CRS.from_user_input(recorded)
        return self._configured_crs

    def set_crs(self, crs: CRS | str) -> None:
        crs = CRS.from_user_input(crs)
        with self.transaction() as tx:
            current = tx._project_value("crs")
            if current and CRS.from_user_input(current) != crs:
                raise CRSError(
                    f"{self.location}: the store is already in {current}; it cannot switch to "
                    f"{crs.to_string()} (export and re-import into a new project instead)"
                )
            tx._set_project_value("crs", crs.to_string())

    def _ensure_crs(self, frame: gpd.GeoDataFrame) -> CRS:
        crs = self.crs
        if crs is None:
            if frame.crs is None:
                raise CRSError("the first layer written to a store must have a CRS")
            lon = frame.to_crs(4326).union_all().centroid.x if len(frame) else 117.0
            crs = project_crs(lon, None)
            log.info("project CRS chosen from the data: %s", crs.to_string())
        self._set_project_value("crs", crs.to_string())
        return crs

    def _to_store_crs(self, kind: str, frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        if frame.crs is None:
            raise CRSError(
                f"layer '{kind}' has no CRS; set one (e.g. frame.set_crs(4326)) before writing it"
            )
        crs = self._ensure_crs(frame)
        if not frame.crs.equals(crs):
            log.info("reprojecting '%s' from %s to the store CRS %s", kind, frame.crs.to_string(),
                     crs.to_string())
            frame = frame.to_crs(crs)
        return frame

    def write(self, kind: str, frame: gpd.GeoDataFrame, *, params: Mapping[str, Any] | None = None,
              synthetic: bool = False) -> None:
        """Replace layer ``kind`` with ``frame`` (reprojected to the store CRS)."""
        with self.transaction() as tx:
            tx._write(kind, frame, params=params, synthetic=synthetic)

    def _write(self, kind: str, frame: gpd.GeoDataFrame, *, params: Mapping[str, Any] | None,
               synthetic: bool) -> None:
        raise NotImplementedError

    @staticmethod
    def _check_table_name(name: str) -> None:
        if name in CATALOGUE or name in _SYSTEM_TABLES:
            raise StoreError(f"'{name}' is a layer or system table, not a free table name")


class GeoPackageStore(StoreBase):
    """A store in one GeoPackage file.

    Parameters
    ----------
    path
        The ``.gpkg`` file. It is created on the first write.
    crs
        The project CRS to use when the file has none recorded yet (``None``: pick the
        CGCS2000 Gauss-Kruger zone from the longitude of the first layer written).
    """

    def __init__(self, path: str | Path, *, crs: CRS | str | None = None, _in_tx: bool = False):
        self.path = Path(path)
        self._configured_crs = CRS.from_user_input(crs) if crs else None
        self._in_tx = _in_tx

    def __repr__(self) -> str:
        return f"GeoPackageStore({str(self.path)!r})"

    @property
    def location(self) -> str:
        return str(self.path)

    def version(self) -> tuple[Any, ...]:
        """Inode, modification time and size of the file: every committed write changes them."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (None,)
        return (st.st_ino, st.st_mtime_ns, st.st_size)

    def max_value(self, kind: str, field: str) -> Any:
        if not self.has(kind):
            return None
        with self._connect() as con:
            cols = {r[1] for r in con.execute(f'PRAGMA table_info("{kind}")')}
            if field not in cols:
                raise StoreError(f"{self.path}: layer '{kind}' has no field '{field}'")
            return con.execute(f'SELECT MAX("{field}") FROM "{kind}"').fetchone()[0]

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def _lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with _thread_lock(self.path), open(lock_path, "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextmanager
    def transaction(self) -> Iterator[GeoPackageStore]:
        """All writes inside land together or not at all.

        >>> with store.transaction() as tx:   # doctest: +SKIP
        ...     tx.write("service_areas", areas)
        ...     tx.write("coverage_gaps", gaps)
        """
        if self._in_tx:
            yield self
            return
        with self._lock():
            tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.tmp.gpkg")
            try:
                if self.path.exists():
                    self._checkpoint()
                    shutil.copyfile(self.path, tmp)
                tx = GeoPackageStore(tmp, crs=self._configured_crs, _in_tx=True)
                yield tx
                if tmp.exists():
                    with open(tmp, "rb") as fh:
                        os.fsync(fh.fileno())
                    os.replace(tmp, self.path)
            finally:
                tmp.unlink(missing_ok=True)
                for suffix in ("-journal", "-wal", "-shm"):
                    Path(str(tmp) + suffix).unlink(missing_ok=True)

    def _checkpoint(self) -> None:
        """Fold a write-ahead log (QGIS opens GeoPackages in WAL mode) into the file before it is copied,
        so that no edit made elsewhere is lost and no stale log is left beside the new file."""
        wal = Path(str(self.path) + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            con = sqlite3.connect(self.path, timeout=30)
            try:
                busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            finally:
                con.close()
            if busy:
                raise StoreError(
                    f"{self.path} is being written by another program (QGIS?); "
                    "save or close its edits there and try again"
                )

    # ---------------------------------------------------------------- sqlite helpers
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=30)
        # the spatial-index triggers GDAL puts on each layer call these GeoPackage functions
        con.create_function("ST_IsEmpty", 1, _st_is_empty, deterministic=True)
        for i, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
            con.create_function(name, 1, _bounds_getter(i), deterministic=True)
        return con

    def _tables(self) -> set[str]:
        if not self.path.exists():
            return set()
        with self._connect() as con:
            return {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}

    def _ensure_system_tables(self) -> None:
        """Create the GeoPackage (if new) and sanigrid's own attribute tables."""
        if not self.path.exists():
            pyogrio.write_dataframe(
                pd.DataFrame({"key": pd.Series(["store_version"], dtype="object"),
                              "value": pd.Series(["1"], dtype="object")}),
                self.path, layer=PROJECT_TABLE, driver="GPKG",
            )
        tables = self._tables()
        if PROJECT_TABLE not in tables:
            pyogrio.write_dataframe(
                pd.DataFrame({"key": pd.Series(["store_version"], dtype="object"),
                              "value": pd.Series(["1"], dtype="object")}),
                self.path, layer=PROJECT_TABLE, driver="GPKG",
            )
        if META_TABLE not in tables:
            with self._connect() as con:
                con.execute(
                    f"CREATE TABLE {META_TABLE} (fid INTEGER PRIMARY KEY AUTOINCREMENT, "
                    "kind TEXT UNIQUE NOT NULL, updated_at TEXT, synthetic INTEGER, params TEXT)"
                )
                con.execute(
                    "INSERT INTO gpkg_contents (table_name, data_type, identifier, description) "
                    "VALUES (?, 'attributes', ?, ?)",
                    (META_TABLE, META_TABLE, "sanigrid: when and how each layer was made"),
                )

    def _project_value(self, key: str) -> str | None:
        if PROJECT_TABLE not in self._tables():
            return None
        with self._connect() as con:
            row = con.execute(f"SELECT value FROM {PROJECT_TABLE} WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_project_value(self, key: str, value: str) -> None:
        self._require_tx()
        self._ensure_system_tables()
        with self._connect() as con:
            cur = con.execute(f"UPDATE {PROJECT_TABLE} SET value=? WHERE key=?", (value, key))
            if cur.rowcount == 0:
                con.execute(f"INSERT INTO {PROJECT_TABLE} (key, value) VALUES (?, ?)", (key, value))

    def _touch(self, kind: str, *, params: Mapping[str, Any] | None = None,
               synthetic: bool | None = None) -> None:
        self._ensure_system_tables()
        now = datetime.now().isoformat(timespec="seconds")
        with self._connect() as con:
            row = con.execute(f"SELECT params, synthetic FROM {META_TABLE} WHERE kind=?", (kind,)).fetchone()
            p = json.dumps(dict(params), ensure_ascii=False, default=str) if params is not None else (
                row[0] if row else "{}")
            s = int(synthetic) if synthetic is not None else (row[1] if row else 0)
            con.execute(
                f"INSERT INTO {META_TABLE} (kind, updated_at, synthetic, params) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(kind) DO UPDATE SET updated_at=excluded.updated_at, "
                "synthetic=excluded.synthetic, params=excluded.params",
                (kind, now, s, p),
            )

    def _require_tx(self) -> None:
        if not self._in_tx:
            raise StoreError("internal: a write outside a transaction")

    # ---------------------------------------------------------------- reading
    def has(self, kind: str) -> bool:
        return kind in self._tables()

    def read(
        self,
        kind: str,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        where: Where | None = None,
        columns: Sequence[str] | None = None,
    ) -> gpd.GeoDataFrame:
        """Read a layer (empty, with the catalogue's columns, when it was never written).

        ``bbox`` is in the store CRS (features whose envelope meets it); ``where`` is a typed
        filter (:mod:`sanigrid.layers.filters`), run as a parameterised SQLite query that picks
        the matching feature ids.
        """
        where = as_where(where)
        s = CATALOGUE.get(kind)
        if not self.has(kind):
            if s is None:
                raise StoreError(f"{self.path}: no layer '{kind}'")
            return empty_frame(kind, self.crs)
        fids = self._matching_fids(kind, where, bbox) if where else None
        try:
            frame = pyogrio.read_dataframe(
                self.path, layer=kind, bbox=bbox if fids is None else None, fids=fids,
                columns=list(columns) if columns is not None else None, use_arrow=True,
            )
        except Exception as e:  # pyogrio raises its own DataSourceError/FieldError
            raise StoreError(f"{self.path}: cannot read layer '{kind}': {e}") from None
        if s is not None:
            frame = _coerce(frame, s)
        return frame

    def _matching_fids(self, kind: str, where: Where,
                       bbox: tuple[float, float, float, float] | None) -> list[int]:
        """Feature ids of ``kind`` that satisfy ``where`` (and meet ``bbox``), in id order."""
        with self._connect() as con:
            info = con.execute(f"PRAGMA table_info({_ident(kind)})").fetchall()
            check_fields(where, [r[1] for r in info], layer=kind, location=str(self.path))
            conds, args = _sqlite_where(where)
            if bbox is not None:
                row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name=?",
                                  (kind,)).fetchone()
                geom = row[0] if row else "geom"
                rtree = f"rtree_{kind}_{geom}"
                box = [float(bbox[2]), float(bbox[0]), float(bbox[3]), float(bbox[1])]
                if con.execute("SELECT 1 FROM sqlite_master WHERE name=?", (rtree,)).fetchone():
                    conds.append(f"fid IN (SELECT id FROM {_ident(rtree)} "
                                 "WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)")
                else:
                    g = _ident(geom)
                    conds.append(f"(ST_MinX({g}) <= ? AND ST_MaxX({g}) >= ? AND ST_MinY({g}) <= ? "
                                 f"AND ST_MaxY({g}) >= ?)")
                args += box
            pk = next((r[1] for r in info if r[5]), "fid")
            query = f"SELECT {_ident(pk)} FROM {_ident(kind)} WHERE {' AND '.join(conds)} ORDER BY 1"
            try:
                return [int(r[0]) for r in con.execute(query, args)]
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot read layer '{kind}': {e}") from None

    def read_table(self, name: str) -> pd.DataFrame:
        if not self.has(name):
            return pd.DataFrame()
        return pd.DataFrame(pyogrio.read_dataframe(self.path, layer=name, use_arrow=True,
                                                   read_geometry=False))

    def meta(self, kind: str) -> dict[str, Any]:
        if META_TABLE not in self._tables():
            return {}
        with self._connect() as con:
            row = con.execute(f"SELECT updated_at, synthetic, params FROM {META_TABLE} WHERE kind=?",
                              (kind,)).fetchone()
        if not row:
            return {}
        return {"updated_at": row[0], "synthetic": bool(row[1]), "params": json.loads(row[2] or "{}")}

    def info(self) -> list[LayerInfo]:
        """One row per catalogue layer in the store, in catalogue order.

        Read from the GeoPackage's own tables in one connection, no feature read: the count from
        ``gpkg_ogr_contents`` (kept by GDAL's triggers; ``COUNT(*)`` where it is missing), the
        extent from ``gpkg_contents`` (from the layer's R-tree where that has none: float32 boxes,
        rounded outwards), the CRS from ``gpkg_spatial_ref_sys``.
        """
        if not self.path.exists():
            return []
        with self._connect() as con:
            present = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            kinds = [k for k in CATALOGUE if k in present]
            meta = ({r[0]: r[1:] for r in con.execute(f"SELECT kind, updated_at, synthetic, params FROM {META_TABLE}")}
                    if META_TABLE in present else {})
            counts = ({r[0]: r[1] for r in con.execute("SELECT table_name, feature_count FROM gpkg_ogr_contents")}
                      if "gpkg_ogr_contents" in present else {})
            extent = {r[0]: r[1:] for r in con.execute(
                "SELECT c.table_name, c.min_x, c.min_y, c.max_x, c.max_y, g.column_name, s.organization, "
                "s.organization_coordsys_id FROM gpkg_contents c "
                "LEFT JOIN gpkg_geometry_columns g ON g.table_name = c.table_name "
                "LEFT JOIN gpkg_spatial_ref_sys s ON s.srs_id = c.srs_id")}
            out = []
            for kind in kinds:
                s = CATALOGUE[kind]
                n = counts.get(kind)
                if n is None:
                    n = con.execute(f'SELECT COUNT(*) FROM "{kind}"').fetchone()[0]
                minx, miny, maxx, maxy, geom, org, code = extent.get(kind, (None,) * 7)
                rtree = f"rtree_{kind}_{geom}"
                if None in (minx, miny, maxx, maxy) and geom and rtree in present:
                    minx, miny, maxx, maxy = con.execute(
                        f'SELECT MIN(minx), MIN(miny), MAX(maxx), MAX(maxy) FROM "{rtree}"').fetchone()
                bounds = (minx, miny, maxx, maxy)
                updated_at, synthetic, params = meta.get(kind, (None, 0, None))
                out.append(LayerInfo(
                    kind=kind, title=f"{s.zh} {s.en}", count=int(n),
                    crs=f"{str(org).upper()}:{code}" if org and code is not None and int(code) > 0 else None,
                    bounds=_bounds(bounds) if n and None not in bounds else None,
                    updated_at=updated_at, synthetic=bool(synthetic), params=json.loads(params or "{}"),
                ))
        return out

    # ---------------------------------------------------------------- writing
    def _write(self, kind: str, frame: gpd.GeoDataFrame, *, params: Mapping[str, Any] | None,
               synthetic: bool) -> None:
        s = spec(kind)
        frame = self._to_store_crs(kind, frame)
        frame = _prepare(frame, s)
        pyogrio.write_dataframe(
            frame, self.path, layer=kind, driver="GPKG", promote_to_multi=_multi(s),
            geometry_type=_geometry_type(s),
            layer_options={"DESCRIPTION": f"{s.zh} {s.en}", "IDENTIFIER": kind},
        )
        self._touch(kind, params=params, synthetic=synthetic)

    def append(self, kind: str, frame: gpd.GeoDataFrame) -> None:
        """Add rows to layer ``kind`` (created if absent)."""
        with self.transaction() as tx:
            if not tx.has(kind):
                tx._write(kind, frame, params=None, synthetic=False)
                return
            s = spec(kind)
            frame = _prepare(tx._to_store_crs(kind, frame), s)
            pyogrio.write_dataframe(frame, tx.path, layer=kind, driver="GPKG", append=True,
                                    promote_to_multi=_multi(s), geometry_type=_geometry_type(s))
            tx._touch(kind)

    def update(self, kind: str, key: str, changes: Mapping[Any, Mapping[str, Any]]) -> int:
        """Change attribute values of existing rows, found by ``key`` (e.g. ``problem_id``).

        ``changes`` maps a key value to ``{field: new value}``. Returns the number of rows changed;
        unknown keys raise :class:`StoreError` and nothing is written.
        """
        with self.transaction() as tx:
            tx._touch(kind)
            n = 0
            with tx._connect() as con:
                cols = {r[1] for r in con.execute(f'PRAGMA table_info("{kind}")')}
                for k, values in changes.items():
                    bad = set(values) - cols
                    if bad:
                        raise StoreError(f"layer '{kind}' has no field(s) {', '.join(sorted(bad))}")
                    sets = ", ".join(f'"{c}"=?' for c in values)
                    cur = con.execute(f'UPDATE "{kind}" SET {sets} WHERE "{key}"=?',
                                      [_sql_value(v) for v in values.values()] + [_sql_value(k)])
                    if cur.rowcount == 0:
                        raise StoreError(f"layer '{kind}': no row with {key} = {k}")
                    n += cur.rowcount
            return n

    def drop(self, kind: str) -> None:
        """Remove a layer."""
        with self.transaction() as tx:
            if tx.has(kind):
                with tx._connect() as con:
                    # the spatial index is a virtual table (its shadow tables go with it) plus triggers
                    for (name,) in con.execute(
                            "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ? "
                            "AND sql LIKE 'CREATE VIRTUAL TABLE%'", (f"rtree_{kind}_%",)).fetchall():
                        con.execute(f'DROP TABLE "{name}"')
                    con.execute(f'DROP TABLE "{kind}"')  # its triggers go with it
                    for t in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions"):
                        con.execute(f"DELETE FROM {t} WHERE table_name=?", (kind,))
                    con.execute(f"DELETE FROM {META_TABLE} WHERE kind=?", (kind,))

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Replace a non-spatial table (e.g. problem history, accounts)."""
        self._check_table_name(name)
        with self.transaction() as tx:
            tx._ensure_system_tables()
            pyogrio.write_dataframe(_plain(frame), tx.path, layer=name, driver="GPKG")
            tx._touch(name)

    def append_table(self, name: str, frame: pd.DataFrame) -> None:
        self._check_table_name(name)
        with self.transaction() as tx:
            tx._ensure_system_tables()
            pyogrio.write_dataframe(_plain(frame), tx.path, layer=name, driver="GPKG",
                                    append=tx.has(name))
            tx._touch(name)



def _bounds(b: Sequence[float]) -> tuple[float, float, float, float]:
    return (float(b[0]), float(b[1]), float(b[2]), float(b[3]))


_ENVELOPE_DOUBLES = {0: 0, 1: 4, 2: 6, 3: 6, 4: 8}


def _gpkg_geometry(blob: bytes | None) -> shapely.Geometry | None:
    """Decode a GeoPackage geometry blob (header + WKB)."""
    if blob is None or len(blob) < 8 or blob[:2] != b"GP":
        return None
    flags = blob[3]
    if flags & 0b10000:
        return shapely.Point()  # the empty flag
    offset = 8 + 8 * _ENVELOPE_DOUBLES.get((flags >> 1) & 0b111, 0)
    return shapely.from_wkb(bytes(blob[offset:]))


def _st_is_empty(blob: bytes | None) -> int | None:
    g = _gpkg_geometry(blob)
    return None if g is None else int(g.is_empty)


def _bounds_getter(i: int):
    def get(blob: bytes | None) -> float | None:
        g = _gpkg_geometry(blob)
        return None if g is None or g.is_empty else float(g.bounds[i])
    return get


def _multi(s: LayerSpec) -> bool:
    """Promote to Multi* only for layers of one base type (mixed layers keep what they get)."""
    return any(g.startswith("Multi") for g in s.geometry) and len({g.replace("Multi", "") for g in s.geometry}) == 1


def _geometry_type(s: LayerSpec) -> str:
    kinds = {g.replace("Multi", "") for g in s.geometry}
    if len(kinds) > 1:
        return "Unknown"
    base = kinds.pop()
    return f"Multi{base}" if _multi(s) else base


def _prepare(frame: gpd.GeoDataFrame, s: LayerSpec) -> gpd.GeoDataFrame:
    """Catalogue columns first with their types; extra columns kept after them."""
    out = frame.copy()
    for f in s.fields:
        if f.name not in out.columns:
            out[f.name] = pd.Series([None] * len(out), index=out.index, dtype=_pandas_dtype(f.dtype))
    order = s.field_names + [c for c in out.columns if c not in s.field_names and c != out.geometry.name]
    out = out[order + [out.geometry.name]]
    for f in s.fields:
        col = out[f.name]
        if f.dtype == "bool":
            out[f.name] = col.astype("boolean")
        elif f.dtype in ("date", "datetime"):
            out[f.name] = pd.to_datetime(col, errors="coerce").astype("datetime64[ms]")
        elif f.dtype == "int":
            out[f.name] = pd.to_numeric(col, errors="coerce").astype("Int64")
        elif f.dtype == "float":
            out[f.name] = pd.to_numeric(col, errors="coerce").astype("float64")
        else:
            out[f.name] = col.astype("object").where(col.notna(), None)
            out[f.name] = out[f.name].map(lambda v: v if v is None else str(v))
    return out.reset_index(drop=True)


def _coerce(frame: gpd.GeoDataFrame, s: LayerSpec) -> gpd.GeoDataFrame:
    for f in s.fields:
        if f.name not in frame.columns:
            continue
        if f.dtype == "int":
            frame[f.name] = pd.to_numeric(frame[f.name], errors="coerce").astype("Int64")
        elif f.dtype == "bool":
            frame[f.name] = frame[f.name].astype("boolean")
    return frame


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(frame).copy()
    if "geometry" in out.columns:
        out = out.drop(columns="geometry")
    return out.reset_index(drop=True)


def _ident(name: str) -> str:
    """An SQLite identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _sqlite_where(where: Where) -> tuple[list[str], list[Any]]:
    """``where`` as SQLite conditions with ``?`` placeholders, and their parameters."""
    conds: list[str] = []
    args: list[Any] = []
    for c in where.conds:
        col = _ident(c.field)
        if c.op == "eq":
            if c.values[0] is None:
                conds.append(f"{col} IS NULL")
            else:
                conds.append(f"{col} = ?")
                args.append(_sql_value(c.values[0]))
        elif c.op == "ne":
            conds.append(f"{col} IS NOT ?")  # null-safe: a missing value is "not equal"
            args.append(_sql_value(c.values[0]))
        elif c.op == "in":
            if not c.values:
                conds.append("0")
            else:
                conds.append(f"{col} IN ({', '.join('?' * len(c.values))})")
                args += [_sql_value(v) for v in c.values]
        else:
            lo, hi = c.values
            if lo is not None:
                conds.append(f"{col} >= ?")
                args.append(_sql_value(lo))
            if hi is not None:
                conds.append(f"{col} <= ?")
                args.append(_sql_value(hi))
    return conds, args


def _sql_value(v: Any) -> Any:
    """A Python value as SQLite stores it in a GeoPackage (datetimes as ISO text, missing as NULL)."""
    if isinstance(v, str | bytes):
        return v
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp | datetime):
        return pd.Timestamp(v).strftime("%Y-%m-%dT%H:%M:%S")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, np.generic):
        return None if pd.isna(v) else v.item()
    return v
