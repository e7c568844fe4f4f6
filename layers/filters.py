"""Typed row filters for :meth:`Store.read`: no SQL text crosses the store's interface.

A :class:`Where` is a conjunction of conditions on a layer's attribute fields. Each backend
compiles it to parameterised SQL (the values travel as parameters, the field names are checked
against the table's columns and quoted as identifiers), so a value typed into a web form can
never change the query.

>>> from sanigrid.layers.filters import eq, ne, between, one_of
>>> w = eq("grid_code", "G01") & ne("status", "结案") & between("reported_at", lo=pd.Timestamp("2024-01-01"))
>>> store.read("problems", where=w)        # doctest: +SKIP

The bounding box is the typed ``bbox=`` argument of :meth:`Store.read` (store CRS, metres).

Beyond the conjunction: :func:`either` (one of several filters), :func:`negate` (a filter does not
hold), :func:`lt` / :func:`gt` (strict bounds), :func:`contains` (text in some fields),
:func:`not_after` (one field at most another). A condition on a missing value is false, as a pandas
comparison with NaN is, so its negation holds. :class:`Bin` is a typed grouping key for
:meth:`Store.count_by` (which of a few sorted edges a value falls below), :class:`Order` a sort key
for :meth:`Store.read_page`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import numpy as np

from sanigrid.layers._errors import StoreError

Op = Literal["eq", "ne", "in", "range", "lt", "gt"]
Value = str | int | float | bool | datetime | date | None


@dataclass(frozen=True)
class Cond:
    """One condition: ``field`` compared with ``values`` by ``op``.

    - ``eq``: equal to ``values[0]`` (``None``: the field is missing);
    - ``ne``: not equal to ``values[0]`` (missing values count as not equal);
    - ``in``: equal to one of ``values`` (none given: nothing matches);
    - ``range``: ``values[0] <= field <= values[1]``, either bound ``None`` for open;
    - ``lt`` / ``gt``: strictly below / above ``values[0]``.
    """

    field: str
    op: Op
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Either:
    """At least one of ``options`` holds (none given: nothing matches)."""

    options: tuple[Where, ...]


@dataclass(frozen=True)
class Not:
    """``where`` does not hold (a row where it is false because a value is missing is kept)."""

    where: Where


@dataclass(frozen=True)
class Contains:
    """``text`` occurs in the values of ``fields`` joined by single spaces (a missing value as empty text),
    case and all, as pandas' ``str.contains(text, regex=False)`` on the joined text."""

    fields: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class NotAfter:
    """``field <= other`` (two fields of the same row; false when either is missing)."""

    field: str
    other: str


Clause = Cond | Either | Not | Contains | NotAfter


@dataclass(frozen=True)
class Where:
    """All of ``conds`` hold (an empty ``Where`` matches every row). Combine with ``&``."""

    conds: tuple[Clause, ...] = ()

    def __and__(self, other: Where) -> Where:
        return Where(self.conds + other.conds)

    def __bool__(self) -> bool:
        return bool(self.conds)

    @property
    def fields(self) -> list[str]:
        return list(dict.fromkeys(f for c in self.conds for f in _clause_fields(c)))


def _clause_fields(c: Clause) -> list[str]:
    if isinstance(c, Cond):
        return [c.field]
    if isinstance(c, Either):
        return [f for w in c.options for f in w.fields]
    if isinstance(c, Not):
        return c.where.fields
    if isinstance(c, Contains):
        return list(c.fields)
    return [c.field, c.other]


@dataclass(frozen=True)
class Bin:
    """A grouping key: how many of the ascending ``edges`` lie below a row's ``field``.

    With ``strict=False`` the key is ``#{e : e < value}``, so ``value <= edges[i]`` exactly when
    ``key <= i``; with ``strict=True`` it is ``#{e : e <= value}``, so ``value < edges[i]`` exactly when
    ``key <= i``. A missing value has a missing key.
    """

    field: str
    edges: tuple[Value, ...]
    strict: bool = False


def bins(field: str, edges: Iterable[Any], *, strict: bool = False) -> Bin:
    """A :class:`Bin` key of ``field`` at ``edges`` (sorted here)."""
    vals = tuple(_value(v) for v in edges)
    if any(v is None for v in vals):
        raise StoreError(f"bins('{field}', …): an edge cannot be missing")
    return Bin(_field(field), tuple(sorted(vals)), strict)  # type: ignore[type-var]


@dataclass(frozen=True)
class Elapsed:
    """A computed sort key: the time from a row's ``field`` to the instant ``to`` in whole steps of
    ``step_ms`` milliseconds, ``(to - field) / step`` rounded half to even (as numpy rounds), where
    ``only`` holds; 0 elsewhere. Exact for times in whole milliseconds."""

    field: str
    to: datetime
    step_ms: int
    only: Where = Where()

    @property
    def to_ms(self) -> int:
        """``to`` in milliseconds since 1970-01-01 (naive times, as the layers hold them)."""
        epoch = datetime(1970, 1, 1, tzinfo=self.to.tzinfo)
        delta = self.to - epoch
        return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@dataclass(frozen=True)
class Order:
    """A sort key of :meth:`Store.read_page`: ``field`` (or an :class:`Elapsed` key), descending or not;
    missing values last either way (as pandas' ``sort_values(na_position="last")``); text by code point."""

    field: str | Elapsed
    descending: bool = False

    @property
    def fields(self) -> list[str]:
        """The fields the key reads."""
        if isinstance(self.field, Elapsed):
            return [self.field.field, *self.field.only.fields]
        return [self.field]


def _value(v: Any) -> Value:
    """A plain Python value (numpy scalars and pandas timestamps unwrapped; NaN/NaT/NA as ``None``)."""
    import pandas as pd  # here, not at the top: `sanigrid layers` never filters

    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime()
    if isinstance(v, np.datetime64):
        return None if np.isnat(v) else pd.Timestamp(v).to_pydatetime()
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and v != v:
        return None
    if isinstance(v, str | bool | int | float | datetime | date):
        return v
    raise StoreError(f"a filter value must be text, a number, a boolean or a date, not {type(v).__name__}: {v!r}")


def _field(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise StoreError(f"a filter field must be a non-empty field name, not {name!r}")
    return name


def eq(field: str, value: Any) -> Where:
    """``field`` equals ``value`` (``None``: the field is missing)."""
    return Where((Cond(_field(field), "eq", (_value(value),)),))


def ne(field: str, value: Any) -> Where:
    """``field`` differs from ``value`` (rows where it is missing are kept)."""
    return Where((Cond(_field(field), "ne", (_value(value),)),))


def one_of(field: str, values: Iterable[Any]) -> Where:
    """``field`` equals one of ``values`` (an empty list matches nothing)."""
    vals = tuple(_value(v) for v in values)
    if any(v is None for v in vals):
        raise StoreError(f"one_of('{field}', …): missing values cannot be listed; use eq('{field}', None)")
    return Where((Cond(_field(field), "in", vals),))


def lt(field: str, value: Any) -> Where:
    """``field < value`` (strictly)."""
    v = _value(value)
    if v is None:
        raise StoreError(f"lt('{field}', …): give a value")
    return Where((Cond(_field(field), "lt", (v,)),))


def gt(field: str, value: Any) -> Where:
    """``field > value`` (strictly)."""
    v = _value(value)
    if v is None:
        raise StoreError(f"gt('{field}', …): give a value")
    return Where((Cond(_field(field), "gt", (v,)),))


def either(*options: Where) -> Where:
    """At least one of ``options`` holds."""
    return Where((Either(tuple(as_where(w) for w in options)),))


def negate(where: Where) -> Where:
    """``where`` does not hold (see :class:`Not`)."""
    return Where((Not(as_where(where)),))


def contains(fields: str | Iterable[str], text: str) -> Where:
    """``text`` occurs in ``fields`` joined by spaces (see :class:`Contains`)."""
    names = (fields,) if isinstance(fields, str) else tuple(fields)
    if not names or not isinstance(text, str) or not text:
        raise StoreError("contains(fields, text): give at least one field and a non-empty text")
    return Where((Contains(tuple(_field(f) for f in names), text),))


def not_after(field: str, other: str) -> Where:
    """``field <= other``, two fields of the same row (see :class:`NotAfter`)."""
    return Where((NotAfter(_field(field), _field(other)),))


def between(field: str, lo: Any = None, hi: Any = None) -> Where:
    """``lo <= field <= hi``; leave a bound out for an open range."""
    lo_v, hi_v = _value(lo), _value(hi)
    if lo_v is None and hi_v is None:
        raise StoreError(f"between('{field}'): give lo, hi or both")
    return Where((Cond(_field(field), "range", (lo_v, hi_v)),))


def check_fields(where: Where, columns: Iterable[str], *, layer: str, location: str) -> None:
    """Refuse a filter on a field the table does not have (naming the store, layer and field)."""
    present = set(columns)
    bad = [f for f in where.fields if f not in present]
    if bad:
        raise StoreError(f"{location}: cannot read layer '{layer}': no field(s) {', '.join(bad)} to filter on")


def as_where(where: Where | None) -> Where:
    """``where`` checked to be a :class:`Where` (SQL text is refused)."""
    if where is None:
        return Where()
    if not isinstance(where, Where):
        raise StoreError(
            f"the store takes a typed filter (sanigrid.layers.filters: eq, ne, one_of, between), "
            f"not {type(where).__name__}: {where!r}")
    return where
