"""One exception type for every user-facing error.

The CLI prints ``EmoalignError`` messages without a traceback. Messages name the file, the row or
field, and what to do about it.
"""

from __future__ import annotations


class EmoalignError(Exception):
    """A user error (bad input, missing file, invalid spec). The message says what to fix."""

    def __init__(self, message: str, *, hint: str | None = None):
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


def format_examples(items, limit: int = 5) -> str:
    """Render the first ``limit`` items of a list with a count of the rest: ``a, b, c (+12 more)``."""
    items = list(items)
    head = ", ".join(str(x) for x in items[:limit])
    rest = len(items) - limit
    return head + (f" (+{rest} more)" if rest > 0 else "")
