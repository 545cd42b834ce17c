"""Limits on what a request may carry, so that input the databases cannot hold is refused at the
door (a 4xx, nothing saved) instead of failing deep inside a write (a 500).

- Ids in URLs are INTEGER columns: PostgreSQL's hold 2**31 - 1, and SQLite's driver overflows past
  2**63. A larger id cannot name a row, so it is a 404 like any other unknown id.
- PostgreSQL text cannot hold the NUL character, which SQLite would store. No one types it; a form
  or query string that carries it is refused with 400 on both databases alike. (The sync API reads
  JSON and refuses such text per operation, in fieldapp.sync.)
"""
from __future__ import annotations

from flask import Flask, abort, request
from werkzeug.routing import IntegerConverter

LARGEST_ID = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:...>`` in every route: at most LARGEST_ID."""

    def __init__(self, map, fixed_digits=0, min=None, max=LARGEST_ID, signed=False):  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def has_nul(values) -> bool:
    """Whether any key or value of a MultiDict contains NUL."""
    return any("\x00" in key or "\x00" in value for key, value in values.items(multi=True))


def init_app(app: Flask) -> None:
    """Call before any blueprint is registered: routes take their converter when they are added."""
    app.url_map.converters["int"] = IdConverter

    @app.before_request
    def _refuse_nul():
        if has_nul(request.args) or (request.method == "POST" and has_nul(request.form)):
            abort(400, description="The request contains a NUL character, which cannot be stored. "
                                   "Nothing was saved.")
