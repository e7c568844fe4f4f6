"""The template pages in headless Chromium at 390, 1024 and 1400 px: login, an error page and a grid page.

The login and the error pages must not scroll sideways at any width; screenshots of all three go to
``test-artifacts/`` (look at them).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from webproject import CHROMIUM, CHROMIUM_ARGS, LiveServer, synthetic_project

pytestmark = pytest.mark.browser

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is absent (install Debian's chromium: `make browser`)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (Python) is not installed")

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
PASSWORD = "head-pass-2026"
WIDTHS = {390: 844, 1024: 768, 1400: 900}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    from sanigrid.web.app import create_app
    from sanigrid.web.auth import add_user

    project = synthetic_project(tmp_path_factory.mktemp("pages-browser") / "town", n_problems=80)
    codes = sorted(project.store.read("grids")["code"])
    add_user(project.store, "head", role="grid_head", grid_code=codes[0], password=PASSWORD)
    ARTIFACTS.mkdir(exist_ok=True)
    with LiveServer(create_app(project, warm=False)) as url, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield {"url": url, "browser": browser, "codes": codes}
        browser.close()


def _overflow(page) -> int:
    """How far the page scrolls sideways (0: it fits the window)."""
    return page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")


@pytest.mark.parametrize("width", list(WIDTHS))
def test_login_error_and_grid_pages_at_each_width(site, width):
    page = site["browser"].new_page(viewport={"width": width, "height": WIDTHS[width]}, locale="zh-CN")
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    own, other = site["codes"][0], site["codes"][1]
    page.goto(f"{site['url']}/login?next=/grids/{own}")
    assert page.locator("form.sg-login h2").inner_text() == "创卫网格地图 登录"
    assert _overflow(page) == 0
    page.screenshot(path=str(ARTIFACTS / f"login-{width}.png"))
    page.fill("input[name=username]", "head")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_selector("html[data-sg-drawn='1']", timeout=30000)
    assert page.locator(".sg-side h1").inner_text().startswith(f"网格 {own}")
    page.screenshot(path=str(ARTIFACTS / f"grid-page-{width}.png"))
    # another grid's page: a readable page in Chinese with the way back, not {"detail": …}
    r = page.goto(f"{site['url']}/grids/{other}")
    assert r is not None and r.status == 403
    assert page.locator("main.sg-errpage h1").inner_text() == "无权访问"
    assert page.locator(f"a[href='/grids/{own}']").count() == 1
    assert _overflow(page) == 0
    page.screenshot(path=str(ARTIFACTS / f"error-403-{width}.png"))
    r = page.goto(f"{site['url']}/grids/36068199999999")
    assert r is not None and r.status == 404 and page.locator("main.sg-errpage h1").inner_text() == "没有找到"
    assert errors == []
    page.close()
