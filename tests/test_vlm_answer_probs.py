"""Full-sequence candidate scoring (``answer_probs``) on the real Gemma 3 and Llama 3.2 tokenizers: hand-computed
values on planted distributions ("10" written "1","0"; " a"/" an" against "angry"; negative values; labels split
into several tokens), and the ``hf`` backend against a brute-force evaluation with full forward passes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emoalign.raters.vlm.answer_probs import CandidateForms, answer_position, surface_forms, token_at
from emoalign.raters.vlm.backend import Ask
from emoalign.raters.vlm.parse import parse_label, parse_rating
from emoalign.raters.vlm.prompts import PromptSet


@pytest.fixture(scope="module")
def gemma_tok():
    from tiny_vlm import gemma3_tokenizer

    return gemma3_tokenizer()


@pytest.fixture(scope="module")
def llama_tok():
    from tiny_vlm import llama32_vision_tokenizer

    return llama32_vision_tokenizer()


def _forms(tok, candidates):
    return CandidateForms.build(candidates, lambda s: tok.encode(s, add_special_tokens=False))


def _dist(tok, probs: dict, vocab: int):
    """A full-vocabulary log-probability vector with ``probs`` on single tokens (by text or id), the rest ~0."""
    p = np.full(vocab, 1e-16)
    for key, q in probs.items():
        ids = [key] if isinstance(key, int) else tok.encode(key, add_special_tokens=False)
        assert len(ids) == 1, (key, ids)
        p[ids[0]] = q
    p /= p.sum()
    return np.log(p)


def _ids(tok, *texts):
    return tuple(tok.encode(t, add_special_tokens=False)[0] for t in texts)


def test_ten_is_two_tokens_and_one_is_not_ten(gemma_tok):
    """Gemma writes 10 as "1","0" (and " 10" as "▁","1","0"): "1" counts only when not continued by "0"."""
    t = gemma_tok
    assert t.encode("10", add_special_tokens=False) == list(_ids(t, "1", "0"))
    cands = tuple(str(k) for k in range(1, 11))
    forms = _forms(t, cands)
    V = 262_208
    space = t.convert_tokens_to_ids("▁")
    one, zero = _ids(t, "1", "0")
    dists = {(): _dist(t, {"1": 0.5, "7": 0.3, space: 0.2}, V),
             (one,): _dist(t, {"0": 0.6, "<end_of_turn>": 0.4}, V),
             (space,): _dist(t, {"1": 0.5, "9": 0.5}, V),
             (space, one): _dist(t, {"0": 0.2, "<end_of_turn>": 0.8}, V)}
    assert set(forms.contexts) == set(dists) - {()}
    probs, mass = forms.score({k: forms.gather(v) for k, v in dists.items()})
    expect = {"10": 0.5 * 0.6 + 0.2 * 0.5 * 0.2, "1": 0.5 * 0.4 + 0.2 * 0.5 * 0.8, "7": 0.3, "9": 0.2 * 0.5}
    assert mass == pytest.approx(1.0, abs=1e-9)
    for c in cands:
        assert probs[c] == pytest.approx(expect.get(c, 0.0), abs=1e-9), c
    # first-token votes would have given "1" the whole 0.5 and "10" nothing
    assert probs["10"] > probs["1"]


def test_articles_do_not_vote_for_angry(gemma_tok, llama_tok):
    labels = ("happy", "sad", "angry")
    t = gemma_tok
    forms = _forms(t, labels)
    probs, mass = forms.score({(): forms.gather(_dist(t, {" a": 0.5, " an": 0.3, " angry": 0.2}, 262_208))})
    assert mass == pytest.approx(0.2, abs=1e-9) and probs["angry"] == pytest.approx(1.0)
    # Llama splits "angry" into "ang", "ry": the label counts only as far as "ry" follows "ang"
    t = llama_tok
    assert t.encode("angry", add_special_tokens=False) == list(_ids(t, "ang", "ry"))
    forms = _forms(t, labels)
    ang = _ids(t, "ang")
    V = 128_257
    dists = {(): _dist(t, {"ang": 0.4, "happy": 0.3, " an": 0.3}, V), ang: _dist(t, {"ry": 0.25, "le": 0.75}, V)}
    dists.update({c: _dist(t, {"<|eot_id|>": 1.0}, V) for c in forms.contexts if c not in dists})
    probs, mass = forms.score({k: forms.gather(v) for k, v in dists.items()})
    assert mass == pytest.approx(0.4 * 0.25 + 0.3, abs=1e-9)
    assert probs["angry"] == pytest.approx(0.1 / 0.4) and probs["happy"] == pytest.approx(0.3 / 0.4)


def test_negative_scale(gemma_tok):
    t = gemma_tok
    cands = tuple(str(k) for k in range(-4, 5))
    assert t.encode("-4", add_special_tokens=False) == list(_ids(t, "-", "4"))
    forms = _forms(t, cands)
    V = 262_208
    minus = _ids(t, "-")
    dists = {(): _dist(t, {"-": 0.5, "4": 0.5}, V), minus: _dist(t, {"4": 0.6, "2": 0.4}, V)}
    dists.update({c: _dist(t, {"<end_of_turn>": 1.0}, V) for c in forms.contexts if c not in dists})
    probs, mass = forms.score({k: forms.gather(v) for k, v in dists.items()})
    assert mass == pytest.approx(1.0, abs=1e-9)
    assert probs["-4"] == pytest.approx(0.3) and probs["-2"] == pytest.approx(0.2) and probs["4"] == pytest.approx(0.5)


def test_three_token_label_and_ambiguous_forms(llama_tok):
    t = llama_tok
    assert len(t.encode("disgust", add_special_tokens=False)) == 3
    forms = _forms(t, ("disgust", "happy"))
    V = 128_257
    dis, g = _ids(t, "dis", "g")
    dists = {(): _dist(t, {"dis": 0.5, "happy": 0.5}, V), (dis,): _dist(t, {"g": 0.5, "like": 0.5}, V),
             (dis, g): _dist(t, {"ust": 0.8, "<|eot_id|>": 0.2}, V)}
    dists.update({c: _dist(t, {"<|eot_id|>": 1.0}, V) for c in forms.contexts if c not in dists})
    probs, mass = forms.score({k: forms.gather(v) for k, v in dists.items()})
    assert mass == pytest.approx(0.5 * 0.5 * 0.8 + 0.5)
    # a token sequence that two candidates share is ambiguous and scores for neither
    same = _forms(t, ("Happy", "happy"))
    assert same.forms == []


def test_answer_position_follows_the_parsed_span(gemma_tok):
    """The echoed option list is not the answer position; the parser's span is."""
    t = gemma_tok
    text = "happy, sad, angry, fear. Answer: fear"
    ids = t.encode(text, add_special_tokens=False)
    pieces = [t.decode(ids[:i]) for i in range(len(ids) + 1)]
    offsets = [len(p) for p in pieces]
    texts = [pieces[i + 1][offsets[i]:] for i in range(len(ids))]
    forms = _forms(t, ("happy", "sad", "angry", "fear"))
    span = parse_label(text, ("happy", "sad", "angry", "fear")).span
    pos = answer_position(ids, texts, offsets, forms, span)
    assert text[offsets[pos]:].strip().startswith("fear") and pos == token_at(offsets, span[0])
    assert answer_position(ids, texts, offsets, forms, None) == 0          # without a span: the first candidate
    assert surface_forms("Neutral") == (" Neutral", " neutral", "Neutral", "neutral")


# --- the hf backend against brute force ---------------------------------------------------------------------

def _brute_force_hf(backend, image, prompt, candidates, before):
    """The rule computed independently with transformers: the processor's inputs extended by hand, one full forward
    pass per distinct context, every surface form tokenised and chained, prefix forms made exclusive."""
    import torch

    from emoalign.raters.vlm.inputs import render_chat

    text = render_chat(backend.processor, backend.tokenizer, prompt, backend.image_placement)
    images = [[image]] if backend.model_type == "mllama" else [image]
    base = backend.processor(text=[text], images=images, return_tensors="pt", add_special_tokens=False)
    memo = {}

    def logprobs(extra):
        extra = tuple(before) + tuple(extra)
        if extra not in memo:
            kw = dict(base)
            add = torch.tensor([list(extra)], dtype=torch.long)
            kw["input_ids"] = torch.cat([base["input_ids"], add], 1)
            kw["attention_mask"] = torch.ones_like(kw["input_ids"])
            if "token_type_ids" in base:
                kw["token_type_ids"] = torch.cat([base["token_type_ids"], torch.zeros_like(add)], 1)
            if "cross_attention_mask" in base:
                cam = base["cross_attention_mask"]
                kw["cross_attention_mask"] = torch.cat([cam] + [cam[:, -1:]] * add.shape[1], 1)
            with torch.no_grad():
                memo[extra] = torch.log_softmax(backend.model(**kw).logits[0, -1].double(), -1).numpy()
        return memo[extra]

    seqs = {}
    for j, c in enumerate(candidates):
        for f in surface_forms(c):
            seqs.setdefault(tuple(backend.tokenizer.encode(f, add_special_tokens=False)), set()).add(j)
    seqs = {s: js.pop() for s, js in seqs.items() if len(js) == 1}
    raw = np.zeros(len(candidates))
    for s, j in seqs.items():
        p = math.exp(sum(logprobs(s[:k])[s[k]] for k in range(len(s))))
        nxt = {o[len(s)] for o in seqs if len(o) > len(s) and o[:len(s)] == s}
        if nxt:
            p *= 1.0 - sum(math.exp(logprobs(s)[t]) for t in nxt)
        raw[j] += p
    return raw / raw.sum(), raw.sum()


@pytest.mark.parametrize("arch", ["gemma3", pytest.param("mllama", marks=pytest.mark.slow)])
@pytest.mark.slow  # a full forward pass per candidate token
def test_hf_probabilities_equal_brute_force(arch, tiny_gemma3_dir, tiny_mllama_dir, tiny_images):
    """Labels (Llama splits angry/fear/disgust) and a 1-10 scale (Gemma writes 10 as "1","0"), on the fast and the
    reference paths, including contexts off the greedy path."""
    from emoalign.raters.vlm.hf_backend import HFBackend

    model = tiny_gemma3_dir if arch == "gemma3" else tiny_mllama_dir
    ps = PromptSet(scales={"valence": (1, 10), "arousal": (1, 10)})
    labels = tuple(ps.labels)
    values = ps.rating_values("valence")
    cases = [(ps.render("emotion"), labels, lambda t: parse_label(t, labels).span),
             (ps.render("valence", emotion="sad"), values, lambda t: parse_rating(t, 1, 10).span)]
    for fast in (True, False):
        backend = HFBackend(str(model), fast=fast)
        for prompt, cands, locate in cases:
            ans = backend.ask([Ask("k", tiny_images[2], prompt, cands, 4, locate=locate)])[0]
            backend.release("k")
            at = ans.info["answer_position"] or 0
            probs, mass = _brute_force_hf(backend, tiny_images[2], prompt, cands, ans.info["token_ids"][:at])
            assert ans.info["probes"] >= 1
            assert ans.candidate_mass == pytest.approx(mass, rel=1e-4)          # float32, cached vs not
            np.testing.assert_allclose([ans.probs[c] for c in cands], probs, atol=1e-5)
