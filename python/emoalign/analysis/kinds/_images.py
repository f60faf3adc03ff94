"""Which images each compared rater rated: the ``images: common`` restriction and the unequal-n and
constant-output checks every comparing kind gets (applied by :func:`emoalign.analysis.kinds.base.register`).

A kind declares what it compares when it registers:

* ``"ratings_vs_human"``: machine ratings of ``dimension`` against the human aggregate (the human image
  mean is one of the compared raters);
* ``"ratings"``: ratings of ``dimension`` by the resolved raters (the human aggregate only when listed);
* ``"labels"``: machine emotion labels (the ``emotion`` column of the machines table).

Raters ranked or compared on different image sets are not comparable: a rater that missed 10% of the
images is judged on the other 90%. :func:`scope` warns when compared machine raters rated different
numbers of images (within the analysis ``subset``) and names them so their rows can be flagged; with
``images: common`` it restricts the study to the images every compared rater rated (on every requested
dimension), and the counts are equal by construction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from emoalign.analysis.study import HUMAN, Study, apply_subset
from emoalign.errors import EmoalignError

LABEL_COLUMN = "emotion"


@dataclass
class Scope:
    """The study an analysis runs on, and what the pre-run checks found.

    ``short``: {rater: (n images, max n)} for machine raters that rated fewer images than another
    compared rater; ``constant``: {(rater, dimension): value} for machine raters that gave one value
    to every image; ``warnings``: messages for the manifest.
    """

    study: Study
    short: dict[str, tuple[int, int]] = field(default_factory=dict)
    constant: dict[tuple[str, str], float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _images_in_subset(study: Study, subset: dict | None) -> set[str] | None:
    """Image ids whose design columns match ``subset`` (None: no subset, or it names non-design columns)."""
    if not subset or any(c not in study.stimuli.columns for c in subset):
        return None
    return set(apply_subset(study.stimuli, subset)["image_id"].astype(str))


def rated(study: Study, rater: str, column: str) -> pd.Series:
    """Non-missing values of ``column`` per image for one rater (the human image mean for ``human``)."""
    if rater == HUMAN:
        if column not in study.humans.columns:
            return pd.Series(dtype=float)
        h = study.humans[["image_id", column]].dropna()
        if column == LABEL_COLUMN or not pd.api.types.is_numeric_dtype(h[column]):
            return h.groupby("image_id")[column].first()
        return h.groupby("image_id")[column].mean()
    try:
        m = study.machine_ratings(rater, column)
    except EmoalignError:
        return pd.Series(dtype=float)
    m = m.dropna(subset=["value"])
    return m.set_index("image_id")["value"]


def scope(opts, study: Study, compares: str | None) -> Scope:
    """Apply ``images: common`` and run the unequal-n and constant-output checks for one analysis."""
    out = Scope(study=study)
    if compares is None:
        return out
    names = study.resolve_raters(opts.raters, default=HUMAN if compares == "ratings" else "machines")
    machines = [x for x in names if x != HUMAN]
    raters = ([HUMAN] if compares == "ratings_vs_human" or HUMAN in names else []) + machines
    if compares == "labels":
        columns, raters = [LABEL_COLUMN], machines
    else:
        columns = opts.dimensions() or list(study.scales)
    if not machines:
        return out
    allowed = _images_in_subset(study, opts.subset)
    values = {(r, c): rated(study, r, c) for r in raters for c in columns}
    if allowed is not None:
        values = {k: v[v.index.astype(str).isin(allowed)] for k, v in values.items()}
    sets = {k: set(v.index.astype(str)) for k, v in values.items()}
    if getattr(opts, "images", "all") == "common":
        common = set.intersection(*sets.values()) if sets else set()
        if not common:
            raise EmoalignError(f"analysis {opts.id!r}: images: common leaves no image that every compared rater "
                                f"({', '.join(raters)}) rated", hint="remove images: common or compare fewer raters")
        dropped = len(set.union(*sets.values()) - common)
        if dropped:
            out.warnings.append(f"{opts.id}: images: common keeps the {len(common):,} images every compared rater "
                                f"rated ({dropped:,} dropped)")
        st = study.stimuli
        out.study = replace(study, stimuli=st[st["image_id"].astype(str).isin(common)].reset_index(drop=True))
        values = {k: v[v.index.astype(str).isin(common)] for k, v in values.items()}
    else:
        for c in columns:
            counts = {r: len(sets[(r, c)]) for r in machines}
            top = max(counts.values())
            short = {r: n for r, n in counts.items() if n < top}
            if len(machines) > 1 and short:
                what = ", ".join(f"{r} {n:,}" for r, n in counts.items())
                out.warnings.append(f"{opts.id}: raters compared on unequal numbers of images ({c}: {what}); "
                                    "their rows are flagged. Set `images: common` to compare them on the images "
                                    "all of them rated")
                for r, n in short.items():
                    out.short[r] = min((n, top), out.short.get(r, (n, top)))
    if compares != "labels":
        for (r, c), v in values.items():
            x = pd.to_numeric(v, errors="coerce").to_numpy(dtype=float)
            x = x[~np.isnan(x)]
            if r != HUMAN and len(x) >= 2 and np.ptp(x) == 0:
                out.constant[(r, c)] = float(x[0])
                out.warnings.append(f"{opts.id}: rater {r} gives every image the same {c} rating ({x[0]:g}): its "
                                    "correlations and ICCs are undefined (NaN), mixed models with it are "
                                    "(near-)singular; its rows are flagged")
    return out
