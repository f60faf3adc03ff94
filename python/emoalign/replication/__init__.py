"""Replication scorecard: a paper's published values (package data) beside a study's estimates.

    from emoalign.replication import load_published, scorecard, summary
    from emoalign.report.results import Results
    R = Results.load("results/")
    card = scorecard(R.table, load_published("tae2026"))
    summary(card)          # per table: published values, estimated, inside their tolerance

The rule and the tolerances are documented in ``docs/replication.md``.
"""

from emoalign.replication.published import Published, builtin_published, load_published, parse_value
from emoalign.replication.scorecard import scorecard, summary

__all__ = ["Published", "builtin_published", "load_published", "parse_value", "scorecard", "summary"]
