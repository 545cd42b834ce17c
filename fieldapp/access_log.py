"""Request lines in the development server's access log, without their query strings.

A search puts what was typed in the address (``/caseload?q=<a child's name>``), and so does a
login's ``next``: the access log must not keep them (issue 8, Security 6). werkzeug's server
(``fieldapp run``, ``make run``) logs each request line through the "werkzeug" logger; this filter
cuts the query string from it. gunicorn writes no access log unless told to; docs/deploy.md gives
a format without the query string for when it is.
"""
from __future__ import annotations

import logging
import re

# The query string, up to the space before the protocol or a terminal colour code.
_QUERY = re.compile(r"\?[^\s\x1b]*")


class DropQueryStrings(logging.Filter):
    """werkzeug passes the request line as the first of the record's arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(_QUERY.sub("?…", arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        return True


def init_app(_app) -> None:
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(f, DropQueryStrings) for f in logger.filters):  # one per process
        logger.addFilter(DropQueryStrings())
