"""Benchmark: our Gi* vs esda, our DBSCAN vs scikit-learn (DBSCAN, HDBSCAN) and the weekly pipeline.

    .venv/bin/python bench/bench_problems.py           # quick sizes (about a minute on 2 cores)
    .venv/bin/python bench/bench_problems.py --full    # adds 10^6 for scikit-learn DBSCAN (~12 GB!)
                                                       # and HDBSCAN at 10^5

Every clustering run happens in a fresh child process so that its peak resident memory is its own:
"Δpeak MB" is the rise of the peak resident size (VmHWM) during the call (the data and imports are already resident),
"peak RSS" the child's whole peak; "CPU s" is user+system time (k-d tree queries use both cores,
so CPU can exceed wall time; on a loaded machine wall time exceeds CPU time). Times are wall-clock seconds, best
of ``--repeat`` runs for the fast parts. Synthetic data with fixed seeds: reports scattered along
a town of ``side`` metres, half uniform, half around 40 centres (σ = 150 m).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from _timing import best_of

ROOT = Path(__file__).resolve().parents[1]
TMP = tempfile.gettempdir()  # label files passed between the benchmark and its child processes
sys.path.insert(0, str(ROOT))


def _reports_xy(n: int, seed: int = 1) -> np.ndarray:
    """n report coordinates (metres) over a town whose area grows with n (density ~ 15,000/km²)."""
    rng = np.random.default_rng(seed)
    side = max(2000.0, np.sqrt(n / 15_000.0) * 1000.0)
    centres = rng.uniform(0, side, (40, 2))
    half = n // 2
    return np.vstack([rng.uniform(0, side, (half, 2)),
                      centres[rng.integers(0, 40, n - half)] + rng.normal(0, 150, (n - half, 2))])



def _rss_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM (ru_maxrss is inherited across exec on Linux,
    so a child started by a big parent would report the parent's peak)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------ child: one clustering run
def child(method: str, n: int, eps: float, min_samples: int) -> None:
    xy = _reports_xy(n)
    import sklearn.cluster  # noqa: F401  (imports before the baseline)

    from sanigrid.geo.hotspots import dbscan_labels
    base = _rss_mb()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu0 = ru.ru_utime + ru.ru_stime
    t0 = time.perf_counter()
    if method == "ours":
        lab = dbscan_labels(xy, eps_m=eps, min_samples=min_samples)
    elif method == "sklearn_dbscan":
        from sklearn.cluster import DBSCAN
        lab = DBSCAN(eps=eps, min_samples=min_samples, n_jobs=-1).fit(xy).labels_
    elif method == "sklearn_hdbscan":
        from sklearn.cluster import HDBSCAN
        lab = HDBSCAN(min_cluster_size=min_samples).fit(xy).labels_
    elif method == "hdbscan_pkg":
        import hdbscan
        lab = hdbscan.HDBSCAN(min_cluster_size=min_samples).fit(xy).labels_
    else:
        raise SystemExit(f"unknown method {method}")
    dt = time.perf_counter() - t0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    cpu = ru.ru_utime + ru.ru_stime - cpu0
    np.save(f"{TMP}/bench_problems_{method}_{n}.npy", lab)
    print(json.dumps({"seconds": dt, "cpu": cpu, "peak_mb": _rss_mb() - base, "rss_mb": _rss_mb(),
                      "clusters": int(lab.max() + 1)}))


def run_child(method: str, n: int, eps: float, min_samples: int) -> dict | None:
    cmd = [sys.executable, __file__, "--child", method, str(n), str(eps), str(min_samples)]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        print(f"    {method} n={n}: failed: {r.stderr.strip().splitlines()[-1] if r.stderr else r.returncode}")
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ Gi*
def bench_gi(sizes: list[int], esda_max: int, repeat: int) -> None:
    import esda
    import libpysal
    import shapely

    from sanigrid.geo.hotspots import gi_star, gi_star_lattice, lattice_kernel, lattice_weights, make_fishnet

    print("\n== Gi* (binary distance band = cell·√2, self included; analytical z) ==")
    print(f"{'cells':>8} {'ours lattice':>13} {'ours sparse':>12} {'esda W':>9} {'esda G':>9} "
          f"{'ratio':>8} {'max |Δz|':>10}")
    rng = np.random.default_rng(0)
    cell = 50.0
    for n in sizes:
        radius = np.sqrt(n / np.pi) * cell  # a disc of about n cells
        area = shapely.Point(0, 0).buffer(radius, quad_segs=64)
        net = make_fishnet(area, cell_m=cell)
        counts = rng.poisson(2.0, net.shape).astype(float)
        band = cell * np.sqrt(2.0)
        t_lat, z = best_of(lambda net=net, counts=counts, band=band: gi_star_lattice(
            counts, net.mask, lattice_kernel(cell, band)), repeat)
        z = z[net.mask]
        t_sp, _ = best_of(lambda net=net, counts=counts, band=band: gi_star(
            counts[net.mask], lattice_weights(net, band_m=band)), repeat)
        m = int(net.mask.sum())
        if m <= esda_max:
            r, c = np.nonzero(net.mask)
            pts = np.column_stack([(c + 0.5) * cell, (r + 0.5) * cell])
            t0 = time.perf_counter()
            w = libpysal.weights.DistanceBand(pts, threshold=band * (1 + 1e-9), binary=True, silence_warnings=True)
            t_w = time.perf_counter() - t0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t0 = time.perf_counter()
                g = esda.G_Local(counts[net.mask], w, star=True, transform="B", permutations=0)
                t_g = time.perf_counter() - t0
            dz = float(np.abs(g.Zs - z).max())
            print(f"{m:>8} {t_lat * 1000:>10.1f} ms {t_sp * 1000:>9.1f} ms {t_w:>8.2f}s {t_g:>8.2f}s "
                  f"{(t_w + t_g) / t_lat:>7.0f}× {dz:>10.1e}")
        else:
            print(f"{m:>8} {t_lat * 1000:>10.1f} ms {t_sp * 1000:>9.1f} ms {'—':>9} {'—':>9} {'':>8} {'':>10}")


# ------------------------------------------------------------------ clustering
def bench_clusters(sizes: list[int], full: bool, eps: float, min_samples: int) -> None:
    from sklearn.metrics import adjusted_rand_score

    print(f"\n== density clusters (DBSCAN eps={eps:g} m, min_samples={min_samples}; each run in a fresh process) ==")
    print(f"{'reports':>9} {'method':<16} {'seconds':>8} {'CPU s':>7} {'Δpeak MB':>9} {'peak RSS':>9} "
          f"{'clusters':>8}")
    try:
        import hdbscan  # noqa: F401
        have_pkg = True
    except ImportError:
        have_pkg = False
    for n in sizes:
        plan = ["ours"]
        if n <= 100_000 or full:
            plan.append("sklearn_dbscan")
        if n <= 10_000 or (full and n <= 100_000):
            plan.append("sklearn_hdbscan")
            if have_pkg:
                plan.append("hdbscan_pkg")
        results = {}
        for method in plan:
            res = run_child(method, n, eps, min_samples)
            if res is None:
                continue
            results[method] = res
            print(f"{n:>9} {method:<16} {res['seconds']:>8.2f} {res['cpu']:>7.2f} {res['peak_mb']:>9.0f} "
                  f"{res['rss_mb']:>9.0f} {res['clusters']:>8}")
        if "ours" in results and "sklearn_dbscan" in results:
            a = np.load(f"{TMP}/bench_problems_ours_{n}.npy")
            b = np.load(f"{TMP}/bench_problems_sklearn_dbscan_{n}.npy")
            ratio = results["sklearn_dbscan"]["seconds"] / results["ours"]["seconds"]
            print(f"{'':>9} ours vs sklearn DBSCAN: {ratio:.1f}× faster, ARI {adjusted_rand_score(a, b):.6f}, "
                  f"same noise points: {bool(np.array_equal(a == -1, b == -1))}")
        if not have_pkg and n == sizes[0]:
            print(f"{'':>9} (the hdbscan package is not installed: skipped)")
        for method in results:
            Path(f"{TMP}/bench_problems_{method}_{n}.npy").unlink(missing_ok=True)


# ------------------------------------------------------------------ the weekly pipeline
def bench_pipeline(n: int) -> None:
    import geopandas as gpd
    import pandas as pd
    import shapely

    from sanigrid.geo import hotspots
    from sanigrid.geo.problems import assign
    from sanigrid.geo.rebound import rebounds
    from sanigrid.geo.scorecard import scorecard
    from sanigrid.layers.cases import deadlines, is_overdue
    from sanigrid.layers.settings import Settings

    print(f"\n== weekly pipeline on {n:,} reports (50 grids, 26 weeks) ==")
    s = Settings()
    rng = np.random.default_rng(3)
    x0, y0 = 523_000.0, 3_131_000.0
    side = 6000.0
    xy = _reports_xy(n, seed=3)
    xy = xy / xy.max() * side
    xy[:, 0] += x0
    xy[:, 1] += y0
    cats = np.array(s.problem_categories)
    rep = pd.Timestamp("2026-05-18") + pd.to_timedelta(rng.uniform(0, 182, n), unit="D")
    closed = rep + pd.to_timedelta(rng.exponential(30, n), unit="h")
    as_of = pd.Timestamp("2026-11-16")
    closed = pd.Series(closed).where(closed <= as_of, pd.NaT)
    problems = gpd.GeoDataFrame({
        "problem_id": np.arange(1, n + 1), "category": cats[rng.integers(0, len(cats), n)],
        "reported_at": rep, "closed_at": closed, "status": np.where(closed.isna(), "处置", "结案"),
    }, geometry=shapely.points(xy), crs="EPSG:4548")
    gw, gh_ = side / 10, side / 5
    grids = gpd.GeoDataFrame({"code": [f"G{i:02d}" for i in range(50)], "lead_unit": "县城管局"},
                             geometry=[shapely.box(x0 + (i % 10) * gw, y0 + (i // 10) * gh_, x0 + (i % 10 + 1) * gw,
                                                   y0 + (i // 10 + 1) * gh_) for i in range(50)], crs="EPSG:4548")
    steps = []
    cpu0 = time.process_time()

    def step(name, fn):
        t0 = time.perf_counter()
        out = fn()
        steps.append((name, time.perf_counter() - t0))
        return out

    p = step("assign grids + units", lambda: assign(problems, grids, settings=s))
    p["deadline"] = step("deadlines", lambda: deadlines(p["category"], p["reported_at"], settings=s)).to_numpy()
    step("overdue", lambda: is_overdue(p, as_of=as_of))
    piles, in_pile = step("piles", lambda: hotspots.find_piles(p, min_count=20))
    step("clusters (DBSCAN + hulls)", lambda: hotspots.clusters(p, eps_m=s.hotspots.cluster_eps_m,
                                                           min_samples=s.hotspots.cluster_min_size, as_of=as_of))
    area = shapely.union_all(grids.geometry.to_numpy())
    cells, params = step("Gi* + FDR + emerging (12 weeks)", lambda: hotspots.hot_spots(p, study_area=area, weeks=12,
                                                                                as_of=as_of))
    rb = step("rebounds", lambda: rebounds(p, radius_m=s.rebound.radius_m, window_days=s.rebound.window_days,
                                           as_of=as_of))
    step("scorecard (this + previous month)", lambda: scorecard(p, grids, settings=s, as_of=as_of, links=rb.pairs))
    for name, dt in steps:
        print(f"  {name:<36} {dt * 1000:>8.0f} ms")
    total = sum(dt for _, dt in steps)
    print(f"  {'total':<36} {total * 1000:>8.0f} ms   CPU {(time.process_time() - cpu0) * 1000:.0f} ms "
          f"(target < 2000 ms; {params['cells']} cells of "
          f"{params['cell_size_m']:g} m, trend bins {params['trend_cell_m']:g} m)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--full", action="store_true", help="largest sizes for the peers too (slow, up to ~12 GB)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--eps", type=float, default=30.0)
    ap.add_argument("--min-samples", type=int, default=15)
    ap.add_argument("--only", choices=["gi", "clusters", "pipeline"], default=None)
    ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(a.child[0], int(a.child[1]), float(a.child[2]), int(a.child[3]))
        return
    print(f"bench_problems: numpy {np.__version__}, {'full' if a.full else 'quick'} sizes")
    if a.only in (None, "gi"):
        bench_gi([1_000, 10_000, 100_000], esda_max=120_000, repeat=a.repeat)
    if a.only in (None, "clusters"):
        bench_clusters([10_000, 100_000, 1_000_000], a.full, a.eps, a.min_samples)
    if a.only in (None, "pipeline"):
        bench_pipeline(100_000)


if __name__ == "__main__":
    main()
