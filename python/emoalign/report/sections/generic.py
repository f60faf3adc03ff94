"""Analyses outside the paper's roles: each rendered by the section registered for its kind, or generically
(a tidy table and a plot of its estimates); the "Further analyses" and "remedies" parts of the report."""

from __future__ import annotations

import pandas as pd

from emoalign.report import captions as C
from emoalign.report import figures as F
from emoalign.report import tables as T
from emoalign.report.names import Names
from emoalign.report.results import Results
from emoalign.report.sections.base import (PAPER_ROLES, SECTIONS, note, paper_roles_played, raters_in, section, slug,
                                           warnings_note)
from emoalign.errors import did_you_mean


def generic_body(R: Results, aid: str, names: Names, df: pd.DataFrame | None = None) -> str:
    """A tidy table (first rows; the download holds all) and a default estimate plot of one analysis."""
    df = R.table(aid) if df is None else df
    raters = [*raters_in(df), *raters_in(df, "raters")]
    sim = names.sim_note([x.strip() for r in raters for x in r.split(",")])
    shown, left = T.generic(df, names=names)
    more = f" First {len(shown)} of {len(shown) + left} rows; the download holds them all." if left else ""
    md = T.md_table(shown, f"{R.title(aid)}.{more}" + sim, f"tbl-{slug(aid)}", csv=df)
    p, size = F.generic_plot(df, names=names)
    if p is not None:
        md += F.figure_md(p, f"{R.title(aid)}: estimates" + (" with 95% CIs." if "conf_low" in df.columns else ".") + sim,
                          f"fig-{slug(aid)}", width=size[0], height=size[1])
    return md + warnings_note(R, aid)


@section("lmm", heading="Linear mixed model")
def lmm(R: Results, aid: str, names: Names) -> str:
    """The model in words, then its fixed effects and contrasts (variance rows are in the download)."""
    opts, info = R.options(aid), R.info(aid)
    df = R.table(aid)
    if "effect" in df.columns and (df["effect"] == "fixed").any():
        df = df[~df["effect"].isin(["ran_pars", "fit"])]
    model = (f"Model: {C.formula(info.get('formula') or opts.get('formula'))} ({C.df_method(opts, info)}; "
             f"{C.reference_levels(C.lmm_refs(opts, info), names) or 'R default reference levels'}).\n\n")
    return model + generic_body(R, aid, names, df)


def render(R: Results, aid: str, level: int = 2, *, heading: str | None = None, blurb: bool = True) -> str:
    """One analysis under its own heading, by the section of its kind (or generically)."""
    kind = (R.entry(aid) or {}).get("kind", "?")
    sec = SECTIONS.get(kind) if kind in SECTIONS else None
    title = R.title(aid) if R.title(aid) != aid or not heading else heading
    md = f"\n{'#' * level} {title} {{#sec-{slug(aid)}}}\n\n"
    if blurb:
        md += f"{R.description(aid)} (Analysis `{aid}`, kind `{kind}`.)\n\n".lstrip()
    if R.status(aid) != "ok":
        return md + note(R.note(aid))
    if sec is None or not set(sec.columns) <= set(R.table(aid).columns):
        return md + generic_body(R, aid, Names.of(R))
    return md + sec.render(R, aid, Names.of(R))


def generic(R: Results, aid: str, level: int = 2) -> str:
    """Any analysis, generically: heading, description, a tidy table and a default estimate plot."""
    kind = (R.entry(aid) or {}).get("kind", "?")
    md = f"\n{'#' * level} {R.title(aid)} {{#sec-{slug(aid)}}}\n\n{R.description(aid)} (Analysis `{aid}`, kind `{kind}`.)\n\n"
    if R.status(aid) != "ok":
        return md + note(R.note(aid))
    return md + generic_body(R, aid, Names.of(R))


def _place(R: Results, aid: str) -> str:
    kind = (R.entry(aid) or {}).get("kind")
    return SECTIONS.get(kind).place if kind in SECTIONS else "further"


def _role_notes(R: Results, ids: list[str]) -> str:
    """A note for analyses whose spec gives a role no section of this report knows (a typo)."""
    odd = [(aid, R.role(aid)) for aid in ids if R.role(aid) and R.role(aid) not in PAPER_ROLES]
    if not odd:
        return ""
    return note("; ".join(f"Analysis `{aid}` gives the report role `{role}`, which this report does not have"
                          + did_you_mean(role, PAPER_ROLES) for aid, role in odd)
                + f". It is shown below by its kind. Roles: {', '.join(PAPER_ROLES)}.")


def other_analyses(R: Results) -> str:
    """Every analysis that plays no paper role and is no remedy, each by its kind's section."""
    played = paper_roles_played(R)
    ids = [a["id"] for a in R.analyses if a.get("id") and a["id"] not in played and _place(R, a["id"]) == "further"]
    if not ids:
        return "\nThis study ran only the analyses of the sections above.\n"
    return ("\nThe analyses below go beyond the paper's tables. Each is shown with its results table and a plot of "
            "its estimates.\n" + _role_notes(R, ids) + "".join(render(R, aid) for aid in ids))


def remedies(R: Results) -> str:
    """The remedy analyses (calibration, prior correction, the models among the humans: kinds whose section's
    place is ``remedies``) and the derived raters."""
    from emoalign.report.sections.remedies import derived_raters

    names = Names.of(R)
    played = paper_roles_played(R)
    md = "".join(render(R, a["id"], heading=SECTIONS.get(a["kind"]).heading, blurb=False) for a in R.analyses
                 if a.get("id") not in played and a.get("kind") in SECTIONS and _place(R, a["id"]) == "remedies")
    derived = derived_raters(R, names)
    if derived:
        md += "\n## Derived raters {#sec-derived-raters}\n\n" + derived
    if not md:
        kinds = [k for k, s in SECTIONS.entries().items() if s.place == "remedies"]
        return (f"\nNo remedy analyses in these results: add {', '.join(f'`{k}`' for k in kinds)} analyses (see "
                "specs/examples/remedies.yaml).\n")
    return md
