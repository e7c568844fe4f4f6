"""Benchmark: a province on Dask — counties in parallel, and reports in spatial partitions.

1. **Counties.** ``--counties`` generated counties (:mod:`sanigrid.scripts.demo.province`; 20, or 100
   with ``--full``), each running problems, coverage of every preset, hotspots and rank:
   * the serial loop in this process (:func:`sanigrid.scripts.province.run_serial`, the baseline),
   * a LocalCluster of 1 and of 2 worker processes (:func:`run_counties`), cluster start included;
   wall times, the ratios, the peak RSS of each worker, and the check that all three rank alike.
   From the measured per-county cost it prints what a 16-core machine and a cluster of such machines
   should give, on paper (waves of counties, cluster start measured here).
2. **Partitions.** ``--reports`` synthetic reports (2·10⁵, or 10⁷ with ``--full``) in the province's
   extent with dense blobs and a default-geocode pile, written as GeoParquet in chunks, read with
   ``dask_geopandas.read_parquet``, sorted into Hilbert partitions and analysed with a halo
   (:func:`sanigrid.geo.partitioned.analyse_partitioned`) on a LocalCluster of 2 workers; the
   single-frame run (:func:`analyse_frame`) beside it where the reports fit (≤ 2·10⁶) with the check
   that both agree; the largest partition's rows and bytes and the workers' peak RSS.

Run:  .venv/bin/python bench/bench_province.py                  (20 counties, 2·10⁵ reports)
      .venv/bin/python bench/bench_province.py --counties 6 --reports 100000   (a quick look)
      .venv/bin/python bench/bench_province.py --full           (100 counties, 10⁷ reports)
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _worker_peak_mb(client) -> dict[str, float]:
    def peak() -> float:
        import resource as r

        return r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024.0

    return client.run(peak)


def counties(n: int, work: Path) -> None:
    from sanigrid.scripts.demo.province import make_province
    from sanigrid.scripts.province import county_specs, dask_client, run_counties, run_serial, write_province

    t = time.perf_counter()
    make_province(work / "prov", n)
    print(f"{n} counties generated in {time.perf_counter() - t:.1f} s")
    specs = county_specs([str(work / "prov")])
    t = time.perf_counter()
    serial = run_serial(specs)
    t_serial = time.perf_counter() - t
    bad = [r for r in serial if not r.ok]
    assert not bad, bad[0].error
    ranks = {"serial": write_province(serial, work / "out_serial").ranked.set_index("code")["rank"]}
    per_county = [r.seconds for r in serial]
    print(f"serial loop, one process: {t_serial:7.1f} s  (per county: median {statistics.median(per_county):.1f} s, "
          f"max {max(per_county):.1f} s; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)")
    walls = {}
    start = {}
    for w in (1, 2):
        t = time.perf_counter()
        with dask_client(workers=w) as client:
            start[w] = time.perf_counter() - t
            runs = run_counties(specs, client=client)
            peaks = _worker_peak_mb(client)
        walls[w] = time.perf_counter() - t
        assert all(r.ok for r in runs)
        ranks[f"{w} workers"] = write_province(runs, work / f"out_{w}").ranked.set_index("code")["rank"]
        print(f"LocalCluster {w} worker(s):  {walls[w]:7.1f} s  (start {start[w]:.1f} s; "
              f"peak RSS per worker {', '.join(f'{v:.0f}' for v in peaks.values())} MB)  "
              f"serial / this = {t_serial / walls[w]:.2f}×")
    same = all((r.sort_index() == ranks["serial"].sort_index()).all() for r in ranks.values())
    print(f"same ranking in all three runs: {same}")
    c = statistics.median(per_county)
    for cores, machines in ((16, 1), (16, 4)):
        slots = cores * machines
        waves = math.ceil(n / slots)
        print(f"on paper, {machines} × {cores} cores: {n} counties in {waves} wave(s) of ≤ {slots}: "
              f"≈ {start[2] + waves * c:.0f} s (serial here {t_serial:.0f} s; per county {c:.1f} s, "
              f"cluster start {start[2]:.1f} s; I/O to one store server not modelled)")
    for n_big in (100, 300):
        print(f"  {n_big} counties on 4 × 16 cores ≈ {start[2] + math.ceil(n_big / 64) * c:.0f} s; "
              f"serial ≈ {n_big * c:.0f} s")


def _reports_chunk(rng: np.random.Generator, n: int, first_id: int, bounds: tuple[float, float, float, float],
                   pile_xy: tuple[float, float]):
    import geopandas as gpd

    x0, y0, x1, y1 = bounds
    nb = n // 3
    centres = np.column_stack([rng.uniform(x0, x1, max(1, n // 2000)), rng.uniform(y0, y1, max(1, n // 2000))])
    k = rng.integers(0, len(centres), nb)
    x = np.r_[rng.uniform(x0, x1, n - nb - n // 200), centres[k, 0] + rng.normal(0, 30, nb),
              np.full(n // 200, pile_xy[0])]
    y = np.r_[rng.uniform(y0, y1, n - nb - n // 200), centres[k, 1] + rng.normal(0, 30, nb),
              np.full(n // 200, pile_xy[1])]
    rep = pd.Timestamp("2026-05-01") + pd.to_timedelta(rng.uniform(0, 180, n), unit="D")
    closed = pd.Series(rep + pd.to_timedelta(rng.uniform(0.5, 10, n), unit="D")).where(rng.random(n) < 0.7)
    cats = rng.choice(np.array(["暴露垃圾", "乱堆乱放", "道路破损", "非法小广告"]), n)
    return gpd.GeoDataFrame({"problem_id": np.arange(first_id, first_id + n), "category": cats,
                             "reported_at": rep, "closed_at": closed.to_numpy()},
                            geometry=gpd.points_from_xy(x, y), crs=4548)


def partitions(n: int, work: Path) -> None:
    import dask_geopandas
    import geopandas as gpd

    from sanigrid.geo.partitioned import analyse_frame, analyse_partitioned, partition_reports
    from sanigrid.layers.settings import Settings
    from sanigrid.scripts.province import dask_client

    s = Settings()
    rng = np.random.default_rng(2026)
    side = math.sqrt(n / 50.0) * 100.0  # about 50 reports per hectare
    bounds = (500_000.0, 3_100_000.0, 500_000.0 + side, 3_100_000.0 + side)
    folder = work / "reports.parquet"
    folder.mkdir()
    chunk = 1_000_000
    t = time.perf_counter()
    for i, start in enumerate(range(0, n, chunk)):
        m = min(chunk, n - start)
        _reports_chunk(rng, m, start + 1, bounds, (bounds[0] + side / 3, bounds[1] + side / 3)).to_parquet(
            folder / f"part-{i:04d}.parquet")
    print(f"\n{n:,} reports written as GeoParquet in {time.perf_counter() - t:.1f} s ({side / 1000:.1f} km square)")
    npart = max(4, n // 100_000)
    t = time.perf_counter()
    with dask_client(workers=2) as client:
        ddf = partition_reports(dask_geopandas.read_parquet(folder), npartitions=npart)
        t_shuffle = time.perf_counter() - t
        res = analyse_partitioned(ddf, settings=s)
        labelled = int(res.reports.map_partitions(len).compute().sum())  # the per-report table, computed
        peaks = _worker_peak_mb(client)
    t_part = time.perf_counter() - t
    big = int(res.partitions["reports"].max())
    bytes_per_row = 8 * 9  # the light frame: id, 2 times, x, y, partition and three short strings
    print(f"partitioned, LocalCluster 2 workers: {t_part:.1f} s (Hilbert shuffle {t_shuffle:.1f} s), "
          f"{len(res.partitions)} partitions, largest {big:,} reports (+ halo up to "
          f"{int(res.partitions['halo_clusters'].max()):,}), ≈ {big * bytes_per_row / 1e6:.0f} MB of columns; "
          f"peak RSS per worker {', '.join(f'{v:.0f}' for v in peaks.values())} MB")
    print(f"  {labelled:,} reports labelled; {len(res.piles)} piles, {len(res.clusters)} clusters, "
          f"{len(res.rebounds):,} rebound links")
    if n <= 2_000_000:
        frame = gpd.read_parquet(folder)
        t = time.perf_counter()
        one = analyse_frame(frame, settings=s)
        t_one = time.perf_counter() - t
        same = (len(one.clusters) == len(res.clusters) and len(one.piles) == len(res.piles)
                and len(one.rebounds) == len(res.rebounds)
                and one.clusters["count"].tolist() == res.clusters["count"].tolist())
        print(f"single frame, this process: {t_one:.1f} s (peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB)  single / partitioned = "
              f"{t_one / t_part:.2f}×; same piles, clusters and links: {same}")
    else:
        print("  (no single-frame run at this size: it is what does not fit one process)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="100 counties and 10⁷ reports")
    ap.add_argument("--counties", type=int, default=None)
    ap.add_argument("--reports", type=int, default=None)
    a = ap.parse_args()
    n_counties = a.counties if a.counties is not None else (100 if a.full else 20)
    n_reports = a.reports if a.reports is not None else (10_000_000 if a.full else 200_000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if n_counties > 0:
            counties(n_counties, work)
        if n_reports > 0:
            partitions(n_reports, work)


if __name__ == "__main__":
    main()
