"""Import human ratings from a CSV (one row per trial) into the HUMANS contract table.

Columns of the CSV:

* the rater and image columns (default ``rater_id`` and ``image_id``; ``--rater-col/--image-col``);
* one numeric column per rated dimension. A dimension is a column with a scale (``scales``), a column
  named in ``dimensions``, or a column with a well-known dimension name (:data:`KNOWN_DIMENSIONS`);
  every dimension needs a scale ``(min, max)`` — none is assumed;
* optional ``emotion`` (a category the rater chose; checked against ``emotions`` when given);
* anything else rides along as a rater/trial attribute (numeric-looking columns become numbers).

Every problem is collected before anything is reported, grouped by kind with a count and the first
examples; each example names the row as a spreadsheet shows it (header = row 1) and the column:
missing ids, unknown image ids, non-numeric cells, missing values, values outside a scale, duplicate
(rater, image) trials, labels outside the emotion set.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from emoalign.errors import EmoalignError, format_examples

#: column names treated as rating dimensions even without a scale (so a forgotten scale is an error, not an attribute)
KNOWN_DIMENSIONS = ("valence", "arousal", "naturalness", "dominance", "intensity", "genuineness", "typicality")

#: cell texts read as "no value" (case-insensitive, after stripping blanks)
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})

N_EXAMPLES = 5


@dataclass
class Problem:
    """One kind of import problem with every occurrence's location (``row N, column C: detail``)."""

    kind: str
    description: str
    occurrences: list[str] = field(default_factory=list)

    def line(self) -> str:
        return f"{self.description}: {len(self.occurrences)} ({format_examples(self.occurrences, N_EXAMPLES)})"


@dataclass
class ImportReport:
    """Problems found and the summary of the imported trials."""

    source: str
    errors: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    scales: dict[str, tuple[float, float]] = field(default_factory=dict)
    attributes: list[str] = field(default_factory=list)
    n_raters: int = 0
    n_trials: int = 0
    n_images_rated: int = 0
    n_stimuli: int = 0
    ratings_per_image: dict[str, float] = field(default_factory=dict)
    dimension_stats: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_kinds(self) -> set[str]:
        return {p.kind for p in self.errors}

    def error_message(self) -> str:
        n = sum(len(p.occurrences) for p in self.errors)
        return "\n".join([f"{self.source}: {n} problem(s) in {len(self.errors)} kind(s); nothing was written"]
                         + [f"  - {p.line()}" for p in self.errors])

    def summary(self) -> str:
        rpi = self.ratings_per_image
        out = [
            f"{self.n_trials} trials from {self.n_raters} raters on {self.n_images_rated} of {self.n_stimuli} images",
            f"ratings per image: min {rpi.get('min', 0):g}, median {rpi.get('median', 0):g}, max {rpi.get('max', 0):g}",
        ]
        if not self.dimension_stats.empty:
            out.append(self.dimension_stats.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        if self.attributes:
            out.append(f"kept as attributes: {', '.join(self.attributes)}")
        out += [f"warning: {w}" for w in self.warnings]
        return "\n".join(out)


def parse_scale(text: str) -> tuple[str, tuple[float, float]]:
    """Parse ``"valence=1:9"`` (or ``"valence=1,9"``) into ``("valence", (1.0, 9.0))``."""
    name, sep, rng = text.partition("=")
    lo, sep2, hi = rng.partition(":") if ":" in rng else rng.partition(",")
    try:
        if not (sep and sep2 and name.strip()):
            raise ValueError
        lo_f, hi_f = float(lo), float(hi)
    except ValueError:
        raise EmoalignError(f"cannot read --scale {text!r}", hint="write NAME=MIN:MAX, e.g. --scale valence=1:9") from None
    if not lo_f < hi_f:
        raise EmoalignError(f"--scale {text!r}: MIN must be below MAX", hint="e.g. --scale valence=1:9")
    return name.strip(), (lo_f, hi_f)


def scales_from_spec(study: Mapping, source: str = "spec") -> dict[str, tuple[float, float]]:
    """``study.scales`` of a study block (a mapping), as ``{dim: (min, max)}``, validated as the spec reader
    validates it (``{dim: [min, max]}`` or ``{dim: {min:, max:}}``; min below max)."""
    from pydantic import ValidationError

    from emoalign.spec.model import StudySettings

    raw = study.get("scales") or {}
    try:
        return {str(k): (float(lo), float(hi)) for k, (lo, hi) in StudySettings(scales=raw).scales.items()}
    except ValidationError as exc:
        e = exc.errors()[0]
        key = e["loc"][1] if len(e["loc"]) > 1 else None
        value = raw.get(key) if key is not None and isinstance(raw, Mapping) else raw
        raise EmoalignError(f"{source}: study.scales{'' if key is None else f'.{key}'} = {value!r} is not [min, max] "
                            f"with min < max ({e['msg'].removeprefix('Value error, ')})",
                            hint="e.g. scales: {valence: [1, 9]}") from None


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise EmoalignError(f"ratings file not found: {path}", hint="check the path to the CSV")
    sep = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh, delimiter=sep), None)
    except UnicodeDecodeError as exc:
        raise EmoalignError(f"{path} is not UTF-8 text: {exc}", hint="save the sheet as CSV UTF-8") from exc
    if not header:
        raise EmoalignError(f"{path} is empty", hint="the first row must name the columns (rater_id, image_id, valence, ...)")
    names = [h.strip() for h in header]
    if len(names) == 1:
        other = next((d for d in (";", "\t", "|") if d != sep and d in names[0]), None)
        if other:
            name = {";": "semicolons", "\t": "tabs", "|": "'|'"}[other]
            raise EmoalignError(f"{path}: row 1 is a single column {names[0][:80]!r}: the file is separated by {name}, "
                                f"not {'commas' if sep == ',' else 'tabs'}",
                                hint="save the sheet as comma-separated CSV (CSV UTF-8)"
                                     + (", or give a tab-separated file the .tsv suffix" if other == "\t" else ""))
    dups = sorted({n for n in names if names.count(n) > 1})
    if dups:
        raise EmoalignError(f"{path}: row 1 names column(s) {', '.join(dups)} more than once", hint="give every column a distinct name")
    try:
        df = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, na_filter=False, skip_blank_lines=False,
                         encoding="utf-8-sig")
    except Exception as exc:  # pandas ParserError names the line
        raise EmoalignError(f"cannot read {path}: {exc}", hint="every row needs as many fields as the header") from exc
    df.columns = names
    df.index = pd.RangeIndex(2, len(df) + 2)  # spreadsheet row numbers: header is row 1
    df = df.apply(lambda s: s.str.strip())
    df = df[~(df == "").all(axis=1)]  # blank lines are skipped, their numbers kept
    if df.empty:
        raise EmoalignError(f"{path} has a header (row 1) but no trials", hint="export the sheet with its data rows")
    return df


def _is_missing(s: pd.Series) -> pd.Series:
    return s.str.lower().isin(MISSING_TOKENS)


def _loc(row, col, detail="") -> str:
    return f"row {row}, column {col}" + (f": {detail}" if detail else "")


def import_humans(
    csv_path: str | os.PathLike,
    stimuli_path: str | os.PathLike | pd.DataFrame,
    scales: Mapping[str, Sequence[float]] | None = None,
    *,
    rater_col: str = "rater_id",
    image_col: str = "image_id",
    dimensions: Sequence[str] | None = None,
    drop: Sequence[str] = (),
    emotions: Sequence[str] | None = None,
    allow_missing: bool = False,
) -> tuple[pd.DataFrame, ImportReport]:
    """Validate a ratings CSV against the stimuli and scales; return the HUMANS table and a report.

    Parameters
    ----------
    csv_path : CSV (or ``.tsv``) with one row per trial.
    stimuli_path : stimuli parquet/CSV (or its DataFrame); every ``image_id`` must be in it.
    scales : ``{dimension: (min, max)}``; values outside are errors.
    dimensions : extra column names to treat as dimensions (they then need a scale).
    drop : columns to leave out of the output.
    emotions : allowed labels of an optional ``emotion`` column.
    allow_missing : keep empty dimension cells as NaN (a warning) instead of an error.

    Returns
    -------
    (DataFrame with ``rater_id``, ``image_id``, float dimensions, optional ``emotion`` and attributes,
    ImportReport). Raises EmoalignError listing every problem when there are any; the report is on the
    exception as ``.report``.
    """
    from emoalign.data.io import read_table

    path = Path(csv_path)
    report = ImportReport(source=str(path))
    raw = _read_csv(path)
    scales = {str(k): (float(v[0]), float(v[1])) for k, v in (scales or {}).items()}

    for role, col in (("rater", rater_col), ("image", image_col)):
        if col not in raw.columns:
            raise EmoalignError(f"{path}: no {role} column {col!r}; row 1 has: {', '.join(raw.columns)}",
                                hint=f"pass --{role}-col NAME with the column that holds the {role} id")
    for target, col in (("rater_id", rater_col), ("image_id", image_col)):
        if col != target and target in raw.columns:
            raise EmoalignError(f"{path}: column {col!r} becomes {target!r}, but row 1 already has a {target!r} column",
                                hint=f"rename or --drop the existing {target!r} column")
    raw = raw.drop(columns=[c for c in drop if c in raw.columns])
    stim = stimuli_path if isinstance(stimuli_path, pd.DataFrame) else read_table(stimuli_path, "stimuli")
    known_ids = set(stim["image_id"].astype(str))
    report.n_stimuli = len(known_ids)

    others = [c for c in raw.columns if c not in (rater_col, image_col)]
    dims = [c for c in others if c in scales or c in (dimensions or ()) or c.lower() in KNOWN_DIMENSIONS]
    unscaled = [c for c in dims if c not in scales]
    if unscaled:
        raise EmoalignError(
            f"{path}: rating column(s) {', '.join(unscaled)} have no scale",
            hint="pass one per dimension, e.g. " + " ".join(f"--scale {c}=1:9" for c in unscaled)
                 + ", or set study.scales in the --spec; --drop NAME leaves a column out",
        )
    absent = [d for d in (dimensions or ()) if d not in raw.columns]
    if absent:
        raise EmoalignError(f"{path}: dimension column(s) {', '.join(absent)} not found; row 1 has: {', '.join(raw.columns)}",
                            hint="check the column names")
    if not dims:
        raise EmoalignError(f"{path}: no rating column found; row 1 has: {', '.join(raw.columns)}",
                            hint="give each rated column a scale, e.g. --scale valence=1:9")
    report.warnings += [f"scale given for {d!r} but the CSV has no such column" for d in scales if d not in raw.columns]
    report.dimensions, report.scales = dims, {d: scales[d] for d in dims}

    def problem(kind: str, description: str) -> Problem:
        for p in report.errors:
            if p.kind == kind:
                return p
        p = Problem(kind, description)
        report.errors.append(p)
        return p

    for col, role in ((rater_col, "rater"), (image_col, "image")):
        miss = raw.index[_is_missing(raw[col])]
        for r in miss:
            problem("missing_id", "missing rater or image id").occurrences.append(_loc(r, col, "empty"))

    ids = raw[image_col]
    unknown = raw.index[~_is_missing(ids) & ~ids.isin(known_ids)]
    for r in unknown:
        problem("unknown_image", "image id not in the stimuli table").occurrences.append(_loc(r, image_col, repr(ids[r])))
    if len(unknown):
        stems = ids[unknown].str.rsplit(".", n=1).str[0]
        if stems.isin(known_ids).mean() > 0.5:
            problem("unknown_image", "").description += " (they look like file names: stimuli ids are file stems, drop the extension)"

    values = {}
    for d in dims:
        s = raw[d]
        miss = _is_missing(s)
        num = pd.to_numeric(s.where(~miss), errors="coerce")
        bad = raw.index[~miss & num.isna()]
        for r in bad:
            problem("non_numeric", "non-numeric rating").occurrences.append(_loc(r, d, repr(s[r])))
        if miss.any():
            if allow_missing:
                report.warnings.append(f"{int(miss.sum())} empty cell(s) in {d!r} kept as missing "
                                       f"(first: {format_examples([_loc(r, d) for r in raw.index[miss]], N_EXAMPLES)})")
            else:
                for r in raw.index[miss]:
                    problem("missing_value", "missing rating (pass --allow-missing to keep it as NA)").occurrences.append(_loc(r, d, "empty"))
        lo, hi = scales[d]
        out_of = raw.index[num.notna() & ((num < lo) | (num > hi) | ~np.isfinite(num))]
        for r in out_of:
            problem("out_of_scale", "rating outside its scale").occurrences.append(_loc(r, d, f"{s[r]} not in [{lo:g}, {hi:g}]"))
        values[d] = num

    key = raw[[rater_col, image_col]]
    ok_key = ~(_is_missing(raw[rater_col]) | _is_missing(raw[image_col]))
    dup = key[ok_key & key.duplicated(keep=False)]
    if len(dup):
        for (rater, image), g in dup.groupby([rater_col, image_col], sort=False):
            rows = list(g.index)
            problem("duplicate_trial", "duplicate (rater, image) trial").occurrences.append(
                f"rows {', '.join(map(str, rows))}, columns {rater_col}/{image_col}: {rater!r} rated {image!r} {len(rows)} times")

    if "emotion" in others and emotions is not None:
        lab = raw["emotion"]
        outside = raw.index[~_is_missing(lab) & ~lab.isin([str(e) for e in emotions])]
        for r in outside:
            problem("bad_label", f"emotion label outside [{', '.join(map(str, emotions))}]").occurrences.append(_loc(r, "emotion", repr(lab[r])))

    if report.errors:
        err = EmoalignError(report.error_message(),
                            hint="fix the listed cells in the CSV (row numbers as a spreadsheet shows them) and import again")
        err.report = report
        raise err

    out = pd.DataFrame({"rater_id": raw[rater_col].values, "image_id": raw[image_col].values})
    for d in dims:
        out[d] = values[d].astype(float).values
    attrs = [c for c in others if c not in dims]
    for c in attrs:
        s = raw[c].where(~_is_missing(raw[c]))
        num = pd.to_numeric(s, errors="coerce")
        out[c] = (num if (num.notna() == s.notna()).all() and c != "emotion" else s.astype(object).where(s.notna(), None)).values
    report.attributes = [c for c in attrs if c != "emotion"]

    report.n_trials = len(out)
    report.n_raters = int(out["rater_id"].nunique())
    per_image = out.groupby("image_id").size()
    report.n_images_rated = int(per_image.size)
    if per_image.size:
        report.ratings_per_image = {"min": float(per_image.min()), "median": float(per_image.median()), "max": float(per_image.max())}
    report.dimension_stats = pd.DataFrame([
        {"dimension": d, "scale": f"{scales[d][0]:g}-{scales[d][1]:g}", "n": int(out[d].notna().sum()),
         "mean": out[d].mean(), "sd": out[d].std(ddof=1)} for d in dims])
    unrated = len(known_ids - set(per_image.index))
    if unrated:
        report.warnings.append(f"{unrated} stimulus image(s) have no rating")
    return out, report
