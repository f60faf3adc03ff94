"""transformers + torch backend (CPU / CUDA) for image-text-to-text models (Gemma3, Mllama, ...).

Meant for the full-precision releases (``google/gemma-3-4b-it``, ``meta-llama/Llama-3.2-11B-Vision-Instruct``)
on a GPU, or a local copy of them. Two paths give the same greedy answers:

* reference (``fast=False``): the paper's protocol — one ``generate`` call per step, batch 1, greedy;
  the image is re-encoded and the whole prompt re-prefilled every step.
* fast (``fast=True``, default): the chat prefix up to and including the image is encoded once per image
  into a ``DynamicCache`` (images whose prefixes have equal length in one forward pass); each step
  stacks it with the batch's other images and feeds only its own tokens, for all images of a batch whose step
  prompts have the same length at once. The answer is then drafted in the expected format (the candidate forms
  starting with the first greedy token, then end of turn) and verified in one pass that also scores the
  candidate forms off the greedy path (``draft``); answers that leave the draft continue greedily, in lockstep.
  Mllama's ``cross_attention_mask`` is given at full length; Gemma3's ``token_type_ids`` go only into the
  prefix pass, as ``generate`` does.

Batch invariance: rows of a batch are never padded. Padding between the shared prefix and a step's tokens
changes which cache slots the step occupies, and sliding-window (local) attention layers — every Gemma3 layer
but each sixth — choose their window by cache slot, so a padded row saw different prefix tokens than its
batch-1 run (up to 0.011 in candidate probabilities on a real-tokenizer Gemma3 whose window is shorter than
the prompt). Steps of different lengths therefore run as separate groups; "batch N == batch 1" is tested.
(The verify pass pads its rows only after their last token, where no earlier position looks.)

Prompts come from ``inputs``: the model's own chat template, the image placed per ``image_placement``, no
special tokens added to a template that already starts with BOS, the image preprocessed once per image.
Candidate probabilities follow ``answer_probs`` (full token sequences at the answer position); contexts off
the greedy path are scored by the verify pass, else by extra forward passes (on row selections of the step's
cache on the fast path, as full forward passes on the reference path); log-probabilities are normalised on the
device and only the candidates' columns are copied to the CPU.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Sequence

from emoalign.errors import EmoalignError
from emoalign.raters.vlm.answer_probs import CandidateForms, score_answer
from emoalign.raters.vlm.backend import Answer, Ask
from emoalign.raters.vlm.backends import vlm_backend
from emoalign.raters.vlm.draft import draft_counts, draft_rows, fed_prefixes, lookup, walk
from emoalign.raters.vlm.inputs import (ImageProcessorMemo, add_special_tokens_for, image_digest, render_chat,
                                        resolve_placement)
from emoalign.raters.vlm.revision import hub_snapshot_commit, local_revision

_DTYPES = ("auto", "float32", "float16", "bfloat16")
OPTIONS = ("dtype", "device", "fast", "revision", "trust_remote_code", "max_prefix_images", "image_placement",
           "cache_dir")


@dataclass
class _Prefix:
    ids: "object"          # 1-D LongTensor of the prefix tokens
    cache: "object"        # DynamicCache after the prefix (batch 1)
    digest: str = ""       # hash of the image pixels: a key reused for another image never hits a stale cache


def _resolve_device(device: str) -> str:
    from emoalign.raters.device import resolve_device

    return resolve_device(device, prefer_mps=False)


def _load_processor(model_id: str, model_type: str, **kw):
    """The model's transformers processor. Resolved by model type from transformers' own mapping rather than
    through ``AutoProcessor``, which mlx-vlm replaces process-wide for gemma3/mllama once it is imported
    (its processors carry no chat template and tokenise differently)."""
    import transformers
    from transformers import AutoProcessor

    try:
        from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES
        name = PROCESSOR_MAPPING_NAMES.get(model_type)
    except ImportError:  # pragma: no cover - older layouts
        name = None
    cls = getattr(transformers, name, None) if isinstance(name, str) else None
    return (cls or AutoProcessor).from_pretrained(model_id, **kw)


@vlm_backend("hf", description="transformers + torch on CPU or CUDA (full-precision releases)",
             install="pip install 'emoalign[hf]' (torch, transformers)", hub_model=True)
class HFBackend:
    """A transformers model loaded from a hub id or a local directory.

    Options: ``dtype`` auto/float32/float16/bfloat16 (auto: bfloat16 on CUDA, float32 on CPU); ``device``
    auto/cpu/cuda/cuda:N; ``fast`` prefix-cache path (False: reference); ``revision`` hub branch, tag or commit
    (the resolved commit is recorded); ``image_placement`` model/before/after (``inputs``); ``max_prefix_images``
    image prefixes kept before evicting; ``cache_dir`` hub cache folder; ``trust_remote_code``. Any other option
    is an error. Offline use: set ``HF_HUB_OFFLINE=1`` (files then come from the local cache or directory only).
    """

    name = "hf"

    def __init__(self, model: str, *, dtype: str = "auto", device: str = "auto", fast: bool = True,
                 revision: str | None = None, trust_remote_code: bool = False, max_prefix_images: int = 64,
                 image_placement: str = "model", cache_dir: str | None = None, **opts):
        if opts:
            raise EmoalignError(f"hf backend: unknown option(s) {', '.join(sorted(opts))}",
                                hint="options: " + ", ".join(OPTIONS))
        try:
            import torch
            import transformers
            from transformers import AutoConfig, AutoModelForImageTextToText
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise EmoalignError("the hf backend needs torch and transformers",
                                hint="pip install 'emoalign[hf]' (torch, transformers)") from exc
        resolve_placement(image_placement, None)      # a bad value fails before the model loads
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
        self.cache_dir = cache_dir
        self.local_dir = os.path.isdir(os.path.expanduser(self.model_id))
        if self.model_id.startswith(("/", "./", "../", "~")) and not self.local_dir:
            raise EmoalignError(f"model directory {self.model_id} does not exist",
                                hint="pass an existing local model directory or a Hugging Face id such as google/gemma-3-4b-it")
        offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
        kw = dict(revision=revision, trust_remote_code=trust_remote_code, local_files_only=offline, cache_dir=cache_dir)
        try:
            config = AutoConfig.from_pretrained(self.model_id, **kw)
            self.processor = _load_processor(self.model_id, getattr(config, "model_type", ""), **kw)
            self.model = AutoModelForImageTextToText.from_pretrained(self.model_id, dtype=self.torch_dtype, **kw)
        except (OSError, ValueError) as exc:
            raise EmoalignError(f"cannot load model {self.model_id!r} with transformers: {exc}",
                                hint="pass a local model directory or a Hugging Face id (set HF_HUB_OFFLINE=1 to use only local files)") from exc
        self.model.to(self.device).eval()
        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        cfg = self.model.config
        self.model_type = getattr(cfg, "model_type", "")
        self.image_placement = resolve_placement(image_placement, self.model_type)
        self.image_memo = ImageProcessorMemo.install(self.processor)
        gen = self.model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else self.tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos])
        self.pad_id = gen.pad_token_id if gen.pad_token_id is not None else self.tokenizer.pad_token_id
        self._image_marker_ids = {i for i in (getattr(cfg, "eoi_token_index", None), getattr(cfg, "image_token_index", None),
                                              getattr(cfg, "image_token_id", None)) if i is not None}
        self._prefixes: dict[str, _Prefix] = {}
        self._digests: dict[str, str] = {}
        self._forms: dict[tuple, CandidateForms] = {}
        self._max_prefixes = max_prefix_images
        #: answer steps with a format draft verified in one pass (``draft``); False: plain greedy decoding, for
        #: benchmarks that measure what the draft buys (both give the greedy answers)
        self.draft = True
        self._versions = {"transformers": transformers.__version__, "torch": torch.__version__}
        self.last_batch_size = 1
        #: images per batch when the user gives none: batched answers equal batch-1 answers (tested), so batch
        #: on the fast path (8 on a GPU, 4 on CPU); the reference path is batch 1 whatever the batch size
        self.default_batch_size = (8 if self.device.startswith("cuda") else 4) if self.fast else 1

    # ----------------------------------------------------------------- interface
    def provenance(self) -> dict:
        cfg = self.model.config
        q = getattr(cfg, "quantization_config", None)
        if self.local_dir:
            revision = local_revision(os.path.expanduser(self.model_id))
        else:
            revision = self._hub_commit() or getattr(cfg, "_commit_hash", None) or self.revision
        return {"backend": "hf", "model_id": self.model_id, "model_revision": revision,
                "requested_revision": self.revision, "model_type": self.model_type, "dtype": self.dtype_name,
                "quantization": (q.get("quant_method") if isinstance(q, dict) else getattr(q, "quant_method", None)) if q else "none",
                "device": self.device, "fast": self.fast, "image_placement": self.image_placement,
                "answer_probs": "sequence", "versions": dict(self._versions)}

    def _hub_commit(self) -> str | None:
        """The commit the requested revision resolved to: the hub-cache snapshot holding the loaded config."""
        from transformers.utils import cached_file

        try:
            path = cached_file(self.model_id, "config.json", revision=self.revision, cache_dir=self.cache_dir,
                               local_files_only=True)
        except (OSError, ValueError):
            return None
        return hub_snapshot_commit(path) if path else None

    def ask(self, asks: Sequence[Ask]) -> list[Answer]:
        import torch

        with torch.inference_mode():
            if not self.fast:
                return [self._reference(a) for a in asks]
            encoded = [self._encode(a) for a in asks]
            self._ensure_prefixes(asks, encoded)
            groups: dict[tuple, list[int]] = {}
            for i, (a, enc) in enumerate(zip(asks, encoded)):
                plen = self._prefixes[a.image_key].ids.shape[0]
                groups.setdefault((plen, enc["input_ids"].shape[1], a.max_new_tokens), []).append(i)
            out: list[Answer | None] = [None] * len(asks)
            for idx in groups.values():
                for i, ans in zip(idx, self._fast_group([asks[i] for i in idx], [encoded[i] for i in idx])):
                    out[i] = ans
            self.last_batch_size = max(len(g) for g in groups.values())
            return out

    def release(self, image_key: str) -> None:
        self._prefixes.pop(image_key, None)
        digest = self._digests.pop(image_key, None)
        if digest is not None and self.image_memo is not None:
            self.image_memo.forget([digest])

    # ----------------------------------------------------------------- inputs
    def _encode(self, ask: Ask) -> dict:
        text = render_chat(self.processor, self.tokenizer, ask.prompt, self.image_placement)
        image = ask.image.convert("RGB") if ask.image.mode != "RGB" else ask.image
        digest, old = image_digest(image), self._digests.get(ask.image_key)
        if old is not None and old != digest and self.image_memo is not None:
            self.image_memo.forget([old])            # the key now names other pixels
        self._digests[ask.image_key] = digest
        images = [[image]] if self.model_type == "mllama" else [image]
        inputs = self.processor(text=[text], images=images, return_tensors="pt",
                                add_special_tokens=add_special_tokens_for(text, self.tokenizer))
        out = {}
        for k, v in inputs.items():
            if hasattr(v, "to"):
                v = v.to(self.device)
                if v.is_floating_point():
                    v = v.to(self.torch_dtype)
            out[k] = v
        return out

    def prompt_ids(self, ask: Ask) -> list[int]:
        """The token ids of ``ask``'s full prompt (for cross-backend checks)."""
        return self._encode(ask)["input_ids"][0].tolist()

    # ----------------------------------------------------------------- candidates
    def forms(self, candidates: tuple[str, ...]) -> CandidateForms:
        if candidates not in self._forms:
            self._forms[candidates] = CandidateForms.build(
                candidates, lambda s: self.tokenizer.encode(s, add_special_tokens=False))
        return self._forms[candidates]

    @staticmethod
    def _logprobs(logits):
        import torch

        return torch.log_softmax(logits.double(), dim=-1).cpu().numpy()

    def _decode(self, ids: list[int]) -> str:
        while ids and ids[-1] in self.eos_ids:
            ids = ids[:-1]
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _finish(self, ask: Ask, new: list[int], steps: list, probe, info: dict) -> Answer:
        """The Answer: text, answer position (``ask.locate`` on the decoded text), candidate probabilities from
        the greedy steps' distributions plus ``probe(position, contexts)`` for contexts off the greedy path."""
        text = self._decode(new)
        info.update(new_tokens=len(new), token_ids=new)
        if not ask.candidates or not steps:
            return Answer(text=text, info=info)
        probs, mass, pos, n_probes = score_answer(self.forms(tuple(ask.candidates)), new, self._decode, steps,
                                                  ask.locate, probe)
        info.update(answer_position=pos, probes=n_probes)
        return Answer(text=text, probs=probs, candidate_mass=mass, info=info)

    # ----------------------------------------------------------------- reference path
    def _reference(self, ask: Ask) -> Answer:
        enc = self._encode(ask)
        n_in = enc["input_ids"].shape[1]
        out = self.model.generate(**enc, max_new_tokens=ask.max_new_tokens, do_sample=False, num_beams=1,
                                  temperature=None, top_p=None, top_k=None, output_logits=True,
                                  return_dict_in_generate=True, pad_token_id=self.pad_id)
        new = out.sequences[0, n_in:].tolist()
        steps = []
        if ask.candidates:
            forms = self.forms(tuple(ask.candidates))
            steps = [forms.gather(self._logprobs(lg[0])) for lg in out.logits]
        return self._finish(ask, new, steps, lambda at, ctxs: self._probe_full(ask, enc, new, at, ctxs),
                            {"path": "reference", "batch_size": 1})

    def _probe_full(self, ask: Ask, enc: dict, new: list[int], at: int, contexts) -> dict:
        """Next-token distributions after prompt + new[:at] + context, each by a full forward pass."""
        import torch

        forms = self.forms(tuple(ask.candidates))
        out = {}
        for ctx in contexts:
            extra = torch.tensor([new[:at] + list(ctx)], dtype=torch.long, device=self.device)
            kw = dict(enc)
            kw["input_ids"] = torch.cat([enc["input_ids"], extra], dim=1)
            kw["attention_mask"] = torch.ones_like(kw["input_ids"])
            if "token_type_ids" in enc:
                kw["token_type_ids"] = torch.cat([enc["token_type_ids"], torch.zeros_like(extra)], dim=1)
            if "cross_attention_mask" in enc:
                cam = enc["cross_attention_mask"]
                kw["cross_attention_mask"] = torch.cat([cam, cam[:, -1:].repeat(1, extra.shape[1], 1, 1)], dim=1)
            logits = self.model(**kw, logits_to_keep=1).logits[0, -1]
            out[ctx] = forms.gather(self._logprobs(logits))
        return out

    # ----------------------------------------------------------------- fast path
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
        prefixes have equal length into one forward pass (no padding)."""
        import torch
        from transformers import DynamicCache

        todo: dict[str, tuple[dict, int]] = {}
        for a, enc in zip(asks, encoded):
            ids = enc["input_ids"][0]
            plen = self._prefix_len(ids)
            have = self._prefixes.get(a.image_key)
            if (have is not None and have.digest == self._digests[a.image_key] and have.ids.shape[0] == plen
                    and torch.equal(have.ids, ids[:plen])):
                continue
            todo.setdefault(a.image_key, (enc, plen))
        groups: dict[tuple, list[str]] = {}
        for key, (enc, plen) in todo.items():
            sig = (plen,) + tuple((k, tuple(v.shape)) for k, v in sorted(self._prefix_inputs(enc, plen).items()))
            groups.setdefault(sig, []).append(key)
        for keys in groups.values():
            parts = [self._prefix_inputs(*todo[k]) for k in keys]
            batch = {k: torch.cat([p[k] for p in parts], dim=0) for k in parts[0]}
            cache = DynamicCache(config=self.model.config)
            self.model(**batch, past_key_values=cache, use_cache=True, logits_to_keep=1)
            for i, key in enumerate(keys):
                one = copy.deepcopy(cache) if len(keys) > 1 else cache
                if len(keys) > 1:
                    one.batch_select_indices(torch.tensor([i], device=self.device))
                self._prefixes[key] = _Prefix(ids=batch["input_ids"][i].clone(), cache=one, digest=self._digests[key])
        while len(self._prefixes) > self._max_prefixes:
            self._prefixes.pop(next(iter(self._prefixes)))

    @staticmethod
    def _select_rows(cache, rows):
        """A cache holding batch rows ``rows`` of ``cache`` (a row may repeat) that shares nothing writable with it:
        shallow layer copies with fresh key/value tensors, so passes on the selection leave ``cache`` as it was
        (instead of a deep copy of the whole batch per use)."""
        import torch

        out = copy.copy(cache)
        out.layers = []
        for layer in cache.layers:
            one = copy.copy(layer)
            if getattr(layer, "keys", None) is not None and layer.keys.numel() > 0:
                idx = torch.as_tensor(list(rows), dtype=torch.long, device=layer.keys.device)
                one.keys = layer.keys.index_select(0, idx)
                one.values = layer.values.index_select(0, idx)
            out.layers.append(one)
        return out

    @staticmethod
    def _stack_caches(caches):
        """One batched cache from per-image caches of equal length (concatenated along the batch axis)."""
        import torch

        out = copy.copy(caches[0])
        out.layers = [copy.copy(layer) for layer in caches[0].layers]
        for j, layer in enumerate(out.layers):
            if getattr(layer, "keys", None) is None or layer.keys.numel() == 0:
                continue
            layer.keys = torch.cat([c.layers[j].keys for c in caches], dim=0)
            layer.values = torch.cat([c.layers[j].values for c in caches], dim=0)
        return out

    def _gathered(self, logits, forms: CandidateForms):
        """Log-probabilities at ``forms.ids`` for each row of ``logits`` (n x vocab), normalised on the device
        (float64 log-sum-exp): only the gathered columns are copied to the CPU."""
        import numpy as np
        import torch

        ids = torch.as_tensor(forms.ids, device=logits.device)
        ok = ids < logits.shape[-1]
        lse = torch.logsumexp(logits.double(), dim=-1, keepdim=True)
        out = logits[:, ids.clamp(max=logits.shape[-1] - 1)].double() - lse
        out = out.masked_fill(~ok, -np.inf)
        return out.cpu().numpy()

    def _step_cam(self, cam, i: int, n: int, extra: int):
        """Row ``i``'s full-length cross-attention mask repeated ``n`` times and extended by ``extra`` tokens."""
        import torch

        row = cam[i:i + 1]
        return torch.cat([row, row[:, -1:].repeat(1, extra, 1, 1)], dim=1).repeat(n, 1, 1, 1)

    def _fast_group(self, asks: Sequence[Ask], encs: list[dict]) -> list[Answer]:
        """The fast path for images whose prefixes and step prompts have equal lengths: their cached prefixes
        stacked into one batched cache and the step tokens fed at once (no padding anywhere, so each row sees
        exactly what its batch-1 run sees). Then, per ``draft``, the candidate forms starting with each row's
        first token and the scoring contexts in one verify pass; rows whose answer left the draft continue
        greedily. The step's cache is never written after its pass (later passes run on row selections), so it
        also serves the probes of contexts the verify pass did not cover."""
        import torch

        B = len(asks)
        dev = self.device
        plen = self._prefixes[asks[0].image_key].ids.shape[0]
        ids = torch.cat([enc["input_ids"][:, plen:] for enc in encs], dim=0)
        L = ids.shape[1]
        # Mllama: the full-length cross-attention mask on every cached call (transformers >= 5.18 slices it to the
        # new tokens itself, earlier 5.x index it by absolute position: the full mask is right for both)
        cam = torch.cat([enc["cross_attention_mask"] for enc in encs], 0) if "cross_attention_mask" in encs[0] else None
        kw = {"cross_attention_mask": cam} if cam is not None else {}
        cache = self._stack_caches([self._prefixes[a.image_key].cache for a in asks])
        attn = torch.ones((B, plen + L), dtype=torch.long, device=dev)
        logits = self.model(input_ids=ids, attention_mask=attn, past_key_values=cache, use_cache=True,
                            logits_to_keep=1, **kw).logits[:, -1]
        forms = [self.forms(tuple(a.candidates)) if a.candidates else None for a in asks]
        max_new = asks[0].max_new_tokens
        first = torch.argmax(logits, dim=-1).tolist()
        new: list[list[int]] = [[int(t)] for t in first]
        steps: list[list] = [[self._gathered(logits[i:i + 1], f)[0]] if f is not None else [] for i, f in enumerate(forms)]
        tables: list[dict] = [{} for _ in range(B)]
        drafts = {i: draft_rows(forms[i], new[i][0]) for i in range(B) if forms[i] is not None and self.draft}
        self._verify(cache, plen + L, cam, {i: r for i, r in drafts.items() if r}, new, steps, tables, forms, max_new)
        # greedy decoding for rows the draft did not finish, in lockstep per number of tokens so far
        todo: dict[int, list[int]] = {}
        for i in range(B):
            if new[i][-1] not in self.eos_ids and len(new[i]) < max_new:
                todo.setdefault(len(new[i]), []).append(i)
        for rows in todo.values():
            self._greedy(cache, plen + L, cam, rows, new, steps, forms, max_new)

        def probe(i):
            def run(at, ctxs):
                found, missing = lookup(tables[i], new[i][:at], ctxs)
                if missing:
                    found.update(self._probe_cached(cache, i, plen + L, new[i][:at], missing, forms[i],
                                                    cam[i:i + 1] if cam is not None else None))
                return found
            return run

        answers = []
        for i, a in enumerate(asks):
            info = {"path": "fast", "batch_size": B}
            if forms[i] is not None and self.draft:
                info["draft_accepted"], info["draft_proposed"] = draft_counts(forms[i], new[i], self.eos_ids, max_new)
            answers.append(self._finish(a, new[i], steps[i] if forms[i] is not None else [], probe(i), info))
        self.last_batch_size = B
        return answers

    def _verify(self, cache, length: int, cam, drafts: dict, new, steps, tables, forms, max_new: int) -> None:
        """One pass over every drafted row of every image (right-padded: later pad tokens change nothing before
        them under causal attention), then the greedy walk through each image's rows (``draft.walk``)."""
        import torch

        if not drafts:
            return
        owner, feed = [], []
        for i, rows in drafts.items():
            for row in rows:
                owner.append(i)
                feed.append(list(row))
        width = max(len(r) for r in feed)
        pad = self.pad_id if self.pad_id is not None else 0
        ids = torch.tensor([r + [pad] * (width - len(r)) for r in feed], dtype=torch.long, device=self.device)
        kw = {}
        if cam is not None:
            kw["cross_attention_mask"] = torch.cat([self._step_cam(cam, i, 1, width) for i in owner], dim=0)
        attn = torch.ones((len(feed), length + width), dtype=torch.long, device=self.device)
        logits = self.model(input_ids=ids, attention_mask=attn, past_key_values=self._select_rows(cache, owner),
                            use_cache=True, logits_to_keep=width, **kw).logits
        base = 0
        for i, rows in drafts.items():
            where = fed_prefixes(rows)
            keys = list(where)
            flat = torch.stack([logits[base + where[k][0], where[k][1]] for k in keys])
            greedy = torch.argmax(flat, dim=-1).tolist()
            dists = self._gathered(flat, forms[i])
            tables[i].update({k: d for k, d in zip(keys, dists)})
            nxt = {k: (g, d) for k, g, d in zip(keys, greedy, dists)}
            new[i], steps[i], _ = walk(new[i][0], steps[i][0], nxt.get, self.eos_ids, max_new)
            base += len(rows)

    def _greedy(self, cache, length: int, cam, rows: list[int], new, steps, forms, max_new: int) -> None:
        """Greedy decoding, in lockstep, of batch rows ``rows`` that hold equally many tokens so far, on a selection
        of the step's cache (the tokens so far are fed first: the last of them was never fed)."""
        import torch

        dev = self.device
        sub = self._select_rows(cache, rows)
        feed = torch.tensor([new[i] for i in rows], dtype=torch.long, device=dev)
        total = length
        done = [False] * len(rows)
        pad = self.pad_id if self.pad_id is not None else 0
        while True:
            total += feed.shape[1]
            kw = {}
            if cam is not None:
                kw["cross_attention_mask"] = torch.cat([self._step_cam(cam, i, 1, total - length) for i in rows], dim=0)
            attn = torch.ones((len(rows), total), dtype=torch.long, device=dev)
            logits = self.model(input_ids=feed, attention_mask=attn, past_key_values=sub, use_cache=True,
                                logits_to_keep=1, **kw).logits[:, -1]
            toks = torch.argmax(logits, dim=-1).tolist()
            for k, i in enumerate(rows):
                if done[k]:
                    continue
                if forms[i] is not None:
                    steps[i].append(self._gathered(logits[k:k + 1], forms[i])[0])
                new[i].append(int(toks[k]))
                done[k] = int(toks[k]) in self.eos_ids or len(new[i]) >= max_new
            if all(done):
                return
            feed = torch.tensor([[pad if done[k] else new[i][-1]] for k, i in enumerate(rows)], dtype=torch.long, device=dev)

    def _probe_cached(self, snapshot, row: int, length: int, before: list[int], contexts, forms: CandidateForms,
                      cam) -> dict:
        """Next-token distributions after (the row's prompt) + ``before`` + each context, on selections of the
        step's cache; contexts of equal length run as one batch. ``cam``: the row's full-length cross-attention
        mask after the step's prompt (Mllama)."""
        import torch

        by_len: dict[int, list] = {}
        for ctx in contexts:
            by_len.setdefault(len(ctx), []).append(ctx)
        out = {}
        for n, ctxs in by_len.items():
            cache = self._select_rows(snapshot, [row] * len(ctxs))
            ids = torch.tensor([before + list(c) for c in ctxs], dtype=torch.long, device=self.device)
            kw = {}
            if cam is not None:      # full length: the step's mask, then its last row for every token fed here
                kw["cross_attention_mask"] = self._step_cam(cam, 0, len(ctxs), ids.shape[1])
            attn = torch.ones((len(ctxs), length + ids.shape[1]), dtype=torch.long, device=self.device)
            logits = self.model(input_ids=ids, attention_mask=attn, past_key_values=cache, use_cache=True,
                                logits_to_keep=1, **kw).logits[:, -1]
            for c, d in zip(ctxs, self._gathered(logits, forms)):
                out[c] = d
        return out
