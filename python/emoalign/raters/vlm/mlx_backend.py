"""``mlx`` backend: mlx-vlm (Metal on Apple silicon, ``mlx[cpu]`` elsewhere).

Meant for the MLX conversions the paper ran (``mlx-community/gemma-3-4b-it-qat-4bit``,
``mlx-community/Llama-3.2-11B-Vision-Instruct-4bit``) on Apple silicon, or any local mlx-vlm directory.

Greedy generation through ``mlx_vlm.stream_generate``. Prompts come from ``inputs``, exactly as for the
``hf`` backend: the model's own chat template, the image placed per ``image_placement``, and no special
tokens added to a templated prompt that already starts with BOS — mlx-vlm 0.7 adds them whenever the
processor lacks a chat template of its own, which gave Gemma3 ``<bos><bos>`` and LLaMA-3.2-Vision two
``<|begin_of_text|>`` (the two backends now send identical token ids; tested on the real tokenizers). The
image is preprocessed once per image (``ImageProcessorMemo``).

Candidate probabilities follow ``answer_probs`` (full token sequences at the answer position): the
log-probabilities mlx-vlm returns at each generated token cover the greedy path; contexts off it are scored
on the generation's own KV cache, trimmed back to the answer position (or, when a sliding-window cache has
wrapped and cannot be trimmed, by a full forward pass).

With ``prefix_cache=True`` each ``image_key`` gets its own ``mlx_vlm.PromptCacheState``: the second and third
steps re-use the KV cache of the common prefix (image + shared text) and prefill only their new tokens.
mlx-vlm matches cached prefixes by token ids alone, and an image's placeholder tokens are the same for every
image, so a state shared across images would silently answer about the previous image; states are keyed by
``image_key`` *and* a hash of the pixels, and dropped on ``release``.

Fidelity to transformers (tested on tiny random checkpoints of both architectures around the real
tokenizers): the next-token logits after the prompt agree to ~1e-5. Two mlx-vlm 0.7 behaviours are kept as
they are, since mlx-vlm is the engine the paper ran: Gemma3 image tokens attend causally (transformers lets
them attend to each other when given ``token_type_ids``), and Mllama drops the cross-attention mask after
the prefill, so generated tokens also attend to the zero-padded tiles of an image smaller than
``max_image_tiles`` tiles; greedy texts beyond the first token can therefore differ from the ``hf`` backend.
Two mlx-vlm defects that would change results are corrected here: an untied ``lm_head`` overwritten by the
embeddings (Gemma3 ``sanitize``), and Mllama prefix reuse, which otherwise loses the image.

Reference: Blaizzy, mlx-vlm (https://github.com/Blaizzy/mlx-vlm), 0.7.x ``generate``/``PromptCacheState``.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from emoalign.errors import EmoalignError
from emoalign.raters.vlm.answer_probs import CandidateForms, score_answer
from emoalign.raters.vlm.backend import Answer, Ask
from emoalign.raters.vlm.backends import vlm_backend
from emoalign.raters.vlm.inputs import (ImageProcessorMemo, add_special_tokens_for, image_digest, render_chat,
                                        resolve_placement)
from emoalign.raters.vlm.revision import hub_snapshot_commit, model_dir_digest

OPTIONS = ("revision", "prefix_cache", "fast", "max_cached_images", "adapter_path", "image_placement")


def _pkg_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


class _ImageState:
    """What is kept per image across its steps: the pixel hash, the prompt cache (prefix caching on), and
    Mllama's cross-attention states."""

    __slots__ = ("hash", "cache", "pixels")

    def __init__(self, digest: str, cache):
        self.hash = digest
        self.cache = cache
        self.pixels: dict | None = None


@vlm_backend("mlx", description="mlx-vlm on Apple silicon (or mlx[cpu] on Linux), e.g. the 4-bit QAT releases",
             install="pip install 'emoalign[mlx]' (mlx-vlm; on Linux also 'mlx[cpu]')", hub_model=True)
class MLXBackend:
    """A VLM loaded with mlx-vlm.

    Parameters
    ----------
    model : Hugging Face id (e.g. ``mlx-community/gemma-3-4b-it-qat-4bit``) or a local directory.
    revision : hub revision (branch, tag or commit); the snapshot's commit is recorded.
    prefix_cache : re-use each image's prompt KV cache across its steps (same greedy outputs);
        ``fast`` is an alias (the CLI's ``--fast/--reference``).
    max_cached_images : image states kept between calls (least recently used dropped first; the
        images of the current call are always kept, so this never undercuts the batch size).
    adapter_path : optional LoRA adapter directory.
    image_placement : model/before/after (``inputs``).
    """

    name = "mlx"

    def __init__(self, model: str, *, revision: str | None = None, prefix_cache: bool = True,
                 max_cached_images: int = 8, adapter_path: str | None = None, fast: bool | None = None,
                 image_placement: str = "model", **opts):
        if opts:
            raise EmoalignError(f"mlx backend: unknown option(s) {', '.join(sorted(opts))}",
                                hint="options: " + ", ".join(OPTIONS))
        resolve_placement(image_placement, None)      # a bad value fails before the model loads
        if fast is not None:
            prefix_cache = bool(fast)
        try:
            import mlx.core  # noqa: F401
            import mlx_vlm
        except ImportError as exc:  # pragma: no cover - depends on the platform
            raise EmoalignError(f"mlx backend needs mlx and mlx-vlm ({exc})",
                                hint='pip install "emoalign[mlx]" (on Linux also "mlx[cpu]")') from exc
        from mlx_vlm.utils import get_model_path

        self.model_id = str(model)
        self.revision = revision
        self.prefix_cache = bool(prefix_cache)
        self.max_cached_images = max(1, int(max_cached_images))
        try:
            self.path = Path(get_model_path(self.model_id, revision=revision))
            self.model, self.processor = mlx_vlm.load(str(self.path), adapter_path=adapter_path)
        except (OSError, ValueError) as exc:
            local = Path(self.model_id).exists()
            raise EmoalignError(
                f"mlx backend: cannot load model {self.model_id!r}: {type(exc).__name__}: {exc}",
                hint=("check that the directory holds config.json, *.safetensors and the processor files"
                      if local else "check the Hugging Face id, your network, or set HF_HUB_OFFLINE=1 "
                                    "with the model already in the cache")) from exc
        self.config = json.loads((self.path / "config.json").read_text())
        self.model_type = self.config.get("model_type")
        self.image_placement = resolve_placement(image_placement, self.model_type)
        self.untied_head_restored = self._restore_untied_lm_head()
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.image_memo = ImageProcessorMemo.install(self.processor)
        self._states: OrderedDict[str, _ImageState] = OrderedDict()
        self._forms: dict[tuple[str, ...], CandidateForms] = {}
        self._proc_kwargs = self._processor_kwargs()
        self.default_batch_size = 1      # it answers one image at a time; a batch only sizes the part files

    def _restore_untied_lm_head(self) -> bool:
        """Load a checkpoint's own ``lm_head`` where mlx-vlm replaced it with the embeddings.

        mlx-vlm 0.7's Gemma3 ``sanitize`` ties the output head to ``embed_tokens`` whenever the key
        is not literally ``lm_head.weight``, which silently changes an untied checkpoint (the real
        Gemma3 releases are tied, so they are unaffected). Unquantised checkpoints only.
        """
        import mlx.core as mx
        from safetensors import safe_open

        text_cfg = self.config.get("text_config") or {}
        tied = text_cfg.get("tie_word_embeddings", self.config.get("tie_word_embeddings", True))
        head = getattr(getattr(self.model, "language_model", None), "lm_head", None)
        if tied or head is None or self._quantization() is not None or not hasattr(head, "weight"):
            return False
        for f in sorted(self.path.glob("*.safetensors")):
            with safe_open(str(f), framework="numpy") as st:
                for key in st.keys():
                    if key.endswith("lm_head.weight"):
                        w = st.get_tensor(key)
                        if tuple(w.shape) != tuple(head.weight.shape):
                            return False
                        head.weight = mx.array(w).astype(head.weight.dtype)
                        mx.eval(head.weight)
                        return True
        return False

    # -- provenance --------------------------------------------------------------------------------
    def _revision(self) -> str | None:
        return hub_snapshot_commit(self.path) or model_dir_digest(self.path)

    def _dtype(self) -> str | None:
        from mlx.utils import tree_flatten

        import mlx.core as mx

        for _, p in tree_flatten(self.model.language_model.parameters()):
            if hasattr(p, "dtype") and mx.issubdtype(p.dtype, mx.floating):
                return str(p.dtype).replace("mlx.core.", "")
        return self.config.get("torch_dtype") or self.config.get("dtype")

    def _quantization(self) -> str | None:
        q = self.config.get("quantization") or self.config.get("quantization_config")
        if not q:
            return None
        if isinstance(q, dict):
            keys = [k for k in ("mode", "quant_method", "bits", "group_size") if k in q]
            return ",".join(f"{k}={q[k]}" for k in keys) or json.dumps(q, sort_keys=True)
        return str(q)

    def provenance(self) -> dict:
        from emoalign import __version__

        return {"model_id": self.model_id, "model_revision": self._revision(), "requested_revision": self.revision,
                "dtype": self._dtype(), "quantization": self._quantization(), "backend": self.name,
                "model_type": self.model_type, "prefix_cache": self.prefix_cache,
                "image_placement": self.image_placement, "answer_probs": "sequence",
                "lm_head_restored": self.untied_head_restored,
                "versions": {"mlx": _pkg_version("mlx"), "mlx-vlm": _pkg_version("mlx-vlm"),
                             "transformers": _pkg_version("transformers"), "emoalign": __version__}}

    # -- prompt and inputs -------------------------------------------------------------------------
    def _processor_kwargs(self) -> dict:
        """Processor options mlx-vlm does not take from the checkpoint (Mllama's tile count)."""
        out = {}
        ip = getattr(self.processor, "image_processor", None)
        if self.model_type == "mllama" and ip is not None and hasattr(ip, "max_image_tiles"):
            out["max_image_tiles"] = int(ip.max_image_tiles)
        return out

    def format_prompt(self, prompt: str) -> str:
        """The chat-formatted text of one user turn (image and ``prompt`` per ``image_placement``)."""
        return render_chat(self.processor, self.tokenizer, prompt, self.image_placement)

    def prepare(self, image, prompt: str) -> dict:
        """mlx-vlm model inputs (input_ids, pixel_values, mask and model-specific extras), from the processor
        called directly: ``mlx_vlm.utils.prepare_inputs`` forwards ``add_special_tokens`` only to processors
        that name it in their signature, so for gemma3 it was dropped and a second ``<bos>`` added."""
        text = self.format_prompt(prompt)
        inputs = dict(self.processor(text=[text], images=[image.convert("RGB")], return_tensors="mlx",
                                     add_special_tokens=add_special_tokens_for(text, self.tokenizer),
                                     **self._proc_kwargs))
        if "images" in inputs and "pixel_values" not in inputs:
            inputs["pixel_values"] = inputs.pop("images")
        import mlx.core as mx

        # older transformers return numpy arrays for return_tensors="mlx"
        inputs = {k: (mx.array(np.asarray(v)) if v is not None and not isinstance(v, mx.array)
                      and hasattr(v, "__array__") else v) for k, v in inputs.items()}
        out = {k: v for k, v in inputs.items() if v is not None and k != "attention_mask"}
        out["mask"] = inputs.get("attention_mask")
        return out

    def prompt_ids(self, ask: Ask) -> list[int]:
        """The token ids of ``ask``'s full prompt (for cross-backend checks)."""
        return np.array(self.prepare(ask.image, ask.prompt)["input_ids"]).ravel().tolist()

    def last_token_logits(self, image, prompt: str | None = None, inputs: dict | None = None) -> np.ndarray:
        """Next-token logits after the full prompt, scored the way ``generate`` prefills it (embed with
        the image, then the language model on ``inputs_embeds``), no cache: for cross-backend checks."""
        import mlx.core as mx

        inputs = dict(inputs if inputs is not None else self.prepare(image, prompt))
        input_ids = inputs.pop("input_ids")
        pixel_values = inputs.pop("pixel_values", None)
        mask = inputs.pop("mask", None)
        emb = self.model.get_input_embeddings(input_ids, pixel_values, mask=mask, **inputs)
        extra = {k: v for k, v in emb.to_dict().items() if k != "inputs_embeds" and v is not None}
        kw = {k: v for k, v in inputs.items() if k not in extra}
        out = self.model.language_model(input_ids, inputs_embeds=emb.inputs_embeds, **kw, **extra)
        logits = out.logits[0, -1].astype(mx.float32)
        return np.array(logits)

    # -- candidates --------------------------------------------------------------------------------
    def forms(self, candidates: tuple[str, ...]) -> CandidateForms:
        if candidates not in self._forms:
            self._forms[candidates] = CandidateForms.build(
                candidates, lambda s: self.tokenizer.encode(s, add_special_tokens=False))
        return self._forms[candidates]

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    # -- the interface -----------------------------------------------------------------------------
    def _state_for(self, ask: Ask, protect: frozenset = frozenset()) -> _ImageState:
        """This image's state (new when the key is new or its pixels changed). Least recently used states
        beyond ``max_cached_images`` are dropped, except those of the current call."""
        from mlx_vlm import PromptCacheState

        digest = image_digest(ask.image)
        st = self._states.get(ask.image_key)
        if st is None or st.hash != digest:      # new image, or the same key with other pixels
            if st is not None and self.image_memo is not None:
                self.image_memo.forget([st.hash])
            st = _ImageState(digest, PromptCacheState() if self.prefix_cache else None)
            self._states[ask.image_key] = st
        self._states.move_to_end(ask.image_key)
        for key in list(self._states):
            if len(self._states) <= self.max_cached_images:
                break
            if key not in protect:
                self._drop(key)
        return st

    def _cross_states(self, st: _ImageState, kw: dict):
        """Mllama: the image's cross-attention states, computed once per image."""
        if st.pixels is None:
            emb = self.model.get_input_embeddings(kw["input_ids"], kw.get("pixel_values"), mask=kw.get("mask"),
                                                  **{k: v for k, v in kw.items()
                                                     if k in ("aspect_ratio_ids", "aspect_ratio_mask")})
            st.pixels = {"cross_attention_states": emb.cross_attention_states}
        return st.pixels["cross_attention_states"]

    def _ask_one(self, ask: Ask, protect: frozenset = frozenset()) -> Answer:
        import mlx.core as mx
        from mlx_vlm import stream_generate
        from mlx_vlm.models import cache as mlx_cache

        st = self._state_for(ask, protect)
        inputs = self.prepare(ask.image, ask.prompt)
        prompt_ids = np.array(inputs["input_ids"]).ravel().tolist()
        candidates = tuple(ask.candidates)
        forms = self.forms(candidates) if candidates else None
        ids_mx = mx.array(forms.ids) if forms is not None else None
        self.tokenizer.stopping_criteria.reset(self.model.config.eos_token_id)
        kw = dict(inputs)
        expect_cached = 0
        # a cache of our own, so the generation's KV state stays reachable for scoring (with a prompt-cache
        # state mlx-vlm uses the state's cache on a prefix hit and stores whichever it used in the state)
        own_cache = mlx_cache.make_prompt_cache(self.model.language_model)
        kw["prompt_cache"] = own_cache
        if st.cache is not None:
            kw["prompt_cache_state"] = st.cache
            if self.model_type == "mllama":
                expect_cached = self._mllama_reuse(st, kw, prompt_ids)
        if self.model_type == "mllama":
            kw["prefill_step_size"] = None    # one-shot prefill: mlx-vlm's chunked path mis-slices the mask
        text, steps, toks, final = "", [], [], None
        for r in stream_generate(self.model, self.processor, "", max_tokens=int(ask.max_new_tokens),
                                 temperature=0.0, **kw):
            text += r.text
            if r.token_ids is not None or r.finish_reason is not None:
                final = r
                n_seen = len(toks)
                ids_all = list(r.token_ids or [])
                if len(ids_all) > n_seen and r.logprobs is not None:   # the stop token's own step
                    toks.append(int(ids_all[n_seen]))
                    if ids_mx is not None:
                        steps.append(np.array(r.logprobs[ids_mx].astype(mx.float32), dtype=np.float64))
                continue
            toks.append(int(r.token))
            if ids_mx is not None:
                steps.append(np.array(r.logprobs[ids_mx].astype(mx.float32), dtype=np.float64))
        if st.cache is not None and self.model_type == "mllama" \
                and getattr(final, "cached_tokens", 0) != expect_cached:   # pragma: no cover - guard
            raise RuntimeError(f"mlx backend: mllama prefix reuse expected {expect_cached} cached tokens, "
                               f"mlx-vlm used {getattr(final, 'cached_tokens', None)}; run with prefix_cache=False")
        clean = getattr(self.processor, "clean_output", None)
        if callable(clean):
            text = clean(text)
        info = {"tokens": toks, "batch_size": 1, "prompt_tokens": getattr(final, "prompt_tokens", None),
                "cached_tokens": getattr(final, "cached_tokens", 0),
                "finish_reason": getattr(final, "finish_reason", None)}
        if forms is None or not steps:
            return Answer(text=text, info=info)
        tracked = st.cache.cache if st.cache is not None and st.cache.cache is not None else own_cache
        gen = list(toks)
        probs, mass, pos, n_probes = score_answer(
            forms, gen, self._decode, steps, ask.locate,
            lambda at, ctxs: self._probe(ask, st, inputs, prompt_ids, gen[:at], ctxs, forms, tracked))
        info.update(answer_position=pos, probes=n_probes)
        return Answer(text=text, probs=probs, candidate_mass=mass, info=info)

    def _probe(self, ask: Ask, st: _ImageState, inputs: dict, prompt_ids: list[int], before: list[int], contexts,
               forms: CandidateForms, tracked) -> dict:
        """Next-token distributions after prompt + ``before`` + each context: on the generation's own KV cache
        trimmed back to the answer position (then trimmed back after each context), else by full forwards."""
        import mlx.core as mx
        from mlx_vlm.generate.dispatch import _prefix_cache_trim_amount

        target = len(prompt_ids) + len(before)
        n_drop = _prefix_cache_trim_amount(tracked, target) if tracked else None
        out = {}
        if n_drop is None or max(int(getattr(c, "offset", 0) or 0) for c in tracked) < target:
            for ctx in contexts:                      # cache cannot be rolled back: full forward passes
                kw = dict(inputs)
                extra = mx.array([before + list(ctx)], dtype=kw["input_ids"].dtype)
                kw["input_ids"] = mx.concatenate([kw["input_ids"], extra], axis=1)
                if kw.get("mask") is not None:
                    kw["mask"] = mx.ones(kw["input_ids"].shape, dtype=kw["mask"].dtype)
                if kw.get("cross_attention_mask") is not None:
                    cam = kw["cross_attention_mask"]
                    kw["cross_attention_mask"] = mx.concatenate([cam] + [cam[:, -1:]] * extra.shape[1], axis=1)
                logits = self.last_token_logits(None, inputs=kw).astype(np.float64)
                out[ctx] = forms.gather(logits - _logsumexp(logits))
            return out
        for c in tracked:
            if n_drop:
                c.trim(n_drop)
        extra = {}
        if self.model_type == "mllama":
            extra["cross_attention_states"] = self._cross_states(st, dict(inputs))
        for ctx in contexts:
            logits = self.model.language_model(mx.array([list(ctx)]), cache=tracked, **extra).logits[0, -1]
            lp = np.array(logits.astype(mx.float32), dtype=np.float64)
            out[ctx] = forms.gather(lp - _logsumexp(lp))
            for c in tracked:
                c.trim(len(ctx))
        if st.cache is not None and st.cache.cache is tracked:   # the state's token ids follow its cache
            st.cache.token_ids = list(prompt_ids) + list(before)
        return out

    def _mllama_reuse(self, st: _ImageState, kw: dict, ids: list[int]) -> int:
        """Make mlx-vlm's prefix reuse work for Mllama; return the prefix length it will reuse.

        Mllama's image enters through cross-attention, not through tokens: when mlx-vlm re-uses a
        cached prefix it drops ``pixel_values``, and the cross-attention layers would have no image.
        So the image's cross-attention states are computed once per image and passed explicitly.
        mlx-vlm also slices the prompt's ``cross_attention_mask`` from row 0 to the length of the
        uncached suffix, so the mask is pre-sliced to the suffix rows here (the reuse decision is
        replicated from ``stream_generate`` — a cached prefix, a trimmable cache, a text-only suffix — and
        checked against its ``cached_tokens`` afterwards), and the prefill runs in one piece (its chunked
        prefill slices the mask again by offset).
        """
        from mlx_vlm.generate.dispatch import _prefix_cache_trim_amount

        states = self._cross_states(st, kw)
        kw["cached_image_features"] = states
        kw["cross_attention_states"] = states
        cache = st.cache
        if cache.cache is None:
            return 0
        prefix = cache.find_prefix_length(ids)
        image_id = getattr(self.model.config, "image_token_index", None)
        if not (0 < prefix < len(ids)) or _prefix_cache_trim_amount(cache.cache, prefix) is None \
                or (image_id is not None and image_id in ids[prefix:]):
            return 0
        if kw.get("cross_attention_mask") is not None:
            kw["cross_attention_mask"] = kw["cross_attention_mask"][:, prefix:]
        return prefix

    def ask(self, asks: Sequence[Ask]) -> list[Answer]:
        """Answer each ask in order (batch size 1: the greedy reference). The states of every image in
        the call are kept, so a strategy's next step over the same batch re-uses them all."""
        protect = frozenset(a.image_key for a in asks)
        return [self._ask_one(a, protect) for a in asks]

    def _drop(self, image_key: str) -> None:
        st = self._states.pop(image_key, None)
        if st is not None and self.image_memo is not None:
            self.image_memo.forget([st.hash])

    def release(self, image_key: str) -> None:
        if image_key in self._states:
            import mlx.core as mx

            self._drop(image_key)
            mx.clear_cache()


def _logsumexp(x: np.ndarray) -> float:
    m = float(np.max(x))
    return m + float(np.log(np.exp(x - m).sum()))
