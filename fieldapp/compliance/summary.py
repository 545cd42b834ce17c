"""The compliance summary: every measure's figures for a population, as plain data.

``compliance_summary`` runs two aggregate queries over the summary rows (all months, then by
T0's month) and one for S1, and shapes them as the CLI's JSON: one key per measure, each with
count, denominator, percent, label, within_deadline and breakdowns.
"""
from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from .. import clock
from .query import (Population, drill_down_select, measures_select, s1_select,
                    status_on_select)
from .specs import BY_KEY, MEASURES, STEP_LABELS
from ..vocabulary import MISSING_STATUSES, STATUSES


def percent(count: int, denominator: int) -> float | None:
    return round(100 * count / denominator, 1) if denominator else None


def _figure(count, denominator) -> dict:
    count, denominator = int(count or 0), int(denominator or 0)
    return {"count": count, "denominator": denominator, "percent": percent(count, denominator)}


def _figures(row, name: str, months: bool) -> dict:
    """count, denominator, percent, within_deadline and attempted of one measure or component."""
    if months:
        main = _figure(row[f"{name}|any"], row[f"{name}|den"])
        return {**main, "within_deadline": dict(main), "attempted": 0}
    main = _figure(row[f"{name}|any"], row[f"{name}|den"])
    return {**main, "within_deadline": _figure(row[f"{name}|within"], row[f"{name}|den"]),
            "attempted": int(row[f"{name}|att"] or 0)}


def _unit(measure, pop: Population) -> str:
    if measure.shape == "months":
        return "months"
    return "children" if pop.per_child or measure.shape == "status" else "episodes"


def _s1(db_session: Session, pop: Population) -> dict:
    row = db_session.execute(s1_select(pop)).mappings().one()
    missing, unapproved = int(row["missing"] or 0), int(row["unapproved"] or 0)
    main = _figure(missing, missing + unapproved)
    by_status = {key: int(row[key] or 0) for key in sorted(row.keys())
                 if key in STATUSES}
    by_status["unapproved_location_known"] = unapproved
    return {**main, "within_deadline": dict(main), "attempted": 0,
            "breakdowns": {"by_status": by_status, "unverified": int(row["unverified"] or 0),
                           "on": pop.status_date.isoformat()}}


def compliance_summary(db_session: Session, pop: Population, now: datetime | None = None,
                       only: str | None = None) -> dict:
    """Every measure of DESIGN §6 for ``pop``, keyed "M1" … "S1" (or just the one ``only``
    names: a chart needs one measure, and computes no other)."""
    now = now or clock.now()
    total, months = {}, []
    if only is None or BY_KEY[only].shape != "status":  # S1 alone reads only status_changes
        total = db_session.execute(measures_select(pop, now, only=only)).mappings().one()
        months = db_session.execute(measures_select(pop, now, by_month=True,
                                                    only=only)).mappings().all()
    result = {}
    for measure in MEASURES:
        if only is not None and measure.key != only:
            continue
        if measure.shape == "status":
            result[measure.key] = {"label": measure.label, "unit": _unit(measure, pop),
                                   **_s1(db_session, pop)}
            continue
        is_months = measure.shape == "months"
        breakdowns = {"by_month": {m["t0_month"]: _figures(m, measure.key, is_months)
                                   for m in months}}
        if measure.shape == "steps" and len(measure.steps) > 1:
            breakdowns["components"] = {
                step: {"label": STEP_LABELS[step], **_figures(total, f"{measure.key}:{step}", False)}
                for step in measure.steps}
        result[measure.key] = {"label": measure.label, "unit": _unit(measure, pop),
                               "has_deadline": measure.has_deadline,
                               **_figures(total, measure.key, is_months),
                               "breakdowns": breakdowns}
    return result


def drill_down(db_session: Session, pop: Population, key: str, variant: str = "any",
               step: str | None = None, now: datetime | None = None) -> list[int]:
    """The episode ids behind a measure's count (or child ids for S1)."""
    measure = BY_KEY[key]
    if measure.shape == "status":
        query = status_on_select(pop, tuple(sorted(MISSING_STATUSES)))
        return sorted(db_session.scalars(query.with_only_columns(query.selected_columns.child_id)))
    query = drill_down_select(pop, now or clock.now(), measure, variant, step)
    return list(db_session.scalars(query))


CSV_COLUMNS = ("measure", "part", "label", "unit", "count", "denominator", "percent",
               "within_count", "within_denominator", "within_percent", "attempted")


def csv_rows(summary: dict) -> list[dict]:
    """One row per measure and one per component, for spreadsheets."""
    rows = []
    for key, figures in summary.items():
        parts = [("", figures)] + list(figures.get("breakdowns", {}).get("components", {}).items())
        for part, f in parts:
            within = f["within_deadline"]
            rows.append({"measure": key, "part": part, "label": f.get("label", ""),
                         "unit": figures["unit"], "count": f["count"],
                         "denominator": f["denominator"], "percent": f["percent"],
                         "within_count": within["count"], "within_denominator": within["denominator"],
                         "within_percent": within["percent"], "attempted": f["attempted"]})
    return rows
