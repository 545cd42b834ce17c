"""Fixtures built on the app factory (flaskr's shape), run on SQLite and on PostgreSQL.

Each database is migrated once per test run into a template: an SQLite file that is copied per
test, and a PostgreSQL database that is cloned per test with CREATE DATABASE … TEMPLATE and
dropped afterwards. PostgreSQL tests run when FIELDAPP_TEST_POSTGRES_URL is set (CI sets it).
"""
from __future__ import annotations

import itertools
import os
import shutil
from datetime import UTC, date, datetime

import pytest
from hypothesis import HealthCheck, settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from werkzeug.security import generate_password_hash

from fieldapp import create_app, db, migrate
from fieldapp.accounts import create_user, get_or_create_team
from fieldapp.clock import FixedClock
from fieldapp.models import Child, Placement
from fieldapp.status import record_initial_status

from helpers import NOW, PASSWORD, IsolatedClient

# Hypothesis profiles. "ci" is derandomised (the same examples on every run, so `make test` is
# deterministic and a failure reproduces), has no deadline (the shared CI machine's timings are
# noise) and keeps no example database in the working tree. "dev" explores fresh random examples
# on each run: FIELDAPP_HYPOTHESIS_PROFILE=dev make test. The CI variable always means "ci".
settings.register_profile("ci", derandomize=True, deadline=None, max_examples=25, database=None,
                          print_blob=True,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.register_profile("dev", deadline=None,
                          suppress_health_check=[HealthCheck.function_scoped_fixture])
settings.load_profile("ci" if os.environ.get("CI")
                      else os.environ.get("FIELDAPP_HYPOTHESIS_PROFILE", "ci"))

POSTGRES_URL = os.environ.get("FIELDAPP_TEST_POSTGRES_URL")
_counter = itertools.count()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "template.sqlite3"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def postgres_admin():
    if not POSTGRES_URL:
        pytest.skip("FIELDAPP_TEST_POSTGRES_URL is not set")
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


def _create_database(admin, name: str, template: str | None = None) -> str:
    suffix = f" TEMPLATE {template}" if template else ""
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}{suffix}"))
    return make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)


def _drop_database(admin, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(scope="session")
def postgres_template(postgres_admin):
    name = f"fieldapp_tpl_{os.getpid()}"
    _drop_database(postgres_admin, name)
    url = _create_database(postgres_admin, name)
    migrate.upgrade(url)
    yield name
    _drop_database(postgres_admin, name)


@pytest.fixture
def empty_db_url(request, tmp_path):
    """A database with no tables at all, on each backend (for migration tests)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.sqlite3'}"
        return
    admin = request.getfixturevalue("postgres_admin")
    name = f"fieldapp_empty_{os.getpid()}_{next(_counter)}"
    yield _create_database(admin, name)
    _drop_database(admin, name)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A migrated, empty database of each kind, private to the test."""
    if request.param == "sqlite":
        path = tmp_path / "fieldapp.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    template = request.getfixturevalue("postgres_template")
    admin = request.getfixturevalue("postgres_admin")
    name = f"fieldapp_t_{os.getpid()}_{next(_counter)}"
    yield _create_database(admin, name, template)
    _drop_database(admin, name)


def pytest_generate_tests(metafunc):
    if "empty_db_url" in metafunc.fixturenames:
        metafunc.parametrize("empty_db_url", ["sqlite", "postgresql"], indirect=True)


@pytest.fixture
def clock():
    return FixedClock(NOW)


@pytest.fixture
def app_config(db_url, clock, tmp_path):
    return {"TESTING": True, "DATABASE_URL": db_url, "CLOCK": clock, "SECRET_KEY": "test-secret",
            "INSTANCE_PATH": str(tmp_path / "instance"), "WTF_CSRF_ENABLED": False,
            # Tests move the clock by hours and days with a client logged in. The session
            # timeouts have their own tests (tests/test_sessions.py), which set them back.
            "SESSION_IDLE_MINUTES": 10 ** 7, "SESSION_MAX_HOURS": 10 ** 6}


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session().close()
    app.extensions["fieldapp.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def htmx_client(app):
    """A client whose requests carry HX-Request, as htmx sends them."""
    client = app.test_client()
    client.environ_base["HTTP_HX_REQUEST"] = "true"
    return client


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture(scope="session")
def password_hash():
    # Hashed once: scrypt is deliberately slow, and every test makes users.
    return generate_password_hash(PASSWORD, method="scrypt")


@pytest.fixture
def make_user(app, password_hash):
    def make(username, role="caseworker", team="Team A", **kwargs):
        with db.writing() as s:
            team_row = get_or_create_team(s, team) if team else None
            return create_user(s, username=username, display_name=kwargs.pop("name", username.title()),
                               role=role, password_hash=password_hash, team=team_row, **kwargs)
    return make


@pytest.fixture
def make_child(app, clock):
    def make(caseworker, case_id=None, status="in_placement", setting="foster_family_nonrelative",
             born=date(2010, 5, 17), **kwargs):
        case_id = case_id or f"CASE-{next(_counter):05d}"
        with db.writing() as s:
            child = Child(case_id=case_id, first_name=kwargs.pop("first_name", "Test"),
                          last_name=kwargs.pop("last_name", case_id), date_of_birth=born,
                          sex=kwargs.pop("sex", "F"), county="Greene", caseworker_id=caseworker.id if caseworker else None,
                          created_at=clock.now(), **kwargs)
            s.add(child)
            s.add(Placement(child=child, setting=setting, provider_name="Maple House",
                            started_on=date(2025, 1, 6), created_at=clock.now()))
            record_initial_status(s, child, status, datetime(2025, 1, 6, 6, tzinfo=UTC), None,
                                  "test set-up")
        return child
    return make


@pytest.fixture
def login(client):
    """Log the test client in as ``user``; returns the response of the login POST."""
    def do_login(user, password=PASSWORD, target=client):
        return target.post("/login", data={"username": user.username, "password": password})
    return do_login


@pytest.fixture
def world(make_user, make_child):
    """Two teams and every role: the cast of the access-control tests."""
    class World:
        pass
    w = World()
    w.sup_a = make_user("sup.a", "supervisor", "Team A")
    w.cw_a = make_user("cw.a", "caseworker", "Team A")
    w.cw_a2 = make_user("cw.a2", "caseworker", "Team A")
    w.sup_b = make_user("sup.b", "supervisor", "Team B")
    w.cw_b = make_user("cw.b", "caseworker", "Team B")
    w.oncall = make_user("oncall", "on_call", None)
    w.admin = make_user("admin", "administrator", None)
    w.auditor = make_user("auditor", "auditor", None)
    w.child_a = make_child(w.cw_a, "A-1", first_name="Alice", last_name="Avery",
                           medical_notes="Insulin twice daily")
    w.child_b = make_child(w.cw_b, "B-1", first_name="Bobby", last_name="Brook")
    return w


@pytest.fixture
def policies(app):
    """The packaged policy versions (missouri-2019 and missouri-2023), installed."""
    from fieldapp.policy import install_packaged
    with db.writing() as s:
        return {row.key: row for row in install_packaged(s)}


@pytest.fixture
def make_episode(app, policies, clock):
    """Open a missing episode for ``child`` at T0 (default: an hour before "now")."""
    from datetime import timedelta
    from fieldapp.episodes import open_episode

    def make(child, user, t0=None, status="whereabouts_unknown", how_missing="ran_away"):
        with db.writing() as s:
            child = s.merge(child)
            user = s.merge(user)
            return open_episode(s, child, user, status=status,
                                discovered_at=t0 or clock.now() - timedelta(hours=1),
                                discovered_by_role="placement_provider",
                                discovered_by_name="House parent", how_missing=how_missing,
                                note="Not in the placement at bed check")
    return make
