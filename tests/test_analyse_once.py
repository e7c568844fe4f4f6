"""`sanigrid analyse` reads each layer once and shares results across steps, and writes what the steps
write when they run one by one as separate commands (every store table and every workbook compared)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from datetime import date, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from sanigrid.layers.project import Project, open_project
from sanigrid.scripts._memo import ReadOnce, read_once, shared

# wall-clock stamps (计算时间, updated_at, registered_at) and the run's folder differ between two runs
_NOW = re.compile(date.today().isoformat() + r"[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?")
_TIMINGS = ("用时(秒) (seconds)",)  # rows of a summary sheet that hold a duration


def _plain(frame: pd.DataFrame, root: Path) -> pd.DataFrame:
    out = frame.copy()
    for c in out.columns:
        out[c] = [_NOW.sub("<now>", str(v)).replace(str(root), "<root>")
                  if isinstance(v, str | pd.Timestamp | datetime) else v for v in out[c]]
    if "项目" in out.columns and "数值" in out.columns:  # a 汇总 sheet: its timings differ run to run
        out = out[~out["项目"].isin(_TIMINGS)].reset_index(drop=True)
    return out


def _store_tables(root: Path) -> dict[str, pd.DataFrame]:
    con = sqlite3.connect(root / "sanigrid.gpkg")
    try:
        names = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                           "AND name NOT LIKE 'rtree_%' AND name NOT LIKE 'sqlite_%'")]
        out = {n: pd.read_sql(f'SELECT * FROM "{n}"', con) for n in names}
    finally:
        con.close()
    out["gpkg_contents"] = out["gpkg_contents"].drop(columns="last_change")
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sanigrid.scripts.demo import build_demo

    root = tmp_path_factory.mktemp("once") / "demo"
    build_demo(root, seed=7, n_problems=600)
    return root


def test_analyse_writes_what_the_commands_write_one_by_one(built: Path, tmp_path: Path) -> None:
    from sanigrid.scripts import analyses

    one_by_one, together = tmp_path / "one_by_one", tmp_path / "together"
    shutil.copytree(built, one_by_one)
    shutil.copytree(built, together)
    for _, step in analyses._steps(open_project(one_by_one)):  # each step on a fresh project, as a command is
        step()
    done = analyses.run_demo_analyses(open_project(together))
    assert len(done) == len(analyses._steps(open_project(built))) >= 14

    a, b = _store_tables(one_by_one), _store_tables(together)
    assert set(a) == set(b) and {"service_areas", "gi_cells", "sample_selection", "sample_risk"} <= set(a)
    for name in a:
        pd.testing.assert_frame_equal(_plain(a[name], one_by_one), _plain(b[name], together), obj=name)
    outputs = sorted(p.name for p in (one_by_one / "outputs").iterdir())
    assert outputs == sorted(p.name for p in (together / "outputs").iterdir()) and len(outputs) >= 12
    for name in outputs:
        if not name.endswith(".xlsx"):
            continue
        sa = pd.read_excel(one_by_one / "outputs" / name, sheet_name=None)
        sb = pd.read_excel(together / "outputs" / name, sheet_name=None)
        assert list(sa) == list(sb), name
        for sheet in sa:
            pd.testing.assert_frame_equal(_plain(sa[sheet], one_by_one), _plain(sb[sheet], together),
                                          obj=f"{name}:{sheet}")


def _points(n: int, crs: object) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": [f"公厕{i}" for i in range(n)], "seats": list(range(n))},
                            geometry=[shapely.Point(500_000 + 10 * i, 3_100_000) for i in range(n)], crs=crs)


def test_read_once_reads_once_and_forgets_what_is_written(project: Project) -> None:
    project.store.write("toilets", _points(3, 4548))
    p = read_once(project)
    st = p.store
    assert isinstance(st, ReadOnce) and read_once(p) is p
    first = st.read("toilets")
    first.loc[0, "name"] = "changed by a step"  # a step may change its copy
    again = st.read("toilets")
    assert st.reads == 1 and list(again["name"]) == ["公厕0", "公厕1", "公厕2"]
    assert st.read("toilets", columns=["name"]).columns.tolist() == ["name", "geometry"] and st.reads == 2
    # a write in a transaction, and one outside: the next read sees it
    with st.transaction() as tx:
        tx.write("toilets", _points(5, 4548))
    assert len(st.read("toilets")) == 5 and st.reads == 3
    st.write("toilets", _points(2, 4548))
    assert len(st.read("toilets")) == 2 and st.reads == 4
    # a filtered read always goes to the store
    box = (499_990.0, 3_099_990.0, 500_005.0, 3_100_010.0)
    assert len(st.read("toilets", bbox=box)) == 1 and st.reads == 5
    # tables
    st.write_table("sample_risk", pd.DataFrame({"category": ["公厕"], "p_fail": [0.5]}))
    assert st.read_table("sample_risk")["p_fail"].tolist() == [0.5]
    st.read_table("sample_risk")
    assert st.reads == 6
    st.write_table("sample_risk", pd.DataFrame({"category": ["公厕"], "p_fail": [0.25]}))
    assert st.read_table("sample_risk")["p_fail"].tolist() == [0.25]
    assert not st.has("markets")
    st.write("markets", _points(1, 4548))
    assert st.has("markets")


def test_shared_results_follow_the_layers_they_read(project: Project) -> None:
    project.store.write("toilets", _points(3, 4548))
    p = read_once(project)
    calls: list[int] = []

    def count() -> list[int]:
        calls.append(1)
        return [len(p.store.read("toilets"))]

    assert shared(p, "n", count) == [3] and shared(p, "n", count) == [3] and len(calls) == 1
    shared(p, "n", count).append(99)  # a deep copy each time
    assert shared(p, "n", count) == [3]
    p.store.write("markets", _points(1, 4548))  # not read by it: kept
    assert shared(p, "n", count) == [3] and len(calls) == 1
    with p.store.transaction() as tx:
        tx.write("toilets", _points(4, 4548))
    assert shared(p, "n", count) == [4] and len(calls) == 2
    # without a ReadOnce store it simply computes
    assert shared(project, "n", lambda: [len(project.store.read("toilets"))]) == [4]


def test_prints_step_draws_the_maps_of_sample_maps(built: Path, tmp_path: Path) -> None:
    """`analyse --prints` (the demo) draws from the stored sample the maps `sample --maps` draws."""
    import numpy as np
    from matplotlib.image import imread

    from sanigrid.scripts import analyses, sampling

    root = tmp_path / "p"
    shutil.copytree(built, root)
    project = open_project(root)
    with pytest.raises(Exception, match="run `sanigrid sample` first"):
        sampling.run_sample_maps(project)
    run = sampling.run_sample(project, maps=True)
    drawn = {f.name: imread(f) for f in run.files if f.suffix == ".png"}
    assert len(drawn) >= 5
    for f in run.files:
        if f.suffix == ".png":
            f.unlink()
    assert not [t for t, _ in analyses.run_demo_analyses(project, only="sample maps")]  # not without prints
    done = analyses.run_demo_analyses(project, only="sample maps", prints=True)
    assert [t for t, _ in done] == ["样本点图 sample maps (A4 PNG)"]
    again = {f.name: imread(f) for f in (root / "outputs").glob("样本点图_*.png")}
    assert set(again) == set(drawn)
    for name, image in drawn.items():
        assert image.shape == again[name].shape and np.array_equal(image, again[name]), name


def test_every_store_method_is_known_as_a_read_or_a_write() -> None:
    """A method of the store interface that ReadOnce does not know is taken as a write of everything (what
    was read is forgotten, shared results are computed again): each must be listed as one or the other."""
    from sanigrid.layers.store import Store
    from sanigrid.scripts import _memo

    public = [n for n in dir(Store) if not n.startswith("_")]
    unknown = [n for n in public if n not in _memo._READS | _memo._WRITES and n not in vars(ReadOnce)]
    assert not unknown, f"add to _READS or _WRITES in scripts/_memo.py: {unknown}"
    assert not (_memo._READS & _memo._WRITES)


def test_a_read_of_rows_or_counts_keeps_what_was_read(project: Project) -> None:
    store = ReadOnce(project.store)
    store.read("grids")
    n = store.reads
    store.read_rows("grids")
    store.count("grids")
    store.change_token("grids")
    store.read("grids")
    assert store.reads == n  # the kept frame, not a second read
