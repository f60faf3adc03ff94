"""Helpers shared by the pure-Python kinds (classification, mcnemar, agreement, group_bias,
response_diversity, group_accuracy, calibration, prior_correction, human_percentile): ``by`` grouping,
label validation, the final tidy table, and the fold/bootstrap options of the held-out kinds."""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterator

import numpy as np
import pandas as pd

from pydantic import Field

from emoalign.analysis.checks import Problem, stimulus_column_problems
from emoalign.analysis.kinds.base import AnalysisBase, tidy
from emoalign.analysis.study import Study
from emoalign.errors import EmoalignError, did_you_mean, format_examples


def check_columns(df: pd.DataFrame, cols: list[str], analysis_id: str, field: str = "by") -> None:
    """Raise an EmoalignError naming the analysis and field when a column is missing from the data."""
    for col in cols:
        if col not in df.columns:
            raise EmoalignError(f"analysis {analysis_id!r}: {field} names column {col!r}, which the data lacks"
                                + did_you_mean(col, df.columns),
                                hint=f"available columns: {', '.join(map(str, df.columns))}")


def groups(df: pd.DataFrame, by: list[str]) -> Iterator[tuple[dict[str, str], pd.DataFrame]]:
    """Yield ({by column: value as str}, rows) per combination of ``by`` (one group when ``by`` is empty)."""
    if not by:
        yield {}, df
        return
    for key, g in df.groupby(list(by), observed=True, sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        yield {c: (None if (isinstance(k, float) and math.isnan(k)) else str(k)) for c, k in zip(by, key)}, g


def correct_mask(predicted: pd.Series, reference: pd.Series) -> np.ndarray:
    """True where the prediction equals the reference; missing predictions are wrong."""
    p = predicted.to_numpy(dtype=object)
    r = reference.astype(str).to_numpy(dtype=object)
    return np.array([isinstance(a, str) and a == b for a, b in zip(p, r)], dtype=bool)


def check_labels(lf: pd.DataFrame, labels: list[str], analysis_id: str, reference: str) -> tuple[pd.DataFrame, list[str]]:
    """Validate a label frame against the study's label set.

    Reference labels must be in the set (else an error naming the offending labels); stimuli with no
    reference label are dropped (warning); predictions missing or outside the set are kept, counted
    as wrong, and reported per rater in a warning.
    """
    warnings: list[str] = []
    ref = lf["reference"]
    missing_ref = ref.isna() | ref.isin(["nan", "None", ""])
    if missing_ref.any():
        warnings.append(f"{analysis_id}: {int(missing_ref.sum())} row(s) without a reference label in column "
                        f"{reference!r} were dropped")
        lf = lf[~missing_ref]
    bad_ref = sorted(set(lf["reference"]) - set(labels))
    if bad_ref:
        raise EmoalignError(f"analysis {analysis_id!r}: reference column {reference!r} has label(s) outside the "
                            f"study's emotions: {format_examples(bad_ref)}",
                            hint=f"study.emotions is [{', '.join(labels)}]; add the labels there or map them")
    for rater, g in lf.groupby("rater", sort=False):
        pred = g["predicted"]
        invalid = pred[~pred.isin(labels)]
        if len(invalid):
            c = Counter("<missing>" if (v is None or (isinstance(v, float) and math.isnan(v))) else str(v)
                        for v in invalid)
            what = ", ".join(f"{k} x{v}" for k, v in c.most_common(5)) + (" ..." if len(c) > 5 else "")
            warnings.append(f"{analysis_id}: rater {rater}: {len(invalid)} of {len(g)} predictions missing or outside "
                            f"the label set ({what}) counted as wrong")
    return lf, warnings


def finish(rows: list[dict], group_cols: list[str]) -> pd.DataFrame:
    """Rows -> tidy table: grouping columns, then broom value columns, then the rest.

    The engine inserts ``analysis_id`` (= the analysis' ``id``) as the first column when it writes
    the result, as for every kind.
    """
    df = pd.DataFrame(rows)
    if "n" in df.columns:
        df["n"] = df["n"].astype("Int64")
    return tidy(df, group_cols)


def require_dimensions(opts) -> list[str]:
    dims = opts.dimensions()
    if not dims:
        raise EmoalignError(f"analysis {opts.id!r} ({opts.kind}) needs a dimension",
                            hint="add e.g. `dimension: valence` or `dimension: [valence, arousal]`")
    return dims


def require_machine_raters(opts, study) -> list[str]:
    """The analysis' machine raters (``raters`` resolved, ``human`` left out); an error naming the kind when none."""
    raters = [x for x in study.resolve_raters(opts.raters) if x != "human"]
    if not raters:
        raise EmoalignError(f"analysis {opts.id!r}: {opts.kind} needs machine raters", hint="set e.g. `raters: [vlm]`")
    return raters


def paired_with_human(cf: pd.DataFrame, rater: str, by: list[str]) -> pd.DataFrame:
    """One row per image a machine rater rated: ``image_id``, ``machine``, ``human`` (image mean) and ``by`` cols."""
    h = cf[cf["rater"] == "human"][["image_id", "rating"]].rename(columns={"rating": "human"})
    m = cf[cf["rater"] == rater][["image_id", "rating", *by]].rename(columns={"rating": "machine"})
    return m.merge(h, on="image_id", how="inner").dropna(subset=["machine", "human"])


# ---- held-out (cross-fitted) kinds: calibration, prior_correction --------------------------------
class HeldOutOptions(AnalysisBase):
    """Options of kinds that fit something to the data and report it on held-out folds only."""

    folds: int = Field(5, ge=2, description="Number of cross-validation folds; every image is held out once.")
    fold_by: str | list[str] | None = Field(
        "identity_id", description="Stimulus column(s) whose values stay together in one fold, so no face identity is "
                                   "in both training and test (list several when an identity is only unique within "
                                   "cells, e.g. [race, gender, identity_id]; a coarser grouping is stricter, never "
                                   "leaky); null = fold single images.")
    seed: int = Field(1, description="Seed of the fold assignment and the bootstrap.")
    bootstrap: int = Field(1000, ge=0, description="Bootstrap replicates over images for the CIs (0 = no CI).")
    ci_level: float = Field(0.95, gt=0, lt=1, description="Confidence level of the percentile bootstrap intervals.")


def check_held_out(opts: HeldOutOptions, study: Study) -> list[Problem]:
    """The ``fold_by`` columns are stimulus columns (the check hook of the held-out kinds)."""
    return stimulus_column_problems("fold_by", opts.fold_by, study, " (fold_by: null folds single images)")


def fold_text(fold_by) -> str:
    """``fold_by`` for people: ``identity_id``, ``race × gender × identity_id`` or ``image``."""
    return "image" if not fold_by else fold_by if isinstance(fold_by, str) else " × ".join(fold_by)


def image_folds(opts: HeldOutOptions, stimuli: pd.DataFrame) -> pd.Series:
    """Fold of every stimulus image (index: ``image_id``), grouped by ``opts.fold_by``; the same for every rater."""
    from emoalign.analysis.stats.crossval import grouped_folds

    cols = [] if opts.fold_by is None else [opts.fold_by] if isinstance(opts.fold_by, str) else list(opts.fold_by)
    check_columns(stimuli, cols, opts.id, "fold_by")
    keys = (stimuli[cols].astype(str).agg("\x1f".join, axis=1) if cols else stimuli["image_id"].astype(str))
    keys = keys.where(~stimuli[cols].isna().any(axis=1), None) if cols else keys
    try:
        folds = grouped_folds(keys.to_numpy(dtype=object), opts.folds, opts.seed)
    except ValueError as exc:
        raise EmoalignError(f"analysis {opts.id!r}: {exc} (fold_by: {opts.fold_by})",
                            hint="lower `folds` or fold by a finer column (fold_by: null folds single images)") from None
    return pd.Series(folds, index=stimuli["image_id"].astype(str).to_numpy(), name="fold")


def bootstrap_rows(stat, n: int, reps: int, seed, level: float) -> dict[str, tuple[float, float, float, float]]:
    """Point estimate and percentile bootstrap CI of every statistic ``stat(W)`` returns (``W``: B x n frequency
    weights over items; ``stat`` maps a name to B values). Returns name -> (estimate, std_error, conf_low, conf_high)."""
    from emoalign.analysis.stats.krippendorff import bootstrap_weights
    from emoalign.analysis.stats.weighted import percentile_ci

    point = stat(np.ones((1, n)))
    out = {k: (float(np.asarray(v).ravel()[0]), math.nan, math.nan, math.nan) for k, v in point.items()}
    if reps > 0 and n >= 2:
        reps_all = stat(bootstrap_weights(n, reps, np.random.default_rng(seed)))
        for k, v in reps_all.items():
            lo, hi, se = percentile_ci(v, level)
            out[k] = (out[k][0], se, lo, hi)
    return out
