"""Printed records: an episode's record as a page (browser printing) and as a PDF."""
