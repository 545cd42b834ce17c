"""Shared test helpers, importable from any test module (``from helpers import ...``)."""
from __future__ import annotations

import contextvars
from datetime import UTC, datetime

from flask.testing import FlaskClient

from fieldapp import db

PASSWORD = "correct horse battery staple"
# "Now" for every test unless a test moves the clock: a Monday afternoon in Missouri.
NOW = datetime(2026, 3, 2, 20, 0, tzinfo=UTC)


class IsolatedClient(FlaskClient):
    """A test client whose every request gets its own app context, as behind a real server.

    The ``app`` fixture keeps an app context pushed for the whole test, and Flask reuses a pushed
    context for requests, so ``g`` (Flask-Login's user, the database session) would carry over
    from one request, and from one client, to the next. Each request runs in an empty
    ``contextvars`` context instead.
    """

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def fresh():
    """The test's own database session, with its snapshot ended and its objects expired, so it
    sees what the requests committed."""
    session = db.session()
    session.rollback()
    session.expire_all()
    return session


def utc(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def count(model, *where) -> int:
    """Rows of ``model`` (matching ``where``) that the requests have committed."""
    from sqlalchemy import func, select
    return fresh().scalar(select(func.count()).select_from(model).where(*where))


def field_error(html: str, field_id: str) -> str:
    """The message shown beside a form field, as the user reads it ("" when there is none)."""
    import re
    from html import unescape
    found = re.search(rf'<p class="error" id="{field_id}-error">(.*?)</p>', html, re.S)
    return unescape(found.group(1)) if found else ""
