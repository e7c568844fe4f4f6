"""The map in a real browser: headless Chromium (Debian's) driven by Playwright, against uvicorn on 127.0.0.1.

Checks that the demo map loads with no JavaScript console error and no request to any host but
the app, that toggling a layer works, that search finds a grid, and that a grid page shows its
list. Screenshots go to ``test-artifacts/`` (look at them).
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
from webproject import CHROMIUM, CHROMIUM_ARGS, LiveServer, web_project

from sanigrid.layers.filters import between, eq

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is absent (install Debian's chromium: `make browser`)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PASSWORD = "browser-测试"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from sanigrid.web.app import create_app
    from sanigrid.web.auth import add_user

    project = web_project(tmp_path_factory.mktemp("browser") / "demo", n_problems=600)
    project.settings.web.map_max_points = 20  # so the county view of the open cases shows server-side clusters
    grids = project.store.read("grids").sort_values("code").reset_index(drop=True)
    codes = list(grids["code"])
    # every analysis layer on the map, as in the demo: the pages must load all of them cleanly
    from sanigrid.scripts.analyses import run_demo_analyses

    run_demo_analyses(project)
    add_user(project, "office", role="office", password=PASSWORD)
    add_user(project, "head", role="grid_head", grid_code=codes[0], password=PASSWORD)
    ARTIFACTS.mkdir(exist_ok=True)
    with LiveServer(create_app(project)) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield {"url": url, "browser": browser, "project": project, "codes": codes}
        browser.close()


class Watch:
    """Console errors, page errors and every request host of a page."""

    def __init__(self, page, app_url: str):
        self.errors: list[str] = []
        self.foreign: list[str] = []
        self.requests: list[str] = []
        host = urlparse(app_url).netloc
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))

        def route(r):
            self.requests.append(r.request.url)
            if urlparse(r.request.url).netloc != host and not r.request.url.startswith("data:"):
                self.foreign.append(r.request.url)
                return r.abort()
            return r.continue_()

        page.route("**/*", route)


def login(site, name: str, *, next_url: str = "/"):
    page = site["browser"].new_page(viewport={"width": 1400, "height": 900}, locale="zh-CN")
    watch = Watch(page, site["url"])
    page.goto(f"{site['url']}/login?next={next_url}")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("html[data-sg-drawn='1']", timeout=20000)
    page.wait_for_timeout(300)
    return page, watch


def test_map_loads_offline_with_legend_layers_and_clusters(site):
    page, watch = login(site, "office")
    page.screenshot(path=str(ARTIFACTS / "map.png"))
    assert watch.errors == []
    assert watch.foreign == []
    assert any("/api/map/problems" in u for u in watch.requests)
    assert any("/static/vendor/leaflet/leaflet.js" in u for u in watch.requests)
    overlays = page.locator(".leaflet-control-layers-overlays label").all_inner_texts()
    from sanigrid.layers.catalogue import CATALOGUE

    present = [i.kind for i in site["project"].store.info() if i.count]
    # each layer once, or in its parts (问题 · 未结案/已结案, 覆盖盲区 · 公厕 …): one overlay per meaning
    titles = [t.strip() for t in overlays]
    assert sorted({t.split(" · ")[0] for t in titles}) == sorted(CATALOGUE[k].zh for k in present)
    assert "问题 · 未结案" in titles and "问题 · 已结案" in titles
    legend = page.locator(".sg-legend").inner_text()
    assert "图例" in legend and "网格" in legend and "问题" in legend and "结案" in legend
    assert "网格排名" in legend and page.locator(".sg-ramp").count() == 1
    fills = page.evaluate("""() => { const e = sanigrid.layers.find(e => e.cfg.kind === 'scorecard'); const out = [];
        e.group.eachLayer(g => g.eachLayer(l => out.push(l.options.fillColor))); return out; }""")
    assert len(set(fills)) > 5  # shaded by rank, not one colour
    assert page.locator(".marker-cluster").count() > 0  # many problems in view: clustered on the server
    assert "OpenStreetMap" in page.locator(".leaflet-control-attribution").inner_text() or not \
        site["project"].settings.project.attribution
    page.close()


def test_toggling_a_layer_and_zooming_in(site):
    page, watch = login(site, "office")
    paths_before = page.locator("path.leaflet-interactive").count()
    assert page.locator(".sg-leg-layer[data-kind='streets']").count() == 1
    page.locator(".leaflet-control-layers-overlays label", has_text="道路").locator("input").uncheck()
    page.wait_for_timeout(200)
    assert page.locator(".sg-leg-layer[data-kind='streets']").count() == 0
    n_streets = len(site["project"].store.read("streets", columns=[]))
    assert page.locator("path.leaflet-interactive").count() <= paths_before - n_streets
    page.screenshot(path=str(ARTIFACTS / "map-streets-off.png"))
    page.locator(".leaflet-control-layers-overlays label", has_text="道路").locator("input").check()
    page.wait_for_timeout(200)
    assert page.locator(".sg-leg-layer[data-kind='streets']").count() == 1
    # click a cluster: the map zooms in and, with few points left in view, draws them with popups
    project = site["project"]
    from sanigrid.layers import cases

    probs = project.store.read("problems")
    probs = probs[cases.is_open(probs, as_of=cases.store_as_of(project.store, settings=project.settings)).to_numpy()]
    one = probs.to_crs(4326).iloc[0]  # an open case: drawn at start (closed ones are a click away)
    page.evaluate("([lat, lon]) => sanigrid.map.setView([lat, lon], 19, {animate: false})",
                  [one.geometry.y, one.geometry.x])
    page.wait_for_function("() => sanigrid.pending === 0", timeout=10000)
    page.wait_for_timeout(300)
    assert page.locator(".marker-cluster").count() == 0  # zoomed in: the points themselves
    # open the popup of that problem: its fields are fetched by id
    page.evaluate("""(pid) => { sanigrid.layers.forEach(e => e.group.eachLayer(g => g.eachLayer && g.eachLayer(l => {
        if (l.feature && l.feature.properties.problem_id === pid) l.openPopup(); }))); }""", int(one["problem_id"]))
    page.wait_for_selector(".sg-popup", timeout=5000)
    assert one["category"] in page.locator(".sg-popup").inner_text()
    link = page.locator(".sg-popup a", has_text="案件页面")  # the popup opens the case page
    assert link.get_attribute("href") == f"/cases/{int(one['problem_id'])}"
    page.wait_for_timeout(400)  # the popup fades in
    page.screenshot(path=str(ARTIFACTS / "map-popup.png"))
    assert watch.errors == [] and watch.foreign == []
    page.close()


def test_planned_sites_are_drawn_hollow_and_dashed(site):
    """Facility projects: 规划 hollow and dashed, 在建 lightly filled, 建成 in the layer's own style; all in the
    legend."""
    from sanigrid.layers import projects

    page, watch = login(site, "office")
    toilets = site["project"].store.read("toilets", columns=[projects.STATUS_FIELD])
    want = toilets[projects.STATUS_FIELD].value_counts().to_dict()
    assert want.get(projects.PLANNED, 0) > 0  # the demo has planned toilets
    drawn = page.evaluate("""(field) => { const out = {}; sanigrid.layers.filter(e => e.cfg.kind === "toilets")
        .forEach(e => e.group.eachLayer(g => g.eachLayer && g.eachLayer(l => { if (!l.feature) return;
          const k = l.feature.properties[field];
          (out[k] = out[k] || []).push([l.options.dashArray, l.options.fillOpacity]);
        }))); return out; }""", projects.STATUS_FIELD)
    assert {k: len(v) for k, v in drawn.items()} == want
    plan = projects.STATUS_STYLE[projects.PLANNED]
    assert {tuple(x) for x in drawn[projects.PLANNED]} == {(plan["dash"], plan["fill_opacity"])}
    building = projects.STATUS_STYLE[projects.BUILDING]
    assert {x[1] for x in drawn[projects.BUILDING]} == {building["fill_opacity"]}
    assert all(x[0] is None for x in drawn[projects.BUILT])
    legend = page.locator(".sg-leg-layer[data-kind='toilets']").inner_text()
    assert all(word in legend for word in projects.STATUS_STYLE)
    assert watch.errors == [] and watch.foreign == []
    page.close()


def test_search_finds_a_grid(site):
    page, watch = login(site, "office")
    code = site["codes"][3]
    page.fill(".sg-search input", code)
    page.press(".sg-search input", "Enter")
    page.wait_for_selector(".sg-results li", timeout=5000)
    assert code in page.locator(".sg-results").inner_text()
    page.wait_for_timeout(400)
    page.screenshot(path=str(ARTIFACTS / "map-search.png"))
    assert watch.errors == [] and watch.foreign == []
    page.close()


def test_grid_page_shows_its_list(site):
    project = site["project"]
    probs = project.store.read("problems", columns=["grid_code", "status"])
    code = probs.loc[probs["status"] != "结案", "grid_code"].value_counts().index[0]
    page, watch = login(site, "office", next_url=f"/grids/{code}")
    assert f"网格 {code}" in page.locator(".sg-side h1").inner_text()
    rows = page.locator(".sg-side table.sg-list tbody tr")
    n_open = int(((probs["grid_code"] == code) & (probs["status"] != "结案")).sum())
    assert rows.count() == min(n_open, 300) and n_open > 0
    page.screenshot(path=str(ARTIFACTS / "grid-page.png"))
    assert watch.errors == [] and watch.foreign == []
    page.close()


def test_grid_head_sees_only_their_grid_page(site):
    page, _ = login(site, "head")
    own, other = site["codes"][0], site["codes"][1]
    assert page.goto(f"{site['url']}/grids/{own}").status == 200
    assert page.goto(f"{site['url']}/grids/{other}").status == 403
    page.close()


def _click_map(page, lon: float, lat: float) -> None:
    """A real mouse click on the map at a point in display coordinates."""
    x, y = page.evaluate("""([lat, lon]) => { const p = sanigrid.map.latLngToContainerPoint([lat, lon]);
        const r = sanigrid.map.getContainer().getBoundingClientRect(); return [r.left + p.x, r.top + p.y]; }""",
                         [lat, lon])
    page.mouse.click(x, y)


def _inside(project, code: str) -> tuple[float, float]:
    """A point inside grid ``code`` in the map's display coordinates (settings.basemap.coords)."""
    from sanigrid.web.features import to_display

    g = project.store.read("grids", where=eq("code", code))
    pt = to_display(g.set_geometry(g.geometry.representative_point()), project.settings.basemap.coords)
    return float(pt.geometry.iloc[0].x), float(pt.geometry.iloc[0].y)


def _status_only(errors: list[str]) -> list[str]:
    """Console errors other than Chromium's own line for a 4xx answer the page expected and showed."""
    return [e for e in errors if "the server responded with a status of 4" not in e]


def test_grid_head_reports_and_moves_a_case_from_the_grid_page(site):
    project, own = site["project"], site["codes"][0]
    store = project.store
    page, watch = login(site, "head", next_url=f"/grids/{own}")
    form = page.locator("#sg-report")
    assert form.count() == 1
    cats = [c.name for c in project.settings.problems.categories]
    assert page.locator("#sg-report select[name=category] option").all_inner_texts() == cats
    # submit before picking a place: told to pick one, nothing sent
    form.locator("button[type=submit]").click()
    assert "地图上点选" in form.locator(".sg-msg").inner_text()
    # pick a place in the grid on the map, choose a category, report
    form.locator("button.sg-pick").click()
    _click_map(page, *_inside(project, own))
    assert page.locator("#sg-report input[name=lon]").input_value() != ""
    before = int(store.read("problems", columns=["problem_id"])["problem_id"].max())
    page.select_option("#sg-report select[name=category]", cats[1])
    page.select_option("#sg-report select[name=source]", "巡查")
    page.fill("#sg-report textarea[name=description]", "浏览器测试 <b>不转义就加粗</b>")
    with page.expect_request(lambda r: r.method == "POST" and r.url.endswith("/api/problems")) as sent:
        form.locator("button[type=submit]").click()
    # the map is drawn in the basemap's coordinates, and the click is sent in them
    assert sent.value.post_data_json["coords"] == project.settings.basemap.coords
    page.wait_for_selector("#sg-report .sg-msg.sg-ok:has-text('已受理')", timeout=10000)
    row = store.read("problems", where=between("problem_id", lo=before + 1))
    assert len(row) == 1
    pid = int(row["problem_id"].iloc[0])
    assert row["grid_code"].iloc[0] == own and row["category"].iloc[0] == cats[1] and row["source"].iloc[0] == "巡查"
    assert f"已受理 编号 {pid}" in form.locator(".sg-msg").inner_text()
    page.wait_for_selector(f"button.sg-step[data-id='{pid}']", timeout=5000)  # the open list was reloaded
    tr = page.locator("table.sg-list tbody tr", has=page.locator(f"button.sg-step[data-id='{pid}']"))
    assert "<b>不转义就加粗</b>" in tr.inner_text()  # shown as text, not markup
    page.screenshot(path=str(ARTIFACTS / "grid-report.png"))
    # the next status, with a note: 立案 → 派遣, recorded under the grid head's name
    tr.locator(".sg-note").fill("已派环卫所")
    tr.locator("button.sg-step[data-to='派遣']").click()
    page.wait_for_selector("#sg-step-msg.sg-ok", timeout=10000)
    assert store.read("problems", where=eq("problem_id", pid))["status"].iloc[0] == "派遣"
    hist = store.read_table("problem_history")
    last = hist[hist["problem_id"] == pid].iloc[-1]
    got = (last["from_status"], last["to_status"], last["actor"], last["note"])
    assert got == ("立案", "派遣", "head", "已派环卫所")
    assert page.locator(f"button.sg-step[data-id='{pid}']").all_inner_texts() == ["→ 处置"]
    page.screenshot(path=str(ARTIFACTS / "grid-step.png"))
    # the same category at the same place again: accepted, and the earlier case named as a possible duplicate
    form.locator("button[type=submit]").click()
    page.wait_for_selector(f"#sg-report .sg-msg.sg-ok:has-text('#{pid}')", timeout=10000)
    assert "可能重复" in form.locator(".sg-msg").inner_text()
    assert watch.errors == [] and watch.foreign == []
    page.close()


def test_grid_page_shows_the_apis_refusals(site):
    from sanigrid.web.auth import User
    from sanigrid.web.intake import intake, transition

    project, own, other = site["project"], site["codes"][0], site["codes"][1]
    g = project.store.read("grids", where=eq("code", own)).to_crs(4326).representative_point().iloc[0]
    office = User("office", "office")
    mine = intake(project, category=project.settings.problems.categories[0].name, lon=g.x, lat=g.y, user=office)
    page, watch = login(site, "head", next_url=f"/grids/{own}")
    form = page.locator("#sg-report")
    # a place outside the county: the API's 422 text, shown in the form; nothing stored
    n = len(project.store.read("problems", columns=[]))
    form.locator("button.sg-pick").click()
    page.evaluate("() => sanigrid.map.fire('preclick', {latlng: L.latLng(30.0, 110.0)})")
    form.locator("button[type=submit]").click()
    page.wait_for_selector("#sg-report .sg-msg.sg-error:has-text('不在本县任何网格内')", timeout=10000)
    # a place in another grid: 403, a grid head reports only in their own grid
    form.locator("button.sg-pick").click()
    lon, lat = _inside(project, other)
    page.evaluate("([lat, lon]) => sanigrid.map.fire('preclick', {latlng: L.latLng(lat, lon)})", [lat, lon])
    form.locator("button[type=submit]").click()
    page.wait_for_selector(f"#sg-report .sg-msg.sg-error:has-text('{other}')", timeout=10000)
    assert len(project.store.read("problems", columns=[])) == n
    # a stale button (someone else moved the case meanwhile): the 409 text; the status is unchanged
    pid, to = mine["problem_id"], "派遣"
    transition(project, pid, to_status=to, user=office)
    page.locator(f"button.sg-step[data-id='{pid}'][data-to='{to}']").click()
    page.wait_for_selector("#sg-step-msg.sg-error", timeout=10000)
    text = page.locator("#sg-step-msg").inner_text()
    assert f"#{pid}" in text and "不能从" in text
    # and the list was read again: the row shows the case's status now, and its next step
    assert page.locator(f"button.sg-step[data-id='{pid}']").all_inner_texts() == ["→ 处置"]
    page.screenshot(path=str(ARTIFACTS / "grid-refusal.png"))
    assert project.store.read("problems", where=eq("problem_id", pid))["status"].iloc[0] == to
    assert _status_only(watch.errors) == [] and watch.foreign == []
    page.close()


def test_viewer_sees_no_report_form_or_buttons(site):
    from sanigrid.web.auth import add_user

    add_user(site["project"], "viewer", role="viewer", password=PASSWORD)
    page, watch = login(site, "viewer", next_url=f"/grids/{site['codes'][0]}")
    assert page.locator(".sg-side table.sg-list, .sg-side h2#open-list").count() >= 1
    assert page.locator("#sg-report").count() == 0 and page.locator("button.sg-step").count() == 0
    assert watch.errors == [] and watch.foreign == []
    page.close()


def test_report_from_a_gcj02_map_lands_where_clicked(site):
    """With a GCJ-02 basemap the map is drawn shifted (~500 m here): the click is sent as gcj02."""
    project, own = site["project"], site["codes"][0]
    store = project.store
    g = store.read("grids", where=eq("code", own))
    target = g.geometry.representative_point().iloc[0]  # in the store's CRS, metres
    project.settings.basemap.coords = "gcj02"
    try:
        page, watch = login(site, "head", next_url=f"/grids/{own}")
        page.locator("#sg-report button.sg-pick").click()
        _click_map(page, *_inside(project, own))
        before = int(store.read("problems", columns=["problem_id"])["problem_id"].max())
        page.locator("#sg-report button[type=submit]").click()
        page.wait_for_selector("#sg-report .sg-msg.sg-ok:has-text('已受理')", timeout=10000)
    finally:
        project.settings.basemap.coords = "wgs84"
    row = store.read("problems", where=between("problem_id", lo=before + 1))
    assert len(row) == 1 and row["grid_code"].iloc[0] == own
    assert row.geometry.iloc[0].distance(target) < 5  # a pixel or two at this zoom, not the 500 m shift
    assert watch.errors == [] and watch.foreign == []
    page.close()
