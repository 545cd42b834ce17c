"""fieldapp: missing-child and return checklists for foster-care caseworkers."""
from __future__ import annotations

import secrets
from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from . import clock, db, settings
from .extensions import csrf, htmx, login_manager

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def create_app(config: dict | None = None) -> Flask:
    """Build the app: defaults, then the environment, then ``config`` (the tests' override)."""
    values = settings.from_environment()
    values.update(config or {})
    instance_path = Path(values.get("INSTANCE_PATH") or PROJECT_ROOT / "instance").resolve()
    app = Flask(__name__, instance_path=str(instance_path),
                template_folder=str(PROJECT_ROOT / "templates"),
                static_folder=str(PROJECT_ROOT / "static"))
    app.config.update(values)
    if not app.config["DATABASE_URL"]:
        instance_path.mkdir(parents=True, exist_ok=True)
        app.config["DATABASE_URL"] = f"sqlite:///{instance_path / 'fieldapp.sqlite3'}"
    settings.check(app.config)
    if not app.config["SECRET_KEY"]:
        # Debug or testing only (settings.check refuses otherwise): sessions last one process.
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session; a shift is long
    )
    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)

    app.extensions["fieldapp.clock"] = app.config.get("CLOCK") or clock.SystemClock()
    db.init_app(app)
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)

    from . import access_log, cli, input_bounds, session_policy, web
    input_bounds.init_app(app)  # first: the routes below take its id converter
    web.init_app(app)
    session_policy.init_app(app)
    access_log.init_app(app)
    cli.init_app(app)

    from .auth.views import bp as auth_bp
    from .cases.views import bp as cases_bp
    from .admin.views import bp as admin_bp
    from .wizard.views import bp as checklists_bp
    from .signoff.views import bp as reviews_bp
    app.register_blueprint(auth_bp)
    app.register_blueprint(checklists_bp)
    app.register_blueprint(reviews_bp)
    app.register_blueprint(cases_bp)
    app.register_blueprint(admin_bp)
    from .reports.views import bp as reports_bp
    app.register_blueprint(reports_bp)
    from .api import bp as api_bp
    app.register_blueprint(api_bp)
    from .profiles.views import bp as profiles_bp
    app.register_blueprint(profiles_bp)
    from .pwa import bp as pwa_bp
    app.register_blueprint(pwa_bp)
    from .compliance.views import bp as compliance_bp
    app.register_blueprint(compliance_bp)
    from .health import bp as health_bp
    app.register_blueprint(health_bp)
    return app
