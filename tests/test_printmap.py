"""Printed maps: what is drawn on the sheet (title, legend entries, scale bar, north arrow, font), not only that a
file was written. ``draw_map`` returns the figure, so its artists are read before saving; pixels of the saved
sheet are checked in known regions."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
from matplotlib import font_manager, rc_context
from matplotlib.colors import to_rgba
from PIL import Image
from test_sampling import _town

from sanigrid.layers.catalogue import CATALOGUE
from sanigrid.web.printmap import CJK_FONTS, _nice_length, _rc, cjk_font, draw_map, render_map


@pytest.fixture
def town():
    return _town()


def _texts(fig) -> list[str]:
    return [t.get_text() for t in fig.texts]


def _scale_bar(ax):
    """The bar's four segments (black/white) and its labels, drawn by printmap._scale_bar."""
    segs = [p for p in ax.patches if p.get_zorder() == 10]
    labels = [t.get_text() for t in ax.texts if t.get_zorder() == 11 and t.get_text() != "北\nN"]
    return segs, labels


def test_the_sheet_has_title_legend_scale_bar_north_arrow_and_credits(town):
    layers = {"grids": town["grids"], "streets": town["streets"], "toilets": town["toilets"]}
    fig = draw_map(layers, title="测试地图", subtitle="副标题 2026", paper="A4", attribution="© OpenStreetMap",
                   bbox=tuple(town["grids"].total_bounds))
    texts = _texts(fig)
    assert texts[:2] == ["测试地图", "副标题 2026"] and "© OpenStreetMap" in texts
    assert "坐标系: 2000国家大地坐标系 (CGCS2000) 3度带高斯-克吕格投影 中央经线东经117° (EPSG:4548)" in texts
    assert any(t.startswith("制图日期: 20") for t in texts)
    # one legend entry per layer (streets split by road class, as the catalogue colours them)
    legend = fig.legends[0]
    assert legend.get_title().get_text() == "图例"
    assert [t.get_text() for t in legend.get_texts()] == ["网格", "道路(主干路)", "道路(支路)", "公厕"]
    main_road = legend.legend_handles[1]
    assert to_rgba(main_road.get_color()) == to_rgba(CATALOGUE["streets"].style.by["values"]["主干路"])
    # the scale bar: 4 alternating segments whose printed length is the length drawn, in metres
    ax = fig.axes[0]
    segs, labels = _scale_bar(ax)
    assert [to_rgba(p.get_facecolor())[:3] for p in segs] == [(0, 0, 0), (1, 1, 1)] * 2
    drawn_m = sum(p.get_width() for p in segs)
    x0, x1 = ax.get_xlim()
    assert drawn_m == pytest.approx(_nice_length(x1 - x0))
    unit, div = ("千米", 1000) if drawn_m >= 1000 else ("米", 1)
    assert labels == ["0", f"{drawn_m / 2 / div:g}", f"{drawn_m / div:g}", unit]
    # metres are metres both ways, and the whole bbox is on the sheet
    assert ax.get_aspect() == 1.0
    gx0, gy0, gx1, gy1 = town["grids"].total_bounds
    y0, y1 = ax.get_ylim()
    assert x0 < gx0 < gx1 < x1 and y0 < gy0 < gy1 < y1
    assert any(t.get_text() == "北\nN" for t in ax.texts)
    # the printed ratio is the sheet's: map width in metres over the axes' width on A4 paper
    ratio = (x1 - x0) / (ax.get_position().width * 297 / 1000)
    printed = next(t for t in texts if t.startswith("比例尺"))
    assert abs(int(printed.split(":")[1].replace(",", "")) - ratio) / ratio < 0.06


def test_chinese_text_uses_the_first_installed_cjk_font(town):
    installed = {f.name for f in font_manager.fontManager.ttflist}
    expected = next((n for n in CJK_FONTS if n in installed), None)
    assert cjk_font() == expected
    if expected is None:
        pytest.skip("no CJK font installed (make test installs fonts-noto-cjk)")
    fig = draw_map({"grids": town["grids"]}, title="测试地图")
    with rc_context(_rc()):  # generic family names resolve against these settings, as when saving
        path = font_manager.findfont(fig.texts[0].get_fontproperties(), fallback_to_default=False)
    assert font_manager.FontProperties(fname=path).get_name() == expected


def test_saved_png_has_ink_where_title_legend_and_map_are(town):
    buf = io.BytesIO()
    render_map({"grids": town["grids"], "streets": town["streets"], "toilets": town["toilets"]},
               title="测试地图", path_or_buffer=buf, paper="A4", dpi=60)
    img = np.asarray(Image.open(buf).convert("RGB")).astype(int)
    h, w, _ = img.shape
    assert (w, h) == pytest.approx((297 / 25.4 * 60, 210 / 25.4 * 60), abs=1)

    def dark(x0, x1, y0, y1):  # pixels darker than mid-grey in a box given in fractions from the top left
        box = img[int(y0 * h):int(y1 * h), int(x0 * w):int(x1 * w)]
        return int((box.max(axis=2) < 128).sum())

    assert dark(0.04, 0.30, 0.02, 0.08) > 30  # the title, at the top left
    assert dark(0.30, 0.74, 0.02, 0.08) == 0  # nothing else on the title line
    assert dark(0.76, 0.99, 0.10, 0.40) > 30  # the legend, right of the map
    main_road = CATALOGUE["streets"].style.by["values"]["主干路"]
    ink = np.array([int(main_road[i:i + 2], 16) for i in (1, 3, 5)])
    red = np.abs(img - ink).max(axis=2) < 12
    assert red[int(0.10 * h):int(0.88 * h), int(0.04 * w):int(0.74 * w)].sum() > 50  # the 主干路 inside the frame


def test_a3_pdf_is_420_by_297_mm(tmp_path, town):
    path = tmp_path / "grid.pdf"
    render_map({"grids": town["grids"], "alleys": town["alleys"]}, title="网格 G1", paper="A3",
               bbox=tuple(town["grids"].total_bounds), path_or_buffer=path)
    data = path.read_bytes()
    assert data[:4] == b"%PDF"
    assert re.search(rb"/MediaBox \[ 0 0 1190\.55\d* 841\.889\d* \]", data)  # 420 × 297 mm in points
    with pytest.raises(ValueError, match="paper"):
        render_map({}, title="x", paper="B5", path_or_buffer=io.BytesIO())


def test_geographic_layers_are_drawn_in_metres(toilets_wgs84):
    fig = draw_map({"toilets": toilets_wgs84}, title="WGS84", bbox=tuple(toilets_wgs84.total_bounds))
    ax = fig.axes[0]
    x0, x1 = ax.get_xlim()
    assert 300_000 < x0 < x1 < 700_000  # UTM eastings, not degrees
    segs, labels = _scale_bar(ax)
    assert labels[-1] == "米" and sum(p.get_width() for p in segs) == pytest.approx(_nice_length(x1 - x0))
    assert "坐标系: WGS 84 UTM投影 第50带 (北半球) (EPSG:32650)" in _texts(fig)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["公厕"]


def test_cjk_font_fallback_logs_warning(monkeypatch, caplog):
    from sanigrid.web import printmap

    printmap.cjk_font.cache_clear()
    monkeypatch.setattr(font_manager.fontManager, "ttflist", [])
    try:
        with caplog.at_level("WARNING", logger="sanigrid.web.printmap"):
            assert printmap.cjk_font() is None
        assert "fonts-noto-cjk" in caplog.text
    finally:
        printmap.cjk_font.cache_clear()


def test_planned_facilities_print_apart_and_a_one_kind_layer_keeps_its_style():
    import geopandas as gpd
    from shapely.geometry import Point

    from sanigrid.layers import projects
    from sanigrid.web.printmap import _by_build_status, _by_facility

    toilets = CATALOGUE["toilets"].style
    words = [projects.BUILT, projects.PLANNED, None, projects.BUILDING, projects.PLANNED]
    frame = gpd.GeoDataFrame({projects.STATUS_FIELD: words}, geometry=[Point(i, 0) for i in range(5)], crs=4548)
    parts = {name: (list(part.index), st) for part, st, name in _by_build_status(frame, toilets, "公厕")}
    assert {k: v[0] for k, v in parts.items()} == {"公厕": [0, 2], "公厕(规划)": [1, 4], "公厕(在建)": [3]}
    assert parts["公厕"][1] == toilets  # built (and unknown) ones in the layer's own style
    plan = parts["公厕(规划)"][1]
    assert (plan.fill_opacity, plan.dash, plan.color) == (0.0, "3 3", toilets.color)
    # a gaps layer of one facility kind keeps the gaps' own colour (not the toilets'), and its name as given
    gaps = gpd.GeoDataFrame({"facility_kind": ["toilets"] * 2}, geometry=[Point(0, 0), Point(1, 1)], crs=4548)
    style = CATALOGUE["coverage_gaps"].style
    assert [(st, name) for _, st, name in _by_facility("coverage_gaps", gaps, style, "覆盖盲区(公厕)")] == [
        (style, "覆盖盲区(公厕)")]
    two = gaps.assign(facility_kind=["toilets", "markets"])
    names = sorted(name for _, _, name in _by_facility("coverage_gaps", two, style, "覆盖盲区"))
    assert names == sorted(f"覆盖盲区({CATALOGUE[k].zh})" for k in ("toilets", "markets"))
