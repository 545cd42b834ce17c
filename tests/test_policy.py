"""Policy versions (DESIGN §4): validating a file, installing it, and which one an episode gets."""
from __future__ import annotations

import hashlib
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from fieldapp import db
from fieldapp.episodes import EpisodeInvalid, mark_located
from fieldapp.models import Child, Episode, EpisodeStep, Placement, PolicyVersion, User
from fieldapp.policy import (BASES, DEADLINE_RULES, EVENT_KINDS, EVIDENCE_TYPES, OUTCOMES,
                             EvidenceField, Policy, PolicyInvalid, Step, in_force_at, parse_policy)
from fieldapp.status import record_initial_status

CHICAGO = ZoneInfo("America/Chicago")
ROOT = Path(__file__).resolve().parent.parent
REPORTS = ("report_law_enforcement", "report_ncmec")


def packaged(key: str) -> str:
    return (resources.files("fieldapp") / "policies" / f"{key}.toml").read_text(encoding="utf-8")


def broken(old: str, new: str, *, in_step: str | None = None) -> str:
    """The 2023 policy with the first ``old`` (after step ``in_step``'s key, if given) replaced."""
    text = packaged("missouri-2023")
    start = text.index(f'key = "{in_step}"') if in_step else 0
    at = text.index(old, start)  # a ValueError here means the variant no longer breaks anything
    return text[:at] + new + text[at + len(old):]


def fresh():
    """The test's session with nothing cached, so reads show what was committed."""
    session = db.session()
    session.expire_all()
    return session


def installed() -> dict[str, PolicyVersion]:
    return {row.key: row for row in fresh().scalars(select(PolicyVersion))}


def due_dates(episode_id: int) -> dict[str, datetime | None]:
    rows = fresh().scalars(select(EpisodeStep).where(EpisodeStep.episode_id == episode_id))
    return {row.step_key: row.due_at for row in rows}


def write(folder, name: str, text: str):
    path = folder / name
    path.write_bytes(text.encode("utf-8"))
    return path


def install(runner, path):
    return runner.invoke(args=["policy", "install", str(path)])


# --- the packaged files -------------------------------------------------------------------

@pytest.mark.parametrize("key, effective_from, hours", [
    ("missouri-2019", date(2019, 5, 1), 24),
    ("missouri-2023", date(2023, 8, 28), 2),
])
def test_packaged_policies_give_the_reports_the_deadline_of_their_law(key, effective_from, hours):
    policy = parse_policy(packaged(key), f"{key}.toml")

    assert (policy.key, policy.effective_from) == (key, effective_from)
    for step_key in REPORTS:
        step = policy.step(step_key)
        assert (step.checklist, step.anchor, step.basis) == ("missing", "T0", "law")
        assert (step.deadline.rule, step.deadline.hours) == ("hours", hours)
        assert step.outcomes == ("done", "attempted")
    assert policy.step("report_law_enforcement").attempted_requires == (
        "escalation_troop", "escalation_person")


def test_the_two_packaged_policies_differ_only_where_the_law_changed():
    old = parse_policy(packaged("missouri-2019"), "missouri-2019.toml")
    new = parse_policy(packaged("missouri-2023"), "missouri-2023.toml")

    assert [s.key for s in old.steps] == [s.key for s in new.steps]
    changed = {s.key for s in old.steps if s.deadline != new.step(s.key).deadline}
    assert changed == {"report_law_enforcement", "report_ncmec", "report_contents"}
    assert old.screening == new.screening
    assert new.screening.demonstration is True
    assert "not validated" in new.screening.notice


def test_not_applicable_is_offered_only_where_a_step_may_truly_not_apply():
    policy = parse_policy(packaged("missouri-2023"), "missouri-2023.toml")
    allowing = {s.key for s in policy.steps if "not_applicable" in s.outcomes}
    assert allowing == {"notify_court_representative", "notify_parents", "placement_visit",
                        "cac_referral", "supportive_services"}


def test_policies_md_names_every_key_rule_basis_and_type():
    text = (ROOT / "docs" / "policies.md").read_text()
    tables = {"photo_cadence", "categories", "screening", "steps"}
    names = ({f.name for f in fields(Policy)} - tables
             | {f.name for f in fields(Step)} | {f.name for f in fields(EvidenceField)}
             | {"hours", "first_hours", "questions", "notice", "demonstration"}
             | set(DEADLINE_RULES) | set(BASES) | set(OUTCOMES) | set(EVIDENCE_TYPES)
             | {f"event:{kind}" for kind in EVENT_KINDS} | {"T0", "T1", "T2", "step:<key>"})
    tables = ("[photo_cadence]", "[categories]", "[screening]", "[[steps]]")
    assert [n for n in sorted(names) if f"`{n}`" not in text] == []
    assert [t for t in tables if t not in text] == []
    assert "not a validated tool" in text
    assert "fieldapp policy install" in text and "fieldapp policy list" in text


# --- malformed files ----------------------------------------------------------------------

MALFORMED = [
    pytest.param(broken('title = "Missouri: RSMo', 'title = Missouri: RSMo'),
                 "not valid TOML: Invalid value (at line 6", id="toml-syntax"),
    pytest.param(broken("effective_from = 2023-08-28\n", ""),
                 "effective_from: is missing", id="no-effective-from"),
    pytest.param(broken("effective_from = 2023-08-28", 'effective_from = "2023-08-28"'),
                 "effective_from: should be date, not str", id="effective-from-text"),
    pytest.param(broken("holidays = []", "holidays = [2026-05-25T00:00:00]"),
                 "holidays: should list dates", id="holiday-with-a-time"),
    pytest.param(broken('basis = "law"', 'basis = "maybe"', in_step="report_ncmec"),
                 "steps[1] (report_ncmec).basis: 'maybe' is not one of law, policy, agency_target",
                 id="basis-maybe"),
    pytest.param(broken('rule = "next_business_day"', 'rule = "fortnightly"'),
                 "steps[20] (placement_visit).deadline.rule: 'fortnightly' is not one of",
                 id="unknown-rule"),
    pytest.param(broken("hours = 2 }", "hours = 0 }", in_step="report_ncmec"),
                 "steps[1] (report_ncmec).deadline.hours: must be more than 0", id="zero-hours"),
    pytest.param(broken("hours = 24 }", "hours = -24 }", in_step="medical_exam"),
                 "steps[15] (medical_exam).deadline.hours: must be more than 0",
                 id="negative-hours"),
    pytest.param(broken("hours = 72 }", "hours = nan }", in_step="family_support_team"),
                 "steps[19] (family_support_team).deadline.hours: must be more than 0",
                 id="nan-hours"),
    pytest.param(broken("first_hours = 24", "first_hours = 0"),
                 "steps[9] (search_contacts).deadline.first_hours: must be more than 0",
                 id="zero-first-hours"),
    pytest.param(broken('deadline = { rule = "hours", hours = 24 }', 'deadline = { rule = "hours" }',
                        in_step="protective_alert"),
                 "steps[7] (protective_alert).deadline.hours: is missing", id="no-hours"),
    pytest.param(broken('anchor = "step:report_law_enforcement"', 'anchor = "step:nonexistent"'),
                 "steps[3] (inform_and_obtain).anchor: 'step:nonexistent' is not T0, T1, T2",
                 id="anchor-unknown-step"),
    pytest.param(broken('anchor = "step:report_law_enforcement"', 'anchor = "step:protective_alert"'),
                 "steps[3] (inform_and_obtain).anchor: 'step:protective_alert'",
                 id="anchor-later-step"),
    pytest.param(broken('anchor = "event:trafficking_identified"', 'anchor = "event:rumour"'),
                 "steps[11] (trafficking_report).anchor: 'event:rumour'", id="anchor-unknown-event"),
    pytest.param(broken('anchor = "T1"', 'anchor = "T3"'),
                 "steps[13] (notify_located).anchor: 'T3'", id="anchor-T3"),
    pytest.param(broken('outcomes = ["done", "attempted"]',
                        'outcomes = ["done", "attempted", "not_applicable"]', in_step="report_ncmec"),
                 "steps[1] (report_ncmec).outcomes: the law-enforcement and NCMEC reports are never "
                 "'not_applicable'", id="ncmec-not-applicable"),
    pytest.param(broken('outcomes = ["done", "attempted"]', 'outcomes = ["done", "not_applicable"]'),
                 "steps[0] (report_law_enforcement).outcomes: the law-enforcement and NCMEC reports "
                 "are never 'not_applicable'", id="law-enforcement-not-applicable"),
    pytest.param(broken('outcomes = ["done", "attempted"]', 'outcomes = ["attempted", "skipped"]',
                        in_step="protective_alert"),
                 "steps[7] (protective_alert).outcomes: must include 'done'", id="bad-outcomes"),
    pytest.param(broken(', options = ["Phone", "Online"]', "", in_step="report_ncmec"),
                 "steps[1] (report_ncmec).evidence[1].options: a choice field needs options",
                 id="choice-without-options"),
    pytest.param(broken('options = ["Phone", "Online"]', "options = []", in_step="report_ncmec"),
                 "steps[1] (report_ncmec).evidence[1].options: a choice field needs options",
                 id="choice-with-empty-options"),
    pytest.param(broken('type = "phone"', 'type = "telephone"'),
                 "steps[0] (report_law_enforcement).evidence[1].type: 'telephone' is not one of",
                 id="unknown-evidence-type"),
    pytest.param(broken('options_from = "factors"', 'options_from = "feelings"'),
                 "steps[17] (interview_factors).evidence[0].options_from: should name one of "
                 "factors, experiences", id="unknown-categories"),
    pytest.param(broken('{ name = "reference", label = "Alert reference", type = "text", '
                        'required = true }', "1"),
                 "steps[7] (protective_alert).evidence[0]: should be a table, not int",
                 id="evidence-not-a-table"),
    pytest.param(broken('"escalation_person"]', '"escalation_sergeant"]'),
                 "steps[0] (report_law_enforcement).attempted_requires: names no evidence field: "
                 "escalation_sergeant", id="attempted-requires-unknown"),
    pytest.param(broken('key = "notify_parents"', 'key = "notify_court_representative"'),
                 "steps[6].key: 'notify_court_representative' repeats", id="duplicate-step-key"),
    pytest.param(broken('key = "report_ncmec"', 'key = "report_to_the_center"'),
                 "steps: the report_ncmec step is required in every policy", id="no-ncmec-step"),
]


@pytest.mark.parametrize("text, message", MALFORMED)
def test_a_malformed_policy_is_refused_naming_the_file_and_the_key(text, message):
    with pytest.raises(PolicyInvalid) as refused:
        parse_policy(text, "county-draft.toml")
    assert str(refused.value).startswith("county-draft.toml: ")
    assert message in str(refused.value)


# --- fieldapp policy install / list, fieldapp init ------------------------------------------

def test_install_stores_the_exact_text_and_its_sha256(app, runner, clock, tmp_path):
    path = write(tmp_path, "missouri-2023.toml", packaged("missouri-2023"))
    digest = hashlib.sha256(path.read_bytes()).hexdigest()

    result = install(runner, path)

    assert result.exit_code == 0, result.output
    assert result.output == f"Installed missouri-2023 (in force from 2023-08-28, sha256 {digest}).\n"
    row = installed()["missouri-2023"]
    assert row.content.encode("utf-8") == path.read_bytes()
    assert row.sha256 == digest
    assert (row.title, row.effective_from) == ("Missouri: RSMo 210.795 and Child Welfare Manual "
                                               "4.8.3", date(2023, 8, 28))
    assert row.installed_at == clock.now()

    listing = runner.invoke(args=["policy", "list"])
    assert listing.exit_code == 0
    assert listing.output == (f"missouri-2023\tfrom 2023-08-28\tsha256 {digest}\t"
                              "Missouri: RSMo 210.795 and Child Welfare Manual 4.8.3\n")


def test_installing_the_same_file_again_changes_nothing(app, runner, clock, tmp_path):
    path = write(tmp_path, "missouri-2019.toml", packaged("missouri-2019"))
    assert install(runner, path).exit_code == 0
    first = installed()["missouri-2019"]
    clock.advance(hours=5)

    again = install(runner, path)

    assert again.exit_code == 0, again.output
    assert again.output.startswith("Already installed missouri-2019 (")
    assert fresh().scalar(select(func.count()).select_from(PolicyVersion)) == 1
    row = installed()["missouri-2019"]
    assert (row.id, row.installed_at) == (first.id, first.installed_at)


@pytest.mark.parametrize("change", [
    pytest.param(lambda text: text.replace("hours = 2 }", "hours = 4 }"), id="deadline"),
    pytest.param(lambda text: text + "# reviewed by the program manager\n", id="a-comment"),
])
def test_a_changed_file_under_an_installed_key_is_refused(app, runner, tmp_path, change):
    original = write(tmp_path, "missouri-2023.toml", packaged("missouri-2023"))
    assert install(runner, original).exit_code == 0
    edited = write(tmp_path, "missouri-2023-edited.toml", change(packaged("missouri-2023")))

    result = install(runner, edited)

    assert result.exit_code != 0
    assert str(edited) in result.output
    assert ("'missouri-2023' is installed already with other content; give a changed policy a "
            "new key") in result.output
    row = installed()["missouri-2023"]
    assert row.content == packaged("missouri-2023")
    assert row.sha256 == hashlib.sha256(original.read_bytes()).hexdigest()


CLI_CASES = ("toml-syntax", "no-effective-from", "anchor-unknown-step", "ncmec-not-applicable",
             "duplicate-step-key")


@pytest.mark.parametrize("text, message", [case for case in MALFORMED if case.id in CLI_CASES])
def test_a_malformed_file_exits_non_zero_and_installs_nothing(app, runner, tmp_path, text, message):
    path = write(tmp_path, "county-draft.toml", text)

    result = install(runner, path)

    assert result.exit_code != 0
    assert f"{path}: " in result.output
    assert message in result.output
    assert installed() == {}


def test_a_file_that_is_not_utf8_is_refused(app, runner, tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes(packaged("missouri-2023").encode("latin-1"))  # its "§" is not UTF-8 now

    result = install(runner, path)

    assert result.exit_code != 0
    assert f"{path}: not UTF-8" in result.output  # the message names the file
    assert installed() == {}


def test_init_installs_both_packaged_policies(app, runner, make_user):
    make_user("admin", "administrator", None)  # an agency of its own: no demo data

    result = runner.invoke(args=["init"])

    assert result.exit_code == 0, result.output
    assert "Policies installed: missouri-2019, missouri-2023." in result.output
    rows = installed()
    assert sorted(rows) == ["missouri-2019", "missouri-2023"]
    for key, row in rows.items():
        assert row.content == packaged(key)
        assert row.sha256 == hashlib.sha256(packaged(key).encode("utf-8")).hexdigest()
    assert runner.invoke(args=["init"]).exit_code == 0  # and again, harmlessly
    assert {k: r.id for k, r in installed().items()} == {k: r.id for k, r in rows.items()}


# --- which version an episode gets --------------------------------------------------------

def child_in_care_since(caseworker: User, since: datetime) -> Child:
    """A child whose status history starts early enough for an episode years back."""
    with db.writing() as s:
        child = Child(case_id=f"OLD-{since:%Y%m%d%H%M}", first_name="Jordan", last_name="Early",
                      date_of_birth=date(2006, 2, 3), sex="M", county="Greene",
                      caseworker_id=caseworker.id, created_at=since)
        s.add(child)
        s.add(Placement(child=child, setting="group_home_staff", provider_name="Oak House",
                        started_on=since.date(), created_at=since))
        record_initial_status(s, child, "in_placement", since, None, "test set-up")
    return child


@pytest.mark.parametrize("local_t0, key, hours", [
    # 23:30 in Chicago on the 27th is already the 28th in UTC: the agency's date decides.
    (datetime(2023, 8, 27, 23, 30), "missouri-2019", 24),
    (datetime(2023, 8, 28, 0, 30), "missouri-2023", 2),
    (datetime(2019, 5, 1, 0, 30), "missouri-2019", 24),
])
def test_the_policy_in_force_on_t0s_local_date_is_chosen(app, clock, make_user, make_episode,
                                                          local_t0, key, hours):
    clock.set(datetime(2023, 9, 1, 14, 0, tzinfo=UTC))
    worker = make_user("cw.pat")
    child = child_in_care_since(worker, datetime(2018, 1, 1, tzinfo=UTC))
    t0 = local_t0.replace(tzinfo=CHICAGO)

    episode = fresh().get(Episode, make_episode(child, worker, t0=t0).id)

    assert episode.policy_version.key == key
    assert in_force_at(fresh(), t0).key == key
    dues = due_dates(episode.id)
    for step_key in REPORTS:
        assert dues[step_key] == t0.astimezone(UTC) + timedelta(hours=hours)


def test_an_episode_before_any_installed_policy_is_refused(app, clock, make_user, make_episode):
    clock.set(datetime(2023, 9, 1, 14, 0, tzinfo=UTC))
    worker = make_user("cw.pat")
    child = child_in_care_since(worker, datetime(2018, 1, 1, tzinfo=UTC))
    t0 = datetime(2019, 4, 30, 23, 30, tzinfo=CHICAGO)  # 1 May in UTC, 30 April in Missouri

    with pytest.raises(EpisodeInvalid) as refused:
        make_episode(child, worker, t0=t0)

    assert refused.value.errors["discovered_at"].startswith("No installed policy covers this date")
    assert in_force_at(fresh(), t0) is None
    assert fresh().scalar(select(func.count()).select_from(Episode)) == 0
    assert fresh().get(Child, child.id).status == "in_placement"


def test_an_episode_keeps_its_policy_when_a_newer_one_is_installed(
        app, runner, clock, tmp_path, make_user, make_child, make_episode):
    worker = make_user("cw.pat")
    first = make_episode(make_child(worker), worker)
    before = due_dates(first.id)
    old_row = installed()["missouri-2023"]
    assert fresh().get(Episode, first.id).policy_version.key == "missouri-2023"

    text_2026 = (packaged("missouri-2023")
                 .replace('key = "missouri-2023"', 'key = "missouri-2026"')
                 .replace("effective_from = 2023-08-28", "effective_from = 2026-01-01")
                 .replace("hours = 2 }", "hours = 1 }"))
    result = install(runner, write(tmp_path, "missouri-2026.toml", text_2026))
    assert result.exit_code == 0, result.output
    # The first episode's T0 falls after 2026-01-01, yet it keeps the version it opened under.
    assert in_force_at(fresh(), fresh().get(Episode, first.id).discovered_at).key == "missouri-2026"

    clock.advance(hours=3)
    located_at = clock.now() - timedelta(minutes=10)
    with db.writing() as s:
        mark_located(s, s.get(Episode, first.id), s.get(User, worker.id), located_at=located_at,
                     located_where="in_state", located_place="A friend's flat",
                     located_by="Springfield police", status="located_pending_return",
                     note="Found at a friend's")

    episode = fresh().get(Episode, first.id)
    assert (episode.policy_version.key, episode.policy_version.sha256) == ("missouri-2023",
                                                                           old_row.sha256)
    assert episode.policy_version.content == packaged("missouri-2023")
    after = due_dates(first.id)
    assert {key: after[key] for key in before} == before
    assert after["report_ncmec"] == episode.discovered_at + timedelta(hours=2)
    assert after["notify_located"] == located_at + timedelta(hours=2)

    second = make_episode(make_child(worker), worker)
    episode = fresh().get(Episode, second.id)
    assert episode.policy_version.key == "missouri-2026"
    dues = due_dates(second.id)
    for step_key in REPORTS:
        assert dues[step_key] == episode.discovered_at + timedelta(hours=1)
    assert dues["protective_alert"] == episode.discovered_at + timedelta(hours=24)
