"""职能部门排名: the departments ranked with the grids' shrinkage, checked against a hand computation."""

from __future__ import annotations

import io
from datetime import datetime

import geopandas as gpd
import numpy as np
import openpyxl
import pandas as pd
import pytest
import shapely
from fastapi.testclient import TestClient
from scipy import stats
from typer.testing import CliRunner

from sanigrid.geo.scorecard import UNIT_RANKING_TABLE, unit_scorecard
from sanigrid.layers.project import Project
from sanigrid.layers.settings import Settings
from sanigrid.scripts.cli import app
from sanigrid.scripts.problems import run_unit_rank
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user

CRS = "EPSG:4548"
AS_OF = pd.Timestamp("2026-11-01")  # the period is October 2026


def _cases(unit: str, n: int, on_time: int, *, open_: int = 0, overdue: int = 0, priority: int = 0,
           id0: int = 0) -> pd.DataFrame:
    """``n`` cases of ``unit`` reported in October: ``on_time`` closed by the deadline, the rest of the
    closed late, the last ``open_`` still open at the end (``overdue`` of them past the deadline)."""
    i = np.arange(n)
    rep = pd.Timestamp("2026-10-03 09:00") + pd.to_timedelta(i % 20, unit="D")
    deadline = rep + pd.Timedelta(hours=4)
    closed = pd.Series(np.where(i < on_time, rep + pd.Timedelta(hours=2), rep + pd.Timedelta(hours=30)))
    is_open = i >= n - open_
    # open ones: reported on 2026-10-31 with a deadline before or after the end of the period
    rep = pd.Series(rep).where(~is_open, pd.Timestamp("2026-10-31 08:00"))
    late = is_open & (i >= n - overdue)
    deadline = pd.Series(deadline).where(~is_open, np.where(late, pd.Timestamp("2026-10-31 12:00"),
                                                            pd.Timestamp("2026-11-05 12:00")))
    closed = closed.where(~is_open, pd.NaT)
    x = 20_000 * (id0 // 1000) + (i % 10) * 500.0  # far apart: no report is a rebound of another
    y = (i // 10) * 500.0
    return pd.DataFrame({"problem_id": id0 + i, "category": "暴露垃圾", "reported_at": rep,
                         "deadline": pd.to_datetime(deadline), "closed_at": pd.to_datetime(closed),
                         "status": np.where(is_open, "处置", "结案"), "unit": unit, "priority": i < priority,
                         "grid_code": "G1", "geometry": shapely.points(x, y)})


def _problems() -> gpd.GeoDataFrame:
    # 县城管局: many cases, mostly on time; 县交通局: two cases, both on time (raw 100 %);
    # 县住建局: many cases, slow, overdue and often 督办
    frames = [_cases("县城管局", 100, 95, open_=5, overdue=1, priority=2, id0=0),
              _cases("县交通局", 2, 2, id0=1000),
              _cases("县住建局", 100, 50, open_=20, overdue=15, priority=30, id0=2000)]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), geometry="geometry", crs=CRS)


def test_unit_ranking_shrinks_as_computed_by_hand():
    s = Settings()
    k = s.scorecard.prior_strength
    res = unit_scorecard(_problems(), settings=s, as_of=AS_OF)
    t = res.units.set_index("unit")
    assert res.period == (pd.Timestamp("2026-10-01"), AS_OF)
    # counts: closed = n - open, on time among them
    assert t["reports"].to_dict() == {"县城管局": 100, "县交通局": 2, "县住建局": 100}
    assert t["closed"].to_dict() == {"县城管局": 95, "县交通局": 2, "县住建局": 80}
    assert t["on_time"].to_dict() == {"县城管局": 95, "县交通局": 2, "县住建局": 50}
    assert t["open"].to_dict() == {"县城管局": 5, "县交通局": 0, "县住建局": 20}
    assert t["overdue"].to_dict() == {"县城管局": 1, "县交通局": 0, "县住建局": 15}
    assert t["priority"].to_dict() == {"县城管局": 2, "县交通局": 0, "县住建局": 30}
    # 按期结案率: beta-binomial towards the pooled share, prior worth k cases
    p_on = (95 + 2 + 50) / (95 + 2 + 80)
    hand = {"县城管局": (95 + k * p_on) / (95 + k), "县交通局": (2 + k * p_on) / (2 + k),
            "县住建局": (50 + k * p_on) / (80 + k)}
    assert t["on_time_rate"].to_dict() == pytest.approx(hand)
    assert t.loc["县交通局", "on_time_rate_raw"] == 1.0
    a, b = 2 + k * p_on, k * (1 - p_on)
    assert t.loc["县交通局", "on_time_lo"] == pytest.approx(stats.beta.ppf(0.05, a, b))
    assert t.loc["县交通局", "on_time_hi"] == pytest.approx(stats.beta.ppf(0.95, a, b))
    # 逾期率 over open cases, 督办率 over assigned cases, same prior
    p_od = 16 / 25
    assert t["overdue_rate"].to_dict() == pytest.approx(
        {"县城管局": (1 + k * p_od) / (5 + k), "县交通局": p_od, "县住建局": (15 + k * p_od) / (20 + k)})
    p_pr = 32 / 202
    assert t.loc["县住建局", "priority_rate"] == pytest.approx((30 + k * p_pr) / (100 + k))
    assert (t["rebounded"] == 0).all()
    # composite: the weighted mean of 100·on-time and 100·(1 − each other share)
    w = s.scorecard.unit_weights
    for unit, r in t.iterrows():
        score = (w["on_time_rate"] * 100 * r["on_time_rate"] + w["overdue_rate"] * 100 * (1 - r["overdue_rate"])
                 + w["rebound_rate"] * 100 * (1 - r["rebound_rate"])
                 + w["priority_rate"] * 100 * (1 - r["priority_rate"])) / sum(w.values())
        assert r["score"] == pytest.approx(score), unit
    # the two-case unit does not win by chance; the slow one is last
    assert t["rank"].to_dict() == {"县城管局": 1, "县交通局": 2, "县住建局": 3}
    assert t["on_time_rate_raw"].rank(ascending=False, method="min")["县交通局"] == 1
    # no previous period with data: no change shown
    assert t["prev_rank"].isna().all()


def test_unit_ranking_refuses_unknown_weights():
    s = Settings()
    s.scorecard.unit_weights = {"on_time_rate": 1.0, "hardening_rate": 1.0}
    with pytest.raises(ValueError, match="hardening_rate"):
        unit_scorecard(_problems(), settings=s, as_of=AS_OF)


@pytest.fixture
def units_project(project: Project) -> Project:
    p = _problems()
    grids = gpd.GeoDataFrame({"code": ["G1"], "lead_unit": ["县城管局"]},
                             geometry=[shapely.box(-100, -100, 50_000, 6_000)], crs=CRS)
    with project.store.transaction() as tx:
        tx.write("grids", grids)
        tx.write("problems", p, params={"as_of": datetime(2026, 11, 1).isoformat()})
    return project


def test_rank_by_unit_writes_table_workbook_and_download(units_project: Project):
    res, path = run_unit_rank(units_project, as_of=datetime(2026, 11, 1))
    assert path is not None and path.name == "职能部门排名通报_20261001-20261031.xlsx"
    wb = openpyxl.load_workbook(path)
    ws = wb["职能部门排名通报"]
    header = [c.value for c in ws[1]]
    assert header[:4] == ["排名", "责任单位", "综合得分", "交办数"]
    rows = {r[1]: dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2, values_only=True)}
    want = res.units.set_index("unit")
    for unit, r in rows.items():
        assert r["排名"] == want.loc[unit, "rank"]
        assert r["按期结案率(收缩)(%)"] == pytest.approx(100 * want.loc[unit, "on_time_rate"], abs=0.051)
    stored = units_project.store.read_table(UNIT_RANKING_TABLE).set_index("unit")
    assert stored["rank"].to_dict() == {"县城管局": 1, "县交通局": 2, "县住建局": 3}

    client = TestClient(create_app(units_project, warm=False))
    token = add_user(units_project.store, "office", role="office", password="pw-测试-long-1")
    r = client.get("/api/downloads/unit_ranking.xlsx", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    ws = openpyxl.load_workbook(io.BytesIO(r.content))["职能部门排名通报"]
    got = [(row[0], row[1]) for row in ws.iter_rows(min_row=2, values_only=True)]
    assert got == [(1, "县城管局"), (2, "县交通局"), (3, "县住建局")]


def test_cli_rank_by_unit(units_project: Project):
    r = CliRunner().invoke(app, ["rank", "-p", str(units_project.root), "--by", "unit", "--as-of", "2026-11-01"])
    assert r.exit_code == 0, r.output
    assert "职能部门排名" in r.output and "县住建局" in r.output
    r = CliRunner().invoke(app, ["rank", "-p", str(units_project.root), "--by", "street"])
    assert r.exit_code == 2 and "street" in r.output
