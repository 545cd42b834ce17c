"""What a phone may keep for offline work (DESIGN §8): the pages of the worker's open episodes.

Only episodes still open (the child missing or located, not yet back) qualify, and only the pages
needed to work them: the overview, the wizard steps that are not sensitive, the contact log, and,
while the child is still missing, the report packet (photo and description for the police: the
one page with a photo that DESIGN §8 lets a phone keep). Screening answers and medical details live
on sensitive steps, so those pages are never offered. The service worker caches exactly this list
and nothing else.
"""
from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from .access import caseload_condition
from .checklists import step_views
from .models import Child, Episode, EpisodeStep, User


def offline_episodes(db_session: Session, user: User) -> list[Episode]:
    """The open episodes this user works themselves: their own children's, or on call, the
    children of a live grant. A supervisor's team view is for reading at a desk, not for a phone."""
    mine = caseload_condition(user) if user.role == "on_call" else Child.caseworker_id == user.id
    query = (select(Episode).join(Child, Child.id == Episode.child_id)
             .where(Episode.ended_at.is_(None), mine)
             .options(selectinload(Episode.steps).selectinload(EpisodeStep.entries))
             .order_by(Episode.id))
    return list(db_session.scalars(query))


def offline_pages(episodes: list[Episode], url_for: Callable[..., str]) -> list[str]:
    """The page addresses to cache for ``episodes``, built with the caller's ``url_for``."""
    pages = []
    for episode in episodes:
        pages.append(url_for("checklists.overview", episode_id=episode.id))
        pages.extend(url_for("checklists.step", episode_id=episode.id, step_key=view.spec.key)
                     for view in step_views(episode) if not view.spec.sensitive)
        pages.append(url_for("checklists.contacts", episode_id=episode.id))
        if episode.located_at is None:
            # The packet itself, not its short form for missing details: offline it is read.
            pages.append(url_for("profiles.packet_page", episode_id=episode.id, details="skip"))
    return pages
