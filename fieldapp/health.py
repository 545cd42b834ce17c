"""``GET /healthz``: the process is up and answering, for a load balancer's liveness check.

It reads no session and no database, so it says nothing about anyone, and a bench can use it as
the cheapest request this app serves (docs/performance.md).
"""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def alive():
    return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store"}
