"""The `fieldapp` command: Flask's own commands plus fieldapp's, all bound to the factory."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import FlaskGroup

from . import create_app, db, migrate
from .accounts import AccountError, create_user, get_or_create_team, hash_password
from .vocabulary import ROLES


def _create_app():
    return create_app()


@click.group(cls=FlaskGroup, create_app=_create_app, add_version_option=False)
def main():
    """fieldapp: missing-child and return checklists for foster-care caseworkers."""


def init_app(app) -> None:
    """Give the app's own CLI fieldapp's commands too (``flask --app fieldapp``, ``test_cli_runner``)."""
    for name, command in main.commands.items():
        app.cli.add_command(command, name)


@main.group("db")
def db_group():
    """Apply or undo the Alembic migrations on FIELDAPP_DATABASE_URL."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision):
    """Migrate the database up to REVISION (default: the latest)."""
    migrate.upgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"Database at {revision}.")


@db_group.command("downgrade")
@click.argument("revision")
def db_downgrade(revision):
    """Migrate the database down to REVISION ("base" empties it)."""
    migrate.downgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"Database at {revision}.")


@main.command("create-user")
@click.argument("username")
@click.option("--role", type=click.Choice(list(ROLES)), required=True)
@click.option("--name", "display_name", default="", help="Full name as shown in records.")
@click.option("--team", default="", help="Team name; created if new. Required for caseworkers and supervisors.")
@click.option("--phone", default=None, help="Work phone number.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(username, role, display_name, team, phone, password_stdin):
    """Add a user, asking for the password."""
    password = (sys.stdin.readline().rstrip("\n") if password_stdin
                else click.prompt("Password", hide_input=True, confirmation_prompt=True))
    try:
        password_hash = hash_password(password)
        with db.writing() as s:
            team_row = get_or_create_team(s, team) if team.strip() else None
            user = create_user(s, username=username, display_name=display_name or username,
                               role=role, password_hash=password_hash, team=team_row, phone=phone)
    except AccountError as problem:
        raise click.ClickException(str(problem)) from None
    click.echo(f"Created {user.role} {user.username}.")


@main.command("import-roster")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_roster_command(csv_file):
    """Load children and their current placements from a roster CSV (docs/roster-format.md)."""
    from .roster import RosterInvalid, import_roster
    try:
        with db.writing() as s:
            report = import_roster(s, csv_file.read_bytes(), None)
    except RosterInvalid as invalid:
        for problem in invalid.problems:
            click.echo(f"{csv_file}: {problem}", err=True)
        raise click.ClickException(f"{len(invalid.problems)} problem(s); nothing was imported.")
    click.echo(f"Roster imported: {report.summary}.")


@main.command("demo")
def demo_command():
    """Load fictional demo users and children, once, and print the logins."""
    from . import demo
    if demo.has_data(db.session()):
        click.echo("The database already has users; demo data was not loaded.")
        return
    from .policy import install_packaged
    passwords = demo.generate_passwords()
    hashes = {u: hash_password(p) for u, p in passwords.items()}  # slow: before the write lock
    with db.writing() as s:
        install_packaged(s)  # the demo's missing children need their checklists
        users = demo.create_demo_users(s, hashes)
        demo.create_demo_children(s, users)
    text = demo.format_logins(passwords)
    path = demo.logins_file(current_app.instance_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, 0o600)
    click.echo(text, nl=False)
    click.echo(f"(kept in {path})")


@main.group("policy")
def policy_group():
    """Install and list policy versions (the checklists, their deadlines and legal basis)."""


@policy_group.command("install")
@click.argument("policy_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def policy_install(policy_file):
    """Validate POLICY_FILE (TOML, docs/policies.md) and store it with its SHA-256."""
    from .policy import PolicyInvalid, install
    try:
        # Decoded from the bytes, so the stored text (and its hash) is the file exactly as it is.
        text = policy_file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise click.ClickException(f"{policy_file}: not UTF-8 text") from None
    try:
        with db.writing() as s:
            row, created = install(s, text, str(policy_file))
    except PolicyInvalid as problem:
        raise click.ClickException(str(problem)) from None
    verb = "Installed" if created else "Already installed"
    click.echo(f"{verb} {row.key} (in force from {row.effective_from}, sha256 {row.sha256}).")


@policy_group.command("list")
def policy_list():
    """Show the installed policy versions."""
    from sqlalchemy import select
    from .models import PolicyVersion
    for row in db.session().scalars(select(PolicyVersion).order_by(PolicyVersion.effective_from)):
        click.echo(f"{row.key}\tfrom {row.effective_from}\tsha256 {row.sha256}\t{row.title}")


@main.command("init")
def init_command():
    """Migrate the database, install the packaged policies, and on an empty database load the
    demo data."""
    from . import demo
    from .policy import install_packaged
    migrate.upgrade(current_app.config["DATABASE_URL"])
    click.echo("Database migrated.")
    with db.writing() as s:
        installed = install_packaged(s)
    click.echo("Policies installed: " + ", ".join(row.key for row in installed) + ".")
    if not demo.has_data(db.session()):
        click.get_current_context().invoke(demo_command)
        return
    path = demo.logins_file(current_app.instance_path)
    if path.exists():
        click.echo(path.read_text(), nl=False)


@main.command("verify-audit")
def verify_audit_command():
    """Walk the audit log's hash chain with FIELDAPP_AUDIT_KEY and name the first broken link."""
    from .audit import audit_key, verify_chain
    report = verify_chain(db.engine(), audit_key())
    if not report.intact:
        raise click.ClickException(str(report))
    click.echo(str(report))
