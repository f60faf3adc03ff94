"""One exception type for every user-facing error.

The CLI prints ``EmoalignError`` messages without a traceback. Messages name the file, the row or
field, and what to do about it.
"""

from __future__ import annotations

import errno


#: exit codes of the ``emoalign`` command (1 is "some analyses/checks failed", as each command documents)
EXIT_USER_ERROR = 2
EXIT_ROW_ERRORS = 3
EXIT_INCOMPLETE = 4
EXIT_INTERRUPTED = 130

#: errno values that mean "this place cannot be written" (permissions, read-only or full disk), not a bug
UNWRITABLE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


class EmoalignError(Exception):
    """A user error (bad input, missing file, invalid spec). The message says what to fix.

    ``exit_code`` is the CLI's exit status for it (2 unless a subclass says otherwise).
    """

    exit_code = EXIT_USER_ERROR

    def __init__(self, message: str, *, hint: str | None = None):
        self.hint = hint
        super().__init__(message if hint is None else f"{message}\n  hint: {hint}")


def format_examples(items, limit: int = 5) -> str:
    """Render the first ``limit`` items of a list with a count of the rest: ``a, b, c (+12 more)``."""
    items = list(items)
    head = ", ".join(str(x) for x in items[:limit])
    rest = len(items) - limit
    return head + (f" (+{rest} more)" if rest > 0 else "")


def did_you_mean(word, choices, n: int = 1) -> str:
    """`` -- did you mean 'x'?`` for the closest of ``choices`` (difflib, cutoff 0.6), or ``""``.

    Examples
    --------
    >>> did_you_mean("valnce", ["valence", "arousal"])
    " -- did you mean 'valence'?"
    >>> did_you_mean("xyz", ["valence"])
    ''
    """
    import difflib  # imported here: ~10 ms that every `emoalign` start would pay

    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=0.6)
    if not close:
        return ""
    return " -- did you mean " + " or ".join(repr(c) for c in close) + "?"
