"""Policy versions, episodes and their checklists: steps, entries, events, contacts, client ops."""
from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..db import Base, UTCDateTime

if TYPE_CHECKING:  # for the annotations; SQLAlchemy resolves them by name
    from .children import Child
    from .reviews import ReviewStage
    from .people import User


class PolicyVersion(Base):
    """An installed policy file: its text and hash never change once stored."""

    __tablename__ = "policy_versions"
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(80), unique=True)
    title: Mapped[str] = mapped_column(String(200))
    effective_from: Mapped[date] = mapped_column(Date)
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    installed_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Episode(Base):
    """One absence of a child from care, from discovery (T0) to its end."""

    __tablename__ = "episodes"
    __table_args__ = (
        # One open episode per child, enforced by the database itself.
        Index("ux_episodes_one_open_per_child", "child_id", unique=True,
              sqlite_where=text("ended_at IS NULL"), postgresql_where=text("ended_at IS NULL")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"))
    previous_episode_id: Mapped[int | None] = mapped_column(ForeignKey("episodes.id"))
    discovered_at: Mapped[datetime] = mapped_column(UTCDateTime)  # T0
    discovered_by_role: Mapped[str] = mapped_column(String(30))
    discovered_by_name: Mapped[str] = mapped_column(String(160))
    how_missing: Mapped[str] = mapped_column(String(20))
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen_place: Mapped[str] = mapped_column(Text, server_default="")
    located_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # T1
    located_where: Mapped[str | None] = mapped_column(String(20))
    located_place: Mapped[str | None] = mapped_column(Text)
    located_by: Mapped[str | None] = mapped_column(String(160))
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # T2
    return_placement_id: Mapped[int | None] = mapped_column(ForeignKey("placements.id"))
    end_reason: Mapped[str | None] = mapped_column(String(30))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    court_order_date: Mapped[date | None] = mapped_column(Date)
    opened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    child: Mapped[Child] = relationship()
    policy_version: Mapped[PolicyVersion] = relationship()
    previous_episode: Mapped[Episode | None] = relationship(remote_side="Episode.id")
    steps: Mapped[list[EpisodeStep]] = relationship(back_populates="episode",
                                                     order_by="EpisodeStep.position")
    contacts: Mapped[list[SearchContact]] = relationship(
        back_populates="episode", order_by="desc(SearchContact.contacted_at), desc(SearchContact.id)")
    info_events: Mapped[list[InfoEvent]] = relationship(back_populates="episode",
                                                        order_by="InfoEvent.info_received_at")

    @property
    def is_open(self) -> bool:
        return self.ended_at is None


class EpisodeStep(Base):
    """A policy step raised on an episode, with its deadline stored once its anchor is known."""

    __tablename__ = "episode_steps"
    __table_args__ = (Index("ux_episode_steps_key", "episode_id", "step_key", unique=True),
                      Index("ix_episode_steps_due", "due_at"))
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    step_key: Mapped[str] = mapped_column(String(60))
    checklist: Mapped[str] = mapped_column(String(10))
    position: Mapped[int] = mapped_column(Integer)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_reason: Mapped[str | None] = mapped_column(String(30))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    episode: Mapped[Episode] = relationship(back_populates="steps")
    entries: Mapped[list[StepEntry]] = relationship(
        back_populates="step", order_by="StepEntry.received_at, StepEntry.id")

    @property
    def current_entries(self) -> list[StepEntry]:
        """Entries not superseded by a later correction: the ones that count."""
        superseded = {e.supersedes_id for e in self.entries if e.supersedes_id}
        return [e for e in self.entries if e.id not in superseded]


class StepEntry(Base):
    """One recorded action on a step. Append-only: a correction supersedes, never overwrites."""

    __tablename__ = "step_entries"
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_step_id: Mapped[int] = mapped_column(ForeignKey("episode_steps.id"), index=True)
    outcome: Mapped[str] = mapped_column(String(20))
    done_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the device clock at the tap
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)  # the server clock
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    evidence: Mapped[str] = mapped_column(Text, server_default="{}")
    reason: Mapped[str] = mapped_column(Text, server_default="")
    client_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("step_entries.id"), unique=True)
    clock_skew: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    imported: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    # The review stage that was open when it was recorded; once approved, triggers freeze it.
    review_stage_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_stages.id", name="fk_step_entries_review_stage"), index=True)

    step: Mapped[EpisodeStep] = relationship(back_populates="entries")
    recorded_by: Mapped[User | None] = relationship()
    review_stage: Mapped[ReviewStage | None] = relationship(back_populates="entries")


class InfoEvent(Base):
    """Information received during an episode that raises a step (e.g. trafficking identified)."""

    __tablename__ = "info_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    info_received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    episode: Mapped[Episode] = relationship(back_populates="info_events")


class SearchContact(Base):
    """One entry of an episode's search contact log: never frozen, only appended."""

    __tablename__ = "search_contacts"
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # search, follow_up or ncic_check
    person: Mapped[str] = mapped_column(String(160))
    relationship_to_child: Mapped[str] = mapped_column(String(30))
    method: Mapped[str] = mapped_column(String(20))
    contacted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reached: Mapped[bool] = mapped_column(Boolean)
    learned: Mapped[str] = mapped_column(Text, server_default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    client_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    clock_skew: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))

    episode: Mapped[Episode] = relationship(back_populates="contacts")
    recorded_by: Mapped[User | None] = relationship()


class ClientOp(Base):
    """Every client-identified write, once: the key to idempotent retries (DESIGN §8)."""

    __tablename__ = "client_ops"
    uuid: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(40))
    content_hash: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
