"""The archive page and uploads over HTTP: the office registers a file, others may not, the workbook follows."""

from __future__ import annotations

import hashlib
import io
import warnings

import geopandas as gpd
import openpyxl
import pytest
import shapely

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from webproject import CRS, synthetic_project

from sanigrid.layers.archive import read_registry
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user

HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    project = synthetic_project(tmp_path_factory.mktemp("archive") / "town", n_problems=0)
    grids = project.store.read("grids")
    c = grids.geometry.iloc[0].centroid
    project.store.write("sample_points", gpd.GeoDataFrame(
        {"category": ["五小场所"], "name": ["老王家常菜"], "address": [""]},
        geometry=[shapely.Point(c.x, c.y)], crs=CRS))
    tokens = {"office": add_user(project.store, "office", role="office"),
              "head": add_user(project.store, "head", role="grid_head", grid_code=grids["code"].iloc[0]),
              "viewer": add_user(project.store, "viewer", role="viewer")}
    return {"project": project, "client": TestClient(create_app(project, warm=False)), "tokens": tokens}


def _as(site, who, **extra):
    return {"Authorization": f"Bearer {site['tokens'][who]}", **extra}


def test_office_uploads_and_the_registry_page_and_workbook_follow(site):
    c, project = site["client"], site["project"]
    data = b"scan of a licence" * 20
    r = c.post("/api/archive/files", headers=_as(site, "office"),
               files={"file": ("卫生许可证_2025-03-01.jpg", data, "image/jpeg")}, data={"holder": "老王家常菜"})
    assert r.status_code == 201, r.text
    row = r.json()
    assert (row["holder"], row["document"], row["doc_date"]) == ("老王家常菜", "卫生许可证", "2025-03-01")
    assert row["sha256"] == hashlib.sha256(data).hexdigest() and row["source"] == "上传"
    assert (project.root / "档案" / "老王家常菜" / "卫生许可证_2025-03-01.jpg").read_bytes() == data
    # the same name again is kept beside it, with the document and date given in the form
    r = c.post("/api/archive/files", headers=_as(site, "office"), files={"file": ("卫生许可证_2025-03-01.jpg", data)},
               data={"holder": "老王家常菜", "document": "健康证", "doc_date": "2026-10-01"})
    assert r.status_code == 201 and r.json()["path"].endswith("卫生许可证_2025-03-01-2.jpg")
    reg = read_registry(project.store)
    assert reg["file_id"].tolist() == [1, 2] and reg["document"].tolist() == ["卫生许可证", "健康证"]
    page = c.get("/archive", headers=_as(site, "office", **HTML))
    assert page.status_code == 200 and "档案资料" in page.text and 'action="/archive/files"' in page.text
    # 老王家常菜 holds the licence and a health certificate: the disinfection and pest-control records are missing
    assert "消毒记录、病媒生物防制记录" in page.text
    wb = openpyxl.load_workbook(io.BytesIO(c.get("/api/downloads/archive.xlsx", headers=_as(site, "viewer")).content))
    rows = list(wb["汇总"].values)
    head = rows[0]
    wang = next(r for r in rows if r[head.index("所属单位/地点")] == "老王家常菜")
    assert [wang[head.index(h)] for h in ("应有", "齐全", "缺失")] == [4, 2, 2]
    # the browser form answers with the page (303) naming the new file
    r = c.post("/archive/files", headers=_as(site, "office"), files={"file": ("消毒记录_2026-11-01.xlsx", b"x")},
               data={"holder": "老王家常菜"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/archive?added=3"


def test_only_the_office_registers_and_bad_input_is_refused(site):
    c = site["client"]
    f = {"file": ("卫生许可证.jpg", b"abc")}
    for who in ("head", "viewer"):
        r = c.post("/api/archive/files", headers=_as(site, who), files=f, data={"holder": "老王家常菜"})
        assert r.status_code == 403, (who, r.text)
    assert 'action="/archive/files"' not in c.get("/archive", headers=_as(site, "viewer", **HTML)).text
    for data, word in (({"holder": "不存在的店"}, "不存在的店"), ({"holder": "../etc"}, "not a usable name"),
                       ({"holder": "老王家常菜", "document": "营业执照"}, "营业执照"),
                       ({"holder": "老王家常菜", "doc_date": "去年"}, "去年")):
        r = c.post("/api/archive/files", headers=_as(site, "office"), files=f, data=data)
        assert r.status_code == 422 and word in r.json()["detail"], r.text
    assert not (site["project"].root / "etc").exists()
