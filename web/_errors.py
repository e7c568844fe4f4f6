"""Errors raised by the web layer (turned into 4xx responses by ``web.app``)."""

from __future__ import annotations

from sanigrid.layers._errors import SanigridError


class WebError(SanigridError):
    """A request the app cannot serve; the message says why."""


class NotFound(WebError):
    """No such layer, grid, problem or account (404)."""


class Forbidden(WebError):
    """The account may not do this (403)."""


class Unauthorized(WebError):
    """No valid token or password (401)."""


class Conflict(WebError):
    """The request clashes with the current state, e.g. an illegal status change (409)."""


class Invalid(WebError):
    """The request's data are wrong: outside the county, unknown category (422)."""


class TooManyAttempts(WebError):
    """Too many failed logins for this account or address lately (429, with ``retry_after`` seconds)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message)
        self.retry_after = retry_after
