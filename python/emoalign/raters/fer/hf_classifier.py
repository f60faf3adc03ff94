"""Hugging Face image classifiers as FER raters (``fer:hf:<hub id or local dir>``).

Any checkpoint that ``transformers.AutoModelForImageClassification`` loads — the MobileViT, BEiT, ViT,
EfficientNet, ConvNeXt... families, covering the paper's MobileViT and BEiT baselines — with its own
image processor (``AutoImageProcessor``: resize/crop/normalise as trained). Classes come from
``config.id2label`` in index order and go through the study label map (``labels.py``).

Checkpoints whose head also regresses valence/arousal (multi-task heads with K classes + 2 outputs)
are supported with ``valence_index`` / ``arousal_index``: those logit columns are taken as native VA
(range ``va_range``, default [-1, 1]) and excluded from the softmax.

Hub ids download on first use (not possible offline); a local directory never downloads.
``trust_remote_code`` is passed to transformers for checkpoints that ship their own model code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from emoalign.errors import EmoalignError
from emoalign.raters.fer import fer_model
from emoalign.raters.fer.base import FERAdapter, parse_model_output


def _slug_name(model_id: str) -> str:
    return Path(str(model_id).rstrip("/")).name.lower() or "hf"


class HFClassifierAdapter(FERAdapter):
    """A transformers image classifier; ``model`` and ``processor`` may be passed pre-loaded (tests)."""

    def __init__(self, model_id: str, *, device: str = "cpu", revision: str | None = None,
                 trust_remote_code: bool = False, valence_index: int | None = None, arousal_index: int | None = None,
                 va_range: Sequence[float] = (-1.0, 1.0), dtype: str = "float32", model=None, processor=None):
        import torch

        try:
            from transformers import AutoImageProcessor, AutoModelForImageClassification
        except ImportError as exc:
            raise EmoalignError("fer:hf needs transformers", hint="pip install 'emoalign[fer]'") from exc
        self.model_id = str(model_id)
        self.device = device
        self.dtype = dtype
        local = Path(self.model_id).expanduser()
        source = str(local) if local.exists() else self.model_id
        if local.is_dir() and model is None and not (local / "config.json").is_file():
            raise EmoalignError(f"fer:hf could not load {local}: the directory has no config.json",
                                hint="save the checkpoint with model.save_pretrained(dir) and "
                                     "processor.save_pretrained(dir), or pass a hub id")
        kw = {"revision": revision, "trust_remote_code": trust_remote_code}
        try:
            if model is None:
                extra = {} if dtype == "float32" else {"dtype": getattr(torch, dtype)}
                model = AutoModelForImageClassification.from_pretrained(source, **kw, **extra)
            if processor is None:
                processor = AutoImageProcessor.from_pretrained(source, **kw)
        except OSError as exc:
            where = "local directory" if local.exists() else "Hugging Face hub id"
            raise EmoalignError(
                f"fer:hf could not load {self.model_id!r} ({where}): {exc}",
                hint="pass a local directory holding config.json, the weights and preprocessor_config.json, "
                     "or a hub id on a machine with network access",
            ) from exc
        except ValueError as exc:
            raise EmoalignError(f"fer:hf: {self.model_id!r} is not an image classifier transformers can load: {exc}",
                                hint="use a checkpoint with an *ForImageClassification architecture, "
                                     "or wrap the model with fer:plugin") from exc
        self.model = model.to(device).eval()
        self.processor = processor
        id2label = {int(k): str(v) for k, v in model.config.id2label.items()}
        n_out = model.config.num_labels
        va_cols = {i % n_out for i in (valence_index, arousal_index) if i is not None}
        self.classes = tuple(id2label[i] for i in range(n_out) if i not in va_cols)
        self.valence_index, self.arousal_index = valence_index, arousal_index
        self.has_va = bool(va_cols)
        self.va_range = (float(va_range[0]), float(va_range[1]))
        self.revision = revision or getattr(model.config, "_commit_hash", None)
        self.default_name = _slug_name(self.model_id)

    def preprocess(self, images):
        return self.processor(images=list(images), return_tensors="pt")["pixel_values"].to(self.device,
                                                                                            dtype=self.model.dtype)

    def forward(self, batch):
        out = self.model(pixel_values=batch)
        return parse_model_output(out.logits, len(self.classes), valence_index=self.valence_index,
                                  arousal_index=self.arousal_index)

    def provenance(self):
        return {"model_revision": self.revision, "architecture": type(self.model).__name__,
                "preprocessing": _processor_config(self.processor),
                "valence_index": self.valence_index, "arousal_index": self.arousal_index}


def _processor_config(processor) -> dict:
    try:
        return {"class": type(processor).__name__, **json.loads(processor.to_json_string())}
    except Exception:  # a custom processor without a JSON form
        return {"class": type(processor).__name__}


@fer_model("hf", arg="model_id",
           description="Hugging Face image classifier via transformers (MobileViT, BEiT, ViT, EfficientNet...): "
                       "fer:hf:<hub id or dir>")
def build_adapter(*, model_id: str | None = None, device: str = "cpu", trust_remote_code: bool = False,
                  **options) -> HFClassifierAdapter:
    if not model_id:
        raise EmoalignError("fer:hf needs a model: fer:hf:<hub id or local directory>",
                            hint="e.g. --rater fer:hf:./models/mobilevit-fer or model_id: org/name in the spec")
    allowed = {"revision", "valence_index", "arousal_index", "va_range", "dtype", "model", "processor"}
    unknown = set(options) - allowed
    if unknown:
        raise EmoalignError(f"fer:hf got unknown option(s) {', '.join(sorted(unknown))}",
                            hint=f"its options are: model_id, {', '.join(sorted(allowed - {'model', 'processor'}))}")
    return HFClassifierAdapter(model_id, device=device, trust_remote_code=trust_remote_code, **options)
