"""Candidate probabilities at the answer position, shared by every backend.

A model rarely answers with the bare candidate as its first token: it may write ``{"emotion":
"Anger"}`` or ``Valence: 7``. The *answer position* is the first generated token (after any
``</think>`` reasoning trace) that starts a candidate; the distribution over the next token at
that position is the model's belief about the answer (first-token scoring, as in G-Eval: Liu et
al. 2023, "G-Eval: NLG Evaluation using GPT-4 with Better Human Alignment", EMNLP).

A vocabulary token *votes* for a candidate when, after stripping whitespace, quotes and
punctuation and lower-casing, it is a non-empty prefix of the candidate ("Ang" -> "Anger") or
starts with the candidate's first three characters ("happy" -> "Happiness", the paper's label
rule). Tokens that would vote for several candidates ("S" for Sadness/Surprise) are ambiguous
and ignored. A candidate's probability is the summed probability of its tokens; the result is
renormalised over the candidates and the pre-normalisation sum is reported as
``candidate_mass``. The same rule runs over the full vocabulary (``mlx``, ``hf``) or over the
``top_logprobs`` a server returns (``openai``; tokens outside the top list count as 0).
"""

from __future__ import annotations

import math
from typing import Iterable, Mapping, Sequence

_STRIP = " \t\r\n\u2581\u0120\u010a\"'`*_:;,.!?()[]{}<>|=#"   # not "-": scales may be negative
THINK_CLOSERS = ("</think>", "</thinking>", "</reasoning>", "<|end_of_thought|>")


def normalize_token(text: str) -> str:
    """Lower-cased token text without surrounding whitespace, quotes or punctuation."""
    return text.strip(_STRIP).lower()


def _key(candidate: str) -> str:
    return normalize_token(candidate)


def token_votes(token_text: str, candidates: Sequence[str]) -> tuple[int, ...]:
    """Indices of the candidates that ``token_text`` could be the start of (empty if none)."""
    s = normalize_token(token_text)
    if not s:
        return ()
    out = []
    for i, cand in enumerate(candidates):
        c = _key(cand)
        if not c:
            continue
        if c.startswith(s) or (len(c) >= 3 and len(s) >= 3 and s.startswith(c[:3])):
            out.append(i)
    return tuple(out)


def unique_vote(token_text: str, candidates: Sequence[str]) -> int | None:
    """The single candidate ``token_text`` votes for, or None (no vote, or ambiguous)."""
    v = token_votes(token_text, candidates)
    return v[0] if len(v) == 1 else None


def answer_position(token_texts: Sequence[str], candidates: Sequence[str]) -> int | None:
    """Index of the first generated token that starts a candidate answer, or None.

    Tokens up to and including a closing reasoning tag (``</think>``...) are skipped. A position
    qualifies when its token votes for at least one candidate and the generated text from there
    on begins with a candidate's first three characters (the whole candidate if shorter).
    """
    start = 0
    text = ""
    for i, tok in enumerate(token_texts):
        text += tok
        if any(t in text for t in THINK_CLOSERS):
            start = i + 1
            text = ""
    keys = [_key(c) for c in candidates]
    for i in range(start, len(token_texts)):
        if not token_votes(token_texts[i], candidates):
            continue
        rest = "".join(token_texts[i:]).lstrip(_STRIP).lower()
        if any(k and rest.startswith(k[:3]) for k in keys):
            return i
    return None


def vocab_votes(token_texts: Iterable[str], candidates: Sequence[str]) -> dict[int, list[int]]:
    """Candidate index -> the vocabulary ids (positions in ``token_texts``) that vote only for it."""
    out: dict[int, list[int]] = {i: [] for i in range(len(candidates))}
    for tid, text in enumerate(token_texts):
        if text is None:
            continue
        j = unique_vote(text, candidates)
        if j is not None:
            out[j].append(tid)
    return out


def renormalise(candidates: Sequence[str], raw: Sequence[float]) -> tuple[dict[str, float] | None, float]:
    """``(probs, mass)``: candidate probabilities summing to 1 and their summed mass before that.

    ``probs`` is None when the candidates received no mass at all.
    """
    mass = float(sum(raw))
    if not (mass > 0.0) or not math.isfinite(mass):
        return None, mass
    return {c: float(p) / mass for c, p in zip(candidates, raw)}, mass


def probs_from_top_logprobs(top: Mapping[str, float] | Sequence[tuple[str, float]],
                            candidates: Sequence[str]) -> tuple[dict[str, float] | None, float]:
    """Candidate probabilities from a server's ``top_logprobs`` list at the answer position."""
    items = top.items() if isinstance(top, Mapping) else top
    raw = [0.0] * len(candidates)
    for text, lp in items:
        j = unique_vote(text, candidates)
        if j is not None and lp is not None and math.isfinite(lp):
            raw[j] += math.exp(lp)
    return renormalise(candidates, raw)
