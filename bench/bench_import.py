"""Benchmark: reading + validating + importing a problems CSV, and GCJ-02 → WGS84 conversion.

Compares, in the same run,
* our vectorised GCJ-02 inverse with the peer library eviltransform (``gcj2wgs_exact``, one
  point at a time, as most Chinese coordinate libraries work);
* ``read_file`` + ``validate`` (every check) with a bare pandas ``read_csv`` + ``points_from_xy``
  that checks nothing: the ratio is what the checks cost;
* the full ``import_file`` into a fresh project (store write in a transaction included).

Run:  .venv/bin/python bench/bench_import.py          (20 000 rows)
      .venv/bin/python bench/bench_import.py --full   (100 000 rows: a county's year of reports)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from _timing import best_of

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sanigrid.layers.crs import gcj02_to_wgs84, wgs84_to_gcj02
from sanigrid.layers.importers import import_file, read_file
from sanigrid.layers.project import init_project
from sanigrid.layers.validation import validate


def make_csv(path: Path, n: int, seed: int = 2026) -> None:
    rng = np.random.default_rng(seed)
    lon = 117.22 + rng.uniform(-0.03, 0.03, n)
    lat = 28.30 + rng.uniform(-0.02, 0.02, n)
    glon, glat = wgs84_to_gcj02(lon, lat)
    cats = np.array(["暴露垃圾", "占道经营", "乱堆物料", "机动车乱停放", "非法小广告"])
    t0 = pd.Timestamp("2026-01-01")
    rep = t0 + pd.to_timedelta(rng.uniform(0, 180, n), unit="D")
    closed = rep + pd.to_timedelta(rng.uniform(0.1, 5, n), unit="D")
    pd.DataFrame({
        "案件号": np.arange(1, n + 1), "问题类别": cats[rng.integers(0, len(cats), n)],
        "问题描述": ["路边垃圾"] * n, "来源": "巡查", "上报时间": rep.strftime("%Y-%m-%d %H:%M"),
        "结案时间": closed.strftime("%Y-%m-%d %H:%M"), "状态": "结案",
        "经度": glon.round(7), "纬度": glat.round(7),
    }).to_csv(path, index=False, encoding="utf-8-sig")



def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="100 000 rows instead of 20 000")
    args = ap.parse_args()
    n = 100_000 if args.full else 20_000
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv = tmp / "problems.csv"
        make_csv(csv, n)
        print(f"problems CSV: {n:,} rows in GCJ-02, {csv.stat().st_size / 1e6:.1f} MB")

        rng = np.random.default_rng(1)
        glon, glat = wgs84_to_gcj02(rng.uniform(74, 134, n), rng.uniform(19, 53, n))
        t_ours, _ = best_of(lambda: gcj02_to_wgs84(glon, glat), repeat=3)
        try:
            import eviltransform
            m = min(n, 20_000)
            t_evil, _ = best_of(lambda: [eviltransform.gcj2wgs_exact(b, a) for a, b in zip(glon[:m], glat[:m],
                                                                                           strict=True)])
            t_evil *= n / m
            print(f"GCJ-02 → WGS84, {n:,} points: ours {t_ours * 1e3:.1f} ms, eviltransform.gcj2wgs_exact "
                  f"{t_evil * 1e3:.0f} ms (per point; scaled from {m:,}) → {t_evil / t_ours:.0f}× faster")
        except ImportError:
            print(f"GCJ-02 → WGS84, {n:,} points: ours {t_ours * 1e3:.1f} ms (eviltransform not installed)")

        def bare():
            f = pd.read_csv(csv, encoding="utf-8-sig")
            return gpd.GeoDataFrame(f, geometry=gpd.points_from_xy(f["经度"], f["纬度"]), crs=4326)

        t_bare, _ = best_of(bare)
        t_read, raw = best_of(lambda: read_file(csv, kind="problems", coords="gcj02"))
        t_val, rep = best_of(lambda: validate("problems", raw))
        print(f"read_file {t_read:.2f} s + validate {t_val:.2f} s = {t_read + t_val:.2f} s "
              f"({(t_read + t_val) / n * 1e6:.0f} µs/row); bare pandas+geopandas read without checks "
              f"{t_bare:.2f} s → checks cost {(t_read + t_val) / t_bare:.1f}×")
        print(f"  accepted {len(rep.accepted):,}, rejected {len(rep.rejects):,}, warnings {len(rep.warnings):,}")

        project = init_project(tmp / "county")
        t_imp, irep = best_of(lambda: import_file(project, "problems", csv, coords="gcj02"))
        print(f"import_file (read, validate, write GeoPackage in one transaction): {t_imp:.2f} s, "
              f"{irep.imported:,} rows written")
        t_again, irep2 = best_of(lambda: import_file(project, "problems", csv, coords="gcj02"))
        print(f"the same file again (every row a duplicate of the store, refused): {t_again:.2f} s, "
              f"rejected {irep2.rejected:,}")


if __name__ == "__main__":
    main()
