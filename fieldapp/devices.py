"""Phones' check-ins (DESIGN §8): each sync says how much the phone still holds, so that a
supervisor sees "X's phone holds 3 unsent" instead of learning of it when the work is lost."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from .models import DeviceCheckin, User


def check_in(db_session: Session, user: User, device_id: str, held: int,
             device_time: datetime | None, now: datetime) -> None:
    """Record this phone's latest count, in the sync's transaction. Two syncs from one phone
    may race: the insert gives way to the existing row, and the later update wins."""
    dialect = db_session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(DeviceCheckin)
    inserted = db_session.execute(
        insert.values(user_id=user.id, device_id=device_id, held=held, checked_in_at=now,
                      device_time=device_time)
        .on_conflict_do_nothing(index_elements=["user_id", "device_id"])
        .execution_options(preserve_rowcount=True)).rowcount
    if inserted != 1:
        db_session.execute(update(DeviceCheckin).where(
            DeviceCheckin.user_id == user.id, DeviceCheckin.device_id == device_id)
            .values(held=held, checked_in_at=now, device_time=device_time))


def phones_holding_work(db_session: Session, viewer: User) -> list[DeviceCheckin]:
    """Phones whose last check-in reported unsent work: a supervisor's team's, or for an
    administrator everyone's. Oldest check-in first: the longer it waits, the likelier it is lost."""
    query = (select(DeviceCheckin).join(User, User.id == DeviceCheckin.user_id)
             .where(DeviceCheckin.held > 0).options(joinedload(DeviceCheckin.user))
             .order_by(DeviceCheckin.checked_in_at))
    if viewer.role != "administrator":
        query = query.where(User.team_id == viewer.team_id)
    return list(db_session.scalars(query))
