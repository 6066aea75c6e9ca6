"""Named users with roles, their passwords and API tokens, and web sessions.

Roles and what each may do are data (:data:`PERMISSIONS`); ``admin`` may do everything.
Passwords are hashed with Argon2id (argon2-cffi, its default parameters). API tokens and
session ids are 256-bit random strings shown once; only their SHA-256 is stored (a
random token needs no slow hash, and a hash lets the token be looked up). A disabled
user's tokens and sessions stop working at once. The bootstrap admin is the
``ZONING_ADMIN_TOKEN`` (``api.auth``), not a row here.

The tables are the store's work tables (``geo.store.work``: the GeoPackage file or the
PostGIS schema, the same semantics in both). Every change goes to the store's audit log
(who, role, when, what, from where) in the same transaction as the change itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import asdict, dataclass

from geo.store import AuditEvent, StoreBackend

ROLES = ("viewer", "editor", "reviewer", "admin")
# Who may do what. Writing imports and rollbacks stay with admins: they replace whole
# layers without the second pair of eyes a workbench draft gets from its reviewer.
PERMISSIONS: dict[str, frozenset[str]] = {
    "workbench.read": frozenset({"viewer", "editor", "reviewer", "admin"}),
    "sheet.upload": frozenset({"editor", "admin"}),
    "draft.write": frozenset({"editor", "admin"}),
    "draft.review": frozenset({"reviewer", "admin"}),
    "versions.read": frozenset({"editor", "reviewer", "admin"}),
    "import.preview": frozenset({"editor", "reviewer", "admin"}),
    "import.write": frozenset({"admin"}),
    "rollback": frozenset({"admin"}),
    "audit.read": frozenset({"admin"}),
    "sites.read": frozenset({"editor", "reviewer", "admin"}),  # registered sites and the impact of a version
    "sites.write": frozenset({"editor", "admin"}),
    "users.manage": frozenset({"admin"}),
}
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{1,39}$")
TOKEN_PREFIX = "zt_"
SESSION_HOURS = 12
MIN_PASSWORD = 10

class UserError(ValueError):
    """A bad user name, role or password, an unknown user, or a duplicate."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    disabled: bool
    created_at: str
    created_by: str
    has_password: bool
    has_token: bool

    def may(self, permission: str) -> bool:
        return not self.disabled and allowed(self.role, permission)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Session:
    id: str  # the cookie value (shown once)
    user: User
    csrf: str
    expires_at: str


def allowed(role: str, permission: str) -> bool:
    if permission not in PERMISSIONS:
        raise KeyError(f"unknown permission {permission!r}")
    return role == "admin" or role in PERMISSIONS[permission]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _hasher():
    from argon2 import PasswordHasher

    return PasswordHasher()


def _user(row) -> User:
    return User(name=row["name"], role=row["role"], disabled=bool(row["disabled"]), created_at=row["created_at"],
                created_by=row["created_by"], has_password=row["password_hash"] is not None,
                has_token=row["token_sha256"] is not None)


def _check(name: str, role: str | None = None, password: str | None = None) -> None:
    if not NAME_RE.match(name):
        raise UserError(f"user name {name!r} must be 2-40 characters of a-z, 0-9, '.', '_' or '-', "
                        "starting with a letter or digit")
    if role is not None and role not in ROLES:
        raise UserError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if password is not None and len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")


class Users:
    """The user table of one store. ``actor``/``actor_role``/``client`` name who makes a
    change, for the audit log."""

    def __init__(self, store: StoreBackend):
        self.store = store
        self.tables = store.work()

    @staticmethod
    def _audit(tx, action: str, target: str, actor: str, actor_role: str | None, client: str | None,
               **detail) -> None:
        tx.audit(AuditEvent(actor=actor, role=actor_role, action=action, target=target, detail=detail,
                            client=client))

    # -- reading -------------------------------------------------------------------------
    def list(self) -> list[User]:
        with self.tables.reading() as db:
            return [] if db is None else [_user(r) for r in db.execute("SELECT * FROM users ORDER BY name")]

    def get(self, name: str) -> User:
        with self.tables.reading() as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone() if db else None
        if row is None:
            raise UserError(f"there is no user {name!r}")
        return _user(row)

    def any(self) -> bool:
        with self.tables.reading() as db:
            return db is not None and db.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None

    # -- changing ------------------------------------------------------------------------
    def add(self, name: str, role: str, *, password: str | None = None, token: bool = True,
            actor: str, actor_role: str | None = "admin", client: str | None = None) -> tuple[User, str | None]:
        """Add a user; returns the user and their new API token (None when ``token`` is False)."""
        _check(name, role, password)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32) if token else None
        pw_hash = _hasher().hash(password) if password is not None else None
        with self.tables.writing() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(f"user {name!r} exists already")
            db.execute("INSERT INTO users VALUES (?, ?, ?, ?, 0, ?, ?)",
                       (name, role, pw_hash, _sha(secret) if secret else None, _now().isoformat(), actor))
            self._audit(db, "user.add", name, actor, actor_role, client, role=role, password=password is not None,
                        token=token)
        return self.get(name), secret

    def _update(self, name: str, statements: list[tuple[str, tuple]], action: str, actor: str,
                actor_role: str | None, client: str | None) -> None:
        """Change user ``name`` (who must exist) and audit it, in one transaction."""
        with self.tables.writing() as db:
            if db.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone() is None:
                raise UserError(f"there is no user {name!r}")
            for sql, params in statements:
                db.execute(sql, params)
            self._audit(db, action, name, actor, actor_role, client)

    def disable(self, name: str, *, actor: str, actor_role: str | None = "admin", client: str | None = None) -> User:
        self._update(name, [("UPDATE users SET disabled = 1 WHERE name = ?", (name,)),
                            ("DELETE FROM sessions WHERE name = ?", (name,))], "user.disable", actor, actor_role, client)
        return self.get(name)

    def set_password(self, name: str, password: str, *, actor: str, actor_role: str | None = "admin",
                     client: str | None = None) -> None:
        _check(name, password=password)
        self._update(name, [("UPDATE users SET password_hash = ? WHERE name = ?", (_hasher().hash(password), name))],
                     "user.password", actor, actor_role, client)

    def new_token(self, name: str, *, actor: str, actor_role: str | None = "admin", client: str | None = None) -> str:
        """Replace the user's API token (the old one stops working); returns the new one."""
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self._update(name, [("UPDATE users SET token_sha256 = ? WHERE name = ?", (_sha(secret), name))],
                     "user.token", actor, actor_role, client)
        return secret

    # -- authentication -------------------------------------------------------------------
    def by_token(self, token: str) -> User | None:
        """The enabled user whose API token this is, else None."""
        if not token.startswith(TOKEN_PREFIX):
            return None
        with self.tables.reading() as db:
            row = db.execute("SELECT * FROM users WHERE token_sha256 = ?", (_sha(token),)).fetchone() if db else None
        if row is None or row["disabled"] or not hmac.compare_digest(row["token_sha256"], _sha(token)):
            return None
        return _user(row)

    def check_password(self, name: str, password: str) -> User | None:
        """The enabled user if the password is theirs, else None (same work either way)."""
        from argon2.exceptions import InvalidHashError, VerificationError

        with self.tables.reading() as db:
            row = db.execute("SELECT * FROM users WHERE name = ?", (name,)).fetchone() if db else None
        stored = row["password_hash"] if row is not None and row["password_hash"] else None
        hasher = _hasher()
        try:
            # Verify against a dummy hash for unknown users so timing does not tell who exists.
            ok = hasher.verify(stored or _DUMMY_HASH[0] or _dummy(hasher), password)
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or stored is None or row["disabled"]:
            return None
        return _user(row)

    def start_session(self, user: User) -> Session:
        session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        expires = (_now() + dt.timedelta(hours=SESSION_HOURS)).isoformat()
        with self.tables.writing() as db:
            db.execute("DELETE FROM sessions WHERE expires_at < ?", (_now().isoformat(),))
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
                       (_sha(session_id), user.name, csrf, _now().isoformat(), expires))
        return Session(session_id, user, csrf, expires)

    def session(self, session_id: str) -> Session | None:
        with self.tables.reading() as db:
            row = db.execute("SELECT s.csrf, s.expires_at, u.* FROM sessions s JOIN users u ON u.name = s.name "
                             "WHERE s.id_sha256 = ?", (_sha(session_id),)).fetchone() if db else None
        if row is None or row["disabled"] or row["expires_at"] < _now().isoformat():
            return None
        return Session(session_id, _user(row), row["csrf"], row["expires_at"])

    def end_session(self, session_id: str) -> None:
        with self.tables.writing() as db:
            db.execute("DELETE FROM sessions WHERE id_sha256 = ?", (_sha(session_id),))


_DUMMY_HASH: list[str | None] = [None]


def _dummy(hasher) -> str:
    _DUMMY_HASH[0] = hasher.hash(secrets.token_urlsafe(16))
    return _DUMMY_HASH[0]
