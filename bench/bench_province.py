"""Benchmark: a province on Dask — counties in parallel, and reports in spatial partitions.

1. **Counties.** ``--counties`` generated counties (:mod:`sanigrid.scripts.demo.province`; 20, or 100
   with ``--full``), each running problems, coverage of every preset, hotspots and rank:
   * the serial loop in this process (:func:`sanigrid.scripts.province.run_serial`, the baseline),
   * a LocalCluster of 1 and of 2 worker processes (:func:`run_counties`), cluster start included;
   wall times, the ratios, the peak RSS of each worker, and the check that all three rank alike.
   From the measured per-county cost it prints what a 16-core machine and a cluster of such machines
   should give, on paper (waves of counties, cluster start measured here).
2. **Partitions.** ``--reports`` synthetic reports (10⁵, or 10⁷ with ``--full``) at a city's density
   (towns, hot spots, default-geocode piles, sparse countryside; see ``_layout``), generated and
   written as GeoParquet a chunk (≤ 10⁶) at a time, then written once as Hilbert partitions
   (:func:`sanigrid.geo.partitioned.write_partitioned`, ``--rows-per-partition``, 10⁵) and analysed
   with a halo read by bounds (:func:`analyse_partitioned`) on a LocalCluster of 1 and of 2 workers;
   the single frame (:func:`analyse_frame`, read included) in a fresh process beside it where it fits
   (≤ 2·10⁶), with the check that both give the same piles, clusters, labels and links; above that the
   single frame is measured at 10⁶ of the same density and extrapolated. Printed: wall times and
   ratios, the largest partition's rows and halo, the peak RSS of each worker and of the one frame.

   Measured 2 December 2026 on this 2-core machine, shared and loaded (so wall ≫ CPU at times):
   10⁵ (quiet, load 0.5): one frame 1.2 s; partitioned 2.3 s with 1 worker (1.97×), 2.2 s with 2 (1.81×);
   10⁵ (load 10): one frame 2.5 s; 7.2 s (2.88×) and 9.3 s (3.69×). 10⁶: one frame 32 s, 1.4 GB;
   partitioned 59 s (1 worker), 49 s (2 workers, 1.52×), 0.65 GB per worker; results equal.
   10⁷ (--full, 17 min in all): written once in 149 s (1.2 GB); 2 workers 313 s (1.0 GB each), 1 worker
   316 s (1.7 GB); largest partition 100,270 reports + 2,894 halo; one frame ≈ 324 s and ≈ 8 GB
   (extrapolated from 10⁶). The second worker gave no speed-up here: the machine had no free core.

Run:  .venv/bin/python bench/bench_province.py                  (20 counties, 10⁵ reports)
      .venv/bin/python bench/bench_province.py --counties 0 --reports 100000   (partitions only)
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
    steps = {k: statistics.median(r.steps.get(k, 0.0) for r in serial) for k in serial[0].steps}
    print("per county, median seconds by step: " + ", ".join(f"{k} {v:.2f}" for k, v in steps.items()))
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


# ------------------------------------------------------------------ reports in spatial partitions
# Synthetic reports at a city's density, per 10⁵ reports: 700 km² (a county-sized square), 7 towns of
# σ 2 km holding 45 % (peak ≈ 2.6 reports per hectare: well below DBSCAN's core density of 15 within
# 60 m, so a town, even two overlapping, is not one cluster), 30 % in hot spots (markets, alleys:
# ≈ 80 reports within σ 25 m, placed in the towns), 3 % on the towns' centres (the default geocode:
# piles; in the NYC 311 sample 7 % of reports share their exact point with another) and 22 %
# scattered over the countryside (≈ 0.3 per hectare). About 36 % of reports end in clusters of median
# size ≈ 93; the largest few hundred (neighbouring hot spots).
TOWNS_PER_1E5 = 7
AREA_KM2_PER_1E5 = 700.0
SPOT_SIZE = 80
TOWN_SIGMA_M = 2000.0
SHARES = {"town": 0.45, "spot": 0.30, "pile": 0.03}  # the rest: background


def _layout(n: int, seed: int = 2026) -> dict[str, np.ndarray | float]:
    """The province's towns and hot spots (a few 10⁴ at 10⁷ reports: arrays, not objects)."""
    rng = np.random.default_rng(seed)
    side = math.sqrt(AREA_KM2_PER_1E5 * n / 1e5) * 1000.0
    n_towns = max(1, round(TOWNS_PER_1E5 * n / 1e5))
    towns = rng.uniform(0.05 * side, 0.95 * side, (n_towns, 2))
    n_spots = max(1, round(SHARES["spot"] * n / SPOT_SIZE))
    spots = towns[rng.integers(0, n_towns, n_spots)] + rng.normal(0, TOWN_SIGMA_M, (n_spots, 2))
    return {"side": side, "towns": towns, "spots": spots}


def _reports_chunk(rng: np.random.Generator, n: int, first_id: int, layout: dict, x0: float = 500_000.0,
                   y0: float = 3_100_000.0):
    import geopandas as gpd

    side, towns, spots = layout["side"], layout["towns"], layout["spots"]
    kind = rng.choice(4, n, p=[SHARES["town"], SHARES["spot"], SHARES["pile"], 1 - sum(SHARES.values())])
    xy = rng.uniform(0, side, (n, 2))  # background
    t = kind == 0
    xy[t] = towns[rng.integers(0, len(towns), t.sum())] + rng.normal(0, TOWN_SIGMA_M, (t.sum(), 2))
    s = kind == 1
    xy[s] = spots[rng.integers(0, len(spots), s.sum())] + rng.normal(0, 25.0, (s.sum(), 2))
    p = kind == 2
    xy[p] = towns[rng.integers(0, len(towns), p.sum())]
    xy = np.clip(xy, 0, side)
    rep = (pd.Timestamp("2026-05-01") + pd.to_timedelta(rng.uniform(0, 180, n), unit="D")).floor("s")
    closed = pd.Series(rep + pd.to_timedelta(rng.uniform(0.5, 10, n), unit="D")).where(rng.random(n) < 0.7)
    cats = rng.choice(np.array(["暴露垃圾", "乱堆乱放", "道路破损", "非法小广告"]), n)
    return gpd.GeoDataFrame({"problem_id": np.arange(first_id, first_id + n), "category": cats,
                             "reported_at": rep, "closed_at": closed.to_numpy()},
                            geometry=gpd.points_from_xy(xy[:, 0] + x0, xy[:, 1] + y0), crs=4548)


def _write_reports(n: int, folder: Path, *, chunk: int = 1_000_000) -> None:
    """``n`` reports as GeoParquet files of ``chunk`` rows, generated a chunk at a time."""
    layout = _layout(n)
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True)
    for i, start in enumerate(range(0, n, chunk)):
        _reports_chunk(rng, min(chunk, n - start), start + 1, layout).to_parquet(folder / f"raw-{i:04d}.parquet")


def _digest(table: pd.DataFrame) -> str:
    """A fingerprint of the per-report results (problem_id, grid, pile, cluster) in problem_id order."""
    import hashlib

    t = table.sort_values("problem_id", kind="stable")
    h = hashlib.sha256()
    for c in ("problem_id", "pile", "cluster"):
        h.update(t[c].to_numpy(dtype="int64").tobytes())
    h.update("|".join(t["grid_code"].fillna("").astype(str)).encode())
    return h.hexdigest()[:16]


def _link_hash(links: pd.DataFrame) -> int:
    return int(pd.util.hash_pandas_object(links[["closed_id", "new_id"]], index=False).sum() % (1 << 62))


def _summary(res) -> dict:
    """Piles, clusters, and the links' count and order-free fingerprint (summed per partition on the workers)."""
    rb = res.rebounds
    links = (int(rb.map_partitions(_link_hash, meta=("h", "int64")).compute().sum() % (1 << 62))
             if hasattr(rb, "map_partitions") else _link_hash(rb))
    return {"piles": res.piles["count"].tolist(), "clusters": res.clusters["count"].tolist(),
            "rebounds": int(res.partitions["rebounds"].sum()), "links": links}


def _single_frame(raw: str) -> dict:
    """One frame in a fresh process: read the GeoParquet, analyse (time, peak RSS, results)."""
    import geopandas as gpd

    from sanigrid.geo.partitioned import analyse_frame
    from sanigrid.layers.settings import Settings

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # the code loaded, no reports yet
    t, cpu = time.perf_counter(), time.process_time()
    frame = gpd.read_parquet(raw)
    res = analyse_frame(frame, settings=Settings())
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    return {"seconds": seconds, "cpu": cpu, "base_mb": base,
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
            "digest": _digest(res.report_table()), **_summary(res)}


def _in_fresh_process(fn, *args):
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as ex:
        return ex.submit(fn, *args).result()


def _warm() -> None:
    import dask.dataframe  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import sanigrid.geo.partitioned  # noqa: F401


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _partitioned(raw: Path, work: Path, n: int, workers: tuple[int, ...], *, keep_table: bool,
                 rows_per_partition: int, repeat: int) -> dict:
    """Write the reports once as Hilbert partitions, then analyse them on LocalClusters of ``workers``."""
    from sanigrid.geo.partitioned import ParquetPartitions, analyse_partitioned
    from sanigrid.layers.settings import Settings
    from sanigrid.scripts.province import dask_client

    parts_dir = work / f"parts_{n}"
    npart = max(4, n // rows_per_partition)
    t = time.perf_counter()
    ds = _in_fresh_process(_write_dataset, str(raw), str(parts_dir), npart)
    print(f"  written once as {npart} Hilbert partitions (GeoParquet, chunk by chunk, one process): "
          f"{time.perf_counter() - t:.1f} s, peak RSS {ds['peak_mb']:.0f} MB")
    reader = ParquetPartitions(parts_dir)
    out: dict = {"walls": {}, "cpu": {}, "digest": {}}
    for w in workers:
        t = time.perf_counter()
        with dask_client(workers=w) as client:
            client.run(_warm)  # the workers load the code once (part of starting a cluster)
            start = time.perf_counter() - t
            best = math.inf
            for _ in range(repeat):
                cpu0, t, tc = sum(client.run(_cpu).values()), time.perf_counter(), time.process_time()
                res = analyse_partitioned(reader, settings=Settings())
                table = res.reports.compute() if keep_table else None
                labelled = len(table) if table is not None else int(res.reports.map_partitions(len).compute().sum())
                wall = time.perf_counter() - t
                if wall < best:
                    best = out["walls"][w] = wall
                    out["cpu"][w] = sum(client.run(_cpu).values()) - cpu0 + time.process_time() - tc
            peaks = _worker_peak_mb(client)
            out["summary"] = summ = _summary(res)  # the links stay in the workers: counted there
        if table is not None:
            out["digest"][w] = _digest(table)
        big = res.partitions.loc[res.partitions["reports"].idxmax()]
        print(f"  partitioned, LocalCluster {w} worker(s): {out['walls'][w]:6.1f} s wall, {out['cpu'][w]:.1f} s CPU "
              f"(best of {repeat}; cluster start and code loading {start:.1f} s not included); "
              f"{len(res.partitions)} partitions, largest {int(big['reports']):,} reports + halo "
              f"{int(big['halo']):,} (largest halo {int(res.partitions['halo'].max()):,}); peak RSS per worker "
              f"{', '.join(f'{v:.0f}' for v in peaks.values())} MB")
    print(f"  {labelled:,} reports labelled; {len(summ['piles'])} piles (largest {max(summ['piles'], default=0)}), "
          f"{len(summ['clusters']):,} clusters (largest {max(summ['clusters'], default=0)}, median "
          f"{int(np.median(summ['clusters'])) if summ['clusters'] else 0}), {summ['rebounds']:,} rebound links")
    return out


def partitions(n: int, work: Path, *, single_max: int = 2_000_000, rows_per_partition: int = 100_000) -> None:
    """The partitioned pipeline at ``n`` reports against one frame (measured where it fits, ≤ 2·10⁶; above,
    measured at 10⁶ of the same density and extrapolated)."""
    sizes = [n] if n <= single_max else [1_000_000, n]
    walls_at: dict[int, dict] = {}
    for m in sizes:
        raw = work / f"raw_{m}"
        t = time.perf_counter()
        _write_reports(m, raw)
        print(f"\n{m:,} reports generated as GeoParquet in chunks of ≤ 10⁶ in {time.perf_counter() - t:.1f} s "
              f"({_layout(m)['side'] / 1000:.0f} km square, {round(TOWNS_PER_1E5 * m / 1e5)} towns, "
              f"{round(SHARES['spot'] * m / SPOT_SIZE):,} hot spots)")
        fits = m <= single_max
        # above what one frame holds, 2 workers first: the 1-worker run is the longest of the bench
        run = _partitioned(raw, work, m, (1, 2) if fits else (2, 1), keep_table=fits,
                           rows_per_partition=rows_per_partition, repeat=2 if m <= 200_000 else 1)
        walls_at[m] = run["walls"]
        if not fits:
            print(f"  (no single-frame run at {m:,}: it is what one process should not hold; see the extrapolation)")
            continue
        runs = [_in_fresh_process(_single_frame, str(raw)) for _ in range(2 if m <= 200_000 else 1)]
        one = min(runs, key=lambda r: r["seconds"])
        same = all(d == one["digest"] for d in run["digest"].values()) and all(
            one[k] == run["summary"][k] for k in ("piles", "clusters", "rebounds", "links"))
        ratios = ", ".join(f"{w} worker(s) {v / one['seconds']:.2f}× (CPU {run['cpu'][w] / one['cpu']:.2f}×)"
                           for w, v in run["walls"].items())
        print(f"  single frame, one fresh process (read + analyse_frame; best of {len(runs)}): {one['seconds']:.1f} s "
              f"wall, {one['cpu']:.1f} s CPU, peak RSS "
              f"{one['peak_mb']:.0f} MB; partitioned / single: {ratios}; same piles, clusters, labels and "
              f"links: {same}")
        if m < n:
            mem = one["base_mb"] + (one["peak_mb"] - one["base_mb"]) * n / m
            print(f"  → one frame at {n:,} (linear from {m:,}): ≈ {one['seconds'] * n / m:.0f} s and "
                  f"≈ {mem / 1024:.1f} GB in one process (code {one['base_mb']:.0f} MB + "
                  f"{(one['peak_mb'] - one['base_mb']) / m * 1e6:.0f} MB per 10⁶ reports)")


def _write_dataset(raw: str, out: str, npart: int) -> dict:
    from sanigrid.geo.partitioned import GeoParquetSource, write_partitioned

    write_partitioned(GeoParquetSource(raw), out, npartitions=npart)
    return {"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="100 counties and 10⁷ reports")
    ap.add_argument("--counties", type=int, default=None)
    ap.add_argument("--reports", type=int, default=None)
    ap.add_argument("--rows-per-partition", type=int, default=100_000)
    a = ap.parse_args()
    n_counties = a.counties if a.counties is not None else (100 if a.full else 20)
    n_reports = a.reports if a.reports is not None else (10_000_000 if a.full else 100_000)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if n_counties > 0:
            counties(n_counties, work)
        if n_reports > 0:
            partitions(n_reports, work, rows_per_partition=a.rows_per_partition)


if __name__ == "__main__":
    main()
