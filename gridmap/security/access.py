"""Who may do what: roles, their permissions, scopes, users and API tokens. Knows no web framework.

A :class:`Principal` is whoever makes a request or runs a command: a logged-in user, a program
with a bearer token, the operator at the command line, or an anonymous visitor. Its role says
what it may do (:data:`ROLE_PERMISSIONS`, :data:`ROLE_ACTIONS`); its :class:`AccessScope` says
which rows it may see, as SQL conditions that every query adds.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, false, or_, select, true
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from gridmap.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from gridmap.labels import N_
from gridmap.storage.models import Issue
from gridmap.storage.security import ApiToken, User

ROLES: tuple[str, ...] = ("admin", "dispatcher", "manager", "worker", "handler", "planner")
ROLE_LABELS: dict[str, str] = {
    "admin": N_("管理员"),
    "dispatcher": N_("调度员"),
    "manager": N_("网格管理员"),
    "worker": N_("网格员"),
    "handler": N_("部门处置人员"),
    "planner": N_("规划分析人员"),
}

#: What each role may do.  ``issues:read`` lists single issues; ``aggregates:read`` only counts.
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({
        "aggregates:read", "issues:read", "issues:create", "issues:act", "issues:assign", "personal:read",
        "ledger:export", "ledger:import", "coverage:read", "households:read", "households:write",
        "visits:write", "patrols:write", "audit:read", "users:manage",
    }),
    "dispatcher": frozenset({
        "aggregates:read", "issues:read", "issues:create", "issues:act", "issues:assign", "personal:read",
        "ledger:export", "ledger:import", "coverage:read",
    }),
    "manager": frozenset({
        "aggregates:read", "issues:read", "issues:create", "issues:act", "ledger:export", "coverage:read",
        "households:read", "households:write", "visits:write", "patrols:write",
    }),
    "worker": frozenset({
        "aggregates:read", "issues:read", "issues:create", "issues:act", "personal:read", "coverage:read",
        "households:read", "households:write", "visits:write", "patrols:write",
    }),
    "handler": frozenset({"aggregates:read", "issues:read", "issues:act", "personal:read"}),
    "planner": frozenset({"aggregates:read", "coverage:read"}),
}
#: Workflow actions each role may take (on issues inside its scope).
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "admin": frozenset({"register", "reject", "dispatch", "start", "feedback", "check", "rework", "close", "revisit",
                        "return", "extend", "suspend", "resume", "reopen", "merge"}),
    "dispatcher": frozenset({"register", "reject", "dispatch", "start", "feedback", "check", "rework", "close",
                             "revisit", "return", "extend", "suspend", "resume", "reopen", "merge"}),
    "manager": frozenset({"register", "reject", "check", "rework", "close", "revisit"}),
    "worker": frozenset({"check", "rework", "revisit"}),
    "handler": frozenset({"start", "feedback", "return"}),
    "planner": frozenset(),
}
#: Roles limited to area codes (manager: streets or communities; worker: cells) or to departments.
AREA_CODE_LENGTHS: dict[str, tuple[int, ...]] = {"manager": (9, 12), "worker": (15,)}
DEPARTMENT_ROLES = frozenset({"handler"})
TOKEN_PREFIX = "gmt_"
MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True)
class AccessScope:
    """The rows a principal may see: area codes (any level, prefixes of cell codes) and departments.

    ``None`` means no limit of that kind; an empty tuple means nothing at all.
    """

    areas: tuple[str, ...] | None = None
    departments: tuple[str, ...] | None = None

    @property
    def unlimited(self) -> bool:
        return self.areas is None and self.departments is None

    def issue_conditions(self, on: Any = Issue) -> list[Any]:
        """SQL conditions on the issues table (``on``: another table with its cell_code and department columns)."""
        conditions = []
        if self.areas is not None:
            conditions.append(self.cell_condition(on.cell_code))
        if self.departments is not None:
            conditions.append(on.department.in_(self.departments) if self.departments else false())
        return conditions

    def cell_condition(self, column) -> Any:
        """A SQL condition: ``column`` (a 15-digit cell code) lies in the scope's areas (true if unlimited)."""
        if self.areas is None:
            return true()
        if not self.areas:
            return false()
        return or_(*(_prefix_condition(column, code) for code in self.areas))

    def covers_cell(self, cell_code: str | None) -> bool:
        """Whether a cell (15-digit code) lies in the scope's areas."""
        if self.areas is None:
            return True
        if not cell_code:
            return False
        return any(cell_code.startswith(code) for code in self.areas)

    def shows_area(self, code: str) -> bool:
        """Whether an area is shown at all: inside the scope, or containing part of it."""
        if self.areas is None:
            return True
        return any(code.startswith(mine) or mine.startswith(code) for mine in self.areas)

    def covers_issue(self, issue: Issue) -> bool:
        """Whether one loaded issue is inside the scope."""
        if not self.covers_cell(issue.cell_code):
            return False
        return self.departments is None or issue.department in self.departments


UNLIMITED = AccessScope()


def _prefix_condition(column, code: str) -> Any:
    """``column`` starts with the digit string ``code``, as a range the column's index can serve."""
    if code.isdigit() and set(code) != {"9"}:
        upper = str(int(code) + 1).zfill(len(code))
        return and_(column >= code, column < upper)
    return column.startswith(code, autoescape=True)


@dataclass(frozen=True)
class Principal:
    """Whoever acts: a user, a token's program, the command line, or nobody (anonymous)."""

    name: str
    role: str | None
    scopes: tuple[str, ...] = ()
    kind: str = "user"  # user, token, cli, anonymous

    @property
    def authenticated(self) -> bool:
        return self.role is not None

    @property
    def access(self) -> AccessScope:
        """The rows this principal may see."""
        if self.role in AREA_CODE_LENGTHS:
            return AccessScope(areas=self.scopes)
        if self.role in DEPARTMENT_ROLES:
            return AccessScope(departments=self.scopes)
        return UNLIMITED

    def can(self, permission: str) -> bool:
        return self.role is not None and permission in ROLE_PERMISSIONS[self.role]

    def may_take(self, action: str) -> bool:
        return self.role is not None and action in ROLE_ACTIONS[self.role]

    @property
    def sees_personal_data(self) -> bool:
        return self.can("personal:read")

    @property
    def label(self) -> str:
        """The name written into transitions and the audit log."""
        return self.name if self.kind in ("user", "anonymous") else f"{self.kind}:{self.name}"


ANONYMOUS = Principal("anonymous", None, kind="anonymous")


def cli_principal() -> Principal:
    """The operator at the command line: local access to the database is administration."""
    import getpass

    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        name = "operator"
    return Principal(name, "admin", kind="cli")


def require(principal: Principal, permission: str) -> None:
    """Raise 401 for anonymous, 403 when the role lacks ``permission``."""
    if not principal.authenticated:
        raise Unauthenticated("log in or send an API token (Authorization: Bearer …)")
    if not principal.can(permission):
        raise Forbidden(f"role {principal.role} may not do this ({permission})")


# --- users and tokens ------------------------------------------------------------------------


def check_role_and_scopes(role: str, scopes: Iterable[str], *, area_codes: Iterable[str] = (),
                          departments: Iterable[str] = ()) -> tuple[str, ...]:
    """Validate a role and its scope codes; return the scopes (trimmed, in order, without repeats)."""
    if role not in ROLES:
        raise InvalidInput(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
    scopes = tuple(dict.fromkeys(s.strip() for s in scopes if s and s.strip()))
    if role in AREA_CODE_LENGTHS:
        lengths = AREA_CODE_LENGTHS[role]
        kinds = " or ".join({9: "street (9 digits)", 12: "community (12 digits)",
                             15: "cell (15 digits)"}[n] for n in lengths)
        if not scopes:
            raise InvalidInput(f"role {role} needs --scope: one or more {kinds} codes")
        known = set(area_codes)
        for code in scopes:
            if not (code.isdigit() and len(code) in lengths):
                raise InvalidInput(f"scope {code!r} is not a {kinds} code (role {role})")
            if known and code not in known:
                raise InvalidInput(f"scope {code!r}: no such area in the active layer set")
    elif role in DEPARTMENT_ROLES:
        if not scopes:
            raise InvalidInput(f"role {role} needs --scope: one or more department names")
        known = set(departments)
        for name in scopes:
            if known and name not in known:
                raise InvalidInput(f"scope {name!r} is not a department of the routing rules: use one of "
                                   f"{', '.join(sorted(known))}")
    elif scopes:
        raise InvalidInput(f"role {role} sees the whole district: give no --scope")
    return scopes


def _now() -> datetime:
    return datetime.now(UTC)


def add_user(session: Session, name: str, role: str, scopes: tuple[str, ...], password: str) -> User:
    """Create a user with a hashed password (scopes already checked with :func:`check_role_and_scopes`)."""
    name = _check_name(name)
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if session.scalar(select(User.id).where(User.name == name)) is not None:
        raise Conflict(f"user {name!r} exists already")
    user = User(name=name, role=role, scopes=list(scopes), password_hash=generate_password_hash(password),
                created_at=_now())
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, name: str, password: str) -> None:
    """Replace a user's password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password too short: use at least {MIN_PASSWORD_LENGTH} characters")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}")
    user.password_hash = generate_password_hash(password)


#: Checked against when the user does not exist, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = generate_password_hash(secrets.token_hex(8))


def authenticate_password(session: Session, name: str, password: str) -> Principal | None:
    """The user's principal if name and password match an enabled user, else None."""
    user = session.scalar(select(User).where(User.name == (name or "").strip()))
    if user is None:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or user.disabled_at is not None:
        return None
    return user_principal(user)


def disable_user(session: Session, name: str) -> None:
    """Disable a user: they can no longer log in, and their open sessions end."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}")
    user.disabled_at = user.disabled_at or _now()


def list_users(session: Session) -> list[dict[str, Any]]:
    """Every user: name, role, scopes, enabled or disabled (never the hash)."""
    return [{"name": u.name, "role": u.role, "scopes": list(u.scopes or ()),
             "state": "disabled" if u.disabled_at else "enabled"}
            for u in session.scalars(select(User).order_by(User.name))]


def enable_user(session: Session, name: str) -> None:
    """Let a disabled user log in again."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFound(f"no user {name!r}")
    user.disabled_at = None


def list_tokens(session: Session) -> list[dict[str, Any]]:
    """Every API token: name, role, scopes, active or revoked (never the hash)."""
    return [{"name": t.name, "role": t.role, "scopes": list(t.scopes or ()), "created_at": t.created_at,
             "state": "revoked" if t.revoked_at else "active"}
            for t in session.scalars(select(ApiToken).order_by(ApiToken.name))]


def user_principal(user: User) -> Principal:
    return Principal(user.name, user.role, tuple(user.scopes or ()), kind="user")


def load_user(session: Session, name: str) -> Principal | None:
    """The principal of an enabled user by name (for a session cookie), else None."""
    user = session.scalar(select(User).where(User.name == name, User.disabled_at.is_(None)))
    return None if user is None else user_principal(user)


def add_token(session: Session, name: str, role: str, scopes: tuple[str, ...]) -> str:
    """Create an API token and return its secret, which is not stored and cannot be shown again."""
    name = _check_name(name)
    if session.scalar(select(ApiToken.id).where(ApiToken.name == name)) is not None:
        raise Conflict(f"token {name!r} exists already")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiToken(name=name, token_hash=_digest(secret), role=role, scopes=list(scopes), created_at=_now()))
    session.flush()
    return secret


def revoke_token(session: Session, name: str) -> None:
    """Revoke a token by name; it stops working at once."""
    token = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if token is None:
        raise NotFound(f"no token {name!r}")
    token.revoked_at = token.revoked_at or _now()


def authenticate_token(session: Session, secret: str) -> Principal | None:
    """The token's principal if ``secret`` is a token that is not revoked, else None."""
    if not secret or len(secret) > 200:
        return None
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(secret)))
    if token is None or token.revoked_at is not None:
        return None
    return Principal(token.name, token.role, tuple(token.scopes or ()), kind="token")


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_name(name: str) -> str:
    name = (name or "").strip()
    if not name or len(name) > 100 or any(ch in name for ch in ":/\n\r\t"):
        raise InvalidInput("name: 1–100 characters, no ':', '/' or control characters")
    return name


# --- personal data ----------------------------------------------------------------------------


def mask_name(name: str | None) -> str | None:
    """Keep the first character: 张三丰 → 张**."""
    if not name:
        return name
    return name[0] + "*" * max(len(name) - 1, 1)


def mask_phone(phone: str | None) -> str | None:
    """Keep the first three and last four digits: 13812345678 → 138****5678."""
    if not phone:
        return phone
    digits = phone.strip()
    if len(digits) <= 7:
        return "*" * len(digits)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
