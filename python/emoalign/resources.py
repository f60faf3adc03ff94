"""Locate the files shipped beside the Python code: ``R/``, ``quarto/``, ``specs/``.

In a source checkout (editable install) they live at the repository root; in a wheel they are
copied to ``emoalign/_resources/`` (see ``pyproject.toml``).
"""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parent
_REPO = _PKG.parent.parent


def resource_dir(name: str) -> Path:
    """Return the directory of a shipped resource folder (``"R"``, ``"quarto"`` or ``"specs"``)."""
    for candidate in (_PKG / "_resources" / name, _REPO / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"emoalign resource folder {name!r} not found (looked in {_PKG / '_resources'} and {_REPO})")


def r_dir() -> Path:
    return resource_dir("R")


def quarto_dir() -> Path:
    return resource_dir("quarto")


def specs_dir() -> Path:
    return resource_dir("specs")
