"""transformers backend on tiny random Gemma3 and Mllama around the real tokenizers: the three-step flow,
carried context, parse statuses, probabilities, the fast path (image-prefix KV cache, batched steps) against
the reference path (one greedy generate per step, batch 1), batch invariance, image placement, preprocessing
once per image, options and provenance."""

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest

from emoalign.errors import EmoalignError
from emoalign.raters.runs import StimulusItem
from emoalign.raters.vlm.backend import Ask
from emoalign.raters.vlm.hf_backend import HFBackend
from emoalign.raters.vlm.prompts import PromptSet, label_order
from emoalign.raters.vlm.rater import VLMRater
from emoalign.raters.vlm.strategies import run_strategy

LABELS = ("happy", "sad", "angry", "fear", "disgust", "neutral")
DIGITS = tuple(str(k) for k in range(1, 10))
PROB_COLS = [f"p_emotion_{lab}" for lab in LABELS] + [f"p_valence_{k}" for k in DIGITS] + [f"p_arousal_{k}" for k in DIGITS]
STEPS = ("emotion", "valence", "arousal")


@pytest.fixture(scope="module")
def images(tiny_images):
    return tiny_images[:4]


@pytest.fixture(scope="module", params=["gemma3", pytest.param("mllama", marks=pytest.mark.slow)])  # mllama: 4 tiles of 560 px
def arch(request):
    return request.param


@pytest.fixture(scope="module")
def model_dir(arch, tiny_gemma3_dir, tiny_mllama_dir):
    return tiny_gemma3_dir if arch == "gemma3" else tiny_mllama_dir


_LOADED: dict = {}


def _hf(model_dir, **kw) -> HFBackend:
    """One backend per (model, options) for the whole module (loading the 262k-token tokenizer takes seconds)."""
    key = (str(model_dir), tuple(sorted(kw.items())))
    if key not in _LOADED:
        _LOADED[key] = HFBackend(str(model_dir), **kw)
    return _LOADED[key]


@pytest.fixture(scope="module")
def backends(model_dir):
    return {"reference": _hf(model_dir, fast=False), "fast": _hf(model_dir, fast=True)}


def _rows(backend, images, strategy="context_carry", order="fixed", keys=None, max_new_tokens=8):
    keys = keys or [f"img{i}" for i in range(len(images))]
    return pd.DataFrame(run_strategy(backend, PromptSet(strategy=strategy), keys, images, order=order,
                                     max_new_tokens=max_new_tokens))


def _one_by_one(backend, images):
    return pd.concat([_rows(backend, [im], keys=[f"img{i}"]) for i, im in enumerate(images)], ignore_index=True)


def _assert_same_answers(a, b, tol=1e-5):
    for step in STEPS:
        assert list(a[f"{step}_raw"]) == list(b[f"{step}_raw"]), step
        assert list(a[f"{step}_prompt"]) == list(b[f"{step}_prompt"]), step
    cols = [c for c in PROB_COLS if c in a and c in b]
    diff = np.nanmax(np.abs(a[cols].to_numpy(float) - b[cols].to_numpy(float)))
    assert diff < tol, diff


def test_fast_path_equals_reference(backends, images):
    """Same greedy answers at every step and probabilities within 1e-5, fast (batch 4) vs reference."""
    ref = _rows(backends["reference"], images)
    fast = _rows(backends["fast"], images)
    _assert_same_answers(ref, fast)
    assert backends["fast"].last_batch_size >= 2


def test_token_ids_identical_per_ask(backends, images):
    """Batched fast asks whose prompts have different lengths give the reference's token ids and probabilities."""
    carried = ["sad", "very sad indeed, or fear", "x", "neutral or maybe happy, hard to say"]
    prompts = [PromptSet().render("valence", emotion=c) for c in carried]
    asks = [Ask(f"k{i}", im, p, DIGITS, max_new_tokens=4) for i, (im, p) in enumerate(zip(images, prompts))]
    ref = backends["reference"].ask(asks)
    fast = backends["fast"].ask(asks)
    for a in asks:
        backends["fast"].release(a.image_key)
    assert len({len(p) for p in prompts}) == len(prompts)
    assert [a.info["token_ids"] for a in ref] == [a.info["token_ids"] for a in fast]
    assert all(a.info["path"] == "fast" for a in fast)
    for r, f in zip(ref, fast):
        assert max(abs(r.probs[k] - f.probs[k]) for k in DIGITS) < 1e-5


@pytest.mark.parametrize("which", ["gemma3", pytest.param("mllama", marks=pytest.mark.slow), pytest.param("gemma3-sliding", marks=pytest.mark.slow)])
def test_batch_n_equals_batch_1(which, tiny_gemma3_dir, tiny_mllama_dir, tiny_gemma3_sliding_dir):
    """The invariant that allows a default batch > 1: four images in one batch give exactly the answers and
    (to 1e-5) the probabilities of four batch-1 runs, on both architectures and on a Gemma3 whose sliding window
    is shorter than the prompt. Padding rows between the image prefix and a step (the old fast path) moved the
    step to other cache slots, and Gemma3's local-attention layers pick their window by slot: 3 of 4 images
    then differed by up to 0.011."""
    from tiny_vlm import tiny_face_images

    model = {"gemma3": tiny_gemma3_dir, "mllama": tiny_mllama_dir, "gemma3-sliding": tiny_gemma3_sliding_dir}[which]
    images = tiny_face_images(4, seed=3)
    backend = _hf(model, fast=True)
    carried = ["sad", "very sad indeed, or fear", "x", "neutral or maybe happy, hard to say"]
    prompts = [PromptSet().render("arousal", emotion=c, valence=v) for c, v in zip(carried, "3 5 7 x".split())]
    asks = [Ask(f"k{i}", im, p, DIGITS, max_new_tokens=3) for i, (im, p) in enumerate(zip(images, prompts))]
    many = backend.ask(asks)
    for a in asks:
        backend.release(a.image_key)
    one = [backend.ask([a])[0] for a in asks]
    for a in asks:
        backend.release(a.image_key)
    assert [a.info["token_ids"] for a in many] == [a.info["token_ids"] for a in one]
    for m, o in zip(many, one):
        assert max(abs(m.probs[k] - o.probs[k]) for k in DIGITS) < 1e-5
    # and through the whole strategy
    _assert_same_answers(_one_by_one(backend, images), _rows(backend, images))


def test_three_step_flow_carries_context_and_probabilities_sum_to_one(backends, images):
    df = _rows(backends["fast"], images)
    for _, r in df.iterrows():
        carried = r["emotion"] if r["emotion"] is not None and not pd.isna(r["emotion"]) else None
        assert r["valence_prompt"].startswith("You identified this face as ")
        if carried:
            assert f"as {carried}." in r["valence_prompt"]
            assert f"as {carried} with pleasantness" in r["arousal_prompt"]
        if r["valence"] is not None and not pd.isna(r["valence"]):
            v = int(r["valence"]) if float(r["valence"]).is_integer() else r["valence"]
            assert f"with pleasantness {v} out of 9" in r["arousal_prompt"]
        for step, cands in (("emotion", LABELS), ("valence", DIGITS), ("arousal", DIGITS)):
            assert math.isclose(sum(r[f"p_{step}_{c}"] for c in cands), 1.0, abs_tol=1e-9)
            assert 0 < r[f"{step}_candidate_mass"] <= 1 + 1e-9
        for step in ("valence", "arousal"):
            if r[f"{step}_status"] == "invalid":
                assert math.isnan(r[f"{step}_expected"])           # not an answer to the question
            else:
                expected = sum(int(k) * r[f"p_{step}_{k}"] for k in DIGITS)
                assert math.isclose(r[f"{step}_expected"], expected, rel_tol=1e-12)
                assert 1 <= r[f"{step}_expected"] <= 9
    statuses = set(df[[f"{s}_status" for s in STEPS]].to_numpy().ravel())
    assert statuses <= {"json", "fence", "regex", "fuzzy", "clamped", "invalid"}


def test_invalid_answer_keeps_distribution_but_expected_is_nan(backends, tiny_images):
    """Rows whose rating step is invalid (the tiny models sometimes answer a label to a rating question) keep
    their probabilities but have no expected rating."""
    df = _rows(backends["fast"], tiny_images)
    bad = df[(df["valence_status"] == "invalid") | (df["arousal_status"] == "invalid")]
    for _, r in bad.iterrows():
        for step in ("valence", "arousal"):
            if r[f"{step}_status"] == "invalid":
                assert math.isnan(r[f"{step}_expected"])
                assert math.isclose(sum(r[f"p_{step}_{k}"] for k in DIGITS), 1.0, abs_tol=1e-9)


def test_image_changes_the_answer_distribution(backends, images):
    df = _rows(backends["fast"], images[:2])
    diff = max(abs(df.loc[0, c] - df.loc[1, c]) for c in PROB_COLS)
    assert diff > 1e-3


def test_independent_carries_nothing_and_integrated_parses(backends, images):
    ind = _rows(backends["fast"], images[:2], strategy="independent")
    assert all(p.startswith("How pleasant") for p in ind["valence_prompt"])
    assert all(p.startswith("How intense") for p in ind["arousal_prompt"])
    integ = _rows(backends["fast"], images[:2], strategy="integrated")
    assert set(integ["emotion_status"]) <= {"json", "fence", "regex", "fuzzy", "invalid"}
    assert (integ["emotion_raw"] == integ["valence_raw"]).all()


def test_label_orders_in_prompt(backends, images):
    rev = _rows(backends["fast"], images[:2], order="reversed")
    assert "Choose one from: neutral, disgust, fear, angry, sad, happy." in rev.loc[0, "emotion_prompt"]
    sh = _rows(backends["fast"], images[:3], order="shuffle")
    assert all(sorted(s.split(",")) == sorted(LABELS) for s in sh["labels_shown"])
    for key, shown, prompt in zip(sh["image_id"], sh["labels_shown"], sh["emotion_prompt"]):
        assert tuple(shown.split(",")) == label_order(LABELS, "shuffle", seed=0, image_key=key)  # seeded per image
        assert f"Choose one from: {shown.replace(',', ', ')}." in prompt


def test_rater_error_row_for_corrupt_image(tmp_path, backends, images):
    good = tmp_path / "good.png"
    images[0].save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    rater = VLMRater("tiny", backends["fast"], batch_size=3, max_new_tokens=8)
    rows = rater.rate([StimulusItem("a", good), StimulusItem("b", bad), StimulusItem("c", tmp_path / "missing.png")])
    assert [r["image_id"] for r in rows] == ["a", "b", "c"]
    assert "error" not in rows[0] and rows[0]["emotion_status"] in {"json", "regex", "fuzzy", "invalid"}
    assert "bad.png" in rows[1]["error"] and "missing.png" in rows[2]["error"]
    cfg = rater.config()
    assert cfg["backend"] == "hf" and cfg["template_hash"] == PromptSet().hash and cfg["dtype"] == "float32"
    assert cfg["image_placement"] == "before" and cfg["answer_probs"] == "sequence"


def test_same_key_other_image_is_not_served_from_a_stale_prefix(backends, images):
    prompt = PromptSet().render("valence", emotion="sad")
    fast, ref = backends["fast"], backends["reference"]
    first = fast.ask([Ask("same", images[0], prompt, DIGITS, max_new_tokens=2)])[0]
    second = fast.ask([Ask("same", images[1], prompt, DIGITS, max_new_tokens=2)])[0]   # no release in between
    fast.release("same")
    expect = ref.ask([Ask("same", images[1], prompt, DIGITS, max_new_tokens=2)])[0]
    assert max(abs(second.probs[k] - expect.probs[k]) for k in DIGITS) < 1e-5
    assert max(abs(second.probs[k] - first.probs[k]) for k in DIGITS) > 1e-4


def test_image_preprocessed_once_per_image(backends):
    """The resize/normalise of an image runs once for its three steps (it ran once per step)."""
    from tiny_vlm import tiny_face_images

    from emoalign.raters.vlm.inputs import image_digest

    for path, n in (("fast", 3), ("reference", 2)):
        backend = backends[path]
        backend.image_memo.calls = 0
        images = tiny_face_images(n, seed=50 + n)
        _rows(backend, images)
        assert backend.image_memo.calls == n, path
        digests = {image_digest(im) for im in images}
        assert not any(digests & set(key[0]) for key in backend.image_memo._cache)   # released with the images


@pytest.mark.slow  # every placement through the model
def test_image_placement_option(model_dir, arch, images):
    """``model`` (default) puts the image first for both architectures; ``after`` puts it after the text, as
    mlx-vlm's own prompt helper does; the placement is in provenance; both give the reference's answers."""
    default = _hf(model_dir, fast=True)
    after = _hf(model_dir, fast=True, image_placement="after")
    ask = Ask("k", images[0], PromptSet().render("emotion"), LABELS, max_new_tokens=4)
    image_tok = {"gemma3": 255999, "mllama": 128256}[arch]
    text_tok = default.tokenizer.encode("What", add_special_tokens=False)[0]
    ids_before, ids_after = default.prompt_ids(ask), after.prompt_ids(ask)
    assert ids_before.index(image_tok) < ids_before.index(text_tok)
    assert ids_after.index(image_tok) > ids_after.index(text_tok)
    assert default.provenance()["image_placement"] == "before" and after.provenance()["image_placement"] == "after"
    ref_after = _hf(model_dir, fast=False, image_placement="after")
    _assert_same_answers(_rows(ref_after, images[:2]), _rows(after, images[:2]))
    with pytest.raises(EmoalignError, match="image placement"):
        HFBackend(str(model_dir), image_placement="middle")


def test_unknown_options_are_rejected(tiny_gemma3_dir):
    with pytest.raises(EmoalignError, match="unknown option.*temprature"):
        HFBackend(str(tiny_gemma3_dir), temprature=0)


def test_local_revision_is_a_content_digest(tmp_path, tiny_gemma3_dir):
    """Two different weight files of equal size give two revisions (before: names and sizes only, one revision,
    so a resume could mix models); identical contents give one."""
    from safetensors.numpy import load_file, save_file

    from emoalign.raters.vlm.revision import local_revision

    a = tmp_path / "a"
    b = tmp_path / "b"
    shutil.copytree(tiny_gemma3_dir, a)
    shutil.copytree(tiny_gemma3_dir, b)
    w = b / "model.safetensors"
    tensors = load_file(w)
    key = next(k for k in sorted(tensors) if "lm_head" in k)
    tensors[key] = tensors[key] * np.float32(1.5)
    save_file(tensors, w, metadata={"format": "pt"})
    assert w.stat().st_size == (a / "model.safetensors").stat().st_size
    rev_a, rev_b = local_revision(a), local_revision(b)
    assert rev_a.startswith("local-") and rev_b.startswith("local-") and rev_a != rev_b
    assert _hf(tiny_gemma3_dir, fast=True).provenance()["model_revision"] == rev_a == local_revision(tiny_gemma3_dir)


def test_hub_revision_is_the_resolved_commit(tmp_path, tiny_gemma3_dir, monkeypatch):
    """A hub id asked for at ``main`` records the commit the branch resolved to (offline, from a hub cache)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--emoalign-test--tiny-gemma3"
    shutil.copytree(tiny_gemma3_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backend = HFBackend("emoalign-test/tiny-gemma3", revision="main", cache_dir=str(tmp_path / "hub"))
    prov = backend.provenance()
    assert prov["model_revision"] == commit and prov["requested_revision"] == "main"
    assert json.dumps(prov)


def test_exact_prompt_ids_on_the_real_tokenizers(tiny_gemma3_dir, tiny_mllama_dir, tiny_images):
    """The emotion step's prompt, token by token, as the released checkpoints see it: one BOS, the chat turn of
    the real template, the image (Gemma3: 256 soft tokens between <start_of_image> and <end_of_image>, framed by
    blank lines; LLaMA-3.2-Vision: one <|image|>) before the text, the text, and the generation prompt."""
    ps = PromptSet()
    prompts = [ps.render("emotion"), ps.render("valence", emotion="sad"), ps.render("arousal", emotion="sad", valence=3)]
    prompt = prompts[0]
    for model_dir, head, tail in (
            (tiny_gemma3_dir, [2, 105, 2364, 109, 255999] + [262144] * 256 + [256000, 108], [106, 107, 105, 4368, 107]),
            (tiny_mllama_dir, [128000, 128006, 882, 128007, 271, 128256], [128009, 128006, 78191, 128007, 271])):
        backend = _hf(model_dir, fast=True)
        for p in prompts:                      # every step: the same turn around its own text
            body = backend.tokenizer.encode(p, add_special_tokens=False)
            assert backend.prompt_ids(Ask("k", tiny_images[0], p)) == head + body + tail
    # "What is the facial expression in this image? ..." in Gemma 3's own vocabulary
    assert _hf(tiny_gemma3_dir, fast=True).tokenizer.encode(prompt, add_special_tokens=False)[:5] == [3689, 563, 506, 25944, 5619]


_OFF_FORMAT = ("Write 5 then 7 then 9.", "List: a, b, c", "Describe this face in detail.")


@pytest.mark.parametrize("which", ["gemma3", "mllama", "gemma3-sliding"])
def test_verified_draft_is_greedy_token_for_token(which, tiny_gemma3_dir, tiny_mllama_dir, tiny_gemma3_sliding_dir):
    """Answers drafted in the expected format and verified in one pass (``draft``) are the reference path's greedy
    tokens, one by one, with its probabilities: for answers that follow the draft to end of turn, and for answers
    that leave it ("777777" to a rating: the greedy token after "7" is accepted, then greedy decoding goes on),
    batched; on both architectures and on a Gemma3 whose sliding window is shorter than the prompt. (The tiny
    LLaMA-3.2-Vision ends its turn after at most one token on every prompt tried, so only the Gemma3 models
    exercise the continuation after a rejected draft.)"""
    from tiny_vlm import tiny_face_images

    model = {"gemma3": tiny_gemma3_dir, "mllama": tiny_mllama_dir, "gemma3-sliding": tiny_gemma3_sliding_dir}[which]
    fast, ref = _hf(model, fast=True), _hf(model, fast=False)
    images = tiny_face_images(3, seed=7)
    asks = [Ask(f"k{i}", im, PromptSet().render("emotion"), LABELS, max_new_tokens=6) for i, im in enumerate(images)]
    asks += [Ask(f"k{i}", im, p, cands, max_new_tokens=6) for i, im in enumerate(images)
             for p in _OFF_FORMAT for cands in (DIGITS, LABELS)]
    got = fast.ask(asks)
    for a in asks:
        fast.release(a.image_key)
    want = [ref.ask([a])[0] for a in asks]
    assert [g.info["token_ids"] for g in got] == [w.info["token_ids"] for w in want]
    for g, w in zip(got, want):
        assert g.text == w.text
        if w.probs is not None:
            assert max(abs(g.probs[k] - w.probs[k]) for k in w.probs) < 1e-5
            assert abs(g.candidate_mass - w.candidate_mass) < 1e-5
        else:
            assert g.probs is None
    drafted = [g for g in got if g.info["draft_proposed"]]
    assert sum(g.info["draft_accepted"] == g.info["draft_proposed"] for g in drafted) >= 3   # the emotion steps
    left = [g for g in drafted if g.info["draft_accepted"] < g.info["draft_proposed"]]
    assert which == "mllama" or any(g.info["new_tokens"] > 2 and g.info["token_ids"][-1] not in fast.eos_ids for g in left), \
        "no answer left the draft: the continuation after a rejected draft went untested"


def test_a_step_takes_two_passes_after_the_image(tiny_gemma3_dir, tiny_mllama_dir, images):
    """A format answer (a label, then end of turn) costs the image prefix, the step's prompt and ONE more pass
    that both verifies the drafted end of turn and scores the candidate forms off the greedy path (Gemma 3
    writes " Disgust" as two tokens, LLaMA 3.2 "fear" as "f", "ear"); without the draft, greedy decoding and the
    scoring probes take passes of their own."""
    for model_dir in (tiny_gemma3_dir, tiny_mllama_dir):
        backend = _hf(model_dir, fast=True)
        calls = []
        forward = backend.model.forward

        def counted(*a, **kw):
            calls.append(kw["input_ids"].shape)
            return forward(*a, **kw)

        backend.model.forward = counted
        try:
            ask = Ask("one", images[0], PromptSet().render("emotion"), LABELS, max_new_tokens=8)
            answer = backend.ask([ask])[0]
            backend.release("one")
            assert answer.info["draft_accepted"] == answer.info["draft_proposed"] == 1
            assert answer.info["token_ids"][-1] in backend.eos_ids and answer.probs is not None
            assert len(calls) == 3, calls                        # image prefix, step prompt, verify + scoring
            assert backend.forms(LABELS).contexts                 # there were contexts off the greedy path to score
            calls.clear()
            backend.draft = False
            plain = backend.ask([ask])[0]
            backend.release("one")
            assert plain.info["token_ids"] == answer.info["token_ids"]
            assert len(calls) > 3, calls
        finally:
            backend.draft = True
            del backend.model.forward
