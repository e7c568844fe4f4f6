"""The rectification list: measures and owners, an inspection report imported as one batch, its
one-line progress (items, closed, overdue, rebounded since) and 销号 items kept on the 责任清单."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import geopandas as gpd
import openpyxl
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from sanigrid.geo.problems import CLOSED_MARK, responsibility_list
from sanigrid.layers.project import Project
from sanigrid.scripts.cli import app
from sanigrid.scripts.problems import load_problems, run_import_inspection, run_inspections, run_problems

LON, LAT = 117.22, 28.30
AS_OF = datetime(2026, 11, 16)
NAME = "2026年11月县创卫办暗访"
CATS = ["暴露垃圾", "乱堆物料", "占道经营", "非法小广告", "乱排污水", "暴露垃圾"]


def _report(path: Path, *, bad_row: bool = False) -> Path:
    """Six items 200 m apart (no item is a rebound of another), each with a measure, owner and deadline."""
    n = len(CATS)
    cats = list(CATS)
    if bad_row:
        cats[2] = "不存在的类别"
    pd.DataFrame({
        "问题类别": cats, "问题描述": [f"第{i + 1}项" for i in range(n)],
        "经度": [LON + 0.002 * i for i in range(n)], "纬度": [LAT] * n,
        "整改措施": [f"措施{i + 1}: 清理并建立长效保洁" for i in range(n)],
        "责任人": ["王伟", "李娜", "张强", "刘敏", "陈静", "杨洋"],
        "责任单位": ["县城管局"] * 3 + ["县住建局"] * 3,
        "处置时限": ["2026-11-12 18:00"] * 3 + ["2026-11-20 18:00"] * 3,
    }).to_excel(path, index=False)
    return path


@pytest.fixture
def county(project: Project) -> Project:
    centre = gpd.GeoSeries([shapely.Point(LON + 0.005, LAT)], crs=4326).to_crs("EPSG:4548").iloc[0]
    grids = gpd.GeoDataFrame({"code": ["36068100100101"], "lead_unit": ["县城管局"]},
                             geometry=[centre.buffer(2000).envelope], crs="EPSG:4548")
    project.store.write("grids", grids)
    return project


def _close(project: Project, ids: list[int], when: str) -> None:
    project.store.update("problems", "problem_id", {i: {"status": "结案", "closed_at": pd.Timestamp(when)}
                                                    for i in ids})


def test_batch_import_progress_and_rectification_list(county: Project, tmp_path: Path):
    run = run_import_inspection(county, _report(tmp_path / "暗访.xlsx"), name=NAME, date="2026-11-10")
    assert run.report.imported == 6 and run.report.rejected == 0
    p = county.store.read("problems").sort_values("problem_id")
    assert (p["batch"] == NAME).all() and (p["source"] == "暗访").all()
    assert (pd.to_datetime(p["batch_date"]) == pd.Timestamp("2026-11-10")).all()
    assert (pd.to_datetime(p["reported_at"]) == pd.Timestamp("2026-11-10")).all()  # the report's day
    assert p["measure"].str.startswith("措施").all() and p["owner"].tolist()[:2] == ["王伟", "李娜"]
    # counted now (today, past every deadline of the report)
    assert run.progress == f"{NAME} (2026-11-10): 6 项, 已销号 0, 未销号 6, 逾期 6, 销号后反弹 0"

    ids = p["problem_id"].tolist()
    # items 1 and 4 closed on 11-11 and 11-13, item 2 on 11-12; item 1's spot is reported again on
    # 11-14 (same category, 10 m away): a rebound since the report
    _close(county, [ids[0], ids[1]], "2026-11-11 10:00")
    _close(county, [ids[3]], "2026-11-13 10:00")
    first = p.iloc[0].geometry
    again = gpd.GeoDataFrame({"problem_id": [100], "category": ["暴露垃圾"], "status": ["立案"], "source": ["巡查"],
                              "reported_at": [pd.Timestamp("2026-11-14")]},
                             geometry=[shapely.Point(first.x + 10, first.y)], crs=p.crs)
    county.store.append("problems", again)
    prog = run_inspections(county, as_of=AS_OF)
    assert len(prog) == 1
    r = prog.iloc[0]
    # open: items 3, 5, 6; overdue: item 3 (deadline 11-12); rebounded: item 1
    assert (r["items"], r["closed_items"], r["open_items"], r["overdue_items"], r["rebounded_items"]) == (6, 3, 3, 1, 1)
    assert r["closed_pct"] == 50.0
    assert r["line"] == f"{NAME} (2026-11-10): 6 项, 已销号 3, 未销号 3, 逾期 1, 销号后反弹 1"

    # the 责任清单: open items first, then the closed ones of the report marked 已销号, with measure and owner
    probs, grids, _ = load_problems(county)
    sheets = responsibility_list(probs, as_of=AS_OF, grids=grids)
    grid = sheets["网格36068100100101"]
    assert len(grid) == 4 + 3  # the three open items and the new report, then the three closed items
    closed = grid[grid["closed_mark"] == CLOSED_MARK]
    assert sorted(closed["problem_id"]) == sorted([ids[0], ids[1], ids[3]])
    assert list(grid["closed_mark"].iloc[:4]) == [""] * 4
    assert {"measure", "owner", "deadline", "status"} <= set(grid.columns)
    # the summary counts what is open only
    s = sheets["汇总"].set_index("unit")
    assert s["open"].to_dict() == {"县城管局": 2, "县住建局": 2}

    rep = run_problems(county, as_of=AS_OF)
    assert rep.inspections == [r["line"]]
    wb = openpyxl.load_workbook(rep.path)
    assert "检查批次进度" in wb.sheetnames
    ws = wb["网格36068100100101"]
    header = [c.value for c in ws[1]]
    assert {"整改措施", "责任人", "处置时限", "状态", "销号"} <= set(header)
    marks = [row[header.index("销号")] for row in ws.iter_rows(min_row=2, values_only=True)]
    assert marks.count(CLOSED_MARK) == 3


def test_same_report_twice_and_bad_rows_leave_the_store_as_it_was(county: Project, tmp_path: Path):
    run_import_inspection(county, _report(tmp_path / "a.xlsx"), name=NAME, date="2026-11-10")
    before = county.store.read("problems")
    with pytest.raises(ValueError, match="already in the store"):
        run_import_inspection(county, _report(tmp_path / "a.xlsx"), name=NAME, date="2026-11-10")
    bad = run_import_inspection(county, _report(tmp_path / "b.xlsx", bad_row=True), name="督查2", date="2026-11-11",
                                source="督查", strict=True)
    assert bad.report.refused and bad.report.imported == 0 and bad.progress is None
    assert len(county.store.read("problems")) == len(before)
    with pytest.raises(ValueError, match="not a date"):
        run_import_inspection(county, _report(tmp_path / "a.xlsx"), name="x", date="十一月")


def test_cli_import_inspection_and_progress(county: Project, tmp_path: Path):
    root = str(county.root)
    r = CliRunner().invoke(app, ["import-inspection", str(_report(tmp_path / "暗访.xlsx")), "--name", NAME,
                                 "--date", "2026-11-10", "-p", root])
    assert r.exit_code == 0, r.output
    assert "6 项, 已销号 0" in r.output
    r = CliRunner().invoke(app, ["inspections", "-p", root, "--as-of", "2026-11-16"])
    assert r.exit_code == 0, r.output
    assert f"{NAME} (2026-11-10): 6 项, 已销号 0, 未销号 6, 逾期 3" in r.output
