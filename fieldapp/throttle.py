"""Login throttling, counted in the database so that every server worker sees the same counts."""
from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from . import clock
from .models import LoginFailure


def _window_start():
    return clock.now() - timedelta(minutes=current_app.config["LOGIN_THROTTLE_MINUTES"])


def _failures(db_session: Session, kind: str, key: str) -> int:
    return db_session.scalar(select(func.count()).select_from(LoginFailure).where(
        LoginFailure.kind == kind, LoginFailure.key == key,
        LoginFailure.failed_at >= _window_start())) or 0


def is_throttled(db_session: Session, username_key: str, address: str) -> bool:
    """True when this account or this address has failed too often within the window."""
    config = current_app.config
    return (_failures(db_session, "account", username_key) >= config["LOGIN_MAX_FAILURES"]
            or _failures(db_session, "address", address) >= config["LOGIN_MAX_FAILURES_PER_ADDRESS"])


def record_failure(db_session: Session, username_key: str, address: str) -> None:
    at = clock.now()
    db_session.add_all([LoginFailure(kind="account", key=username_key, failed_at=at),
                        LoginFailure(kind="address", key=address, failed_at=at)])
    # Old rows count for nothing; dropping them here keeps the table small without a cron job.
    db_session.execute(delete(LoginFailure).where(
        LoginFailure.failed_at < at - timedelta(days=1)))


def clear_account(db_session: Session, username_key: str) -> None:
    db_session.execute(delete(LoginFailure).where(
        LoginFailure.kind == "account", LoginFailure.key == username_key))
