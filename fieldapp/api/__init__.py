"""The JSON API for offline sync, under /api/v1 (DESIGN §8).

Every /api/* answer is JSON, errors included: an anonymous or expired session gets 401
{"error": "login required"}, never a redirect to the login page, because a page's script that
follows a redirect would take the login form for a successful send.
"""
from .views import bp

__all__ = ["bp"]
