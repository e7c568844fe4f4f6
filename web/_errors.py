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


#: the body of every error response (4xx): ``detail`` says what is wrong and how to fix it; a 422 from
#: request validation also lists ``errors`` (location, message, type)
ERROR_BODY_SCHEMA = {
    "title": "ErrorBody", "type": "object", "required": ["detail"],
    "properties": {
        "detail": {"type": "string", "description": "what is wrong and what to do (Chinese, English in brackets)"},
        "errors": {"type": "array", "items": {"type": "object", "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "msg": {"type": "string"}, "type": {"type": "string"}}}},
    },
}
ERROR_TEXT = {"400": "请求有误 (bad request)", "401": "未登录或令牌无效 (not logged in / invalid token)",
              "403": "无权限: 角色或网格不符 (forbidden for this role or grid)",
              "404": "不存在 (no such layer, grid, case or file)",
              "409": "与当前状态冲突, 如不合法的状态变更 (conflict)",
              "413": "请求过大 (request body too large)", "422": "数据有误 (invalid data)",
              "429": "登录失败次数过多, 见 Retry-After (too many failed logins)"}
