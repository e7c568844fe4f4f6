"""Benchmark of the web map: sanigrid's page (big layers by bbox/cluster) vs plain folium with the points inlined.

Fills a store with N problems (default 10^4; ``--full``: 10^5) on the demo county (or the
synthetic town when the demo is not available), serves it with uvicorn on 127.0.0.1 and measures,
in headless Chromium (Debian's ``/usr/bin/chromium``):

* sanigrid's county map: DOMContentLoaded, "all layers drawn" (the page's own signal after the
  big layer's first bbox answer), bytes transferred (gzip, as served) and HTML size, cold (first
  load after the server starts) and warm;
* the plain folium baseline in the same run: one ``folium.GeoJson`` layer of the same points with
  a tooltip and a popup (what ``GeoDataFrame.explore`` makes), its CDN scripts rewritten to the
  app's local copies so it can load offline (Bootstrap and awesome-markers, which it does not need
  to draw, are blocked), served by the same app with the same gzip;
* the bbox API (``/api/map/problems``) at several zooms for a 1400 x 900 px view at random
  centres: p50 and p95 over HTTP, and ``store.read(bbox=...)`` (GeoPackage R-tree) alone.

Targets (issue #5): first view < 2 s, >= 10x less transferred than the inlined page, bbox p95 < 100 ms.

    .venv/bin/python bench/bench_web.py            # 10^4 problems
    .venv/bin/python bench/bench_web.py --full     # 10^5 problems
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from webproject import CHROMIUM, CHROMIUM_ARGS, LiveServer, synthetic_project

VIEW_W, VIEW_H = 1400, 900
PASSWORD = "bench-password"


def build(root: Path, n: int, *, synthetic: bool):
    t0 = time.perf_counter()
    if synthetic:
        project = synthetic_project(root, n_problems=n)
    else:
        from sanigrid.scripts.demo import build_demo

        project = build_demo(root, n_problems=n)
    print(f"store with {n:,} problems built in {time.perf_counter() - t0:.1f} s "
          f"({'synthetic town' if synthetic else 'demo county'}; {project.store.path.stat().st_size / 1e6:.1f} MB)")
    return project


def baseline_html(project) -> tuple[str, int, int]:
    """A plain folium map with every problem inlined (tooltip + popup), and its CDN files and hosts."""
    import folium

    from sanigrid.layers.catalogue import CATALOGUE

    spec = CATALOGUE["problems"]
    pts = project.store.read("problems").to_crs(4326)
    fields = [f.name for f in spec.fields if f.popup]
    for c in ("reported_at", "deadline", "closed_at"):
        pts[c] = pts[c].astype("string")
    pts = pts[fields + ["geometry"]]
    w, s, e, n = pts.total_bounds
    m = folium.Map(location=[(s + n) / 2, (w + e) / 2], zoom_start=14)
    folium.GeoJson(pts, name="问题", tooltip=folium.GeoJsonTooltip(fields=["category", "status"]),
                   popup=folium.GeoJsonPopup(fields=fields, aliases=[spec.field(f).zh for f in fields]),
                   marker=folium.CircleMarker(radius=4, fill=True)).add_to(m)
    html = m.get_root().render()
    urls = sorted(set(re.findall(r"(?:src|href)=\"(https?://[^\"]+)\"", html)))
    hosts = {re.match(r"https?://([^/]+)", u).group(1) for u in urls}
    return html, len(urls), len(hosts)


def localise(html: str) -> str:
    """Point the baseline's Leaflet and jQuery at the app's copies so it can draw offline."""
    html = re.sub(r"https://cdn\.jsdelivr\.net/npm/leaflet@[\d.]+/dist/leaflet\.js",
                  "/static/vendor/leaflet/leaflet.js", html)
    html = re.sub(r"https://cdn\.jsdelivr\.net/npm/leaflet@[\d.]+/dist/leaflet\.css",
                  "/static/vendor/leaflet/leaflet.css", html)
    return re.sub(r"https://code\.jquery\.com/jquery-[\d.]+\.min\.js", "/static/vendor/jquery/jquery.min.js", html)


def measure_page(browser, url: str, path: str, cookie: dict | None, *, drawn_signal: bool) -> dict:
    ctx = browser.new_context(viewport={"width": VIEW_W, "height": VIEW_H})
    if cookie:
        ctx.add_cookies([cookie])
    page = ctx.new_page()
    blocked: list[str] = []
    finished: list = []
    page.on("requestfinished", lambda r: finished.append(r))

    def block(r):
        blocked.append(r.request.url)
        return r.abort()

    # only requests to other hosts are intercepted (interception would hide the compressed sizes)
    page.route(lambda u: not u.startswith(url + "/"), block)
    t0 = time.perf_counter()
    page.goto(url + path, wait_until="domcontentloaded", timeout=120_000)
    if drawn_signal:
        page.wait_for_selector("html[data-sg-drawn='1']", timeout=120_000)
    else:
        page.wait_for_load_state("load", timeout=120_000)
    wall = time.perf_counter() - t0
    timing = page.evaluate("""() => {
        const nav = performance.getEntriesByType('navigation')[0];
            return {dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd, html: nav.decodedBodySize,
                drawn: window.sanigrid ? window.sanigrid.drawnMs : null};
    }""")
    if timing["drawn"] is None:  # the baseline draws in its inline script, before DOMContentLoaded ends
        timing["drawn"] = max(timing["dcl"], timing["load"])
    sizes = [r.sizes() for r in finished]
    timing["xfer"] = sum(s["responseBodySize"] + s["responseHeadersSize"] for s in sizes)
    timing["n"] = len(finished)
    timing["wall"] = wall
    timing["blocked"] = len(blocked)
    ctx.close()
    return timing


def bbox_for(lon: float, lat: float, zoom: int) -> str:
    deg_per_px = 360.0 / (256 * 2**zoom)
    half_w = VIEW_W / 2 * deg_per_px
    half_h = VIEW_H / 2 * deg_per_px * np.cos(np.radians(lat))
    return f"{lon - half_w:.6f},{lat - half_h:.6f},{lon + half_w:.6f},{lat + half_h:.6f}"


def bench_api(url: str, token: str, project, zooms=(12, 14, 16, 17, 18), n_req: int = 40) -> float:
    """Print p50/p95 per zoom; return the worst p95 (ms)."""
    import httpx

    from sanigrid.web.features import bbox_to_store

    rng = np.random.default_rng(1)
    pts = project.store.read("problems", columns=[]).to_crs(4326)
    w, s, e, n = pts.total_bounds
    h = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    print(f"\nbbox API /api/map/problems, {VIEW_W}x{VIEW_H} px view at random centres ({n_req} requests per zoom)")
    print(f"{'zoom':>4} {'p50 ms':>8} {'p95 ms':>8} {'mode':>9} {'features':>9} {'bytes (gzip)':>13} "
          f"{'R-tree read p50/p95 ms':>24}")
    worst = 0.0
    with httpx.Client(base_url=url, headers=h, timeout=60) as client:
        client.get("/api/map/problems", params={"bbox": bbox_for((w + e) / 2, (s + n) / 2, 14), "zoom": 14})  # warm
        for z in zooms:
            times, nfeat, nbytes, modes, rtree = [], [], [], set(), []
            for _ in range(n_req):
                lon, lat = rng.uniform(w, e), rng.uniform(s, n)
                box = bbox_for(lon, lat, z)
                t0 = time.perf_counter()
                r = client.get("/api/map/problems", params={"bbox": box, "zoom": z})
                times.append((time.perf_counter() - t0) * 1000)
                r.raise_for_status()
                data = r.json()
                nfeat.append(len(data["features"]))
                nbytes.append(int(r.headers.get("content-length", len(r.content))))
                modes.add("clusters" if data.get("clustered") else "points")
                t0 = time.perf_counter()
                project.store.read("problems", bbox=bbox_to_store(tuple(map(float, box.split(","))),
                                                                  project.store.crs), columns=["status"])
                rtree.append((time.perf_counter() - t0) * 1000)
            print(f"{z:>4} {np.percentile(times, 50):>8.1f} {np.percentile(times, 95):>8.1f} "
                  f"{'/'.join(sorted(modes)):>9} "
                  f"{int(np.median(nfeat)):>9} {int(np.median(nbytes)):>13,} "
                  f"{np.percentile(rtree, 50):>11.1f} / {np.percentile(rtree, 95):<8.1f}")
            worst = max(worst, float(np.percentile(times, 95)))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--full", action="store_true", help="10^5 problems (default 10^4)")
    ap.add_argument("-n", type=int, default=None, help="number of problems")
    ap.add_argument("--synthetic", action="store_true", help="the synthetic town instead of the demo county")
    args = ap.parse_args()
    n = args.n or (100_000 if args.full else 10_000)
    from playwright.sync_api import sync_playwright

    from sanigrid.web.app import create_app
    from sanigrid.web.auth import add_user

    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing: install Debian's chromium (make browser)")
    with tempfile.TemporaryDirectory() as tmp:
        synthetic = args.synthetic
        if not synthetic:
            import importlib.util

            synthetic = importlib.util.find_spec("sanigrid.scripts.demo") is None
        project = build(Path(tmp) / "county", n, synthetic=synthetic)
        token = add_user(project, "bench", role="office", password=PASSWORD)
        t0 = time.perf_counter()
        base, n_cdn, n_hosts = baseline_html(project)
        t_base = time.perf_counter() - t0
        local_base = localise(base)
        app = create_app(project)
        from fastapi.responses import HTMLResponse

        app.get("/bench/folium", include_in_schema=False)(lambda: HTMLResponse(local_base))
        with LiveServer(app) as url, sync_playwright() as pw:
            import httpx

            sess = httpx.post(url + "/api/auth/token", data={"username": "bench", "password": PASSWORD}).json()
            cookie = {"name": "sanigrid_token", "value": sess["access_token"], "url": url}
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            cold = measure_page(browser, url, "/", cookie, drawn_signal=True)
            warm = [measure_page(browser, url, "/", cookie, drawn_signal=True) for _ in range(3)]
            folium_runs = [measure_page(browser, url, "/bench/folium", None, drawn_signal=False) for _ in range(2)]
            browser.close()
            worst_p95 = bench_api(url, token, project)
        ours = sorted(warm, key=lambda t: t["drawn"])[1]
        fol = min(folium_runs, key=lambda t: t["drawn"])
        print(f"\nmap page, {n:,} problems, {VIEW_W}x{VIEW_H} px, Chromium headless "
              "(times in ms from navigation start)")
        print(f"{'':32} {'DOMContentLoaded':>17} {'all drawn':>10} {'HTML bytes':>12} {'transferred':>12} "
              f"{'requests':>9}")
        for label, t in (("sanigrid, cold (first load)", cold), ("sanigrid, warm (median of 3)", ours),
                         ("plain folium, points inlined", fol)):
            print(f"{label:32} {t['dcl']:>17.0f} {t['drawn']:>10.0f} {t['html']:>12,} {t['xfer']:>12,} {t['n']:>9}")
        gz = len(gzip.compress(base.encode()))
        print(f"plain folium page: {len(base.encode()):,} bytes ({gz:,} gzipped), built in {t_base:.1f} s, "
              f"pulls {n_cdn} files from {n_hosts} CDN hosts (offline: {fol['blocked']} blocked here)")
        print(f"ratios: transferred {fol['xfer'] / ours['xfer']:.1f}x less, HTML {fol['html'] / ours['html']:.1f}x "
              f"smaller, all drawn {fol['drawn'] / ours['drawn']:.1f}x sooner (warm), "
              f"{fol['drawn'] / cold['drawn']:.1f}x (cold)")
        ok = cold["drawn"] < 2000 and fol["xfer"] / ours["xfer"] >= 10 and worst_p95 < 100
        print(f"targets: first view < 2 s: {'yes' if cold['drawn'] < 2000 else 'NO'} ({cold['drawn']:.0f} ms cold); "
              f">= 10x less transferred: {'yes' if fol['xfer'] / ours['xfer'] >= 10 else 'NO'}; "
              f"bbox p95 < 100 ms: {'yes' if worst_p95 < 100 else 'NO'} (worst {worst_p95:.0f} ms)"
              + ("" if ok else "  <- missed")
              + ("" if n >= 100_000 else "\n(the targets are set for 10^5 problems: run with --full)"))


if __name__ == "__main__":
    main()
