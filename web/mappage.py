"""Map pages built with folium, driven by the layer catalogue.

Every layer present in the store appears with its catalogue name (Chinese, or English when
``settings.project.language = "en"``), its catalogue style (including colours by a field's
values), a legend entry and popups of its ``popup`` fields: there is no per-layer code here.
Small layers are inlined into the page; big ones (``LayerSpec.big``, or more features than
``settings.web.inline_max_features``) are fetched from ``/api/map/<kind>`` by bounding box and
zoom, clustered on the server when many points are in view.

All scripts and stylesheets are the app's own URLs (see :mod:`web.assets`); folium's CDN
defaults are replaced, so a page makes no request to another host unless a basemap is configured.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import folium
import geopandas as gpd
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement
from folium.map import Layer
from jinja2 import Template

from sanigrid.layers import cases, projects
from sanigrid.layers.catalogue import CATALOGUE, LayerSpec
from sanigrid.layers.filters import eq
from sanigrid.layers.project import Project
from sanigrid.layers.settings import Settings
from sanigrid.web.assets import css_urls, js_urls
from sanigrid.web.casedesk import by_version
from sanigrid.web.features import MAP_LEAVE_OUT, feature_collection, map_where, to_display
from sanigrid.web.texts import html_lang, text, texts

# the texts sanigrid.js shows on the map (SG.t), from the one table of web/texts.py
MAP_TEXTS: tuple[str, ...] = ("legend", "search", "no_results", "yes", "no", "open_page", "overdue", "days_overdue",
                              "clusters", "cluster", "loading", "legend_hide", "legend_show")
#: line layers whose features are named on the map from ``[web] street_label_zoom`` on
NAMED_LINES: tuple[str, ...] = ("streets",)
# layers that start switched off (the user turns them on in the layer control)
HIDDEN_AT_START: tuple[str, ...] = ("sample_points", "sample_candidates")
# analysis layers shown at start (the others are one click away in the layer control)
SHOWN_AT_START: tuple[str, ...] = ("scorecard",)
# pages a feature links to (by its fields); the only per-kind knowledge of the map, and optional
#: a layer's popup links to its page: the URL pattern (fields in braces) and the text key of the link
LINKS: dict[str, tuple[str, str]] = {
    "grids": ("/grids/{code}", "open_page"), "scorecard": ("/grids/{code}", "open_page"),
    "problems": ("/cases/{problem_id}", "open_case"),
}
_GEOM_ORDER = {"polygon": 0, "line": 1, "point": 2}


class SanigridMap(folium.Map):
    """A folium map whose scripts and stylesheets are all served by the app."""

    default_js = js_urls()
    default_css = css_urls()


class _Init(MacroElement):
    _template = Template("""
        {% macro script(this, kwargs) %}
        sanigrid.init({{ this._parent.get_name() }}, {{ this.options_json }});
        {% endmacro %}""")

    def __init__(self, options: dict[str, Any]):
        super().__init__()
        self._name = "SanigridInit"
        self.options_json = _js(options)


class _Ready(MacroElement):
    _template = Template("""
        {% macro script(this, kwargs) %}
        sanigrid.ready();
        {% endmacro %}""")


class CatalogueLayer(Layer):
    """One catalogue layer: inline GeoJSON, or fetched by bounding box from ``config['url']``."""

    _template = Template("""
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = L.featureGroup();
        sanigrid.addLayer({{ this.get_name() }}, {{ this.config_json }}, {{ this.data_json }});
        {% endmacro %}""")

    def __init__(self, config: dict[str, Any], data: str | None, *, show: bool):
        super().__init__(name=config["title"], overlay=True, control=True, show=show)
        self._name = "SanigridLayer"
        self.config_json = _js(config)
        self.data_json = "null" if data is None else data.replace("</", "<\\/")


def _js(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False).replace("</", "<\\/")


def geometry_class(spec: LayerSpec) -> str:
    g = spec.geometry[0].replace("Multi", "")
    return {"Point": "point", "LineString": "line"}.get(g, "polygon")


def _value_label(value: Any, lang: str) -> str:
    if value is True:
        return text("yes", lang)
    if value is False:
        return text("no", lang)
    return str(value)


def layer_config(spec: LayerSpec, *, lang: str = "zh", url: str | None = None) -> dict[str, Any]:
    """What the browser needs to draw, style, explain and pop up a layer: all from the catalogue."""
    st = spec.style
    by: dict[str, Any] | None = None
    by_spec = st.by
    if by_spec:
        f = spec.field(by_spec["field"])
        by = {"field": f.name, "label": f.zh if lang == "zh" else f.en}
        if "ramp" in by_spec:  # a continuous field: colours along a ramp from the data's min to its max
            by["ramp"] = list(by_spec["ramp"])
        else:
            by["values"] = [[("true" if k is True else "false" if k is False else str(k)), color,
                             _value_label(k, lang)] for k, color in by_spec["values"].items()]
    style = {"color": st.color, "weight": st.weight, "fill_color": st.fill_color,
             "fill_opacity": st.fill_opacity, "radius": st.radius, "dash": st.dash, "by": by}
    if projects.STATUS_FIELD in spec.field_names:  # facility projects: planned, building, closed drawn apart
        style["status"] = {"field": projects.STATUS_FIELD, "styles": [
            [k, v, k if lang == "zh" else projects.STATUS_EN[k]] for k, v in projects.STATUS_STYLE.items()]}
    return {
        "kind": spec.kind, "title": spec.title(lang), "geometry": geometry_class(spec), "style": style,
        "fields": [[f.name, f.zh if lang == "zh" else f.en] for f in spec.fields if f.popup],
        "label_field": spec.label_field, "key": spec.key,
        "link": LINKS[spec.kind][0] if spec.kind in LINKS else None,
        "link_text": text(LINKS[spec.kind][1], lang) if spec.kind in LINKS else None,
        "overdue": "deadline" in spec.field_names and "status" in spec.field_names, "url": url,
        "big": spec.big, "feature_url": f"/api/layers/{spec.kind}/features/" if spec.key else None,
    }


#: analysis layers holding several facility kinds, drawn in the colour of each kind's own layer
BY_FACILITY: tuple[str, ...] = ("service_areas", "coverage_gaps")


def by_facility(settings: Settings, spec: LayerSpec, lang: str) -> dict[str, Any] | None:
    """Colour a layer of :data:`BY_FACILITY` by facility kind: each kind of the settings' presets gets the
    colour of its own layer and a legend entry with its name (suggested sites keep their own colour)."""
    if spec.kind not in BY_FACILITY:
        return None
    f = spec.field("facility_kind")
    return {"field": f.name, "label": f.zh if lang == "zh" else f.en,
            "values": [[k, CATALOGUE[k].style.color, settings.facility_title(k, lang)] for k in settings.facilities]}


def facility_kinds_in(project: Project, kind: str) -> list[str]:
    """The facility kinds a layer of :data:`BY_FACILITY` holds, in the settings' order (the layer's column
    read once per version of that layer)."""
    store = project.store
    held = by_version(store, ("facility_kinds", kind),
                      lambda: set(store.read(kind, columns=["facility_kind"])["facility_kind"].dropna().astype(str)),
                      version=layer_stamp(store, kind))
    return [k for k in project.settings.facilities if k in held] + sorted(held - set(project.settings.facilities))


def map_layers(project: Project, spec: LayerSpec, *, grid: str | None, lang: str) -> list[dict[str, Any]]:
    """The map layers one catalogue layer becomes, each one meaning with its own legend entry:

    - a case layer: open cases (shown) and closed cases (one click away), each clustered by itself;
    - a layer of :data:`BY_FACILITY`: one layer per facility kind, in that kind's own colour;
    - any other layer: itself.

    Each item: ``title`` (None: the layer's own), ``query`` (URL parameters of ``/api/map``), ``colour``
    (None: the catalogue's), ``show`` (None: as the layer's role says, False: off at start).
    """
    names = set(spec.field_names)
    if "status" in names and "deadline" in names:
        return [{"title": f"{spec.title(lang)} · {text('open_cases', lang)}", "query": {"open": "1"}, "colour": None,
                 "show": None, "values": [s for s in cases.STATUSES if s != cases.CLOSED]},
                {"title": f"{spec.title(lang)} · {text('closed_cases', lang)}", "query": {"closed": "1"},
                 "colour": None, "show": False, "values": [cases.CLOSED], "overdue": False}]
    if spec.kind in BY_FACILITY:
        settings = project.settings
        return [{"title": f"{spec.title(lang)} · {settings.facility_title(k, lang)}", "query": {"facility": k},
                 "colour": CATALOGUE[k].style.color if k in CATALOGUE else None, "show": False}
                for k in facility_kinds_in(project, spec.kind)]
    return [{"title": None, "query": {}, "colour": None, "show": None}]


_INLINE_CACHE: dict[tuple[Any, ...], str] = {}
_INLINE_LOCK = threading.Lock()


def _inline_data(project: Project, spec: LayerSpec, coords: str,
                 bbox: tuple[float, float, float, float] | None) -> str:
    key = (project.store.location, spec.kind, coords, bbox, layer_stamp(project.store, spec.kind))
    with _INLINE_LOCK:
        hit = _INLINE_CACHE.get(key)
    if hit is not None:
        return hit
    frame = project.store.read(spec.kind, bbox=bbox, where=map_where(spec.kind))
    text = feature_collection(frame, spec, coords=coords)
    with _INLINE_LOCK:
        for k in [k for k in _INLINE_CACHE if k[:4] == key[:4]]:
            del _INLINE_CACHE[k]
        _INLINE_CACHE[key] = text
    return text


def layer_stamps(store: Any) -> dict[str, tuple[Any, ...]]:
    """Per layer, a token that changes when the layer is written: its ``last_change`` (the GeoPackage's own
    record, set by every write) and count; the store's version where the backend records no ``last_change``.
    A report to the problems thus keeps the inlined streets and grids of every page, and their search part."""
    info = store_info(store)
    version = None if all(i.last_change for i in info) else store.version()
    return {i.kind: (i.last_change or version, i.count) for i in info}


def layer_stamp(store: Any, kind: str) -> tuple[Any, ...]:
    """:func:`layer_stamps` of one layer (the store's version for a layer not in the store)."""
    stamp = layer_stamps(store).get(kind)
    return stamp if stamp is not None else (store.version(),)


def store_info(store: Any) -> list[Any]:
    """``store.info()``, remembered until the store changes."""
    return by_version(store, ("info",), store.info)


def build_map(project: Project, *, user_label: str | None = None, grid: str | None = None,
              width: str = "100%", links: Sequence[tuple[str, str]] = (), title: str | None = None,
              api_prefix: str = "") -> folium.Map:
    """The map of the whole county, or of one grid (``grid``: its bounds, its open problems).

    Returns a folium map; ``map.get_root().render()`` is the page.
    """
    settings = project.settings
    lang = settings.project.language
    coords = settings.basemap.coords
    store = project.store
    present = {i.kind: i for i in store_info(store)}
    bounds_display = None
    store_bbox = None
    focus = None
    if grid:
        g = store.read("grids", where=eq("code", grid))
        if len(g):
            store_bbox = tuple(g.buffer(150).total_bounds)
            gd = to_display(g, coords)
            bounds_display = tuple(float(v) for v in gd.total_bounds)
            focus = json.loads(shapely.to_geojson(gd.geometry.iloc[0]))
    for outline in ("boundary", "grids"):  # the county's official outline first, else its grids
        if bounds_display is None and outline in present and present[outline].count:
            bounds_display = tuple(float(v) for v in to_display(store.read(outline, columns=[]), coords).total_bounds)
    if bounds_display is None:
        for info in present.values():
            if info.bounds is not None:
                b = gpd.GeoSeries([shapely.box(*info.bounds)], crs=store.crs)
                bounds_display = tuple(float(v) for v in to_display(gpd.GeoDataFrame(geometry=b), coords).total_bounds)
                break
    center = [28.3, 117.2]
    if bounds_display:
        center = [(bounds_display[1] + bounds_display[3]) / 2, (bounds_display[0] + bounds_display[2]) / 2]
    m = SanigridMap(location=center, zoom_start=15, tiles=None, width=width, height="100%",
                    control_scale=False, prefer_canvas=False, max_zoom=settings.basemap.max_zoom or 19)
    t = {k: v for k, v in texts(lang).items() if k in MAP_TEXTS}
    bm = settings.basemap
    if bm.url:
        folium.TileLayer(tiles=bm.url.replace("{tk}", bm.tk), attr=bm.attribution or text("basemap", lang),
                         name=text("basemap", lang),
                         subdomains=bm.subdomains or "abc", max_zoom=bm.max_zoom, overlay=False,
                         control=False).add_to(m)
    opts = {"coords": coords, "t": t, "title": title or settings.project.name, "user": user_label,
            "attribution": settings.project.attribution, "bounds": bounds_display,
            "search_url": f"{api_prefix}/api/search", "links": [list(x) for x in links], "focus": focus,
            "focus_colour": CATALOGUE["grids"].style.color, "crs_note": text(f"coords_{coords}", lang)}
    m.add_child(_Init(opts))
    kinds = sorted((k for k in CATALOGUE if k in present),
                   key=lambda k: (_GEOM_ORDER[geometry_class(CATALOGUE[k])], list(CATALOGUE).index(k)))
    labels = {"facility_kind": {k: settings.facility_title(k, lang) for k in settings.facilities}}
    for kind in kinds:
        spec = CATALOGUE[kind]
        info = present[kind]
        if info.count == 0:
            continue
        show = (spec.role == "input" and not spec.optional and kind not in HIDDEN_AT_START) or (
            kind in SHOWN_AT_START) or (grid is not None and kind == "hotspot_clusters")
        dynamic = spec.big or info.count > settings.web.inline_max_features
        for variant in map_layers(project, spec, grid=grid, lang=lang):
            shown = show if variant["show"] is None else variant["show"]
            query = dict(variant["query"])
            if dynamic or not shown or query:
                if grid and ("grid_code" in spec.field_names):
                    query = {"grid": grid, **query}
                url = f"{api_prefix}/api/map/{kind}" + ("?" + "&".join(f"{k}={v}" for k, v in query.items())
                                                         if query else "")
                cfg = _config(spec, settings, lang, variant, labels, url=url)
                cfg["once"] = not dynamic  # a small layer switched off at start: loaded whole when switched on
                m.add_child(CatalogueLayer(cfg, None, show=shown))
                continue
            data = _inline_data(project, spec, coords, store_bbox)
            cfg = _config(spec, settings, lang, variant, labels)
            by = cfg["style"]["by"]
            if by and "ramp" in by:  # the ramp spans the whole layer, also on a page showing part of it
                values = pd.to_numeric(store.read(kind, columns=[by["field"]])[by["field"]], errors="coerce").dropna()
                if len(values):
                    by["domain"] = [_num(values.min()), _num(values.max())]
                    by["fixed"] = True
            m.add_child(CatalogueLayer(cfg, data, show=show))
    folium.LayerControl(collapsed=False, position="topright").add_to(m)
    m.add_child(_Ready())
    return m


def _config(spec: LayerSpec, settings: Settings, lang: str, variant: dict[str, Any],
            labels: dict[str, dict[str, str]], url: str | None = None) -> dict[str, Any]:
    cfg = layer_config(spec, lang=lang, url=url)
    if variant["title"]:
        cfg["title"] = variant["title"]
    if variant["colour"]:  # one facility kind: its own colour, no colours by value
        st = cfg["style"]
        st["color"] = st["fill_color"] = variant["colour"]
        st["by"] = None
    else:
        cfg["style"]["by"] = by_facility(settings, spec, lang) or cfg["style"]["by"]
    by = cfg["style"]["by"]
    if variant.get("values") is not None and by and "values" in by:  # open or closed cases: their statuses only
        by["values"] = [v for v in by["values"] if v[0] in variant["values"]]
    left_out = MAP_LEAVE_OUT.get(spec.kind)
    if left_out and by and "values" in by and by["field"] == left_out[0]:  # nor in the legend
        by["values"] = [v for v in by["values"] if v[0] not in left_out[1]]
    if variant.get("overdue") is False:
        cfg["overdue"] = False
    cfg["labels"] = {k: v for k, v in labels.items() if k in spec.field_names}
    if spec.kind in NAMED_LINES and spec.label_field:
        cfg["label_zoom"] = settings.web.street_label_zoom
    return cfg


def _num(v: Any) -> float | int:
    return int(v) if float(v).is_integer() else round(float(v), 3)


def page_html(m: folium.Map, *, title: str, extra_html: str = "", lang: str = "zh") -> str:
    """Render a map (plus optional side HTML) as a complete page with a title and language."""
    root = m.get_root()
    assert isinstance(root, Figure)
    root.header.add_child(Element(f"<title>{_escape(title)}</title>"), name="sanigrid_title")
    if extra_html:
        root.html.add_child(Element(extra_html), name="sanigrid_side")
    html = root.render()
    return html.replace("<html>", f'<html lang="{html_lang(lang)}">', 1)


def _escape(text: str) -> str:
    return (str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))

