"""The store: where a county project's layers live.

:class:`Store` is the interface; :class:`GeoPackageStore` is the embedded default (one
GeoPackage file that QGIS opens as it is). A PostGIS backend implements the same methods.

Writes are atomic. A GeoPackage write happens inside :meth:`GeoPackageStore.transaction`: the
writer takes an exclusive lock and writes the file in place inside one SQLite transaction (WAL
mode, synchronous=FULL), so a failure or a kill half-way leaves the store exactly as it was, a
commit survives a crash, and concurrent writers (threads or processes) are serialised and lose
nothing. Readers never wait for writers: they see the last commit.

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
import struct
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from sanigrid.layers._lazy import LazyModule

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    import pyogrio
    import shapely
    from pyproj import CRS
else:  # imported on first use: `sanigrid layers` reads the GeoPackage's own tables with sqlite3 alone
    gpd = LazyModule("geopandas")
    pd = LazyModule("pandas")
    pyogrio = LazyModule("pyogrio")
    shapely = LazyModule("shapely")

    class CRS:
        """pyproj's CRS, imported when a CRS is first read."""

        @staticmethod
        def from_user_input(value: Any) -> Any:
            from pyproj import CRS as _CRS

            return _CRS.from_user_input(value)

from sanigrid.layers._errors import CRSError, StoreError
from sanigrid.layers.catalogue import CATALOGUE, LayerSpec, spec
from sanigrid.layers.crs import crs_for_lonlat, project_crs
from sanigrid.layers.filters import (
    Bin,
    Clause,
    Contains,
    Either,
    Elapsed,
    Not,
    NotAfter,
    Order,
    Where,
    as_where,
    check_fields,
    one_of,
)
from sanigrid.layers.gpkginfo import META_TABLE, LayerInfo, gpkg_layer_info
from sanigrid.layers.gpkginfo import STORE_NAME as STORE_NAME  # re-exported: its home is gpkginfo

log = logging.getLogger(__name__)

PROJECT_TABLE = "sanigrid_project"
_SYSTEM_TABLES = (META_TABLE, PROJECT_TABLE)


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

    def change_token(self, kind: str) -> tuple[Any, ...]:
        """A token that changes whenever layer ``kind`` is written (for a cache of one layer, kept across
        writes to the others)."""
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

    def keys_near(self, kind: str, key: str, xy: np.ndarray, radius_m: float, *,
                  where: Where | None = None) -> list[list[Any]]:
        """For each point of ``xy`` (n × 2, store CRS), the sorted ``key`` values of the rows of ``kind``
        within ``radius_m`` that satisfy ``where``."""
        ...

    def count(self, kind: str, *, where: Where | None = None) -> int:
        """How many rows of ``kind`` satisfy ``where`` (computed in the store)."""
        ...

    def count_by(self, kind: str, by: Sequence[str | Bin], *, where: Where | None = None,
                 also: Mapping[str, Where] | None = None) -> pd.DataFrame:
        """Rows satisfying ``where`` counted per group of ``by``: key columns, ``n``, a count per ``also``
        filter, ``first``."""
        ...

    def distinct(self, kind: str, field: str, *, where: Where | None = None) -> list[Any]:
        """The distinct values of ``field`` among the rows satisfying ``where`` (missing ones left out)."""
        ...

    def read_page(self, kind: str, *, order: Sequence[Order], limit: int, offset: int = 0,
                  where: Where | None = None, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """One page of the rows satisfying ``where`` in the order ``order`` (sorted and cut in the store)."""
        ...

    def read_columns(self, kind: str, columns: Sequence[str], *, where: Where | None = None) -> pd.DataFrame:
        """Attribute columns only (no geometry) of the rows satisfying ``where``, in row order."""
        ...

    def update(self, kind: str, key: str, changes: Mapping[Any, Mapping[str, Any]]) -> int: ...

    def drop(self, kind: str) -> None: ...

    def read_table(self, name: str, *, where: Where | None = None) -> pd.DataFrame:
        """A non-spatial table (all rows, or those satisfying the typed filter ``where``), in row order."""
        ...

    def read_rows(self, kind: str, *, where: Where | None = None) -> list[dict[str, Any]]:
        """The rows of layer or table ``kind`` satisfying ``where``, as dicts of plain values (see
        :func:`frame_rows`): one case read by its number, without building frames."""
        ...

    def append_rows(self, kind: str, rows: Sequence[Mapping[str, Any]], *, crs: Any = None) -> None:
        """Add a few rows given as dicts of plain values (the geometry under ``"geometry"``, in ``crs``) to
        layer or table ``kind``: what :meth:`append` (or ``append_table``) of the same rows does, without
        building frames for a batch of web reports."""
        ...

    def write_table(self, name: str, frame: pd.DataFrame) -> None: ...

    def append_table(self, name: str, frame: pd.DataFrame) -> None: ...

    def meta(self, kind: str) -> dict[str, Any]: ...

    def info(self) -> list[LayerInfo]: ...

    def transaction(self) -> Any: ...


def empty_frame(kind: str, crs: CRS | str | None) -> gpd.GeoDataFrame:
    """An empty GeoDataFrame with the catalogue columns of ``kind``."""
    s = spec(kind)
    cols: dict[str, pd.Series] = {f.name: pd.Series(dtype=pandas_dtype(f.dtype)) for f in s.fields}
    return gpd.GeoDataFrame(cols, geometry=gpd.GeoSeries([], crs=crs), crs=crs)


def pandas_dtype(dtype: str) -> str:
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

    def checkpoint(self) -> None:
        """Make every commit durable in the store's own files (nothing to do for a server database)."""

    @contextmanager
    def kept_connections(self) -> Iterator[StoreBase]:
        """The store for a block of many calls (one command); see :meth:`GeoPackageStore.kept_connections`."""
        yield self

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
            return _crs_of(recorded)
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
            if len(frame):
                pts = shapely.centroid(np.asarray(frame.geometry.to_crs(4326).array))
                crs = crs_for_lonlat(shapely.get_x(pts), shapely.get_y(pts))
            else:
                crs = project_crs(117.0, None)
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

    def has(self, kind: str) -> bool:
        raise NotImplementedError

    def read(self, kind: str, *, bbox: tuple[float, float, float, float] | None = None,
             where: Where | None = None, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        raise NotImplementedError

    def read_rows(self, kind: str, *, where: Where | None = None) -> list[dict[str, Any]]:
        """See :meth:`Store.read_rows` (here through :meth:`read`; a backend may skip the frames)."""
        if kind in CATALOGUE:
            return frame_rows(self.read(kind, where=where))
        return frame_rows(self.read_table(kind, where=where))  # type: ignore[attr-defined]  # every backend has it

    def append_rows(self, kind: str, rows: Sequence[Mapping[str, Any]], *, crs: Any = None) -> None:
        """See :meth:`Store.append_rows` (here through :meth:`append` / :meth:`append_table`)."""
        rows = [dict(r) for r in rows]
        if not rows:
            return
        if kind in CATALOGUE:
            self.append(kind, gpd.GeoDataFrame(rows, geometry="geometry", crs=crs))
        else:
            self.append_table(kind, pd.DataFrame(rows))  # type: ignore[attr-defined]  # every backend has it

    def _columns(self, name: str) -> dict[str, str]:
        """Column name → declared type of a table, in table order (empty if it does not exist)."""
        raise NotImplementedError

    def _touch(self, kind: str, *, params: Mapping[str, Any] | None = None,
               synthetic: bool | None = None) -> None:
        raise NotImplementedError

    def _ensure_system_tables(self) -> None:
        raise NotImplementedError

    def _append_rows(self, kind: str, frame: gpd.GeoDataFrame, s: LayerSpec) -> None:
        raise NotImplementedError

    def _update_rows(self, kind: str, key: str, k: Any, values: Mapping[str, Any]) -> int:
        raise NotImplementedError

    def _drop(self, kind: str) -> None:
        raise NotImplementedError

    def _replace_table(self, name: str, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    def _append_table(self, name: str, frame: pd.DataFrame) -> None:
        raise NotImplementedError

    # the writes, the same for every backend
    def _prepare_rows(self, kind: str, frame: gpd.GeoDataFrame, s: LayerSpec) -> gpd.GeoDataFrame:
        """``frame`` in the store CRS with the catalogue's columns and types, its geometries checked."""
        frame = prepare(self._to_store_crs(kind, frame), s)
        check_geometries(kind, frame, s, self.location)
        return frame

    def append(self, kind: str, frame: gpd.GeoDataFrame) -> None:
        """Add rows to layer ``kind`` (created if absent)."""
        with self.transaction() as tx:
            if not tx.has(kind):
                tx._write(kind, frame, params=None, synthetic=False)
                return
            s = spec(kind)
            tx._append_rows(kind, tx._prepare_rows(kind, frame, s), s)
            tx._touch(kind)

    def keys_near(self, kind: str, key: str, xy: np.ndarray, radius_m: float, *,
                  where: Where | None = None) -> list[list[Any]]:
        """For each point of ``xy`` (n × 2, store CRS), the sorted ``key`` values of the rows of ``kind``
        within ``radius_m`` that satisfy ``where`` (a read by box per point; a backend may do better)."""
        out: list[list[Any]] = []
        for x, y in np.asarray(xy, dtype="float64").reshape(-1, 2).tolist():
            near = self.read(kind, bbox=(x - radius_m, y - radius_m, x + radius_m, y + radius_m), where=where,
                             columns=[key])
            d = shapely.distance(np.asarray(near.geometry.array, dtype=object), shapely.Point(x, y))
            out.append(sorted(near.loc[np.asarray(d <= radius_m), key].tolist()))
        return out

    def update(self, kind: str, key: str, changes: Mapping[Any, Mapping[str, Any]]) -> int:
        """Change attribute values of existing rows, found by ``key`` (e.g. ``problem_id``).

        ``changes`` maps a key value to ``{field: new value}``. Returns the number of rows changed;
        unknown keys or fields raise :class:`StoreError` and nothing is written.
        """
        with self.transaction() as tx:
            cols = tx._columns(kind)
            if not cols:
                raise StoreError(f"{self.location}: no layer '{kind}'")
            if key not in cols:
                raise StoreError(f"layer '{kind}' has no field '{key}'")
            reserved = set(RESERVED_COLUMNS)
            tx._touch(kind)
            n = 0
            for k, values in changes.items():
                bad = (set(values) - set(cols)) | (reserved & set(values))
                if bad:
                    raise StoreError(f"layer '{kind}' has no field(s) {', '.join(sorted(bad))}")
                if not values:
                    continue
                done = tx._update_rows(kind, key, k, values)
                if done == 0:
                    raise StoreError(f"layer '{kind}': no row with {key} = {k}")
                n += done
            return n

    def drop(self, kind: str) -> None:
        """Remove a layer (its index and metadata go with it)."""
        with self.transaction() as tx:
            tx._ensure_system_tables()
            tx._drop(kind)

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        """Replace a non-spatial table (e.g. problem history)."""
        self._check_table_name(name)
        with self.transaction() as tx:
            tx._ensure_system_tables()
            tx._replace_table(name, plain(frame))
            tx._touch(name)

    def append_table(self, name: str, frame: pd.DataFrame) -> None:
        """Add rows to a non-spatial table (created if absent)."""
        self._check_table_name(name)
        with self.transaction() as tx:
            tx._ensure_system_tables()
            tx._append_table(name, plain(frame))
            tx._touch(name)

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

    def __init__(self, path: str | Path, *, crs: CRS | str | None = None, _con: sqlite3.Connection | None = None):
        self.path = Path(path)
        self._configured_crs = CRS.from_user_input(crs) if crs else None
        self._con = _con  # inside a transaction: the one connection every call of the transaction uses
        self._dirty = False
        self._tables_seen: tuple[tuple[int, int], frozenset[str]] | None = None
        #: keep the writing connection open between transactions (a server's store: see _writer_connection);
        #: off, each transaction opens and closes its own, so nothing of the file stays only in its log
        self.keep_writer = False

    def __repr__(self) -> str:
        return f"GeoPackageStore({str(self.path)!r})"

    @property
    def location(self) -> str:
        return str(self.path)

    def version(self) -> tuple[Any, ...]:
        """The file's inode and the write counter that every committed transaction bumps (plus the
        file's modification time and size, which change when another program's edits are folded in)."""
        if self._con is None:
            try:
                st = os.stat(self.path)
            except FileNotFoundError:
                return (None,)
            return (st.st_ino, self._project_value("version"), st.st_mtime_ns, st.st_size)
        st = os.stat(self.path)
        return (st.st_ino, self._project_value("version"), st.st_mtime_ns, st.st_size)

    def change_token(self, kind: str) -> tuple[Any, ...]:
        """See :meth:`Store.change_token`: the file's inode and the layer's ``last_change`` (set to the
        millisecond by every write of the layer, sanigrid's or GDAL's, e.g. an edit in QGIS)."""
        if self._con is None and not self.path.exists():
            return (None,)
        with self._conn() as con:
            row = con.execute("SELECT last_change FROM gpkg_contents WHERE table_name=?", (kind,)).fetchone()
        return (os.stat(self.path).st_ino, kind, row[0] if row else None)

    def max_value(self, kind: str, field: str) -> Any:
        if not self.has(kind):
            return None
        with self._conn() as con:
            cols = {r[1] for r in con.execute(f"PRAGMA table_info({_ident(kind)})")}
            if field not in cols:
                raise StoreError(f"{self.path}: layer '{kind}' has no field '{field}'")
            return con.execute(f"SELECT MAX({_ident(field)}) FROM {_ident(kind)}").fetchone()[0]

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def _lock(self) -> Iterator[None]:
        """Serialise this program's writers (threads and processes); readers never take it."""
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
        """All writes inside land together or not at all: one SQLite transaction on the file itself.

        The file is in write-ahead-log mode, so readers (the web desk, QGIS) keep reading the last
        committed state while a transaction runs, and a commit is one append to the log (no copy of
        the file). A failure, or the process being killed, before the commit leaves the file as it was.

        >>> with store.transaction() as tx:   # doctest: +SKIP
        ...     tx.write("service_areas", areas)
        ...     tx.write("coverage_gaps", gaps)
        """
        if self._con is not None:
            yield self
            return
        with self._lock():
            self._clean_leftovers()
            if not self.path.exists():
                _create_geopackage(self.path)
            kept = self.keep_writer
            con = _writer_connection(self.path) if kept else _open(self.path, writer=True)
            try:
                try:
                    con.execute("BEGIN IMMEDIATE")
                except sqlite3.OperationalError as e:
                    raise StoreError(f"{self.path} is being written by another program (QGIS?); "
                                     f"save or close its edits there and try again ({e})") from None
                tx = GeoPackageStore(self.path, crs=self._configured_crs, _con=con)
                try:
                    yield tx
                    if tx._dirty:
                        tx._bump_version()
                    con.execute("COMMIT")
                except BaseException:
                    try:
                        con.execute("ROLLBACK")
                    except sqlite3.Error:  # the connection is unusable: a kept one is opened anew next time
                        if kept:
                            _drop_writer_connection(self.path)
                    raise
            finally:
                if not kept:
                    con.close()

    def checkpoint(self) -> None:
        """Fold this process's kept write-ahead log into the file (a server calls it when its writes
        pause), so that a copy of the ``.gpkg`` alone holds every commit. Passive: it waits for no reader
        and leaves to later what a reader still holds. Without a kept writing connection there is no log
        to fold (each transaction's close folds its own)."""
        with self._lock():
            held = _WRITERS.get((os.getpid(), str(self.path.resolve())))
            if held is not None and held[0] == os.stat(self.path).st_ino:
                held[1].execute("PRAGMA wal_checkpoint(PASSIVE)")

    @contextmanager
    def kept_connections(self) -> Iterator[GeoPackageStore]:
        """For the block (one command of the command line) keep this store's connections open as a server's
        store does (``keep_writer``): its reads share one connection instead of each opening the file (the
        schema parsed again, ~4 ms) and closing it (a checkpoint), its transactions one writing connection.
        At the end both are closed, so the last close folds the write-ahead log into the file as before and
        a copy of the ``.gpkg`` alone has every commit. A store that keeps them already (a server's) is left
        as it is."""
        if self.keep_writer:
            yield self
            return
        self.keep_writer = True
        try:
            yield self
        finally:
            self.keep_writer = False
            release(self.path)

    def _clean_leftovers(self) -> None:
        """Remove what a crashed writer left beside the file (old-style copies, scratch folders)."""
        for p in self.path.parent.glob(f".{self.path.stem}.*"):
            if p.name.endswith((".tmp.gpkg", ".tmp.gpkg-journal", ".tmp.gpkg-wal", ".tmp.gpkg-shm")):
                p.unlink(missing_ok=True)
            elif p.name.endswith(".scratch") and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)

    def _require_tx(self) -> None:
        if self._con is None:
            raise StoreError("internal: a write outside a transaction")
        self._dirty = True

    def _bump_version(self) -> None:
        con = self._tx_con()
        cur = con.execute(f"UPDATE {PROJECT_TABLE} SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) "
                          "WHERE key = 'version'")
        if cur.rowcount == 0:
            con.execute(f"INSERT INTO {PROJECT_TABLE} (key, value) VALUES ('version', '1')")

    # ---------------------------------------------------------------- sqlite helpers
    @contextmanager
    def _conn(self) -> Iterator[sqlite3.Connection]:
        """The transaction's connection; in a server's store (``keep_writer``) this thread's kept reading
        connection (see :func:`_reader`); else a fresh reading connection for this call (closed after, so
        the last close checkpoints the log into the file)."""
        if self._con is not None:
            yield self._con
            return
        con = _reader(self.path) if self.keep_writer else None
        if con is not None:
            yield con
            return
        con = _open(self.path)
        try:
            yield con
        finally:
            con.close()

    def _connect(self) -> sqlite3.Connection:
        """A plain connection with the GeoPackage functions of the spatial-index triggers."""
        return _open(self.path)

    def _tx_con(self) -> sqlite3.Connection:
        self._require_tx()
        assert self._con is not None
        return self._con

    def _tables(self) -> set[str]:
        """The file's table names, kept per (file, schema version): reading sqlite_master costs about 2 ms
        on a GeoPackage, and every read asks."""
        if self._con is None and not self.path.exists():
            return set()
        with self._conn() as con:
            key = (os.stat(self.path).st_ino, con.execute("PRAGMA schema_version").fetchone()[0])
            if self._tables_seen is not None and self._tables_seen[0] == key:
                return set(self._tables_seen[1])
            names = frozenset(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'"))
        self._tables_seen = (key, names)
        return set(names)

    def _ensure_system_tables(self) -> None:
        """sanigrid's own attribute tables (registered in gpkg_contents, so QGIS lists them)."""
        con = self._tx_con()
        tables = self._tables()
        if PROJECT_TABLE not in tables:
            con.execute(f"CREATE TABLE {PROJECT_TABLE} (fid INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL, "
                        "key TEXT, value TEXT)")
            con.execute("INSERT INTO gpkg_contents (table_name, data_type, identifier) VALUES (?, 'attributes', ?)",
                        (PROJECT_TABLE, PROJECT_TABLE))
            con.execute(f"INSERT INTO {PROJECT_TABLE} (key, value) VALUES ('store_version', '1')")
        if META_TABLE not in tables:
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
        with self._conn() as con:
            row = con.execute(f"SELECT value FROM {PROJECT_TABLE} WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def _set_project_value(self, key: str, value: str) -> None:
        self._ensure_system_tables()
        con = self._tx_con()
        cur = con.execute(f"UPDATE {PROJECT_TABLE} SET value=? WHERE key=?", (value, key))
        if cur.rowcount == 0:
            con.execute(f"INSERT INTO {PROJECT_TABLE} (key, value) VALUES (?, ?)", (key, value))

    def _touch(self, kind: str, *, params: Mapping[str, Any] | None = None,
               synthetic: bool | None = None) -> None:
        self._ensure_system_tables()
        con = self._tx_con()
        now = datetime.now().isoformat(timespec="seconds")
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
        con.execute("UPDATE gpkg_contents SET last_change=strftime('%Y-%m-%dT%H:%M:%fZ','now') WHERE table_name=?",
                    (kind,))

    def _columns(self, name: str) -> dict[str, str]:
        with self._conn() as con:
            return {r[1]: r[2] for r in con.execute(f"PRAGMA table_info({_ident(name)})")}

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
        # always through Python's sqlite3: GDAL links its own copy of SQLite, and two copies in one
        # process reading and writing the same WAL file break each other's POSIX locks
        frame = self._read_sqlite(kind, bbox, where, columns)
        if s is not None:
            frame = coerce(frame, s)
        return frame

    def _where_sql(self, con: sqlite3.Connection, kind: str, where: Where,
                   bbox: tuple[float, float, float, float] | None, *,
                   index_ranges: bool = True) -> tuple[list[str], list[Any]]:
        info = con.execute(f"PRAGMA table_info({_ident(kind)})").fetchall()
        check_fields(where, [r[1] for r in info], layer=kind, location=str(self.path))
        conds, args = _sqlite_where(where, index_ranges=index_ranges)
        if bbox is not None:
            geom = _geometry_column(con, kind) or "geom"
            rtree = f"rtree_{kind}_{geom}"
            box = [float(bbox[2]), float(bbox[0]), float(bbox[3]), float(bbox[1])]
            pk = next((r[1] for r in info if r[5]), "fid")
            if con.execute("SELECT 1 FROM sqlite_master WHERE name=?", (rtree,)).fetchone():
                conds.append(f"{_ident(pk)} IN (SELECT id FROM {_ident(rtree)} "
                             "WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?)")
            else:
                g = _ident(geom)
                conds.append(f"(ST_MinX({g}) <= ? AND ST_MaxX({g}) >= ? AND ST_MinY({g}) <= ? "
                             f"AND ST_MaxY({g}) >= ?)")
            args += box
        return conds, args

    def _matching_fids(self, kind: str, where: Where,
                       bbox: tuple[float, float, float, float] | None) -> list[int]:
        """Feature ids of ``kind`` that satisfy ``where`` (and meet ``bbox``), in id order."""
        with self._conn() as con:
            conds, args = self._where_sql(con, kind, where, bbox)
            pk = _primary_key(con, kind)
            query = f"SELECT {_ident(pk)} FROM {_ident(kind)} WHERE {' AND '.join(conds)} ORDER BY 1"
            try:
                return [int(r[0]) for r in con.execute(query, args)]
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot read layer '{kind}': {e}") from None

    def _read_sqlite(self, kind: str, bbox: tuple[float, float, float, float] | None, where: Where,
                     columns: Sequence[str] | None, *, geometry: bool = True) -> gpd.GeoDataFrame:
        """A layer read through this store's SQLite connection (inside a transaction, which GDAL
        cannot see), with the column types GDAL would give."""
        attrs, types, geom, rows = self._select(kind, bbox, where, columns, geometry=geometry)
        geoms = _gpkg_geometries([r[-1] for r in rows]) if geom and rows else np.array([], dtype=object)
        if bbox is not None and geom and rows:
            # SQLite's R-tree keeps envelopes as 32-bit floats, rounded outwards (a quarter of a metre at
            # 3·10⁶ m): what it finds is checked against the real envelopes, as PostGIS answers
            env = shapely.bounds(geoms)
            meets = ((env[:, 0] <= bbox[2]) & (env[:, 2] >= bbox[0]) & (env[:, 1] <= bbox[3])
                     & (env[:, 3] >= bbox[1]))
            if not meets.all():
                rows = [r for r, k in zip(rows, meets.tolist(), strict=True) if k]
                geoms = geoms[meets]
        cols = list(zip(*rows, strict=True)) if rows else [()] * (len(attrs) + bool(geom))
        data = {c: _sqlite_column(cols[i], types[c]) for i, c in enumerate(attrs)}
        if not geom:
            return pd.DataFrame(data)  # type: ignore[return-value]
        return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=self.crs), crs=self.crs)

    def append_rows(self, kind: str, rows: Sequence[Mapping[str, Any]], *, crs: Any = None) -> None:
        """See :meth:`Store.append_rows`: straight to SQLite when the layer or table exists with every
        column of the rows and each value already has its field's type (then converted as :func:`prepare`
        and :func:`_sqlite_values` convert it); else through :meth:`append` / :meth:`append_table`."""
        rows = list(rows)
        if not rows:
            return
        with self.transaction() as tx:
            s = CATALOGUE.get(kind)
            given = sorted({k for r in rows for k in r} - {"geometry"})
            present = tx._columns(kind) if tx.has(kind) else {}
            same_crs = s is None or (crs is not None and tx.crs is not None and _same_crs(crs, tx.crs))
            if not present or not same_crs or not set(given) <= set(present):
                StoreBase.append_rows(tx, kind, rows, crs=crs)
                return
            names = [f.name for f in s.fields] + [c for c in given if c not in s.field_names] \
                if s is not None else given
            types = {f.name: f.dtype for f in s.fields} if s is not None else {}
            values: list[list[Any]] = []
            for c in names:
                col = [r.get(c) for r in rows]
                typed = _typed_values(col, types[c]) if c in types else col
                if typed is None:  # a value to convert with pandas: the frames' path
                    StoreBase.append_rows(tx, kind, rows, crs=crs)
                    return
                values.append([_sql_value(v) for v in typed])
            geoms = None
            if s is not None:
                geoms = np.array([r.get("geometry") for r in rows], dtype=object)
                _check_geometry_types(kind, geoms, s, self.location)
            tx._ensure_key_index(kind, s)
            tx._insert_values(kind, names, values, geoms, s, bulk=False)
            if s is not None:
                tx._touch(kind)
            else:
                tx._ensure_table_key_index(kind)

    def _select(self, kind: str, bbox: tuple[float, float, float, float] | None, where: Where,
                columns: Sequence[str] | None, *, geometry: bool = True
                ) -> tuple[list[str], dict[str, str], str | None, list[tuple[Any, ...]]]:
        """The rows of ``kind`` meeting ``bbox`` and ``where`` in feature-id order, as SQLite gives them:
        (attribute columns, their declared types, the geometry column or ``None``, the rows: attributes
        then the geometry blob)."""
        with self._conn() as con:
            pk = _primary_key(con, kind)
            types = {n: t for n, t in self._columns(kind).items() if n != pk}
            geom = _geometry_column(con, kind) if geometry else None
            attrs = [c for c in types if c != geom]
            if columns is not None:
                bad = [c for c in columns if c not in attrs]
                if bad:
                    raise StoreError(f"{self.path}: cannot read layer '{kind}': no field(s) {', '.join(bad)}")
                attrs = [c for c in attrs if c in set(columns)]
            conds, args = self._where_sql(con, kind, where, bbox) if (where or bbox) else ([], [])
            sel = [_ident(c) for c in attrs] + ([_ident(geom)] if geom else [])
            query = (f"SELECT {', '.join(sel) or 'NULL'} FROM {_ident(kind)}"
                     + (f" WHERE {' AND '.join(conds)}" if conds else "") + f" ORDER BY {_ident(pk)}")
            try:
                rows = con.execute(query, args).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot read layer '{kind}': {e}") from None
        return attrs, types, geom, rows

    def keys_near(self, kind: str, key: str, xy: np.ndarray, radius_m: float, *,
                  where: Where | None = None) -> list[list[Any]]:
        """See :meth:`StoreBase.keys_near`: here one pass over the R-tree for all points, then one
        parameterised query for the candidates' keys and geometries."""
        pts = np.asarray(xy, dtype="float64").reshape(-1, 2)
        if not len(pts) or not self.has(kind):
            return [[] for _ in range(len(pts))]
        where = as_where(where)
        r = float(radius_m)
        with self._conn() as con:
            geom = _geometry_column(con, kind) or "geom"
            rtree = f"rtree_{kind}_{geom}"
            if not _has_table(con, rtree):
                return StoreBase.keys_near(self, kind, key, pts, radius_m, where=where)
            info = con.execute(f"PRAGMA table_info({_ident(kind)})").fetchall()
            check_fields(where, [row[1] for row in info], layer=kind, location=str(self.path))
            if key not in {row[1] for row in info}:
                raise StoreError(f"{self.path}: layer '{kind}' has no field '{key}'")
            pk = next((row[1] for row in info if row[5]), "fid")
            fids: set[int] = set()
            box = f"SELECT id FROM {_ident(rtree)} WHERE minx <= ? AND maxx >= ? AND miny <= ? AND maxy >= ?"
            for x, y in pts.tolist():
                fids.update(row[0] for row in con.execute(box, (x + r, x - r, y + r, y - r)))
            conds, args = _sqlite_where(where)
            rows: list[tuple[Any, Any]] = []
            ids = sorted(fids)
            for i in range(0, len(ids), 500):
                part = ids[i:i + 500]
                sql = (f"SELECT {_ident(key)}, {_ident(geom)} FROM {_ident(kind)} WHERE {_ident(pk)} IN "
                       f"({', '.join('?' * len(part))})" + "".join(f" AND {c}" for c in conds))
                rows += con.execute(sql, [*part, *args]).fetchall()
        if not rows:
            return [[] for _ in range(len(pts))]
        keys = np.array([k for k, _ in rows], dtype=object)
        geoms = _gpkg_geometries([g for _, g in rows])
        d = shapely.distance(geoms[None, :], shapely.points(pts)[:, None])  # points × candidates
        return [sorted(keys[np.asarray(row <= r)].tolist()) for row in d]

    def read_table(self, name: str, *, where: Where | None = None) -> pd.DataFrame:
        if not self.has(name):
            return pd.DataFrame()
        return pd.DataFrame(self._read_sqlite(name, None, as_where(where), None, geometry=False))

    def read_rows(self, kind: str, *, where: Where | None = None) -> list[dict[str, Any]]:
        """See :meth:`Store.read_rows`: the values :meth:`read` would give (the same conversions, value by
        value), straight from SQLite: about a millisecond for one case of a 10⁵-row layer."""
        where = as_where(where)
        if not self.has(kind):
            if kind not in CATALOGUE:
                return []
            return frame_rows(empty_frame(kind, self.crs))
        s = CATALOGUE.get(kind)
        attrs, types, geom, rows = self._select(kind, None, where, None)
        fields = {f.name: f.dtype for f in s.fields} if s is not None else {}
        convert = [(c, _row_converter(types[c], fields.get(c))) for c in attrs]
        geoms = _gpkg_geometries([r[-1] for r in rows]) if geom and rows else None
        out = []
        for i, r in enumerate(rows):
            row = {c: f(v) for (c, f), v in zip(convert, r, strict=False)}
            if geoms is not None:
                row["geometry"] = geoms[i]
            out.append(row)
        return out

    # ---------------------------------------------------------------- answers computed in SQL (no rows read)
    def count(self, kind: str, *, where: Where | None = None) -> int:
        """How many rows of ``kind`` satisfy ``where`` (0 for a layer never written)."""
        if not self.has(kind):
            return 0
        with self._conn() as con:
            conds, args = self._where_sql(con, kind, as_where(where), None, index_ranges=False)
            query = f"SELECT COUNT(*) FROM {_ident(kind)}" + (f" WHERE {' AND '.join(conds)}" if conds else "")
            try:
                return int(con.execute(query, args).fetchone()[0])
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot count layer '{kind}': {e}") from None

    def count_by(self, kind: str, by: Sequence[str | Bin], *, where: Where | None = None,
                 also: Mapping[str, Where] | None = None) -> pd.DataFrame:
        """The rows of ``kind`` satisfying ``where``, counted per distinct value of the keys ``by`` (field
        names, or :class:`~layers.filters.Bin` keys; none: one group of every row): one row per group with
        a column per key (named by its field), ``n``, a column per entry of ``also`` (how many rows of the
        group satisfy that filter as well), and ``first`` (the smallest row id of the group: the group's
        first row in the order :meth:`read` returns). Missing values form their own group. One scan of
        the layer, whatever the number of counts."""
        names = [k.field if isinstance(k, Bin) else k for k in by]
        extra = dict(also or {})
        empty = _counts_frame(names, list(extra), [])
        if not self.has(kind):
            return empty
        where = as_where(where)
        with self._conn() as con:
            info = con.execute(f"PRAGMA table_info({_ident(kind)})").fetchall()
            bad = [n for n in names if n not in {r[1] for r in info}]
            if bad:
                raise StoreError(f"{self.path}: cannot count layer '{kind}': no field(s) {', '.join(bad)}")
            pk = next((r[1] for r in info if r[5]), "fid")
            keys: list[str] = []
            args: list[Any] = []
            for k in by:
                if isinstance(k, Bin):
                    e, a = _sqlite_bin(k)
                    keys.append(e)
                    args += a
                else:
                    keys.append(_ident(k))
            sums: list[str] = []
            for w in extra.values():
                check_fields(as_where(w), [r[1] for r in info], layer=kind, location=str(self.path))
                e, a = _sqlite_all(as_where(w), index_ranges=False)
                sums.append(f"SUM(CASE WHEN {e} THEN 1 ELSE 0 END)")
                args += a
            conds, wargs = self._where_sql(con, kind, where, None, index_ranges=False)
            query = (f"SELECT {', '.join(keys + ['COUNT(*)', *sums, f'MIN({_ident(pk)})'])} FROM {_ident(kind)}"
                     + (f" WHERE {' AND '.join(conds)}" if conds else "")
                     + (f" GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""))
            try:
                rows = con.execute(query, args + wargs).fetchall()
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot count layer '{kind}': {e}") from None
        return _counts_frame(names, list(extra), [r for r in rows if r[len(keys)]])  # no rows: no group

    def distinct(self, kind: str, field: str, *, where: Where | None = None) -> list[Any]:
        """The distinct values of ``field`` among the rows of ``kind`` satisfying ``where`` (missing values
        left out), in no particular order (cheaper than :meth:`count_by`: no sort)."""
        if not self.has(kind):
            return []
        with self._conn() as con:
            if field not in {r[1] for r in con.execute(f"PRAGMA table_info({_ident(kind)})")}:
                raise StoreError(f"{self.path}: layer '{kind}' has no field '{field}'")
            conds, args = self._where_sql(con, kind, as_where(where), None, index_ranges=False)
            query = (f"SELECT DISTINCT {_ident(field)} FROM {_ident(kind)}"
                     + (f" WHERE {' AND '.join(conds)}" if conds else ""))
            try:
                return [r[0] for r in con.execute(query, args) if r[0] is not None]
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot read layer '{kind}': {e}") from None

    def read_page(self, kind: str, *, order: Sequence[Order], limit: int, offset: int = 0,
                  where: Where | None = None, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """``limit`` rows of ``kind`` satisfying ``where`` from position ``offset`` of the order ``order``
        (:class:`~layers.filters.Order` keys, missing values last, then row order): one page of a list,
        sorted and cut in SQL, the layer never read whole."""
        if not self.has(kind):
            return self.read(kind)
        for _ in range(3):  # the ids and then their rows: again if a write came between the two
            before = self.version()
            page = self._read_page(kind, order, limit, offset, as_where(where), columns)
            if page is not None and self.version() == before:
                return page
        raise StoreError(f"{self.path}: layer '{kind}' kept changing while a page of it was read; try again")

    def _read_page(self, kind: str, order: Sequence[Order], limit: int, offset: int, where: Where,
                   columns: Sequence[str] | None) -> gpd.GeoDataFrame | None:
        with self._conn() as con:
            info = con.execute(f"PRAGMA table_info({_ident(kind)})").fetchall()
            present = {r[1] for r in info}
            bad = [f for o in order for f in o.fields if f not in present]
            if bad:
                raise StoreError(f"{self.path}: cannot sort layer '{kind}' by {', '.join(bad)}: no such field")
            pk = next((r[1] for r in info if r[5]), "fid")
            conds, args = self._where_sql(con, kind, where, None, index_ranges=False)
            # unfiltered: in the order of an index on the key, when there is one (the first page reads 50
            # index entries); filtered: one scan and a sort of the kept ids (SQLite keeps offset + limit),
            # since walking an index in order and looking up rows that a selective filter then drops costs
            # a lookup per row of the layer (a grid's cases: 0.4 s at 10^5 instead of 30 ms)
            source = _ident(kind) + (f" NOT INDEXED WHERE {' AND '.join(conds)}" if conds else "")
            direction = ["DESC" if o.descending else "ASC" for o in order]
            if any(isinstance(o.field, Elapsed) for o in order):
                # a computed key: its time difference computed once a row in a subquery (OFFSET 0 keeps
                # SQLite from folding it in and parsing the time once per use), rounded in the outer query
                cols, kargs, keys = [], [], []
                for i, o in enumerate(order):
                    if isinstance(o.field, Elapsed):
                        e, a = _sqlite_elapsed_ms(o.field)
                        cols.append(f"{e} AS k{i}")
                        kargs += a
                        keys.append(f"{_half_even(f'k{i}', o.field.step_ms)} {direction[i]} NULLS LAST")
                    else:
                        cols.append(f"{_ident(o.field)} AS k{i}")
                        keys.append(f"k{i} {direction[i]} NULLS LAST")
                query = (f"SELECT k_id FROM (SELECT {_ident(pk)} AS k_id, {', '.join(cols)} FROM {source} "
                         f"LIMIT -1 OFFSET 0) ORDER BY {', '.join([*keys, 'k_id'])} LIMIT ? OFFSET ?")
                params = [*kargs, *args, int(limit), int(offset)]
            else:
                keys = [f"{_ident(str(o.field))} {d} NULLS LAST" for o, d in zip(order, direction, strict=True)]
                query = f"SELECT {_ident(pk)} FROM {source} ORDER BY {', '.join([*keys, _ident(pk)])} LIMIT ? OFFSET ?"
                params = [*args, int(limit), int(offset)]
            try:
                fids = [int(r[0]) for r in con.execute(query, params)]
            except sqlite3.Error as e:
                raise StoreError(f"{self.path}: cannot read layer '{kind}': {e}") from None
        frame = self.read(kind, where=one_of(pk, fids), columns=columns)
        return _in_order(frame, fids) if len(frame) == len(fids) else None

    def read_columns(self, kind: str, columns: Sequence[str], *, where: Where | None = None) -> pd.DataFrame:
        """The attribute ``columns`` of the rows of ``kind`` satisfying ``where``, in row order, without the
        geometry (a plain DataFrame, the types :meth:`read` gives)."""
        if not self.has(kind):
            return pd.DataFrame(self.read(kind)[list(columns)])
        frame = pd.DataFrame(self._read_sqlite(kind, None, as_where(where), columns, geometry=False))
        s = CATALOGUE.get(kind)
        return coerce(frame, s) if s is not None else frame

    def meta(self, kind: str) -> dict[str, Any]:
        if META_TABLE not in self._tables():
            return {}
        with self._conn() as con:
            row = con.execute(f"SELECT updated_at, synthetic, params FROM {META_TABLE} WHERE kind=?",
                              (kind,)).fetchone()
        if not row:
            return {}
        return {"updated_at": row[0], "synthetic": bool(row[1]), "params": json.loads(row[2] or "{}")}

    def info(self) -> list[LayerInfo]:
        """One row per catalogue layer in the store, in catalogue order: see :func:`gpkg_layer_info`
        (the GeoPackage's own tables, no feature read)."""
        if self._con is None and not self.path.exists():
            return []
        with self._conn() as con:
            return gpkg_layer_info(self.path, con=con)

    # ---------------------------------------------------------------- writing
    def _write(self, kind: str, frame: gpd.GeoDataFrame, *, params: Mapping[str, Any] | None,
               synthetic: bool) -> None:
        s = spec(kind)
        frame = self._prepare_rows(kind, frame, s)
        self._create_table(kind, frame, s)
        self._insert(kind, frame, s, bulk=True)
        self._touch(kind, params=params, synthetic=synthetic)

    def _append_rows(self, kind: str, frame: gpd.GeoDataFrame, s: LayerSpec) -> None:
        self._add_missing_columns(kind, frame)
        self._ensure_key_index(kind, s)
        self._insert(kind, frame, s, bulk=len(frame) > _BULK_ROWS)

    def _create_table(self, name: str, frame: pd.DataFrame, s: LayerSpec | None) -> None:
        """(Re)create table ``name`` for ``frame``'s columns, empty, as GDAL makes it (columns, spatial
        index, triggers, gpkg_* registration): GDAL writes the empty layer to a scratch file, whose
        definitions are then run here, inside this transaction."""
        con = self._tx_con()
        self._ensure_system_tables()
        empty = frame.iloc[:0]
        key = _schema_key(name, empty, s)
        defs = _DEFINITIONS.get(key)
        if defs is None:
            scratch = Path(tempfile.mkdtemp(prefix=f".{self.path.stem}.", suffix=".scratch", dir=self.path.parent))
            try:
                path = scratch / "layer.gpkg"
                if s is not None:
                    pyogrio.write_dataframe(
                        empty, path, layer=name, driver="GPKG", promote_to_multi=is_multi(s),
                        geometry_type=geometry_type(s),
                        layer_options={"DESCRIPTION": f"{s.zh} {s.en}", "IDENTIFIER": name})
                else:
                    pyogrio.write_dataframe(pd.DataFrame(empty), path, layer=name, driver="GPKG")
                defs = _definitions(path, name)
            finally:
                shutil.rmtree(scratch, ignore_errors=True)
            if len(_DEFINITIONS) >= _DEFINITIONS_KEPT:
                _DEFINITIONS.clear()
            _DEFINITIONS[key] = defs
        self._drop(name)
        srs_map = {}
        for row in defs["srs"]:
            srs_map[row["srs_id"]] = _ensure_srs(con, row)
        for table, sql in defs["system"].items():  # e.g. gpkg_extensions, on the first spatial index
            if not _has_table(con, table):
                con.execute(sql)
        con.execute(defs["table"])
        for row_name, rows in (("gpkg_contents", defs["contents"]), ("gpkg_geometry_columns", defs["geometry"]),
                               ("gpkg_extensions", defs["extensions"]), ("gpkg_ogr_contents", defs["ogr"])):
            for row in rows:
                row = dict(row)
                if "srs_id" in row and row["srs_id"] in srs_map:
                    row["srs_id"] = srs_map[row["srs_id"]]
                if not _has_table(con, row_name):
                    continue
                cols = ", ".join(_ident(c) for c in row)
                con.execute(f"INSERT INTO {row_name} ({cols}) VALUES ({', '.join('?' * len(row))})",
                            list(row.values()))
        for sql in defs["rtree"] + defs["triggers"]:
            con.execute(sql)
        self._ensure_key_index(name, s)

    def _ensure_key_index(self, name: str, s: LayerSpec | None) -> None:
        """Indexes on the layer's key field (``problem_id``) and, for a big layer, on its times: the
        next id, a case read by its number and the latest report or closure are index look-ups, not
        scans of the layer. Made on the first append to a file written before they existed."""
        if s is None:
            return
        con = self._tx_con()
        present = self._columns(name)
        for f in indexed_fields(s):
            if f in present:
                con.execute(f"CREATE INDEX IF NOT EXISTS {_ident(f'idx_{name}_{f}')} ON {_ident(name)} ({_ident(f)})")

    def _add_missing_columns(self, name: str, frame: pd.DataFrame) -> None:
        con = self._tx_con()
        present = self._columns(name)
        geom = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
        for c in frame.columns:
            if c != geom and c not in present:
                con.execute(f"ALTER TABLE {_ident(name)} ADD COLUMN {_ident(str(c))} {_gpkg_type(frame[c])}")

    def _insert(self, name: str, frame: pd.DataFrame, s: LayerSpec | None, *, bulk: bool) -> None:
        """Insert ``frame``'s rows (geometry as GeoPackage blobs). ``bulk``: the spatial index is
        filled in one pass and GDAL's feature count (``gpkg_ogr_contents``) moved once, instead of by
        their per-row triggers (the count's trigger scans gpkg_ogr_contents with lower() on every row:
        3,792 coverage gaps took 100 ms with it, 20 ms without)."""
        if not len(frame):
            return
        geom_col = _geometry_column(self._tx_con(), name)
        attrs = [str(c) for c in frame.columns if not (geom_col and isinstance(frame, gpd.GeoDataFrame)
                                                      and c == frame.geometry.name)]
        geoms = np.asarray(frame.geometry.array, dtype=object) \
            if geom_col and isinstance(frame, gpd.GeoDataFrame) else None
        self._insert_values(name, attrs, [_sqlite_values(frame[c]) for c in attrs], geoms, s, bulk=bulk)

    def _insert_values(self, name: str, attrs: list[str], values: list[list[Any]], geoms: np.ndarray | None,
                       s: LayerSpec | None, *, bulk: bool) -> None:
        """Insert rows given as SQLite values per column (``attrs``), with ``geoms`` (store CRS) if the
        table has a geometry column; see :meth:`_insert`."""
        con = self._tx_con()
        counted = None  # the feature-count trigger, dropped for a bulk insert and made again after it
        if bulk:
            counted = con.execute("SELECT name, sql FROM sqlite_master WHERE type='trigger' AND tbl_name=? "
                                  "AND name=?", (name, f"trigger_insert_feature_count_{name}")).fetchone()
            if counted is not None:
                con.execute(f"DROP TRIGGER {_ident(counted[0])}")
        geom_col = _geometry_column(con, name)
        names = list(attrs)
        rtree = triggers = None
        bounds = None
        if geom_col and geoms is not None:
            srs_id = con.execute("SELECT srs_id FROM gpkg_geometry_columns WHERE table_name=?",
                                 (name,)).fetchone()[0]
            if s is not None and is_multi(s):
                geoms = promote(geoms)
            blobs, bounds = _gpkg_blobs(geoms, srs_id)
            values.append(blobs)
            names.append(geom_col)
            rtree = f"rtree_{name}_{geom_col}"
            if not _has_table(con, rtree):
                rtree = None
            if bulk and rtree:
                triggers = [r[0] for r in con.execute(
                    "SELECT sql FROM sqlite_master WHERE type='trigger' AND tbl_name=? AND name LIKE ?",
                    (name, f"rtree_{name}_{geom_col}_%"))]
                for (tname,) in con.execute(
                        "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name=? AND name LIKE ?",
                        (name, f"rtree_{name}_{geom_col}_%")).fetchall():
                    con.execute(f"DROP TRIGGER {_ident(tname)}")
        pk = _primary_key(con, name)
        start = con.execute(f"SELECT COALESCE(MAX({_ident(pk)}), 0) FROM {_ident(name)}").fetchone()[0]
        rows = list(zip(*values, strict=True))
        con.executemany(
            f"INSERT INTO {_ident(name)} ({', '.join(_ident(c) for c in names)}) "
            f"VALUES ({', '.join('?' * len(names))})", rows)
        if triggers is not None and bounds is not None and rtree:
            fids = [r[0] for r in con.execute(
                f"SELECT {_ident(pk)} FROM {_ident(name)} WHERE {_ident(pk)} > ? ORDER BY 1", (start,))]
            ok = ~np.isnan(bounds[:, 0])
            if len(fids) != len(bounds):
                raise StoreError(f"{self.path}: layer '{name}': {len(fids)} rows inserted, {len(bounds)} given")
            box = bounds[ok]
            con.executemany(f"INSERT INTO {_ident(rtree)} VALUES (?, ?, ?, ?, ?)",
                            zip(np.asarray(fids, dtype=np.int64)[ok].tolist(), box[:, 0].tolist(), box[:, 2].tolist(),
                                box[:, 1].tolist(), box[:, 3].tolist(), strict=True))
            for sql in triggers:
                con.execute(sql)
        if counted is not None:  # what the trigger would have done, row by row (NULL stays NULL)
            con.execute("UPDATE gpkg_ogr_contents SET feature_count = feature_count + ? "
                        "WHERE lower(table_name) = lower(?)", (len(rows), name))
            con.execute(counted[1])
        if bounds is not None and len(bounds) and not np.isnan(bounds[:, 0]).all():
            con.execute(
                "UPDATE gpkg_contents SET min_x = MIN(COALESCE(min_x, ?), ?), min_y = MIN(COALESCE(min_y, ?), ?), "
                "max_x = MAX(COALESCE(max_x, ?), ?), max_y = MAX(COALESCE(max_y, ?), ?) WHERE table_name = ?",
                (*[float(v) for pair in zip(
                    (np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1]), np.nanmax(bounds[:, 2]),
                     np.nanmax(bounds[:, 3])),
                    (np.nanmin(bounds[:, 0]), np.nanmin(bounds[:, 1]), np.nanmax(bounds[:, 2]),
                     np.nanmax(bounds[:, 3])), strict=True) for v in pair], name))

    def _update_rows(self, kind: str, key: str, k: Any, values: Mapping[str, Any]) -> int:
        sets = ", ".join(f"{_ident(c)}=?" for c in values)
        cur = self._tx_con().execute(f"UPDATE {_ident(kind)} SET {sets} WHERE {_ident(key)}=?",
                                     [_sql_value(v) for v in values.values()] + [_sql_value(k)])
        return cur.rowcount

    def _drop(self, kind: str) -> None:
        con = self._tx_con()
        if kind not in self._tables():
            return
        # the spatial index is a virtual table (its shadow tables go with it) plus triggers
        for (name,) in con.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name LIKE ? "
                "AND sql LIKE 'CREATE VIRTUAL TABLE%'", (f"rtree_{kind}_%",)).fetchall():
            con.execute(f"DROP TABLE {_ident(name)}")
        con.execute(f"DROP TABLE {_ident(kind)}")  # its triggers go with it
        for t in ("gpkg_contents", "gpkg_geometry_columns", "gpkg_extensions", "gpkg_ogr_contents",
                  "gpkg_data_columns"):
            if _has_table(con, t):
                con.execute(f"DELETE FROM {t} WHERE table_name=?", (kind,))
        if _has_table(con, META_TABLE):
            con.execute(f"DELETE FROM {META_TABLE} WHERE kind=?", (kind,))

    def _replace_table(self, name: str, frame: pd.DataFrame) -> None:
        self._create_table(name, frame, None)
        self._ensure_table_key_index(name)
        self._insert(name, frame, None, bulk=len(frame) > _BULK_ROWS)

    def _append_table(self, name: str, frame: pd.DataFrame) -> None:
        if not self.has(name):
            self._replace_table(name, frame)
            return
        self._add_missing_columns(name, frame)
        self._ensure_table_key_index(name)
        self._insert(name, frame, None, bulk=len(frame) > _BULK_ROWS)

    def _ensure_table_key_index(self, name: str) -> None:
        """An index on a plain table's column named as a layer's key (``problem_history.problem_id``):
        one case's history or photos are then an index look-up, not a scan of every case's rows. Made
        on the first append to a file written before it existed."""
        con = self._tx_con()
        for f in sorted(set(self._columns(name)) & _LAYER_KEYS):
            con.execute(f"CREATE INDEX IF NOT EXISTS {_ident(f'idx_{name}_{f}')} ON {_ident(name)} ({_ident(f)})")


_LAYER_KEYS = frozenset(s.key for s in CATALOGUE.values() if s.key)  # e.g. problem_id
_BULK_ROWS = 64  # appends above this many rows fill the spatial index in one pass

# A server's store (``keep_writer``) keeps one writing connection per file and process open between
# transactions (used only under the store's lock): a new connection parses the GeoPackage's schema on
# its first statement, and closing the last connection to a WAL file checkpoints and removes the log
# (~10 ms each per write). The price: committed pages stay in the log (file-gpkg-wal) until a checkpoint,
# so a copy of the .gpkg alone made meanwhile lacks them (QGIS and SQLite read the log); the web's writer
# lane folds the log into the file whenever its writes pause (:meth:`GeoPackageStore.checkpoint`).
# Keyed by process (a forked child opens its own) and checked against the file's inode: the connection
# holds the file open, so while it lives the inode cannot be reused by a file made anew at that path.
# Deleting the file: call :func:`release` first (SQLite removes the log by name when it closes).
_WRITERS: dict[tuple[int, str], tuple[int, sqlite3.Connection]] = {}
_WRITERS_KEPT = 8  # files this process keeps a writing connection to (the least recently written closed)


def _writer_connection(path: Path) -> sqlite3.Connection:
    key = (os.getpid(), str(path.resolve()))
    ino = os.stat(path).st_ino
    held = _WRITERS.pop(key, None)
    if held is not None:
        if held[0] == ino:
            _WRITERS[key] = held  # most recently used last
            return held[1]
        _close_quietly(held[1])
    con = _open(path, writer=True)
    _WRITERS[key] = (ino, con)
    with _LOCKS_GUARD:
        mine = [k for k in _WRITERS if k[0] == key[0] and k != key]
    for old in mine[:max(0, len(mine) + 1 - _WRITERS_KEPT)]:
        lock = _thread_lock(Path(old[1]))
        if lock.acquire(blocking=False):  # not while another thread writes that file
            try:
                held = _WRITERS.pop(old, None)
                if held is not None:
                    _close_quietly(held[1])
            finally:
                lock.release()
    return con


def release(path: str | Path) -> None:
    """Close this process's writing connection to ``path`` and this thread's reading one (before the file
    is deleted or replaced: SQLite removes the write-ahead log by name when a file's last connection
    closes)."""
    path = Path(path)
    with _thread_lock(path):
        held = _WRITERS.pop((os.getpid(), str(path.resolve())), None)
        if held is not None:
            _close_quietly(held[1])
    cons = getattr(_READERS, "cons", None)  # and this thread's kept reading connection
    reader = cons.pop(str(path), None) if cons is not None else None
    if reader is not None:
        _close_quietly(reader[1])


def _close_quietly(con: sqlite3.Connection) -> None:
    try:
        con.close()
    except sqlite3.Error:
        pass


def _drop_writer_connection(path: Path) -> None:
    held = _WRITERS.pop((os.getpid(), str(path.resolve())), None)
    if held is not None:
        _close_quietly(held[1])


_READERS = threading.local()


def _reader(path: Path) -> sqlite3.Connection | None:
    """This thread's reading connection to the GeoPackage at ``path``, kept open between calls (``None``
    when there is no file yet).

    A new connection parses the whole schema on its first statement (a county's two dozen layers with
    their R-tree triggers: ~10 ms), and closing the last one checkpoints the write-ahead log (~10 ms);
    a web page asks the store's tables, CRS and version dozens of times. A kept connection in autocommit
    mode sees every commit (each statement reads the latest snapshot of the WAL), and is replaced when
    the path names another file (another inode) or in a forked process.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    key = (os.getpid(), st.st_dev, st.st_ino)
    cons: dict[str, tuple[tuple[int, int, int], sqlite3.Connection]] | None = getattr(_READERS, "cons", None)
    if cons is None:
        cons = _READERS.cons = {}
    hit = cons.get(str(path))
    if hit is not None and hit[0] == key:
        return hit[1]
    if hit is not None and hit[0][0] == key[0]:
        hit[1].close()  # the path names another file now (or it was replaced): its old connection goes
    con = _open(path)
    cons[str(path)] = (key, con)
    return con


_CRS_SEEN = threading.local()


def _crs_of(recorded: str) -> CRS:
    """The CRS a store records, parsed once per thread (pyproj takes about a millisecond a parse, and its
    objects are not to be shared between threads)."""
    seen = _CRS_SEEN.__dict__.setdefault("crs", {})
    if recorded not in seen:
        seen[recorded] = CRS.from_user_input(recorded)
    return seen[recorded]


def _open(path: Path, *, writer: bool = False) -> sqlite3.Connection:
    con = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    # the spatial-index triggers GDAL puts on each layer call these GeoPackage functions
    con.create_function("ST_IsEmpty", 1, _st_is_empty, deterministic=True)
    for i, name in enumerate(("ST_MinX", "ST_MinY", "ST_MaxX", "ST_MaxY")):
        con.create_function(name, 1, _bounds_getter(i), deterministic=True)
    if writer:
        if con.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:  # needs a moment with no other connection open; a file made by us is WAL from the start
                con.execute("PRAGMA journal_mode=WAL")
            except sqlite3.OperationalError:
                log.info("%s: could not switch to WAL mode now (another program has it open)", path)
        con.execute("PRAGMA synchronous=FULL")  # an acknowledged commit survives a crash of the machine
    return con


def _create_geopackage(path: Path) -> None:
    """A new, empty GeoPackage (made by GDAL: the gpkg_* tables and reference systems) with the
    project table, in write-ahead-log mode."""
    pyogrio.write_dataframe(
        pd.DataFrame({"key": pd.Series(["store_version"], dtype="object"),
                      "value": pd.Series(["1"], dtype="object")}),
        path, layer=PROJECT_TABLE, driver="GPKG",
    )
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def _has_table(con: sqlite3.Connection, name: str) -> bool:
    return con.execute("SELECT 1 FROM sqlite_master WHERE name=?", (name,)).fetchone() is not None


def _geometry_column(con: sqlite3.Connection, name: str) -> str | None:
    row = con.execute("SELECT column_name FROM gpkg_geometry_columns WHERE table_name=?", (name,)).fetchone()
    return row[0] if row else None


def _primary_key(con: sqlite3.Connection, name: str) -> str:
    return next((r[1] for r in con.execute(f"PRAGMA table_info({_ident(name)})") if r[5]), "fid")


#: what GDAL writes for a table, per schema (:func:`_schema_key`), kept for the process: GDAL makes a scratch
#: GeoPackage for each (~15 ms of CPU), and `sanigrid analyse` writes some layers once per facility kind
_DEFINITIONS: dict[tuple[Any, ...], dict[str, Any]] = {}
_DEFINITIONS_KEPT = 256


def _schema_key(name: str, empty: pd.DataFrame, s: LayerSpec | None) -> tuple[Any, ...]:
    """All that the definitions GDAL writes for table ``name`` depend on: the columns and their dtypes, the
    geometry column and its CRS, the layer's geometry type and description, and GDAL's version. (The time
    GDAL records in gpkg_contents differs; every write sets its own after.)"""
    geom = getattr(empty, "_geometry_column_name", None) if isinstance(empty, gpd.GeoDataFrame) else None
    geom = geom if geom in empty.columns else None
    crs = empty.crs.to_wkt() if geom is not None and empty.crs is not None else None
    layer = (is_multi(s), geometry_type(s), s.zh, s.en) if s is not None else None
    return (name, pyogrio.__gdal_version_string__, layer, geom, crs,
            tuple((str(c), str(t)) for c, t in empty.dtypes.items()))


def _definitions(path: Path, name: str) -> dict[str, Any]:
    """What GDAL wrote for layer ``name`` in ``path``: the table, its spatial index and triggers, and
    its rows of the gpkg_* tables and reference systems."""
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        def rows(table: str, col: str = "table_name") -> list[dict[str, Any]]:
            if not _has_table(con, table):
                return []
            return [dict(r) for r in con.execute(f"SELECT * FROM {table} WHERE {col}=?", (name,))]

        table = con.execute("SELECT sql FROM sqlite_master WHERE type='table' AND name=?", (name,)).fetchone()[0]
        rtree = [r[0] for r in con.execute(
            "SELECT sql FROM sqlite_master WHERE type='table' AND name LIKE ? AND sql LIKE 'CREATE VIRTUAL TABLE%'",
            (f"rtree_{name}_%",))]
        triggers = [r[0] for r in con.execute("SELECT sql FROM sqlite_master WHERE type='trigger' AND tbl_name=?",
                                              (name,))]
        contents = rows("gpkg_contents")
        srs_ids = {r["srs_id"] for r in contents if r.get("srs_id") is not None}
        srs = [dict(r) for r in con.execute("SELECT * FROM gpkg_spatial_ref_sys")
               if r["srs_id"] in srs_ids and r["srs_id"] > 0]
        system = {r[0]: r[1] for r in con.execute(
            "SELECT name, sql FROM sqlite_master WHERE type='table' AND name LIKE 'gpkg_%'")}
        return {"table": table, "system": system, "rtree": rtree, "triggers": triggers, "contents": contents,
                "geometry": rows("gpkg_geometry_columns"), "extensions": rows("gpkg_extensions"),
                "ogr": rows("gpkg_ogr_contents"), "srs": srs}
    finally:
        con.close()


def _ensure_srs(con: sqlite3.Connection, row: dict[str, Any]) -> int:
    """The srs_id of reference system ``row`` in this file (added if absent)."""
    found = con.execute("SELECT srs_id FROM gpkg_spatial_ref_sys WHERE lower(organization)=lower(?) "
                        "AND organization_coordsys_id=?", (row["organization"], row["organization_coordsys_id"])
                        ).fetchone()
    if found:
        return int(found[0])
    srs_id = int(row["srs_id"])
    if con.execute("SELECT 1 FROM gpkg_spatial_ref_sys WHERE srs_id=?", (srs_id,)).fetchone():
        srs_id = int(con.execute("SELECT MAX(srs_id) FROM gpkg_spatial_ref_sys").fetchone()[0]) + 1
    row = {**row, "srs_id": srs_id}
    cols = [c for c in row if c in {r[1] for r in con.execute("PRAGMA table_info(gpkg_spatial_ref_sys)")}]
    con.execute(f"INSERT INTO gpkg_spatial_ref_sys ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                [row[c] for c in cols])
    return srs_id


def _gpkg_type(col: pd.Series) -> str:
    """The GeoPackage column type GDAL gives a pandas column."""
    dt = col.dtype
    if pd.api.types.is_bool_dtype(dt):
        return "BOOLEAN"
    if pd.api.types.is_integer_dtype(dt):
        return "INTEGER"
    if pd.api.types.is_float_dtype(dt):
        return "REAL"
    if pd.api.types.is_datetime64_any_dtype(dt):
        return "DATETIME"
    return "TEXT"


def _sqlite_values(col: pd.Series) -> list[Any]:
    """A column as SQLite values, the way GDAL stores them in a GeoPackage."""
    dt = col.dtype
    if len(col) <= _BULK_ROWS:  # a few rows (a web report): value by value, without pandas' per-call cost
        return [_sql_value(v) for v in col.tolist()]
    if pd.api.types.is_datetime64_any_dtype(dt):
        ts = pd.Series(col)
        if isinstance(dt, pd.DatetimeTZDtype):
            ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
        ms = ts.dt.microsecond // 1000
        text = ts.dt.strftime("%Y-%m-%dT%H:%M:%S")
        text = text.where(ms == 0, text + "." + ms.astype("Int64").astype(str).str.zfill(3))
        if isinstance(dt, pd.DatetimeTZDtype):
            text = text + "Z"
        return [None if pd.isna(v) else v for v in text.astype(object)]
    # numbers through numpy's tolist (Python ints and floats), missing values (NA, NaN) as NULL: a Python
    # test per value cost ~20 µs a row (8,690 hot-spot cells: 145 of the 480 ms of their write)
    if pd.api.types.is_bool_dtype(dt):
        return _nulls(col.to_numpy(dtype=bool, na_value=False).astype(np.int64).tolist(), col)
    if pd.api.types.is_integer_dtype(dt):
        return _nulls(col.to_numpy(dtype=getattr(dt, "numpy_dtype", dt), na_value=0).tolist(), col)
    if pd.api.types.is_float_dtype(dt):
        return _nulls(col.to_numpy(dtype=np.float64, na_value=np.nan).tolist(), col)
    return [v if v is None or isinstance(v, str | bytes) else _sql_value(v) for v in col.astype(object)]


def _nulls(values: list[Any], col: pd.Series) -> list[Any]:
    """``values`` with ``None`` where ``col`` is missing."""
    for i in np.flatnonzero(col.isna().to_numpy()).tolist():
        values[i] = None
    return values


def _sqlite_column(values: Sequence[Any], decl: str) -> pd.Series:
    """A column read through SQLite with the dtype pyogrio gives it."""
    t = (decl or "").upper()
    vals = list(values)
    if t in ("INTEGER", "INT", "MEDIUMINT", "SMALLINT", "TINYINT", "BIGINT"):
        return pd.Series(vals, dtype="Int64" if None in vals else "int64")
    if t == "BOOLEAN":
        return pd.Series([None if v is None else bool(v) for v in vals], dtype="boolean" if None in vals else "bool")
    if t in ("REAL", "FLOAT", "DOUBLE"):
        return pd.Series([np.nan if v is None else v for v in vals], dtype="float64")
    if t in ("DATETIME", "DATE"):
        return pd.Series(pd.to_datetime(pd.Series(vals, dtype="object"), format="ISO8601", utc=False),
                         dtype=None).astype("datetime64[ms]")
    if t.startswith("TEXT") or t == "":
        return pd.Series(vals, dtype="str")
    return pd.Series(vals, dtype="object")


def _gpkg_blobs(geoms: np.ndarray, srs_id: int) -> tuple[list[bytes | None], np.ndarray]:
    """GeoPackage geometry blobs (header with the xy envelope, then little-endian WKB) and bounds."""
    missing = shapely.is_missing(geoms)
    bounds = shapely.bounds(geoms)
    wkb = shapely.to_wkb(geoms, byte_order=1, output_dimension=2, flavor="iso")
    out: list[bytes | None] = []
    empty_head = struct.pack("<2sBBi", b"GP", 0, 0b00010001, srs_id)
    for w, b, miss in zip(wkb, bounds.tolist(), missing, strict=True):
        if miss:
            out.append(None)
        elif b[0] != b[0]:  # empty: no envelope, the empty flag set
            out.append(empty_head + w)
        else:
            out.append(struct.pack("<2sBBi4d", b"GP", 0, 0b00000011, srs_id, b[0], b[2], b[1], b[3]) + w)
    return out, bounds


def promote(geoms: np.ndarray) -> np.ndarray:
    """Single parts as one-part Multi geometries (the layer's column is Multi*)."""
    out = geoms.copy()
    types = shapely.get_type_id(geoms)
    for type_id, fn in ((0, shapely.multipoints), (1, shapely.multilinestrings), (3, shapely.multipolygons)):
        mask = types == type_id
        if mask.any():
            out[mask] = fn(geoms[mask], indices=np.arange(int(mask.sum())))
    return out


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


def frame_rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame's rows as dicts of plain values: a missing value is ``None``, a time a ``pd.Timestamp``,
    an integer an ``int``, a flag a ``bool``; the geometry (if any) under ``"geometry"``."""
    geom = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    cols = {}
    for c in frame.columns:
        vals = frame[c].to_numpy(dtype=object) if c != geom else np.asarray(frame[c].array, dtype=object)
        cols["geometry" if c == geom else str(c)] = [_plain_value(v) for v in vals]
    return [{c: v[i] for c, v in cols.items()} for i in range(len(frame))]


def _plain_value(v: Any) -> Any:
    if _missing(v):
        return None
    if isinstance(v, np.datetime64):
        return pd.Timestamp(v)
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _row_converter(decl: str, dtype: str | None) -> Any:
    """A function taking one SQLite value to what :meth:`GeoPackageStore.read` gives for it: the column's
    declared type as :func:`_sqlite_column` reads it, then the catalogue type as :func:`coerce` sets it
    (``dtype``: the catalogue field's type, ``None`` for a column outside the catalogue)."""
    t = (decl or "").upper()
    if dtype == "int":
        return _to_int
    if dtype == "bool":
        return lambda v: None if v is None else bool(v)
    if t in ("INTEGER", "INT", "MEDIUMINT", "SMALLINT", "TINYINT", "BIGINT"):
        return lambda v: v
    if t == "BOOLEAN":
        return lambda v: None if v is None else bool(v)
    if t in ("REAL", "FLOAT", "DOUBLE"):
        return lambda v: None if v is None else float(v)
    if t in ("DATETIME", "DATE"):
        return _to_time
    if t.startswith("TEXT") or t == "":
        return lambda v: None if v is None else str(v)
    return lambda v: v


def _to_int(v: Any) -> int | None:
    if v is None:
        return None
    try:
        return int(v) if not isinstance(v, float) or v == int(v) else None
    except (TypeError, ValueError, OverflowError):
        return None


def _to_time(v: Any) -> pd.Timestamp | None:
    if v is None:
        return None
    try:
        t = pd.Timestamp(v)
    except (TypeError, ValueError):
        return None
    if t is pd.NaT:
        return None
    if t.tzinfo is not None:
        t = t.tz_convert("UTC").tz_localize(None)
    return t.as_unit("ms").floor("ms")


def _gpkg_geometries(blobs: Sequence[bytes | None]) -> np.ndarray:
    """Decode GeoPackage geometry blobs at once (headers cut in Python, WKB parsed by shapely in one call)."""
    wkb: list[bytes | None] = []
    empty = []
    for i, b in enumerate(blobs):
        if b is None or len(b) < 8 or b[:2] != b"GP":
            wkb.append(None)
            continue
        flags = b[3]
        if flags & 0b10000:
            empty.append(i)
        wkb.append(bytes(b[8 + 8 * _ENVELOPE_DOUBLES.get((flags >> 1) & 0b111, 0):]))
    out = shapely.from_wkb(np.asarray(wkb, dtype=object))
    return np.asarray(out, dtype=object)


def _st_is_empty(blob: bytes | None) -> int | None:
    g = _gpkg_geometry(blob)
    return None if g is None else int(g.is_empty)


def _bounds_getter(i: int):
    def get(blob: bytes | None) -> float | None:
        g = _gpkg_geometry(blob)
        return None if g is None or g.is_empty else float(g.bounds[i])
    return get


RESERVED_COLUMNS = ("fid", "geom")  # every backend's key and geometry columns: not writable by update


def check_geometries(kind: str, frame: gpd.GeoDataFrame, s: LayerSpec, location: str) -> None:
    """Refuse geometries of a type layer ``kind`` does not take (missing ones are allowed)."""
    _check_geometry_types(kind, np.asarray(frame.geometry.array, dtype=object), s, location)


def _check_geometry_types(kind: str, geoms: np.ndarray, s: LayerSpec, location: str) -> None:
    types = [_GEOM_TYPES[t] for t in np.unique(shapely.get_type_id(geoms)).tolist() if t >= 0]
    allowed = set(s.geometry)
    if is_multi(s):
        allowed |= {f"Multi{g}" for g in s.geometry if not g.startswith("Multi")}
    bad = sorted({t for t in types if t not in allowed})
    if bad:
        raise StoreError(f"{location}: cannot write '{kind}': {', '.join(bad)} geometries; "
                         f"layer '{kind}' takes {' or '.join(s.geometry)} geometries")


_GEOM_TYPES = {0: "Point", 1: "LineString", 2: "LinearRing", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString",
               6: "MultiPolygon", 7: "GeometryCollection"}  # shapely's type ids (-1: missing)


def indexed_fields(s: LayerSpec) -> list[str]:
    """The fields a store keeps an index on: the key, and the times of a big layer (problems)."""
    times = [f.name for f in s.fields if f.dtype == "datetime"] if s.big else []
    return ([s.key] if s.key else []) + [f for f in times if f != s.key]


def is_multi(s: LayerSpec) -> bool:
    """Promote to Multi* only for layers of one base type (mixed layers keep what they get)."""
    return any(g.startswith("Multi") for g in s.geometry) and len({g.replace("Multi", "") for g in s.geometry}) == 1


def geometry_type(s: LayerSpec) -> str:
    kinds = {g.replace("Multi", "") for g in s.geometry}
    if len(kinds) > 1:
        return "Unknown"
    base = kinds.pop()
    return f"Multi{base}" if is_multi(s) else base


def prepare(frame: gpd.GeoDataFrame, s: LayerSpec) -> gpd.GeoDataFrame:
    """Catalogue columns first with their types; extra columns kept after them.

    Built column by column into one new frame (a web report is a 1-row frame: setting columns one at a
    time on a GeoDataFrame cost ~0.2 s, most of an append).
    """
    n = len(frame)
    df = pd.DataFrame(frame, copy=False)
    geom_name = frame.geometry.name
    cols: dict[str, Any] = {}
    # a few rows (a batch of web reports): the values taken one by one where they already have the
    # field's type, one Series built per field; anything else goes through the pandas conversions below
    few = dict(zip(df.columns, df.to_numpy(dtype=object).T, strict=True)) if n <= _BULK_ROWS else {}
    for f in s.fields:
        if f.name in few:
            col = _typed_column(few[f.name], f.dtype)
            if col is not None:
                cols[f.name] = col
                continue
        col = df[f.name].reset_index(drop=True) if f.name in df.columns else pd.Series([None] * n, dtype=object)
        if f.dtype == "bool":
            cols[f.name] = col.astype("boolean")
        elif f.dtype in ("date", "datetime"):
            cols[f.name] = pd.to_datetime(col, errors="coerce").astype("datetime64[ms]")
        elif f.dtype == "int":
            cols[f.name] = pd.to_numeric(col, errors="coerce").astype("Int64")
        elif f.dtype == "float":
            cols[f.name] = pd.to_numeric(col, errors="coerce").astype("float64")
        else:
            have = col.notna().to_numpy()
            cols[f.name] = pd.Series([str(v) if h else None for v, h in zip(col.to_numpy(object), have, strict=True)])
    for c in df.columns:
        if c not in cols and c != geom_name:
            cols[c] = df[c].reset_index(drop=True)
    out = pd.DataFrame(cols, index=pd.RangeIndex(n))
    out[geom_name] = gpd.GeoSeries(frame.geometry.to_numpy(), crs=frame.crs)
    return gpd.GeoDataFrame(out, geometry=geom_name, crs=frame.crs)


def _missing(v: Any) -> bool:
    return v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and v != v) \
        or (isinstance(v, np.datetime64) and np.isnat(v))


_PANDAS_DTYPE = {"str": "object", "int": "Int64", "float": "float64", "bool": "boolean", "date": "datetime64[ms]",
                 "datetime": "datetime64[ms]"}


def _typed_column(values: np.ndarray, dtype: str) -> pd.Series | None:
    """A column of a few values as :func:`prepare` converts it, when every value already has the field's
    type (or is missing); ``None`` when one does not (``prepare`` then converts the column with pandas)."""
    typed = _typed_values(values.tolist(), dtype)
    if typed is None:
        return None
    if dtype in ("date", "datetime"):
        return pd.Series(np.array([np.datetime64("NaT", "ms") if v is None else np.datetime64(v.to_datetime64(), "ms")
                                   for v in typed], dtype="datetime64[ms]"))
    if dtype == "float":
        return pd.Series([np.nan if v is None else v for v in typed], dtype="float64")
    return pd.Series(typed, dtype=None if dtype == "str" else _PANDAS_DTYPE[dtype])


def _typed_values(vals: list[Any], dtype: str) -> list[Any] | None:
    """Values of a catalogue field's type ``dtype`` as :func:`prepare` makes them (``None`` for a missing
    one; times as ``pd.Timestamp`` to the millisecond), when every value already has that type (or is
    missing); ``None`` when one does not (the caller then converts with pandas)."""
    ok = [not _missing(v) for v in vals]
    have = [v for v, k in zip(vals, ok, strict=True) if k]
    if dtype == "str":
        return [str(v) if k else None for v, k in zip(vals, ok, strict=True)]
    if dtype == "int" and all(isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_) for v in have):
        return [int(v) if k else None for v, k in zip(vals, ok, strict=True)]
    if dtype == "float" and all(isinstance(v, float | int | np.number) and not isinstance(v, bool | np.bool_)
                                for v in have):
        return [float(v) if k else None for v, k in zip(vals, ok, strict=True)]
    if dtype == "bool" and all(isinstance(v, bool | np.bool_) for v in have):
        return [bool(v) if k else None for v, k in zip(vals, ok, strict=True)]
    if dtype in ("date", "datetime") and all(
            (isinstance(v, pd.Timestamp | datetime) and v.tzinfo is None) or isinstance(v, np.datetime64)
            for v in have):
        return [pd.Timestamp(v).as_unit("ms") if k else None for v, k in zip(vals, ok, strict=True)]
    return None


def _same_crs(a: Any, b: CRS) -> bool:
    return a is b or CRS.from_user_input(a).equals(b)


def coerce(frame: gpd.GeoDataFrame, s: LayerSpec) -> gpd.GeoDataFrame:
    for f in s.fields:
        if f.name not in frame.columns:
            continue
        if f.dtype == "int":
            frame[f.name] = pd.to_numeric(frame[f.name], errors="coerce").astype("Int64")
        elif f.dtype == "bool":
            frame[f.name] = frame[f.name].astype("boolean")
    return frame


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(frame).copy()
    if "geometry" in out.columns:
        out = out.drop(columns="geometry")
    return out.reset_index(drop=True)


def _counts_frame(names: list[str], extra: list[str], rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
    """The frame :meth:`Store.count_by` returns, from rows of (keys…, n, extra counts…, first id)."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * (len(names) + len(extra) + 2)
    out: dict[str, pd.Series] = {n: pd.Series(cols[i], dtype=object) for i, n in enumerate(names)}
    for i, n in enumerate(["n", *extra, "first"]):
        out[n] = pd.Series([int(v or 0) for v in cols[len(names) + i]], dtype="int64")
    return pd.DataFrame(out)


def _in_order(frame: gpd.GeoDataFrame, fids: list[int]) -> gpd.GeoDataFrame:
    """``frame``, read in row-id order for the ids ``fids``, put in the order of ``fids``."""
    rank = np.argsort(np.argsort(np.asarray(fids, dtype="int64"), kind="stable"), kind="stable")
    return frame.iloc[rank].reset_index(drop=True)


def _ident(name: str) -> str:
    """An SQLite identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def _sqlite_where(where: Where, *, index_ranges: bool = True) -> tuple[list[str], list[Any]]:
    """``where`` as SQLite conditions with ``?`` placeholders, and their parameters.

    ``index_ranges=False`` keeps SQLite from answering a range, or a condition inside ``either`` or
    ``negate``, through an index (written on ``+field``): without statistics it takes the indexes on the
    times for selective, and looking up most rows of a layer one by one costs ten times a scan.
    """
    return _sqlite_conds(where, index_ranges=index_ranges, nested=False)


def _sqlite_all(where: Where, *, index_ranges: bool) -> tuple[str, list[Any]]:
    """``where`` as one SQLite expression (``1`` when empty), inside ``either`` or ``negate``."""
    conds, args = _sqlite_conds(where, index_ranges=index_ranges, nested=True)
    return ("(" + " AND ".join(conds) + ")" if conds else "1"), args


def _sqlite_conds(where: Where, *, index_ranges: bool, nested: bool) -> tuple[list[str], list[Any]]:
    conds: list[str] = []
    args: list[Any] = []
    for c in where.conds:
        sql_c, a = _sqlite_clause(c, index_ranges=index_ranges, nested=nested)
        conds += sql_c
        args += a
    return conds, args


def _sqlite_clause(c: Clause, *, index_ranges: bool, nested: bool) -> tuple[list[str], list[Any]]:
    if isinstance(c, Either):
        if not c.options:
            return ["0"], []
        parts, args = [], []
        for w in c.options:
            e, a = _sqlite_all(w, index_ranges=index_ranges)
            parts.append(e)
            args += a
        return ["(" + " OR ".join(parts) + ")"], args
    if isinstance(c, Not):
        e, a = _sqlite_all(c.where, index_ranges=index_ranges)
        return [f"NOT COALESCE({e}, 0)"], a  # a condition on a missing value is false, its negation true
    if isinstance(c, Contains):
        if " " not in c.text:  # a text without a space cannot span two fields: field by field, nothing joined
            return (["(" + " OR ".join(f"instr(CAST({_ident(f)} AS TEXT), ?) > 0" for f in c.fields) + ")"],
                    [c.text] * len(c.fields))
        hay = " || ' ' || ".join(f"COALESCE(CAST({_ident(f)} AS TEXT), '')" for f in c.fields)
        return [f"instr({hay}, ?) > 0"], [c.text]
    if isinstance(c, NotAfter):
        return [f"{_ident(c.field)} <= {_ident(c.other)}"], []
    plain = index_ranges or not (nested or c.op in ("range", "lt", "gt"))
    col = _ident(c.field) if plain else "+" + _ident(c.field)
    if c.op == "eq":
        if c.values[0] is None:
            return [f"{col} IS NULL"], []
        return [f"{col} = ?"], [_sql_value(c.values[0])]
    if c.op == "ne":
        return [f"{col} IS NOT ?"], [_sql_value(c.values[0])]  # null-safe: a missing value is "not equal"
    if c.op == "in":
        if not c.values:
            return ["0"], []
        return [f"{col} IN ({', '.join('?' * len(c.values))})"], [_sql_value(v) for v in c.values]
    if c.op in ("lt", "gt"):
        return [f"{col} {'<' if c.op == 'lt' else '>'} ?"], [_sql_value(c.values[0])]
    lo, hi = c.values
    conds, args = [], []
    if lo is not None:
        conds.append(f"{col} >= ?")
        args.append(_sql_value(lo))
    if hi is not None:
        conds.append(f"{col} <= ?")
        args.append(_sql_value(hi))
    return conds, args


def _sqlite_elapsed_ms(k: Elapsed) -> tuple[str, list[Any]]:
    """The milliseconds from a row's field to the instant of an :class:`~layers.filters.Elapsed` key where
    its filter holds (0 elsewhere): the field's from ``julianday``, which SQLite keeps in whole ms."""
    ms = f"CAST(ROUND((julianday({_ident(k.field)}) - 2440587.5) * 86400000.0) AS INTEGER)"
    only, oargs = _sqlite_all(k.only, index_ranges=False)
    return f"(CASE WHEN {only} THEN ? - {ms} ELSE 0 END)", [*oargs, k.to_ms]


def _half_even(d: str, step: int) -> str:
    """``d / step`` rounded half to even (as numpy rounds), in integer arithmetic, symmetric in sign."""
    a, s = f"abs({d})", int(step)
    return (f"((CASE WHEN {d} < 0 THEN -1 ELSE 1 END) * ({a} / {s} + (CASE WHEN 2 * ({a} % {s}) > {s} "
            f"OR (2 * ({a} % {s}) = {s} AND ({a} / {s}) % 2 = 1) THEN 1 ELSE 0 END)))")


def _sqlite_bin(b: Bin) -> tuple[str, list[Any]]:
    """A :class:`~layers.filters.Bin` key as a nested SQLite ``CASE`` (a binary search over the edges)."""
    col = _ident(b.field)
    edges = [_sql_value(e) for e in b.edges]
    args: list[Any] = []

    def search(lo: int, hi: int) -> str:  # the key lies in lo..hi
        if lo == hi:
            return str(lo)
        mid = (lo + hi) // 2
        args.append(edges[mid])
        below = search(lo, mid)
        above = search(mid + 1, hi)
        return f"CASE WHEN {col} {'<' if b.strict else '<='} ? THEN {below} ELSE {above} END"

    body = search(0, len(edges))
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE {body} END", args


def _sql_value(v: Any) -> Any:
    """A Python value as SQLite stores it in a GeoPackage (datetimes as ISO text, missing as NULL)."""
    if isinstance(v, str | bytes):
        return v
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, bool | np.bool_):
        return int(v)
    if isinstance(v, pd.Timestamp | datetime):
        t = pd.Timestamp(v)
        if t.tzinfo is not None:
            return t.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond // 1000:03d}Z")
        return t.strftime("%Y-%m-%dT%H:%M:%S") + (f".{t.microsecond // 1000:03d}" if t.microsecond >= 1000 else "")
    if isinstance(v, date):
        return v.isoformat()
    if isinstance(v, np.generic):
        return None if pd.isna(v) else v.item()
    return v
