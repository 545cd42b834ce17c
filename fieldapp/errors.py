"""The one shape of a refused request: messages by form field, worded for the user.

Domain functions raise a subclass; views put each message next to its field. Nothing was saved.
"""
from __future__ import annotations


class FieldErrors(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors
