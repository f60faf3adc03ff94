"""Parse VLM answers into a label or a rating, with a status per step.

The cascade of the paper (Tae, Park & Choi 2026, §3.3): direct JSON parse, then markdown-fence
stripping, then a regex fallback; emotion labels are fuzzy-matched by their first three characters
and ratings are clamped to the scale. Added here: reasoning traces (``<think>…</think>``,
``<thinking>``, ``<reasoning>``, ``<reflection>``) are stripped first, so thinking models parse.

Statuses (``PARSE_STATUSES``): ``json`` (the text is JSON), ``fence`` (JSON inside a ```` ``` ```` fence),
``regex`` (found in free text), ``fuzzy`` (a label matched only by its first three characters, e.g.
"sadness" -> sad; it takes precedence over the container status), ``invalid`` (nothing usable: the
value is None and the raw text is kept — "doubt" is never coerced into a label).

Ratings: in free text, range phrases ("from 1 to 9", "1-9") and denominators ("8/9", "7 out of 9")
are removed before taking the first number, so "8/9" -> 8 and "On a scale of 1 to 9, 6" -> 6.
A rating outside the scale is clamped ("rating: 10" -> 9 on 1–9) with the container status kept.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_THINK = re.compile(r"<(think|thinking|reasoning|reflection)>.*?</\1>", re.S | re.I)
_OPEN_THINK = re.compile(r"<(think|thinking|reasoning|reflection)>", re.I)
_CLOSE_THINK = re.compile(r"</(think|thinking|reasoning|reflection)>", re.I)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.S)
_OBJECT = re.compile(r"\{.*?\}", re.S)
_WORD = re.compile(r"[A-Za-z]+")
_NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
_N = r"[-+]?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"(?:\b(?:from|scale\s+of|between)\s+{_N}\s*(?:to|-|–|and)\s*{_N})"
                    rf"|(?:{_N}\s*(?:to|-|–)\s*{_N}\s*(?:-?\s*point\s+)?scale)", re.I)
_DENOM = re.compile(r"(?:/|\bout\s+of\b)\s*[-+]?\d+(?:\.\d+)?", re.I)

LABEL_KEYS = ("emotion", "label", "expression", "category", "answer", "class")
RATING_KEYS = {"valence": ("valence", "pleasantness", "rating", "score", "value", "answer"),
               "arousal": ("arousal", "intensity", "activation", "rating", "score", "value", "answer")}


@dataclass(frozen=True)
class Parsed:
    """One parsed step: ``value`` (label str, rating float, or None), ``status``, the cleaned text."""

    value: Any
    status: str
    text: str = ""


def strip_reasoning(text: str) -> str:
    """Remove reasoning traces: closed ``<think>…</think>`` blocks; text before a lone closing tag
    (templates that open the tag in the prompt); an unclosed opening tag and everything after it."""
    text = _THINK.sub("", text or "")
    close = list(_CLOSE_THINK.finditer(text))
    if close:
        text = text[close[-1].end():]
    m = _OPEN_THINK.search(text)
    if m:
        text = text[:m.start()]
    return text.strip()


def _load_json(text: str) -> tuple[Any, str] | None:
    """(object, status) from direct JSON, fenced JSON, or a JSON object embedded in prose."""
    try:
        return json.loads(text), "json"
    except (ValueError, TypeError):
        pass
    for m in _FENCE.finditer(text):
        try:
            return json.loads(m.group(1).strip()), "fence"
        except ValueError:
            continue
    for m in _OBJECT.finditer(text):
        try:
            return json.loads(m.group(0)), "regex"
        except ValueError:
            continue
    return None


def _pick(obj: Any, keys: tuple[str, ...]) -> Any:
    if isinstance(obj, dict):
        lower = {str(k).lower(): v for k, v in obj.items()}
        for k in keys:
            if k in lower:
                return lower[k]
        if len(obj) == 1:
            return next(iter(obj.values()))
        return None
    if isinstance(obj, list) and len(obj) == 1:
        return _pick(obj[0], keys)
    return obj


def match_label(word: str, labels: tuple[str, ...]) -> tuple[str | None, str]:
    """(label, "exact"|"fuzzy"|"none"): case-insensitive exact match, else a unique label sharing the
    word's first three characters (the paper's fuzzy rule)."""
    w = word.strip().strip(".,;:!?\"'`*()[]").lower()
    by_lower = {lab.lower(): lab for lab in labels}
    if w in by_lower:
        return by_lower[w], "exact"
    if len(w) >= 3:
        hits = [lab for lab in labels if lab.lower()[:3] == w[:3]]
        if len(hits) == 1:
            return hits[0], "fuzzy"
    return None, "none"


def parse_label(text: str, labels: tuple[str, ...]) -> Parsed:
    """Parse an emotion answer. ``labels`` is the allowed set (any order)."""
    clean = strip_reasoning(text)
    loaded = _load_json(clean)
    if loaded is not None:
        obj, status = loaded
        value = _pick(obj, LABEL_KEYS)
        if isinstance(value, str):
            lab, how = match_label(value, labels)
            if lab is not None:
                return Parsed(lab, "fuzzy" if how == "fuzzy" else status, clean)
            # a JSON string that names no label: fall through to scanning its words
    words = _WORD.findall(clean)
    for w in words:
        lab, how = match_label(w, labels)
        if how == "exact":
            return Parsed(lab, "regex", clean)
    for w in words:
        lab, how = match_label(w, labels)
        if how == "fuzzy":
            return Parsed(lab, "fuzzy", clean)
    return Parsed(None, "invalid", clean)


def _clamp(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        m = _NUMBER.search(_DENOM.sub(" ", value))
        return float(m.group(0)) if m else None
    return None


def parse_rating(text: str, lo: float, hi: float, dimension: str = "valence") -> Parsed:
    """Parse a rating answer on the scale [lo, hi]; the value is clamped to the scale."""
    clean = strip_reasoning(text)
    loaded = _load_json(clean)
    if loaded is not None:
        obj, status = loaded
        x = _as_number(_pick(obj, RATING_KEYS.get(dimension, RATING_KEYS["valence"])))
        if x is not None:
            return Parsed(_clamp(x, lo, hi), status, clean)
    free = _DENOM.sub(" ", _RANGE.sub(" ", clean))
    m = _NUMBER.search(free)
    if m:
        return Parsed(_clamp(float(m.group(0)), lo, hi), "regex", clean)
    return Parsed(None, "invalid", clean)


def parse_integrated(text: str, labels: tuple[str, ...], scales: dict) -> dict[str, Parsed]:
    """Parse one answer holding all three judgements (``integrated`` strategy): a JSON object with
    ``emotion``, ``valence``, ``arousal`` (direct, fenced, or embedded), else per-field regexes."""
    clean = strip_reasoning(text)
    out: dict[str, Parsed] = {}
    loaded = _load_json(clean)
    obj, status = loaded if loaded is not None and isinstance(loaded[0], dict) else ({}, "regex")
    lower = {str(k).lower(): v for k, v in obj.items()}
    lab = lower.get("emotion", lower.get("label", lower.get("expression")))
    if isinstance(lab, str) and match_label(lab, labels)[0] is not None:
        label, how = match_label(lab, labels)
        out["emotion"] = Parsed(label, "fuzzy" if how == "fuzzy" else status, clean)
    else:
        m = re.search(r"emotion\"?\s*[:=]\s*\"?([A-Za-z]+)", clean, re.I)
        label, how = match_label(m.group(1), labels) if m else (None, "none")
        out["emotion"] = Parsed(label, "invalid" if label is None else ("fuzzy" if how == "fuzzy" else "regex"), clean)
    for dim in ("valence", "arousal"):
        lo, hi = scales.get(dim, (1, 9))
        x = _as_number(lower.get(dim))
        if x is not None:
            out[dim] = Parsed(_clamp(x, lo, hi), status, clean)
            continue
        m = re.search(dim + r"\"?\s*[:=]\s*\"?([-+]?\d+(?:\.\d+)?)", clean, re.I)
        out[dim] = Parsed(_clamp(float(m.group(1)), lo, hi), "regex", clean) if m else Parsed(None, "invalid", clean)
    return out
