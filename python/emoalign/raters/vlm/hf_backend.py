"""transformers + torch backend (CPU / CUDA) for any image-text-to-text model (Gemma3, Mllama, ...).

Two paths give the same greedy answers:

* reference (``fast=False``): the paper's protocol — one ``generate`` call per step, batch 1, greedy;
  the image is re-encoded and the whole prompt re-prefilled every step.
* fast (``fast=True``, default): the image and the chat prefix up to the image are encoded once per
  image into a ``DynamicCache`` (for a batch of images in one forward pass when their prefixes have
  the same length), which each step deep-copies and extends with only its own text tokens
  (``attention_mask`` covering prefix + step, Mllama's ``cross_attention_mask`` sliced to the new
  tokens; Gemma3's ``token_type_ids`` only in the prefix pass, as ``generate`` does). The answer-position
  logits of that single forward give the candidate probabilities and the first greedy token; decoding
  then continues greedily on the cache — one extra one-token pass confirms a single-token answer
  (e.g. a rating) by its end-of-turn token, longer answers continue like ``generate``.

Candidate probabilities follow the rule shared by every backend (``answer_probs``): at the answer
position (the first generated token that starts a candidate, after any reasoning trace; the first
token if none does) the probabilities of all vocabulary tokens voting for exactly one candidate are
summed per candidate and renormalised; ``candidate_mass`` is their total before renormalising.

Reference for rating-by-probabilities: Liu et al. (2023), G-Eval, EMNLP (probability-weighted scores).
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Sequence

from emoalign.errors import EmoalignError
from emoalign.raters.vlm.answer_probs import answer_position, renormalise, vocab_votes
from emoalign.raters.vlm.backend import Answer, Ask

_DTYPES = ("auto", "float32", "float16", "bfloat16")


@dataclass
class _Prefix:
    ids: "object"          # 1-D LongTensor of the prefix tokens
    cache: "object"        # DynamicCache after the prefix (batch 1)
    digest: str = ""       # hash of the image pixels: a key reused for another image never hits a stale cache


def _resolve_device(device: str) -> str:
    from emoalign.raters.device import resolve_device

    return resolve_device(device, prefer_mps=False)


class HFBackend:
    """A transformers model loaded from a hub id or a local directory.

    Parameters: ``model`` hub id or path; ``dtype`` one of auto/float32/float16/bfloat16 (auto: bfloat16 on
    CUDA, float32 on CPU); ``device`` auto/cpu/cuda/cuda:N; ``fast`` prefix-cache path (False: reference);
    ``revision`` hub revision; ``max_prefix_images`` how many image prefixes to keep before evicting.
    Offline use: set ``HF_HUB_OFFLINE=1`` (files then come from the local cache or directory only).
    """

    name = "hf"

    def __init__(self, model: str, *, dtype: str = "auto", device: str = "auto", fast: bool = True,
                 revision: str | None = None, trust_remote_code: bool = False, max_prefix_images: int = 64, **_):
        try:
            import torch
            import transformers
            from transformers import AutoModelForImageTextToText, AutoProcessor
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmoalignError("the hf backend needs torch and transformers",
                                hint="pip install 'emoalign[hf]' (torch, transformers)") from exc
        if dtype not in _DTYPES:
            raise EmoalignError(f"unknown dtype {dtype!r}", hint=f"choose one of: {', '.join(_DTYPES)}")
        self.model_id = str(model)
        self.device = _resolve_device(device)
        if dtype == "auto":
            dtype = "bfloat16" if self.device.startswith("cuda") else "float32"
        self.dtype_name = dtype
        self.torch_dtype = getattr(torch, dtype)
        self.fast = bool(fast)
        self.revision = revision
        if self.model_id.startswith(("/", "./", "../", "~")) and not os.path.isdir(os.path.expanduser(self.model_id)):
            raise EmoalignError(f"model directory {self.model_id} does not exist",
                                hint="pass an existing local model directory or a Hugging Face id such as google/gemma-3-4b-it")
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
        kw = dict(revision=revision, trust_remote_code=trust_remote_code, local_files_only=offline)
        try:
            self.processor = AutoProcessor.from_pretrained(self.model_id, **kw)
            self.model = AutoModelForImageTextToText.from_pretrained(self.model_id, dtype=self.torch_dtype, **kw)
        except (OSError, ValueError) as exc:
            raise EmoalignError(f"cannot load model {self.model_id!r} with transformers: {exc}",
                                hint="pass a local model directory or a Hugging Face id (set HF_HUB_OFFLINE=1 to use only local files)") from exc
        self.model.to(self.device).eval()
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        gen = self.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos])
        self.pad_id = gen.pad_token_id if gen.pad_token_id is not None else self.tokenizer.pad_token_id
        cfg = self.model.config
        self.model_type = getattr(cfg, "model_type", "")
        self._image_marker_ids = {i for i in (getattr(cfg, "eoi_token_index", None), getattr(cfg, "image_token_index", None),
                                              getattr(cfg, "image_token_id", None)) if i is not None}
        self._prefixes: dict[str, _Prefix] = {}
        self._votes: dict[tuple, tuple] = {}
        self._vocab_texts: list[str] | None = None
        self._max_prefixes = max_prefix_images
        self._versions = {"transformers": transformers.__version__, "torch": torch.__version__}
        self.last_batch_size = 1

    # ----------------------------------------------------------------- interface
    def provenance(self) -> dict:
        cfg = self.model.config
        q = getattr(cfg, "quantization_config", None)
        revision = self.revision or getattr(cfg, "_commit_hash", None)
        if revision is None and os.path.isdir(self.model_id):
            revision = "local:" + _dir_digest(self.model_id)
        return {"backend": "hf", "model_id": self.model_id, "model_revision": revision, "dtype": self.dtype_name,
                "quantization": (q.get("quant_method") if isinstance(q, dict) else getattr(q, "quant_method", None)) if q else "none",
                "device": self.device, "fast": self.fast, "versions": dict(self._versions)}

    def ask(self, asks: Sequence[Ask]) -> list[Answer]:
        import torch

        with torch.inference_mode():
            if not self.fast:
                return [self._reference(a) for a in asks]
            encoded = [self._encode(a) for a in asks]
            self._ensure_prefixes(asks, encoded)
            plens = {self._prefixes[a.image_key].ids.shape[0] for a in asks}
            if len(asks) > 1 and len(plens) == 1 and len({a.max_new_tokens for a in asks}) == 1:
                return self._fast_batch(asks, encoded)
            return [self._fast(a, enc) for a, enc in zip(asks, encoded)]

    def release(self, image_key: str) -> None:
        self._prefixes.pop(image_key, None)

    # ----------------------------------------------------------------- helpers
    def _encode(self, ask: Ask) -> dict:
        msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": ask.prompt}]}]
        text = self.processor.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)
        image = ask.image.convert("RGB") if ask.image.mode != "RGB" else ask.image
        images = [[image]] if self.model_type == "mllama" else [image]
        inputs = self.processor(text=[text], images=images, return_tensors="pt", add_special_tokens=False)
        out = {}
        for k, v in inputs.items():
            if hasattr(v, "to"):
                v = v.to(self.device)
                if v.is_floating_point():
                    v = v.to(self.torch_dtype)
            out[k] = v
        return out

    def _vote_index(self, candidates: tuple[str, ...]):
        """(token ids, candidate index per id) of the vocabulary tokens voting for exactly one candidate
        (the shared rule of ``answer_probs``, identical to the mlx and openai backends)."""
        import numpy as np

        if candidates not in self._votes:
            if self._vocab_texts is None:
                n = len(self.tokenizer)
                self._vocab_texts = self.tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False)
            votes = vocab_votes(self._vocab_texts, candidates)
            ids = np.array([t for j in range(len(candidates)) for t in votes[j]], dtype=np.int64)
            seg = np.array([j for j in range(len(candidates)) for _ in votes[j]], dtype=np.int64)
            self._votes[candidates] = (ids, seg)
        return self._votes[candidates]

    def _step_masses(self, logits, candidates: tuple[str, ...]):
        """Per-candidate summed probability (float64 softmax over the vocabulary) at one decoding step."""
        import numpy as np
        import torch

        ids, seg = self._vote_index(candidates)
        p = torch.softmax(logits.double(), dim=-1).cpu().numpy()
        n = min(len(p), len(self._vocab_texts))
        keep = ids < n
        return np.bincount(seg[keep], weights=p[ids[keep]], minlength=len(candidates))

    def _candidate_probs(self, candidates, masses: list, new_ids: list[int]):
        """(probs, mass, info) at the answer position: the first generated token starting a candidate."""
        if not candidates or not masses:
            return None, None, {}
        texts = [self.tokenizer.decode([t]) for t in new_ids]
        pos = answer_position(texts, candidates)
        probs, mass = renormalise(candidates, masses[pos if pos is not None else 0].tolist())
        return probs, mass, {"answer_position": pos}

    def _decode(self, ids: list[int]) -> str:
        while ids and ids[-1] in self.eos_ids:
            ids = ids[:-1]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _reference(self, ask: Ask) -> Answer:
        enc = self._encode(ask)
        n_in = enc["input_ids"].shape[1]
        out = self.model.generate(**enc, max_new_tokens=ask.max_new_tokens, do_sample=False, num_beams=1,
                                  temperature=None, top_p=None, top_k=None, output_logits=True,
                                  return_dict_in_generate=True, pad_token_id=self.pad_id)
        new = out.sequences[0, n_in:].tolist()
        masses = [self._step_masses(lg[0], ask.candidates) for lg in out.logits] if ask.candidates else []
        probs, mass, info = self._candidate_probs(ask.candidates, masses, new)
        info.update(path="reference", new_tokens=len(new), token_ids=new, batch_size=1)
        return Answer(text=self._decode(new), probs=probs, candidate_mass=mass, info=info)

    def _prefix_len(self, ids) -> int:
        pos = [i for i, t in enumerate(ids.tolist()) if t in self._image_marker_ids]
        if not pos:
            raise RuntimeError("the encoded prompt holds no image token; cannot cache an image prefix")
        return pos[-1] + 1

    def _prefix_inputs(self, enc: dict, plen: int) -> dict:
        kw = {"input_ids": enc["input_ids"][:, :plen], "attention_mask": enc["attention_mask"][:, :plen]}
        for k in ("pixel_values", "aspect_ratio_ids", "aspect_ratio_mask", "image_sizes"):
            if k in enc:
                kw[k] = enc[k]
        if "token_type_ids" in enc:
            kw["token_type_ids"] = enc["token_type_ids"][:, :plen]
        if "cross_attention_mask" in enc:
            kw["cross_attention_mask"] = enc["cross_attention_mask"][:, :plen]
        return kw

    def _ensure_prefixes(self, asks: Sequence[Ask], encoded: list[dict]) -> None:
        """Encode the image prefix of every image in the batch that has none cached, batching images whose
        prefixes have equal length into one forward pass."""
        import torch
        from transformers import DynamicCache

        todo: dict[str, tuple[dict, int]] = {}
        digests: dict[str, str] = {}
        for a, enc in zip(asks, encoded):
            ids = enc["input_ids"][0]
            plen = self._prefix_len(ids)
            digest = digests.setdefault(a.image_key, _image_digest(a.image))
            have = self._prefixes.get(a.image_key)
            if (have is not None and have.digest == digest and have.ids.shape[0] == plen
                    and torch.equal(have.ids, ids[:plen])):
                continue
            todo.setdefault(a.image_key, (enc, plen))
        groups: dict[tuple, list[str]] = {}
        for key, (enc, plen) in todo.items():
            sig = (plen,) + tuple((k, tuple(v.shape)) for k, v in sorted(self._prefix_inputs(enc, plen).items()))
            groups.setdefault(sig, []).append(key)
        if groups:
            self.last_batch_size = max(len(g) for g in groups.values())
        for keys in groups.values():
            parts = [self._prefix_inputs(*todo[k]) for k in keys]
            batch = {k: torch.cat([p[k] for p in parts], dim=0) for k in parts[0]}
            cache = DynamicCache(config=self.model.config)
            self.model(**batch, past_key_values=cache, use_cache=True, logits_to_keep=1)
            for i, key in enumerate(keys):
                one = copy.deepcopy(cache) if len(keys) > 1 else cache
                if len(keys) > 1:
                    one.batch_select_indices(torch.tensor([i], device=self.device))
                self._prefixes[key] = _Prefix(ids=batch["input_ids"][i].clone(), cache=one, digest=digests[key])
        while len(self._prefixes) > self._max_prefixes:
            self._prefixes.pop(next(iter(self._prefixes)))

    def _fast(self, ask: Ask, enc: dict) -> Answer:
        import torch

        prefix = self._prefixes[ask.image_key]
        plen = prefix.ids.shape[0]
        ids = enc["input_ids"]
        cache = copy.deepcopy(prefix.cache)
        total = ids.shape[1]
        kw = {}
        cam = enc.get("cross_attention_mask")
        if cam is not None:
            kw["cross_attention_mask"] = cam[:, plen:]
        out = self.model(input_ids=ids[:, plen:], attention_mask=torch.ones((1, total), dtype=torch.long, device=self.device),
                         past_key_values=cache, use_cache=True, logits_to_keep=1, **kw)
        logits = out.logits[0, -1]
        new: list[int] = []
        masses = []
        for step in range(ask.max_new_tokens):
            if ask.candidates:
                masses.append(self._step_masses(logits, ask.candidates))
            tok = int(torch.argmax(logits))
            new.append(tok)
            if tok in self.eos_ids or step == ask.max_new_tokens - 1:
                break
            total += 1
            if cam is not None:
                kw["cross_attention_mask"] = cam[:, -1:]
            out = self.model(input_ids=torch.tensor([[tok]], device=self.device),
                             attention_mask=torch.ones((1, total), dtype=torch.long, device=self.device),
                             past_key_values=cache, use_cache=True, logits_to_keep=1, **kw)
            logits = out.logits[0, -1]
        probs, mass, info = self._candidate_probs(ask.candidates, masses, new)
        info.update(path="fast", new_tokens=len(new), token_ids=new, batch_size=self.last_batch_size,
                    single_token=len([t for t in new if t not in self.eos_ids]) == 1)
        return Answer(text=self._decode(new), probs=probs, candidate_mass=mass, info=info)


    def _stack_caches(self, caches):
        """One batched cache from per-image caches of equal length (concatenated along the batch axis)."""
        import torch

        out = copy.deepcopy(caches[0])
        for j, layer in enumerate(out.layers):
            if getattr(layer, "keys", None) is None or layer.keys.numel() == 0:
                continue
            layer.keys = torch.cat([c.layers[j].keys for c in caches], dim=0)
            layer.values = torch.cat([c.layers[j].values for c in caches], dim=0)
        return out

    def _fast_batch(self, asks: Sequence[Ask], encs: list[dict]) -> list[Answer]:
        """The fast path for several images at once: their cached prefixes stacked into one batched cache,
        the steps' own tokens left-padded *between* prefix and step (masked out, with explicit position
        ids so every image sees exactly the positions of its batch-1 run), then batched greedy decoding."""
        import torch

        B = len(asks)
        plen = self._prefixes[asks[0].image_key].ids.shape[0]
        sufs = [enc["input_ids"][0, plen:] for enc in encs]
        L = max(len(x) for x in sufs)
        dev = self.device
        pad = self.pad_id if self.pad_id is not None else 0
        ids = torch.full((B, L), pad, dtype=torch.long, device=dev)
        attn = torch.zeros((B, plen + L), dtype=torch.long, device=dev)
        attn[:, :plen] = 1
        pos = torch.full((B, L), plen, dtype=torch.long, device=dev)
        cams = []
        for i, (suf, enc) in enumerate(zip(sufs, encs)):
            n = len(suf)
            ids[i, L - n:] = suf
            attn[i, plen + L - n:] = 1
            pos[i, L - n:] = torch.arange(plen, plen + n, device=dev)
            cam = enc.get("cross_attention_mask")
            if cam is not None:
                c = torch.zeros((1, L) + tuple(cam.shape[2:]), dtype=cam.dtype, device=dev)
                c[:, L - n:] = cam[:, plen:]
                cams.append(c)
        kw = {"cross_attention_mask": torch.cat(cams, 0)} if cams else {}
        last_cam = torch.cat([enc["cross_attention_mask"][:, -1:] for enc in encs], 0) if cams else None
        cache = self._stack_caches([copy.deepcopy(self._prefixes[a.image_key].cache) for a in asks])
        out = self.model(input_ids=ids, attention_mask=attn, position_ids=pos, past_key_values=cache, use_cache=True,
                         logits_to_keep=1, **kw)
        logits = out.logits[:, -1]
        next_pos = pos[:, -1:] + 1
        max_new = asks[0].max_new_tokens
        new: list[list[int]] = [[] for _ in range(B)]
        masses: list[list] = [[] for _ in range(B)]
        done = [False] * B
        for step in range(max_new):
            toks = torch.argmax(logits, dim=-1)
            for i in range(B):
                if done[i]:
                    continue
                if asks[i].candidates:
                    masses[i].append(self._step_masses(logits[i], asks[i].candidates))
                t = int(toks[i])
                new[i].append(t)
                if t in self.eos_ids:
                    done[i] = True
            if all(done) or step == max_new - 1:
                break
            feed = torch.tensor([[pad if done[i] else new[i][-1]] for i in range(B)], device=dev)
            attn = torch.cat([attn, torch.ones((B, 1), dtype=torch.long, device=dev)], dim=1)
            if last_cam is not None:
                kw["cross_attention_mask"] = last_cam
            out = self.model(input_ids=feed, attention_mask=attn, position_ids=next_pos, past_key_values=cache,
                             use_cache=True, logits_to_keep=1, **kw)
            logits = out.logits[:, -1]
            next_pos = next_pos + 1
        answers = []
        for i, a in enumerate(asks):
            probs, mass, info = self._candidate_probs(a.candidates, masses[i], new[i])
            info.update(path="fast", new_tokens=len(new[i]), token_ids=new[i], batch_size=B,
                        single_token=len([t for t in new[i] if t not in self.eos_ids]) == 1)
            answers.append(Answer(text=self._decode(new[i]), probs=probs, candidate_mass=mass, info=info))
        self.last_batch_size = B
        return answers


def _image_digest(image) -> str:
    import hashlib

    h = hashlib.blake2b(digest_size=12)
    h.update(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def _dir_digest(path: str) -> str:
    """Short digest of a local model directory's config + weight file names and sizes."""
    import hashlib
    from pathlib import Path

    h = hashlib.sha256()
    for p in sorted(Path(path).glob("*")):
        if p.is_file() and (p.suffix in {".json", ".safetensors", ".bin"}):
            h.update(p.name.encode())
            h.update(str(p.stat().st_size).encode())
            if p.suffix == ".json" and p.stat().st_size < 1_000_000:
                h.update(p.read_bytes())
    return h.hexdigest()[:12]
