"""Accounts, passwords and tokens.

Accounts live in a non-spatial table of the store (:data:`USERS_TABLE`), managed from the command
line (``sanigrid user add/list/remove``). Passwords are kept as salted scrypt hashes; API tokens as
SHA-256 hashes (a token is printed once, when made). A password login gives a bearer token that
lasts ``settings.web.session_hours``; it is kept (hashed) in ``sessions.sqlite`` beside the project,
so it survives a restart of the server (:class:`Sessions`).

Roles:

* ``office`` (创卫办): read and write everything;
* ``grid_head`` (网格长): read everything, write only problems of their own grid, see their own
  grid's page;
* ``viewer``: read only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import pandas as pd

from sanigrid.layers.store import Store
from sanigrid.web._errors import Forbidden, Invalid, NotFound, Unauthorized

USERS_TABLE = "sanigrid_users"
SESSIONS_FILE = "sessions.sqlite"  # beside the project's settings
ROLES: tuple[str, ...] = ("office", "grid_head", "viewer")
ROLE_ZH = {"office": "创卫办", "grid_head": "网格长", "viewer": "只读"}
ROLE_NAMES = {"zh": ROLE_ZH, "en": {"office": "campaign office", "grid_head": "grid head", "viewer": "viewer"}}
Role = Literal["office", "grid_head", "viewer"]
_COLUMNS = ("name", "role", "grid_code", "password_hash", "token_hash", "created_at")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class User:
    """An account as the app sees it (no secrets)."""

    name: str
    role: str
    grid_code: str | None = None

    @property
    def can_write(self) -> bool:
        return self.role in ("office", "grid_head")

    def may_write_grid(self, grid_code: str | None) -> bool:
        """Object-level check: may this account change a problem in ``grid_code``?"""
        if self.role == "office":
            return True
        return self.role == "grid_head" and grid_code is not None and grid_code == self.grid_code

    def check_write_grid(self, grid_code: str | None) -> None:
        if not self.can_write:
            raise Forbidden(f"账号「{self.name}」为只读账号, 不能修改数据 (account {self.name} is read-only)")
        if not self.may_write_grid(grid_code):
            raise Forbidden(
                f"网格长「{self.name}」只能处理本网格 {self.grid_code} 的问题, 该问题属于网格 {grid_code or '(无)'} "
                f"(a grid head may only change problems of their own grid)"
            )

    def check_grid_page(self, grid_code: str) -> None:
        if self.role == "grid_head" and grid_code != self.grid_code:
            raise Forbidden(f"网格长「{self.name}」只能查看本网格 {self.grid_code} 的页面")


# ---------------------------------------------------------------- secrets
def hash_password(password: str) -> str:
    """A salted scrypt hash, ``scrypt$n$r$p$salt$hash`` (hex)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode("utf-8"), salt=salt, dklen=32, **_SCRYPT)
    return f"scrypt${_SCRYPT['n']}${_SCRYPT['r']}${_SCRYPT['p']}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches a hash made by :func:`hash_password` (constant time)."""
    if not stored or not stored.startswith("scrypt$"):
        return False
    _, n, r, p, salt, digest = stored.split("$")
    got = hashlib.scrypt(password.encode("utf-8"), salt=bytes.fromhex(salt), dklen=32, n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(got.hex(), digest)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return "sg_" + secrets.token_urlsafe(24)


# ---------------------------------------------------------------- the accounts table
def _table(store: Store) -> pd.DataFrame:
    frame = store.read_table(USERS_TABLE)
    if frame.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in _COLUMNS})
    return frame


def _user(row: pd.Series) -> User:
    grid = row.get("grid_code")
    return User(str(row["name"]), str(row["role"]), None if grid is None or pd.isna(grid) or grid == "" else str(grid))


def list_users(store: Store) -> list[User]:
    """All accounts (no secrets)."""
    return [_user(r) for _, r in _table(store).iterrows()]


def add_user(store: Store, name: str, *, role: str, grid_code: str | None = None,
             password: str | None = None, grids: set[str] | None = None, replace: bool = False) -> str:
    """Create an account; return its API token (shown once, stored only as a hash).

    ``grid_code`` is required for a grid head and must be one of ``grids`` when given.
    ``replace`` overwrites an existing account of that name (new token and password).
    """
    name = name.strip()
    if not name:
        raise Invalid("账号名不能为空 (the account name is empty)")
    if role not in ROLES:
        raise Invalid(f"未知角色 '{role}'; 可选: {', '.join(ROLES)} (office=创卫办, grid_head=网格长, viewer=只读)")
    if role == "grid_head" and not grid_code:
        raise Invalid(f"网格长账号「{name}」需要 --grid 网格编码 (a grid head needs --grid CODE)")
    if grid_code and grids is not None and grid_code not in grids:
        raise Invalid(f"网格 {grid_code} 不存在; 现有网格: {', '.join(sorted(grids)[:20])} …")
    if role != "grid_head":
        grid_code = grid_code or None
    token = new_token()
    row = {"name": name, "role": role, "grid_code": grid_code or "",
           "password_hash": hash_password(password) if password else "",
           "token_hash": hash_token(token), "created_at": datetime.now().isoformat(timespec="seconds")}
    with store.transaction() as tx:
        table = _table(tx)
        if (table["name"] == name).any():
            if not replace:
                raise Invalid(f"账号「{name}」已存在; 先 `sanigrid user remove {name}` (account exists)")
            table = table[table["name"] != name]
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True).astype("object")
        tx.write_table(USERS_TABLE, table)
    return token


def remove_user(store: Store, name: str) -> None:
    with store.transaction() as tx:
        table = _table(tx)
        if not (table["name"] == name).any():
            raise NotFound(f"没有账号「{name}」(no account named {name})")
        tx.write_table(USERS_TABLE, table[table["name"] != name].astype("object"))


def check_password(store: Store, name: str, password: str) -> User:
    """The account if the password is right, else :class:`Unauthorized` (same message either way)."""
    table = _table(store)
    rows = table[table["name"] == name]
    if rows.empty or not verify_password(password, rows.iloc[0]["password_hash"]):
        raise Unauthorized("账号或密码错误 (wrong account name or password)")
    return _user(rows.iloc[0])


def user_for_api_token(store: Store, token: str) -> User | None:
    table = _table(store)
    rows = table[table["token_hash"] == hash_token(token)]
    return None if rows.empty else _user(rows.iloc[0])


class Sessions:
    """Bearer tokens handed out by a password login, valid for ``hours``.

    With ``path`` they are kept (as SHA-256 hashes, with the account's role and grid) in a small SQLite
    file beside the project, so logins survive a restart of the server and are shared by its workers;
    without it, in memory. The file is not the GeoPackage: a login must not rewrite the store.
    """

    def __init__(self, *, hours: float, path: str | Path | None = None):
        self.seconds = hours * 3600
        self.path = Path(path) if path is not None else None
        self._tokens: dict[str, tuple[User, float]] = {}
        self._lock = threading.Lock()
        if self.path is not None:
            with self._db() as con:
                con.execute("CREATE TABLE IF NOT EXISTS sessions (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, "
                            "role TEXT NOT NULL, grid_code TEXT, expires REAL NOT NULL)")

    def _db(self) -> sqlite3.Connection:
        assert self.path is not None
        return sqlite3.connect(self.path, timeout=30)

    def issue(self, user: User) -> str:
        token = new_token()
        now = time.time()
        if self.path is None:
            with self._lock:
                self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
                self._tokens[hash_token(token)] = (user, now + self.seconds)
            return token
        with self._db() as con:
            con.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            con.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                        (hash_token(token), user.name, user.role, user.grid_code, now + self.seconds))
        return token

    def get(self, token: str) -> User | None:
        if self.path is None:
            with self._lock:
                hit = self._tokens.get(hash_token(token))
            if hit is None or hit[1] < time.time():
                return None
            return hit[0]
        with self._db() as con:
            row = con.execute("SELECT name, role, grid_code, expires FROM sessions WHERE token_hash = ?",
                              (hash_token(token),)).fetchone()
        if row is None or row[3] < time.time():
            return None
        return User(row[0], row[1], row[2])

    def revoke(self, token: str) -> None:
        if self.path is None:
            with self._lock:
                self._tokens.pop(hash_token(token), None)
            return
        with self._db() as con:
            con.execute("DELETE FROM sessions WHERE token_hash = ?", (hash_token(token),))

    def revoke_user(self, name: str) -> None:
        """End every login of an account (it was removed or changed)."""
        if self.path is None:
            with self._lock:
                self._tokens = {k: v for k, v in self._tokens.items() if v[0].name != name}
            return
        with self._db() as con:
            con.execute("DELETE FROM sessions WHERE name = ?", (name,))
