"""Helpers shared by the pure-Python kinds (classification, mcnemar, agreement, group_bias,
response_diversity, group_accuracy): ``by`` grouping, label validation, and the final tidy table."""

from __future__ import annotations

import difflib
import math
from collections import Counter
from typing import Iterator

import numpy as np
import pandas as pd

from emoalign.analysis.kinds.base import tidy
from emoalign.errors import EmoalignError, format_examples


def check_columns(df: pd.DataFrame, cols: list[str], analysis_id: str, field: str = "by") -> None:
    """Raise an EmoalignError naming the analysis and field when a column is missing from the data."""
    for col in cols:
        if col not in df.columns:
            close = difflib.get_close_matches(str(col), [str(c) for c in df.columns], n=1, cutoff=0.6)
            raise EmoalignError(f"analysis {analysis_id!r}: {field} names column {col!r}, which the data lacks"
                                + (f" -- did you mean {close[0]!r}?" if close else ""),
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


def paired_with_human(cf: pd.DataFrame, rater: str, by: list[str]) -> pd.DataFrame:
    """One row per image a machine rater rated: ``image_id``, ``machine``, ``human`` (image mean) and ``by`` cols."""
    h = cf[cf["rater"] == "human"][["image_id", "rating"]].rename(columns={"rating": "human"})
    m = cf[cf["rater"] == rater][["image_id", "rating", *by]].rename(columns={"rating": "machine"})
    return m.merge(h, on="image_id", how="inner").dropna(subset=["machine", "human"])
