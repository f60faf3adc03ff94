"""The factorial stimulus design and the balanced assignment of images to human raters."""

from __future__ import annotations

import numpy as np
import pandas as pd


def image_id(race: str, gender: str, identity_id: str, emotion: str) -> str:
    """``{race}_{gender}_{identity_id}_{emotion}``: the file stem ``emoalign stimuli scan --pattern`` parses back."""
    return f"{race}_{gender}_{identity_id}_{emotion}"


def stimulus_grid(design: dict) -> pd.DataFrame:
    """One row per image of the fully crossed design race x gender x identity x emotion.

    Identities are nested in race x gender (``identity_id`` "01".."40" within each cell, zero-padded
    to the width of the largest id); ``identity_key`` is unique across the design.
    """
    n_id = int(design["identities"])
    width = max(2, len(str(n_id)))
    rows = []
    for race in design["races"]:
        for gender in design["genders"]:
            for k in range(1, n_id + 1):
                ident = str(k).zfill(width)
                for emotion in design["emotions"]:
                    rows.append({"image_id": image_id(race, gender, ident, emotion), "race": race, "gender": gender,
                                 "identity_id": ident, "identity_key": f"{race}_{gender}_{ident}", "emotion": emotion})
    return pd.DataFrame(rows)


def assign_images(n_images: int, n_raters: int, per_rater: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced random assignment: an ``(n_raters, per_rater)`` array of distinct image indices per rater.

    Each rater takes the ``per_rater`` images seen least so far (ties broken at random), so every
    image ends with ``floor`` or ``ceil`` of ``n_raters * per_rater / n_images`` ratings and no rater
    sees an image twice.
    """
    counts = np.zeros(n_images)
    out = np.empty((n_raters, per_rater), dtype=np.int64)
    for j in range(n_raters):
        key = counts + rng.random(n_images) * 0.5
        pick = np.argpartition(key, per_rater - 1)[:per_rater]
        out[j] = rng.permutation(pick)
        counts[pick] += 1
    return out


def rater_table(humans: dict, rng: np.random.Generator) -> pd.DataFrame:
    """Rater ids (``R0001``...) with balanced ``rater_gender`` and ``rater_age`` drawn across equal age cohorts."""
    n = int(humans["n_raters"])
    width = max(4, len(str(n)))
    attrs = humans.get("rater_attributes") or {}
    genders = list(attrs.get("genders", ["female", "male"]))
    lo, hi = attrs.get("age_range", [20, 69])
    cohorts = np.arange(lo, hi + 1, 10)
    df = pd.DataFrame({"rater_id": [f"R{j + 1:0{width}d}" for j in range(n)]})
    df["rater_gender"] = rng.permutation(np.resize(genders, n))
    start = rng.permutation(np.resize(cohorts, n))
    df["rater_age"] = np.minimum(start + rng.integers(0, 10, n), hi).astype(int)
    return df
