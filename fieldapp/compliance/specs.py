"""The measures of DESIGN §6 as data: what each counts, over which episodes, with which parts.

A measure is one of four shapes, each turned into SQL by ``query``:
- ``steps``: episodes where none (or not all) of some steps are evidenced, with each step also
  shown on its own (the "components");
- ``flag``: episodes where a summary column has (or lacks) a value, e.g. a risk factor at T0;
- ``months``: calendar months missing without a search contact, over all months missing (M6);
- ``status``: children by precise status on a date (S1).
"""
from __future__ import annotations

from dataclasses import dataclass

# Which episodes a measure's denominator holds.
ALL, RETURNED, AT_RISK = "all", "returned", "at_risk"


@dataclass(frozen=True)
class Measure:
    key: str
    label: str
    shape: str  # steps, flag, months or status
    universe: str = ALL
    steps: tuple[str, ...] = ()
    rule: str = "none"  # steps: "none" evidenced, or "not_all" of them
    column: str = ""  # flag: the summary column tested
    at_least: int | None = None  # flag: a count column must reach this; else a yes/no column
    wanted: bool = True  # flag: count the episodes where the test holds (or, if False, fails)
    has_deadline: bool = True  # whether "within the deadline" differs from "any evidence"


NOTIFICATIONS = ("notify_juvenile_officer", "notify_court_representative", "notify_parents")
HEALTH_AND_SAFETY = ("safety_assessment", "medical_exam", "family_support_team",
                     "trafficking_screening", "interview_factors", "interview_experiences")

STEP_LABELS = {
    "report_law_enforcement": "Law-enforcement report",
    "report_ncmec": "NCMEC report",
    "notify_juvenile_officer": "Juvenile officer",
    "notify_court_representative": "Court representative",
    "notify_parents": "Parents",
    "search_contacts": "Search contact or attempt",
    "safety_assessment": "Safety assessment",
    "medical_exam": "Medical examination",
    "family_support_team": "Family Support Team meeting",
    "trafficking_screening": "Trafficking screening",
    "interview_factors": "Interview: factors",
    "interview_experiences": "Interview: experiences",
    "supportive_services": "Supportive service",
}

MEASURES = (
    Measure("M1", "No law-enforcement report", "steps", steps=("report_law_enforcement",)),
    Measure("M2", "No NCMEC report", "steps", steps=("report_ncmec",)),
    Measure("M3", "Reported to neither law enforcement nor NCMEC", "steps",
            steps=("report_law_enforcement", "report_ncmec")),
    Measure("M4a", "None of the notifications (juvenile officer, court representative, parents)",
            "steps", steps=NOTIFICATIONS),
    Measure("M4b", "Not all of the notifications", "steps", steps=NOTIFICATIONS, rule="not_all"),
    Measure("M5", "No search contact or attempt in the first month", "steps",
            steps=("search_contacts",)),
    Measure("M6", "Calendar months missing with no search contact", "months",
            has_deadline=False),
    Measure("R1", "Returned with none of the health and safety checks", "steps",
            universe=RETURNED, steps=HEALTH_AND_SAFETY),
    Measure("R2", "Returned with no supportive service in the 6 months after return", "steps",
            universe=RETURNED, steps=("supportive_services",)),
    Measure("P1", "At least one ACF risk factor at T0", "flag", column="acf_factors",
            at_least=1, has_deadline=False),
    Measure("P1-MO", "At least one Missouri risk factor at T0", "flag", column="mo_factors",
            at_least=1, has_deadline=False),
    Measure("P2", "Of those with an ACF risk factor, an intervention in the 6 months before T0",
            "flag", universe=AT_RISK, column="intervention_before_t0", has_deadline=False),
    Measure("P3", "No visitation plan at T0", "flag", column="visitation_plan_at_t0",
            wanted=False, has_deadline=False),
    Measure("S1", "Truly missing, against at a known unapproved address, on the date", "status",
            has_deadline=False),
)
BY_KEY = {m.key: m for m in MEASURES}
