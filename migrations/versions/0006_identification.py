"""The report packet (issue 7): identification profiles, photos stored by content hash, and the
details of a last sighting that the episode did not know.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa

from fieldapp.db import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Each section of the profile carries who last changed it and when (issue 7: "each section with
# its last-updated date").
SECTIONS = ("description", "marks", "endangerment", "whereabouts")
SHORT_FIELDS = (("race_ethnicity", 120), ("height", 40), ("weight", 40), ("hair_colour", 60),
                ("eye_colour", 60), ("complexion", 60))
TEXT_FIELDS = ("tattoos", "scars", "piercings", "pregnancy", "medications", "suicidal",
               "trafficking", "health_risks", "associates", "places", "phones", "social_media")


def _section_columns() -> list[sa.Column]:
    columns = []
    for section in SECTIONS:
        columns.append(sa.Column(f"{section}_updated_at", UTCDateTime))
        columns.append(sa.Column(f"{section}_updated_by_id", sa.Integer, sa.ForeignKey("users.id")))
    return columns


def upgrade() -> None:
    op.create_table(
        "identification_profiles",
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), primary_key=True),
        *[sa.Column(name, sa.String(length)) for name, length in SHORT_FIELDS],
        *[sa.Column(name, sa.Text) for name in TEXT_FIELDS],
        sa.Column("appearance_changed_on", sa.Date),
        *_section_columns(),
    )
    op.create_table(
        "photos",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
        sa.Column("content_type", sa.String(40), nullable=False),
        sa.Column("width", sa.Integer, nullable=False),
        sa.Column("height", sa.Integer, nullable=False),
        sa.Column("byte_size", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "child_photos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("child_id", sa.Integer, sa.ForeignKey("children.id"), nullable=False),
        sa.Column("photo_sha256", sa.String(64), sa.ForeignKey("photos.sha256"), nullable=False),
        sa.Column("taken_on", sa.Date, nullable=False),
        sa.Column("recorded_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("recorded_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_child_photos_child_id", "child_photos", ["child_id"])
    op.create_table(
        "packet_details",
        sa.Column("episode_id", sa.Integer, sa.ForeignKey("episodes.id"), primary_key=True),
        sa.Column("clothing", sa.Text),
        sa.Column("circumstances", sa.Text),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by_id", sa.Integer, sa.ForeignKey("users.id")),
    )


def downgrade() -> None:
    op.drop_table("packet_details")
    op.drop_index("ix_child_photos_child_id", "child_photos")
    op.drop_table("child_photos")
    op.drop_table("photos")
    op.drop_table("identification_profiles")
