"""The demo county: layers, counts, codes, problem structure, determinism and `sanigrid demo`."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from scipy.spatial import cKDTree
from typer.testing import CliRunner

from sanigrid.geo.grids import assign_grid
from sanigrid.layers.cases import HISTORY_TABLE, TRANSITIONS, deadlines
from sanigrid.layers.project import Project, open_project
from sanigrid.scripts.demo import build_demo, demo_settings, make_demo_layers
from sanigrid.scripts.demo.facts import AS_OF, ATTRIBUTION, COUNTY_CODE, END, START

SEED = 2026
N_PROBLEMS = 5000
ROW_M = 400.0  # numbering rows (the rule the codes must follow, restated here on purpose)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Project:
    root = tmp_path_factory.mktemp("demo") / "guixi"
    build_demo(root, seed=SEED, n_problems=N_PROBLEMS)
    return open_project(root)  # read back as a user would


@pytest.fixture(scope="module")
def problems(demo: Project) -> gpd.GeoDataFrame:
    return demo.store.read("problems")


def test_layers_counts_and_crs(demo: Project) -> None:
    counts = {li.kind: li.count for li in demo.store.info()}
    expected = {  # kind: (min, max)
        "streets": (100, 400), "alleys": (200, 800), "grids": (40, 60), "toilets": (45, 70),
        "transfer_stations": (3, 5), "collection_points": (100, 200), "markets": (5, 8),
        "residents": (80, 150), "sample_points": (200, 800), "problems": (N_PROBLEMS, N_PROBLEMS),
    }
    for kind, (lo, hi) in expected.items():
        assert lo <= counts.get(kind, 0) <= hi, (kind, counts.get(kind))
    assert demo.store.crs.to_epsg() == 4548
    for kind in expected:
        frame = demo.store.read(kind)
        assert frame.crs.to_epsg() == 4548, kind
        assert frame.geometry.is_valid.all() and not frame.geometry.is_empty.any(), kind
    s = demo.settings.project
    assert (s.name, s.county_code, s.attribution) == ("贵溪市(演示)", "360681", ATTRIBUTION)
    assert (demo.root / "data" / "guixi-center.osm").exists()


def test_streetscape_in_a_urban_village(demo: Project) -> None:
    from sanigrid.geo.scorecard import components_good, facade_rate, zone_table

    zones, facades, comps = (demo.store.read(k) for k in ("zones", "facades", "components"))
    assert set(zones["zone_type"]) == {"城中村", "城乡结合部"}
    assert 300 <= len(facades) <= 1000 and 300 <= len(comps) <= 1000
    assert set(facades.geom_type) == {"LineString", "Polygon"} and {"Point", "LineString"} <= set(comps.geom_type)
    assert facades["grid_code"].notna().all() and comps["grid_code"].notna().all()
    z = zone_table(zones, facades, comps).set_index("片区")
    village = z.loc["花园村"]
    assert village["片区类型"] == "城中村" and village["立面数"] >= 50 and village["部件数"] >= 50
    # the village is visibly behind the rest of the town
    grids = demo.store.read("grids")
    assert village["立面粉刷覆盖率(%)"] < 60 < 100 * facade_rate(grids, facades).median()
    assert village["部件完好率(%)"] < 75 < 100 * components_good(grids, comps).median()


def test_archive_with_missing_expired_and_copied_files(demo: Project) -> None:
    from sanigrid.scripts.archive import run_archive

    run = run_archive(demo, xlsx=False)
    counts = run.completeness["status"].value_counts()
    assert counts["齐全"] > counts["缺失"] > 20 and counts["过期"] > 20
    depts = run.summary.set_index("holder")
    assert depts.loc["县市场监管局", "missing"] == depts.loc["县市场监管局", "required"] >= 1
    across = run.duplicates[run.duplicates["across"]]
    assert across["group"].nunique() == 1 and across["holder"].nunique() == 4
    assert set(across["document"]) == {"卫生许可证"}
    assert (run.near["by"] == "正文").sum() == 1 and run.near["holder_a"].str.endswith("居委会").all()


def test_metadata_flags_synthetic_layers(demo: Project) -> None:
    for li in demo.store.info():
        assert li.params["seed"] == SEED
        assert "ODbL" in li.params["source"] and "OpenStreetMap" in li.params["source"]
        assert li.synthetic == (li.kind != "streets"), li.kind


def test_streets_from_osm(demo: Project) -> None:
    streets = demo.store.read("streets")
    assert set(streets["road_class"]) <= {"主干路", "次干路", "支路", "街巷", "其他"}
    assert {"主干路", "次干路", "支路"} <= set(streets["road_class"])
    assert streets["osm_id"].notna().all()
    assert streets["busy"].sum() >= 3
    assert {"贵溪大道", "建设路", "北大街"} <= set(streets["name"].dropna())


def _rows(cx: np.ndarray, cy: np.ndarray) -> np.ndarray:
    return np.floor((cy.max() - cy) / ROW_M)


def _numbered_in_order(numbers: np.ndarray, cx: np.ndarray, cy: np.ndarray) -> bool:
    """Numbers 1..n follow rows north→south, and west→east within a row."""
    if sorted(numbers) != list(range(1, len(numbers) + 1)):
        return False
    o = np.argsort(numbers)
    row, x = _rows(cx, cy)[o], cx[o]
    return bool(np.all((np.diff(row) > 0) | ((np.diff(row) == 0) & (np.diff(x) > 0))))


def test_grid_codes(demo: Project) -> None:
    grids = demo.store.read("grids")
    codes = grids["code"]
    assert codes.str.fullmatch(r"\d{14}").all()
    assert codes.is_unique
    assert codes.str.startswith(COUNTY_CODE).all()
    for col in ("name", "street_office", "community", "lead_unit", "head", "phone"):
        assert grids[col].notna().all(), col
    assert grids["phone"].str.fullmatch(r"1380000\d{4}").all()
    assert (grids["households"] > 0).all()
    # one community per 12-digit prefix and one street office per 9-digit prefix
    assert grids.groupby(codes.str[:12])["community"].nunique().eq(1).all()
    assert grids.groupby(codes.str[:9])["street_office"].nunique().eq(1).all()
    c = grids.geometry.centroid
    grids = grids.assign(cx=c.x, cy=c.y)
    for _, g in grids.groupby(codes.str[:12]):
        assert _numbered_in_order(g["code"].str[-2:].astype(int).to_numpy(), g["cx"].to_numpy(),
                                  g["cy"].to_numpy()), g["code"].tolist()
    # communities within a street office by the same rule, on the mean centroid of their grids
    comm = grids.groupby(codes.str[:12])[["cx", "cy"]].mean()
    for _, g in comm.groupby(comm.index.str[:9]):
        assert _numbered_in_order(g.index.str[9:12].astype(int).to_numpy(), g["cx"].to_numpy(),
                                  g["cy"].to_numpy())
    # grids do not overlap
    area = grids.area.sum()
    assert grids.union_all().area == pytest.approx(area, rel=1e-6)


def test_grids_cover_all_problems(demo: Project, problems: gpd.GeoDataFrame) -> None:
    grids = demo.store.read("grids")
    got = assign_grid(problems, grids)
    assert got.notna().all()  # the pile at the government office lies inside a grid too
    assert (got.to_numpy() == problems["grid_code"].to_numpy()).all()
    assert problems["unit"].notna().all()
    routed = {c.name: c.route_to for c in demo.settings.problems.categories if c.route_to}
    r = problems["category"].map(routed)
    assert (problems.loc[r.notna(), "unit"] == r.dropna()).all()


def test_problem_times_and_statuses(demo: Project, problems: gpd.GeoDataFrame) -> None:
    assert problems["problem_id"].is_unique
    assert problems["reported_at"].between(START, END).all()
    closed = problems["closed_at"].notna()
    assert (problems["closed_at"][closed] >= problems["reported_at"][closed]).all()
    assert (closed == problems["status"].eq("结案")).all()
    assert (problems["deadline"] > problems["reported_at"]).all()
    # deadlines are the category's, by the project's calendar
    expect = deadlines(problems["category"], problems["reported_at"], settings=demo.settings)
    assert (expect.to_numpy() == problems["deadline"].to_numpy()).all()
    overdue_open = ~closed & (problems["deadline"] < AS_OF)
    assert overdue_open.sum() >= 50
    late = closed & (problems["closed_at"] > problems["deadline"])
    assert 0.1 < late.sum() / closed.sum() < 0.5
    assert set(problems["status"]) >= {"结案", "派遣", "处置"}
    # grids are uneven: the worst grid has several times the median
    per_grid = problems["grid_code"].value_counts()
    assert per_grid.max() > 3 * per_grid.median()


def test_pile_at_default_geocode(problems: gpd.GeoDataFrame) -> None:
    xy = pd.DataFrame({"x": problems.geometry.x, "y": problems.geometry.y})
    sizes = xy.value_counts()
    assert sizes.iloc[0] >= 100
    assert sizes.iloc[1] < 10  # one pile, not several


def test_hotspots(problems: gpd.GeoDataFrame) -> None:
    xy = np.column_stack([problems.geometry.x, problems.geometry.y])
    dense = np.array([len(n) for n in cKDTree(xy).query_ball_point(xy, 120)])
    # distinct dense centres: take the densest report, drop everything within 300 m, repeat
    centres = []
    left = np.flatnonzero(dense >= 100)
    while len(left):
        top = left[np.argmax(dense[left])]
        centres.append(top)
        left = left[np.hypot(*(xy[left] - xy[top]).T) > 300]
    assert len(centres) >= 5  # two markets, the night market, the station, the village (+ the pile)
    assert np.median(dense) < 60


def _rebound_pairs(p: gpd.GeoDataFrame, *, radius_m: float = 50, days: float = 30) -> int:
    xy = np.column_stack([p.geometry.x, p.geometry.y])
    pairs = cKDTree(xy).query_pairs(radius_m, output_type="ndarray")
    cat = p["category"].to_numpy()
    closed = p["closed_at"].to_numpy()
    rep = p["reported_at"].to_numpy()
    n = 0
    for pr in (pairs, pairs[:, ::-1]):
        i, j = pr[:, 0], pr[:, 1]
        gap = rep[j] - closed[i]
        ok = (cat[i] == cat[j]) & ~np.isnat(gap) & (gap > np.timedelta64(0, "s")) & (
            gap <= np.timedelta64(int(days * 86400), "s"))
        n += int(ok.sum())
    return n


def test_rebounds_exist(problems: gpd.GeoDataFrame) -> None:
    # away from the pile and the hotspots: the rebound chains put there on purpose
    chains = problems[problems["demo_truth"] == "rebound"]
    assert _rebound_pairs(chains) >= 20
    # some spots rebound more than once (chains of three or more)
    assert _rebound_pairs(chains) > chains["problem_id"].count() // 4
    assert _rebound_pairs(problems) >= _rebound_pairs(chains)


def test_history_consistent(demo: Project, problems: gpd.GeoDataFrame) -> None:
    h = demo.store.read_table(HISTORY_TABLE)
    assert list(h.columns[:6]) == ["problem_id", "from_status", "to_status", "at", "actor", "note"]
    h = h.sort_values(["problem_id", "at"], kind="stable")
    first = h.groupby("problem_id").head(1).set_index("problem_id")
    p = problems.set_index("problem_id")
    assert (first["to_status"] == "立案").all() and first["from_status"].isna().all()
    assert (pd.to_datetime(first["at"]).to_numpy() == p.loc[first.index, "reported_at"].to_numpy()).all()
    last = h.groupby("problem_id").tail(1).set_index("problem_id")
    assert (last.loc[p.index, "to_status"].to_numpy() == p["status"].to_numpy()).all()
    closing = h[h["to_status"] == "结案"].set_index("problem_id")["at"]
    assert (pd.to_datetime(closing).to_numpy() == p.loc[closing.index, "closed_at"].to_numpy()).all()
    steps = h[h["from_status"].notna()]
    legal = {(a, b) for a, bs in TRANSITIONS.items() for b in bs}
    assert set(zip(steps["from_status"], steps["to_status"], strict=True)) <= legal
    # each step starts where the previous one ended, and time never runs backwards
    prev_to = h.groupby("problem_id")["to_status"].shift()
    assert (prev_to[steps.index].to_numpy() == steps["from_status"].to_numpy()).all()
    assert (pd.to_datetime(h["at"]).groupby(h["problem_id"]).diff().dropna() >= pd.Timedelta(0)).all()
    assert (pd.to_datetime(h["at"]) <= AS_OF).all()
    assert (h["to_status"] == "返工").sum() > 0


def test_facility_gaps_and_classes(demo: Project) -> None:
    from sanigrid.layers.projects import built

    toilets = built(demo.store.read("toilets"))  # the gaps are today's: the toilet projects would fill them
    residents = demo.store.read("residents")
    d, _ = cKDTree(np.column_stack([toilets.geometry.x, toilets.geometry.y])).query(
        np.column_stack([residents.geometry.centroid.x, residents.geometry.centroid.y]))
    assert (d > 400).sum() >= 5  # compounds far from any toilet, even as the crow flies
    assert {"一类", "二类", "三类", "旱厕"} <= set(toilets["toilet_class"])
    markets = demo.store.read("markets")
    near_market = toilets.geometry.apply(lambda g: markets.distance(g).min() < 120)
    assert (toilets.loc[near_market, "toilet_class"] == "三类").any()
    assert markets["standardized"].mean() >= 0.7 and not markets["standardized"].all()
    assert set(markets.geom_type) == {"Point", "Polygon"}
    alleys = demo.store.read("alleys")
    share = 1 - alleys["hardened"].astype(bool).mean()
    assert 0.08 < share < 0.25
    assert alleys["width_m"].between(1, 8).all() and alleys["lit"].notna().all()
    sp = demo.store.read("sample_points")
    wanted = {"医院", "学校", "车站", "建筑工地", "居民小区", "五小场所", "农贸市场", "背街小巷", "公厕"}
    assert wanted <= set(sp["category"])
    assert sp["name"].notna().all() and sp["address"].str.endswith("号").all()
    assert sp["grid_code"].notna().all()


def test_deterministic(problems: gpd.GeoDataFrame) -> None:
    s = demo_settings()
    again = make_demo_layers(s, seed=SEED, n_problems=N_PROBLEMS).layers["problems"]
    for col in ("problem_id", "category", "source", "status", "description"):
        assert (again[col].to_numpy() == problems[col].to_numpy()).all(), col
    for col in ("reported_at", "deadline", "closed_at"):
        a = pd.to_datetime(again[col]).astype("datetime64[ms]")
        b = problems[col].astype("datetime64[ms]")
        assert a.equals(b) or ((a == b) | (a.isna() & b.isna())).all(), col
    np.testing.assert_allclose(again.geometry.x, problems.geometry.x, atol=1e-6)
    np.testing.assert_allclose(again.geometry.y, problems.geometry.y, atol=1e-6)
    other = make_demo_layers(s, seed=SEED + 1, n_problems=600).layers["problems"]
    assert len(other) == 600
    assert not np.allclose(other.geometry.x.to_numpy()[:600], problems.geometry.x.to_numpy()[:600])


def test_cli_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sanigrid.scripts.demo.command as demo_cli
    from sanigrid.scripts.cli import app  # the whole command line, every module registered

    called: dict[str, object] = {}
    monkeypatch.setattr(demo_cli, "run_demo_analyses",
                        lambda project, **kw: called.setdefault("analyses", (project.root, kw)))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo", "--problems", "400", "--seed", "7", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "OpenStreetMap" in result.output and "ODbL" in result.output
    assert "problems" in result.output and "400" in result.output
    assert called["analyses"] == (Path("demo"), {"prints": True})  # the demo draws the printable maps
    # one login per role is printed, and each works
    from sanigrid.web.auth import check_password

    p = open_project(tmp_path / "demo")
    for name in ("demo-office", "demo-grid", "demo-viewer"):
        line = next(x for x in result.output.splitlines() if name in x)
        password = line.replace("│", " ").split()[-1]
        assert check_password(p, name, password).name == name
    assert len(p.store.read("problems")) == 400
    # --serve serves the built project
    served: dict[str, object] = {}
    monkeypatch.setattr(demo_cli, "web_serve",
                        lambda root, host, port: served.update(root=root, host=host, port=port))
    result = CliRunner().invoke(app, ["demo", "-p", "d2", "--problems", "300", "--no-analyses", "--serve",
                                      "--port", "8765"])
    assert result.exit_code == 0, result.output
    assert served == {"root": Path("d2"), "host": "127.0.0.1", "port": 8765}


def test_demo_never_replaces_a_real_project(project: Project) -> None:
    from sanigrid.layers._errors import SettingsError

    with pytest.raises(SettingsError, match="not the demo"):
        build_demo(project.root, n_problems=300)
    assert open_project(project.root).settings.project.name == "示例县城"


def test_import_alleys_gives_the_demo_osm_alleys(demo: Project, tmp_path: Path) -> None:
    """`sanigrid demo` and `sanigrid import alleys <the demo's guixi-center.osm>` build the same OSM alleys."""
    import shutil

    from sanigrid.scripts.cli import app

    root = tmp_path / "copy"
    shutil.copytree(demo.root, root)  # the module's demo stays as built
    ours = open_project(root).store.read("alleys")
    ours = ours[ours["source"] == "OSM"].set_index("osm_id").sort_index()
    osm = root / "data" / "guixi-center.osm"
    result = CliRunner().invoke(app, ["import", "alleys", str(osm), "-p", str(root), "--replace"])
    assert result.exit_code == 0, result.output
    theirs = open_project(root).store.read("alleys").set_index("osm_id").sort_index()
    assert len(theirs) >= 3 and list(theirs.index) == list(ours.index)
    for a, b in zip(ours.geometry, theirs.geometry, strict=True):
        assert a.equals_exact(b, 1e-6)  # the same lines, to a micrometre
    # what the file says about an alley is what the demo holds; the demo fills only the blanks
    for col in ("name", "hardened", "lit", "width_m"):
        given = theirs[col].notna()
        assert (ours.loc[given, col].to_numpy() == theirs.loc[given, col].to_numpy()).all(), col
    assert (ours["name"] == theirs["name"]).any()
