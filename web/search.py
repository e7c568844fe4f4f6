"""The map's search box: one index of every searchable name per store version, then lookups in memory.

What is found: grid codes, names and grid heads (网格长), every named small layer (streets, alleys,
markets, toilets …: one hit per distinct name, its bounds those of all its parts), and case
numbers (``problem_id``) of the problems. Ranking: a grid whose code is the query exactly comes
alone (the map goes straight to it); then exact names before partial ones, the input layers
before the analysis ones, in catalogue order.

The index is built once per :meth:`Store.version` (any committed write makes a new one) and per
display coordinate system, so a search is a scan of a few thousand strings, not a read of every
layer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sanigrid.layers.catalogue import CATALOGUE
from sanigrid.web.features import to_display
from sanigrid.web.mappage import layer_stamps

_ROLE_RANK = {"input": 0, "analysis": 1}
_ORDER = {k: i for i, k in enumerate(CATALOGUE)}


@dataclass(frozen=True)
class SearchIndex:
    """One row per searchable entry; ``text`` is what a query is matched against (case-folded)."""

    layer: np.ndarray  # kind of each entry
    label: np.ndarray  # what the list shows
    key: np.ndarray  # the exact-match key: code, name or case number
    text: pd.Series  # label and other searchable fields, case-folded
    bounds: np.ndarray  # (n, 4) lon/lat in the display coordinates
    href: np.ndarray  # page of the entry or None
    rank: np.ndarray  # input layers first, then catalogue order
    stale: frozenset[str] = frozenset()  # layers whose part is as it was before their last write (rebuilding)


_INDEX: dict[tuple[Any, ...], SearchIndex] = {}
_LOCK = threading.Lock()


def _text(col: pd.Series) -> pd.Series:
    return col.astype("string").fillna("").str.strip()


def _entries(kind: str, frame: gpd.GeoDataFrame) -> pd.DataFrame:
    """label, key, text, href and store-CRS bounds of the entries of one layer."""
    s = CATALOGUE[kind]
    b = shapely.bounds(frame.geometry.to_numpy())
    out = pd.DataFrame({"minx": b[:, 0], "miny": b[:, 1], "maxx": b[:, 2], "maxy": b[:, 3]}, index=frame.index)
    if kind == "grids":
        code, name = _text(frame["code"]), _text(frame.get("name", pd.Series("", index=frame.index)))
        head = _text(frame["head"]) if "head" in frame else pd.Series("", index=frame.index)
        out["key"] = code
        out["label"] = (code + " " + name + np.where(head != "", " · 网格长 " + head, "")).str.strip()
        out["text"] = code + " " + name + " " + head
        out["href"] = "/grids/" + code
        return out[code != ""]
    if kind == "problems":
        pid = _text(frame["problem_id"])
        cat = _text(frame["category"]) if "category" in frame else pd.Series("", index=frame.index)
        out["key"] = pid
        out["label"] = (pid + " " + cat).str.strip()
        out["text"] = pid
        out["href"] = None  # no page of its own: the map goes to the point, its popup has the case
        return out[pid != ""]
    cols = [c for c in dict.fromkeys(x for x in (s.label_field, "name", "code") if x) if c in frame.columns]
    lab = _text(frame[cols[0]])
    other = next((c for c in cols[1:]), None)
    out["key"] = lab
    out["label"] = lab
    out["text"] = lab + (" " + _text(frame[other]) if other else "")
    out = out[lab != ""]
    # one entry per distinct label (a street is many segments): the bounds of all its parts
    g = out.groupby("label", sort=True)
    agg = g.agg(minx=("minx", "min"), miny=("miny", "min"), maxx=("maxx", "max"), maxy=("maxy", "max"),
                key=("key", "first"), text=("text", "first"))
    agg["label"] = agg.index
    if other:  # the list shows "name code" when the layer has both, as before
        first_other = _text(frame.loc[out.index, other]).groupby(out["label"]).first()
        agg["label"] = (agg["label"] + " " + first_other.reindex(agg.index).fillna("")).str.strip()
    agg["href"] = None
    return agg.reset_index(drop=True)


def _searchable(kind: str) -> list[str]:
    s = CATALOGUE[kind]
    if kind == "grids":
        return [c for c in ("code", "name", "head") if c in s.field_names]
    if kind == "problems":
        return [c for c in ("problem_id", "category") if c in s.field_names]
    if s.big:
        return []
    return [c for c in dict.fromkeys(x for x in (s.label_field, "name", "code") if x) if c in s.field_names]


def layer_entries(store: Any, kind: str, coords: str) -> pd.DataFrame:
    """The entries of one layer: label, key, text, href and bounds (``minx`` … in display coordinates)."""
    return layer_entries_of(store.read(kind, columns=_searchable(kind)), kind, coords)


def layer_entries_of(frame: gpd.GeoDataFrame, kind: str, coords: str) -> pd.DataFrame:
    """:func:`layer_entries` of rows already read."""
    e = _entries(kind, frame)
    if len(e):
        boxes = gpd.GeoSeries(shapely.box(e["minx"], e["miny"], e["maxx"], e["maxy"]), crs=frame.crs)
        b = np.round(shapely.bounds(to_display(gpd.GeoDataFrame(geometry=boxes), coords).geometry.to_numpy()), 6)
        e = e.assign(minx=b[:, 0], miny=b[:, 1], maxx=b[:, 2], maxy=b[:, 3])
    e["layer"] = kind
    e["text"] = e["text"].astype("string").str.casefold()  # what a query is matched against
    e["rank"] = _ROLE_RANK.get(CATALOGUE[kind].role, 2) * 1000 + _ORDER[kind]
    return e.reset_index(drop=True)


_PARTS: dict[tuple[Any, ...], tuple[Any, pd.DataFrame]] = {}


#: layers written all day by the desk (a report, a step): after a write their part is rebuilt in the
#: background while searches use the part as it was (a case number is still found at once: see
#: :func:`case_hit`); the other layers change by an import or an analysis and are rebuilt before answering
STALE_WHILE_REBUILT = frozenset({"problems"})
_REBUILDING: dict[tuple[Any, ...], threading.Thread] = {}


def _rebuild_later(store: Any, kind: str, coords: str, stamp: Any) -> None:
    key = (store.location, coords, kind)

    def run() -> None:
        try:
            part = layer_entries(store, kind, coords)
            with _LOCK:
                _PARTS[key] = (stamp, part)
                for k in [k for k in _INDEX if k[:2] == key[:2]]:  # the next search composes the new part
                    del _INDEX[k]
        finally:
            with _LOCK:
                _REBUILDING.pop(key, None)

    with _LOCK:
        if key in _REBUILDING:
            return
        t = _REBUILDING[key] = threading.Thread(target=run, name=f"search-index-{kind}", daemon=True)
    t.start()


def wait_for_rebuilds(timeout_s: float = 60.0) -> None:
    """Wait until the background rebuilds of the index's parts are done (tests, benchmarks)."""
    with _LOCK:
        threads = list(_REBUILDING.values())
    for t in threads:
        t.join(timeout_s)


def case_hit(store: Any, index: SearchIndex, q: str, coords: str) -> dict[str, Any] | None:
    """When ``index`` has the problems as they were before a report (their part is being rebuilt): the
    case whose number is ``q``, read from the store now (one look-up on the key's index), as a hit; else
    ``None`` (the index is current and has it)."""
    q = q.strip().lstrip("#＃")
    if "problems" not in index.stale or not q.isdigit() or not store.has("problems"):
        return None
    from sanigrid.layers.filters import eq

    frame = store.read("problems", where=eq("problem_id", int(q)), columns=["problem_id", "category"])
    if frame.empty:
        return None
    e = layer_entries_of(frame.iloc[:1], "problems", coords)
    return {"layer": "problems", "label": e["label"].iloc[0], "href": None,
            "bounds": [float(v) for v in e[["minx", "miny", "maxx", "maxy"]].iloc[0]]}


def build_index(store: Any, coords: str) -> SearchIndex:
    """Every searchable layer's entries laid out for lookups. Each layer's part is kept until that layer
    changes, so a web report rebuilds the problems' part, not the streets' or the grids'."""
    parts = []
    stamps = layer_stamps(store)
    live = set()
    stale: set[str] = set()
    for kind, stamp in stamps.items():
        if not _searchable(kind) or stamp[1] == 0:
            continue
        key = (store.location, coords, kind)
        live.add(key)
        with _LOCK:
            hit = _PARTS.get(key)
        if hit is None:
            hit = (stamp, layer_entries(store, kind, coords))
            with _LOCK:
                _PARTS[key] = hit
        elif hit[0] != stamp:
            if kind in STALE_WHILE_REBUILT:
                _rebuild_later(store, kind, coords, stamp)  # meanwhile the part as it was
                stale.add(kind)
            else:
                hit = (stamp, layer_entries(store, kind, coords))
                with _LOCK:
                    _PARTS[key] = hit
        parts.append(hit[1])
    with _LOCK:
        for k in [k for k in _PARTS if k[:2] == (store.location, coords) and k not in live]:
            del _PARTS[k]  # a layer dropped since
    if not parts:
        empty = np.array([], dtype=object)
        return SearchIndex(empty, empty, empty, pd.Series([], dtype="string"), np.zeros((0, 4)), empty,
                           np.array([], int))
    t = pd.concat(parts, ignore_index=True)
    return SearchIndex(layer=t["layer"].to_numpy(object), label=t["label"].to_numpy(object),
                       key=t["key"].to_numpy(object), text=t["text"],
                       bounds=t[["minx", "miny", "maxx", "maxy"]].to_numpy(float), href=t["href"].to_numpy(object),
                       rank=t["rank"].to_numpy(int), stale=frozenset(stale))


def search_index(store: Any, coords: str) -> SearchIndex:
    """The index of the store as it is now (built on the first search after a write)."""
    key = (store.location, coords, store.version())
    with _LOCK:
        hit = _INDEX.get(key)
    if hit is not None:
        return hit
    idx = build_index(store, coords)
    with _LOCK:
        for k in [k for k in _INDEX if k[:2] == key[:2]]:  # older versions of the same store
            del _INDEX[k]
        _INDEX[key] = idx
    return idx


def find(index: SearchIndex, q: str, limit: int) -> list[int]:
    """Positions of the hits for ``q`` in the index, best first."""
    q = q.strip()
    if not q or not len(index.label):
        return []
    grid = np.flatnonzero((index.layer == "grids") & (index.key == q))
    if len(grid):
        return [int(grid[0])]
    m = np.flatnonzero(index.text.str.contains(q.casefold(), regex=False).to_numpy(dtype=bool))
    if not len(m):
        return []
    exact = index.key[m] == q
    order = np.lexsort((index.label[m].astype(str), index.rank[m], ~exact))
    return [int(i) for i in m[order][:limit]]
