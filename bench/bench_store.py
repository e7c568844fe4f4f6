"""Benchmark: GeoPackage writes in place vs the old file copy, and the PostGIS store vs the GeoPackage store.

Part 1 (always): one web report appended, and one case updated, to a store of ``n`` problems, ``--reps``
times each: in place (one SQLite transaction in WAL mode, as the store writes now; with the writing
connection kept open as the web server does, and with a new connection per write as the CLI does)
against the old way (copy the whole file, write the copy, fsync, rename over the original), p50/p95
and the ratios.

Part 2 (with a PostGIS server):

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
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from _timing import best_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sanigrid.layers.filters import eq
from sanigrid.layers.postgis import PostGISStore
from sanigrid.layers.store import GeoPackageStore, release


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



def copy_way(path: Path, op) -> None:
    """The store's old write path, kept as the baseline: copy the file, write the copy, fsync, rename."""
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    tmp = path.with_name(f".{path.stem}.bench.tmp.gpkg")
    shutil.copyfile(path, tmp)
    op(GeoPackageStore(tmp))
    release(tmp)  # the copy's writing connection closes, as every write's did in the old way
    con = sqlite3.connect(tmp)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.execute("PRAGMA journal_mode=DELETE")
    con.close()
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    release(path)  # the in-place way's connection to the file being replaced
    os.replace(tmp, path)


# in place with the writing connection kept (the web server's store), in place with a connection per
# write (the CLI's), and the old way
WAYS = ("in place, kept (server)", "in place, new connection", "file copy")


def in_place_vs_copy(frame: gpd.GeoDataFrame, reps: int) -> None:
    n = len(frame)
    with tempfile.TemporaryDirectory() as d:
        store = GeoPackageStore(Path(d) / "bench.gpkg")
        store.write("problems", frame)
        size = store.path.stat().st_size / 1e6
        one = make_problems(1, seed=11)
        times: dict[tuple[str, str], list[float]] = {}
        next_id = [n]

        def append(s: GeoPackageStore) -> None:
            next_id[0] += 1
            s.append("problems", one.assign(problem_id=next_id[0]))

        def update(s: GeoPackageStore) -> None:
            s.update("problems", "problem_id", {int(next_id[0] % n) + 1: {"status": "派遣"}})

        kept = GeoPackageStore(store.path)
        kept.keep_writer = True  # as the web server's store
        for label, op in (("append 1 report", append), ("update 1 case", update)):
            for way in WAYS:
                out = times.setdefault((label, way), [])
                for _ in range(reps if way != "file copy" else max(3, reps // 3)):
                    t = time.perf_counter()
                    if way == "file copy":
                        copy_way(store.path, op)
                    else:
                        op(kept if way == WAYS[0] else store)
                    out.append(time.perf_counter() - t)
            release(store.path)
        assert len(store.read("problems", columns=["problem_id"])) == next_id[0]
    print(f"GeoPackage writes: {n:,} problems ({size:.0f} MB), in place (WAL) vs the old file copy")
    print(f"{'operation':<18}{'way':<24}{'n':>4}{'p50 ms':>9}{'p95 ms':>9}{'way/server (p50)':>18}")
    for label in ("append 1 report", "update 1 case"):
        base = float(np.median(times[(label, WAYS[0])]))
        for way in WAYS:
            v = np.array(times[(label, way)])
            ratio = f"{np.median(v) / base:>18.1f}" if way != WAYS[0] else ""
            print(f"{label:<18}{way:<24}{len(v):>4}{np.median(v) * 1e3:>9.1f}{np.percentile(v, 95) * 1e3:>9.1f}{ratio}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="100 000 problems instead of 20 000")
    ap.add_argument("--reps", type=int, default=30, help="writes timed per way (the copy way: a third)")
    args = ap.parse_args()
    n = 100_000 if args.full else 20_000
    frame = make_problems(n)
    in_place_vs_copy(frame, args.reps)
    url = os.environ.get("SANIGRID_TEST_PG")
    if not url:
        print("(PostGIS vs GeoPackage skipped: set SANIGRID_TEST_PG, see scripts/postgis_test_server.sh)")
        return
    print()
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
