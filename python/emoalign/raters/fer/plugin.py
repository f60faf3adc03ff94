"""Plug-in point: any torch model as a FER rater (``fer:plugin``), e.g. EmoNet or POSTER V2, which have no
pip package and whose weights may not be redistributed (EmoNet: CC BY-NC-ND) — the user keeps the
model code and weights; emoalign only calls them.

The user names a loader, ``"package.module:function"`` or ``"path/to/file.py:function"`` (a class
path works too), called with the plug-in ``options``. It returns a :class:`FERPlugin` (or a dict of its
fields, or a ``(model, labels)`` tuple; a bare ``nn.Module`` needs ``labels`` among the options)::

    # my_models/emonet_plugin.py                      (user code)
    def load(weights, n_expression=8):
        from emonet.models import EmoNet              # the user's clone of face-analysis/emonet
        net = EmoNet(n_expression=n_expression)
        net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True), strict=False)
        return FERPlugin(net, labels=["neutral", "happy", "sad", "surprise", "fear", "disgust", "anger",
                                      "contempt"], input_size=256, mean=0.0, std=1.0)

and three lines make it a rater (CLI: ``--rater fer:plugin:my_models.emonet_plugin:load``)::

    - rater: fer:plugin
      entry: my_models.emonet_plugin:load
      options: {weights: ~/models/emonet_8.pth}

The model's output may be a logits tensor (N x C), a tuple starting with it, an object with ``.logits``,
or a dict with ``expression``/``logits`` and optional ``valence``/``arousal`` (EmoNet's format); a single
tensor with VA columns uses ``valence_index``/``arousal_index``. Class orders differ per checkpoint
(EmoNet-8 above; POSTER V2 on RAF-DB: surprise, fear, disgust, happy, sad, angry, neutral): always give
``labels`` in the model's output order. ``emoalign.raters.fer.example_plugin`` is a working example.

Naming a loader runs its code, exactly as importing it would; use plug-ins you trust.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

from emoalign.errors import EmoalignError
from emoalign.raters.fer import fer_model
from emoalign.raters.fer.base import FERAdapter, parse_model_output, to_tensor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass
class FERPlugin:
    """What a plug-in loader returns: the model, its class names in output order, and its preprocessing.

    ``preprocess`` (list of RGB PIL images -> input tensor) replaces the default resize/normalise
    pipeline (``input_size``, ``mean``, ``std``, ``grayscale``). ``output``: ``logits`` or ``probs``.
    """

    model: Any
    labels: Sequence[str]
    input_size: int | tuple[int, int] = 224
    mean: Sequence[float] | float = IMAGENET_MEAN
    std: Sequence[float] | float = IMAGENET_STD
    grayscale: bool = False
    preprocess: Callable | None = None
    output: str = "logits"
    valence_index: int | None = None
    arousal_index: int | None = None
    va_range: tuple[float, float] = (-1.0, 1.0)
    has_va: bool | None = None
    name: str | None = None
    model_id: str | None = None
    revision: str | None = None


_FIELDS = {f.name for f in fields(FERPlugin)}


def load_entry(entry: str) -> Callable:
    """Resolve ``module:attr`` or ``file.py:attr`` (dotted attr allowed) to the object it names."""
    if not entry or ":" not in entry:
        raise EmoalignError(f"plug-in entry {entry!r} must look like 'package.module:function' or 'file.py:function'",
                            hint="e.g. entry: my_models.emonet_plugin:load")
    target, _, attr = entry.rpartition(":")
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise EmoalignError(f"plug-in file {path} not found", hint="check the path before ':' in the entry")
        mod_name = f"_emoalign_plugin_{abs(hash(str(path)))}"
        spec = importlib.util.spec_from_file_location(mod_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise EmoalignError(f"cannot import plug-in module {target!r}: {exc}",
                                hint="install it, or put its folder on PYTHONPATH, or give a file path") from exc
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise EmoalignError(f"plug-in module {target!r} has no attribute {attr!r}",
                                hint="name a function or class defined in that module")
        obj = getattr(obj, part)
    if not callable(obj):
        raise EmoalignError(f"plug-in entry {entry!r} is not callable", hint="name a function or a class")
    return obj


def as_plugin(result: Any, overrides: dict, entry: str) -> FERPlugin:
    """Normalise a loader's return value into a FERPlugin; ``overrides`` (e.g. labels) win."""
    if isinstance(result, FERPlugin):
        plug = result
    elif isinstance(result, dict):
        bad = set(result) - _FIELDS
        if bad:
            raise EmoalignError(f"plug-in {entry!r} returned unknown key(s) {sorted(bad)}", hint=f"use {sorted(_FIELDS)}")
        plug = FERPlugin(**{"labels": overrides.get("labels", ()), **result})
    elif isinstance(result, tuple) and len(result) == 2:
        plug = FERPlugin(model=result[0], labels=result[1])
    elif callable(result):
        plug = FERPlugin(model=result, labels=overrides.get("labels", ()))
    else:
        raise EmoalignError(f"plug-in {entry!r} returned {type(result).__name__}",
                            hint="return FERPlugin(model, labels, ...), a dict of its fields, or (model, labels)")
    for k, v in overrides.items():
        setattr(plug, k, v)
    if not plug.labels:
        raise EmoalignError(f"plug-in {entry!r} gives no class labels",
                            hint="return FERPlugin(model, labels=[...]) or pass labels: [...] in the rater options")
    return plug


class PluginAdapter(FERAdapter):
    def __init__(self, plug: FERPlugin, entry: str, device: str = "cpu"):
        self.plug = plug
        self.entry = entry
        self.device = device
        model = plug.model
        if hasattr(model, "to"):
            model = model.to(device)
        if hasattr(model, "eval"):
            model = model.eval()
        self.model = model
        self.classes = tuple(str(c) for c in plug.labels)
        self.model_id = plug.model_id or entry
        self.default_name = plug.name or entry.rpartition(":")[2].split(".")[-1]
        self.va_range = (float(plug.va_range[0]), float(plug.va_range[1]))
        self.has_va = bool(plug.has_va) if plug.has_va is not None else (
            plug.valence_index is not None or plug.arousal_index is not None)

    def preprocess(self, images):
        if self.plug.preprocess is not None:
            x = self.plug.preprocess(list(images))
        else:
            x = to_tensor(images, self.plug.input_size, self.plug.mean, self.plug.std, self.plug.grayscale)
        return x.to(self.device) if hasattr(x, "to") else x

    def forward(self, batch):
        return parse_model_output(self.model(batch), len(self.classes), output=self.plug.output,
                                  valence_index=self.plug.valence_index, arousal_index=self.plug.arousal_index)

    def provenance(self):
        p = self.plug
        return {"model_revision": p.revision, "plugin_entry": self.entry,
                "preprocessing": "custom" if p.preprocess is not None else
                {"input_size": p.input_size, "mean": p.mean, "std": p.std, "grayscale": p.grayscale},
                "output": p.output, "valence_index": p.valence_index, "arousal_index": p.arousal_index}


@fer_model("plugin", arg="entry",
           description="any torch model through your loader (EmoNet, POSTER V2...): fer:plugin:<module:function>")
def build_adapter(*, entry: str | None = None, options: dict | None = None, device: str = "cpu", **overrides) -> PluginAdapter:
    """Call the user's loader ``entry`` with ``options`` and wrap what it returns."""
    if not entry:
        raise EmoalignError("fer:plugin needs an entry: fer:plugin:<module:function> or entry: module:function",
                            hint="see emoalign.raters.fer.plugin for the three-line recipe")
    bad = set(overrides) - _FIELDS
    if bad:
        raise EmoalignError(f"fer:plugin got unknown option(s) {', '.join(sorted(bad))}",
                            hint="loader arguments go under options: {...}; plug-in fields allowed here: "
                                 f"{', '.join(sorted(_FIELDS - {'model', 'preprocess'}))}")
    loader = load_entry(entry)
    try:
        result = loader(**(options or {}))
    except EmoalignError:
        raise
    except TypeError as exc:
        raise EmoalignError(f"plug-in loader {entry!r} rejected its options {sorted(options or {})}: {exc}",
                            hint="pass the loader's keyword arguments under options: {...}") from exc
    return PluginAdapter(as_plugin(result, overrides, entry), entry, device)
