"""The one read rule: who may read which cases.

- A grid head (网格长) reads and writes the cases of their own grid only: lists, case pages, map
  features and clusters, popups, exports, prints, photos and search hits.
- The county's analysis layers (ranking, coverage, clusters, Gi*, …) and the base layers (grids,
  streets, facilities) are readable by every role.
- Viewers and the campaign office read everything.

Every route that returns cases calls :func:`case_scope` (for a list or a feed) or
:func:`check_case_read` (for one case) instead of testing roles itself.
"""

from __future__ import annotations

from sanigrid.web._errors import Forbidden
from sanigrid.web.auth import User

#: layers whose rows are cases, each carrying the ``grid_code`` it belongs to
CASE_LAYERS: frozenset[str] = frozenset({"problems"})


def own_grid_only(user: User) -> str | None:
    """The one grid whose cases ``user`` may read, or None when the account reads every grid's."""
    if user.role == "grid_head":
        return user.grid_code or "-"  # a grid head without a grid reads no grid's cases
    return None


def case_scope(user: User, kind: str, grid: str | None = None) -> str | None:
    """The grid filter to apply when ``user`` reads layer ``kind`` asking for ``grid`` (None: all grids).

    For a case layer a grid head always gets their own grid; asking for another grid is
    :class:`Forbidden` (403). Other layers and other roles keep the filter they asked for.
    """
    if kind not in CASE_LAYERS:
        return grid
    own = own_grid_only(user)
    if own is None:
        return grid
    if grid and grid != own:
        raise Forbidden(f"网格长「{user.name}」只能查看本网格 {own} 的问题, 不能查看网格 {grid} 的 "
                        "(a grid head reads the cases of their own grid only)")
    return own


def may_read_case(user: User, grid_code: str | None) -> bool:
    """Whether ``user`` may read one case of ``grid_code``."""
    own = own_grid_only(user)
    return own is None or (grid_code is not None and str(grid_code) == own)


def check_case_read(user: User, grid_code: str | None) -> None:
    """:class:`Forbidden` unless ``user`` may read a case of ``grid_code`` (a case page, popup, photo)."""
    if not may_read_case(user, grid_code):
        raise Forbidden(f"网格长「{user.name}」只能查看本网格 {user.grid_code} 的问题, 该问题属于网格 "
                        f"{grid_code or '(无)'} (a grid head reads the cases of their own grid only)")


def check_grid_read(user: User, grid_code: str) -> None:
    """:class:`Forbidden` unless ``user`` may read the cases of the whole grid ``grid_code`` (its page,
    open list, 责任清单 and printed map)."""
    own = own_grid_only(user)
    if own is not None and grid_code != own:
        raise Forbidden(f"网格长「{user.name}」只能查看本网格 {own} 的页面与问题 "
                        "(a grid head reads the cases of their own grid only)")
