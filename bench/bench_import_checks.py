"""Benchmark: the import checks of issue 10 at 10⁵–10⁶ rows, each against a peer or the old way.

Compares, in the same run,
* far-off points from the layer's spread (``_check_spread``, run by :func:`validate` without a
  boundary: median and MAD in numpy, then the swapped test of the flagged rows) with the same rule
  in scipy (``median_abs_deviation(scale="normal")``): the flagged rows must be identical;
* value mapping (:func:`map_values`, one lookup per distinct value) with the per-cell way
  (``Series.map`` of a Python function on every cell): equal output;
* duplicate lines (canonical WKB keys, as in ``_check_duplicates``) with shapely's STRtree
  (``predicate="covers"`` then ``shapely.equals``: topological equality, the peer way to find the
  same line drawn again): the same rows found.

Peak memory (max RSS of the process) is printed at the end.

Run:  .venv/bin/python bench/bench_import_checks.py          (100 000 rows)
      .venv/bin/python bench/bench_import_checks.py --full   (1 000 000 rows)
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from _timing import best_of
from pyproj import CRS
from scipy.stats import median_abs_deviation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sanigrid.layers.catalogue import spec
from sanigrid.layers.columns import map_values, value_key
from sanigrid.layers.settings import Settings
from sanigrid.layers.validation import _canonical, _check_spread, _Collector

NEW_YORK = (-73.9857, 40.7484)


def spread(n: int) -> None:
    rng = np.random.default_rng(1)
    lon = NEW_YORK[0] + rng.normal(0, 0.05, n)
    lat = NEW_YORK[1] + rng.normal(0, 0.04, n)
    far = rng.choice(n, n // 1000, replace=False)
    lon[far] += rng.choice([-1, 1], len(far)) * rng.uniform(0.5, 60, len(far))
    frame = gpd.GeoDataFrame({"name": np.arange(n).astype(str)}, geometry=gpd.points_from_xy(lon, lat), crs=4326)
    vs = Settings().validation
    geom = np.asarray(frame.geometry.array, dtype=object)
    metric = np.asarray(frame.geometry.to_crs(32618).array, dtype=object)

    def ours() -> _Collector:
        col = _Collector("bench", range(1, n + 1), range(n), "row", {})
        _check_spread(geom.copy(), metric.copy(), np.ones(n, dtype=bool), frame.crs, CRS(32618), vs, col, [],
                      fix=False, swappable=True)
        return col

    t_ours, col = best_of(ours)
    flagged_ours = {int(i.row) - 1 for i in col.issues}

    def peer() -> set[int]:
        x, y = shapely.get_x(metric), shapely.get_y(metric)
        d = np.hypot(x - np.median(x), y - np.median(y))
        limit = max(vs.spread_min_m, np.median(d) + vs.spread_k * median_abs_deviation(d, scale="normal"))
        return set(np.flatnonzero(d > limit).tolist())

    t_peer, flagged_peer = best_of(peer)
    assert flagged_ours == flagged_peer, (len(flagged_ours), len(flagged_peer))
    print(f"spread check, {n:,} points: ours {t_ours:.3f} s (with the swapped test of the flagged rows), the "
          f"rule in scipy {t_peer:.3f} s (ours / scipy = {t_ours / t_peer:.1f}×); {len(flagged_ours)} rows flagged "
          "by both (identical)")


def values(n: int) -> None:
    rng = np.random.default_rng(2)
    words = np.array(["PHONE", "Online", "mobile", "UNKNOWN", "Other", "phone "])
    frame = pd.DataFrame({"source": words[rng.integers(0, len(words), n)]}, dtype="object")  # as read_file has it
    table = {"PHONE": "群众举报", "ONLINE": "群众举报", "MOBILE": "群众举报", "UNKNOWN": "其他", "OTHER": "其他"}
    t_ours, (ours, _) = best_of(lambda: map_values(frame, {"source": table}, spec("problems")))
    lookup = {value_key(k): v for k, v in table.items()}
    t_cell, cell = best_of(lambda: frame["source"].map(lambda v: lookup.get(value_key(v), v)))
    assert (ours["source"].to_numpy() == cell.to_numpy()).all()
    print(f"value mapping, {n:,} cells: map_values {t_ours:.3f} s, per cell {t_cell:.3f} s "
          f"(per cell / ours = {t_cell / t_ours:.1f}×)")


def duplicate_lines(n: int) -> None:
    rng = np.random.default_rng(3)
    x0, y0 = rng.uniform(0, 20_000, n), rng.uniform(0, 20_000, n)
    coords = np.stack([np.column_stack([x0 + 40 * k, y0 + 25 * k * k]) for k in range(4)], axis=1)
    lines = shapely.linestrings(coords)
    again = rng.choice(n, n // 50, replace=False)  # the same streets drawn again, backwards
    geoms = np.concatenate([lines, shapely.reverse(lines[again])])

    def ours() -> set[int]:
        keys = pd.Series(shapely.to_wkb(_canonical(geoms), hex=True))
        return set(np.flatnonzero(keys.duplicated().to_numpy()).tolist())

    def peer() -> set[int]:
        tree = shapely.STRtree(geoms)
        a, b = tree.query(geoms, predicate="covers")
        keep = (a != b) & shapely.equals(geoms[a], geoms[b])
        return set(np.unique(np.maximum(a, b)[keep]).tolist())

    t_ours, found = best_of(ours)
    t_peer, found_peer = best_of(peer)
    assert found == found_peer == set(range(n, n + len(again)))
    print(f"duplicate lines, {len(geoms):,} lines: canonical WKB {t_ours:.2f} s, STRtree + equals {t_peer:.2f} s "
          f"(peer / ours = {t_peer / t_ours:.1f}×), {len(found):,} repeats found by both")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="1 000 000 rows instead of 100 000")
    n = 1_000_000 if ap.parse_args().full else 100_000
    spread(n)
    values(n)
    duplicate_lines(n)
    print(f"peak memory (max RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
