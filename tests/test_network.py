"""Street network: noding, snapping onto edges, distances (hand-made graphs and networkx as oracle)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import networkx as nx
import numpy as np
import pyogrio
import pytest
import shapely

from sanigrid.geo.network import (
    build_network,
    components_frame,
    insert_points,
    nearest_distances,
    reach,
    snap_points,
    substrings,
)

CRS = "EPSG:4548"
OSM = Path(__file__).resolve().parents[1] / "layers" / "data" / "guixi-center.osm"


def lines(*coords, **cols) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame(cols or None, geometry=[shapely.LineString(c) for c in coords], crs=CRS)


def node_at(net, x, y) -> int:
    d = np.hypot(net.nodes[:, 0] - x, net.nodes[:, 1] - y)
    assert d.min() < 1e-6, f"no node at {x},{y}"
    return int(d.argmin())


def test_crossing_lines_are_noded_and_lengths_in_metres():
    # a plus sign: two 200 m lines crossing in the middle without a shared vertex
    net = build_network(lines([(0, 100), (200, 100)], [(100, 0), (100, 200)]))
    assert net.n_nodes == 5 and net.n_edges == 4
    np.testing.assert_allclose(np.sort(net.length), [100, 100, 100, 100])
    d, _ = nearest_distances(net, np.array([node_at(net, 0, 100)]))
    assert d[node_at(net, 100, 200)] == pytest.approx(200)


def test_ends_within_snap_tolerance_are_joined():
    gap = lines([(0, 0), (100, 0)], [(100.4, 0), (200, 0)])
    assert build_network(gap, snap_tolerance_m=1.0).component.max() == 0
    assert build_network(gap, snap_tolerance_m=0.1).component.max() == 1
    comps = components_frame(build_network(gap, snap_tolerance_m=0.1))
    assert list(comps["main"]) == [True, False]
    assert comps["length_m"].sum() == pytest.approx(200 - 0.4, abs=0.01)


def test_grid_distances_known_on_paper():
    # 3 × 3 block grid of 100 m: Manhattan distances
    rows = [[(0, y), (300, y)] for y in range(0, 301, 100)] + [[(x, 0), (x, 300)] for x in range(0, 301, 100)]
    net = build_network(lines(*rows))
    assert net.n_nodes == 16 and net.n_edges == 24
    d, near = nearest_distances(net, np.array([node_at(net, 0, 0), node_at(net, 300, 300)]))
    assert d[node_at(net, 100, 0)] == pytest.approx(100)
    assert d[node_at(net, 200, 100)] == pytest.approx(300)
    assert near[node_at(net, 200, 300)] == 1
    d2, _ = nearest_distances(net, np.array([node_at(net, 0, 0)]), limit_m=250)
    assert np.isinf(d2[node_at(net, 300, 0)])


def test_points_snap_to_the_edge_not_the_node():
    net = build_network(lines([(0, 0), (100, 0)], [(100, 0), (100, 100)]))
    pts = gpd.GeoSeries([shapely.Point(30, 5), shapely.Point(70, -3), shapely.Point(50, 500)], crs=CRS)
    sn = snap_points(net, pts, max_snap_m=50)
    assert list(sn["attached"]) == [True, True, False]
    np.testing.assert_allclose(sn["snap_m"][:2], [5, 3])
    net2, nodes = insert_points(net, sn)
    assert nodes[2] == -1
    assert net2.length.sum() == pytest.approx(net.length.sum())
    d, _ = nearest_distances(net2, nodes[:1])
    assert d[nodes[1]] == pytest.approx(40)  # along the edge, not via a node
    assert d[node_at(net2, 100, 100)] == pytest.approx(170)


def test_substrings_cut_at_the_given_distances():
    g = np.array([shapely.LineString([(0, 0), (10, 0), (10, 10)])], dtype=object)
    part = substrings(g, [5], [15])[0]
    assert part.length == pytest.approx(10)
    assert shapely.equals_exact(part, shapely.LineString([(5, 0), (10, 0), (10, 5)]), tolerance=1e-9)
    assert substrings(g, [3], [3])[0] is None


@pytest.fixture(scope="module")
def town():
    df = pyogrio.read_dataframe(OSM, layer="lines")
    df = df[df["highway"].notna()].to_crs(CRS)
    return build_network(df)


def test_distances_equal_networkx_on_the_demo_town(town):
    G = nx.Graph()
    for a, b, w in zip(town.u, town.v, town.length, strict=True):
        if a != b and (not G.has_edge(a, b) or G[a][b]["weight"] > w):
            G.add_edge(int(a), int(b), weight=float(w))
    rng = np.random.default_rng(42)
    main = np.flatnonzero(town.component == 0)
    src = rng.choice(main, 5, replace=False)
    for s in src:
        ours, _ = nearest_distances(town, np.array([s]))
        theirs = nx.single_source_dijkstra_path_length(G, int(s), weight="weight")
        tgt = rng.choice(main, 40, replace=False)
        np.testing.assert_allclose([ours[t] for t in tgt], [theirs[int(t)] for t in tgt], rtol=1e-9)
    # multi-source: the minimum over sources
    ours, _ = nearest_distances(town, src)
    theirs = nx.multi_source_dijkstra_path_length(G, {int(s) for s in src}, weight="weight")
    nodes = np.array(sorted(theirs))
    np.testing.assert_allclose(ours[nodes], [theirs[n] for n in nodes], rtol=1e-9)


def test_reach_matches_one_search_per_source(town):
    rng = np.random.default_rng(1)
    src = rng.choice(town.n_nodes, 8, replace=False)
    src[5] = src[2]  # a node named twice answers for both positions
    src[6] = -1  # not attached: nothing
    k, node, dist = reach(town, src, limit_m=400)
    assert not (k == 6).any()
    for i, s in enumerate(src):
        if s < 0:
            continue
        full, _ = nearest_distances(town, np.array([s]), limit_m=400)
        got = np.full(town.n_nodes, np.inf)
        got[node[k == i]] = dist[k == i]
        np.testing.assert_allclose(got, full)


def test_inserted_points_reuse_the_parent_graph_without_changing_distances(town):
    assert town.graph.shape[0] == len(town.node_tree.data)  # built before the split, then reused
    rng = np.random.default_rng(3)
    e = rng.integers(0, town.n_edges, 50)
    pts = shapely.line_interpolate_point(town.geometry[e], rng.uniform(0.05, 0.95, 50), normalized=True)
    sn = snap_points(town, gpd.GeoSeries(pts, crs=CRS), max_snap_m=5)
    net2, nodes = insert_points(town, sn)
    assert net2.parent is town
    G = nx.Graph()
    for a, b, w in zip(net2.u, net2.v, net2.length, strict=True):
        if a != b and (not G.has_edge(a, b) or G[a][b]["weight"] > w):
            G.add_edge(int(a), int(b), weight=float(w))
    for s in nodes[:5]:
        ours, _ = nearest_distances(net2, np.array([s]))
        theirs = nx.single_source_dijkstra_path_length(G, int(s), weight="weight")
        nn = np.array(sorted(theirs))
        np.testing.assert_allclose(ours[nn], [theirs[n] for n in nn], rtol=1e-9)
        k, node, dist = reach(net2, np.array([s]), limit_m=300)
        np.testing.assert_allclose(dist, [theirs[int(n)] for n in node], rtol=1e-9)
        assert set(node.tolist()) == {n for n, d in theirs.items() if d <= 300}


def test_dead_end_short_of_a_line_is_joined_onto_it():
    # a T whose stem stops 0.6 m below the bar: joined with a 1 m tolerance, an island with 0.3 m
    t = lines([(0, 0), (200, 0)], [(100, -100), (100, -0.6)])
    net = build_network(t, snap_tolerance_m=1.0)
    assert net.component.max() == 0 and net.n_nodes == 4 and net.n_edges == 3
    d, _ = nearest_distances(net, np.array([node_at(net, 0, 0)]))
    assert d[node_at(net, 100, -100)] == pytest.approx(200, abs=1e-6)  # 100 along the bar, 100 down the stem
    assert build_network(t, snap_tolerance_m=0.3).component.max() == 1
