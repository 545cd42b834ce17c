"""The password policy (issue 8, Security 4): a minimum length, a list of common passwords
generated here (fieldapp/common_passwords.py), and no username or name inside the password;
applied wherever a password is set (the administrator's form, the CLI, the demo)."""
from __future__ import annotations

import secrets

import pytest

from helpers import PASSWORD, count, field_error, fresh
from fieldapp import common_passwords
from fieldapp.accounts import AccountError, hash_password, password_problem
from fieldapp.demo import DEMO_USERS, generate_passwords
from fieldapp.models import User

TOO_SHORT = "Use at least 12 characters."
HAS_NAME = "Do not use the username or the person's name in the password."
TOO_COMMON = "That password is too common"


@pytest.mark.parametrize("password", [
    "password1234", "Password2024!", "P@ssw0rd2024!", "PASSWORD 2024", "p4$$w0rd12345",
    "fostercare2025", "F0sterCare#1!", "Caseworker123!", "childwelfare1", "Missouri2025!",
    "Summer2024!!", "winter-2026!!", "Autumn 2025!", "Fall2025Fall2025",
    "qwertyuiop12", "QWERTYUIOP!!", "asdfghjkl;'1", "1qaz2wsx3edc4rfv", "zxcvbnm,./12",
    "123456789012", "098765432109", "abcdefghijkl", "zyxwvutsrqpo",
    "aaaaaaaaaaaa", "abababababab", "12!12!12!12!", "............",
    "letmein12345", "iloveyou1234", "welcomewelcome", "2024Welcome!", "1password123",
    "myfamily2024", "ILoveChiefs2025", "changeme1234", "Trustno1Trustno1", "Trustno1_2025",
])
def test_common_passwords_and_their_variations_are_refused(password):
    assert len(password) >= 12, password  # so the length rule is not what refuses them
    problem = password_problem(password)
    assert problem and problem.startswith(TOO_COMMON), (password, problem)
    with pytest.raises(AccountError, match=TOO_COMMON):
        hash_password(password)


@pytest.mark.parametrize("password", [
    PASSWORD, "violet staple quarry 42", "Tr0ub4dor&3xyz", "kettle moss umbrella jig",
    "x7Gk2pQz9LmW", "my dog eats kale", "Otters swim at 6am", "walrus-ledger-12-pine",
])
def test_unusual_passwords_pass(password):
    assert password_problem(password) is None
    assert hash_password(password).startswith("scrypt:")


def test_random_passwords_pass():
    # A policy that refused random strings would be refusing by accident.
    for _ in range(500):
        password = secrets.token_urlsafe(12)
        assert password_problem(password) is None, password


@pytest.mark.parametrize("password", ["", "short", "elevenchars", "a" * 11])
def test_short_passwords_are_refused_first(password):
    assert password_problem(password) == TOO_SHORT


@pytest.mark.parametrize(("password", "username", "name"), [
    ("nora.owl.is.great", "nora.owl", "Nora Owl"),
    ("NoraOwlSecret#77", "nora.owl", "Nora Owl"),  # the name, squashed
    ("secret N0r@0wl 77", "nora.owl", "Nora Owl"),  # and in leetspeak
    ("tangerine-nightingale", "night.owl", "Nightingale Brown"),  # a part of the name
    ("brown paper parcel 9", "night.owl", "Nightingale Brown"),
    ("x cw.a kettle moss 7", "cw.a", "Cw.A"),  # a short username, whole
])
def test_the_username_or_the_name_in_the_password_is_refused(password, username, name):
    assert password_problem(password, username, name) == HAS_NAME
    assert password_problem(password) is None  # for another account it would do


def test_short_parts_of_a_name_are_not_looked_for():
    # "Al" and "Lee" are too short to find in a password without refusing good ones by chance.
    assert password_problem("kettle moss lee al 7", "al.lee", "Al Lee") is None


def test_the_list_is_generated_from_our_own_patterns():
    stems = common_passwords.stems()
    for stem in ("password", "fostercare", "childwelfare", "caseworker", "summer2024",
                 "qwertyuiop", "1qaz2wsx", "abcdefgh", "welcomewelcome"):
        assert common_passwords.fold(stem) in stems, stem
    assert common_passwords.fold("2024!") in common_passwords.endings()
    # Folding merges the look-alikes, so one entry stands for all its spellings.
    assert common_passwords.fold("P@$$w0rd") == common_passwords.fold("password")
    assert common_passwords.fold("Summer 2024") == common_passwords.fold("summer-2O24")


# --- wherever a password is set --------------------------------------------------------------

@pytest.fixture
def as_admin(client, world, login):
    login(world.admin)
    return client


def new_user(**fields) -> dict:
    data = {"username": "new.worker", "display_name": "Nell Worker", "role": "caseworker",
            "team": "Team A", "phone": "417-555-0199", "password": "violet staple quarry 42"}
    data.update(fields)
    return data


@pytest.mark.parametrize(("password", "message"), [
    ("Fostercare2026!", TOO_COMMON),
    ("qwertyuiop[]", TOO_COMMON),
    ("nell worker is here", HAS_NAME),
    ("my new.worker login", HAS_NAME),
])
def test_the_admin_form_refuses_a_weak_password_beside_the_field(as_admin, password, message):
    before = count(User)
    response = as_admin.post("/admin/users", data=new_user(password=password))
    assert response.status_code == 422
    assert field_error(response.text, "password").startswith(message)
    assert field_error(response.text, "username") == ""
    assert password not in response.text  # a refused password is not echoed back
    assert count(User) == before


def test_the_admin_form_accepts_a_good_password(as_admin):
    response = as_admin.post("/admin/users", data=new_user())
    assert response.status_code == 303
    assert fresh().query(User).filter_by(username="new.worker").one().display_name == "Nell Worker"


@pytest.mark.parametrize(("password", "message"), [
    ("Password2026!", TOO_COMMON),
    ("1234567890123", TOO_COMMON),
    ("night owl kettle 4", HAS_NAME),
    ("kettle Nora moss 4", HAS_NAME),
])
def test_the_cli_refuses_a_weak_password(app, runner, password, message):
    result = runner.invoke(args=["create-user", "night.owl", "--role", "auditor",
                                 "--name", "Nora Owl", "--password-stdin"], input=password + "\n")
    assert result.exit_code == 1
    assert message in result.output
    assert password not in result.output
    assert count(User) == 0


def test_demo_passwords_pass_the_policy():
    names = {username: name for username, name, *_ in DEMO_USERS}
    for _ in range(20):
        for username, password in generate_passwords().items():
            assert password_problem(password, username, names[username]) is None
