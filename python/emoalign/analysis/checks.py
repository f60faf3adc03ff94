"""Checks of a spec against the loaded study, run before any statistics (and before R starts).

Every analysis gets the checks all kinds share: raters and groups that exist *when it runs*, dimensions the
data has, ``by`` and ``subset`` columns (and subset values) present. Then its kind's own ``check(options,
study)`` hook (the ``check`` of its registry entry, :class:`emoalign.analysis.kinds.base.KindEntry`) adds
what only the kind knows: ``lmm`` checks its formula against the comparison frame and its reference levels,
``variance_components`` its formula against the raw human trials, the held-out kinds their ``fold_by``
columns. A hook returns :class:`Problem` items; this module turns them into messages naming the YAML line,
analysis id and field, with a did-you-mean.

Raters are checked against what exists when the analysis runs: analyses run in spec order, and one may add
derived raters for the analyses after it (``calibration`` writes ``<rater>:calibrated``), so
:func:`rater_timeline` walks the spec, adding each analysis' products (its options' ``produces``) and each
``study.derived`` rater once its sources exist. A name is accepted only where an earlier analysis produces it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from emoalign.analysis.study import BUILTIN_GROUPS, EXPECTED_SUFFIX, HUMAN, Study
from emoalign.errors import did_you_mean
from emoalign.formula import FormulaError, parse_formula
from emoalign.registry import KINDS
from emoalign.spec.load import LoadedSpec

#: columns every comparison frame has
FRAME_COLUMNS = ("image_id", "rater", "rater_type", "family", "rating", "n_trials")
#: columns of the raw human trials
TRIAL_COLUMNS = ("rater_id", "image_id", "rating")


@dataclass(frozen=True)
class Problem:
    """One problem a kind's ``check`` hook finds: the option (``field``, plus ``sub``: a list index or mapping key
    below it) and what is wrong (``text``, ending with a did-you-mean where one helps)."""

    field: str
    text: str
    sub: tuple = ()


def frame_columns(study: Study, aggregate: str = "mean") -> list[str]:
    """Columns of the comparison frame (with ``rater_id`` when humans are raw trials)."""
    cols = [*FRAME_COLUMNS, *study.design_columns]
    if aggregate == "trials":
        cols.append("rater_id")
    return list(dict.fromkeys(cols))


def trial_columns(study: Study) -> list[str]:
    """Columns of the raw human trials of one dimension (``Study.human_trials``)."""
    return list(dict.fromkeys([*TRIAL_COLUMNS, *study.design_columns]))


def formula_problems(fieldname: str, formula: str, frame: str, columns) -> list[Problem]:
    """Every variable of ``formula`` that is not a column of ``frame`` (its ``columns``), as problems of
    ``fieldname``; a formula outside the grammar is one problem (the loader rejects those already)."""
    try:
        variables = parse_formula(formula).variables
    except FormulaError as exc:
        return [Problem(fieldname, exc.reason + (f" at column {exc.column}" if exc.column else "") + f" of {formula!r}")]
    cols = list(columns)
    return [Problem(fieldname, f"formula names {var!r}, which {frame} lacks" + did_you_mean(var, cols)
                    + f" (columns: {', '.join(cols)})") for var in variables if var not in cols]


def stimulus_column_problems(fieldname: str, value, study: Study, hint: str = "") -> list[Problem]:
    """Each name in ``value`` (a column or a list of columns) that is not a stimulus column."""
    names = [] if value is None else [value] if isinstance(value, str) else list(value)
    return [Problem(fieldname, f"column {col!r} is not a stimulus column" + did_you_mean(col, study.design_columns) + hint,
                    () if isinstance(value, str) else (i,))
            for i, col in enumerate(names) if col not in study.stimuli.columns]


@dataclass
class RaterTimeline:
    """Which raters exist when each analysis runs (spec order), and where derived raters come from."""

    known: list[set[str]] = field(default_factory=list)       # per analysis index: raters it may name
    own: list[set[str]] = field(default_factory=list)         # per analysis index: what `machines` expands to
    producer: dict[str, str] = field(default_factory=dict)    # derived rater -> id of the analysis writing it
    uses: dict[str, set[str]] = field(default_factory=dict)   # study.derived rater -> raters it is built from
    problems: dict[str, list[str]] = field(default_factory=dict)


def _expand(names, study: Study, known: set[str], own: set[str]) -> list[str]:
    """Machine rater names an analysis' ``raters`` stand for (groups expanded; unknown names left out)."""
    out: list[str] = []
    for name in ([names] if isinstance(names, str) else list(names)):
        if name in ("machines", "all"):
            members = [r for r in study.machine_raters if r in own] + sorted(own - set(study.machine_raters))
        elif name in study.groups:
            members = study.groups[name]
        else:
            members = [name]
        out += [r for r in members if r != HUMAN and r.removesuffix(EXPECTED_SUFFIX) in known and r not in out]
    return out


def rater_timeline(loaded: LoadedSpec, study: Study) -> RaterTimeline:
    """Walk the spec in order: the raters each analysis can name, the producer of each derived rater, and
    problems (a product name taken twice, a ``study.derived`` source nothing provides)."""
    from emoalign.analysis.derived import fields_of

    tl = RaterTimeline()
    known = set(study.machine_raters)
    own = set(study.own_raters)
    pending = list(study.pending_derived)
    for spec in study.pending_derived:
        tl.uses[spec.name] = {s.removesuffix(EXPECTED_SUFFIX) for s in fields_of(spec).values()}

    def settle() -> None:
        for spec in list(pending):
            srcs = tl.uses[spec.name]
            if srcs <= known:
                known.add(spec.name)
                if not any(s in tl.producer or s not in own for s in srcs):
                    own.add(spec.name)
                pending.remove(spec)
                settle()
                return

    settle()
    for i, a in enumerate(loaded.spec.analyses):
        tl.known.append(set(known))
        tl.own.append(set(own))
        for name in a.produces(_expand(a.raters, study, known, own)):
            where = f"{loaded.where('analyses', i, 'kind')}: analysis {a.id!r}"
            if name in known:
                first = tl.producer.get(name)
                tl.problems.setdefault(a.id, []).append(
                    f"{where}: it would write rater {name!r}, which "
                    + (f"analysis {first!r} already writes" if first else "the study already has")
                    + " -- set this analysis' `suffix` to another name")
                continue
            known.add(name)
            tl.producer[name] = a.id
        settle()
    for spec in pending:
        missing = sorted(s for s in tl.uses[spec.name] if s not in known)
        idx = next(i for i, d in enumerate(loaded.spec.study.derived) if d.name == spec.name)
        tl.problems.setdefault("study.derived", []).append(
            f"{loaded.where('study', 'derived', idx)}: derived rater {spec.name!r} takes field(s) from "
            f"{', '.join(repr(m) for m in missing)}, which no rater file or analysis provides"
            + did_you_mean(missing[0], sorted(known)) + f" (raters: {', '.join(sorted(known))})")
    return tl


def check_analysis(loaded: LoadedSpec, index: int, study: Study, known: set[str] | None = None) -> list[str]:
    """Problems of analysis ``index`` against the study (empty list = fine); ``known``: the raters that exist
    when it runs (default: the study's)."""
    a = loaded.spec.analyses[index]
    probs: list[str] = []

    def add(field: str, text: str, *sub) -> None:
        probs.append(f"{loaded.where('analyses', index, field, *sub)}: analysis {a.id!r}, field {field!r}: {text}")

    # raters
    known = set(study.machine_raters) if known is None else known
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
                add("raters", f"{what}, which has no ratings in the study"
                    + (" at this point of the spec (a derived rater can be named only after the analysis that "
                       "writes it)" if ":" in r.removesuffix(EXPECTED_SUFFIX) else "")
                    + did_you_mean(r, choices) + f" (raters: {', '.join(sorted(known)) or 'none'})", *sub)
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
    # what only the kind knows (formula frames, reference levels, fold columns, ...)
    hook = KINDS.get(a.kind).check
    for p in hook(a, study) if hook else ():
        add(p.field, p.text, *p.sub)
    return probs


def check_spec(loaded: LoadedSpec, study: Study) -> dict[str, list[str]]:
    """Problems per analysis id (only analyses with problems are listed; ``study.derived`` problems under
    that key)."""
    tl = rater_timeline(loaded, study)
    out = {k: list(v) for k, v in tl.problems.items()}
    for i, a in enumerate(loaded.spec.analyses):
        p = check_analysis(loaded, i, study, tl.known[i])
        if p:
            out.setdefault(a.id, []).extend(p)
    return out


def dependencies(loaded: LoadedSpec, study: Study, ids) -> list[str]:
    """Analysis ids that must run before ``ids`` because they write derived raters those analyses use
    (directly, through a group, or through a ``study.derived`` rater built from them); transitive."""
    tl = rater_timeline(loaded, study)
    index = {a.id: i for i, a in enumerate(loaded.spec.analyses)}
    need: set[str] = set()
    todo = list(ids)
    while todo:
        i = index[todo.pop()]
        a = loaded.spec.analyses[i]
        stack = [r.removesuffix(EXPECTED_SUFFIX) for r in _expand(a.raters, study, tl.known[i], tl.own[i])]
        seen: set[str] = set()
        while stack:
            r = stack.pop()
            if r in seen:
                continue
            seen.add(r)
            p = tl.producer.get(r)
            if p and p not in need and p not in ids:
                need.add(p)
                todo.append(p)
            stack.extend(tl.uses.get(r, ()))
    return [a.id for a in loaded.spec.analyses if a.id in need]
