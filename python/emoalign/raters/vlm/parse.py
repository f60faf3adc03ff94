"""Parse VLM answers into a label or a rating, with a status per step and where in the text the answer is.

The cascade of the paper (Tae, Park & Choi 2026, §3.3): direct JSON parse, then markdown-fence stripping,
then a regex fallback; emotion labels are fuzzy-matched by their first three characters and ratings are
clamped to the scale. Added here, in this order of preference:

1. reasoning traces (``<think>…</think>``, ``<thinking>``, ``<reasoning>``, ``<reflection>``) are removed;
2. JSON (direct, fenced, or embedded in prose), by the step's key (``emotion``; ``valence``/``arousal``);
3. an explicit answer marker, the last one wins: ``Answer: 7``, ``**Final answer:** fear``, ``The answer is
   sad``, ``I rate 4``, ``I'd say 6``;
4. ratings: the dimension asked, by name (``Arousal: 6`` in the arousal step even when ``Valence: 3`` comes
   first);
5. free text: labels that are echoed as an option list (three or more labels in a row, ``happy, sad, angry``)
   or negated (``not happy``) are skipped and the first remaining label is taken; for ratings, range phrases
   (``from 1 to 9``, ``1-9 scale``), denominators (``8/9``, ``7 out of 9``) and incidental numbers (``20s``,
   ``30 years``, ``5th``, ``40%``) are skipped and the first remaining number (digits or a number word,
   ``seven``, ``minus two``) is taken.

Statuses (``PARSE_STATUSES``): ``json`` (the text is JSON), ``fence`` (JSON inside a fence), ``regex`` (found
in free text, by a marker or by scanning), ``fuzzy`` (a label matched only by its first three characters,
e.g. "sadness" -> sad; it takes precedence over the container status), ``clamped`` (a rating outside the scale,
clamped to it: "rating: 10" -> 9 on 1–9), ``invalid`` (nothing usable: the value is None and the raw text is
kept — "doubt" is never coerced into a label; "NaN" is not a number).

``Parsed.span`` is where the answer sits in the raw text (character offsets), so backends take answer
probabilities at that token (not at an echoed option list or an earlier distractor).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

#: the tags a model's reasoning trace is wrapped in (``<think>...</think>``): one list for this parser and the
#: answer position of ``answer_probs``
REASONING_TAGS = ("think", "thinking", "reasoning", "reflection")
#: markers that end a reasoning trace on their own (no tag pair)
REASONING_END_MARKERS = ("<|end_of_thought|>",)
_TAGS = "|".join(REASONING_TAGS)
_THINK = re.compile(rf"<({_TAGS})>.*?</\1>", re.S | re.I)
_OPEN_THINK = re.compile(rf"<({_TAGS})>", re.I)
_CLOSE_THINK = re.compile(rf"</(?:{_TAGS})>|" + "|".join(map(re.escape, REASONING_END_MARKERS)), re.I)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)```", re.S)
_OBJECT = re.compile(r"\{.*?\}", re.S)
_WORD = re.compile(r"[A-Za-z]+")

_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty".split())}
_WORDS_RE = "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True))
_DIGITS = r"[-+−]?\d+(?:\.\d+)?"
#: a number: digits, or a number word optionally negated ("minus two", "negative 3")
_NUM = rf"(?:(?:minus|negative)\s+)?(?:{_DIGITS}|\b(?:{_WORDS_RE})\b)"
_NUMBER = re.compile(_NUM, re.I)
_N = r"[-+−]?\d+(?:\.\d+)?"
_RANGE = re.compile(rf"(?:\b(?:from|scale\s+of|between)\s+{_N}\s*(?:to|-|–|and)\s*{_N})"
                    rf"|(?:{_N}\s*(?:to|-|–)\s*{_N}\s*(?:-?\s*point\s+)?scale)", re.I)
_DENOM = re.compile(r"(?:/|\bout\s+of\b)\s*[-+−]?\d+(?:\.\d+)?", re.I)
#: numbers that are not ratings: decades (20s), ordinals (5th), percentages, ages, counts of things
_INCIDENTAL = re.compile(
    rf"{_N}\s*(?:'?s\b|st\b|nd\b|rd\b|th\b|%|\s*(?:years?|yrs?|months?|people|persons?|faces?|eyes?|"
    rf"teeth|degrees?|percent|pixels?|px)\b)", re.I)
_MARKER = r"(?:(?:final\s+)?answer|rating|score|i\s+(?:would\s+)?rate(?:\s+(?:it|this|the\s+\w+))?(?:\s+as)?|" \
          r"i'?d\s+(?:say|rate(?:\s+it)?)|i\s+would\s+say|my\s+(?:rating|answer)\s+is)"
_MARKER_NUMBER = re.compile(rf"{_MARKER}\s*(?:is|=|:)?\s*[*_\s]*(?:is|:)?\s*[*_\s]*({_NUM})", re.I)
_MARKER_LABEL = re.compile(r"(?:(?:final\s+)?answer|emotion|expression|label|classification)"
                           r"\s*(?:is|=|:)\s*[*_\"'`\s]*(?:is\s+)?[*_\"'`\s]*(?:an?\s+)?([A-Za-z]+)", re.I)
_NEGATION = re.compile(r"(?:\bnot|\bno|n't|\bnever|\brather\s+than|\binstead\s+of|\bnor)"
                       r"(?:\s+(?:a|an|the|very|really|quite|exactly|just|at\s+all))*\s*[\"'*]*\s*$", re.I)
_LIST_SEP = re.compile(r"^[\s,;/|]*(?:\b(?:or|and)\b)?[\s,;/|]*$", re.I)

LABEL_KEYS = ("emotion", "label", "expression", "category", "answer", "class")
RATING_KEYS = {"valence": ("valence", "pleasantness", "rating", "score", "value", "answer"),
               "arousal": ("arousal", "intensity", "activation", "rating", "score", "value", "answer")}
DIMENSION_NAMES = {"valence": ("valence", "pleasantness"), "arousal": ("arousal", "intensity", "activation")}


@dataclass(frozen=True)
class Parsed:
    """One parsed step: ``value`` (label str, rating float, or None), ``status``, the cleaned text, and
    ``span``: (start, end) character offsets of the answer in the raw text (None when not located)."""

    value: Any
    status: str
    text: str = ""
    span: tuple[int, int] | None = None


def _clean_with_offsets(text: str) -> tuple[str, list[int]]:
    """The text without reasoning traces (see ``strip_reasoning``) and, per kept character, its raw offset."""
    text = text or ""
    keep = list(range(len(text)))
    for m in reversed(list(_THINK.finditer(text))):
        del keep[m.start():m.end()]
    clean = "".join(text[i] for i in keep)
    close = list(_CLOSE_THINK.finditer(clean))
    if close:
        keep = keep[close[-1].end():]
        clean = clean[close[-1].end():]
    m = _OPEN_THINK.search(clean)
    if m:
        keep = keep[:m.start()]
        clean = clean[:m.start()]
    lead = len(clean) - len(clean.lstrip())
    clean = clean.strip()
    return clean, keep[lead:lead + len(clean)]


def strip_reasoning(text: str) -> str:
    """Remove reasoning traces: closed ``<think>…</think>`` blocks (any of :data:`REASONING_TAGS`); text before a
    lone closing tag or end marker such as ``<|end_of_thought|>`` (templates that open the trace in the prompt);
    an unclosed opening tag and everything after it."""
    return _clean_with_offsets(text)[0]


def _raw_span(offsets: list[int], start: int, end: int) -> tuple[int, int] | None:
    if not offsets or start >= len(offsets) or end <= start:
        return None
    return offsets[start], offsets[min(end, len(offsets)) - 1] + 1


def _load_json(text: str) -> tuple[Any, str, int] | None:
    """(object, status, offset of the JSON text) from direct JSON, fenced JSON, or an object embedded in prose."""
    try:
        return json.loads(text), "json", 0
    except (ValueError, TypeError):
        pass
    for m in _FENCE.finditer(text):
        try:
            return json.loads(m.group(1).strip()), "fence", m.start(1)
        except ValueError:
            continue
    for m in _OBJECT.finditer(text):
        try:
            return json.loads(m.group(0)), "regex", m.start()
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


def _find_value(text: str, value: str, start: int) -> tuple[int, int] | None:
    i = text.lower().find(value.lower(), start)
    return (i, i + len(value)) if i >= 0 and value else None


# ------------------------------------------------------------------------------------------ labels

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


def _label_mentions(text: str, labels: tuple[str, ...]) -> list[tuple[str, str, int, int]]:
    """(label, how, start, end) of every word naming a label, minus echoed option lists and negated mentions."""
    hits = []
    for m in _WORD.finditer(text):
        lab, how = match_label(m.group(0), labels)
        if lab is not None:
            hits.append((lab, how, m.start(), m.end()))
    # option lists: three or more label words separated only by commas, slashes, "or", "and"
    echoed: set[int] = set()
    run = [0] if hits else []
    for i in range(1, len(hits) + 1):
        if i < len(hits) and _LIST_SEP.match(text[hits[i - 1][3]:hits[i][2]]):
            run.append(i)
            continue
        if len(run) >= 3:
            echoed.update(run)
        run = [i]
    return [h for i, h in enumerate(hits) if i not in echoed and not _NEGATION.search(text[max(0, h[2] - 40):h[2]])]


def parse_label(text: str, labels: tuple[str, ...]) -> Parsed:
    """Parse an emotion answer. ``labels`` is the allowed set (any order)."""
    clean, offsets = _clean_with_offsets(text)
    loaded = _load_json(clean)
    if loaded is not None:
        obj, status, at = loaded
        value = _pick(obj, LABEL_KEYS)
        if isinstance(value, str):
            lab, how = match_label(value, labels)
            if lab is not None:
                span = _find_value(clean, value.strip(), at)
                return Parsed(lab, "fuzzy" if how == "fuzzy" else status, clean,
                              _raw_span(offsets, *span) if span else None)
            # a JSON string that names no label: fall through to scanning its words
    for m in reversed(list(_MARKER_LABEL.finditer(clean))):
        lab, how = match_label(m.group(1), labels)
        if lab is not None:
            return Parsed(lab, "fuzzy" if how == "fuzzy" else "regex", clean, _raw_span(offsets, *m.span(1)))
    mentions = _label_mentions(clean, labels)
    for wanted in ("exact", "fuzzy"):
        for lab, how, s, e in mentions:
            if how == wanted:
                return Parsed(lab, "regex" if how == "exact" else "fuzzy", clean, _raw_span(offsets, s, e))
    return Parsed(None, "invalid", clean)


# ------------------------------------------------------------------------------------------ ratings

def _clamp(x: float, lo: float, hi: float) -> float:
    return float(min(max(x, lo), hi))


def _number(token: str) -> float | None:
    """A float from a number token (digits or a number word, "minus"/"negative" allowed); None if not finite."""
    t = token.strip().lower().replace("−", "-")
    sign = 1.0
    m = re.match(r"(minus|negative)\s+", t)
    if m:
        sign, t = -1.0, t[m.end():]
    try:
        x = float(t) if t not in _NUMBER_WORDS else float(_NUMBER_WORDS[t])
    except ValueError:
        return None
    x *= sign
    return x if math.isfinite(x) else None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        m = _NUMBER.search(_DENOM.sub(" ", value))
        return _number(m.group(0)) if m else None
    return None


def _blank(text: str, pattern: re.Pattern) -> str:
    """``text`` with every match of ``pattern`` replaced by spaces (offsets kept)."""
    return pattern.sub(lambda m: " " * len(m.group(0)), text)


def _rated(x: float, lo: float, hi: float, status: str, clean: str, span) -> Parsed:
    if x < lo or x > hi:
        return Parsed(_clamp(x, lo, hi), "clamped", clean, span)
    return Parsed(float(x), status, clean, span)


def parse_rating(text: str, lo: float, hi: float, dimension: str = "valence") -> Parsed:
    """Parse a rating answer on the scale [lo, hi]; a value outside is clamped (status ``clamped``)."""
    clean, offsets = _clean_with_offsets(text)
    loaded = _load_json(clean)
    if loaded is not None:
        obj, status, at = loaded
        raw_value = _pick(obj, RATING_KEYS.get(dimension, RATING_KEYS["valence"]))
        x = _as_number(raw_value)
        if x is not None:
            shown = raw_value if isinstance(raw_value, str) else json.dumps(raw_value)
            span = _find_value(clean, str(shown).strip(), at) or _find_value(clean, _fmt(x), at)
            return _rated(x, lo, hi, status, clean, _raw_span(offsets, *span) if span else None)
    free = _blank(_blank(_blank(clean, _RANGE), _DENOM), _INCIDENTAL)
    candidates = []
    markers = list(_MARKER_NUMBER.finditer(free))
    if markers:
        candidates.append(markers[-1].span(1))
    names = DIMENSION_NAMES.get(dimension, (dimension,))
    dim = re.compile(rf"\b(?:{'|'.join(names)})\b\s*(?:rating|score|level)?\s*(?:is|=|:|of)?\s*[*_\s]*({_NUM})", re.I)
    found = list(dim.finditer(free))
    if found:
        candidates.append(found[-1].span(1))
    if not candidates:
        other_dims = [n for d, ns in DIMENSION_NAMES.items() if d != dimension for n in ns]
        other = re.compile(rf"\b(?:{'|'.join(other_dims)})\b\s*(?:rating|score|level)?\s*(?:is|=|:|of)?\s*[*_\s]*{_NUM}",
                           re.I) if other_dims else None
        scan = _blank(free, other) if other is not None else free
        m = _NUMBER.search(scan)
        if m:
            candidates.append(m.span())
    for s, e in candidates:
        x = _number(free[s:e])
        if x is not None:
            return _rated(x, lo, hi, "regex", clean, _raw_span(offsets, s, e))
    return Parsed(None, "invalid", clean)


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def parse_integrated(text: str, labels: tuple[str, ...], scales: dict) -> dict[str, Parsed]:
    """Parse one answer holding all three judgements (``integrated`` strategy): a JSON object with
    ``emotion``, ``valence``, ``arousal`` (direct, fenced, or embedded), else per-field regexes."""
    clean = strip_reasoning(text)
    out: dict[str, Parsed] = {}
    loaded = _load_json(clean)
    obj, status = (loaded[0], loaded[1]) if loaded is not None and isinstance(loaded[0], dict) else ({}, "regex")
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
            out[dim] = _rated(x, lo, hi, status, clean, None)
            continue
        m = re.search(dim + rf"\"?\s*[:=]\s*\"?({_NUM})", clean, re.I)
        x = _number(m.group(1)) if m else None
        out[dim] = _rated(x, lo, hi, "regex", clean, None) if x is not None else Parsed(None, "invalid", clean)
    return out
