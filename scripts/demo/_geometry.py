"""Geometry helpers of the demo generator: random points along lines, snapping, spacing, addresses.

Everything in the demo CRS (metres); arrays of shapely geometries in, numpy arrays out.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import shapely

from sanigrid.scripts.demo.facts import GIVEN, SURNAMES


def along(lines: np.ndarray, rng: np.random.Generator, n: int, weights: np.ndarray | None = None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` random points along ``lines`` (length-weighted × weights): (x, y, line index)."""
    length = shapely.length(lines)
    w = length if weights is None else length * weights
    idx = rng.choice(len(lines), size=n, p=w / w.sum())
    d = rng.random(n) * length[idx]
    pts = shapely.line_interpolate_point(lines[idx], d)
    return shapely.get_x(pts), shapely.get_y(pts), idx


def beside(lines: np.ndarray, rng: np.random.Generator, n: int, *, offset_m: float | np.ndarray,
            inside: shapely.Geometry | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random points along ``lines``, moved ``offset_m`` to the side (kept only ``inside``)."""
    x, y, idx = along(lines, rng, n)
    nx, ny = normal_at(lines, idx, x, y)
    x, y = x + nx * offset_m, y + ny * offset_m
    if inside is None:
        return x, y
    ok = within(x, y, inside)
    return x[ok], y[ok]


def normal_at(lines: np.ndarray, idx: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit normal of ``lines[idx]`` at the points (x, y) on them."""
    d = shapely.line_locate_point(lines[idx], shapely.points(x, y))
    ln = shapely.length(lines[idx])
    a = shapely.line_interpolate_point(lines[idx], np.clip(d - 2, 0, ln))
    b = shapely.line_interpolate_point(lines[idx], np.clip(d + 2, 0, ln))
    tx, ty = shapely.get_x(b) - shapely.get_x(a), shapely.get_y(b) - shapely.get_y(a)
    norm = np.hypot(tx, ty)
    norm[norm == 0] = 1
    return -ty / norm, tx / norm


def insert_vertices(line: shapely.LineString, pts: list[shapely.Point]) -> shapely.LineString:
    """``line`` with the points (lying on it) inserted as vertices, so networks node there."""
    coords = np.asarray(line.coords)
    seg = np.hypot(*np.diff(coords[:, :2], axis=0).T)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    new = np.array([[p.x, p.y] for p in pts])
    dist = shapely.line_locate_point(line, shapely.points(new))
    allc = np.vstack([coords[:, :2], new])
    alld = np.concatenate([cum, dist])
    order = np.argsort(alld, kind="stable")
    allc, alld = allc[order], alld[order]
    keep = np.concatenate([[True], np.diff(alld) > 1e-6])
    return shapely.LineString(allc[keep])


def greedy_spaced(x: np.ndarray, y: np.ndarray, spacing: np.ndarray, limit: int) -> np.ndarray:
    """Indices of candidates kept in order so that each is ≥ its spacing from every kept one."""
    kept: list[int] = []
    kx = np.empty(limit)
    ky = np.empty(limit)
    for i in range(len(x)):
        n = len(kept)
        if n and np.min(np.hypot(kx[:n] - x[i], ky[:n] - y[i])) < spacing[i]:
            continue
        kx[n], ky[n] = x[i], y[i]
        kept.append(i)
        if len(kept) >= limit:
            break
    return np.array(kept, dtype=int)


def person_names(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.char.add(rng.choice(list(SURNAMES), n), rng.choice(list(GIVEN), n))


def nearest_named(x: np.ndarray, y: np.ndarray, streets: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Name of the nearest named street and a house number along it (odd/even by side)."""
    named = streets[streets["name"].notna()].reset_index(drop=True)
    pts = shapely.points(x, y)
    tree = shapely.STRtree(named.geometry.to_numpy())
    idx = tree.query_nearest(pts, all_matches=False, return_distance=False)
    j = np.empty(len(pts), dtype=int)
    j[idx[0]] = idx[1]
    d = shapely.line_locate_point(named.geometry.to_numpy()[j], pts)
    number = (np.floor(d / 15).astype(int) * 2 + 1 + (np.arange(len(pts)) % 2)).astype(str)
    return named["name"].to_numpy()[j].astype(str), number


def address(x: np.ndarray, y: np.ndarray, streets: gpd.GeoDataFrame) -> np.ndarray:
    name, number = nearest_named(x, y, streets)
    return np.char.add(np.char.add(name, number), "号")


def point_of(points: gpd.GeoDataFrame, name: str, fallback: tuple[float, float]) -> np.ndarray:
    hit = points[points["name"] == name]
    if len(hit):
        g = hit.geometry.iloc[0]
        return np.array([g.x, g.y])
    return np.array(fallback, dtype=float)


def snap(xy: np.ndarray, lines: np.ndarray, offset_m: float = 0.0) -> np.ndarray:
    """Points moved onto the nearest of ``lines`` (then ``offset_m`` off it, to the side they were)."""
    xy = np.atleast_2d(xy)
    pts = shapely.points(xy)
    tree = shapely.STRtree(lines)
    idx = tree.query_nearest(pts, all_matches=False, return_distance=False)
    j = np.empty(len(pts), dtype=int)
    j[idx[0]] = idx[1]
    on = shapely.line_interpolate_point(lines[j], shapely.line_locate_point(lines[j], pts))
    ox, oy = shapely.get_x(on), shapely.get_y(on)
    if offset_m:
        dx, dy = xy[:, 0] - ox, xy[:, 1] - oy
        dn = np.hypot(dx, dy)
        nx, ny = normal_at(lines, j, ox, oy)
        sx = np.where(dn > 0, dx / np.where(dn > 0, dn, 1), nx)
        sy = np.where(dn > 0, dy / np.where(dn > 0, dn, 1), ny)
        ox, oy = ox + sx * offset_m, oy + sy * offset_m
    return np.column_stack([ox, oy])


def within(x: np.ndarray, y: np.ndarray, area: shapely.Geometry) -> np.ndarray:
    shapely.prepare(area)
    return shapely.contains_xy(area, x, y)

