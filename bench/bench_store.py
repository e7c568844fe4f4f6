"""Benchmark: writing and reading a problems layer, PostGIS store vs GeoPackage store, in one run.

Both stores get the same frame (catalogue columns, projected points); we time ``write`` (a
replace, in its own transaction), a full ``read``, a ``bbox`` read of about 1/16 of the town,
an ``append`` of 1 % more rows and an ``update`` of 100 rows by key (best of 3, except the append).

Needs a PostGIS server: ``export SANIGRID_TEST_PG=$(scripts/postgis_test_server.sh | tail -1)``
(the benchmark works in a schema of its own and drops it afterwards).

Run:  .venv/bin/python bench/bench_store.py          (20 000 problems)
      .venv/bin/python bench/bench_store.py --full   (100 000 problems: a county's year of reports)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from _timing import best_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sanigrid.layers.filters import eq
from sanigrid.layers.postgis import PostGISStore
from sanigrid.layers.store import GeoPackageStore


def make_problems(n: int, seed: int = 2026) -> gpd.GeoDataFrame:
    rng = np.random.default_rng(seed)
    lon = 117.22 + rng.uniform(-0.03, 0.03, n)
    lat = 28.30 + rng.uniform(-0.02, 0.02, n)
    cats = np.array(["暴露垃圾", "占道经营", "乱堆物料", "机动车乱停放", "非法小广告"])
    t0 = pd.Timestamp("2026-01-01")
    return gpd.GeoDataFrame({
        "problem_id": np.arange(1, n + 1),
        "category": cats[rng.integers(0, len(cats), n)],
        "status": np.where(rng.random(n) < 0.6, "结案", "受理"),
        "reported_at": t0 + pd.to_timedelta(rng.integers(0, 300 * 86400, n), unit="s"),
        "address": [f"城关镇某路{i % 500}号" for i in range(n)],
    }, geometry=gpd.points_from_xy(lon, lat), crs=4326).to_crs(4548)



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="100 000 problems instead of 20 000")
    args = ap.parse_args()
    url = os.environ.get("SANIGRID_TEST_PG")
    if not url:
        sys.exit("set SANIGRID_TEST_PG (see scripts/postgis_test_server.sh)")
    n = 100_000 if args.full else 20_000
    frame = make_problems(n)
    extra = make_problems(max(1, n // 100), seed=7)
    extra["problem_id"] += n
    x0, y0, x1, y1 = frame.total_bounds
    box = (x0, y0, x0 + (x1 - x0) / 4, y0 + (y1 - y0) / 4)
    changes = {i: {"status": "结案"} for i in range(1, 101)}

    schema = f"bench_{uuid.uuid4().hex[:8]}"
    pg = PostGISStore(url, schema=schema)
    tmp = tempfile.TemporaryDirectory()
    gp = GeoPackageStore(Path(tmp.name) / "bench.gpkg")
    rows: list[tuple[str, float, float]] = []
    try:
        for label, fn, repeat in [  # best of 3 where the operation can be repeated
            ("write", lambda s: s.write("problems", frame), 3),
            ("read all", lambda s: s.read("problems"), 3),
            ("read bbox 1/16", lambda s: s.read("problems", bbox=box), 3),
            ("read where", lambda s: s.read("problems", where=eq("status", "受理")), 3),
            ("append 1 %", lambda s: s.append("problems", extra), 1),
            ("update 100 by key", lambda s: s.update("problems", "problem_id", changes), 3),
        ]:
            t_pg, r_pg = best_of(lambda fn=fn: fn(pg), repeat)
            t_gp, r_gp = best_of(lambda fn=fn: fn(gp), repeat)
            if isinstance(r_pg, pd.DataFrame):
                assert len(r_pg) == len(r_gp), (label, len(r_pg), len(r_gp))
            rows.append((label, t_pg, t_gp))
    finally:
        import psycopg

        with psycopg.connect(url) as con:
            con.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        tmp.cleanup()
    print(f"store benchmark: {n:,} problems (points, 5 attributes), PostGIS on {pg.location.split(' (')[0]}")
    print(f"{'operation':<20}{'PostGIS s':>12}{'GeoPackage s':>14}{'PG/GPKG':>10}")
    for label, a, b in rows:
        print(f"{label:<20}{a:>12.3f}{b:>14.3f}{a / b:>10.2f}")


if __name__ == "__main__":
    main()
