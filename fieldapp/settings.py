"""Every setting fieldapp reads, declared once with its default and a line of help.

Settings come from the environment (``FIELDAPP_*``). ``docs/configuration.md`` is checked against
this list by ``tests/test_docs.py``, so a new setting cannot go undocumented.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Callable


class SettingsError(RuntimeError):
    """Raised at start-up when the configuration cannot run safely."""


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Setting:
    name: str
    config_key: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str


SETTINGS: tuple[Setting, ...] = (
    Setting("FIELDAPP_DATABASE_URL", "DATABASE_URL", None,
            "SQLAlchemy URL of the database. Default: an SQLite file, "
            "`sqlite:///<instance>/fieldapp.sqlite3`. For PostgreSQL use "
            "`postgresql+psycopg://user@host/dbname`."),
    Setting("FIELDAPP_INSTANCE_PATH", "INSTANCE_PATH", None,
            "Folder for the SQLite file, the generated secret key and the demo logins. "
            "Default: `instance/` in the checkout."),
    Setting("FIELDAPP_SECRET_KEY", "SECRET_KEY", None,
            "Key that signs session cookies and CSRF tokens. Required unless debugging or testing; "
            "`make run` generates one into the instance folder the first time."),
    Setting("FIELDAPP_AUDIT_KEY", "AUDIT_KEY", None,
            "Key of the audit log's HMAC-SHA256 chain, kept outside the database (and its backups). "
            "Required unless debugging or testing; `make run` generates one into the instance "
            "folder the first time."),
    Setting("FIELDAPP_TIMEZONE", "TIMEZONE", "America/Chicago",
            "The agency's time zone (an IANA name). Deadlines, month windows and displayed times use it."),
    Setting("FIELDAPP_AGENCY_NAME", "AGENCY_NAME", "Children's Division (demonstration)",
            "The agency's name as shown on pages and printed records."),
    Setting("FIELDAPP_DEBUG", "DEBUG", False,
            "Run in debug mode: a missing secret key is tolerated. Never in production.", _bool),
    Setting("FIELDAPP_TRUSTED_PROXIES", "TRUSTED_PROXIES", 0,
            "How many reverse proxies (e.g. the TLS proxy) stand in front of the app. Their "
            "X-Forwarded-For/-Proto/-Host headers are trusted that many hops deep; 0 trusts none.", int),
    Setting("FIELDAPP_LOGIN_MAX_FAILURES", "LOGIN_MAX_FAILURES", 5,
            "Failed logins allowed per account within the throttle window before it is refused.", int),
    Setting("FIELDAPP_LOGIN_MAX_FAILURES_PER_ADDRESS", "LOGIN_MAX_FAILURES_PER_ADDRESS", 20,
            "Failed logins allowed per client address within the throttle window.", int),
    Setting("FIELDAPP_LOGIN_THROTTLE_MINUTES", "LOGIN_THROTTLE_MINUTES", 15,
            "Length of the login throttle window, in minutes.", int),
    Setting("FIELDAPP_SESSION_IDLE_MINUTES", "SESSION_IDLE_MINUTES", 30,
            "Minutes without activity after which a login ends (NIST SP 800-63B AAL2, CJIS: 30). "
            "Work saved on the phone is kept and sent after the next login.", int),
    Setting("FIELDAPP_SESSION_MAX_HOURS", "SESSION_MAX_HOURS", 12,
            "Hours after which a login ends however active it is: one long shift.", int),
    Setting("FIELDAPP_BREAK_GLASS_HOURS", "BREAK_GLASS_HOURS", 12,
            "How long an on-call worker's break-the-glass grant to one child lasts, in hours.", int),
    Setting("FIELDAPP_LOCATION_REVERIFY_DAYS", "LOCATION_REVERIFY_DAYS", 30,
            "Days after which a child at a known unapproved address is flagged for re-verification.", int),
    Setting("FIELDAPP_MAX_UPLOAD_BYTES", "MAX_CONTENT_LENGTH", 5 * 1024 * 1024,
            "Largest request body accepted, in bytes (roster files and photos).", int),
    Setting("FIELDAPP_OFFLINE_HOURS", "OFFLINE_HOURS", 12,
            "Hours a phone keeps its cached case pages without checking in; then they are wiped.", int),
    Setting("FIELDAPP_AGENCY_24H_PHONE", "AGENCY_24H_PHONE", "",
            "The agency's 24-hour number, printed on the report packet for law enforcement and NCMEC."),
    Setting("FIELDAPP_RELEASE", "RELEASE", "",
            "A label for this deployment; a new one makes phones install a new service worker.", str),
)


def from_environment(environ: dict[str, str] | None = None) -> dict[str, Any]:
    """Config values for every setting: the default, overridden by the environment."""
    environ = os.environ if environ is None else environ
    values = {}
    for setting in SETTINGS:
        raw = environ.get(setting.name)
        if raw in (None, ""):
            values[setting.config_key] = setting.default
            continue
        try:
            values[setting.config_key] = setting.parse(raw)
        except ValueError as exc:
            raise SettingsError(f"{setting.name}={raw!r} cannot be read: {exc}") from exc
    return values


def check(config: dict[str, Any]) -> None:
    """Refuse to start in a configuration that would be unsafe or cannot work."""
    trial = config.get("DEBUG") or config.get("TESTING")
    if not config.get("SECRET_KEY") and not trial:
        raise SettingsError(
            "FIELDAPP_SECRET_KEY is not set. Set it to a long random value (for example the output of "
            "`python -c 'import secrets; print(secrets.token_hex(32))'`), or use `make run`, which "
            "generates one in the instance folder.")
    if not config.get("AUDIT_KEY") and not trial:
        raise SettingsError(
            "FIELDAPP_AUDIT_KEY is not set. It keys the audit log's hash chain and must be kept "
            "outside the database: set it to a long random value of its own (for example the output "
            "of `python -c 'import secrets; print(secrets.token_hex(32))'`), and keep it, because "
            "`fieldapp verify-audit` needs the same key for the whole log. `make run` generates one "
            "in the instance folder.")
    for key in ("SESSION_IDLE_MINUTES", "SESSION_MAX_HOURS"):
        if config.get(key, 1) <= 0:
            raise SettingsError(f"FIELDAPP_{key} must be a positive number, not {config[key]!r}: "
                                "a session that ends at once would let nobody work.")
    try:
        from zoneinfo import ZoneInfo
        ZoneInfo(config["TIMEZONE"])
    except Exception as exc:  # zoneinfo raises several kinds for a bad name
        raise SettingsError(f"FIELDAPP_TIMEZONE={config['TIMEZONE']!r} is not a known time zone") from exc
