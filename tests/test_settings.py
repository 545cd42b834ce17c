"""Settings: read from FIELDAPP_* variables, checked at start-up, overridden by tests."""
from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from fieldapp import clock, create_app, settings
from fieldapp.settings import SETTINGS, SettingsError, from_environment


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No FIELDAPP_* variable from the shell that runs the tests leaks into these tests."""
    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)


@pytest.fixture
def build(tmp_path):
    """create_app with the instance folder and database kept inside the test's tmp_path."""
    apps = []

    def build_app(config=None, *, keep_database_url=False):
        base = {"INSTANCE_PATH": str(tmp_path / "instance")}
        if not keep_database_url:
            base["DATABASE_URL"] = f"sqlite:///{tmp_path / 'settings.sqlite3'}"
        app = create_app({**base, **(config or {})})
        apps.append(app)
        return app

    yield build_app
    for app in apps:
        app.extensions["fieldapp.engine"].dispose()


# --- The secret key --------------------------------------------------------------------------

def test_production_refuses_to_start_without_a_secret_key(build):
    with pytest.raises(SettingsError) as refused:
        build()
    assert "FIELDAPP_SECRET_KEY is not set" in str(refused.value)


def test_an_empty_secret_key_counts_as_none(build, monkeypatch):
    monkeypatch.setenv("FIELDAPP_SECRET_KEY", "")
    with pytest.raises(SettingsError, match="FIELDAPP_SECRET_KEY"):
        build()


@pytest.mark.parametrize("value", ["0", "false", "no"])
def test_debug_switched_off_still_needs_a_secret_key(build, monkeypatch, value):
    monkeypatch.setenv("FIELDAPP_DEBUG", value)
    with pytest.raises(SettingsError, match="FIELDAPP_SECRET_KEY"):
        build()


def test_secret_key_from_the_environment_is_used(build, monkeypatch):
    monkeypatch.setenv("FIELDAPP_SECRET_KEY", "a-long-random-value-from-the-environment")
    monkeypatch.setenv("FIELDAPP_AUDIT_KEY", "another-long-random-value")
    app = build()
    assert app.secret_key == "a-long-random-value-from-the-environment"
    assert app.debug is False


def test_debug_starts_without_a_secret_key_and_makes_one_per_process(build, monkeypatch):
    monkeypatch.setenv("FIELDAPP_DEBUG", "1")
    first, second = build(), build()
    assert first.debug is True
    assert len(first.secret_key) == 64 and int(first.secret_key, 16) >= 0
    assert first.secret_key != second.secret_key


def test_testing_starts_without_a_secret_key(build):
    app = build({"TESTING": True})
    assert app.testing and len(app.secret_key) == 64


# --- The time zone ---------------------------------------------------------------------------

@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "CST6CDTX", "../etc/passwd", "not a zone"])
def test_an_unknown_time_zone_is_refused(build, monkeypatch, zone):
    monkeypatch.setenv("FIELDAPP_TIMEZONE", zone)
    with pytest.raises(SettingsError) as refused:
        build({"TESTING": True})
    assert str(refused.value) == f"FIELDAPP_TIMEZONE={zone!r} is not a known time zone"


def test_a_known_time_zone_is_the_agencys(build, monkeypatch):
    monkeypatch.setenv("FIELDAPP_TIMEZONE", "America/New_York")
    app = build({"TESTING": True})
    with app.app_context():
        assert str(clock.agency_zone()) == "America/New_York"


def test_the_time_zone_is_checked_even_when_given_by_the_test_config(build):
    with pytest.raises(SettingsError, match="FIELDAPP_TIMEZONE='Nowhere/Special'"):
        build({"TESTING": True, "TIMEZONE": "Nowhere/Special"})


# --- Reading the environment -----------------------------------------------------------------

def test_defaults_when_nothing_is_set():
    values = from_environment({})
    assert values == {setting.config_key: setting.default for setting in SETTINGS}
    assert values["LOGIN_MAX_FAILURES"] == 5
    assert values["LOGIN_THROTTLE_MINUTES"] == 15
    assert values["TRUSTED_PROXIES"] == 0
    assert values["DEBUG"] is False
    assert values["DATABASE_URL"] is None
    assert values["TIMEZONE"] == "America/Chicago"


def test_integers_are_parsed():
    values = from_environment({"FIELDAPP_LOGIN_MAX_FAILURES": "7",
                               "FIELDAPP_LOGIN_MAX_FAILURES_PER_ADDRESS": " 40 ",
                               "FIELDAPP_TRUSTED_PROXIES": "2",
                               "FIELDAPP_MAX_UPLOAD_BYTES": "1048576"})
    assert values["LOGIN_MAX_FAILURES"] == 7
    assert values["LOGIN_MAX_FAILURES_PER_ADDRESS"] == 40
    assert values["TRUSTED_PROXIES"] == 2
    assert values["MAX_CONTENT_LENGTH"] == 1048576
    assert values["LOGIN_THROTTLE_MINUTES"] == 15  # untouched settings keep their default


@pytest.mark.parametrize("raw", ["five", "2.5", "1e3", "0x10"])
def test_an_unreadable_integer_is_refused_by_name(raw):
    with pytest.raises(SettingsError) as refused:
        from_environment({"FIELDAPP_LOGIN_MAX_FAILURES": raw})
    assert str(refused.value).startswith(f"FIELDAPP_LOGIN_MAX_FAILURES={raw!r} cannot be read")


@pytest.mark.parametrize("raw, expected", [
    ("1", True), ("true", True), ("TRUE", True), (" yes ", True), ("on", True),
    ("0", False), ("false", False), ("no", False), ("off", False), ("", False),
])
def test_booleans_are_parsed(raw, expected):
    assert from_environment({"FIELDAPP_DEBUG": raw})["DEBUG"] is expected


def test_empty_values_mean_the_default():
    values = from_environment({"FIELDAPP_LOGIN_MAX_FAILURES": "", "FIELDAPP_TIMEZONE": ""})
    assert values["LOGIN_MAX_FAILURES"] == 5
    assert values["TIMEZONE"] == "America/Chicago"


def test_strings_are_kept_as_given():
    values = from_environment({"FIELDAPP_AGENCY_NAME": "Greene County Children's Division"})
    assert values["AGENCY_NAME"] == "Greene County Children's Division"


def test_without_an_argument_the_process_environment_is_read(monkeypatch):
    monkeypatch.setenv("FIELDAPP_BREAK_GLASS_HOURS", "6")
    assert from_environment()["BREAK_GLASS_HOURS"] == 6


def test_the_app_reads_the_environment_and_the_test_config_wins(build, monkeypatch):
    monkeypatch.setenv("FIELDAPP_LOGIN_MAX_FAILURES", "9")
    monkeypatch.setenv("FIELDAPP_LOGIN_THROTTLE_MINUTES", "30")
    monkeypatch.setenv("FIELDAPP_MAX_UPLOAD_BYTES", "2048")
    monkeypatch.setenv("FIELDAPP_AGENCY_NAME", "Test Agency")
    app = build({"TESTING": True, "LOGIN_MAX_FAILURES": 3})
    assert app.config["LOGIN_MAX_FAILURES"] == 3
    assert app.config["LOGIN_THROTTLE_MINUTES"] == 30
    assert app.config["MAX_CONTENT_LENGTH"] == 2048
    page = app.test_client().get("/login")
    assert "Test Agency" in page.text


def test_every_setting_is_declared_once_with_help():
    names = [setting.name for setting in SETTINGS]
    keys = [setting.config_key for setting in SETTINGS]
    assert len(set(names)) == len(names) and len(set(keys)) == len(keys)
    for setting in SETTINGS:
        assert setting.name.startswith("FIELDAPP_")
        assert setting.help.strip().endswith(".")


def test_check_accepts_a_complete_configuration():
    settings.check({"SECRET_KEY": "x" * 64, "AUDIT_KEY": "y" * 64, "TIMEZONE": "America/Chicago"})


# --- Where the database lives ----------------------------------------------------------------

def test_default_database_is_an_sqlite_file_in_the_instance_folder(build, tmp_path):
    app = build({"TESTING": True}, keep_database_url=True)
    instance = (tmp_path / "instance").resolve()
    assert app.instance_path == str(instance)
    assert instance.is_dir()
    url = make_url(app.config["DATABASE_URL"])
    assert url.get_backend_name() == "sqlite"
    assert Path(url.database) == instance / "fieldapp.sqlite3"
    assert app.extensions["fieldapp.engine"].url.database == url.database


def test_instance_folder_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("FIELDAPP_INSTANCE_PATH", str(tmp_path / "elsewhere"))
    app = create_app({"TESTING": True})
    try:
        assert make_url(app.config["DATABASE_URL"]).database == str(
            (tmp_path / "elsewhere").resolve() / "fieldapp.sqlite3")
    finally:
        app.extensions["fieldapp.engine"].dispose()


def test_database_url_from_the_environment_wins_over_the_default(build, monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'chosen.sqlite3'}"
    monkeypatch.setenv("FIELDAPP_DATABASE_URL", url)
    app = build({"TESTING": True}, keep_database_url=True)
    assert app.config["DATABASE_URL"] == url
    assert not (tmp_path / "instance" / "fieldapp.sqlite3").exists()


# --- Fixed at start-up -----------------------------------------------------------------------

def test_session_cookie_settings(build):
    app = build({"TESTING": True})
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
