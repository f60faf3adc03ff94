"""``mlx`` backend: mlx-vlm (Metal on Apple silicon, ``mlx[cpu]`` elsewhere).

Greedy generation through ``mlx_vlm.stream_generate``; the log-probabilities mlx-vlm returns at each
generated token give the candidate probabilities at the answer position (``answer_probs``: every
vocabulary token that starts exactly one candidate votes for it; renormalised over candidates).

Prompts are built with the model's own chat template, image first then text (the interface's
contract), so a run's three steps share the image prefix. With ``prefix_cache=True`` each
``image_key`` gets its own ``mlx_vlm.PromptCacheState``: the second and third steps re-use the KV
cache of the common prefix (image + shared text) and prefill only their new tokens. mlx-vlm matches
cached prefixes by token ids alone, and an image's placeholder tokens are the same for every
image, so a state shared across images would silently answer about the previous image; states are
therefore keyed by ``image_key`` *and* a hash of the pixels, and dropped on ``release``.

Fidelity to transformers (tested on tiny random checkpoints of both architectures): the
next-token logits after the prompt agree to ~3e-5. Two mlx-vlm 0.7 behaviours are kept as they are,
since mlx-vlm is the engine the paper ran: Gemma3 image tokens attend causally (transformers lets
them attend to each other when given ``token_type_ids``), and Mllama drops the cross-attention mask
after the prefill, so generated tokens also attend to the zero-padded tiles of an image smaller than
``max_image_tiles`` tiles; greedy texts beyond the first token can therefore differ from the
``hf`` backend. Two mlx-vlm defects that would change results are corrected here: an untied
``lm_head`` overwritten by the embeddings (Gemma3 ``sanitize``), and Mllama prefix reuse, which
otherwise loses the image.

Reference: Blaizzy, mlx-vlm (https://github.com/Blaizzy/mlx-vlm), 0.7.x ``generate``/``PromptCacheState``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np

from emoalign.errors import EmoalignError
from emoalign.raters.vlm.answer_probs import answer_position, renormalise, vocab_votes
from emoalign.raters.vlm.backend import Answer, Ask


def image_hash(image) -> str:
    """Content hash of a PIL image (mode, size and pixels)."""
    h = hashlib.sha1(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def _pkg_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None


class _ImageState:
    """The prompt cache of one image (and the prepared pixels, reused across its steps)."""

    __slots__ = ("hash", "cache", "pixels")

    def __init__(self, digest: str, cache):
        self.hash = digest
        self.cache = cache
        self.pixels: dict | None = None


class MLXBackend:
    """A VLM loaded with mlx-vlm.

    Parameters
    ----------
    model : Hugging Face id (e.g. ``mlx-community/gemma-3-4b-it-qat-4bit``) or a local directory.
    revision : hub revision (branch, tag or commit); ignored for local directories.
    prefix_cache : re-use each image's prompt KV cache across its steps (same greedy outputs);
        ``fast`` is an alias (the CLI's ``--fast/--reference``).
    max_cached_images : image caches kept between calls (least recently used dropped first; the
        images of the current call are always kept, so this never undercuts the batch size).
    adapter_path : optional LoRA adapter directory.
    """

    name = "mlx"

    def __init__(self, model: str, *, revision: str | None = None, prefix_cache: bool = True,
                 max_cached_images: int = 8, adapter_path: str | None = None, fast: bool | None = None, **opts):
        if opts:
            raise EmoalignError(f"mlx backend: unknown option(s) {', '.join(sorted(opts))}",
                                hint="options: revision, prefix_cache (alias fast), max_cached_images, adapter_path")
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
        self.untied_head_restored = self._restore_untied_lm_head()
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self._states: OrderedDict[str, _ImageState] = OrderedDict()
        self._votes: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray]] = {}
        self._vocab_texts: list[str] | None = None
        self._proc_kwargs = self._processor_kwargs()

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
        parts = self.path.resolve().parts
        if "snapshots" in parts:               # hub cache: .../snapshots/<commit>
            i = parts.index("snapshots")
            if i + 1 < len(parts):
                return parts[i + 1]
        if self.revision:
            return self.revision
        h = hashlib.sha256((self.path / "config.json").read_bytes())
        for f in sorted(self.path.glob("*.safetensors")):
            h.update(f"{f.name}:{f.stat().st_size}".encode())
        return f"local-{h.hexdigest()[:12]}"

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

        return {"model_id": self.model_id, "model_revision": self._revision(), "dtype": self._dtype(),
                "quantization": self._quantization(), "backend": self.name,
                "model_type": self.config.get("model_type"), "prefix_cache": self.prefix_cache,
                "lm_head_restored": self.untied_head_restored,
                "versions": {"mlx": _pkg_version("mlx"), "mlx-vlm": _pkg_version("mlx-vlm"),
                             "transformers": _pkg_version("transformers"), "emoalign": __version__}}

    # -- prompt and inputs -------------------------------------------------------------------------
    def _processor_kwargs(self) -> dict:
        """Processor options mlx-vlm does not take from the checkpoint (Mllama's tile count)."""
        out = {}
        ip = getattr(self.processor, "image_processor", None)
        if self.config.get("model_type") == "mllama" and ip is not None and hasattr(ip, "max_image_tiles"):
            out["max_image_tiles"] = int(ip.max_image_tiles)
        return out

    def format_prompt(self, prompt: str) -> str:
        """The chat-formatted text of one user turn: the image, then ``prompt``; generation prompt added."""
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}]
        for obj in (self.processor, self.tokenizer):
            if getattr(obj, "chat_template", None):
                return obj.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        from mlx_vlm.prompt_utils import apply_chat_template

        return apply_chat_template(self.processor, self.model.config, prompt, num_images=1)

    def prepare(self, image, prompt: str) -> dict:
        """mlx-vlm model inputs (input_ids, pixel_values, mask and model-specific extras)."""
        from mlx_vlm.utils import prepare_inputs, should_add_special_tokens

        text = self.format_prompt(prompt)
        special = should_add_special_tokens(self.model.config.model_type, self.processor)
        if self._proc_kwargs:     # options prepare_inputs would drop (it forwards only named parameters)
            inputs = dict(self.processor(text=[text], images=[image.convert("RGB")], add_special_tokens=special,
                                         padding=True, return_tensors="mlx", **self._proc_kwargs))
        else:
            inputs = prepare_inputs(self.processor, images=[image.convert("RGB")], prompts=text,
                                    image_token_index=getattr(self.model.config, "image_token_index", None),
                                    add_special_tokens=special)
        out = {k: v for k, v in inputs.items() if v is not None and k != "attention_mask"}
        out["mask"] = inputs.get("attention_mask")
        return out

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
    def _vote_index(self, candidates: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
        """(token ids, candidate index per id) of the vocabulary tokens voting for exactly one candidate."""
        if candidates not in self._votes:
            if self._vocab_texts is None:
                n = len(self.tokenizer)
                self._vocab_texts = self.tokenizer.batch_decode([[i] for i in range(n)],
                                                                skip_special_tokens=False)
            votes = vocab_votes(self._vocab_texts, candidates)
            ids = np.array([t for j in range(len(candidates)) for t in votes[j]], dtype=np.int32)
            seg = np.array([j for j in range(len(candidates)) for _ in votes[j]], dtype=np.int32)
            self._votes[candidates] = (ids, seg)
        return self._votes[candidates]

    def _candidate_probs(self, candidates, steps, token_texts):
        """(probs, mass, position) from the per-step log-probabilities gathered at the voting ids."""
        if not candidates or not steps:
            return None, None, None
        pos = answer_position(token_texts, candidates)
        at = steps[pos if pos is not None else 0]
        ids, seg = self._vote_index(tuple(candidates))
        raw = np.bincount(seg, weights=np.exp(at.astype(np.float64)), minlength=len(candidates))
        probs, mass = renormalise(candidates, raw.tolist())
        return probs, mass, pos

    # -- the interface -----------------------------------------------------------------------------
    def _state_for(self, ask: Ask, protect: frozenset = frozenset()) -> _ImageState | None:
        """This image's prompt cache (new when the key is new or its pixels changed). Least recently
        used states beyond ``max_cached_images`` are dropped, except those of the current call."""
        if not self.prefix_cache:
            return None
        from mlx_vlm import PromptCacheState

        digest = image_hash(ask.image)
        st = self._states.get(ask.image_key)
        if st is None or st.hash != digest:      # new image, or the same key with other pixels
            st = _ImageState(digest, PromptCacheState())
            self._states[ask.image_key] = st
        self._states.move_to_end(ask.image_key)
        for key in list(self._states):
            if len(self._states) <= self.max_cached_images:
                break
            if key not in protect:
                del self._states[key]
        return st

    def _ask_one(self, ask: Ask, protect: frozenset = frozenset()) -> Answer:
        import mlx.core as mx
        from mlx_vlm import stream_generate

        st = self._state_for(ask, protect)
        inputs = self.prepare(ask.image, ask.prompt)
        candidates = tuple(ask.candidates)
        ids_mx = mx.array(self._vote_index(candidates)[0]) if candidates else None
        self.tokenizer.stopping_criteria.reset(self.model.config.eos_token_id)
        kw = dict(inputs)
        expect_cached = 0
        if st is not None:
            kw["prompt_cache_state"] = st.cache
            if self.config.get("model_type") == "mllama":
                expect_cached = self._mllama_reuse(st, kw)
        if self.config.get("model_type") == "mllama":
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
                        steps.append(np.array(r.logprobs[ids_mx].astype(mx.float32)))
                continue
            toks.append(int(r.token))
            if ids_mx is not None:
                steps.append(np.array(r.logprobs[ids_mx].astype(mx.float32)))
        if st is not None and self.config.get("model_type") == "mllama" \
                and getattr(final, "cached_tokens", 0) != expect_cached:   # pragma: no cover - guard
            raise RuntimeError(f"mlx backend: mllama prefix reuse expected {expect_cached} cached tokens, "
                               f"mlx-vlm used {getattr(final, 'cached_tokens', None)}; run with prefix_cache=False")
        clean = getattr(self.processor, "clean_output", None)
        if callable(clean):
            text = clean(text)
        token_texts = [self.tokenizer.decode([t]) for t in toks]
        probs, mass, pos = self._candidate_probs(candidates, steps, token_texts)
        info = {"tokens": toks, "answer_position": pos, "batch_size": 1,
                "prompt_tokens": getattr(final, "prompt_tokens", None),
                "cached_tokens": getattr(final, "cached_tokens", 0),
                "finish_reason": getattr(final, "finish_reason", None)}
        return Answer(text=text, probs=probs, candidate_mass=mass, info=info)

    def _mllama_reuse(self, st: _ImageState, kw: dict) -> int:
        """Make mlx-vlm's prefix reuse work for Mllama; return the prefix length it will reuse.

        Mllama's image enters through cross-attention, not through tokens: when mlx-vlm re-uses a
        cached prefix it drops ``pixel_values``, and the cross-attention layers would have no image.
        So the image's cross-attention states are computed once per image and passed explicitly.
        mlx-vlm also slices the prompt's ``cross_attention_mask`` from row 0 to the length of the
        uncached suffix, so the mask is pre-sliced to the suffix rows here (the reuse decision is
        replicated from ``stream_generate`` and checked against its ``cached_tokens`` afterwards),
        and the prefill runs in one piece (its chunked prefill slices the mask again by offset).
        """
        from mlx_vlm.generate.dispatch import _prefix_cache_trim_amount

        if st.pixels is None:
            emb = self.model.get_input_embeddings(kw["input_ids"], kw.get("pixel_values"), mask=kw.get("mask"),
                                                  **{k: v for k, v in kw.items()
                                                     if k in ("aspect_ratio_ids", "aspect_ratio_mask")})
            st.pixels = {"cross_attention_states": emb.cross_attention_states}
        states = st.pixels["cross_attention_states"]
        kw["cached_image_features"] = states
        kw["cross_attention_states"] = states
        cache = st.cache
        if cache.cache is None:
            return 0
        ids = kw["input_ids"].flatten().tolist()
        prefix = cache.find_prefix_length(ids)
        if not (0 < prefix < len(ids)) or _prefix_cache_trim_amount(cache.cache, prefix) is None:
            return 0
        if kw.get("cross_attention_mask") is not None:
            kw["cross_attention_mask"] = kw["cross_attention_mask"][:, prefix:]
        return prefix

    def ask(self, asks: Sequence[Ask]) -> list[Answer]:
        """Answer each ask in order (batch size 1: the greedy reference). The caches of every image in
        the call are kept, so a strategy's next step over the same batch re-uses them all."""
        protect = frozenset(a.image_key for a in asks)
        return [self._ask_one(a, protect) for a in asks]

    def release(self, image_key: str) -> None:
        if self._states.pop(image_key, None) is not None:
            import mlx.core as mx

            mx.clear_cache()
