"""The ``mlx`` backend (mlx-vlm on CPU) on tiny random-weight Gemma3 and Mllama checkpoints around the real
tokenizers: the same prompt token ids as the ``hf`` backend, greedy answers, full-sequence candidate
probabilities against a brute-force computation, agreement with transformers, prefix reuse, cache isolation."""

from __future__ import annotations

import os

import numpy as np
import pytest

pytest.importorskip("mlx_vlm")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tiny_vlm import LABELS, tiny_face_images  # noqa: E402  (tests/fixtures is on sys.path via conftest)
from tiny_vlm_mlx import to_mlx  # noqa: E402

from emoalign.errors import EmoalignError  # noqa: E402
from emoalign.raters.vlm.answer_probs import surface_forms  # noqa: E402
from emoalign.raters.vlm.backend import Ask  # noqa: E402
from emoalign.raters.vlm.hf_backend import HFBackend  # noqa: E402
from emoalign.raters.vlm.mlx_backend import MLXBackend  # noqa: E402
from emoalign.raters.vlm.parse import parse_label, parse_rating  # noqa: E402
from emoalign.raters.vlm.prompts import PromptSet  # noqa: E402

DIGITS = tuple(str(i) for i in range(1, 10))
Q_LABEL = ("What is the facial expression in this image? Choose one from: happy, sad, angry, fear, disgust, "
           "neutral. Answer with a single word only.")
Q_VALENCE = ("You identified this face as {e}. How pleasant is this facial expression? Rate from 1 to 9 where 1 is "
             "very unpleasant and 9 is very pleasant. Answer with a single number only.")
Q_AROUSAL = ("You identified this face as {e} with pleasantness {v} out of 9. How intense or activated is the "
             "emotion in this face? Rate from 1 to 9. Answer with a single number only.")


@pytest.fixture(scope="module")
def mlx_dirs(tiny_gemma3_dir, tiny_mllama_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("mlx_models")
    return {"gemma3": (tiny_gemma3_dir, to_mlx(tiny_gemma3_dir, root / "gemma3")),
            "mllama": (tiny_mllama_dir, to_mlx(tiny_mllama_dir, root / "mllama"))}


_LOADED: dict = {}


def _load(cls, path, **kw):
    """One backend per (class, model, options) for the module (the 262k-token tokenizer loads in seconds)."""
    key = (cls.__name__, str(path), tuple(sorted(kw.items())))
    if key not in _LOADED:
        _LOADED[key] = cls(str(path), **kw)
    return _LOADED[key]


def _brute_force(be, image, prompt, candidates, before=()):
    """The sequence rule of ``answer_probs`` computed independently: every surface form tokenised, each
    conditional from a full forward pass over prompt + ``before`` + the form's earlier tokens (no cache),
    a form that begins a longer form counted only with the next token not continuing into it."""
    base = be.prepare(image, prompt)
    import mlx.core as mx

    memo = {}

    def logprobs(extra):
        if tuple(extra) not in memo:
            memo[tuple(extra)] = _logprobs(extra)
        return memo[tuple(extra)]

    def _logprobs(extra):
        kw = dict(base)
        ids = list(before) + list(extra)
        if ids:
            kw["input_ids"] = mx.concatenate([kw["input_ids"], mx.array([ids], dtype=kw["input_ids"].dtype)], axis=1)
            kw["mask"] = mx.ones(kw["input_ids"].shape, dtype=kw["mask"].dtype) if kw.get("mask") is not None else None
            if kw.get("cross_attention_mask") is not None:
                cam = kw["cross_attention_mask"]
                kw["cross_attention_mask"] = mx.concatenate([cam] + [cam[:, -1:]] * len(ids), axis=1)
        x = be.last_token_logits(None, inputs=kw).astype(np.float64)
        return x - (x.max() + np.log(np.exp(x - x.max()).sum()))

    seqs = {}
    for j, c in enumerate(candidates):
        for f in surface_forms(c):
            seqs.setdefault(tuple(be.tokenizer.encode(f, add_special_tokens=False)), set()).add(j)
    seqs = {s: js.pop() for s, js in seqs.items() if len(js) == 1}
    raw = np.zeros(len(candidates))
    for s, j in seqs.items():
        p = float(np.exp(sum(logprobs(s[:k])[s[k]] for k in range(len(s)))))
        nxt = {o[len(s)] for o in seqs if len(o) > len(s) and o[:len(s)] == s}
        if nxt:
            lp = logprobs(s)
            p *= 1.0 - sum(float(np.exp(lp[t])) for t in nxt)
        raw[j] += p
    return dict(zip(candidates, raw / raw.sum())), float(raw.sum())


@pytest.fixture(scope="module")
def images():
    return tiny_face_images(4, seed=3)


def _three_steps(backend, key, image):
    """The paper's context-carry flow: label, then valence with the label, then arousal with both."""
    a1 = backend.ask([Ask(key, image, Q_LABEL, LABELS, 6)])[0]
    e = (a1.text.strip().split() or ["neutral"])[0]
    a2 = backend.ask([Ask(key, image, Q_VALENCE.format(e=e), DIGITS, 4)])[0]
    v = (a2.text.strip()[:1] or "5")
    a3 = backend.ask([Ask(key, image, Q_AROUSAL.format(e=e, v=v), DIGITS, 4)])[0]
    return [a1, a2, a3]


def _softmax(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max())
    return e / e.sum()


@pytest.mark.parametrize("arch", ["gemma3", pytest.param("mllama", marks=pytest.mark.slow)])
def test_greedy_answer_and_candidate_probabilities(arch, mlx_dirs, images):
    """The first greedy token is the argmax of an independent forward pass, and the candidate probabilities
    equal a brute-force evaluation of the full-sequence rule (multi-token labels such as Llama's "ang"+"ry",
    digits written after a space token), for the greedy path and for contexts off it."""
    be = _load(MLXBackend, mlx_dirs[arch][1], prefix_cache=False)
    img = images[0]
    ans = be.ask([Ask("img0", img, Q_LABEL, LABELS, 5, locate=lambda t: parse_label(t, LABELS).span)])[0]
    logits = be.last_token_logits(img, Q_LABEL)
    assert ans.info["tokens"][0] == int(np.argmax(logits))
    assert len(ans.info["tokens"]) <= 5 and ans.info["probes"] >= 1
    assert set(ans.probs) == set(LABELS) and sum(ans.probs.values()) == pytest.approx(1.0, abs=1e-9)
    at = ans.info["answer_position"] or 0
    probs, mass = _brute_force(be, img, Q_LABEL, LABELS, before=ans.info["tokens"][:at])
    assert ans.candidate_mass == pytest.approx(mass, rel=2e-3)            # float32 logits, cached vs not
    np.testing.assert_allclose([ans.probs[c] for c in LABELS], [probs[c] for c in LABELS], atol=2e-4)
    q = Q_VALENCE.format(e="happy")
    r = be.ask([Ask("img0", img, q, DIGITS, 3, locate=lambda t: parse_rating(t, 1, 9).span)])[0]
    at = r.info["answer_position"] or 0
    probs, mass = _brute_force(be, img, q, DIGITS, before=r.info["tokens"][:at])
    assert r.candidate_mass == pytest.approx(mass, rel=2e-3)
    np.testing.assert_allclose([r.probs[c] for c in DIGITS], [probs[c] for c in DIGITS], atol=2e-4)


@pytest.mark.slow  # a converted sliding-window model
def test_scoring_when_the_sliding_window_cache_cannot_be_rolled_back(tiny_gemma3_sliding_dir, tmp_path, images):
    """A Gemma3 whose 128-token window is shorter than the prompt: mlx-vlm's rotating cache has wrapped, so
    contexts off the greedy path are scored by full forward passes; the result still equals brute force."""
    be = MLXBackend(str(to_mlx(tiny_gemma3_sliding_dir, tmp_path / "sliding")), prefix_cache=False)
    q = Q_VALENCE.format(e="sad")
    r = be.ask([Ask("img0", images[1], q, DIGITS, 3, locate=lambda t: parse_rating(t, 1, 9).span)])[0]
    assert r.info["probes"] >= 1
    at = r.info["answer_position"] or 0
    probs, mass = _brute_force(be, images[1], q, DIGITS, before=r.info["tokens"][:at])
    assert r.candidate_mass == pytest.approx(mass, rel=2e-3)
    np.testing.assert_allclose([r.probs[c] for c in DIGITS], [probs[c] for c in DIGITS], atol=2e-4)


@pytest.mark.parametrize("arch", ["gemma3", pytest.param("mllama", marks=pytest.mark.slow)])
@pytest.mark.parametrize("placement", ["model", "after"])
def test_prompt_ids_identical_to_hf(arch, placement, mlx_dirs, images):
    """Every step's prompt reaches mlx-vlm as exactly the token ids the transformers backend sends: one BOS
    (mlx-vlm 0.7 added a second one for both architectures), the same image placement."""
    extra = {"image_placement": "after"} if placement == "after" else {}
    hf = _load(HFBackend, mlx_dirs[arch][0], **extra)
    be = _load(MLXBackend, mlx_dirs[arch][1], prefix_cache=False, **extra)
    ps = PromptSet()
    prompts = [ps.render("emotion"), ps.render("valence", emotion="sad"),
               ps.render("arousal", emotion="doubt, maybe", valence=7)]
    bos = hf.tokenizer.bos_token_id
    for p in prompts:
        ask = Ask("k", images[0], p)
        ids = be.prompt_ids(ask)
        assert ids == hf.prompt_ids(ask)
        assert ids[0] == bos and ids.count(bos) == 1
    assert be.provenance()["image_placement"] == hf.provenance()["image_placement"] == \
        ("after" if placement == "after" else "before")


def test_hf_backend_unaffected_by_mlx_vlm_processor_patch(mlx_dirs):
    """mlx-vlm replaces ``AutoProcessor.from_pretrained`` for gemma3/mllama process-wide; the hf backend still
    gets transformers' processor (with the chat template)."""
    import mlx_vlm.models.gemma3.processing_gemma3  # noqa: F401  (installs the patch)

    hf = _load(HFBackend, mlx_dirs["gemma3"][0])
    assert type(hf.processor).__module__.startswith("transformers.")


@pytest.mark.parametrize("arch", ["gemma3", pytest.param("mllama", marks=pytest.mark.slow)])
def test_logits_agree_with_transformers(arch, mlx_dirs, images):
    """Same checkpoint, same token ids and pixels: mlx-vlm and transformers next-token logits agree."""
    import torch
    import transformers

    hf_dir, mlx_dir = mlx_dirs[arch]
    be = _load(MLXBackend, mlx_dir, prefix_cache=False)
    hf = _load(HFBackend, hf_dir)                      # transformers' own processor and model
    proc_cls = {"gemma3": transformers.Gemma3Processor, "mllama": transformers.MllamaProcessor}[arch]
    proc, model = hf.processor, hf.model
    assert type(proc) is proc_cls
    for img in images[:2]:
        text = be.format_prompt(Q_LABEL)
        pt = proc(text=[text], images=[img], return_tensors="pt", add_special_tokens=False)
        ours = be.prepare(img, Q_LABEL)
        # the backend's own preprocessing equals transformers' (prompt tokens and pixels)
        assert np.array_equal(pt["input_ids"].numpy(), np.array(ours["input_ids"]))
        np.testing.assert_allclose(pt["pixel_values"].numpy(), np.array(ours["pixel_values"]), atol=1e-6)
        # Gemma3: no token_type_ids (mlx-vlm has no bidirectional image attention); no padding mask
        kw = {k: v for k, v in pt.items() if k not in ("attention_mask", "token_type_ids")}
        with torch.no_grad():
            ref = model(**kw).logits[0, -1].double().numpy()
        got = be.last_token_logits(img, Q_LABEL).astype(np.float64)
        assert np.abs(ref).max() > 1.0                          # not a degenerate all-zero model
        np.testing.assert_allclose(got, ref, atol=1e-4)
        assert int(np.argmax(got)) == int(np.argmax(ref))
        # and generation (prefill through mlx-vlm's generate_step) starts with that argmax
        gen = be.ask([Ask("x", img, Q_LABEL, (), 1)])[0]
        assert gen.info["tokens"][0] == int(np.argmax(ref))


@pytest.mark.parametrize("arch", ["gemma3", pytest.param("mllama", marks=pytest.mark.slow)])
def test_prefix_reuse_equals_no_reuse(arch, mlx_dirs, images):
    fast = _load(MLXBackend, mlx_dirs[arch][1], prefix_cache=True)
    ref = _load(MLXBackend, mlx_dirs[arch][1], prefix_cache=False)
    reused = 0
    for k, img in enumerate(images[:2]):
        a = _three_steps(fast, f"img{k}", img)
        b = _three_steps(ref, f"img{k}", img)
        fast.release(f"img{k}")
        for x, y in zip(a, b):
            assert x.text == y.text and x.info["tokens"] == y.info["tokens"]
            assert x.probs.keys() == y.probs.keys()
            np.testing.assert_allclose([x.probs[c] for c in x.probs], [y.probs[c] for c in y.probs], atol=1e-5)
            assert y.info["cached_tokens"] == 0
        assert a[0].info["cached_tokens"] == 0              # first step of an image: nothing to reuse
        reused += sum(x.info["cached_tokens"] > 0 for x in a[1:])
    assert reused == 4                                      # steps 2 and 3 of every image reused the prefix


@pytest.mark.parametrize("arch", ["gemma3", pytest.param("mllama", marks=pytest.mark.slow)])
def test_images_never_share_a_cache(arch, mlx_dirs, images):
    """Image placeholder tokens are identical for every image: a shared prompt cache would answer about
    the previous image. Keys and pixel hashes keep them apart."""
    from mlx_vlm import PromptCacheState, stream_generate

    a_img, b_img = images[0], images[1]
    fresh = _load(MLXBackend, mlx_dirs[arch][1], prefix_cache=False)
    ref_b = fresh.ask([Ask("b", b_img, Q_LABEL, LABELS, 3)])[0]
    ref_a = fresh.ask([Ask("a", a_img, Q_LABEL, LABELS, 3)])[0]
    # the images matter (otherwise this test would prove nothing)
    assert max(abs(ref_a.probs[c] - ref_b.probs[c]) for c in LABELS) > 1e-3

    be = _load(MLXBackend, mlx_dirs[arch][1], prefix_cache=True)
    for key in ("a", "b"):
        be.release(key)
    be.ask([Ask("a", a_img, Q_LABEL, LABELS, 3)])
    got_b = be.ask([Ask("b", b_img, Q_LABEL, LABELS, 3)])[0]              # another key
    assert got_b.info["cached_tokens"] == 0
    np.testing.assert_allclose([got_b.probs[c] for c in LABELS], [ref_b.probs[c] for c in LABELS], atol=1e-5)
    same_key = be.ask([Ask("a", b_img, Q_LABEL, LABELS, 3)])[0]           # same key, other pixels
    assert same_key.info["cached_tokens"] == 0
    np.testing.assert_allclose([same_key.probs[c] for c in LABELS], [ref_b.probs[c] for c in LABELS], atol=1e-5)

    if arch == "gemma3":
        # the hazard being guarded against: one PromptCacheState across images reuses image A for B
        shared = PromptCacheState()
        lps = []
        for img, q in ((a_img, Q_LABEL), (b_img, Q_LABEL + " Be quick.")):   # same image tokens, new text
            be.tokenizer.stopping_criteria.reset(be.model.config.eos_token_id)
            r = list(stream_generate(be.model, be.processor, "", max_tokens=1, temperature=0.0,
                                     prompt_cache_state=shared, **be.prepare(img, q)))[0]
            lps.append((np.array(r.logprobs), r.cached_tokens))
        fresh_b = fresh.last_token_logits(b_img, Q_LABEL + " Be quick.")
        fresh_b = fresh_b - np.log(np.exp(fresh_b - fresh_b.max()).sum()) - fresh_b.max()
        assert lps[1][1] > 0                                                # it did reuse...
        assert np.abs(lps[1][0] - fresh_b).max() > 1e-3                     # ...and got B wrong


def test_release_and_lru_bound(mlx_dirs, images):
    be = _load(MLXBackend, mlx_dirs["gemma3"][1], prefix_cache=True)
    be.max_cached_images = 2
    for k, img in enumerate(images[:3]):
        be.ask([Ask(f"k{k}", img, Q_LABEL, (), 1)])
    assert list(be._states) == ["k1", "k2"]
    be.release("k2")
    assert list(be._states) == ["k1"]
    be.release("never-seen")                               # no error
    # a batch larger than the bound keeps all of its images, so the next step re-uses every prefix
    batch = [Ask(f"b{k}", img, Q_LABEL, (), 1) for k, img in enumerate(images[:4])]
    be.ask(batch)
    assert {f"b{k}" for k in range(4)} <= set(be._states)
    second = be.ask([Ask(a.image_key, a.image, Q_VALENCE.format(e="sad"), (), 1) for a in batch])
    assert all(x.info["cached_tokens"] > 0 for x in second)
    for key in list(be._states):
        be.release(key)
    be.max_cached_images = 8
    with pytest.raises(EmoalignError, match="unknown option"):       # checked before loading anything
        MLXBackend(str(mlx_dirs["gemma3"][1]), fast=False, prefix_caching=True)


@pytest.mark.parametrize("arch", ["gemma3", pytest.param("mllama", marks=pytest.mark.slow)])
def test_provenance(arch, mlx_dirs):
    from emoalign.raters.vlm.revision import model_dir_digest

    be = _load(MLXBackend, mlx_dirs[arch][1], prefix_cache=True)
    prov = be.provenance()
    assert prov["backend"] == "mlx" and prov["model_id"] == str(mlx_dirs[arch][1])
    assert prov["dtype"] == "float32" and prov["quantization"] is None
    assert prov["model_revision"] == model_dir_digest(mlx_dirs[arch][1])    # a content digest
    assert prov["model_type"] == arch and prov["image_placement"] == "before" and prov["answer_probs"] == "sequence"
    assert prov["versions"]["mlx-vlm"] and prov["versions"]["mlx"]


@pytest.mark.slow  # quantizes and loads a second model
def test_quantized_checkpoint_provenance(mlx_dirs, images, tmp_path):
    """A 4-bit mlx-vlm conversion records its quantisation and still gives candidate probabilities."""
    import mlx_vlm

    out = tmp_path / "q4"
    mlx_vlm.convert(str(mlx_dirs["gemma3"][1]), str(out), quantize=True, q_bits=4, q_group_size=32)
    be = MLXBackend(str(out))
    assert be.provenance()["quantization"] == "mode=affine,bits=4,group_size=32"
    ans = be.ask([Ask("a", images[0], Q_VALENCE.format(e="sad"), DIGITS, 2)])[0]
    assert sum(ans.probs.values()) == pytest.approx(1.0, abs=1e-9)


def test_user_errors(tmp_path):
    with pytest.raises(EmoalignError, match="unknown option"):
        MLXBackend(str(tmp_path), temprature=0)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EmoalignError, match="cannot load model"):
        MLXBackend(str(tmp_path))


def test_infer_cli_with_mlx_backend(mlx_dirs, images, tmp_path):
    """`emoalign infer --rater mlx:DIR` end to end: the contract table with probabilities and mlx provenance."""
    import pandas as pd
    from click.testing import CliRunner

    from emoalign.cli.infer import infer

    (tmp_path / "img").mkdir()
    rows = []
    for i, im in enumerate(images[:2]):
        im.save(tmp_path / "img" / f"{i}.png")
        rows.append(dict(image_id=f"im{i}", path=f"img/{i}.png"))
    pd.DataFrame(rows).to_parquet(tmp_path / "stimuli.parquet")
    res = CliRunner().invoke(infer, ["--rater", f"mlx:{mlx_dirs['mllama'][1]}", "--name", "tiny", "--labels",
                                     ",".join(LABELS), "--stimuli", str(tmp_path / "stimuli.parquet"),
                                     "--out", str(tmp_path / "runs"), "--batch-size", "2", "--max-new-tokens", "4",
                                     "--no-progress"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(tmp_path / "runs" / "tiny" / "ratings.parquet")
    assert sorted(df["image_id"]) == ["im0", "im1"] and df["error"].isna().all()
    assert (df["backend"] == "mlx").all() and (df["dtype"] == "float32").all()
    p = df[[f"p_valence_{k}" for k in DIGITS]].to_numpy(float)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(df["valence_expected"], p @ np.arange(1, 10), atol=1e-9)
