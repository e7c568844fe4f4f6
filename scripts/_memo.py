"""One `sanigrid analyse` run reads each layer once and computes each shared result once.

:class:`ReadOnce` wraps a project's store for the length of a run. Every store method goes to the
real store; a whole-layer :meth:`~ReadOnce.read` (no ``bbox``/``where``) and a :meth:`~ReadOnce.read_table`
are kept and handed out as copies, so a step may change its frame as it likes; ``has``, ``crs`` and
``meta`` are kept too. A write of a layer or table (inside or outside a transaction) forgets what was
kept of it, so a later step reads what an earlier one wrote, exactly as when the steps run as separate
commands.

:func:`shared` keeps a result derived from the store (the street network, the problems with their
deadlines filled in, the sample candidates) under a key: the layers it read while it was computed are
recorded, and a write of any of them forgets it. Without a :class:`ReadOnce` store (a single command)
:func:`shared` simply computes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import geopandas as gpd
    import pandas as pd
    from pyproj import CRS

    from sanigrid.layers.filters import Where
    from sanigrid.layers.project import Project
    from sanigrid.layers.store import LayerInfo, Store

T = TypeVar("T")
_ALL = "*"  # a write whose layer is not known (set_crs, an unknown method): forget everything

#: store methods that change a layer or table named by their first argument
_WRITES = frozenset({"write", "append", "update", "drop", "write_table", "append_table", "append_rows", "_write",
                     "_replace_table", "_append_table", "_update"})
#: store methods that change nothing (every public method of :class:`layers.store.Store` is one or the
#: other: tests/test_analyse_once.py checks it, so a new one is not taken for an unknown write)
_READS = frozenset({"read", "read_table", "has", "meta", "info", "crs", "location", "version", "max_value",
                    "transaction", "_tables", "_columns", "_conn", "_project_value", "path", "_read_sqlite",
                    "_lock", "_con", "read_rows", "change_token", "count", "count_by", "distinct", "keys_near",
                    "read_columns", "read_page", "checkpoint"})


class ReadOnce:
    """The store of one run: whole-layer reads kept (copies handed out), forgotten when written."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._frames: dict[tuple[str, tuple[str, ...] | None], Any] = {}
        self._tables: dict[str, pd.DataFrame] = {}
        self._has: dict[str, bool] = {}
        self._meta: dict[str, dict[str, Any]] = {}
        self._crs: list[CRS | None] = []
        self._shared: dict[Hashable, tuple[Any, frozenset[str]]] = {}
        self._reading: list[set[str]] = []  # the layers read by each :func:`shared` being computed
        self.reads = 0  # reads that went to the store (for the bench and tests)

    # ------------------------------------------------------------------ what is kept
    def _seen(self, name: str) -> None:
        for s in self._reading:
            s.add(name)

    def forget(self, name: str) -> None:
        """Forget what was kept of layer or table ``name`` (``"*"``: everything)."""
        if name == _ALL:
            self._frames.clear()
            self._tables.clear()
            self._has.clear()
            self._meta.clear()
            self._crs.clear()
            self._shared.clear()
            return
        for key in [k for k in self._frames if k[0] == name]:
            del self._frames[key]
        self._tables.pop(name, None)
        self._has.pop(name, None)
        self._meta.pop(name, None)
        for done in [k for k, (_, deps) in self._shared.items() if name in deps or _ALL in deps]:
            del self._shared[done]

    def shared(self, key: Hashable, compute: Callable[[], T], *, copy_value: bool = True) -> T:
        """``compute()`` once per ``key`` until a layer it read is written; a deep copy each time unless
        ``copy_value`` is false (for a value its users never change, such as a :class:`geo.network.Network`)."""
        if key in self._shared:
            value = self._shared[key][0]
            return copy.deepcopy(value) if copy_value else value
        self._reading.append(set())
        try:
            value = compute()
        finally:
            deps = self._reading.pop()
        for s in self._reading:  # a shared result computed inside another one: the outer one read them too
            s.update(deps)
        self._shared[key] = (value, frozenset(deps))
        return copy.deepcopy(value) if copy_value else value

    # ------------------------------------------------------------------ reading
    @property
    def crs(self) -> CRS | None:
        if not self._crs:
            self._crs.append(self._store.crs)
        return self._crs[0]

    @property
    def location(self) -> str:
        return self._store.location

    def version(self) -> tuple[Any, ...]:
        return self._store.version()

    def max_value(self, kind: str, field: str) -> Any:
        self._seen(kind)
        return self._store.max_value(kind, field)

    def has(self, kind: str) -> bool:
        self._seen(kind)
        if kind not in self._has:
            self._has[kind] = self._store.has(kind)
        return self._has[kind]

    def read(self, kind: str, *, bbox: tuple[float, float, float, float] | None = None,
             where: Where | None = None, columns: Sequence[str] | None = None) -> gpd.GeoDataFrame:
        self._seen(kind)
        if bbox is not None or where is not None:
            self.reads += 1
            return self._store.read(kind, bbox=bbox, where=where, columns=columns)
        key = (kind, tuple(columns) if columns is not None else None)
        if key not in self._frames:
            self.reads += 1
            self._frames[key] = self._store.read(kind, columns=columns)
        return self._frames[key].copy()

    def read_table(self, name: str) -> pd.DataFrame:
        self._seen(name)
        if name not in self._tables:
            self.reads += 1
            self._tables[name] = self._store.read_table(name)
        return self._tables[name].copy()

    def meta(self, kind: str) -> dict[str, Any]:
        self._seen(kind)
        if kind not in self._meta:
            self._meta[kind] = self._store.meta(kind)
        return copy.deepcopy(self._meta[kind])

    def info(self) -> list[LayerInfo]:
        self._seen(_ALL)
        return self._store.info()

    # ------------------------------------------------------------------ writing
    def set_crs(self, crs: CRS | str) -> None:
        try:
            self._store.set_crs(crs)
        finally:
            self.forget(_ALL)

    def write(self, kind: str, frame: gpd.GeoDataFrame, *, params: Mapping[str, Any] | None = None,
              synthetic: bool = False) -> None:
        try:
            self._store.write(kind, frame, params=params, synthetic=synthetic)
        finally:
            self.forget(kind)

    def append(self, kind: str, frame: gpd.GeoDataFrame) -> None:
        try:
            self._store.append(kind, frame)
        finally:
            self.forget(kind)

    def update(self, kind: str, key: str, changes: Mapping[Any, Mapping[str, Any]]) -> int:
        try:
            return self._store.update(kind, key, changes)
        finally:
            self.forget(kind)

    def drop(self, kind: str) -> None:
        try:
            self._store.drop(kind)
        finally:
            self.forget(kind)

    def write_table(self, name: str, frame: pd.DataFrame) -> None:
        try:
            self._store.write_table(name, frame)
        finally:
            self.forget(name)

    def append_table(self, name: str, frame: pd.DataFrame) -> None:
        try:
            self._store.append_table(name, frame)
        finally:
            self.forget(name)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The real store's transaction; what it writes is forgotten when it ends (committed or not)."""
        touched: set[str] = set()
        try:
            with self._store.transaction() as tx:
                yield _Recording(tx, touched)
        finally:
            for name in touched:
                self.forget(name)

    def __getattr__(self, name: str) -> Any:
        # anything else of the backend (e.g. ``path``): a method not known to be a read forgets everything
        value = getattr(self._store, name)
        if callable(value) and name not in _READS:
            def call(*args: Any, **kwargs: Any) -> Any:
                try:
                    return value(*args, **kwargs)
                finally:
                    self.forget(args[0] if name in _WRITES and args and isinstance(args[0], str) else _ALL)
            return call
        return value


class _Recording:
    """A transaction that notes the layers and tables it writes."""

    def __init__(self, tx: Any, touched: set[str]) -> None:
        self._tx = tx
        self._touched = touched

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._tx, name)
        if not callable(value) or name in _READS:
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            self._touched.add(args[0] if name in _WRITES and args and isinstance(args[0], str) else _ALL)
            return value(*args, **kwargs)
        return call


def read_once(project: Project) -> Project:
    """``project`` with its store wrapped in a :class:`ReadOnce` (for one run of several steps)."""
    if isinstance(project.store, ReadOnce):
        return project
    return replace(project, store=ReadOnce(project.store))  # type: ignore[arg-type]


def shared(project: Project, key: Hashable, compute: Callable[[], T], *, copy_value: bool = True) -> T:
    """``compute()``, once per run and ``key`` when the project's store is a :class:`ReadOnce`.

    ``compute`` must read what it depends on from ``project.store`` (that is how a later write of it
    is noticed)."""
    st = project.store
    if isinstance(st, ReadOnce):
        return st.shared(key, compute, copy_value=copy_value)
    return compute()
