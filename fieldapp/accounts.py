"""Users, teams and passwords: creating, authenticating, deactivating and revoking sessions."""
from __future__ import annotations

import re
from typing import Callable

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from . import clock
from .audit import record_event
from .common_passwords import fold, is_common
from .models import Team, User
from .vocabulary import ROLES

MIN_PASSWORD_LENGTH = 12
# Compared against when the username is unknown, so a miss costs as much time as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password-but-the-same-cost", method="scrypt")


class AccountError(ValueError):
    """A request about an account that cannot be carried out; the message is for the user."""


def normalise_username(username: str) -> str:
    return username.strip().lower()


def hash_password(password: str, username: str = "", display_name: str = "") -> str:
    """Hash with scrypt, after the password policy. Slow on purpose: call it before opening a
    write transaction."""
    problem = password_problem(password, username, display_name)
    if problem:
        raise AccountError(problem)
    return generate_password_hash(password, method="scrypt")


# Parts of a name shorter than this are not looked for in a password: "Al" or "Lee" would turn
# down good passwords by chance, and guessing them adds little.
_SHORTEST_NAME_PART = 4
_SHORTEST_WHOLE_NAME = 3  # a whole username such as "cw.a" ("cwa") is looked for all the same


def _names_in(username: str, display_name: str) -> set[str]:
    """What of the account's own names a password must not contain, folded as passwords are
    compared (so "N1ght0wl" contains "nightowl")."""
    whole = {normalise_username(username), display_name.strip().lower()}
    parts = set(re.split(r"[^a-z0-9]+", " ".join(whole)))
    names = {_squash(name) for name in whole if len(_squash(name)) >= _SHORTEST_WHOLE_NAME}
    names |= {part for part in parts if len(part) >= _SHORTEST_NAME_PART}
    return {fold(name) for name in names}


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


# The policy's rules, in the order a user is told of them: each a test and what to say.
PASSWORD_RULES: tuple[tuple[Callable[[str, set[str]], bool], str], ...] = (
    (lambda password, _names: len(password) < MIN_PASSWORD_LENGTH,
     f"Use at least {MIN_PASSWORD_LENGTH} characters."),
    (lambda password, names: any(name in fold(password) for name in names),
     "Do not use the username or the person's name in the password."),
    (lambda password, _names: is_common(password),
     "That password is too common, or a simple variation of a common one (a word with a year or "
     "numbers, a keyboard row, a repeated pattern). Try four or five unrelated words."),
)


def password_problem(password: str, username: str = "", display_name: str = "") -> str | None:
    """What is wrong with ``password`` for this account, in words for the user; None if nothing."""
    names = _names_in(username, display_name)
    for breaks_rule, message in PASSWORD_RULES:
        if breaks_rule(password, names):
            return message
    return None


def find_user(db_session: Session, username: str) -> User | None:
    return db_session.scalar(select(User).where(User.username == normalise_username(username)))


def check_password(user: User | None, password: str) -> bool:
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(user.password_hash, password)


def load_session_user(db_session: Session, session_id: str) -> User | None:
    """The user behind a session's id ("<user id>:<epoch>"), if that session is still valid."""
    user_id, _, epoch = session_id.partition(":")
    if not (user_id.isdigit() and epoch.isdigit()):
        return None
    user = db_session.get(User, int(user_id))
    if user is None or not user.active or user.session_epoch != int(epoch):
        return None
    return user


def get_or_create_team(db_session: Session, name: str) -> Team:
    team = db_session.scalar(select(Team).where(func.lower(Team.name) == name.strip().lower()))
    if team is None:
        team = Team(name=name.strip(), created_at=clock.now())
        db_session.add(team)
        db_session.flush()
    return team


def create_user(db_session: Session, *, username: str, display_name: str, role: str,
                password_hash: str, team: Team | None = None, phone: str | None = None,
                actor: User | None = None) -> User:
    """Add a user. The caller hashes the password first, outside the write transaction."""
    username = normalise_username(username)
    if role not in ROLES:
        raise AccountError(f"Unknown role {role!r}; choose one of {', '.join(ROLES)}.")
    if not username or not username.replace(".", "").replace("-", "").replace("_", "").isalnum():
        raise AccountError("A username uses letters, digits, dots, dashes and underscores only.")
    if find_user(db_session, username) is not None:
        raise AccountError(f"The username {username!r} is taken.")
    if role in ("caseworker", "supervisor") and team is None:
        raise AccountError("Caseworkers and supervisors belong to a team.")
    user = User(username=username, display_name=display_name.strip() or username, role=role,
                team=team, password_hash=password_hash, active=True, session_epoch=0, phone=phone,
                created_at=clock.now())
    db_session.add(user)
    db_session.flush()
    record_event(db_session, actor, "user.create", "user", user.id,
                 changes={"username": username, "role": role, "team": team.name if team else None})
    return user


def _bump_session_epoch(user: User) -> None:
    # Incremented in SQL, not from this object's copy: the object was usually loaded before the
    # write transaction began, and a stale copy could write back an epoch a newer session holds.
    user.session_epoch = User.session_epoch + 1


def revoke_sessions(db_session: Session, user: User, actor: User | None) -> None:
    """Log the user out everywhere: every cookie carrying the old epoch stops working."""
    _bump_session_epoch(user)
    record_event(db_session, actor, "user.revoke_sessions", "user", user.id)


def deactivate(db_session: Session, user: User, actor: User | None) -> None:
    if actor is not None and actor.id == user.id:
        raise AccountError("You cannot deactivate your own account.")
    user.active = False
    user.deactivated_at = clock.now()
    _bump_session_epoch(user)
    record_event(db_session, actor, "user.deactivate", "user", user.id)


def reactivate(db_session: Session, user: User, actor: User | None) -> None:
    user.active = True
    user.deactivated_at = None
    record_event(db_session, actor, "user.reactivate", "user", user.id)


def assign_team(db_session: Session, user: User, team: Team | None, actor: User | None) -> None:
    if user.role in ("caseworker", "supervisor") and team is None:
        raise AccountError("Caseworkers and supervisors belong to a team.")
    old = user.team.name if user.team else None
    user.team = team
    record_event(db_session, actor, "user.assign_team", "user", user.id,
                 changes={"team": [old, team.name if team else None]})
