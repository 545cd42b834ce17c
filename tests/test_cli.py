"""The `fieldapp` commands: create-user, demo and init, run through the app's CLI runner."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import func, select

from fieldapp.models import Child, StatusChange, User
from fieldapp.vocabulary import MISSING_STATUSES

from helpers import fresh

PASSWORD = "lantern moths keep watch 7"  # not the username: the policy refuses that


def count(model) -> int:
    return fresh().scalar(select(func.count()).select_from(model))


def user_named(username: str) -> User | None:
    return fresh().scalar(select(User).where(User.username == username))


def logs_in(app, username: str, password: str) -> bool:
    client = app.test_client()
    response = client.post("/login", data={"username": username, "password": password})
    if response.status_code != 302:
        return False
    home = client.get("/")  # each role's start page, not the login page
    return home.status_code == 302 and "/login" not in home.headers["Location"]


def test_create_user_reads_the_password_from_stdin(app, runner):
    result = runner.invoke(args=["create-user", "Night.Owl", "--role", "on_call",
                                 "--name", "Nora Owl", "--phone", "417-555-0142",
                                 "--password-stdin"], input=PASSWORD + "\n")

    assert result.exit_code == 0, result.output
    assert "Created on_call night.owl." in result.output
    assert PASSWORD not in result.output
    user = user_named("night.owl")
    assert (user.display_name, user.role, user.team, user.phone) == (
        "Nora Owl", "on_call", None, "417-555-0142")
    assert logs_in(app, "night.owl", PASSWORD)
    assert not logs_in(app, "night.owl", PASSWORD + "x")


def test_create_user_puts_caseworkers_in_a_team(runner):
    result = runner.invoke(args=["create-user", "cw.new", "--role", "caseworker",
                                 "--team", "Team North", "--password-stdin"],
                           input=PASSWORD + "\n")
    assert result.exit_code == 0, result.output
    assert user_named("cw.new").team.name == "Team North"


@pytest.mark.parametrize("args, password, message", [
    (["create-user", "weak", "--role", "auditor"], "short\n", "Use at least 12 characters."),
    (["create-user", "weak", "--role", "auditor"], "\n", "Use at least 12 characters."),
    (["create-user", "weak", "--role", "caseworker"], PASSWORD + "\n",
     "Caseworkers and supervisors belong to a team."),
    (["create-user", "bad name!", "--role", "auditor"], PASSWORD + "\n",
     "letters, digits, dots, dashes and underscores only"),
])
def test_create_user_refuses_with_a_message(app, runner, args, password, message):
    result = runner.invoke(args=[*args, "--password-stdin"], input=password)
    assert result.exit_code == 1
    assert message in result.output
    assert count(User) == 0


def test_create_user_refuses_a_taken_username(app, runner):
    first = runner.invoke(args=["create-user", "dup", "--role", "auditor", "--password-stdin"],
                          input=PASSWORD + "\n")
    assert first.exit_code == 0
    again = runner.invoke(args=["create-user", "DUP", "--role", "administrator",
                                "--password-stdin"], input=PASSWORD + "\n")
    assert again.exit_code == 1 and "is taken" in again.output
    assert count(User) == 1 and user_named("dup").role == "auditor"


def read_logins(path: Path) -> dict[str, tuple[str, str]]:
    """username -> (role, password), from the lines of demo-logins.txt."""
    logins = {}
    for line in path.read_text().splitlines()[1:]:
        role, username, password, *_name = line.split()
        logins[username] = (role, password)
    return logins


def test_demo_loads_a_small_agency_once(app, runner):
    result = runner.invoke(args=["demo"])

    assert result.exit_code == 0, result.output
    path = Path(app.instance_path) / "demo-logins.txt"
    assert path.exists()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() in result.output
    logins = read_logins(path)
    assert len(logins) == 7 == count(User)
    assert {role for role, _ in logins.values()} == {
        "administrator", "supervisor", "caseworker", "on_call", "auditor"}
    for username, (role, password) in logins.items():
        assert user_named(username).role == role
        assert logs_in(app, username, password), username

    children = fresh().scalars(select(Child)).all()
    assert 20 <= len(children) <= 30
    statuses = {c.status for c in children}
    assert len(statuses) >= 4 and statuses & MISSING_STATUSES and "in_placement" in statuses
    for c in children:
        assert c.caseworker.role == "caseworker"
        newest = c.status_changes[0]
        assert (newest.status, newest.since) == (c.status, c.status_since)
    counts = (count(User), count(Child), count(StatusChange))

    again = runner.invoke(args=["demo"])

    assert again.exit_code == 0
    assert "already has users; demo data was not loaded" in again.output
    assert (count(User), count(Child), count(StatusChange)) == counts
    assert read_logins(path) == logins


def test_init_on_an_empty_database_loads_the_demo(app, runner):
    result = runner.invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert "Database migrated." in result.output
    assert count(User) == 7 and count(Child) > 0
    assert (Path(app.instance_path) / "demo-logins.txt").read_text() in result.output


def test_init_on_a_migrated_database_prints_the_logins(app, runner):
    assert runner.invoke(args=["demo"]).exit_code == 0
    logins_text = (Path(app.instance_path) / "demo-logins.txt").read_text()
    counts = (count(User), count(Child), count(StatusChange))

    result = runner.invoke(args=["init"])

    assert result.exit_code == 0, result.output
    assert "Database migrated." in result.output
    assert logins_text in result.output
    assert (count(User), count(Child), count(StatusChange)) == counts


def test_init_with_users_of_its_own_loads_no_demo(app, runner, make_user):
    make_user("real.admin", "administrator", None)
    result = runner.invoke(args=["init"])
    assert result.exit_code == 0, result.output
    assert "Database migrated." in result.output
    assert "Demo logins" not in result.output
    assert count(User) == 1 and count(Child) == 0
    assert not (Path(app.instance_path) / "demo-logins.txt").exists()
