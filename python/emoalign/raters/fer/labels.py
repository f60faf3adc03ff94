"""Map a FER model's classes onto the study's emotion set, and its valence/arousal onto the study scale.

Models differ in class names, order and number (FER2013: 7 classes with surprise; AffectNet-8 adds
contempt), so every adapter carries an explicit map ``model class -> study emotion or None``. Classes
mapped to ``None`` (by default: ``surprise``, ``contempt`` and anything not in the study's set) are
*unmapped*; two policies handle them:

``renormalise`` (default)
    p(e) = sum of the model probabilities of classes mapped to e, divided by the total mass of mapped
    classes: the model's distribution conditioned on answering with a study emotion. The prediction is
    the arg-max over study emotions.
``abstain``
    probabilities are not renormalised (they sum to the mapped mass) and the prediction is missing
    (``emotion_status = "invalid"``) when the model's top class is unmapped, so such images count as
    errors in classification analyses.

The unmapped mass is recorded per row (``unmapped_mass``) under both policies.

Valence/arousal: the paper (Tae et al., 2026, §3.4) maps FER outputs in [-1, 1] to the 1-9 human scale
with ``v_norm = (v + 1) / 2 * 8 + 1``; generalised to a native range [a, b] and study scale [lo, hi]:
``lo + (v - a) / (b - a) * (hi - lo)``. No clipping unless asked (the paper does not clip).
"""

from __future__ import annotations

from typing import Literal, Mapping, Sequence

import numpy as np

from emoalign.data.schemas import PAPER_EMOTIONS
from emoalign.errors import EmoalignError, format_examples

#: the paper's six study emotions (Tae et al., 2026)
DEFAULT_EMOTIONS = PAPER_EMOTIONS
DEFAULT_SCALES = {"valence": (1.0, 9.0), "arousal": (1.0, 9.0)}
UnmappedPolicy = Literal["renormalise", "abstain"]
UNMAPPED_POLICIES = ("renormalise", "abstain")

#: spellings used by FER checkpoints -> canonical emotion word
SYNONYMS = {
    "anger": "angry", "angry": "angry", "mad": "angry",
    "disgust": "disgust", "disgusted": "disgust", "disgusting": "disgust",
    "fear": "fear", "fearful": "fear", "afraid": "fear", "scared": "fear",
    "happy": "happy", "happiness": "happy", "joy": "happy", "happily": "happy",
    "sad": "sad", "sadness": "sad",
    "neutral": "neutral", "neutrality": "neutral", "calm": "neutral",
    "surprise": "surprise", "surprised": "surprise", "surprising": "surprise",
    "contempt": "contempt", "contemptuous": "contempt",
}


def canonical(name: str) -> str:
    """Canonical emotion word for a class name (case, spacing and common synonyms folded)."""
    key = str(name).strip().lower().replace("-", " ").replace("_", " ")
    key = key.split()[-1] if key else key  # "LABEL_3 happy" style names: last word
    return SYNONYMS.get(key, key)


def default_label_map(classes: Sequence[str], emotions: Sequence[str]) -> dict[str, str | None]:
    """Map each model class to the study emotion of the same canonical name, else ``None`` (unmapped)."""
    study = {canonical(e): e for e in emotions}
    return {c: study.get(canonical(c)) for c in classes}


def resolve_label_map(classes: Sequence[str], emotions: Sequence[str], label_map: Mapping[str, str | None] | None = None,
                      *, model: str = "model") -> dict[str, str | None]:
    """Complete and check a label map before any image is rated.

    ``label_map`` overrides the default (name-based) map for the classes it names; ``None`` or ``""``
    marks a class unmapped. Raises EmoalignError when a key is not a model class, a target is not a
    study emotion, or a study emotion receives no class (the model could never predict it).
    """
    classes = [str(c) for c in classes]
    emotions = [str(e) for e in emotions]
    if len(set(classes)) != len(classes):
        raise EmoalignError(f"{model}: duplicate class names {classes}", hint="give every output class a distinct name")
    out = default_label_map(classes, emotions)
    if label_map:
        unknown = [k for k in label_map if str(k) not in out]
        if unknown:
            raise EmoalignError(
                f"{model}: label_map names class(es) {format_examples(unknown)} that the model does not have; "
                f"its classes are: {', '.join(classes)}",
                hint="use the model's class names (id2label) as label_map keys",
            )
        for k, v in label_map.items():
            v = None if v in (None, "", "null", "none") else str(v)
            if v is not None and v not in emotions:
                raise EmoalignError(
                    f"{model}: label_map maps class {k!r} to {v!r}, which is not a study emotion ({', '.join(emotions)})",
                    hint="map to one of the study emotions, or to null to leave the class unmapped",
                )
            out[str(k)] = v
    missing = [e for e in emotions if e not in out.values()]
    if missing:
        raise EmoalignError(
            f"{model}: no model class maps to study emotion(s) {', '.join(missing)}; model classes: "
            f"{', '.join(classes)}; current map: {out}",
            hint="pass label_map={<model class>: <study emotion>, ...} naming a class for each missing emotion, "
                 "or drop the emotion from the study's emotion set",
        )
    return out


def map_probabilities(probs: np.ndarray, classes: Sequence[str], label_map: Mapping[str, str | None],
                      emotions: Sequence[str], policy: UnmappedPolicy = "renormalise") -> tuple[np.ndarray, np.ndarray]:
    """Class probabilities (N x C, rows sum to 1) -> study-emotion probabilities (N x E) and unmapped mass (N).

    Classes mapped to the same emotion are summed. ``renormalise`` divides by the mapped mass (rows of
    the result sum to 1; a row whose mapped mass is 0 becomes NaN); ``abstain`` leaves it as is.
    """
    if policy not in UNMAPPED_POLICIES:
        raise EmoalignError(f"unknown unmapped-class policy {policy!r}", hint=f"use one of {UNMAPPED_POLICIES}")
    probs = np.asarray(probs, dtype=np.float64)
    m = np.zeros((len(classes), len(emotions)))
    col = {e: j for j, e in enumerate(emotions)}
    for i, c in enumerate(classes):
        target = label_map.get(c)
        if target is not None:
            m[i, col[target]] = 1.0
    mapped = probs @ m
    mass = mapped.sum(axis=1)
    unmapped = 1.0 - mass
    if policy == "renormalise":
        with np.errstate(invalid="ignore", divide="ignore"):
            mapped = np.where(mass[:, None] > 0, mapped / mass[:, None], np.nan)
    return mapped, np.clip(unmapped, 0.0, 1.0)


def predict(mapped: np.ndarray, probs: np.ndarray, classes: Sequence[str], label_map: Mapping[str, str | None],
            emotions: Sequence[str], policy: UnmappedPolicy = "renormalise") -> list[str | None]:
    """Predicted study emotion per row: arg-max of ``mapped``; under ``abstain``, None if the top class is unmapped."""
    out: list[str | None] = []
    for k in range(len(mapped)):
        row = mapped[k]
        if not np.isfinite(row).any():
            out.append(None)
            continue
        if policy == "abstain" and label_map.get(classes[int(np.argmax(probs[k]))]) is None:
            out.append(None)
            continue
        out.append(emotions[int(np.nanargmax(row))])
    return out


def scale_va(v, native: Sequence[float] = (-1.0, 1.0), scale: Sequence[float] = (1.0, 9.0), clip: bool = False):
    """Linear map from the model's native range to the study scale (paper §3.4: ``(v + 1) / 2 * 8 + 1``).

    ``lo + (v - a) / (b - a) * (hi - lo)`` for native [a, b] and scale [lo, hi]; NaN stays NaN; with
    ``clip`` the result is limited to [lo, hi].
    """
    a, b = float(native[0]), float(native[1])
    lo, hi = float(scale[0]), float(scale[1])
    if not b > a or not hi > lo:
        raise EmoalignError(f"invalid range for valence/arousal scaling: native {native}, scale {scale}",
                            hint="ranges must be [low, high] with low < high")
    out = lo + (np.asarray(v, dtype=np.float64) - a) / (b - a) * (hi - lo)
    if clip:
        out = np.clip(out, lo, hi)
    return out
