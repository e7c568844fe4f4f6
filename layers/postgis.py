"""The PostGIS store: the shared-server backend behind the same :class:`~layers.store.Store` interface.

Every table lives in one schema (``sanigrid`` unless told otherwise): one table per layer (a
``fid`` key, the catalogue's columns with their SQL types, any extra columns, and a ``geom``
column typed by the catalogue, with a GiST index), the ``sanigrid_meta`` table (kind,
updated_at, synthetic, params jsonb), the ``sanigrid_project`` key/value table (CRS, version)
and any free attribute tables.

Writes are atomic: :meth:`PostGISStore.transaction` is one SQL transaction that first takes a
transaction-level advisory lock on the schema, so concurrent writers (threads, processes or
other machines) are serialised, and a failure half-way rolls everything back. Readers see the
last committed state.

>>> store = PostGISStore("postgresql://sanigrid@db.example/county")   # doctest: +SKIP
>>> store.write("toilets", toilets)                                  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import json
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from sanigrid.layers._errors import CRSError, StoreError
from sanigrid.layers.catalogue import CATALOGUE, LayerSpec, spec
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
from sanigrid.layers.store import (
    META_TABLE,
    PROJECT_TABLE,
    LayerInfo,
    StoreBase,
    _counts_frame,
    coerce,
    empty_frame,
    geometry_type,
    is_multi,
    pandas_dtype,
    promote,
)

try:  # an optional extra: pip install 'sanigrid[postgis]'
    import psycopg
    from psycopg import sql
except ImportError:  # pragma: no cover - exercised only without the extra
    psycopg = None  # type: ignore[assignment]
    sql = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

DEFAULT_SCHEMA = "sanigrid"
GEOM = "geom"  # the geometry column of every layer table
FID = "fid"  # the primary key of every table

_SQL_TYPES = {"str": "text", "int": "bigint", "float": "double precision", "bool": "boolean",
              "date": "timestamp", "datetime": "timestamp"}
_READ_BATCH = 20_000


def _require_psycopg() -> None:
    if psycopg is None:
        raise StoreError("the PostGIS store needs psycopg: pip install 'sanigrid[postgis]' (psycopg[binary])")


def _public_url(url: str) -> str:
    """``url`` without its password (for messages and :attr:`PostGISStore.location`)."""
    parts = urlsplit(url)
    if parts.scheme and parts.password is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = f"{parts.username}@{host}" if parts.username else host
        if parts.port:
            netloc += f":{parts.port}"
        return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    if not parts.scheme:  # a key=value conninfo string
        return " ".join(w for w in url.split() if not w.lower().startswith("password="))
    return url


_F = TypeVar("_F", bound=Callable[..., Any])


def _one_connection(method: _F) -> _F:
    """Run a reading method on one connection (the transaction's, or one opened for the call)."""

    @functools.wraps(method)
    def wrapper(self: PostGISStore, *args: Any, **kwargs: Any) -> Any:
        if self._conn is not None:
            return method(self, *args, **kwargs)
        with self._reader() as view:
            return method(view, *args, **kwargs)

    return cast(_F, wrapper)


class PostGISStore(StoreBase):
    """A store in one schema of a PostGIS database.

    Parameters
    ----------
    url
        A libpq connection string, e.g. ``postgresql://user:password@host:5432/db``.
    schema
        The schema that holds this project's tables (created on the first write; default
        :data:`DEFAULT_SCHEMA`, ``sanigrid``).
    crs
        The project CRS to use when the schema has none recorded yet (``None``: pick the
        CGCS2000 Gauss-Kruger zone from the longitude of the first layer written).
    """

    lock_timeout_s: float = 300.0  # how long a write waits for another writer before giving up

    def __init__(self, url: str, *, schema: str | None = None, crs: CRS | str | None = None,
                 _conn: Any = None):
        _require_psycopg()
        self.url = url
        self.schema = schema or DEFAULT_SCHEMA
        self._configured_crs = CRS.from_user_input(crs) if crs else None
        self._conn = _conn  # set inside a transaction: every call uses this connection
        self._dirty = False
        self._read_only = False  # a read view: one connection for the calls of one read

    def __repr__(self) -> str:
        return f"PostGISStore({self.location!r})"

    @property
    def location(self) -> str:
        return f"{_public_url(self.url)} (schema {self.schema})"

    # ---------------------------------------------------------------- connections
    def _connect(self) -> Any:
        try:
            return psycopg.connect(self.url, connect_timeout=10)
        except psycopg.Error as e:
            raise StoreError(f"cannot connect to the PostGIS store {self.location}: {e}") from None

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        """A cursor on the transaction's connection, or on a fresh read connection."""
        if self._conn is not None:
            with self._conn.cursor() as cur:
                yield cur
            return
        with self._connect() as con, con.cursor() as cur:
            try:
                yield cur
            except psycopg.Error as e:
                raise StoreError(f"{self.location}: {e}".strip()) from None

    @contextmanager
    def _reader(self) -> Iterator[PostGISStore]:
        """This store on one connection, for the several queries of one read."""
        if self._conn is not None:
            yield self
            return
        with self._connect() as con:
            view = PostGISStore(self.url, schema=self.schema, crs=self._configured_crs, _conn=con)
            view._read_only = True
            try:
                yield view
            except psycopg.Error as e:
                raise StoreError(f"{self.location}: {e}".strip()) from None

    def _t(self, name: str) -> Any:
        return sql.Identifier(self.schema, name)

    # ---------------------------------------------------------------- transactions
    @contextmanager
    def transaction(self) -> Iterator[PostGISStore]:
        """All writes inside land together or not at all (one SQL transaction).

        >>> with store.transaction() as tx:   # doctest: +SKIP
        ...     tx.write("service_areas", areas)
        ...     tx.write("coverage_gaps", gaps)
        """
        if self._conn is not None:
            yield self
            return
        con = self._connect()
        try:
            with con.transaction():
                # wait for other writers, but not for ever (e.g. a write on the store itself,
                # instead of on ``tx``, inside a transaction would wait for its own lock)
                con.execute(sql.SQL("SET LOCAL lock_timeout = {}").format(
                    sql.Literal(f"{int(self.lock_timeout_s * 1000)}ms")))
                try:
                    con.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                                (f"sanigrid:{self.schema}",))
                except psycopg.errors.LockNotAvailable:
                    raise StoreError(
                        f"{self.location} is busy: another write has held it for more than "
                        f"{self.lock_timeout_s:g} s; try again later (inside `with store.transaction() as tx:` "
                        "write through tx, not through store)") from None
                con.execute("SET LOCAL lock_timeout = 0")
                tx = PostGISStore(self.url, schema=self.schema, crs=self._configured_crs, _conn=con)
                yield tx
                if tx._dirty:
                    tx._bump_version()
        except psycopg.Error as e:
            raise StoreError(f"{self.location}: {e}".strip()) from None
        finally:
            con.close()

    def _require_tx(self) -> None:
        if self._conn is None or self._read_only:
            raise StoreError("internal: a write outside a transaction")
        self._dirty = True

    def _ensure_system_tables(self) -> None:
        self._require_tx()
        con = self._conn
        con.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))
        con.execute(sql.SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text)").format(
            self._t(PROJECT_TABLE)))
        con.execute(sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (kind text PRIMARY KEY, updated_at timestamp, "
            "synthetic boolean NOT NULL DEFAULT false, params jsonb NOT NULL DEFAULT '{{}}'::jsonb)"
        ).format(self._t(META_TABLE)))

    def _bump_version(self) -> None:
        self._ensure_system_tables()
        self._conn.execute(sql.SQL(
            "INSERT INTO {} (key, value) VALUES ('version', '1') "
            "ON CONFLICT (key) DO UPDATE SET value = ({}.value::bigint + 1)::text"
        ).format(self._t(PROJECT_TABLE), sql.Identifier(PROJECT_TABLE)))

    @_one_connection
    def change_token(self, kind: str) -> tuple[Any, ...]:
        """See :meth:`Store.change_token` (here the store's version: any write)."""
        return self.version()

    def version(self) -> tuple[Any, ...]:
        """A counter bumped by every committed write transaction."""
        v = self._project_value("version")
        return (self.schema, int(v)) if v is not None else (None,)

    # ---------------------------------------------------------------- catalog helpers
    def _tables(self) -> set[str]:
        with self._cursor() as cur:
            cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                        (self.schema,))
            return {r[0] for r in cur.fetchall()}

    def _columns(self, name: str) -> dict[str, str]:
        """Column name → SQL data type of a table, in table order."""
        with self._cursor() as cur:
            cur.execute("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
                        (self.schema, name))
            return {r[0]: r[1] for r in cur.fetchall()}

    @_one_connection
    def has(self, kind: str) -> bool:
        return kind in self._tables()

    @_one_connection
    def max_value(self, kind: str, field: str) -> Any:
        if not self.has(kind):
            return None
        if field not in self._columns(kind):
            raise StoreError(f"{self.location}: layer '{kind}' has no field '{field}'")
        with self._cursor() as cur:
            cur.execute(sql.SQL("SELECT MAX({}) FROM {}").format(sql.Identifier(field), self._t(kind)))
            return cur.fetchone()[0]

    # ---------------------------------------------------------------- project CRS
    @_one_connection
    def _project_value(self, key: str) -> str | None:
        if PROJECT_TABLE not in self._tables():
            return None
        with self._cursor() as cur:
            cur.execute(sql.SQL("SELECT value FROM {} WHERE key = %s").format(self._t(PROJECT_TABLE)), (key,))
            row = cur.fetchone()
        return row[0] if row else None

    def _set_project_value(self, key: str, value: str) -> None:
        self._ensure_system_tables()
        self._conn.execute(sql.SQL(
            "INSERT INTO {} (key, value) VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET value = excluded.value"
        ).format(self._t(PROJECT_TABLE)), (key, value))

    def _srid(self, crs: CRS) -> int:
        epsg = crs.to_epsg()
        if epsg is None:
            raise CRSError(f"{self.location}: the store CRS {crs.to_string()} has no EPSG code; "
                           "PostGIS needs one (set project.crs to an EPSG code)")
        return int(epsg)

    # ---------------------------------------------------------------- reading
    @_one_connection
    def read(
        self,
        kind: str,
        *,
        bbox: tuple[float, float, float, float] | None = None,
        where: Where | None = None,
        columns: Sequence[str] | None = None,
    ) -> gpd.GeoDataFrame:
        """Read a layer (empty, with the catalogue's columns, when it was never written).

        ``bbox`` is in the store CRS (features intersecting it); ``where`` is a typed filter
        (:mod:`sanigrid.layers.filters`), compiled to a parameterised query.
        """
        where = as_where(where)
        s = CATALOGUE.get(kind)
        present = self._columns(kind)
        if not present:
            if s is None:
                raise StoreError(f"{self.location}: no layer '{kind}'")
            return empty_frame(kind, self.crs)
        attrs = [c for c in present if c not in (FID, GEOM)]
        if columns is not None:
            bad = [c for c in columns if c not in attrs]
            if bad:
                raise StoreError(f"{self.location}: cannot read layer '{kind}': no field(s) {', '.join(bad)}")
            attrs = [c for c in attrs if c in set(columns)]
        crs = self.crs
        query = sql.SQL("SELECT {}, ST_AsBinary({}) FROM {}").format(
            sql.SQL(", ").join([sql.Identifier(c) for c in attrs] + [sql.SQL("NULL")]) if attrs
            else sql.SQL("NULL"), sql.Identifier(GEOM), self._t(kind))
        conds: list[Any] = []
        args: list[Any] = []
        if bbox is not None:
            conds.append(sql.SQL("ST_Intersects({}, ST_MakeEnvelope(%s, %s, %s, %s, %s))").format(
                sql.Identifier(GEOM)))
            args += [float(v) for v in bbox] + [self._srid(crs) if crs else 0]
        if where:
            check_fields(where, present, layer=kind, location=self.location)
            wconds, wargs = _pg_where(where)
            conds += wconds
            args += wargs
        if conds:
            query += sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds)
        query += sql.SQL(" ORDER BY {}").format(sql.Identifier(FID))
        try:
            rows = self._fetch(query, args)
        except StoreError as e:
            raise StoreError(f"cannot read layer '{kind}': {e}") from None
        cols = list(zip(*rows, strict=True)) if rows else [()] * (len(attrs) + 2)
        data = {c: _column(cols[i], present[c], s, c) for i, c in enumerate(attrs)}
        geoms = shapely.from_wkb(np.asarray(cols[-1], dtype=object)) if rows else np.array([], dtype=object)
        frame = gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=crs), crs=crs)
        if s is not None:
            frame = coerce(frame, s)
        return frame

    def _fetch(self, query: Any, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Run a query through a server-side cursor and return every row."""
        name = f"sanigrid_{uuid.uuid4().hex[:12]}"

        def run(con: Any) -> list[tuple[Any, ...]]:
            with con.cursor(name=name) as cur:
                cur.itersize = _READ_BATCH
                cur.execute(query, args)
                return list(cur.fetchall())

        if self._conn is not None:
            # a failed statement must not spoil the caller's transaction: run it in a savepoint
            try:
                with self._conn.transaction():
                    return run(self._conn)
            except psycopg.Error as e:
                raise StoreError(f"{self.location}: {e}".strip()) from None
        with self._connect() as con:
            try:
                return run(con)
            except psycopg.Error as e:
                raise StoreError(f"{self.location}: {e}".strip()) from None

    @_one_connection
    def read_table(self, name: str, *, where: Where | None = None) -> pd.DataFrame:
        present = self._columns(name)
        if not present:
            return pd.DataFrame()
        attrs = [c for c in present if c not in (FID, GEOM)]
        where = as_where(where)
        conds: list[Any] = []
        args: list[Any] = []
        if where:
            check_fields(where, present, layer=name, location=self.location)
            conds, args = _pg_where(where)
        query = sql.SQL("SELECT {} FROM {}{} ORDER BY {}").format(
            sql.SQL(", ").join(sql.Identifier(c) for c in attrs), self._t(name),
            sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds) if conds else sql.SQL(""), sql.Identifier(FID))
        rows = self._fetch(query, args)
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(attrs)
        return pd.DataFrame({c: _column(cols[i], present[c], None, c) for i, c in enumerate(attrs)})

    # ---------------------------------------------------------------- answers computed in SQL (no rows read)
    def _conds(self, kind: str, where: Where, present: Mapping[str, str]) -> tuple[Any, list[Any]]:
        if not where:
            return sql.SQL(""), []
        check_fields(where, present, layer=kind, location=self.location)
        conds, args = _pg_where(where)
        return sql.SQL(" WHERE ") + sql.SQL(" AND ").join(conds), args

    @_one_connection
    def count(self, kind: str, *, where: Where | None = None) -> int:
        """How many rows of ``kind`` satisfy ``where`` (0 for a layer never written)."""
        present = self._columns(kind)
        if not present:
            return 0
        cond, args = self._conds(kind, as_where(where), present)
        rows = self._fetch(sql.SQL("SELECT COUNT(*) FROM {}").format(self._t(kind)) + cond, args)
        return int(rows[0][0])

    @_one_connection
    def count_by(self, kind: str, by: Sequence[str | Bin], *, where: Where | None = None,
                 also: Mapping[str, Where] | None = None) -> pd.DataFrame:
        """See :meth:`GeoPackageStore.count_by`."""
        names = [k.field if isinstance(k, Bin) else k for k in by]
        extra = dict(also or {})
        empty = _counts_frame(names, list(extra), [])
        present = self._columns(kind)
        if not present:
            return empty
        bad = [n for n in names if n not in present]
        if bad:
            raise StoreError(f"{self.location}: cannot count layer '{kind}': no field(s) {', '.join(bad)}")
        keys: list[Any] = []
        args: list[Any] = []
        for k in by:
            if isinstance(k, Bin):
                e, a = _pg_bin(k)
                keys.append(e)
                args += a
            else:
                keys.append(sql.Identifier(k))
        sums: list[Any] = []
        for w in extra.values():
            check_fields(as_where(w), present, layer=kind, location=self.location)
            e, a = _pg_all(as_where(w))
            sums.append(sql.SQL("COUNT(*) FILTER (WHERE {})").format(e))
            args += a
        cond, wargs = self._conds(kind, as_where(where), present)
        query = sql.SQL("SELECT {} FROM {}").format(
            sql.SQL(", ").join([*keys, sql.SQL("COUNT(*)"), *sums, sql.SQL("MIN({})").format(sql.Identifier(FID))]),
            self._t(kind)) + cond
        if keys:
            query += sql.SQL(" GROUP BY ") + sql.SQL(", ").join(sql.Literal(i + 1) for i in range(len(keys)))
        return _counts_frame(names, list(extra), [r for r in self._fetch(query, args + wargs) if r[len(keys)]])

    @_one_connection
    def distinct(self, kind: str, field: str, *, where: Where | None = None) -> list[Any]:
        """See :meth:`GeoPackageStore.distinct`."""
        present = self._columns(kind)
        if not present:
            return []
        if field not in present:
            raise StoreError(f"{self.location}: layer '{kind}' has no field '{field}'")
        cond, args = self._conds(kind, as_where(where), present)
        query = sql.SQL("SELECT DISTINCT {} FROM {}").format(sql.Identifier(field), self._t(kind)) + cond
        return [r[0] for r in self._fetch(query, args) if r[0] is not None]

    @_one_connection
    def read_page(self, kind: str, *, order: Sequence[Order], limit: int, offset: int = 0,
                  where: Where | None = None, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        """See :meth:`GeoPackageStore.read_page` (text sorted by code point: ``COLLATE "C"``)."""
        present = self._columns(kind)
        if not present:
            return self.read(kind)
        bad = [f for o in order for f in o.fields if f not in present]
        if bad:
            raise StoreError(f"{self.location}: cannot sort layer '{kind}' by {', '.join(bad)}: no such field")
        cond, args = self._conds(kind, as_where(where), present)
        keys: list[Any] = []
        kargs: list[Any] = []
        for o in order:
            if isinstance(o.field, Elapsed):
                e, a = _pg_elapsed(o.field)
                kargs += a
            else:
                e = sql.SQL("{}{}").format(sql.Identifier(o.field),
                                           sql.SQL(' COLLATE "C"' if present[o.field] == "text" else ""))
            keys.append(sql.SQL("{} {} NULLS LAST").format(e, sql.SQL("DESC" if o.descending else "ASC")))
        keys.append(sql.Identifier(FID))
        query = (sql.SQL("SELECT {} FROM {}").format(sql.Identifier(FID), self._t(kind)) + cond
                 + sql.SQL(" ORDER BY ") + sql.SQL(", ").join(keys) + sql.SQL(" LIMIT %s OFFSET %s"))
        for _ in range(3):  # the ids and then their rows: again if a write removed some between the two
            fids = [int(r[0]) for r in self._fetch(query, [*args, *kargs, int(limit), int(offset)])]
            frame = self.read(kind, where=one_of(FID, fids), columns=columns)
            if len(frame) == len(fids):
                rank = np.argsort(np.argsort(np.asarray(fids, dtype="int64"), kind="stable"), kind="stable")
                return frame.iloc[rank].reset_index(drop=True)
        raise StoreError(f"{self.location}: layer '{kind}' kept changing while a page of it was read; try again")

    @_one_connection
    def read_columns(self, kind: str, columns: Sequence[str], *, where: Where | None = None) -> pd.DataFrame:
        """See :meth:`GeoPackageStore.read_columns`."""
        present = self._columns(kind)
        s = CATALOGUE.get(kind)
        if not present:
            return pd.DataFrame(self.read(kind)[list(columns)])
        bad = [c for c in columns if c not in present or c in (FID, GEOM)]
        if bad:
            raise StoreError(f"{self.location}: cannot read layer '{kind}': no field(s) {', '.join(bad)}")
        attrs = [c for c in present if c in set(columns)]
        cond, args = self._conds(kind, as_where(where), present)
        query = (sql.SQL("SELECT {} FROM {}").format(sql.SQL(", ").join(sql.Identifier(c) for c in attrs),
                                                     self._t(kind)) + cond
                 + sql.SQL(" ORDER BY {}").format(sql.Identifier(FID)))
        rows = self._fetch(query, args)
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(attrs)
        frame = pd.DataFrame({c: _column(cols[i], present[c], s, c) for i, c in enumerate(attrs)})
        return coerce(frame, s) if s is not None else frame

    @_one_connection
    def meta(self, kind: str) -> dict[str, Any]:
        if META_TABLE not in self._tables():
            return {}
        with self._cursor() as cur:
            cur.execute(sql.SQL("SELECT updated_at, synthetic, params FROM {} WHERE kind = %s").format(
                self._t(META_TABLE)), (kind,))
            row = cur.fetchone()
        if not row:
            return {}
        updated = row[0].isoformat(timespec="seconds") if row[0] is not None else None
        return {"updated_at": updated, "synthetic": bool(row[1]), "params": dict(row[2] or {})}

    @_one_connection
    def info(self) -> list[LayerInfo]:
        """One row per layer in the store (catalogue order)."""
        present = self._tables()
        crs = self.crs
        out = []
        for kind in [k for k in CATALOGUE if k in present]:
            s = CATALOGUE[kind]
            with self._cursor() as cur:
                cur.execute(sql.SQL(
                    "SELECT n, ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) "
                    "FROM (SELECT COUNT(*) AS n, ST_Extent({})::box3d AS e FROM {}) x"
                ).format(sql.Identifier(GEOM), self._t(kind)))
                row = cur.fetchone()
            count = int(row[0]) if row else 0
            bounds = (float(row[1]), float(row[2]), float(row[3]), float(row[4])) \
                if row and row[1] is not None else None
            m = self.meta(kind)
            out.append(LayerInfo(
                kind=kind, title=f"{s.zh} {s.en}", count=count, crs=crs.to_string() if crs else None,
                bounds=bounds, updated_at=m.get("updated_at"), synthetic=m.get("synthetic", False),
                params=m.get("params", {}),
            ))
        return out

    # ---------------------------------------------------------------- writing
    def _touch(self, kind: str, *, params: Mapping[str, Any] | None = None,
               synthetic: bool | None = None) -> None:
        self._ensure_system_tables()
        p = json.dumps(dict(params), ensure_ascii=False, default=str) if params is not None else None
        now = datetime.now().replace(microsecond=0)  # local time, as the GeoPackage store records it
        self._conn.execute(sql.SQL(
            "INSERT INTO {} (kind, updated_at, synthetic, params) "
            "VALUES (%s, %s, COALESCE(%s, false), COALESCE(%s::jsonb, '{{}}'::jsonb)) "
            "ON CONFLICT (kind) DO UPDATE SET updated_at = excluded.updated_at, "
            "synthetic = COALESCE(%s, {m}.synthetic), params = COALESCE(%s::jsonb, {m}.params)"
        ).format(self._t(META_TABLE), m=sql.Identifier(META_TABLE)), (kind, now, synthetic, p, synthetic, p))

    def _write(self, kind: str, frame: gpd.GeoDataFrame, *, params: Mapping[str, Any] | None,
               synthetic: bool) -> None:
        s = spec(kind)
        self._ensure_system_tables()
        frame = self._prepare_rows(kind, frame, s)
        srid = self._srid(self.crs)  # type: ignore[arg-type]
        attrs = [c for c in frame.columns if c != frame.geometry.name]
        _check_names(kind, attrs)
        types = {f.name: _SQL_TYPES[f.dtype] for f in s.fields}
        gtype = geometry_type(s)
        defs = [sql.SQL("{} bigserial PRIMARY KEY").format(sql.Identifier(FID))]
        defs += [sql.SQL("{} " + (types.get(c) or _sql_type(frame[c]))).format(sql.Identifier(c))  # type: ignore[arg-type]
                 for c in attrs]
        defs.append(sql.SQL("{} geometry(" + ("Geometry" if gtype == "Unknown" else gtype)  # type: ignore[arg-type]
                            + f", {srid})").format(sql.Identifier(GEOM)))
        con = self._conn
        con.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._t(kind)))
        con.execute(sql.SQL("CREATE TABLE {} ({})").format(self._t(kind), sql.SQL(", ").join(defs)))
        con.execute(sql.SQL("CREATE INDEX {} ON {} USING gist ({})").format(
            sql.Identifier(f"{kind}_{GEOM}_gist"), self._t(kind), sql.Identifier(GEOM)))
        if s.key and s.key in attrs:  # updates find rows by it
            con.execute(sql.SQL("CREATE INDEX {} ON {} ({})").format(
                sql.Identifier(f"{kind}_{s.key}_idx"), self._t(kind), sql.Identifier(s.key)))
        con.execute(sql.SQL("COMMENT ON TABLE {} IS {}").format(self._t(kind), sql.Literal(f"{s.zh} {s.en}")))
        self._copy(kind, frame, attrs, s)
        self._touch(kind, params=params, synthetic=synthetic)

    def _copy(self, name: str, frame: pd.DataFrame, attrs: list[str], s: LayerSpec | None) -> None:
        """Bulk-insert ``frame`` (geometry as WKB, SRID taken from the column) with COPY."""
        cols = [_py_values(frame[c]) for c in attrs]
        names = list(attrs)
        if s is not None:
            geoms = np.asarray(frame.geometry.array, dtype=object)
            if is_multi(s):
                geoms = promote(geoms)
            cols.append(list(shapely.to_wkb(geoms, hex=True, output_dimension=2, include_srid=False)))
            names.append(GEOM)
        if not names or not len(frame):
            return
        stmt = sql.SQL("COPY {} ({}) FROM STDIN").format(
            self._t(name), sql.SQL(", ").join(sql.Identifier(c) for c in names))
        try:
            with self._conn.cursor() as cur, cur.copy(stmt) as copy:
                for row in zip(*cols, strict=True):
                    copy.write_row(row)
        except psycopg.Error as e:
            what = f"; layer '{name}' takes {' or '.join(s.geometry)} geometries" if s is not None else ""
            raise StoreError(f"{self.location}: cannot write '{name}': {e.diag.message_primary or e}{what}") from None

    def _append_rows(self, kind: str, frame: gpd.GeoDataFrame, s: LayerSpec) -> None:
        attrs = [c for c in frame.columns if c != frame.geometry.name]
        _check_names(kind, attrs)
        self._add_missing_columns(kind, frame[attrs])
        self._copy(kind, frame, attrs, s)

    def _add_missing_columns(self, name: str, frame: pd.DataFrame) -> None:
        present = self._columns(name)
        for c in frame.columns:
            if c not in present:
                self._conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN {} " + _sql_type(frame[c])).format(  # type: ignore[arg-type]
                    self._t(name), sql.Identifier(c)))

    def _update_rows(self, kind: str, key: str, k: Any, values: Mapping[str, Any]) -> int:
        sets = sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in values)
        with self._conn.cursor() as cur:
            cur.execute(sql.SQL("UPDATE {} SET {} WHERE {} = %s").format(self._t(kind), sets, sql.Identifier(key)),
                        [_py(v) for v in values.values()] + [_py(k)])
            return int(cur.rowcount)

    def _drop(self, kind: str) -> None:
        self._conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._t(kind)))
        self._conn.execute(sql.SQL("DELETE FROM {} WHERE kind = %s").format(self._t(META_TABLE)), (kind,))

    def _replace_table(self, name: str, frame: pd.DataFrame) -> None:
        self._conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._t(name)))
        self._append_table(name, frame)

    def _append_table(self, name: str, frame: pd.DataFrame) -> None:
        attrs = [str(c) for c in frame.columns]
        frame.columns = attrs
        _check_names(name, attrs)
        if not self._columns(name):
            self._conn.execute(sql.SQL("CREATE TABLE {} ({} bigserial PRIMARY KEY)").format(
                self._t(name), sql.Identifier(FID)))
        self._add_missing_columns(name, frame)
        self._copy(name, frame, attrs, None)



# -------------------------------------------------------------------- values
def _pg_where(where: Where) -> tuple[list[Any], list[Any]]:
    """``where`` as SQL conditions with ``%s`` placeholders, and their parameters."""
    conds: list[Any] = []
    args: list[Any] = []
    for c in where.conds:
        q, a = _pg_clause(c)
        conds += q
        args += a
    return conds, args


def _pg_all(where: Where) -> tuple[Any, list[Any]]:
    conds, args = _pg_where(where)
    return (sql.SQL("(") + sql.SQL(" AND ").join(conds) + sql.SQL(")") if conds else sql.SQL("true")), args


def _pg_clause(c: Clause) -> tuple[list[Any], list[Any]]:
    if isinstance(c, Either):
        if not c.options:
            return [sql.SQL("false")], []
        parts, args = [], []
        for w in c.options:
            e, a = _pg_all(w)
            parts.append(e)
            args += a
        return [sql.SQL("(") + sql.SQL(" OR ").join(parts) + sql.SQL(")")], args
    if isinstance(c, Not):
        e, a = _pg_all(c.where)
        return [sql.SQL("NOT COALESCE({}, false)").format(e)], a
    if isinstance(c, Contains):
        if " " not in c.text:  # a text without a space cannot span two fields: field by field, nothing joined
            return ([sql.SQL("(") + sql.SQL(" OR ").join(sql.SQL("strpos({}::text, %s) > 0").format(sql.Identifier(f))
                                                        for f in c.fields) + sql.SQL(")")], [c.text] * len(c.fields))
        hay = sql.SQL(" || ' ' || ").join(sql.SQL("COALESCE({}::text, '')").format(sql.Identifier(f))
                                            for f in c.fields)
        return [sql.SQL("strpos({}, %s) > 0").format(hay)], [c.text]
    if isinstance(c, NotAfter):
        return [sql.SQL("{} <= {}").format(sql.Identifier(c.field), sql.Identifier(c.other))], []
    col = sql.Identifier(c.field)
    if c.op == "eq":
        if c.values[0] is None:
            return [sql.SQL("{} IS NULL").format(col)], []
        return [sql.SQL("{} = %s").format(col)], [_py(c.values[0])]
    if c.op == "ne":
        return [sql.SQL("{} IS DISTINCT FROM %s").format(col)], [_py(c.values[0])]
    if c.op == "in":
        if not c.values:
            return [sql.SQL("false")], []
        return ([sql.SQL("{} IN ({})").format(col, sql.SQL(", ").join(sql.SQL("%s") for _ in c.values))],
                [_py(v) for v in c.values])
    if c.op in ("lt", "gt"):
        return [sql.SQL("{} " + ("<" if c.op == "lt" else ">") + " %s").format(col)], [_py(c.values[0])]  # type: ignore[arg-type]
    lo, hi = c.values
    conds, args = [], []
    if lo is not None:
        conds.append(sql.SQL("{} >= %s").format(col))
        args.append(_py(lo))
    if hi is not None:
        conds.append(sql.SQL("{} <= %s").format(col))
        args.append(_py(hi))
    return conds, args


def _pg_elapsed(k: Elapsed) -> tuple[Any, list[Any]]:
    """An :class:`~layers.filters.Elapsed` key: exact milliseconds (``EXTRACT`` is numeric), then integer
    arithmetic, half to even, symmetric in sign."""
    col = sql.Identifier(k.field)
    d = sql.SQL("(%s::bigint - (EXTRACT(EPOCH FROM {}) * 1000)::bigint)").format(col)
    a, s = sql.SQL("abs{}").format(d), sql.Literal(int(k.step_ms))
    key = sql.SQL("sign{d} * ({a} / {s} + (CASE WHEN 2 * mod({a}, {s}) > {s} OR (2 * mod({a}, {s}) = {s} "
                  "AND mod({a} / {s}, 2) = 1) THEN 1 ELSE 0 END))").format(d=d, a=a, s=s)
    only, oargs = _pg_all(k.only)
    # d occurs five times in the key: once in sign(d), four times inside abs(d)
    return sql.SQL("(CASE WHEN {} THEN {} ELSE 0 END)").format(only, key), [*oargs, *([k.to_ms] * 5)]


def _pg_bin(b: Bin) -> tuple[Any, list[Any]]:
    """A :class:`~layers.filters.Bin` key as a nested ``CASE`` (a binary search over the edges)."""
    col = sql.Identifier(b.field)
    edges = [_py(e) for e in b.edges]
    args: list[Any] = []
    op = sql.SQL("<" if b.strict else "<=")

    def search(lo: int, hi: int) -> Any:
        if lo == hi:
            return sql.Literal(lo)
        mid = (lo + hi) // 2
        args.append(edges[mid])
        below = search(lo, mid)
        above = search(mid + 1, hi)
        return sql.SQL("CASE WHEN {} {} %s THEN {} ELSE {} END").format(col, op, below, above)

    body = search(0, len(edges))
    return sql.SQL("CASE WHEN {} IS NULL THEN NULL ELSE {} END").format(col, body), args


def _check_names(kind: str, attrs: Sequence[str]) -> None:
    clash = {FID, GEOM} & set(attrs)
    if clash:
        raise StoreError(f"layer '{kind}': column(s) {', '.join(sorted(clash))} are reserved by the "
                         "PostGIS store; rename them before writing")


def _sql_type(col: pd.Series) -> str:
    """The SQL type of a column that the catalogue does not type."""
    dt = col.dtype
    if pd.api.types.is_bool_dtype(dt):
        return "boolean"
    if pd.api.types.is_integer_dtype(dt):
        return "bigint"
    if pd.api.types.is_float_dtype(dt):
        return "double precision"
    if isinstance(dt, pd.DatetimeTZDtype):
        return "timestamptz"
    if pd.api.types.is_datetime64_dtype(dt):
        return "timestamp"
    return "text"


def _py(v: Any) -> Any:
    """A Python value psycopg can send (missing values as NULL)."""
    if isinstance(v, str | bytes | bool | int | float) and not (isinstance(v, float) and np.isnan(v)):
        return v
    if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, np.datetime64):
        return None if np.isnat(v) else pd.Timestamp(v).to_pydatetime()
    if isinstance(v, np.generic):
        return None if pd.isna(v) else v.item()
    if isinstance(v, datetime | date):
        return v
    return str(v)


def _py_values(col: pd.Series) -> list[Any]:
    """A column as a list of Python values for COPY (text columns as ``str``)."""
    dt = col.dtype
    if pd.api.types.is_datetime64_any_dtype(dt):
        return [None if pd.isna(v) else v.to_pydatetime() for v in col]
    if pd.api.types.is_float_dtype(dt) and not isinstance(dt, pd.api.extensions.ExtensionDtype):
        arr = col.to_numpy()
        return [None if v != v else v for v in arr.tolist()]
    if pd.api.types.is_bool_dtype(dt) or pd.api.types.is_integer_dtype(dt) or pd.api.types.is_float_dtype(dt):
        return [None if v is None or v is pd.NA or v != v else v
                for v in col.astype(object).tolist()]
    out = [v if type(v) is str else _py(v) for v in col.tolist()]
    if _sql_type(col) == "text":
        out = [v if v is None or isinstance(v, str) else str(v) for v in out]
    return out


def _column(values: Sequence[Any], sql_type: str, s: LayerSpec | None, name: str) -> pd.Series:
    """A column read from the database with the dtype the GeoPackage store would give it."""
    f = None
    if s is not None and name in s.field_names:
        f = s.field(name)
    if f is not None:
        dtype = pandas_dtype(f.dtype)
        if f.dtype == "str":
            return pd.Series(list(values), dtype="str")
        if f.dtype == "float":
            return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
        return pd.Series(list(values), dtype=dtype)
    if sql_type.startswith("timestamp"):
        return pd.Series(pd.to_datetime(list(values)), dtype=None).astype(
            "datetime64[ms, UTC]" if "with time zone" in sql_type else "datetime64[ms]")
    if sql_type in ("bigint", "integer", "smallint"):
        return pd.Series(list(values), dtype="Int64" if None in values else "int64")
    if sql_type == "double precision":
        return pd.Series([np.nan if v is None else v for v in values], dtype="float64")
    if sql_type == "boolean":
        return pd.Series(list(values), dtype="boolean" if None in values else "bool")
    if sql_type == "text":
        return pd.Series(list(values), dtype="str")
    return pd.Series(list(values))


# ---------------------------------------------------------------- point tables read in pieces (spatial partitions)
def _geom_column(cur: Any, schema: str, table: str) -> tuple[str, int]:
    cur.execute("SELECT f_geometry_column, srid FROM geometry_columns WHERE f_table_schema = %s "
                "AND f_table_name = %s ORDER BY f_geometry_column = %s DESC LIMIT 1", (schema, table, GEOM))
    row = cur.fetchone()
    if row is None:
        raise StoreError(f"no geometry column in table {schema}.{table}")
    return str(row[0]), int(row[1])


def table_crs(url: str, *, schema: str, table: str) -> CRS:
    """The CRS of a point table's geometry column (its SRID)."""
    _require_psycopg()
    try:
        with psycopg.connect(url, connect_timeout=10) as con, con.cursor() as cur:
            _, srid = _geom_column(cur, schema, table)
    except psycopg.Error as e:
        raise StoreError(f"{_public_url(url)}: {schema}.{table}: {e}".strip()) from None
    return CRS.from_epsg(srid)


def point_xy_batches(url: str, *, schema: str, table: str, batch_rows: int = 200_000) -> Iterator[np.ndarray]:
    """The coordinates of a point table, ``(n, 2)`` arrays of up to ``batch_rows`` (a server-side cursor)."""
    _require_psycopg()
    try:
        with psycopg.connect(url, connect_timeout=10) as con:
            with con.cursor() as cur:
                geom, _ = _geom_column(cur, schema, table)
            query = sql.SQL("SELECT ST_X({g}), ST_Y({g}) FROM {t} WHERE {g} IS NOT NULL").format(
                g=sql.Identifier(geom), t=sql.Identifier(schema, table))
            with con.cursor(name=f"sanigrid_{uuid.uuid4().hex[:12]}") as cur:
                cur.itersize = batch_rows
                cur.execute(query)
                while rows := cur.fetchmany(batch_rows):
                    yield np.asarray(rows, dtype="float64").reshape(-1, 2)
    except psycopg.Error as e:
        raise StoreError(f"{_public_url(url)}: {schema}.{table}: {e}".strip()) from None


def read_points(url: str, *, schema: str, table: str, columns: Sequence[str],
                box: tuple[float, float, float, float] | None = None) -> pd.DataFrame:
    """The rows of a point table whose point lies in ``box`` (``geom && envelope``: the GiST index), as
    ``columns`` (those the table has) and ``x``, ``y``: one parameterised query."""
    _require_psycopg()
    try:
        with psycopg.connect(url, connect_timeout=10) as con, con.cursor() as cur:
            geom, srid = _geom_column(cur, schema, table)
            cur.execute("SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = %s "
                        "AND table_name = %s", (schema, table))
            have: dict[str, str] = dict(cur.fetchall())
            cols = [c for c in columns if c in have and c != geom]
            query = sql.SQL("SELECT {}ST_X({g}), ST_Y({g}) FROM {t} WHERE {g} IS NOT NULL").format(
                sql.SQL("").join(sql.SQL("{}, ").format(sql.Identifier(c)) for c in cols),
                g=sql.Identifier(geom), t=sql.Identifier(schema, table))
            args: list[Any] = []
            if box is not None:
                query += sql.SQL(" AND {g} && ST_MakeEnvelope(%s, %s, %s, %s, %s)").format(g=sql.Identifier(geom))
                args = [float(v) for v in box] + [srid]
            cur.execute(query, args)
            rows = cur.fetchall()
    except psycopg.Error as e:
        raise StoreError(f"{_public_url(url)}: {schema}.{table}: {e}".strip()) from None
    data = list(zip(*rows, strict=True)) if rows else [()] * (len(cols) + 2)
    out = pd.DataFrame({c: pd.Series(data[i], dtype="object") for i, c in enumerate(cols)})
    for c in cols:
        kind = str(have[c])
        if kind.startswith("timestamp") or kind == "date":
            out[c] = pd.to_datetime(out[c])
        elif kind in ("bigint", "integer", "smallint"):
            out[c] = out[c].astype("int64") if out[c].notna().all() else out[c].astype("Int64")
        elif kind in ("double precision", "real", "numeric"):
            out[c] = out[c].astype("float64")
    out["x"] = np.asarray(data[-2], dtype="float64")
    out["y"] = np.asarray(data[-1], dtype="float64")
    return out
