"""Checks of a spec against the loaded study, run before any statistics (and before R starts).

Each analysis is checked for: raters and groups that exist, dimensions the data has, ``by`` and
``subset`` columns (and subset values) present, and -- for kinds with a formula -- every
variable of the formula being a column of the frame the analysis fits it to (the comparison
frame, or the human trials for ``variance_components``), ``reference_levels`` naming
existing columns and levels. Problems name the YAML line, analysis id and field, with a
did-you-mean.
"""

from __future__ import annotations

from emoalign.analysis.study import BUILTIN_GROUPS, EXPECTED_SUFFIX, HUMAN, Study
from emoalign.formula import FormulaError, formula_syntax_problem, formula_variables, parse_formula  # noqa: F401
from emoalign.spec.load import LoadedSpec, did_you_mean
from emoalign.spec.rstrings import analysis_formula

#: columns every comparison frame has
FRAME_COLUMNS = ("image_id", "rater", "rater_type", "family", "rating", "n_trials")
#: columns of the raw human trials (variance_components fits its formula to them)
TRIAL_COLUMNS = ("rater_id", "image_id", "rating")
#: kinds whose formula is fitted to the raw human trials rather than the comparison frame
TRIAL_KINDS = ("variance_components",)


def frame_columns(study: Study, aggregate: str = "mean") -> list[str]:
    """Columns of the comparison frame (with ``rater_id`` when humans are raw trials)."""
    cols = [*FRAME_COLUMNS, *study.design_columns]
    if aggregate == "trials":
        cols.append("rater_id")
    return list(dict.fromkeys(cols))


def formula_frame_columns(a, study: Study) -> tuple[str, list[str]]:
    """(frame name, columns) of the frame analysis ``a`` fits its formula to."""
    if a.kind in TRIAL_KINDS:
        return "the human trials", list(dict.fromkeys([*TRIAL_COLUMNS, *study.design_columns]))
    return "the comparison frame", frame_columns(study, getattr(a, "aggregate", "mean"))


def check_analysis(loaded: LoadedSpec, index: int, study: Study) -> list[str]:
    """Problems of analysis ``index`` against the study (empty list = fine)."""
    a = loaded.spec.analyses[index]
    probs: list[str] = []

    def add(field: str, text: str, *sub) -> None:
        probs.append(f"{loaded.where('analyses', index, field, *sub)}: analysis {a.id!r}, field {field!r}: {text}")

    # raters
    known = set(study.machine_raters)
    names = [a.raters] if isinstance(a.raters, str) else list(a.raters)
    choices = [*BUILTIN_GROUPS, *study.groups, *sorted(known)]
    for i, name in enumerate(names):
        sub = () if isinstance(a.raters, str) else (i,)
        if name in BUILTIN_GROUPS:
            continue
        members = study.groups.get(name, [name])
        for r in members:
            if r != HUMAN and r.removesuffix(EXPECTED_SUFFIX) not in known:
                what = f"group {name!r} lists rater {r!r}" if name in study.groups else f"unknown rater {r!r}"
                add("raters", f"{what}, which has no ratings in the study" + did_you_mean(r, choices)
                    + f" (raters: {', '.join(sorted(known)) or 'none'})", *sub)
    # dimensions
    dims = a.dimensions()
    avail = [c for c in (*study.scales, *study.humans.columns, *study.machines.columns)
             if c in study.scales or c in ("valence", "arousal", "naturalness")]
    for i, d in enumerate(dims):
        if d not in study.humans.columns and d not in study.machines.columns:
            sub = () if isinstance(a.dimension, str) else (i,)
            add("dimension", f"unknown dimension {d!r}" + did_you_mean(d, dict.fromkeys(avail))
                + f" (scales: {', '.join(study.scales)})", *sub)
    # by / subset
    cols = frame_columns(study, getattr(a, "aggregate", "mean"))
    for i, col in enumerate(a.by):
        if col not in cols:
            add("by", f"column {col!r} is not in the data" + did_you_mean(col, cols)
                + f" (design columns: {', '.join(study.design_columns)})", i)
    for col, val in (a.subset or {}).items():
        if col not in study.stimuli.columns:
            add("subset", f"column {col!r} is not a stimulus column" + did_you_mean(col, study.design_columns), col)
            continue
        levels = set(study.stimuli[col].dropna().astype(str))
        vals = val if isinstance(val, list) else [val]
        for v in vals:
            if str(v) not in levels:
                add("subset", f"value {v!r} does not occur in column {col!r}" + did_you_mean(v, sorted(levels))
                    + f" (values: {', '.join(sorted(levels)[:12])})", col)
    # formula and reference levels
    found = analysis_formula(a)
    if found:
        fieldname, formula = found
        frame, fcols = formula_frame_columns(a, study)
        try:
            variables = parse_formula(formula).variables
        except FormulaError as exc:  # parse_spec rejects these already; kept for specs built in code
            add(fieldname, exc.reason + (f" at column {exc.column}" if exc.column else "") + f" of {formula!r}")
            variables = ()
        for var in variables:
            if var not in fcols:
                add(fieldname, f"formula names {var!r}, which {frame} lacks" + did_you_mean(var, fcols)
                    + f" (columns: {', '.join(fcols)})")
    refs = getattr(a, "reference_levels", None) or {}
    for col, lev in refs.items():
        if col not in cols:
            add("reference_levels", f"column {col!r} is not in the comparison frame" + did_you_mean(col, cols), col)
            continue
        if col == "rater_type":
            levels = {"human", "machine"}
        elif col in study.stimuli.columns:
            levels = set(study.stimuli[col].dropna().astype(str))
        else:
            continue
        if str(lev) not in levels:
            add("reference_levels", f"{lev!r} is not a level of {col!r}" + did_you_mean(lev, sorted(levels))
                + f" (levels: {', '.join(sorted(levels))})", col)
    return probs


def check_spec(loaded: LoadedSpec, study: Study) -> dict[str, list[str]]:
    """Problems per analysis id (only analyses with problems are listed)."""
    out = {}
    for i, a in enumerate(loaded.spec.analyses):
        p = check_analysis(loaded, i, study)
        if p:
            out[a.id] = p
    return out
