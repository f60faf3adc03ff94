"""Candidate probabilities: every candidate answer scored by the probability of its full token sequence.

The *answer position* is the generated token where the parsed answer starts (``Ask.locate`` gives its
character span; else the first token, after any ``</think>`` trace, from which a candidate's tokens follow;
else the first token after the trace). The context there is the prompt plus the tokens generated before it.

Each candidate is written in its *surface forms*: as given, lower-case and capitalised for labels ("happy",
"Happy"), each with and without a leading space; numbers as written, with and without a leading space.
Every form is tokenised with the model's own tokenizer, so a label split into several tokens ("dis", "gust"),
"10" written as "1", "0", or "-4" as "-", "4" is scored as the whole sequence:

    P(form) = prod_k p(t_k | context, t_1..t_{k-1})                      (chain rule)

A form whose tokens begin another form's tokens ("1" and "10" as "1", "0" on a 1–10 scale) is counted only
when the next token does not continue it into that longer form: P(form) x (1 - sum_t p(t | context, form))
over those continuing tokens t, so the events are disjoint. A candidate's probability is the sum over its
forms; a token sequence claimed by two candidates is ambiguous and dropped. Probabilities are renormalised
over the candidates and their pre-normalisation sum is reported as ``candidate_mass`` (how much of the
model's belief at the answer position is on a well-formed candidate). Tokens that only *start* a candidate
(" a" for "angry", "S" for sad/surprise) no longer count unless the rest of the candidate follows.

This generalises first-token scoring (G-Eval: Liu et al. 2023, "G-Eval: NLG Evaluation using GPT-4 with
Better Human Alignment", EMNLP), which it equals when every form is a single token; the sequence
probability is the standard log-likelihood scoring of multiple-choice continuations (e.g. Brown et al. 2020,
"Language Models are Few-Shot Learners", NeurIPS, §2).

``hf`` and ``mlx`` have every conditional distribution they need (greedy steps, plus extra forward passes for
contexts off the greedy path). ``openai`` only has the ``top_logprobs`` lists along the generated tokens:
``probs_from_top_logprobs_path`` applies the same rule to what those lists show (a lower bound on the mass).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from emoalign.raters.vlm.parse import REASONING_END_MARKERS, REASONING_TAGS

#: what closes a reasoning trace (the answer comes after the last one)
THINK_CLOSERS = tuple(f"</{t}>" for t in REASONING_TAGS) + REASONING_END_MARKERS
_NUMERIC = re.compile(r"[-+]?\d+(?:\.\d+)?")


def surface_forms(candidate: str) -> tuple[str, ...]:
    """The strings a model may write for ``candidate`` at the answer position."""
    c = candidate.strip()
    if not c:
        return ()
    base = {c} if _NUMERIC.fullmatch(c) else {c, c.lower(), c[:1].upper() + c[1:].lower()}
    return tuple(sorted({f for b in base for f in (b, " " + b)}))


@dataclass
class CandidateForms:
    """Every surface form of every candidate as token ids, with the contexts whose next-token distribution
    the sequence rule needs. ``ids`` are the vocabulary ids that appear in any form: distributions are passed
    around *gathered* at them (``gather``)."""

    candidates: tuple[str, ...]
    forms: list[tuple[tuple[int, ...], int]]           # (token ids, candidate index)
    ids: np.ndarray = field(repr=False)
    col: dict[int, int] = field(repr=False)
    contexts: list[tuple[int, ...]] = field(repr=False)  # non-root contexts, shortest first
    continuing: dict[tuple[int, ...], list[int]] = field(repr=False)

    @classmethod
    def build(cls, candidates: Sequence[str], encode: Callable[[str], Sequence[int]]) -> "CandidateForms":
        owner: dict[tuple[int, ...], set[int]] = {}
        for j, c in enumerate(candidates):
            for form in surface_forms(c):
                seq = tuple(int(t) for t in encode(form))
                if seq:
                    owner.setdefault(seq, set()).add(j)
        forms = sorted((seq, next(iter(js))) for seq, js in owner.items() if len(js) == 1)
        seqs = {s for s, _ in forms}
        continuing = {}
        for s, _ in forms:
            nxt = sorted({o[len(s)] for o in seqs if len(o) > len(s) and o[:len(s)] == s})
            if nxt:
                continuing[s] = nxt
        contexts = {s[:k] for s, _ in forms for k in range(1, len(s))} | set(continuing)
        ids = np.array(sorted({t for s, _ in forms for t in s}), dtype=np.int64)
        return cls(tuple(candidates), forms, ids, {int(t): i for i, t in enumerate(ids)},
                   sorted(contexts, key=lambda q: (len(q), q)), continuing)

    def gather(self, logprobs) -> np.ndarray:
        """Log-probabilities at ``ids`` from a full-vocabulary log-probability vector (numpy-convertible)."""
        full = np.asarray(logprobs, dtype=np.float64)
        out = np.full(len(self.ids), -np.inf)
        ok = self.ids < full.shape[-1]
        out[ok] = full[self.ids[ok]]
        return out

    def starts_at(self, tokens: Sequence[int], i: int) -> bool:
        """Whether some form's tokens follow from position ``i`` of ``tokens``."""
        return any(tuple(tokens[i:i + len(s)]) == s for s, _ in self.forms)

    def score(self, dists: Mapping[tuple[int, ...], np.ndarray]) -> tuple[dict[str, float] | None, float]:
        """``(probs, mass)`` from gathered log-probabilities: ``dists[()]`` at the answer position and
        ``dists[ctx]`` after each context in ``contexts``; a missing context contributes nothing."""
        raw = np.zeros(len(self.candidates))
        for s, j in self.forms:
            lp = 0.0
            for k in range(len(s)):
                d = dists.get(s[:k])
                if d is None:
                    lp = -math.inf
                    break
                lp += float(d[self.col[s[k]]])
            p = math.exp(lp) if lp > -math.inf else 0.0
            if p > 0.0 and s in self.continuing:
                d = dists.get(s)
                if d is None:
                    p = 0.0
                else:
                    p *= max(0.0, 1.0 - sum(math.exp(float(d[self.col[t]])) for t in self.continuing[s]))
            raw[j] += p
        return renormalise(self.candidates, raw.tolist())


def reasoning_end(token_texts: Sequence[str]) -> int:
    """Index of the first token after the last closing reasoning tag (0 when there is none)."""
    start, text = 0, ""
    for i, tok in enumerate(token_texts):
        text += tok
        if any(t in text for t in THINK_CLOSERS):
            start, text = i + 1, ""
    return start


def token_at(offsets: Sequence[int], char: int) -> int | None:
    """The token whose text holds character ``char``; ``offsets[i]`` is where token ``i`` starts in the decoded
    text and ``offsets[-1]`` the text's length."""
    for i in range(len(offsets) - 1):
        if offsets[i] <= char < offsets[i + 1]:
            return i
    return None


def answer_position(tokens: Sequence[int], token_texts: Sequence[str], offsets: Sequence[int], forms: CandidateForms,
                    span: tuple[int, int] | None) -> int | None:
    """The answer position (see the module docstring): the token holding the start of the parsed answer
    ``span``, else the first token after any reasoning trace where a candidate's tokens follow; None if neither."""
    if span is not None:
        i = token_at(offsets, span[0])
        if i is not None:
            return i
    for i in range(reasoning_end(token_texts), len(tokens)):
        if forms.starts_at(tokens, i):
            return i
    return None


def score_answer(forms: CandidateForms, tokens: Sequence[int], decode: Callable[[Sequence[int]], str],
                 steps: Sequence[np.ndarray], locate: Callable[[str], tuple[int, int] | None] | None,
                 probe: Callable[[int, list], Mapping[tuple[int, ...], np.ndarray]]):
    """``(probs, mass, answer_position, n_probes)`` of one generated answer.

    ``tokens``: the generated ids; ``decode``: ids -> text (as the answer text is decoded); ``steps[k]``: the
    gathered log-probabilities that produced ``tokens[k]``; ``locate``: text -> span of the parsed answer;
    ``probe(at, contexts)``: gathered log-probabilities after ``tokens[:at]`` + each context, for the contexts
    the greedy steps do not cover.
    """
    text = decode(tokens)
    offsets = [len(decode(tokens[:i])) for i in range(len(tokens) + 1)]
    offsets[-1] = max(offsets[-1], len(text))
    texts = [text[offsets[i]:offsets[i + 1]] for i in range(len(tokens))]
    pos = answer_position(tokens, texts, offsets, forms, locate(text) if locate is not None else None)
    at = pos if pos is not None and pos < len(steps) else min(reasoning_end(texts), len(steps) - 1)
    dists, missing = {(): steps[at]}, []
    for ctx in forms.contexts:
        j = at + len(ctx)
        if j < len(steps) and tuple(tokens[at:j]) == ctx:
            dists[ctx] = steps[j]
        else:
            missing.append(ctx)
    if missing:
        dists.update(probe(at, missing))
    probs, mass = forms.score(dists)
    return probs, mass, pos, len(missing)


def renormalise(candidates: Sequence[str], raw: Sequence[float]) -> tuple[dict[str, float] | None, float]:
    """``(probs, mass)``: candidate probabilities summing to 1 and their summed mass before that.

    ``probs`` is None when the candidates received no mass at all.
    """
    mass = float(sum(raw))
    if not (mass > 0.0) or not math.isfinite(mass):
        return None, mass
    return {c: float(p) / mass for c, p in zip(candidates, raw)}, mass


# ------------------------------------------------------------------------------------------ openai

def _norm(text: str) -> str:
    return text.replace("\u2581", " ").replace("\u0120", " ").replace("\u010a", "\n")


def answer_position_text(token_texts: Sequence[str], candidates: Sequence[str], span: tuple[int, int] | None) -> int | None:
    """``answer_position`` for servers that return token *texts*: the token holding the start of ``span``, else
    the first token after any reasoning trace from which the text continues with a candidate's form."""
    texts = [_norm(t) for t in token_texts]
    offsets = np.concatenate([[0], np.cumsum([len(t) for t in texts])]).tolist()
    if span is not None:
        i = token_at(offsets, span[0])
        if i is not None:
            return i
    forms = [f for c in candidates for f in surface_forms(c)]
    for i in range(reasoning_end(texts), len(texts)):
        rest = "".join(texts[i:])
        if any(rest.startswith(f) for f in forms):
            return i
    return None


def probs_from_top_logprobs_path(positions: Sequence[Sequence[tuple[str, float]]], chosen: Sequence[str],
                                 candidates: Sequence[str]) -> tuple[dict[str, float] | None, float]:
    """The sequence rule on what an OpenAI-compatible server shows: ``positions[k]`` is the ``top_logprobs``
    list (token text, logprob) at the k-th generated token from the answer position on, ``chosen[k]`` the token
    generated there.

    Walking the generated tokens: an alternative at depth k whose text completes a form (the text generated so
    far plus it) counts with the probability of the path to it; one that only starts a form is followed only if
    it is the generated token (the lists say nothing about other branches). A completed form that a longer form
    continues counts only with the next list's mass on tokens that do not continue it, when that list is on the
    path. Alternatives outside the top lists count as 0, so the mass is a lower bound.
    """
    forms = {f: j for j, c in enumerate(candidates) for f in surface_forms(c)}
    raw = [0.0] * len(candidates)
    prefix, path_lp = "", 0.0
    for k, alts in enumerate(positions):
        nxt_chosen = None
        for text, lp in alts:
            if lp is None or not math.isfinite(lp):
                continue
            t = _norm(text)
            s = prefix + t
            p = math.exp(path_lp + lp)
            if s in forms:
                longer = [f for f in forms if len(f) > len(s) and f.startswith(s)]
                if longer and t == _norm(chosen[k]) and k + 1 < len(positions):
                    cont = sum(math.exp(l2) for t2, l2 in positions[k + 1]
                               if l2 is not None and any(f.startswith(s + _norm(t2)) for f in longer))
                    p *= max(0.0, 1.0 - cont)
                raw[forms[s]] += p
            if t == _norm(chosen[k]) and any(f.startswith(s) and len(f) > len(s) for f in forms):
                nxt_chosen = (s, path_lp + lp)
        if nxt_chosen is None:
            break
        prefix, path_lp = nxt_chosen
    return renormalise(candidates, raw)
