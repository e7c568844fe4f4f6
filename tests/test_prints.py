"""County-wide printable maps: themes, paper sizes, ramp legend, clear refusals."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient
from matplotlib.colors import to_rgba
from PIL import Image
from webproject import synthetic_project

from sanigrid.layers.catalogue import CATALOGUE, RANK_RAMP
from sanigrid.web.app import create_app
from sanigrid.web.auth import add_user
from sanigrid.web.printmap import _draw_ramp

PW = "pw-打印-long-1"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    project = synthetic_project(tmp_path_factory.mktemp("prints") / "town", n_problems=50)
    grids = project.store.read("grids").sort_values("code").reset_index(drop=True)
    ranked = grids[["code", "name", "lead_unit", "geometry"]].assign(rank=np.arange(1, len(grids) + 1),
                                                                     score=100.0 - np.arange(len(grids)))
    project.store.write("scorecard", gpd.GeoDataFrame(ranked, geometry="geometry", crs=grids.crs),
                        params={"start": "2026-10-01", "end": "2026-10-31"})
    token = add_user(project, "office", role="office", password=PW)
    return {"project": project, "client": TestClient(create_app(project)),
            "auth": {"Authorization": f"Bearer {token}"}}


def test_ranking_png_is_a4_landscape_and_shaded_by_rank(env):
    r = env["client"].get("/map.png?theme=ranking&paper=A4", headers=env["auth"])
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    img = Image.open(io.BytesIO(r.content)).convert("RGB")
    assert img.size == pytest.approx((1754, 1240), abs=1)  # 297 × 210 mm at 150 dpi
    # the best (green) and the worst (red) ends of the ramp are both on the paper
    px = np.asarray(img).reshape(-1, 3).astype(int)
    for hex_colour in (RANK_RAMP[0], RANK_RAMP[-1]):
        rgb = np.array(to_rgba(hex_colour)[:3]) * 255
        alpha = max(CATALOGUE["scorecard"].style.fill_opacity, 0.5)
        blended = alpha * rgb + (1 - alpha) * 255  # drawn half-transparent on white paper
        assert (np.abs(px - blended).max(axis=1) < 6).sum() > 200, hex_colour


def test_pdf_a3(env):
    r = env["client"].get("/map.pdf?theme=alleys&paper=A3", headers=env["auth"])
    assert r.status_code == 200 and r.content.startswith(b"%PDF")
    assert b"/MediaBox [ 0 0 1190.55" in r.content  # 420 mm wide, in points


def test_refusals_name_the_fix(env):
    c, h = env["client"], env["auth"]
    r = c.get("/map.pdf?theme=coverage", headers=h)
    assert r.status_code == 422 and "sanigrid coverage" in r.json()["detail"]
    assert c.get("/map.pdf?theme=nonsense", headers=h).status_code == 422
    assert c.get("/map.pdf?theme=ranking").status_code == 401


def test_ramp_legend_stops():
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    frame = gpd.GeoDataFrame({"rank": [1, 2, 3, 4, 5]}, geometry=[shapely.box(i, 0, i + 1, 1) for i in range(5)],
                             crs=4548)
    ax = Figure().add_subplot()
    handles = _draw_ramp(ax, frame, CATALOGUE["scorecard"].style, "网格排名", Patch, field_zh="排名")
    assert [h.get_label() for h in handles] == ["排名 1", "排名 2", "排名 3", "排名 4", "排名 5"]
    assert handles[0].get_facecolor()[:3] == pytest.approx(to_rgba(RANK_RAMP[0])[:3], abs=0.01)
    assert handles[-1].get_facecolor()[:3] == pytest.approx(to_rgba(RANK_RAMP[-1])[:3], abs=0.01)
    # fewer ranks than colours (four counties): each rank once, in the colour it is drawn with
    few = frame.iloc[:4]
    handles = _draw_ramp(Figure().add_subplot(), few, CATALOGUE["scorecard"].style, "县级排名", Patch,
                         field_zh="排名")
    assert [h.get_label() for h in handles] == ["排名 1", "排名 2", "排名 3", "排名 4"]
    assert handles[-1].get_facecolor()[:3] == pytest.approx(to_rgba(RANK_RAMP[-1])[:3], abs=0.01)
