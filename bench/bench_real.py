"""Benchmark: a realistic complaint export end to end (import → problems → hotspots → rank), with peak RSS.

The generated file has the traits of the real export that broke sanigrid (issue 10): NYC-311-style
English headers (``Unique Key, Created Date, Closed Date, Agency, Complaint Type, Descriptor, Status,
Latitude, Longitude``), US dates (``09/03/2026 02:05:07 PM``), 158 complaint types, a pile of
``pile`` reports on one coordinate (the city hall: a default geocode), about 2 % closed a few seconds
*before* they were created, 1 % without coordinates and a few rows with latitude and longitude
swapped. The town lies around 117.22 °E, 28.30 °N so that the project CRS is a CGCS2000 zone.

Each size runs in a fresh child process, so "peak RSS" is that run's own peak resident memory
(VmHWM). The old way is measured in the same run on a subsample and extrapolated (labelled so):
* pile check: ``cKDTree.query_pairs`` + connected components (the former ``_check_piles``),
  quadratic in the pile: timed on piles of 2 000 and 4 000 and extrapolated with the square;
* dates: ``dateutil`` through ``pandas.Timestamp`` cell by cell (the former ``parse_datetime``),
  timed on 20 000 cells and extrapolated linearly to both date columns.

Run:  .venv/bin/python bench/bench_real.py          (150 000 rows, 20 000 in the pile)
      .venv/bin/python bench/bench_real.py --full   (also 10⁶ rows, 130 000 in the pile)
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: the English headers of the export → catalogue fields, as a user passes them with --map. The values of
#: ``Status`` (Open/Closed) are not 立案…结案 and there is no value mapping yet, so Status goes to the free-text
#: description and the case state comes from the closing date.
MAPPING = {"Unique Key": "problem_id", "Created Date": "reported_at", "Closed Date": "closed_at",
           "Complaint Type": "category", "Status": "description", "Latitude": "纬度", "Longitude": "经度"}
LON0, LAT0 = 117.22, 28.30
HALL = (117.2213, 28.3021)  # the pile: every report the geocoder could not place
US = "%m/%d/%Y %I:%M:%S %p"

_WORDS = ("Noise", "Illegal Parking", "Dirty Conditions", "Sanitation", "Street Condition", "Graffiti",
          "Rodent", "Missed Collection", "Overflowing Litter Basket", "Derelict Vehicle", "Sidewalk Condition",
          "Water System", "Street Light", "Blocked Driveway", "Food Establishment", "Dead Animal",
          "Homeless Encampment", "Snow", "Sewer", "Air Quality")
_QUAL = ("", " - Residential", " - Commercial", " - Street/Sidewalk", " - Vehicle", " - Park",
         " - Helicopter", " (Request)")


def categories(n: int = 158) -> list[str]:
    names = [w + q for q in _QUAL for w in _WORDS]
    return names[:n]


def make_export(path: Path, n: int, *, pile: int, seed: int = 311) -> dict[str, int]:
    """Write the export CSV; returns what was planted (pile, early closes, missing, swapped)."""
    rng = np.random.default_rng(seed)
    side = max(3000.0, np.sqrt(n / 15_000.0) * 1000.0)
    centres = rng.uniform(-side / 2, side / 2, (60, 2))
    half = n // 2
    xy = np.vstack([rng.uniform(-side / 2, side / 2, (half, 2)),
                    centres[rng.integers(0, 60, n - half)] + rng.normal(0, 120, (n - half, 2))])
    lon = LON0 + xy[:, 0] / (111_320.0 * np.cos(np.radians(LAT0)))
    lat = LAT0 + xy[:, 1] / 110_574.0
    in_pile = rng.choice(n, pile, replace=False)
    lon[in_pile], lat[in_pile] = HALL
    rest = np.setdiff1d(np.arange(n), in_pile)
    missing = rng.choice(rest, n // 100, replace=False)
    rest = np.setdiff1d(rest, missing)
    swapped = rng.choice(rest, 12, replace=False)
    lon_s, lat_s = lon.round(6).astype(object), lat.round(6).astype(object)
    lon_s[missing] = lat_s[missing] = ""
    lon_s[swapped], lat_s[swapped] = lat_s[swapped].copy(), lon_s[swapped].copy()
    cats = np.array(categories())
    # a few frequent types, a long tail (as in 311 data)
    weights = 1.0 / np.arange(1, len(cats) + 1) ** 1.1
    cat = cats[rng.choice(len(cats), n, p=weights / weights.sum())]
    t0 = pd.Timestamp("2026-01-01")
    created = t0 + pd.to_timedelta(rng.integers(0, 300 * 86_400, n), unit="s")
    closed = created + pd.to_timedelta(rng.integers(600, 10 * 86_400, n), unit="s")
    early = rng.random(n) < 0.02
    closed = closed.where(~early, created - pd.to_timedelta(rng.integers(1, 60, n), unit="s"))
    open_ = rng.random(n) < 0.05
    closed_s = pd.Series(closed.strftime(US)).where(~open_, "")
    pd.DataFrame({
        "Unique Key": np.arange(40_000_001, 40_000_001 + n), "Created Date": created.strftime(US),
        "Closed Date": closed_s, "Agency": "DSNY", "Complaint Type": cat, "Descriptor": "reported by phone",
        "Status": np.where(open_, "Open", "Closed"), "Latitude": lat_s, "Longitude": lon_s,
    }).to_csv(path, index=False)
    return {"rows": n, "pile": pile, "closed_before_created": int((early & ~open_).sum()),
            "missing_coordinates": len(missing), "swapped": len(swapped)}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


# ------------------------------------------------------------------ child: one end-to-end run
def child(n: int, pile: int, out: Path) -> None:
    from sanigrid.layers.importers import import_file
    from sanigrid.layers.project import init_project
    from sanigrid.layers.settings import ProblemCategory, Settings
    from sanigrid.scripts.problems import run_hotspots, run_problems, run_rank

    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        csv = d / "311_export.csv"
        planted = make_export(csv, n, pile=pile)
        s = Settings()
        s.problems.categories = [*s.problems.categories,
                                 *(ProblemCategory(name=c, deadline=3) for c in categories())]
        project = init_project(d / "county", settings=s)
        _grids(project)
        base = _rss_mb()
        times: dict[str, float] = {}
        cpu: dict[str, float] = {}
        steps = (("import", lambda: import_file(project, "problems", csv, mapping=MAPPING)),
                 ("problems", lambda: run_problems(project)), ("hotspots", lambda: run_hotspots(project)),
                 ("rank", lambda: run_rank(project)))
        results = {}
        for name, fn in steps:
            t, c = time.perf_counter(), time.process_time()
            results[name] = fn()
            times[name], cpu[name] = time.perf_counter() - t, time.process_time() - c
            print(f"   {name} {times[name]:.1f} s (CPU {cpu[name]:.1f} s), peak RSS so far {_rss_mb():,.0f} MB",
                  file=sys.stderr, flush=True)
        rep, hs = results["import"], results["hotspots"]
        counts = rep.validation.counts()
        out.write_text(json.dumps({
            "planted": planted, "times": times, "cpu": cpu, "peak_rss_mb": _rss_mb(), "base_rss_mb": base,
            "imported": rep.imported, "rejected": rep.rejected,
            "checks": {f"{r['check']}/{r['severity']}": int(r["count"]) for r in counts.to_dict("records")},
            "notes": rep.validation.notes,
            "piles": int(len(hs.hotspots.piles)), "rebound_links": int(len(hs.rebounds.pairs)),
        }))


def _grids(project) -> None:  # type: ignore[no-untyped-def]
    """A 6 × 6 fishnet of grids over the town (the ranking needs grids)."""
    import geopandas as gpd
    import shapely

    d = 0.03
    cells = [(i, j) for i in range(6) for j in range(6)]
    geoms = [shapely.box(LON0 - 3 * d + i * d, LAT0 - 3 * d + j * d, LON0 - 2 * d + i * d, LAT0 - 2 * d + j * d)
             for i, j in cells]
    path = project.root / "grids.geojson"
    gpd.GeoDataFrame({"网格编码": [f"G{i}{j}" for i, j in cells], "牵头单位": "城管局"}, geometry=geoms,
                     crs=4326).to_file(path)
    from sanigrid.layers.importers import import_file
    import_file(project, "grids", path)


# ------------------------------------------------------------------ the old way, on a subsample
def old_pile_check_s(pile: int) -> tuple[float, str]:
    """The former ``_check_piles`` (query_pairs + connected components) on piles of 2 000 and 4 000 points,
    extrapolated to ``pile`` with the square of the size (its pairs grow so)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    def run(m: int) -> float:
        rng = np.random.default_rng(1)
        xy = np.vstack([np.zeros((m, 2)), rng.uniform(0, 5000, (m, 2))])
        t = time.perf_counter()
        pairs = cKDTree(xy).query_pairs(r=1.0, output_type="ndarray")
        g = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(len(xy), len(xy)))
        connected_components(g, directed=False)
        return time.perf_counter() - t

    run(500)
    t2, t4 = run(2000), run(4000)
    per_pair = t4 / 4000**2
    return per_pair * pile**2, f"measured {t2:.2f} s @2k, {t4:.2f} s @4k pile; ×(n/4k)² extrapolated"


def old_dates_s(n: int) -> tuple[float, str]:
    """The former cell-by-cell parse (dateutil via pandas.Timestamp) on 20 000 US dates, extrapolated to
    both date columns of ``n`` rows."""
    from dateutil import parser as du

    rng = np.random.default_rng(2)
    cells = (pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 3e7, 20_000), unit="s")).strftime(US)
    t = time.perf_counter()
    for c in cells:
        pd.Timestamp(du.parse(c))
    dt = time.perf_counter() - t
    return dt * (2 * n) / 20_000, f"measured {dt:.2f} s on 20k cells; ×{2 * n / 20_000:g} extrapolated"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also 10⁶ rows (a pile of 130 000)")
    ap.add_argument("--child", nargs=3, metavar=("N", "PILE", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(int(args.child[0]), int(args.child[1]), Path(args.child[2]))
        return
    sizes = [(150_000, 20_000)] + ([(1_000_000, 130_000)] if args.full else [])
    for n, pile in sizes:
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            t = time.perf_counter()
            subprocess.run([sys.executable, __file__, "--child", str(n), str(pile), f.name], check=True)
            wall = time.perf_counter() - t
            r = json.loads(Path(f.name).read_text())
        tm = r["times"]
        total = sum(tm.values())
        print(f"\n== {n:,} rows, a pile of {pile:,} (child wall incl. generating the file: {wall:.1f} s)")
        print("   planted: " + ", ".join(f"{k} {v:,}" for k, v in r["planted"].items()))
        print("   wall: " + "  ".join(f"{k} {v:.1f} s" for k, v in tm.items()) + f"   end to end {total:.1f} s")
        print("   CPU:  " + "  ".join(f"{k} {v:.1f} s" for k, v in r["cpu"].items())
              + f"   end to end {sum(r['cpu'].values()):.1f} s (both cores; shared machine: wall > CPU)")
        print(f"   peak RSS {r['peak_rss_mb']:,.0f} MB (before the import: {r['base_rss_mb']:,.0f} MB)")
        print(f"   imported {r['imported']:,}, rejected {r['rejected']:,}; piles {r['piles']}, "
              f"rebound links {r['rebound_links']:,}")
        print("   checks: " + ", ".join(f"{k} {v:,}" for k, v in r["checks"].items()))
        for note in r["notes"]:
            if "date" in note or "pile" in note:
                print(f"   note: {note}")
        old_p, how_p = old_pile_check_s(pile)
        old_d, how_d = old_dates_s(n)
        print(f"   targets: import < {15 if n <= 150_000 else 120} s, peak RSS < {1.5 if n <= 150_000 else 4} GB")
        print(f"   old pile check alone ≈ {old_p:.0f} s ({how_p}); ratio old/our whole import "
              f"{old_p / tm['import']:.1f}×")
        print(f"   old date parse alone ≈ {old_d:.0f} s ({how_d}); ratio old/our whole import "
              f"{old_d / tm['import']:.1f}×")


if __name__ == "__main__":
    main()
