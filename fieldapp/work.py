""""My work": every open step across the episodes a user works, overdue first (issue 3 §7)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import exists, select
from sqlalchemy.orm import Session, selectinload

from . import clock
from .checklists import StepView, is_overdue, positive_screen, step_views
from .access import caseload_condition
from .models import Child, Episode, EpisodeStep, ImportKey, User


@dataclass
class WorkItem:
    episode: Episode
    view: StepView


@dataclass
class Work:
    items: list[WorkItem]
    overdue: int
    due_today: int
    screen_alerts: list[Episode]


def _episodes_query_all():
    """Episodes with steps still to work: open ones, and ended ones whose return steps remain,
    unless they came over ended from the old system: that history is measured, not worked."""
    imported = exists().where(ImportKey.kind == "episode", ImportKey.local_id == Episode.id)
    ended_here = Episode.end_reason.in_(("returned_to_care", "released_from_custody")) & ~imported
    return (select(Episode).join(Child, Child.id == Episode.child_id)
             .where(Episode.ended_at.is_(None) | ended_here)
             .options(selectinload(Episode.steps).selectinload(EpisodeStep.entries),
                      selectinload(Episode.contacts), selectinload(Episode.child))
             .order_by(Episode.discovered_at))


def _episodes_query(user: User):
    query = _episodes_query_all().where(caseload_condition(user))
    # On-call acts on the emergency only: the open episode, not a granted child's older ones.
    return query.where(Episode.ended_at.is_(None)) if user.role == "on_call" else query


def open_steps_of_child(db_session: Session, child_id: int) -> list[WorkItem]:
    """The child's open steps across their episodes: what a handover passes to the new worker."""
    query = _episodes_query_all().where(Episode.child_id == child_id)
    return [WorkItem(episode, view) for episode in db_session.scalars(query)
            for view in step_views(episode) if view.is_open and view.row.closed_reason is None]


def work_for(db_session: Session, user: User) -> Work:
    now = clock.now()
    start_of_today = clock.local_midnight(clock.today())
    end_of_today = clock.local_midnight(clock.today() + timedelta(days=1))
    items = []
    alerts = []
    for episode in db_session.scalars(_episodes_query(user)):
        views = step_views(episode)
        items += [WorkItem(episode, v) for v in views if v.is_open and v.row.closed_reason is None]
        cac = next((v for v in views if v.spec.key == "cac_referral"), None)
        if cac is not None and cac.is_open and positive_screen(episode):
            alerts.append(episode)
    far = datetime.max.replace(tzinfo=now.tzinfo)
    items.sort(key=lambda i: (not is_overdue(i.view, now), i.view.row.due_at or far,
                              i.episode.id, i.view.row.position))
    overdue = sum(1 for i in items if is_overdue(i.view, now))
    # Due today: the deadline falls on today's date in the agency's zone. An agency target missed
    # on an earlier day is neither overdue (DESIGN §4) nor due today.
    due_today = sum(1 for i in items if not is_overdue(i.view, now) and i.view.row.due_at
                    and start_of_today <= i.view.row.due_at < end_of_today)
    return Work(items, overdue, due_today, alerts)
