"""Static assets, all served by the app itself: the map works on an intranet with no internet.

Third-party JavaScript and CSS come from the installed XStatic packages (PyPI wheels that ship
Leaflet, Leaflet.markercluster, jQuery and Font-Awesome); nothing is copied into the repository.
sanigrid's own map code (``web/static/``) is served beside them.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response

STATIC_URL = "/static"
OWN_DIR = Path(__file__).parent / "static"


@dataclass(frozen=True)
class Vendor:
    """One XStatic package and the files of it a page loads."""

    name: str  # URL segment under /static/vendor/
    module: str  # the xstatic.pkg module
    js: tuple[str, ...] = ()
    css: tuple[str, ...] = ()


VENDORS: tuple[Vendor, ...] = (
    Vendor("leaflet", "xstatic.pkg.leaflet", js=("leaflet.js",), css=("leaflet.css",)),
    # served for folium plugins that need them; our pages cluster on the server and use only the icon styles
    Vendor("jquery", "xstatic.pkg.jquery"),
    Vendor("markercluster", "xstatic.pkg.leaflet_markercluster",
           css=("MarkerCluster.css", "MarkerCluster.Default.css")),
    Vendor("font-awesome", "xstatic.pkg.font_awesome",
           css=("css/fontawesome.min.css", "css/solid.min.css")),
)
#: Swagger UI for /docs (the fastapi-offline wheel ships it), not loaded by map pages
SWAGGER = Vendor("swagger", "fastapi_offline")
SWAGGER_URL = f"{STATIC_URL}/vendor/swagger"
OWN_JS = ("sanigrid.js",)
OWN_CSS = ("sanigrid.css",)


def vendor_dir(v: Vendor) -> Path:
    """The folder an XStatic package installed its files in."""
    try:
        mod = importlib.import_module(v.module)
    except ModuleNotFoundError:
        from sanigrid.web._errors import WebError

        pkg = "XStatic-" + v.module.rsplit(".", 1)[-1].replace("_", "-")
        raise WebError(f"the map needs the Python package {pkg}; install it with `pip install {pkg}`") from None
    base = getattr(mod, "BASE_DIR", None)
    return Path(base) if base else Path(str(mod.__file__)).parent / "static"


def js_urls() -> list[tuple[str, str]]:
    """(name, URL) of every script a map page loads, in order (for folium's ``default_js``)."""
    out = [(f"{v.name}_{Path(f).stem}", f"{STATIC_URL}/vendor/{v.name}/{f}") for v in VENDORS for f in v.js]
    return out + [(f"sanigrid_{Path(f).stem}", f"{STATIC_URL}/sanigrid/{f}") for f in OWN_JS]


def css_urls() -> list[tuple[str, str]]:
    """(name, URL) of every stylesheet a map page loads (for folium's ``default_css``)."""
    out = [(f"{v.name}_{Path(f).stem}_css", f"{STATIC_URL}/vendor/{v.name}/{f}") for v in VENDORS for f in v.css]
    return out + [(f"sanigrid_{Path(f).stem}_css", f"{STATIC_URL}/sanigrid/{f}") for f in OWN_CSS]


class CachedStatic(StaticFiles):
    """Static files with a ``Cache-Control`` header, so a slow intranet PC fetches them once.

    Third-party assets change only when their package is upgraded (a day's caching is safe); ours are
    revalidated on every load (``no-cache``: a 304 from the ETag when unchanged).
    """

    def __init__(self, *, directory: str | Path, cache_control: str):
        super().__init__(directory=directory)
        self.cache_control = cache_control

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        response.headers["Cache-Control"] = self.cache_control
        return response


VENDOR_CACHE = "public, max-age=86400"
OWN_CACHE = "no-cache"


def mount_static(app: FastAPI) -> None:
    """Serve each XStatic package under ``/static/vendor/<name>/`` and ours under ``/static/sanigrid/``."""
    for v in VENDORS:
        app.mount(f"{STATIC_URL}/vendor/{v.name}", CachedStatic(directory=vendor_dir(v), cache_control=VENDOR_CACHE),
                  name=f"vendor-{v.name}")
    app.mount(f"{STATIC_URL}/sanigrid", CachedStatic(directory=OWN_DIR, cache_control=OWN_CACHE),
              name="sanigrid-static")


def mount_docs(app: FastAPI, *, title: str) -> None:
    """``/docs`` (Swagger UI) with its script and stylesheet served by the app, not a CDN."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html

    app.mount(SWAGGER_URL, CachedStatic(directory=vendor_dir(SWAGGER), cache_control=VENDOR_CACHE),
              name="vendor-swagger")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json", title=f"{title} · API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url=f"{SWAGGER_URL}/swagger-ui-bundle.js", swagger_css_url=f"{SWAGGER_URL}/swagger-ui.css",
            swagger_favicon_url=f"{SWAGGER_URL}/favicon.png")

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    def docs_redirect():
        return get_swagger_ui_oauth2_redirect_html()
