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

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from emoalign.errors import EmoalignError
from emoalign.raters.device import resolve_device
from emoalign.registry import FER_MODELS, plugin_coercer


@dataclass(frozen=True)
class FERModel:
    """A registered FER model: ``build(device=..., **options) -> FERAdapter``, a one-line ``description`` and
    ``arg``, the option that ``fer:<name>:<value>`` sets (e.g. ``model_id`` of ``fer:hf:<hub id>``)."""

    name: str
    build: Callable
    description: str
    arg: str | None = None


def fer_model(name: str, *, description: str, arg: str | None = None):
    """Register an adapter builder as FER model ``name`` (``--rater fer:<name>``)::

        @fer_model("my_net", arg="weights", description="my network (8 classes + VA)")
        def build_adapter(*, device="cpu", weights=None) -> FERAdapter: ...

    A module in ``emoalign/raters/fer/`` is found on its own; a third-party module is declared under the
    entry-point group ``emoalign.fer``. A builder that accepts ``trust_remote_code`` gets the user's
    ``--trust-remote-code`` choice (loading may run code from the model files); others never see it.
    """

    def deco(build):
        FER_MODELS.add(name, FERModel(name, build, description, arg), origin=build.__module__)
        return build

    return deco


#: what a plug-in's entry point names: a registered FERModel, or a plain adapter builder (its docstring's first
#: line describes it)
FER_MODELS.coerce = plugin_coercer(FERModel, FERModel, what="FER model",
                                   expected="an adapter builder build_adapter(*, device, ...)")

#: rater options every FER model shares (``FERRater``), split off before the builder is called
_RATER_OPTIONS = ("label_map", "unmapped", "face_margin", "face_cascade", "va_clip")


def list_fer_models() -> dict[str, str]:
    """FER models available to ``--rater fer:<name>``, with a one-line description."""
    return {k: e.description for k, e in sorted(FER_MODELS.entries().items())}


def parse_fer_name(name: str) -> tuple[str, str | None]:
    """``"hf:org/model"`` -> ``("hf", "org/model")``; ``"minixception"`` -> ``("minixception", None)``;
    an existing directory -> ``("hf", dir)``. A leading ``fer:`` is ignored."""
    name = str(name).strip()
    if name.startswith("fer:"):
        name = name[4:]
    kind, sep, arg = name.partition(":")
    if kind in FER_MODELS:
        return kind, (arg or None) if sep else None
    if Path(name).expanduser().is_dir():
        return "hf", name
    err = FER_MODELS.unknown(name)
    raise EmoalignError(str(err).split("\n")[0], hint="choose one of: " + ", ".join(f"fer:{k}" for k in sorted(FER_MODELS.names()))
                        + " (hf/hsemotion/plugin take :<model>)")


def fer_builder(name: str):
    """The adapter builder function of FER model ``name`` (its keyword options are the adapter's options)."""
    kind, _ = parse_fer_name(name)
    return FER_MODELS.get(kind).build


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
    model = FER_MODELS.get(kind)
    rater_opts = {k: options.pop(k) for k in _RATER_OPTIONS if k in options}
    rater_name = options.pop("rater_name", None)
    if arg is not None and model.arg:
        options.setdefault(model.arg, arg)
    if "trust_remote_code" in inspect.signature(model.build).parameters:
        options["trust_remote_code"] = trust_remote_code
    adapter = model.build(device=resolve_device(device), **options)
    return FERRater(adapter, name=rater_name, emotions=emotions, scales=scales, batch_size=batch_size,
                    face_crop=face_crop, **rater_opts)


__all__ = ["FERModel", "build_fer_rater", "fer_builder", "fer_model", "list_fer_models", "parse_fer_name",
           "resolve_device"]
