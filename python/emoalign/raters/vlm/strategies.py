"""Prompting strategies: turn a batch of images into backend asks, step by step, and parse the answers.

* ``context_carry`` (the paper, §3.3 and Figure 2): emotion -> valence with the emotion carried ->
  arousal with emotion and valence carried. What is carried is the parsed label (or, when step 1 is
  invalid, the model's own cleaned answer, e.g. "doubt" — the paper's error propagation is kept, never
  hidden) and the parsed valence (or the cleaned raw answer).
* ``independent``: the same three questions with nothing carried.
* ``open_vocabulary``: step 1 offers no labels ("Describe the emotion in one word"); the free answer is kept
  raw, its word in ``emotion_word``, and mapped to a label through the emotion lexicon (``lexicon.py``; status
  ``lexicon``, ``unmapped``, ``ambiguous`` or ``invalid``; no label probabilities); steps 2-3 carry the
  model's own word, as ``context_carry`` carries the label.
* ``integrated``: one prompt, one JSON answer with all three (no token probabilities: the answer
  position holds ``{``).

Every step of a batch is sent as one ``backend.ask`` call (one ask per image), so backends can batch
images; each image's cached prefix is released after its last step.

Per row: ``emotion``/``valence``/``arousal``, ``<step>_raw`` (generated text), ``<step>_status``
(parse status), ``<step>_prompt`` (the rendered prompt), ``p_emotion_<label>``, ``p_valence_<k>``,
``p_arousal_<k>`` (probabilities of each candidate's full token sequence at the answer position — where
the parser found the answer — renormalised over the candidates; see ``answer_probs``),
``<step>_candidate_mass`` (their mass before renormalising), ``valence_expected``/``arousal_expected``
(probability-weighted mean rating, cf. G-Eval, Liu et al. 2023; NaN when the step's answer is invalid:
its distribution is kept, flagged by ``<step>_status == "invalid"``, but it is not an answer to the
question), and ``labels_shown`` (the order the labels were listed in). Answers from a server (``openai``)
also put what it reported on the row: ``served_model``, ``system_fingerprint`` (first step that reported
one) and ``logprobs_used`` (every step came back with log-probabilities).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from PIL import Image

from emoalign.raters.vlm.backend import Answer, Ask
from emoalign.raters.vlm.parse import Parsed, parse_integrated, parse_label, parse_rating, strip_reasoning
from emoalign.raters.vlm.prompts import PromptSet, label_order

RATING_STEPS = ("valence", "arousal")


def carried_text(parsed: Parsed, raw: str, limit: int = 40) -> str:
    """What a later step is told about an earlier answer: the parsed value, else the cleaned answer."""
    if parsed.value is not None:
        v = parsed.value
        return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
    text = " ".join(strip_reasoning(raw).split())
    return text[:limit]


def _prob_fields(row: dict, step: str, answer: Answer, candidates: tuple[str, ...], parsed: Parsed) -> None:
    if answer.probs is None:
        return
    for c in candidates:
        row[f"p_{step}_{c}"] = answer.probs.get(c)
    row[f"{step}_candidate_mass"] = answer.candidate_mass
    if step in RATING_STEPS:
        row[f"{step}_expected"] = (math.nan if parsed.status == "invalid"
                                   else float(sum(float(c) * answer.probs[c] for c in candidates)))


def _record_serving(row: dict, answer: Answer) -> None:
    """What a server reported about the answer (only backends that say so: ``openai``)."""
    for key in ("served_model", "system_fingerprint"):
        if answer.info.get(key) is not None:
            row.setdefault(key, answer.info[key])
    if "logprobs_used" in answer.info:
        row["logprobs_used"] = bool(row.get("logprobs_used", True) and answer.info["logprobs_used"])


def run_strategy(backend, prompts: PromptSet, keys: Sequence[str], images: Sequence[Image.Image], *,
                 order: str = "fixed", seed: int = 0, max_new_tokens: int = 32) -> list[dict]:
    """Rate ``images`` (with stable ``keys``) by ``prompts.strategy``; one row dict per image."""
    rows = [{"image_id": k} for k in keys]
    shown = [label_order(prompts.labels, order, seed=seed, image_key=k) for k in keys]
    for row, labs in zip(rows, shown):
        row["labels_shown"] = "" if prompts.strategy == "open_vocabulary" else ",".join(labs)  # none offered
    try:
        if prompts.strategy == "integrated":
            _integrated(backend, prompts, keys, images, shown, rows, max_new_tokens)
        else:
            _three_step(backend, prompts, keys, images, shown, rows, max_new_tokens)
    finally:
        for k in keys:
            backend.release(k)
    return rows


def _ask(backend, keys, images, prompts_text, candidates, max_new_tokens,
         locate: Callable[[str], tuple[int, int] | None] | None = None) -> list[Answer]:
    asks = [Ask(image_key=k, image=im, prompt=p, candidates=candidates, max_new_tokens=max_new_tokens, locate=locate)
            for k, im, p in zip(keys, images, prompts_text)]
    answers = backend.ask(asks)
    if len(answers) != len(asks):
        raise RuntimeError(f"backend returned {len(answers)} answers for {len(asks)} asks")
    return answers


def _open_step(backend, prompts, keys, images, rows, max_new_tokens) -> list[str]:
    """Step 1 of ``open_vocabulary``: no labels offered; the free word mapped through the lexicon. Returns the
    model's own words (what steps 2 and 3 carry)."""
    lexicon = prompts.lexicon
    texts = [prompts.render("emotion") for _ in keys]
    answers = _ask(backend, keys, images, texts, (), max_new_tokens)
    carried = []
    for row, text, ans in zip(rows, texts, answers):
        r = lexicon.read(ans.text)
        row.update(emotion=r.label, emotion_word=r.word, emotion_raw=ans.text, emotion_status=r.status,
                   emotion_prompt=text)
        _record_serving(row, ans)
        carried.append(r.word if r.word else carried_text(Parsed(None, "invalid"), ans.text))
    return carried


def _three_step(backend, prompts, keys, images, shown, rows, max_new_tokens):
    carry = prompts.strategy in ("context_carry", "open_vocabulary")
    labels = tuple(prompts.labels)
    # step 1: emotion
    if prompts.strategy == "open_vocabulary":
        carried_emotion = _open_step(backend, prompts, keys, images, rows, max_new_tokens)
    else:
        carried_emotion = _labelled_step(backend, prompts, keys, images, shown, rows, max_new_tokens, labels)
    _rating_steps(backend, prompts, keys, images, shown, rows, max_new_tokens, carry, carried_emotion)


def _labelled_step(backend, prompts, keys, images, shown, rows, max_new_tokens, labels) -> list[str]:
    texts = [prompts.render("emotion", labels=labs) for labs in shown]
    answers = _ask(backend, keys, images, texts, labels, max_new_tokens, lambda t: parse_label(t, labels).span)
    carried_emotion = []
    for row, text, ans in zip(rows, texts, answers):
        p = parse_label(ans.text, labels)
        row.update(emotion=p.value, emotion_raw=ans.text, emotion_status=p.status, emotion_prompt=text)
        _prob_fields(row, "emotion", ans, labels, p)
        _record_serving(row, ans)
        carried_emotion.append(carried_text(p, ans.text))
    return carried_emotion


def _rating_steps(backend, prompts, keys, images, shown, rows, max_new_tokens, carry, carried_emotion):
    # step 2: valence
    values = prompts.rating_values("valence")
    lo, hi = prompts.scale("valence")
    texts = [prompts.render("valence", labels=labs, **({"emotion": e} if carry else {}))
             for labs, e in zip(shown, carried_emotion)]
    answers = _ask(backend, keys, images, texts, values, max_new_tokens,
                   lambda t: parse_rating(t, lo, hi, "valence").span)
    carried_valence = []
    for row, text, ans in zip(rows, texts, answers):
        p = parse_rating(ans.text, lo, hi, "valence")
        row.update(valence=p.value, valence_raw=ans.text, valence_status=p.status, valence_prompt=text)
        _prob_fields(row, "valence", ans, values, p)
        _record_serving(row, ans)
        carried_valence.append(carried_text(p, ans.text))
    # step 3: arousal
    values = prompts.rating_values("arousal")
    lo, hi = prompts.scale("arousal")
    texts = [prompts.render("arousal", labels=labs, **({"emotion": e, "valence": v} if carry else {}))
             for labs, e, v in zip(shown, carried_emotion, carried_valence)]
    answers = _ask(backend, keys, images, texts, values, max_new_tokens,
                   lambda t: parse_rating(t, lo, hi, "arousal").span)
    for row, text, ans in zip(rows, texts, answers):
        p = parse_rating(ans.text, lo, hi, "arousal")
        row.update(arousal=p.value, arousal_raw=ans.text, arousal_status=p.status, arousal_prompt=text)
        _prob_fields(row, "arousal", ans, values, p)
        _record_serving(row, ans)


def _integrated(backend, prompts, keys, images, shown, rows, max_new_tokens):
    texts = [prompts.render("all", labels=labs) for labs in shown]
    answers = _ask(backend, keys, images, texts, (), max(max_new_tokens, 48))
    scales = {d: prompts.scale(d) for d in RATING_STEPS}
    for row, text, ans in zip(rows, texts, answers):
        _record_serving(row, ans)
        parsed = parse_integrated(ans.text, tuple(prompts.labels), scales)
        for step in ("emotion",) + RATING_STEPS:
            row.update({step: parsed[step].value, f"{step}_raw": ans.text, f"{step}_status": parsed[step].status,
                        f"{step}_prompt": text})
