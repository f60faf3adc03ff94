"""The emotion lexicon of the ``open_vocabulary`` strategy: a free one-word answer -> a study label, or unmapped.

The shipped lexicon (``emoalign/data/emotion_lexicon.yaml``; its header documents the sources and rules) lists,
per label, the synonyms and inflections that name that label. A word maps to a label only when it is listed
under exactly that label (after lower-casing and stripping punctuation); anything else stays unmapped — never
stemmed, fuzzy-matched or guessed. Each study label always maps its own name. A user file of the same shape
replaces the shipped one (``emoalign infer --lexicon FILE``).

Reading an answer (:meth:`Lexicon.read`): reasoning traces are stripped; a JSON answer's ``emotion`` (or
``label``, ...) value, else an explicit marker (``Emotion: joyful``), else the words of the text, are looked up;
mentions after a negation (``not happy``) are skipped. Statuses: ``lexicon`` (mapped), ``unmapped`` (a word
the lexicon does not list), ``ambiguous`` (words listed under two different labels: "happy but sad"),
``invalid`` (no word at all). The model's own word is always kept (``emotion_word``) and carried into the
rating steps.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from emoalign.errors import EmoalignError, did_you_mean

LEXICON_PATH = Path(__file__).resolve().parents[2] / "data" / "emotion_lexicon.yaml"
_WORD = re.compile(r"[A-Za-z]+(?:[-'][A-Za-z]+)*")
#: words that carry no emotion of their own in a one-word answer ("A happy face.", "The person looks sad")
_FILLER = frozenset("a an the this that it is are was looks look looking seems seem appears appear face facial "
                    "expression emotion person man woman child they he she i would say answer feeling feels feel "
                    "very quite slightly somewhat rather mildly extremely really expressing showing shows".split())


@dataclass(frozen=True)
class Reading:
    """A free answer read through a lexicon: the model's ``word``, the mapped ``label`` (or None), the status
    and where the word sits in the raw text (``span``)."""

    word: str | None
    label: str | None
    status: str
    span: tuple[int, int] | None = None


def normalise(word: str) -> str:
    return word.strip().strip(".,;:!?\"'`*()[]{}").lower()


@dataclass(frozen=True)
class Lexicon:
    """word -> label over ``labels``; ``source`` (path) and ``sha256`` (of the canonical word table) for provenance."""

    words: dict[str, str]
    labels: tuple[str, ...]
    source: str
    sha256: str

    def lookup(self, word: str) -> str | None:
        return self.words.get(normalise(word))

    def read(self, text: str) -> Reading:
        """Read a step-1 answer (see the module docstring)."""
        from emoalign.raters.vlm.parse import LABEL_KEYS, _MARKER_LABEL, _NEGATION, _clean_with_offsets, _load_json, _pick, _raw_span

        clean, offsets = _clean_with_offsets(text)
        loaded = _load_json(clean)
        if loaded is not None:
            value = _pick(loaded[0], LABEL_KEYS)
            if isinstance(value, str) and value.strip():
                at = clean.find(value.strip(), loaded[2])
                r = self._read_words(value, 0, None, _NEGATION)
                span = _raw_span(offsets, at, at + len(value.strip())) if at >= 0 else None
                return Reading(r.word, r.label, r.status, span)
        marks = list(_MARKER_LABEL.finditer(clean))
        if marks:
            m = marks[-1]
            word = normalise(m.group(1))
            label = self.words.get(word)
            if label is not None or word not in _FILLER:
                return Reading(word, label, "lexicon" if label else "unmapped", _raw_span(offsets, *m.span(1)))
        return self._read_words(clean, 0, offsets, _NEGATION)

    def _read_words(self, text: str, base: int, offsets, negation) -> Reading:
        from emoalign.raters.vlm.parse import _raw_span

        words = [(m.group(0), m.start(), m.end()) for m in _WORD.finditer(text)]
        own = [(w, s, e) for w, s, e in words if normalise(w) not in _FILLER]
        listed = [(w, s, e, self.words[normalise(w)]) for w, s, e in own if normalise(w) in self.words]
        hits = [h for h in listed if not negation.search(text[max(0, h[1] - 40):h[1]])]
        span = (lambda s, e: _raw_span(offsets, base + s, base + e)) if offsets is not None else (lambda s, e: None)
        if hits:
            if len({h[3] for h in hits}) > 1:
                w, s, e, _ = hits[0]
                return Reading(normalise(w), None, "ambiguous", span(s, e))
            w, s, e, lab = hits[0]
            return Reading(normalise(w), lab, "lexicon", span(s, e))
        if listed:   # only negated mentions ("not happy"): the phrase is the model's word, mapped to nothing
            return Reading(" ".join(text.split()).lower().strip(".,;:!?\"'`*()[]{}")[:40], None, "unmapped")
        if own:
            w, s, e = own[0]
            return Reading(normalise(w), None, "unmapped", span(s, e))
        return Reading(None, None, "invalid")


def load_lexicon(labels, path: str | Path | None = None) -> Lexicon:
    """The lexicon for the study ``labels``: the shipped one (entries of other labels left out) or the user's
    file ``path`` (every label it lists must be a study label; a word under two labels is an error)."""
    p = Path(path) if path else LEXICON_PATH
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise EmoalignError(f"cannot read lexicon {p}: {exc}", hint="a YAML file with `labels: {label: [word, ...]}`") from None
    return _build(tuple(labels), text, str(p), bool(path))


@lru_cache(maxsize=16)
def _build(labels: tuple[str, ...], text: str, source: str, users: bool) -> Lexicon:
    where = f"lexicon {source}"
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise EmoalignError(f"cannot read {where}: {exc}", hint="a YAML file with `labels: {label: [word, ...]}`") from None
    table = data.get("labels") if isinstance(data, dict) else None
    if not isinstance(table, dict):
        raise EmoalignError(f"{where} has no `labels` mapping", hint="write `labels: {happy: [happy, joyful, ...], ...}`")
    if users:
        extra = [k for k in table if k not in labels]
        if extra:
            raise EmoalignError(f"{where}: label(s) {', '.join(map(str, extra))} are not study labels"
                                + did_you_mean(str(extra[0]), labels), hint=f"the study's labels are {', '.join(labels)}")
    words: dict[str, str] = {}
    for lab in labels:
        words[normalise(lab)] = lab
    for lab, entries in table.items():
        if lab not in labels:
            continue
        if not isinstance(entries, list) or not all(isinstance(w, str) and w.strip() for w in entries):
            raise EmoalignError(f"{where}: labels.{lab} must be a list of words", hint=f"e.g. {lab}: [{lab}, ...]")
        for w in entries:
            key = normalise(w)
            if words.get(key, lab) != lab:
                raise EmoalignError(f"{where}: the word {w!r} is listed under {words[key]!r} and {lab!r}",
                                    hint="a word may name one label only; remove it from one of them")
            words[key] = lab
    digest = hashlib.sha256(json.dumps(words, sort_keys=True).encode()).hexdigest()[:12]
    return Lexicon(words, labels, source, digest)
