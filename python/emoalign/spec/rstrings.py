"""Spec strings that reach R, checked against the formula grammar (:mod:`emoalign.formula`) when a
spec is loaded: before any data is read and long before R starts.

Only a model formula and factor names such as ``lmm``'s ``contrast`` / ``contrast_by`` reach R as text; every
other option reaches it as data (numbers, levels, names used as keys). Each kind declares its R strings on its
options model (``r_formula()``, ``r_names()``; :class:`emoalign.analysis.kinds.base.AnalysisBase`). A formula
outside the grammar, or a name that is not a variable of the formula, is a spec error naming the YAML line.
Whether the variables are columns of the frame the analysis uses is the kind's own data check
(:mod:`emoalign.analysis.checks`).
"""

from __future__ import annotations

from emoalign.formula import FormulaError, ParsedFormula, is_name, parse_formula


def analysis_r_problems(a) -> list[tuple[tuple, str]]:
    """Grammar problems of one analysis as (field path, text) pairs; empty when every R string is allowed."""
    out: list[tuple[tuple, str]] = []
    found = a.r_formula()
    parsed: ParsedFormula | None = None
    if found:
        fieldname, text = found
        try:
            parsed = parse_formula(text)
        except FormulaError as exc:
            out.append(((fieldname,), str(exc).split("\n  hint:")[0]))
    for path, name in a.r_names():
        if not is_name(name):
            out.append((path, f"{name!r} is not a column name (letters, digits, '.' and '_'; no code)"))
        elif parsed is not None and name not in parsed.variables:
            out.append((path, f"{name!r} is not a variable of the formula {parsed.text!r}"))
    return out


def r_string_problems(loaded) -> list[str]:
    """Every grammar problem of a loaded spec, each as ``file:line: analysis 'id', field 'f': text``."""
    probs = []
    for i, a in enumerate(loaded.spec.analyses):
        for path, text in analysis_r_problems(a):
            probs.append(f"{loaded.where('analyses', i, *path)}: analysis {a.id!r}, field {path[0]!r}: {text}")
    return probs
