"""ORM mappings for the tables that the Alembic migrations create, one module per feature.

The migrations are the single source of the schema; ``tests/test_migrations.py`` checks that these
mappings and the migrated database agree. Import models from here: ``from fieldapp.models import X``.
"""
from .audit import AuditEvent, AuditHead
from .children import (BreakGlassGrant, Child, Handover, LocationReview, Placement, StatusChange,
                       VisitationPlan)
from .devices import DeviceCheckin
from .identification import ChildPhoto, IdentificationProfile, PacketDetails, Photo
from .imports import ImportKey
from .faces import FacesArrangement
from .episodes import (ClientOp, Episode, EpisodeStep, InfoEvent, PolicyVersion, SearchContact,
                       StepEntry)
from .people import LoginFailure, Team, User
from .reviews import ContactCheck, ReviewEvent, ReviewStage
from .risk import CaringAdultFinding, Intervention, RiskObservation
from .summaries import EpisodeSummary

__all__ = ["AuditEvent", "AuditHead", "BreakGlassGrant", "Child", "ClientOp", "ContactCheck",
           "DeviceCheckin", "Episode", "EpisodeStep", "Handover", "InfoEvent", "LocationReview", "LoginFailure",
           "Placement", "PolicyVersion", "ReviewEvent", "ReviewStage", "SearchContact",
           "StatusChange", "StepEntry", "Team", "User", "VisitationPlan",
           "ChildPhoto", "IdentificationProfile", "PacketDetails", "Photo",
           "CaringAdultFinding", "EpisodeSummary", "Intervention", "RiskObservation",
           "FacesArrangement", "ImportKey"]
