"""The one CSV writer: every CSV that fieldapp hands out (downloads and the CLI) goes through it.

A spreadsheet reads a cell that starts with = + - @ (or a tab or carriage return, which some
strip before looking) as a formula, so a name or note typed as "=HYPERLINK(...)" would run when
a supervisor opens the file. Such text cells get a leading apostrophe, which spreadsheets show
as text and do not evaluate. Numbers are written as numbers: -3 is a value, not a formula.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence

from flask import Response

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> object:
    """The value as a CSV cell should hold it: text that could start a formula is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def csv_text(columns: Sequence[str], rows: Iterable[Mapping[str, object]]) -> str:
    """A header of ``columns``, then one line per row (missing keys are empty cells)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([neutralise(c) for c in columns])
    for row in rows:
        writer.writerow([neutralise(row.get(c)) for c in columns])
    return buffer.getvalue()


def csv_response(filename: str, columns: Sequence[str],
                 rows: Iterable[Mapping[str, object]]) -> Response:
    """A CSV download (UTF-8 with a byte-order mark, so spreadsheets read accents right)."""
    response = Response("\ufeff" + csv_text(columns, rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
