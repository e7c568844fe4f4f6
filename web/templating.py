"""Jinja2 templates of the web pages (``web/templates/``), with the zh/en texts of :mod:`web.texts`.

``render("login.html", lang="zh", message=…)`` returns the page as text. Every template gets ``t`` (the
texts in the page's language) and ``html_lang``; autoescaping is on, so values are escaped unless they
are marked safe. The ``fill`` filter puts values into a text's ``{name}`` slots after escaping the text.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from sanigrid.web.texts import html_lang, texts


def _fill(text: str, **values: Any) -> Markup:
    """``text`` with its ``{name}`` slots filled; the text and plain values escaped, Markup values kept."""
    return Markup(escape(text)).format(**values)


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(loader=PackageLoader("sanigrid.web", "templates"), autoescape=select_autoescape(("html",)),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False)
    env.filters["fill"] = _fill
    return env


def render(template: str, /, *, lang: str, **context: Any) -> str:
    """The page ``template`` (a file under ``web/templates/``) rendered in ``lang`` with ``context``."""
    return environment().get_template(template).render(t=texts(lang), lang=lang, html_lang=html_lang(lang), **context)
