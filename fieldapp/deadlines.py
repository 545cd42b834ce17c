"""Deadline arithmetic (DESIGN §3 *Time*), in Python and the agency's zone, stored as UTC.

Fixed deadlines are absolute durations added to an instant, so a daylight-saving change never
stretches or shrinks a 2-hour clock. Calendar rules (next business day, calendar months) are
worked out on the agency's wall calendar and then turned back into UTC instants.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from .policy import Policy, Step


def _start_of(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, datetime.min.time(), tzinfo=zone).astimezone(UTC)


def next_business_day(after: date, policy: Policy) -> date:
    day = after + timedelta(days=1)
    while day.weekday() not in policy.business_days or day in policy.holidays:
        day += timedelta(days=1)
    return day


def deadline_for(step: Step, anchor_at: datetime, policy: Policy, zone: ZoneInfo) -> datetime:
    """When ``step`` is due, given the instant its anchor was set."""
    rule = step.deadline
    anchor_at = anchor_at.astimezone(UTC)  # aware arithmetic in one zone is wall-clock arithmetic
    if rule.rule == "hours":
        return anchor_at + timedelta(hours=rule.hours)
    if rule.rule == "monthly":
        return anchor_at + timedelta(hours=rule.first_hours)
    if rule.rule == "next_business_day":
        day = next_business_day(anchor_at.astimezone(zone).date(), policy)
        return _start_of(day + timedelta(days=1), zone)  # the end of that business day
    raise ValueError(f"unknown deadline rule {rule.rule!r}")


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(first: date) -> date:
    return (first.replace(day=28) + timedelta(days=4)).replace(day=1)


@dataclass(frozen=True)
class MonthWindow:
    """One calendar month in the agency's zone, as UTC instants [starts, ends)."""
    first_day: date
    starts: datetime
    ends: datetime
    covered: bool


def monthly_windows(t0: datetime, until: datetime, times: list[datetime],
                    zone: ZoneInfo) -> list[MonthWindow]:
    """The calendar months after T0's month, up to and including ``until``'s month, each with
    whether any of ``times`` falls in it. T0's own month is covered by the first-contact
    deadline, so a child missing from 23:00 on 31 January owes February a contact, not January."""
    first = next_month(month_start(t0.astimezone(zone).date()))
    last = month_start(until.astimezone(zone).date())
    windows = []
    while first <= last:
        starts, ends = _start_of(first, zone), _start_of(next_month(first), zone)
        windows.append(MonthWindow(first, starts, ends, any(starts <= t < ends for t in times)))
        first = next_month(first)
    return windows


def next_monthly_due(t0: datetime, first_due: datetime, now: datetime, times: list[datetime],
                     zone: ZoneInfo) -> datetime:
    """When the next monthly contact is due: the first-contact deadline until a contact is
    logged, then the end of the earliest calendar month that has none yet."""
    if not any(t >= t0 for t in times):
        return first_due
    for window in monthly_windows(t0, now, times, zone):
        if not window.covered:
            return window.ends
    last = month_start(now.astimezone(zone).date())
    following = next_month(last)
    first_after_t0 = next_month(month_start(t0.astimezone(zone).date()))
    target = max(following, first_after_t0)
    return _start_of(next_month(target), zone)
