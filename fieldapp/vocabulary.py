"""The fixed vocabularies of the domain: roles, child statuses and placement settings (DESIGN §2).

They are data, read by code; nothing else spells these keys out.
"""
from __future__ import annotations

from dataclasses import dataclass

ROLES = {
    "caseworker": "Caseworker",
    "supervisor": "Supervisor",
    "on_call": "On-call worker",
    "administrator": "Administrator",
    "auditor": "Auditor",
}


@dataclass(frozen=True)
class Status:
    key: str
    label: str
    meaning: str
    missing: bool = False  # physical whereabouts unknown: the missing checklist applies
    afcars_living_arrangement: str = ""


STATUSES: dict[str, Status] = {s.key: s for s in (
    Status("in_placement", "In placement", "In an approved placement",
           afcars_living_arrangement="the placement's setting"),
    Status("whereabouts_unknown", "Whereabouts unknown",
           "Nobody (agency, custodian, provider) knows where the child is", missing=True,
           afcars_living_arrangement="12 Runaway or 13 Whereabouts unknown (by how missing); location 4"),
    Status("in_contact_location_unknown", "In contact, location unknown",
           "The child calls or texts, but where they are is unknown", missing=True,
           afcars_living_arrangement="12 Runaway or 13 Whereabouts unknown (by how missing); location 4"),
    Status("unapproved_location_known", "At a known unapproved address",
           "Living at a known address that is not an approved placement"),
    Status("located_pending_return", "Located, not yet returned",
           "Found, not yet back in an approved placement"),
    Status("released_from_custody", "Released from custody", "The agency's legal custody ended"),
)}

MISSING_STATUSES = frozenset(k for k, s in STATUSES.items() if s.missing)

# Which moves a status change may make. Anything else is refused with a message: a child cannot,
# say, be "returned" from an approved placement.
TRANSITIONS: dict[str, frozenset[str]] = {
    "in_placement": frozenset({"whereabouts_unknown", "in_contact_location_unknown",
                               "unapproved_location_known", "released_from_custody"}),
    "whereabouts_unknown": frozenset({"in_contact_location_unknown", "located_pending_return",
                                      "unapproved_location_known", "released_from_custody"}),
    "in_contact_location_unknown": frozenset({"whereabouts_unknown", "located_pending_return",
                                              "unapproved_location_known", "released_from_custody"}),
    "located_pending_return": frozenset({"in_placement", "whereabouts_unknown",
                                         "in_contact_location_unknown", "unapproved_location_known",
                                         "released_from_custody"}),
    "unapproved_location_known": frozenset({"in_placement", "whereabouts_unknown",
                                            "in_contact_location_unknown", "released_from_custody"}),
    "released_from_custody": frozenset({"in_placement"}),
}

# AFCARS placement settings (DESIGN §2).
PLACEMENT_SETTINGS = {
    "foster_family_relative": "Foster family home (relative)",
    "foster_family_nonrelative": "Foster family home (non-relative)",
    "group_home_family": "Group home (family-operated)",
    "group_home_staff": "Group home (staff-operated)",
    "group_home_shelter": "Group home (shelter)",
    "residential_treatment": "Residential treatment",
    "qrtp": "Qualified residential treatment program (QRTP)",
    "child_care_institution": "Child-care institution",
    "child_care_institution_shelter": "Child-care institution (shelter care)",
    "supervised_independent_living": "Supervised independent living",
    "juvenile_justice": "Juvenile justice facility",
    "medical": "Medical facility",
    "psychiatric": "Psychiatric facility",
    "placed_at_home": "Placed at home",
}

# Congregate settings: an ACF risk factor in later work (DESIGN §5).
CONGREGATE_SETTINGS = frozenset({
    "group_home_family", "group_home_staff", "group_home_shelter", "residential_treatment", "qrtp",
    "child_care_institution", "child_care_institution_shelter",
})

SEXES = {"F": "Female", "M": "Male", "U": "Unknown"}

VISIT_FREQUENCIES = {"weekly": "Weekly", "biweekly": "Every two weeks", "monthly": "Monthly"}
