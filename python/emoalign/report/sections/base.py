"""What every report section shares: the section registry, the paper's roles (``emoalign.spec.roles``, checked
when a spec is loaded), and small markdown helpers.

Two ways an analysis reaches the report:

- **a paper role**: the fixed sections of ``quarto/report.qmd`` (Tables 1-7, Figures 3-4 of Tae, Park & Choi
  2026) each read the analysis that plays one role of :data:`PAPER_ROLES`, found by ``Results.find``: the
  analysis whose spec entry says ``report: {role: <role>}``, or, for specs written before roles, the one whose
  id is the role's name;
- **its kind**: every other analysis is rendered by the section registered for its kind (:func:`section`), in
  "Further analyses" or "Beyond the paper: remedies" (``place``), or by the generic renderer (a tidy table and
  an estimate plot) when its kind has no section.

A section for a new kind is one module in ``emoalign/report/sections/`` (found without a list)::

    @section("my_kind", heading="My analysis")
    def my_kind(R: Results, aid: str, names: Names) -> str:
        return T.md_table(..., f"{R.title(aid)}: ...", f"tbl-{slug(aid)}")
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, Literal

import pandas as pd

from emoalign.registry import Registry
from emoalign.report import tables as T
from emoalign.report.names import Names
from emoalign.report.results import Results
from emoalign.spec.roles import PAPER_ROLES

SIG_NOTE = "* p < .05, ** p < .01, *** p < .001"


@dataclass(frozen=True)
class Section:
    """How the report renders the results of one kind: ``render(R, analysis_id, names) -> markdown``, under
    ``heading`` (when the analysis has no title) in ``place``: ``further`` ("Further analyses") or ``remedies``
    ("Beyond the paper: remedies"). A table without the ``columns`` the renderer reads (results of another
    version) is rendered generically instead."""

    kind: str
    render: Callable[[Results, str, Names], str]
    heading: str
    place: Literal["further", "remedies"] = "further"
    columns: tuple[str, ...] = ()


#: kind -> Section; the modules of this package register on first use
SECTIONS: Registry = Registry("report section", packages=("emoalign.report.sections",))


def section(kind: str, *, heading: str | None = None, place: Literal["further", "remedies"] = "further",
            columns: tuple[str, ...] = ()):
    """Register ``render(R, analysis_id, names) -> markdown`` as the section of every analysis of ``kind`` that
    plays no paper role (see the module docstring and :class:`Section`)."""

    def deco(render):
        SECTIONS.add(kind, Section(kind, render, heading or kind.replace("_", " ").capitalize(), place, tuple(columns)),
                     origin=render.__module__)
        return render

    return deco


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", str(text).lower()).strip("-")


def note(text: str, kind: str = "note") -> str:
    return f"\n::: {{.callout-{kind}}}\n{text}\n:::\n\n"


def paper_roles_played(R: Results) -> dict[str, str]:
    """analysis id -> the paper role it plays in these results."""
    out = {}
    for role in PAPER_ROLES:
        aid = R.find(role)
        if aid is not None:
            out.setdefault(aid, role)
    return out


def need(R: Results, *roles: str) -> tuple[list[str | None], str | None]:
    """The analysis ids playing ``roles`` and None, or the note of the first one that cannot be shown: no
    analysis plays the role, it failed, or its kind is not the role's."""
    ids = [R.find(r) for r in roles]
    for role, aid in zip(roles, ids):
        kind = PAPER_ROLES[role][0]
        if aid is None:
            return ids, note(f"*Analysis `{role}` is not in these results (no analysis has that id or `report: {{role: "
                             f"{role}}}`; the role needs kind `{kind}`: {PAPER_ROLES[role][1]}), so this section is skipped.*")
        if R.status(aid) != "ok":
            return ids, note(R.note(aid))
        got = (R.entry(aid) or {}).get("kind")
        if got != kind:
            return ids, note(f"*Analysis `{aid}` (kind `{got}`) plays the role `{role}`, which needs kind `{kind}`, so "
                             "this section is skipped (it is shown under Further analyses).*")
    return ids, None


def plays(role: str):
    """Decorator of a paper section ``fn(R, analysis_id, *args)``: it is called with the analysis playing ``role``
    and becomes ``fn(R, *args)``, which returns :func:`need`'s note instead when no analysis can play it."""

    def deco(fn):
        @functools.wraps(fn)
        def render(R: Results, *args) -> str:
            (aid,), miss = need(R, role)
            return miss if miss else fn(R, aid, *args)

        return render

    return deco


def warnings_note(R: Results, aid: str, about: str | None = None) -> str:
    """A note with the analysis' flagged-row legend and its warnings (only those mentioning ``about``, when given)."""
    e = R.entry(aid) or {}
    w = [x for x in e.get("warnings") or [] if about is None or about in str(x)]
    flagged = e.get("flagged") or {}
    if not w and not flagged:
        return ""
    text = ""
    if flagged:
        text += (f"Estimates marked {T.FLAG_MARK} come from flagged rows (column `flag`): "
                 + ", ".join(f"{k} ({v} rows)" for k, v in flagged.items()) + ". ")
    if w:
        text += f"Warnings from `{aid}`: " + "; ".join(str(x) for x in w[:5]) + (f" (+{len(w) - 5} more)" if len(w) > 5 else "")
    return note(text)


def raters_in(df: pd.DataFrame, col: str = "rater") -> list[str]:
    return [str(r) for r in pd.unique(df[col])] if col in df.columns else []


def remap_note(R: Results, raters) -> str:
    """Caption sentence for raters whose native classes were mapped onto the study's labels."""
    out = []
    for r in raters:
        e = R.rater_entry(r)
        if e.get("label_map"):
            out.append(f"{Names.of(R).rater(r)}: {T.label_map_text(e)}")
    return (" Label mapping: " + "; ".join(out) + ".") if out else ""
