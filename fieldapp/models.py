"""ORM mappings for the tables that the Alembic migrations create.

The migrations are the single source of the schema; ``tests/test_migrations.py`` checks that these
mappings and the migrated database agree.
"""
from __future__ import annotations

from datetime import date, datetime

from flask_login import UserMixin
from sqlalchemy import (Boolean, CheckConstraint, Date, ForeignKey, Index, Integer, String, Text,
                        text)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .db import Base, UTCDateTime


class Team(Base):
    __tablename__ = "teams"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    members: Mapped[list[User]] = relationship(back_populates="team", order_by="User.display_name")


class User(UserMixin, Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint("role IN ('caseworker','supervisor','on_call','administrator','auditor')",
                        name="ck_users_role"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    # Kept lower-cased, so that "JSmith" and "jsmith" are one account (and one throttle counter).
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(120))
    role: Mapped[str] = mapped_column(String(20))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # Part of the session cookie's identity: bumping it ends every session of this user at once.
    session_epoch: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    phone: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    team: Mapped[Team | None] = relationship(back_populates="members")

    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"

    @property
    def is_active(self) -> bool:
        return self.active


class Child(Base):
    __tablename__ = "children"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(String(40), unique=True)
    first_name: Mapped[str] = mapped_column(String(80))
    last_name: Mapped[str] = mapped_column(String(80))
    date_of_birth: Mapped[date] = mapped_column(Date)
    sex: Mapped[str] = mapped_column(String(1))
    county: Mapped[str] = mapped_column(String(80))
    caseworker_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    photo_taken_on: Mapped[date | None] = mapped_column(Date)
    # The current status, kept equal to the newest status_changes row by status.change_status():
    # caseloads list it without walking the history.
    status: Mapped[str] = mapped_column(String(40))
    status_since: Mapped[datetime] = mapped_column(UTCDateTime)
    # Sensitive: shown to the case team only (DESIGN §9).
    medical_notes: Mapped[str | None] = mapped_column(Text)
    mental_health_notes: Mapped[str | None] = mapped_column(Text)
    trafficking_notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    caseworker: Mapped[User | None] = relationship()
    placements: Mapped[list[Placement]] = relationship(
        back_populates="child", order_by="desc(Placement.started_on), desc(Placement.id)")
    status_changes: Mapped[list[StatusChange]] = relationship(
        back_populates="child", order_by="desc(StatusChange.since), desc(StatusChange.id)")
    visitation_plans: Mapped[list[VisitationPlan]] = relationship(
        back_populates="child", order_by="desc(VisitationPlan.adopted_on), desc(VisitationPlan.id)")

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def current_placement(self) -> Placement | None:
        return next((p for p in self.placements if p.ended_on is None), None)

    @property
    def current_visitation_plan(self) -> VisitationPlan | None:
        return next((v for v in self.visitation_plans if v.ended_on is None), None)


class Placement(Base):
    __tablename__ = "placements"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    setting: Mapped[str] = mapped_column(String(40))
    provider_name: Mapped[str] = mapped_column(String(160))
    started_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    child: Mapped[Child] = relationship(back_populates="placements")


class VisitationPlan(Base):
    __tablename__ = "visitation_plans"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    frequency: Mapped[str] = mapped_column(String(20))
    with_whom: Mapped[str] = mapped_column(String(160))
    adopted_on: Mapped[date] = mapped_column(Date)
    ended_on: Mapped[date | None] = mapped_column(Date)
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)

    child: Mapped[Child] = relationship(back_populates="visitation_plans")


class StatusChange(Base):
    """One row of a child's append-only status history (DESIGN §2)."""

    __tablename__ = "status_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    status: Mapped[str] = mapped_column(String(40))
    since: Mapped[datetime] = mapped_column(UTCDateTime)
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, server_default="")
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Only for unapproved_location_known: where, with whom, and how that was checked.
    location_address: Mapped[str | None] = mapped_column(Text)
    location_adult: Mapped[str | None] = mapped_column(String(160))
    location_verified_how: Mapped[str | None] = mapped_column(Text)

    child: Mapped[Child] = relationship(back_populates="status_changes")
    set_by: Mapped[User | None] = relationship()
    location_reviews: Mapped[list[LocationReview]] = relationship(
        back_populates="status_change", order_by="LocationReview.decided_at")

    @property
    def location_review(self) -> LocationReview | None:
        return self.location_reviews[-1] if self.location_reviews else None


class LocationReview(Base):
    """A supervisor's decision on a known unapproved address; appended, never edited."""

    __tablename__ = "location_reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    status_change_id: Mapped[int] = mapped_column(ForeignKey("status_changes.id"), index=True)
    decided_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime)
    approved: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(Text, server_default="")

    status_change: Mapped[StatusChange] = relationship(back_populates="location_reviews")
    decided_by: Mapped[User] = relationship()


class Handover(Base):
    """A child handed from one caseworker to another, until the new one acknowledges it."""

    __tablename__ = "handovers"
    id: Mapped[int] = mapped_column(primary_key=True)
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"), index=True)
    from_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    to_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    handed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, server_default="")
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    child: Mapped[Child] = relationship()
    from_user: Mapped[User | None] = relationship(foreign_keys=[from_user_id])
    to_user: Mapped[User] = relationship(foreign_keys=[to_user_id])


class BreakGlassGrant(Base):
    __tablename__ = "break_glass_grants"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    child_id: Mapped[int] = mapped_column(ForeignKey("children.id"))
    reason: Mapped[str] = mapped_column(Text)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_break_glass_user_child", "user_id", "child_id", "expires_at"),)

    user: Mapped[User] = relationship()
    child: Mapped[Child] = relationship()


class LoginFailure(Base):
    """A failed login, counted per account and per address by ``throttle``."""

    __tablename__ = "login_failures"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(10))  # "account" or "address"
    key: Mapped[str] = mapped_column(String(255))
    failed_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_login_failures_lookup", "kind", "key", "failed_at"),)


class AuditEvent(Base):
    """Who did what to which record, and when. Appended in the same transaction as the write.

    ``seq`` is gapless and ``hash`` is the HMAC-SHA256 that chains the event to the one before it
    (``audit.link_hash``); both are written only by ``audit.record_event``.
    """

    __tablename__ = "audit_events"
    __table_args__ = (Index("ux_audit_events_seq", "seq", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[str | None] = mapped_column(String(60))
    child_id: Mapped[int | None] = mapped_column(ForeignKey("children.id"), index=True)
    details: Mapped[str] = mapped_column(Text, server_default="{}")
    hash: Mapped[str] = mapped_column(String(64))

    actor: Mapped[User | None] = relationship()


class AuditHead(Base):
    """The audit chain's one head row: the last event's seq and HMAC.

    Every append locks it, so concurrent writers take their turn and the chain never forks.
    """

    __tablename__ = "audit_head"
    __table_args__ = (CheckConstraint("id = 1", name="ck_audit_head_single_row"),)
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


# --- Policy versions, episodes and checklists (DESIGN §3, §4) -------------------------------

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


# --- Review by stage (DESIGN §7) -------------------------------------------------------------

class ReviewStage(Base):
    """A stage of an episode under supervisor review: initial response, return or closure.

    An addendum is a stage of the same kind that points at the approved stage it corrects.
    """

    __tablename__ = "review_stages"
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"), index=True)
    stage: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(20))
    addendum_of_id: Mapped[int | None] = mapped_column(ForeignKey("review_stages.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    submitted_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    open_step_reasons: Mapped[str] = mapped_column(Text, server_default="{}")
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    approved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_name: Mapped[str | None] = mapped_column(String(120))
    approved_role: Mapped[str | None] = mapped_column(String(20))
    content_sha256: Mapped[str | None] = mapped_column(String(64))

    episode: Mapped[Episode] = relationship()
    addendum_of: Mapped[ReviewStage | None] = relationship(remote_side="ReviewStage.id")
    entries: Mapped[list[StepEntry]] = relationship(back_populates="review_stage",
                                                    order_by="StepEntry.id")
    events: Mapped[list[ReviewEvent]] = relationship(back_populates="stage",
                                                      order_by="ReviewEvent.at, ReviewEvent.id")
    submitted_by: Mapped[User | None] = relationship(foreign_keys=[submitted_by_id])


class ReviewEvent(Base):
    """One move in a stage's review: submitted, returned (with comments on steps) or approved."""

    __tablename__ = "review_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    review_stage_id: Mapped[int] = mapped_column(ForeignKey("review_stages.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    comment: Mapped[str] = mapped_column(Text, server_default="")
    step_comments: Mapped[str] = mapped_column(Text, server_default="{}")

    stage: Mapped[ReviewStage] = relationship(back_populates="events")
    actor: Mapped[User] = relationship()


class ContactCheck(Base):
    """A supervisor's monthly check of a missing child's search contact log."""

    __tablename__ = "contact_checks"
    __table_args__ = (Index("ux_contact_checks_month", "episode_id", "month", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    episode_id: Mapped[int] = mapped_column(ForeignKey("episodes.id"))
    month: Mapped[date] = mapped_column(Date)
    checked_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text, server_default="")

    checked_by: Mapped[User] = relationship()
