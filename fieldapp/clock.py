"""The app's clock. Everything that needs "now" asks here, so tests can set the time."""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from flask import current_app


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, at: datetime):
        self.at = at.astimezone(UTC)

    def now(self) -> datetime:
        return self.at

    def set(self, at: datetime) -> None:
        self.at = at.astimezone(UTC)

    def advance(self, **delta) -> None:
        self.at += timedelta(**delta)


# More apart than this, a phone's clock and the server's are flagged as skewed (DESIGN §3).
SKEW_LIMIT = timedelta(minutes=5)


def skewed(device_clock: datetime | None, server_clock: datetime) -> bool:
    """True when the device's clock differs from the server's by more than the limit. The entry
    is kept all the same: a phone with a wrong clock must not lose its work."""
    return device_clock is not None and abs(device_clock - server_clock) > SKEW_LIMIT


def now() -> datetime:
    """The current instant, aware and in UTC."""
    return current_app.extensions["fieldapp.clock"].now()


def agency_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config["TIMEZONE"])


def today() -> date:
    """Today's date in the agency's zone."""
    return now().astimezone(agency_zone()).date()


def local_midnight(day: date) -> datetime:
    """The UTC instant at which ``day`` starts in the agency's zone."""
    return datetime.combine(day, datetime.min.time(), tzinfo=agency_zone()).astimezone(UTC)


def parse_local(value: str) -> datetime | None:
    """Read a ``datetime-local`` form value as agency-zone wall time; None when it is not one."""
    try:
        naive = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        return None
    if naive.tzinfo is not None:
        return naive.astimezone(UTC)
    return naive.replace(tzinfo=agency_zone()).astimezone(UTC)
