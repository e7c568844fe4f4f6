"""Accounts, passwords and tokens.

Accounts live in ``accounts.sqlite`` beside the project's settings and ``sessions.sqlite`` (mode
0600), not in the GeoPackage that users open in QGIS and share; accounts an older version kept in the
store's ``sanigrid_users`` table move there on first use. They are managed from the command line
(``sanigrid user add/list/remove``). Passwords are kept as salted scrypt hashes; API tokens as
SHA-256 hashes (a token is printed once, when made). A password login gives a bearer token that
lasts ``settings.web.session_hours``; it is kept (hashed) in ``sessions.sqlite`` beside the project,
so it survives a restart of the server (:class:`Sessions`).

Roles (:data:`layers.cases.ROLES`; what each may do to a case is the table in :mod:`layers.cases`):

* ``office`` (创卫办): read and write everything;
* ``grid_head`` (网格长): read everything, report, dispatch and handle the problems of their own
  grid (not verify or close them), see their own grid's page;
* ``inspector`` (监督员): read everything, report anywhere, verify handed-in work (核查 → 结案 or 返工);
* ``viewer``: read only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from sanigrid.layers import cases
from sanigrid.layers.cases import ROLE_NAMES, ROLE_ZH, ROLES, Role  # noqa: F401  (re-exported)
from sanigrid.layers.project import Project
from sanigrid.layers.settings import Settings
from sanigrid.layers.store import GeoPackageStore, Store
from sanigrid.layers.text import clean_text
from sanigrid.web._errors import Forbidden, Invalid, NotFound, TooManyAttempts, Unauthorized

log = logging.getLogger(__name__)

USERS_TABLE = "sanigrid_users"  # where accounts were kept before (inside the GeoPackage): migrated away
SESSIONS_FILE = "sessions.sqlite"  # beside the project's settings
ACCOUNTS_FILE = "accounts.sqlite"  # beside it, mode 0600: never inside the store that users share
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


@dataclass(frozen=True)
class User:
    """An account as the app sees it (no secrets)."""

    name: str
    role: str
    grid_code: str | None = None

    @property
    def can_write(self) -> bool:
        """Whether the account may change anything at all (see :func:`layers.cases.can_act`)."""
        return cases.can_act(self.role)

    def owns(self, grid_code: str | None) -> bool:
        """Whether ``grid_code`` is the account's own grid."""
        return grid_code is not None and self.grid_code is not None and str(grid_code) == self.grid_code

    def may(self, action: str, grid_code: str | None) -> bool:
        """Object-level check: may this account do ``action`` (a key of :data:`layers.cases.ACTIONS`)
        to a problem in ``grid_code``?"""
        return cases.may(self.role, action, own_grid=self.owns(grid_code))

    def next_steps(self, status: str, grid_code: str | None) -> tuple[str, ...]:
        """The statuses this account may move a problem of ``grid_code`` in ``status`` to."""
        return cases.next_steps(status, role=self.role, own_grid=self.owns(grid_code))

    def check(self, action: str, grid_code: str | None) -> None:
        """:class:`Forbidden` unless the account may do ``action`` to a problem in ``grid_code``."""
        if not self.can_write:
            raise Forbidden(f"账号「{self.name}」为只读账号, 不能修改数据 (account {self.name} is read-only)")
        if not self.may(action, grid_code):
            who = f"{ROLE_ZH.get(self.role, self.role)}「{self.name}」"
            if cases.ACTIONS[action].get(self.role):  # allowed in its own grid only
                raise Forbidden(f"{who}只能处理本网格 {self.grid_code} 的问题, 该问题属于网格 {grid_code or '(无)'} "
                                f"({action}: only problems of their own grid)")
            raise Forbidden(f"{who}不能执行此操作 ({action}: not for role {self.role})")

    def check_grid_page(self, grid_code: str) -> None:
        """The read rule for a grid's page (see :mod:`sanigrid.web.access`)."""
        from sanigrid.web.access import check_grid_read

        check_grid_read(self, grid_code)


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


# ---------------------------------------------------------------- the accounts file
def accounts_path(owner: Project | Store | str | Path) -> Path:
    """The accounts file of a project: ``accounts.sqlite`` beside ``sessions.sqlite`` (not the store)."""
    if isinstance(owner, Project):
        return owner.root / ACCOUNTS_FILE
    if isinstance(owner, str | Path):
        return Path(owner) / ACCOUNTS_FILE
    if isinstance(owner, GeoPackageStore):
        return Path(owner.location).parent / ACCOUNTS_FILE
    raise Invalid(f"{owner.location}: accounts live beside the project's settings; pass the project")


def _private_file(path: Path) -> None:
    """Create ``path`` readable and writable by its owner only (mode 0600), or tighten it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
    os.chmod(path, 0o600)


_MIGRATED: set[str] = set()
_MIGRATE_LOCK = threading.Lock()


def _connect(owner: Project | Store | str | Path) -> sqlite3.Connection:
    """The accounts database, made on first use (mode 0600) and filled with any accounts still kept in the
    store's old ``sanigrid_users`` table (which is then dropped from the shared GeoPackage)."""
    path = accounts_path(owner)
    key = str(path.absolute())
    if key not in _MIGRATED or not path.exists():
        with _MIGRATE_LOCK:
            _private_file(path)
            con = sqlite3.connect(path, timeout=30)
            with con:
                con.execute("CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, role TEXT NOT NULL, "
                            "grid_code TEXT, password_hash TEXT, token_hash TEXT UNIQUE, created_at TEXT, "
                            "stamp TEXT NOT NULL)")
            con.close()
            store = owner.store if isinstance(owner, Project) else owner if not isinstance(owner, str | Path) else None
            if store is not None:
                _migrate(store, path)
            _MIGRATED.add(key)
    return sqlite3.connect(path, timeout=30)


def _migrate(store: Store, path: Path) -> None:
    """Move accounts from the GeoPackage table :data:`USERS_TABLE` into the accounts file (once)."""
    try:
        old = store.read_table(USERS_TABLE)
    except Exception:  # no such table: nothing to move
        return
    if old.empty and not _store_has_table(store):
        return
    con = sqlite3.connect(path, timeout=30)
    with con:
        for _, r in old.iterrows():
            con.execute("INSERT OR IGNORE INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (str(r["name"]), str(r["role"]), _text(r.get("grid_code")), _text(r.get("password_hash")),
                         _text(r.get("token_hash")), _text(r.get("created_at")), secrets.token_hex(8)))
    con.close()
    _drop_store_table(store)
    log.info("moved %d account(s) out of %s into %s", len(old), store.location, path)


def _store_has_table(store: Store) -> bool:
    if isinstance(store, GeoPackageStore):
        con = sqlite3.connect(store.location)
        try:
            return con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (USERS_TABLE,)).fetchone() is not None
        finally:
            con.close()
    return False


def _drop_store_table(store: Store) -> None:
    """Remove the old accounts table (and its metadata rows) from a GeoPackage store, then VACUUM so the
    freed pages no longer hold the hashes."""
    if not isinstance(store, GeoPackageStore):
        return
    with store.transaction() as tx:
        con = tx._tx_con()  # the transaction's own connection (the store writes in place)
        con.execute(f'DROP TABLE IF EXISTS "{USERS_TABLE}"')
        for meta in ("gpkg_contents", "sanigrid_layers"):
            if con.execute("SELECT 1 FROM sqlite_master WHERE name = ?", (meta,)).fetchone():
                cols = [c[1] for c in con.execute(f'PRAGMA table_info("{meta}")')]
                key = "table_name" if "table_name" in cols else "kind" if "kind" in cols else None
                if key:
                    con.execute(f'DELETE FROM "{meta}" WHERE "{key}" = ?', (USERS_TABLE,))
    try:
        con = sqlite3.connect(store.location, timeout=30)
        try:
            con.execute("VACUUM")
            # into the file itself now: other connections kept open (a server's) leave the log unfolded
            con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            con.close()
    except sqlite3.OperationalError as e:  # another program holds the file: the table is gone all the same
        log.warning("%s: could not VACUUM after moving the accounts out (%s)", store.location, e)


def _text(v: object) -> str | None:
    return None if v is None or (isinstance(v, float) and pd.isna(v)) or v == "" else str(v)


def _user(row: tuple) -> User:
    name, role, grid = row[0], row[1], row[2]
    return User(str(name), str(role), None if not grid else str(grid))


def list_users(owner: Project | Store | str | Path) -> list[User]:
    """All accounts (no secrets)."""
    con = _connect(owner)
    try:
        return [_user(r) for r in con.execute("SELECT name, role, grid_code FROM accounts ORDER BY rowid")]
    finally:
        con.close()


def get_user(owner: Project | Store | str | Path, name: str) -> tuple[User, str] | None:
    """The account called ``name`` as it is now, with its stamp (changes with role, grid or password)."""
    con = _connect(owner)
    try:
        row = con.execute("SELECT name, role, grid_code, stamp FROM accounts WHERE name = ?", (name,)).fetchone()
    finally:
        con.close()
    return None if row is None else (_user(row), str(row[3]))


def check_password_strength(password: str, *, min_length: int) -> None:
    """:class:`Invalid` for a password shorter than ``min_length`` characters."""
    if len(password) < min_length:
        raise Invalid(f"密码至少 {min_length} 个字符 (password shorter than {min_length} characters; "
                      "[web] password_min_length in sanigrid.toml); 省略 --password 可自动生成强密码")


def add_user(owner: Project | Store | str | Path, name: str, *, role: str, grid_code: str | None = None,
             password: str | None = None, grids: set[str] | None = None, replace: bool = False,
             min_password_length: int | None = None) -> str:
    """Create an account; return its API token (shown once, stored only as a hash).

    ``grid_code`` is required for a grid head and must be one of ``grids`` when given.
    ``replace`` overwrites an existing account of that name (new token and password) and ends all its
    logins. A password shorter than ``min_password_length`` (default: the project's
    ``web.password_min_length``) is refused.
    """
    name = clean_text(name).strip()
    if not name:
        raise Invalid("账号名不能为空 (the account name is empty)")
    if role not in ROLES:
        raise Invalid(f"未知角色 '{role}'; 可选: " + ", ".join(f"{r}={ROLE_ZH[r]}" for r in ROLES) + " (unknown role)")
    if role == "grid_head" and not grid_code:
        raise Invalid(f"网格长账号「{name}」需要 --grid 网格编码 (a grid head needs --grid CODE)")
    if grid_code and grids is not None and grid_code not in grids:
        raise Invalid(f"网格 {grid_code} 不存在; 现有网格: {', '.join(sorted(grids)[:20])} …")
    if password is not None:
        if min_password_length is None:
            min_password_length = (owner.settings if isinstance(owner, Project)
                                   else Settings()).web.password_min_length
        check_password_strength(password, min_length=min_password_length)
    if role != "grid_head":
        grid_code = grid_code or None
    token = new_token()
    row = (name, role, grid_code or None, hash_password(password) if password else None, hash_token(token),
           datetime.now().isoformat(timespec="seconds"), secrets.token_hex(8))
    con = _connect(owner)
    try:
        with con:
            exists = con.execute("SELECT 1 FROM accounts WHERE name = ?", (name,)).fetchone()
            if exists and not replace:
                raise Invalid(f"账号「{name}」已存在; 先 `sanigrid user remove {name}` 或加 --replace (account exists)")
            con.execute("DELETE FROM accounts WHERE name = ?", (name,))
            con.execute("INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?)", row)
    finally:
        con.close()
    if exists:
        _revoke_logins(owner, name)
    return token


def _revoke_logins(owner: Project | Store | str | Path, name: str) -> None:
    """End every login of ``name`` recorded in the project's sessions file (a running server's too)."""
    path = accounts_path(owner).with_name(SESSIONS_FILE)
    if path.exists():
        Sessions(hours=1, path=path).revoke_user(name)


def remove_user(owner: Project | Store | str | Path, name: str) -> None:
    """Delete an account and end its logins."""
    con = _connect(owner)
    try:
        with con:
            if con.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount == 0:
                raise NotFound(f"没有账号「{name}」(no account named {name})")
    finally:
        con.close()
    _revoke_logins(owner, name)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash of a random password, verified against when the account does not exist (equal timing)."""
    if not _DUMMY:
        _DUMMY.append(hash_password(secrets.token_urlsafe(16)))
    return _DUMMY[0]


def check_password(owner: Project | Store | str | Path, name: str, password: str) -> User:
    """The account if the password is right, else :class:`Unauthorized` (same message and about the same
    time either way: an unknown name is checked against a dummy hash)."""
    con = _connect(owner)
    try:
        row = con.execute("SELECT name, role, grid_code, password_hash FROM accounts WHERE name = ?",
                          (name,)).fetchone()
    finally:
        con.close()
    stored = row[3] if row is not None and row[3] else _dummy_hash()
    ok = verify_password(password, stored)
    if row is None or not row[3] or not ok:
        raise Unauthorized("账号或密码错误 (wrong account name or password)")
    return _user(row)


class LoginThrottle:
    """Failed logins counted per account and per client address over a sliding window.

    Once an account has ``per_account`` failures (or an address ``per_address``) within ``window_s``,
    further tries are refused with :class:`TooManyAttempts` before the password is even checked, until
    the oldest failure leaves the window. A successful login clears the account's count (not the
    address's). Counts live in the server process (one per running app).
    """

    def __init__(self, *, per_account: int, per_address: int, window_s: float):
        self.per_account, self.per_address, self.window_s = per_account, per_address, window_s
        self._fails: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        while q and q[0] <= now - self.window_s:
            q.popleft()
        if not q:
            del self._fails[key]
        return q

    def check(self, name: str, address: str) -> None:
        """:class:`TooManyAttempts` if this account or address is over its limit now; else the try is
        counted as a failure at once (so that concurrent tries cannot all pass the check), to be taken
        back by :meth:`succeeded`."""
        now = time.monotonic()
        with self._lock:
            for key, limit, what in ((f"user:{name}", self.per_account, "账号"), (f"addr:{address}",
                                                                               self.per_address, "地址")):
                q = self._recent(key, now)
                if len(q) >= limit:
                    wait = max(1, int(q[len(q) - limit] + self.window_s - now + 0.999))
                    raise TooManyAttempts(f"登录失败次数过多 (该{what}), 请 {wait} 秒后再试 "
                                          f"(too many failed logins; retry after {wait} s)", wait)
            for key in (f"user:{name}", f"addr:{address}"):
                self._fails.setdefault(key, deque()).append(now)

    def succeeded(self, name: str, address: str) -> None:
        """The password was right: clear the account's count and take back this try from the address's."""
        with self._lock:
            self._fails.pop(f"user:{name}", None)
            q = self._fails.get(f"addr:{address}")
            if q:
                q.pop()


def login(project: Project, sessions: Sessions, throttle: LoginThrottle | None, name: str, password: str,
          *, address: str = "") -> tuple[User, str]:
    """Check a password login (throttled) and open a session: ``(account, token)``."""
    if throttle is not None:
        throttle.check(name, address)
    user = check_password(project, name, password)  # a failure stays counted by check()
    if throttle is not None:
        throttle.succeeded(name, address)
    now = get_user(project, user.name)
    return user, sessions.issue(user, stamp=now[1] if now else "")


def user_for_api_token(owner: Project | Store | str | Path, token: str) -> User | None:
    """The account of an API token, as it is now."""
    con = _connect(owner)
    try:
        row = con.execute("SELECT name, role, grid_code FROM accounts WHERE token_hash = ?",
                          (hash_token(token),)).fetchone()
    finally:
        con.close()
    return None if row is None else _user(row)


class Sessions:
    """Bearer tokens handed out by a password login, valid for ``hours``.

    With ``path`` they are kept (as SHA-256 hashes, with the account's name and its stamp at login) in a
    small SQLite file beside the project (mode 0600), so logins survive a restart of the server and are
    shared by its workers; without it, in memory. The file is not the GeoPackage: a login must not
    rewrite the store. A session names its account only: each request looks the account up as it is
    now, and a session whose stamp no longer matches (role, grid or password changed) is dead.
    """

    def __init__(self, *, hours: float, path: str | Path | None = None):
        self.seconds = hours * 3600
        self.path = Path(path) if path is not None else None
        self._tokens: dict[str, tuple[User, float, str]] = {}
        self._lock = threading.Lock()
        if self.path is not None:
            _private_file(self.path)
            with self._db() as con:
                con.execute("CREATE TABLE IF NOT EXISTS sessions (token_hash TEXT PRIMARY KEY, name TEXT NOT NULL, "
                            "role TEXT NOT NULL, grid_code TEXT, expires REAL NOT NULL, stamp TEXT)")
                cols = {c[1] for c in con.execute("PRAGMA table_info(sessions)")}
                if "stamp" not in cols:  # a file from before stamps: its sessions cannot be checked, end them
                    con.execute("DELETE FROM sessions")
                    con.execute("ALTER TABLE sessions ADD COLUMN stamp TEXT")

    def _db(self) -> sqlite3.Connection:
        assert self.path is not None
        return sqlite3.connect(self.path, timeout=30)

    def issue(self, user: User, *, stamp: str = "") -> str:
        """A new login token for ``user``, tied to the account's ``stamp`` (see :func:`get_user`)."""
        token = new_token()
        now = time.time()
        if self.path is None:
            with self._lock:
                self._tokens = {k: v for k, v in self._tokens.items() if v[1] > now}
                self._tokens[hash_token(token)] = (user, now + self.seconds, stamp)
            return token
        with self._db() as con:
            con.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            con.execute("INSERT INTO sessions (token_hash, name, role, grid_code, expires, stamp) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (hash_token(token), user.name, user.role, user.grid_code, now + self.seconds, stamp))
        return token

    def lookup(self, token: str) -> tuple[User, str] | None:
        """The account recorded at login and its stamp then, if the token is live."""
        if self.path is None:
            with self._lock:
                hit = self._tokens.get(hash_token(token))
            if hit is None or hit[1] < time.time():
                return None
            return hit[0], hit[2]
        with self._db() as con:
            row = con.execute("SELECT name, role, grid_code, expires, stamp FROM sessions WHERE token_hash = ?",
                              (hash_token(token),)).fetchone()
        if row is None or row[3] < time.time():
            return None
        return User(row[0], row[1], row[2]), str(row[4] or "")

    def get(self, token: str) -> User | None:
        """The account as recorded at login (use :func:`session_user` for the account as it is now)."""
        hit = self.lookup(token)
        return None if hit is None else hit[0]

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


def session_user(owner: Project | Store | str | Path, sessions: Sessions, token: str) -> User | None:
    """The account behind a login token as it is now; None when the token is dead, the account gone or
    changed since the login (its stamp differs)."""
    hit = sessions.lookup(token)
    if hit is None:
        return None
    now = get_user(owner, hit[0].name)
    if now is None or now[1] != hit[1]:
        sessions.revoke(token)
        return None
    return now[0]
