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
        password_hash = hash_password(password, username, display_name)
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
    names = demo.display_names()
    # Slow: before the write lock.
    hashes = {u: hash_password(p, u, names[u]) for u, p in passwords.items()}
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


@main.group("summaries")
def summaries_group():
    """The per-episode summary rows that the compliance measures read."""


@summaries_group.command("rebuild")
def summaries_rebuild():
    """Rewrite every episode's summary row from its records (after an upgrade or an import)."""
    from .summaries import episode_id_batches, rebuild
    written = 0
    for batch in episode_id_batches(db.session()):
        with db.writing() as s:
            written += rebuild(s, batch)
        db.session().expire_all()  # keep memory flat over a national-size table
    click.echo(f"Summaries rebuilt: {written} episode(s).")


@main.command("compliance")
@click.option("--from", "start", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="First day of the period (T0 on or after it, agency time).")
@click.option("--to", "end", type=click.DateTime(["%Y-%m-%d"]), required=True,
              help="Last day of the period (T0 on or before it); S1 counts statuses on it.")
@click.option("--cohort-date", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="Count the point-in-time cohort instead: episodes missing at the close of this day.")
@click.option("--per-child", is_flag=True, help="A child counts once, if any episode matches.")
@click.option("--min-days", type=click.IntRange(min=1), default=None,
              help="Leave out absences shorter than this many days.")
@click.option("--team", "team_name", default=None, help="Only this team (default: the agency).")
@click.option("--format", "output", type=click.Choice(["json", "csv", "pdf"]), default="json")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, writable=True), default=None,
              help="With --format pdf: the file to write the PDF to.")
@click.option("--drill-down", "drill", default=None, metavar="MEASURE",
              help="Print the episode ids behind MEASURE's count instead (child ids for S1).")
def compliance_command(start, end, cohort_date, per_child, min_days, team_name, output, out_path,
                       drill):
    """The audit's compliance measures (docs/measures.md) over the per-episode summaries."""
    import json
    from sqlalchemy import select
    from .compliance.query import Population
    from .compliance.specs import BY_KEY
    from .compliance.summary import CSV_COLUMNS, compliance_summary, csv_rows, drill_down
    from .csv_safe import csv_text
    from .models import Team
    if start > end:
        raise click.BadParameter("--from is after --to.", param_hint="--from")
    team_id = None
    if team_name:
        team_id = db.session().scalar(select(Team.id).where(Team.name == team_name))
        if team_id is None:
            raise click.BadParameter(f"no team is called {team_name!r}.", param_hint="--team")
    pop = Population(start.date(), end.date(), cohort_date.date() if cohort_date else None,
                     per_child, min_days, team_id)
    if drill:
        if drill not in BY_KEY:
            raise click.BadParameter(f"choose one of {', '.join(BY_KEY)}.", param_hint="--drill-down")
        click.echo("\n".join(str(i) for i in drill_down(db.session(), pop, drill)))
        return
    summary = compliance_summary(db.session(), pop)
    if output == "json":
        click.echo(json.dumps(summary, indent=2))
        return
    if output == "pdf":
        if out_path is None:
            raise click.BadParameter("a PDF needs --out FILE.", param_hint="--out")
        from .compliance.report import compliance_pdf
        with current_app.test_request_context():  # url_for and the page context need a request
            document = compliance_pdf(db.session(), pop, summary)
        Path(out_path).write_bytes(document)
        click.echo(f"Wrote {out_path} ({len(document) // 1024} KiB).")
        return
    click.echo(csv_text(CSV_COLUMNS, csv_rows(summary)), nl=False)


@main.command("reconciliation")
@click.option("--format", "output", type=click.Choice(["json", "csv"]), default="json")
def reconciliation_command(output):
    """The children whose status here differs from FACES's last imported living arrangement."""
    import json
    from .csv_safe import csv_text
    from .reconciliation import CSV_COLUMNS, csv_rows, differences
    rows = csv_rows(differences(db.session()))
    if output == "json":
        click.echo(json.dumps(rows, indent=2))
        return
    click.echo(csv_text(CSV_COLUMNS, rows), nl=False)


@main.command("export-sqlite")
@click.argument("out", type=click.Path(dir_okay=False, writable=True, path_type=Path))
@click.option("--deidentified", is_flag=True,
              help="No names, free text or contact names; ages, not dates of birth; "
                   "pseudonyms, not case ids.")
def export_sqlite_command(out, deidentified):
    """Write episodes, steps, contacts and measures to a SQLite file for Datasette."""
    from .exports import expected_rows, export_sqlite, record_export
    db_session = db.session()
    with click.progressbar(length=expected_rows(db_session), label="Exporting",
                           file=sys.stderr) as bar:
        report = export_sqlite(db_session, out, deidentified=deidentified, progress=bar.update)
    with db.writing() as s:
        record_export(s, None, report)
    click.echo(report.summary)


@main.command("import-history")
@click.argument("jsonl_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_history_command(jsonl_file):
    """Load past records from the old system (JSON Lines, docs/import-format.md): every line is
    checked first, nothing is written unless all are good, and a re-import changes nothing."""
    import hashlib
    from .history_import import HistoryInvalid, import_history, read_file
    raw = jsonl_file.read_bytes()
    try:
        with db.writing() as s:
            records = read_file(s, raw)
            with click.progressbar(length=len(records), label="Importing", file=sys.stderr) as bar:
                report = import_history(s, records, None, sha256=hashlib.sha256(raw).hexdigest(),
                                        progress=bar.update)
    except HistoryInvalid as invalid:
        for problem in invalid.problems:
            click.echo(f"{jsonl_file}: {problem}", err=True)
        raise click.ClickException(f"{len(invalid.problems)} problem(s); nothing was imported.")
    click.echo(f"History imported: {report.summary}.")


@main.command("backup")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite OUT if it exists.")
def backup_command(out, force):
    """Copy the SQLite database to OUT while the app serves (SQLite's online backup API), then
    check the copy. For PostgreSQL use pg_dump (docs/deploy.md)."""
    from .backup import BackupError, backup
    try:
        checked = backup(current_app.config["DATABASE_URL"], out, force=force)
    except BackupError as problem:
        raise click.ClickException(str(problem)) from None
    click.echo(f"Backed up to {checked.summary}.")


@main.command("restore")
@click.argument("backup_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds records.")
def restore_command(backup_file, force):
    """Replace the SQLite database with BACKUP_FILE, after checking that it is an intact fieldapp
    database at this release's migration. Stop the server first."""
    from .backup import BackupError, restore
    try:
        checked = restore(current_app.config["DATABASE_URL"], backup_file, force=force)
    except BackupError as problem:
        raise click.ClickException(str(problem)) from None
    click.echo(f"Restored {checked.summary}. Check it with `fieldapp verify-audit`.")
