"""The audit's compliance measures (DESIGN §6), computed in SQL over the per-episode summaries.

``specs`` holds the measures as data; ``query`` turns a population and the specs into one SQL
aggregate; ``summary`` shapes the answer that the CLI (and later the dashboard) shows.
"""
