"""Answer steps in one verified pass: speculative decoding with a format draft.

A step whose answer format is known (a label from a list, a number) is answered, by an instruction-following
model, with one candidate's tokens and then end of turn. Once the first answer token ``t0`` is known (from the
pass over the step's prompt), the *draft* is every candidate surface form that starts with ``t0``, each
followed by end of turn. They are fed in ONE forward pass together with the candidate-scoring contexts
(``CandidateForms.contexts``: the proper prefixes of multi-token forms, as " " before "5"), each as its own
row on the step's cache, so that pass gives the next-token distribution after every prefix of every row.

Verification walks that tree the way greedy decoding would: from ``(t0,)``, the greedy token after the path
is the argmax of the distribution there; the walk continues while the extended path is again a fed prefix, and
stops at end of turn, at ``max_new_tokens``, or at the first greedy token that leaves the draft (that token is
still accepted: it is the argmax at a fed position). Greedy decoding then continues from there. Every accepted
token is the argmax of the model's own distribution after exactly the tokens before it, so the answer is the
greedy answer by construction (Leviathan, Kalman & Matias 2023, "Fast Inference from Transformers via
Speculative Decoding", ICML; with greedy acceptance, the draft's tokens are accepted while they equal the
target model's argmax). The same pass's distributions are the candidate-scoring contexts, so verifying the
draft and scoring the candidates share one pass.

This module holds the model-free part (which rows to feed, the walk, the draft statistics); the backends run
the passes.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from emoalign.raters.vlm.answer_probs import CandidateForms


def draft_rows(forms: CandidateForms, first: int) -> list[tuple[int, ...]]:
    """Token sequences (from the answer position on, starting after the prompt) to feed in the verify pass:
    every form that starts with ``first`` and every scoring context, minus those that are a prefix of another
    row (a row gives the distribution after each of its prefixes). Empty when no form starts with ``first``:
    the answer does not start there, so greedy decoding proceeds without a draft."""
    drafted = {s for s, _ in forms.forms if s[0] == first}
    if not drafted:
        return []
    seqs = drafted | set(forms.contexts)
    return sorted(s for s in seqs if not any(len(o) > len(s) and o[:len(s)] == s for o in seqs))


def fed_prefixes(rows: Sequence[tuple[int, ...]]) -> dict[tuple[int, ...], tuple[int, int]]:
    """Every non-empty prefix of the fed rows -> (row, position) where the distribution after it is read."""
    out: dict[tuple[int, ...], tuple[int, int]] = {}
    for r, row in enumerate(rows):
        for k in range(1, len(row) + 1):
            out.setdefault(row[:k], (r, k - 1))
    return out


def walk(first: int, step0, next_after: Callable[[tuple[int, ...]], tuple[int, object] | None],
         eos_ids, max_new_tokens: int) -> tuple[list[int], list, bool]:
    """The greedy path through the verified tree: ``(tokens, steps, finished)``.

    ``first``/``step0``: the first generated token and the distribution it came from; ``next_after(path)``:
    (greedy token, distribution) after ``path`` where the pass computed it, else None. ``finished``: end of
    turn or ``max_new_tokens`` reached (otherwise greedy decoding continues after ``tokens``)."""
    tokens, steps = [first], [step0]
    while tokens[-1] not in eos_ids and len(tokens) < max_new_tokens:
        got = next_after(tuple(tokens))
        if got is None:
            return tokens, steps, False
        tok, dist = got
        tokens.append(int(tok))
        steps.append(dist)
    return tokens, steps, True


def draft_counts(forms: CandidateForms, tokens: Sequence[int], eos_ids, max_new_tokens: int) -> tuple[int, int]:
    """``(accepted, proposed)`` draft tokens of one answer: the draft proposes, after the first token, the rest
    of the form that greedy decoding followed (the shortest form starting with it when it followed none) and
    end of turn, within ``max_new_tokens``; accepted is how many of them greedy decoding produced, in order."""
    if not tokens:
        return 0, 0
    starting = [s for s, _ in forms.forms if s[0] == tokens[0]]
    if not starting:
        return 0, 0
    followed = [s for s in starting if tuple(tokens[:len(s)]) == s]
    form = max(followed, key=len) if followed else min(starting, key=lambda s: (len(s), s))
    eos = min((e for e in eos_ids if e is not None), default=None)
    proposal = list(form[1:]) + ([eos] if eos is not None else [])
    proposal = proposal[:max(0, max_new_tokens - 1)]
    accepted = 0
    for want, got in zip(proposal, tokens[1:]):
        if want != got and not (want == eos and got in eos_ids):
            break
        accepted += 1
    return accepted, len(proposal)


def lookup(table: Mapping[tuple[int, ...], object], before: Sequence[int], contexts) -> tuple[dict, list]:
    """Distributions the verify pass already computed for ``before`` + each context; the rest to probe."""
    found, missing = {}, []
    for ctx in contexts:
        key = tuple(before) + tuple(ctx)
        if key in table:
            found[ctx] = table[key]
        else:
            missing.append(ctx)
    return found, missing
