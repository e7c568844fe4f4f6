"""The case desk in headless Chromium at 390, 1024 and 1400 px: the case list, a case's page and the
grid page, then a case handled end to end by a grid head and an inspector (with a photo from the page).

Each page must fit its window (no sideways scroll) and its map controls must not overlap; screenshots go
to ``test-artifacts/`` (look at them).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from webproject import CHROMIUM, CHROMIUM_ARGS, LiveServer, synthetic_project

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is absent (install Debian's chromium: `make browser`)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PASSWORD = "case-desk-2026"
WIDTHS = {390: 844, 1024: 768, 1400: 900}

#: JS: pairs of visible map controls (or page controls) whose boxes overlap, as "a | b" strings
OVERLAPS = """(sel) => {
  const els = Array.from(document.querySelectorAll(sel)).filter(e => e.offsetParent !== null);
  const out = [];
  for (let i = 0; i < els.length; i++) for (let j = i + 1; j < els.length; j++) {
    if (els[i].contains(els[j]) || els[j].contains(els[i])) continue;
    const a = els[i].getBoundingClientRect(), b = els[j].getBoundingClientRect();
    const apart = a.right - 1 <= b.left || b.right - 1 <= a.left || a.bottom - 1 <= b.top || b.bottom - 1 <= a.top;
    if (a.width && b.width && !apart)
      out.push(els[i].className + " | " + els[j].className);
  }
  return out;
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    import geopandas as gpd

    from sanigrid.web.app import create_app
    from sanigrid.web.auth import add_user

    project = synthetic_project(tmp_path_factory.mktemp("desk-browser") / "town", n_problems=90)
    codes = sorted(project.store.read("grids")["code"])
    add_user(project.store, "head", role="grid_head", grid_code=codes[0], password=PASSWORD)
    add_user(project.store, "insp", role="inspector", password=PASSWORD)
    add_user(project.store, "office", role="office", password=PASSWORD)
    grid = project.store.read("grids").set_index("code").loc[[codes[0]]]
    centre = gpd.GeoSeries(grid.geometry).representative_point().to_crs(4326).iloc[0]
    ARTIFACTS.mkdir(exist_ok=True)
    with LiveServer(create_app(project, warm=False)) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield {"url": url, "browser": browser, "codes": codes, "project": project, "centre": (centre.x, centre.y)}
        browser.close()


def _overflow(page) -> int:
    """How far the page scrolls sideways (0: it fits the window)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


def _login(site, width: int, who: str, target: str, **context):
    ctx = site["browser"].new_context(viewport={"width": width, "height": WIDTHS[width]}, locale="zh-CN", **context)
    page = ctx.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{site['url']}/login?next={target}")
    page.fill("input[name=username]", who)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    return ctx, page, errors


def _ready(page, errors) -> None:
    """Wait until the desk's script has set the page up (its maps drawn, its buttons wired)."""
    try:
        page.wait_for_selector("html[data-cd-ready='1']", state="attached", timeout=20000)
    except Exception:
        raise AssertionError(f"the page did not get ready: {page.url} {errors}") from None


def _jpeg(colour: str = "red") -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), colour).save(buf, "JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_find_filter_and_open_a_case_at_each_width(site, width):
    ctx, page, errors = _login(site, width, "office", "/cases")
    _ready(page, errors)
    assert page.locator("main.cd-list h1").inner_text() == "问题清单"
    assert _overflow(page) == 0
    frame = site["project"].store.read("problems")
    n_open = int((frame["status"] != "结案").sum())
    page.screenshot(path=str(ARTIFACTS / f"cases-{width}.png"))
    # filter: open cases only (a query parameter, so the view can be bookmarked)
    if not page.locator("details.cd-filters").get_attribute("open"):
        page.click("details.cd-filters summary")
    page.select_option("select[name=status]", "open")
    page.click("details.cd-filters button[type=submit]")
    _ready(page, errors)
    assert "status=open" in page.url
    assert page.locator("#cd-found").inner_text().startswith(f"共 {n_open} 件")
    statuses = page.locator("tr.cd-row td:nth-child(4)").all_inner_texts()
    assert statuses and "结案" not in statuses
    assert _overflow(page) == 0
    page.screenshot(path=str(ARTIFACTS / f"cases-open-{width}.png"))
    # a row zooms the map to its case; its marker opens (marks) its row
    first = page.locator("tr.cd-row").first
    first.locator("td:nth-child(2)").click()
    assert page.locator("main.cd-list").get_attribute("data-picked") == first.get_attribute("data-id")
    # find a case by its number
    pid = int(frame["problem_id"].iloc[7])
    page.fill("form.cd-find input[name=q]", str(pid))
    page.click("form.cd-find button")
    _ready(page, errors)
    assert page.locator("tr.cd-row").count() == 1
    assert page.locator("tr.cd-row a.cd-id").inner_text() == str(pid)
    page.click("tr.cd-row a.cd-id")
    _ready(page, errors)
    assert page.locator("main.cd-case h1").inner_text().startswith(f"问题 {pid}")
    row = frame[frame["problem_id"] == pid].iloc[0]
    kv = dict(zip(page.locator("table.cd-kv th").all_inner_texts(), page.locator("table.cd-kv td").all_inner_texts(),
                  strict=True))
    assert kv["编号"] == str(pid) and kv["状态"] == row["status"] and kv["网格编码"] == row["grid_code"]
    assert kv["问题描述"] == row["description"]
    assert _overflow(page) == 0
    page.screenshot(path=str(ARTIFACTS / f"case-{width}.png"), full_page=True)
    # an unknown case: a 404 page in Chinese
    r = page.goto(f"{site['url']}/cases/99999")
    assert r is not None and r.status == 404 and page.locator("main.sg-errpage h1").inner_text() == "没有找到"
    assert _overflow(page) == 0
    assert errors == []
    ctx.close()


@pytest.mark.parametrize("width", list(WIDTHS))
def test_the_grid_page_fits_and_takes_my_location(site, width):
    lon, lat = site["centre"]
    ctx, page, errors = _login(site, width, "head", f"/grids/{site['codes'][0]}", geolocation={
        "longitude": lon, "latitude": lat, "accuracy": 8}, permissions=["geolocation"])
    page.wait_for_selector("html[data-sg-drawn='1']", timeout=30000)
    assert _overflow(page) == 0
    assert page.evaluate(OVERLAPS, ".leaflet-control-container .leaflet-control") == []
    # the panel's list fits its panel (the action column is not cut off)
    fits = page.evaluate("(() => { const s = document.querySelector('.sg-side'); "
                         "return s.scrollWidth - s.clientWidth; })()")
    assert fits <= 0
    if width < 700:  # a phone: the map above, the panel below it
        box_map = page.locator(".folium-map").bounding_box()
        box_side = page.locator(".sg-side").bounding_box()
        assert box_map and box_side and box_side["y"] >= box_map["y"] + box_map["height"] - 1
        assert box_map["width"] == pytest.approx(width, abs=2)
    page.screenshot(path=str(ARTIFACTS / f"grid-page-{width}.png"))
    # 用我的位置: the browser's position (WGS84) fills the report; it lands where the phone is
    page.click("button.cd-locate")
    page.wait_for_function("document.querySelector('#sg-report input[name=lon]').value !== ''")
    assert page.locator("#sg-report input[name=coords]").input_value() == "wgs84"
    page.fill("#sg-report textarea[name=description]", f"用我的位置 {width}")
    page.click("#sg-report button[type=submit]")
    page.wait_for_selector("#sg-report .sg-msg.sg-ok")
    new = site["project"].store.read("problems")
    row = new[new["description"] == f"用我的位置 {width}"].to_crs(4326).iloc[0]
    assert row["grid_code"] == site["codes"][0]
    assert abs(row.geometry.x - lon) < 1e-6 and abs(row.geometry.y - lat) < 1e-6
    assert errors == []
    ctx.close()


def test_a_case_end_to_end_by_a_grid_head_and_an_inspector(site, tmp_path):
    """立案 → 派遣 → 处置 (grid head) → photo → 核查 (grid head) → 结案 (inspector), on a phone; the grid
    head is refused the inspector's step, the hand-in without an after-photo is refused."""
    import httpx

    from sanigrid.web.auth import add_user

    token = add_user(site["project"].store, "office-api", role="office")
    lon, lat = site["centre"]
    r = httpx.post(f"{site['url']}/api/problems", headers={"Authorization": f"Bearer {token}"},
                   json={"category": site["project"].settings.problem_categories[0], "description": "端到端",
                         "lon": lon, "lat": lat})
    assert r.status_code == 201, r.text
    pid = r.json()["problem_id"]
    photo = tmp_path / "after.jpg"
    photo.write_bytes(_jpeg())

    ctx, page, errors = _login(site, 390, "head", f"/cases/{pid}")
    _ready(page, errors)
    for to in ("派遣", "处置"):
        page.click(f"button.cd-step[data-to='{to}']")
        assert page.locator(".cd-confirm-text").inner_text().endswith(f"→ {to}")
        page.fill("textarea[name=note]", f"已{to}")
        page.click("button.cd-do")
        page.wait_for_selector(f".cd-status:text-is('{to}')")
        assert page.locator("#cd-msg").inner_text().endswith(f"→ {to}")
    # handing in without an after-photo: refused, said on the page
    page.click("button.cd-step[data-to='核查']")
    assert page.locator(".cd-need").is_visible()
    page.click("button.cd-do")
    page.wait_for_selector("#cd-msg.sg-error")
    assert "照片" in page.locator("#cd-msg").inner_text()
    # the photo from the camera (a file here), then the hand-in
    page.set_input_files("input[name=photo]", str(photo))
    assert not page.locator(".cd-need").is_visible()
    page.click("button.cd-do")
    page.wait_for_selector(".cd-status:text-is('核查')")
    assert page.locator("ul.cd-photos li .cd-after").count() == 1
    assert page.locator("ul.cd-photos img").evaluate("img => img.naturalWidth") == 64
    # the grid head cannot verify their own work: no button, and the API refuses it (403)
    assert page.locator("button.cd-step").count() == 0
    waiting = page.locator(".cd-waiting").inner_text()
    assert "监督员" in waiting and "网格长" not in waiting and "不能办理" in waiting
    status = page.evaluate(f"""fetch('/api/problems/{pid}/transitions', {{method: 'POST',
        credentials: 'same-origin', headers: {{'Content-Type': 'application/json'}},
        body: JSON.stringify({{to_status: '结案'}})}}).then(r => r.status)""")
    assert status == 403
    assert _overflow(page) == 0
    page.screenshot(path=str(ARTIFACTS / "case-handed-in-390.png"), full_page=True)
    ctx.close()

    ctx, page, errors2 = _login(site, 390, "insp", f"/cases/{pid}")
    _ready(page, errors2)
    assert [b.get_attribute("data-to") for b in page.locator("button.cd-step").all()] == ["结案", "返工"]
    page.click("button.cd-step[data-to='结案']")
    page.click("button.cd-cancel")  # the confirmation can be taken back
    assert page.locator(".cd-confirm").is_hidden()
    page.click("button.cd-step[data-to='结案']")
    page.fill("textarea[name=note]", "核查通过")
    page.click("button.cd-do")
    page.wait_for_selector(".cd-status:text-is('结案')")
    steps = page.locator("ol.cd-timeline li").all_inner_texts()
    assert len(steps) == 5
    assert "insp" in steps[-1] and "核查 → 结案" in steps[-1] and "核查通过" in steps[-1]
    assert "head" in steps[-2] and "处置 → 核查" in steps[-2]
    page.screenshot(path=str(ARTIFACTS / "case-closed-390.png"), full_page=True)
    assert errors == [] and errors2 == []
    hist = site["project"].store.read_table("problem_history")
    mine = hist[hist["problem_id"].astype(int) == pid]
    assert list(mine["to_status"]) == ["立案", "派遣", "处置", "核查", "结案"]
    assert list(mine["actor"]) == ["office-api", "head", "head", "head", "insp"]
    ctx.close()
