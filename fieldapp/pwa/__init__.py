"""The installable app (DESIGN §8): manifest, service worker, offline page and the outbox page."""
from .views import bp

__all__ = ["bp"]
