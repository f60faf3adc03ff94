"""The FER adapter interface and the rater that turns any adapter into a machine rater.

An adapter owns one model: its class names in output order, its preprocessing (resize / crop /
normalise as the model was trained) and its forward pass, returning class probabilities and, for
valence-arousal models, raw valence/arousal in the model's native range (default [-1, 1]).
``FERRater`` adds what every FER model shares: image loading and optional face cropping, batching,
the explicit label map to the study emotions (``labels.py``), VA scaling to the study scale, and the
machines-contract rows that ``emoalign.raters.runs.run_rater`` stores (resume, progress, error rows).

Rows carry ``emotion``, ``valence``/``arousal`` (study scale; missing for classification-only models),
``p_emotion_<study emotion>``, ``p_class_<model class>`` (raw model probabilities), ``unmapped_mass``,
``valence_native``/``arousal_native`` and provenance (``backend="fer"``, ``model_id``,
``model_revision``, ``dtype``, ``batch_size``, ``label_order``, ``versions``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from emoalign.errors import EmoalignError
from emoalign.raters.fer import images as _img
from emoalign.raters.fer import labels as _lab
from emoalign.raters.runs import StimulusItem


@dataclass
class FEROutput:
    """One batch's model output: class probabilities (N x C, rows sum to 1) and native VA (N) or None."""

    probs: np.ndarray
    valence: np.ndarray | None = None
    arousal: np.ndarray | None = None


class FERAdapter(ABC):
    """One FER model. Subclasses set ``classes``, ``model_id``, ``default_name`` and implement
    ``preprocess`` (list of RGB PIL images -> model input) and ``forward`` (input -> FEROutput)."""

    classes: tuple[str, ...] = ()
    model_id: str = ""
    default_name: str = "fer"
    va_range: tuple[float, float] = (-1.0, 1.0)
    has_va: bool = False
    dtype: str = "float32"
    device: str = "cpu"

    @abstractmethod
    def preprocess(self, images: Sequence[Any]) -> Any: ...

    @abstractmethod
    def forward(self, batch: Any) -> FEROutput: ...

    def provenance(self) -> dict:
        """Adapter-specific config: model_revision, preprocessing, anything that changes outputs."""
        return {}

    def __call__(self, images: Sequence[Any]) -> FEROutput:
        import torch

        with torch.inference_mode():
            return self.forward(self.preprocess(images))


def softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    z = np.exp(x - x.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def parse_model_output(out: Any, n_classes: int, *, output: str = "logits", valence_index: int | None = None,
                       arousal_index: int | None = None) -> FEROutput:
    """Read a torch model's output into FEROutput.

    Accepts a tensor (N x K), a tuple/list whose first item is that tensor, an object with ``.logits``,
    or a dict with ``expression``/``logits``/``probs`` and optional ``valence``/``arousal`` (EmoNet's
    output format). In a single N x K tensor, ``valence_index``/``arousal_index`` pick regression columns
    (e.g. HSEmotion's multi-task models: 8 logits, then valence, arousal); the other columns are the
    classes. ``output`` says whether class columns are ``logits`` (softmaxed here) or ``probs``.
    """
    val = aro = None
    if isinstance(out, Mapping):
        cls = next((out[k] for k in ("expression", "logits", "probs", "scores") if k in out), None)
        if cls is None:
            raise EmoalignError(f"model output dict has keys {list(out)}; expected 'expression' or 'logits'",
                                hint="return a tensor, or a dict with 'logits' (and 'valence'/'arousal')")
        if "probs" in out and "logits" not in out and "expression" not in out:
            output = "probs"
        val, aro = out.get("valence"), out.get("arousal")
    elif hasattr(out, "logits"):
        cls = out.logits
    elif isinstance(out, (tuple, list)):
        cls = out[0]
    else:
        cls = out
    arr = _to_numpy(cls)
    if arr.ndim == 1:
        arr = arr[None]
    extra = [i for i in (valence_index, arousal_index) if i is not None]
    if extra:
        width = arr.shape[1]
        idx = [i % width for i in extra]
        if valence_index is not None:
            val = arr[:, valence_index]
        if arousal_index is not None:
            aro = arr[:, arousal_index]
        arr = arr[:, [j for j in range(width) if j not in idx]]
    if arr.shape[1] != n_classes:
        raise EmoalignError(f"model returned {arr.shape[1]} class scores but has {n_classes} class names",
                            hint="check the label list and valence_index/arousal_index")
    probs = softmax(arr) if output == "logits" else np.asarray(arr, dtype=np.float64)
    return FEROutput(probs=probs, valence=None if val is None else _to_numpy(val).reshape(-1),
                     arousal=None if aro is None else _to_numpy(aro).reshape(-1))


def to_tensor(images: Sequence[Any], size: int | Sequence[int], mean: Sequence[float] | float = 0.0,
              std: Sequence[float] | float = 1.0, grayscale: bool = False):
    """PIL images -> N x C x H x W float32 tensor: convert to L or RGB, bilinear resize to ``size``
    (int or (height, width)), scale to [0, 1], then ``(x - mean) / std`` per channel (torchvision's
    Resize + ToTensor + Normalize, with PIL's antialiased bilinear resize)."""
    import torch
    from PIL import Image

    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    mode = "L" if grayscale else "RGB"
    arr = np.stack([np.asarray(im.convert(mode).resize((w, h), Image.BILINEAR), dtype=np.float32) for im in images])
    if grayscale:
        arr = arr[..., None]
    arr = arr / 255.0
    c = arr.shape[-1]
    mean_a = np.broadcast_to(np.asarray(mean, dtype=np.float32), (c,))
    std_a = np.broadcast_to(np.asarray(std, dtype=np.float32), (c,))
    arr = (arr - mean_a) / std_a
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(0, 3, 1, 2)))


def _to_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().float().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _col(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z]+", "_", str(name).strip().lower()).strip("_") or "class"


def package_versions(*names: str) -> dict[str, str]:
    from importlib import metadata

    out = {}
    for n in ("emoalign", "torch", "numpy", "pillow", *names):
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            pass
    return out


class FERRater:
    """A FER adapter as a machine rater (``emoalign.raters.runs.Rater``).

    The label map is resolved (and checked against the study emotions) here, before any image is
    rated. ``unmapped``: ``renormalise`` (default) or ``abstain`` (``labels.py``). ``va_clip``: clip
    scaled VA to the study scale (default False, as in the paper's formula).
    """

    def __init__(self, adapter: FERAdapter, *, name: str | None = None, emotions: Sequence[str] | None = None,
                 scales: Mapping[str, Sequence[float]] | None = None, label_map: Mapping[str, str | None] | None = None,
                 unmapped: str = "renormalise", face_crop=False, face_margin: float = 0.1,
                 face_cascade: str | None = None, batch_size: int = 32, va_clip: bool = False):
        self.adapter = adapter
        self.name = name or adapter.default_name
        self.emotions = list(emotions or _lab.DEFAULT_EMOTIONS)
        self.scales = {k: tuple(float(x) for x in v) for k, v in {**_lab.DEFAULT_SCALES, **(scales or {})}.items()}
        if unmapped not in _lab.UNMAPPED_POLICIES:
            raise EmoalignError(f"unknown unmapped policy {unmapped!r}", hint=f"use one of {_lab.UNMAPPED_POLICIES}")
        self.unmapped = unmapped
        self.label_map = _lab.resolve_label_map(adapter.classes, self.emotions, label_map, model=self.name)
        self.face_crop = _img.normalise_face_crop(face_crop)
        self.face_margin = float(face_margin)
        self._detector = _img.HaarFaceDetector(face_cascade) if self.face_crop == "haar" else None
        self.batch_size = max(1, int(batch_size))
        self.va_clip = bool(va_clip)
        self._class_cols = [f"p_class_{_col(c)}" for c in adapter.classes]
        self._versions = package_versions("transformers", "safetensors", "opencv-python")

    def config(self) -> dict:
        cfg = {
            "backend": "fer",
            "model_id": self.adapter.model_id,
            "dtype": self.adapter.dtype,
            "batch_size": self.batch_size,
            "label_order": list(self.adapter.classes),
            "label_map": self.label_map,
            "unmapped": self.unmapped,
            "emotions": self.emotions,
            "va": {"predicts_va": bool(self.adapter.has_va), "native_range": list(self.adapter.va_range),
                   "scales": {k: list(v) for k, v in self.scales.items()},
                   "formula": "lo + (v - a) / (b - a) * (hi - lo)", "clip": self.va_clip},
            "face_crop": self.face_crop or None,
            "device": self.adapter.device,
            "versions": self._versions,
        }
        if self.face_crop:
            cfg["face_margin"] = self.face_margin
            if self._detector is not None:
                cfg["face_cascade"] = self._detector.cascade_path
        cfg.update(self.adapter.provenance())
        return cfg

    def _prepare(self, item: StimulusItem):
        image = _img.load_rgb(item.path)
        detected = None
        if self.face_crop:
            box = self._detector(image) if self._detector is not None else _img.box_from_meta(item.meta, item.image_id)
            detected = box is not None
            if box is not None:
                image = _img.crop_square(image, box, self.face_margin)
        return image, detected

    def rate(self, items: Sequence[StimulusItem]) -> list[dict]:
        rows: list[dict | None] = [None] * len(items)
        good: list[tuple[int, Any, bool | None]] = []
        for k, item in enumerate(items):
            try:
                image, detected = self._prepare(item)
            except Exception as exc:  # unreadable image, bad face box: an error row, the run goes on
                rows[k] = {"image_id": item.image_id, "error": f"{type(exc).__name__}: {exc}"}
                continue
            good.append((k, image, detected))
        for start in range(0, len(good), self.batch_size):
            chunk = good[start:start + self.batch_size]
            out = self.adapter([im for _, im, _ in chunk])
            for (k, _, detected), row in zip(chunk, self._rows(out, [items[k] for k, _, _ in chunk])):
                if detected is not None:
                    row["face_detected"] = detected
                rows[k] = row
        return rows  # type: ignore[return-value]

    def _rows(self, out: FEROutput, items: Sequence[StimulusItem]) -> list[dict]:
        classes = list(self.adapter.classes)
        probs = np.asarray(out.probs, dtype=np.float64)
        if probs.shape != (len(items), len(classes)):
            raise RuntimeError(f"adapter returned probabilities of shape {probs.shape}, expected {(len(items), len(classes))}")
        mapped, unmapped = _lab.map_probabilities(probs, classes, self.label_map, self.emotions, self.unmapped)
        preds = _lab.predict(mapped, probs, classes, self.label_map, self.emotions, self.unmapped)
        va = {}
        for dim, raw in (("valence", out.valence), ("arousal", out.arousal)):
            if raw is not None:
                va[dim] = (np.asarray(raw, dtype=np.float64),
                           _lab.scale_va(raw, self.adapter.va_range, self.scales.get(dim, (1.0, 9.0)), self.va_clip))
        rows = []
        for k, item in enumerate(items):
            row: dict = {"image_id": item.image_id, "emotion": preds[k]}
            if preds[k] is None:
                row["emotion_status"] = "invalid"
            for j, e in enumerate(self.emotions):
                row[f"p_emotion_{e}"] = float(mapped[k, j])
            for j, c in enumerate(self._class_cols):
                row[c] = float(probs[k, j])
            row["unmapped_mass"] = float(unmapped[k])
            for dim, (raw, scaled) in va.items():
                row[dim] = float(scaled[k])
                row[f"{dim}_native"] = float(raw[k])
            rows.append(row)
        return rows
