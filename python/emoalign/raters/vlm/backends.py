"""The VLM backends' registry entries and ``load_backend(kind, model, config)``.

A backend is one module, ``emoalign/raters/vlm/<name>_backend.py``, whose class implements
:class:`~emoalign.raters.vlm.backend.VLMBackend` (``provenance``, ``ask``, ``release``) and is registered with
:func:`vlm_backend`::

    @vlm_backend("my_engine", description="my inference engine", install="pip install my-engine")
    class MyBackend:
        def __init__(self, model: str, *, device: str = "auto", image_placement: str = "model", my_knob: int = 4): ...

It is then ``--rater my_engine:<model>`` of ``emoalign infer`` with no other file touched: the registry
(:data:`emoalign.registry.BACKENDS`) finds ``*_backend.py`` modules by their name, imports only the one asked for
(choosing ``hf`` never imports MLX), and a third-party package declares its class under the entry-point group
``emoalign.backends``. The constructor's keyword parameters say which fields of the shared
:class:`~emoalign.raters.vlm.config.GenerateConfig` the backend takes (``--dtype``, ``--device``, ``--base-url``,
...); a flag it does not take is refused naming the backends that do, and its own options arrive as
``--option KEY=VALUE``.

Built-ins: ``hf`` (transformers + torch), ``mlx`` (mlx-vlm), ``openai`` (an OpenAI-compatible HTTP server).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from emoalign.errors import EmoalignError
from emoalign.raters.vlm.config import GenerateConfig, accepted
from emoalign.registry import BACKENDS, plugin_coercer


@dataclass(frozen=True)
class BackendEntry:
    """A registered VLM backend: ``factory(model, **config fields and options) -> backend``, a one-line
    ``description``, the ``install`` command shown when its libraries are missing, and ``hub_model``: the model
    is a Hugging Face id or a local directory (checked for reachability before minutes of loading)."""

    name: str
    factory: Callable
    description: str
    install: str | None = None
    hub_model: bool = False

    def accepts(self) -> tuple[str, ...]:
        """The :class:`GenerateConfig` fields this backend takes (the keyword parameters of its constructor)."""
        named, _ = accepted(self.factory)
        return tuple(f for f in GenerateConfig.backend_fields() if f in named)


def _check_protocol(name: str, cls) -> None:
    from emoalign.raters.vlm.backend import VLMBackend

    methods = [m for m, v in vars(VLMBackend).items() if callable(v) and not m.startswith("_")]
    missing = [m for m in methods if not callable(getattr(cls, m, None))]
    if missing:
        raise EmoalignError(f"VLM backend {name!r} ({getattr(cls, '__module__', '?')}) lacks {', '.join(missing)}",
                            hint="a backend implements provenance(), ask(asks) and release(image_key) "
                                 "(emoalign.raters.vlm.backend.VLMBackend)")


def vlm_backend(name: str, *, description: str, install: str | None = None, hub_model: bool = False):
    """Register a backend class as VLM backend ``name`` (``--rater <name>:<model>``); see the module docstring."""

    def deco(cls):
        _check_protocol(name, cls)
        BACKENDS.add(name, BackendEntry(name, cls, description, install, hub_model), origin=cls.__module__)
        return cls

    return deco


#: what a plug-in's entry point names: a registered BackendEntry, or a plain backend class (its docstring's first
#: line describes it)
BACKENDS.coerce = plugin_coercer(BackendEntry, BackendEntry, what="VLM backend", expected="the backend class",
                                 check=_check_protocol)


def backend_entry(kind: str) -> BackendEntry:
    """The registry entry of backend ``kind`` (imports its module, not the heavy libraries it uses)."""
    return BACKENDS.get(kind)


def backend_class(kind: str):
    """The backend class (factory) of ``kind``."""
    return backend_entry(kind).factory


def list_backends() -> dict[str, str]:
    """VLM backends available to ``--rater <name>:<model>``, with a one-line description."""
    return {k: e.description for k, e in BACKENDS.entries().items()}


def backend_kwargs(kind: str, config: GenerateConfig) -> dict:
    """The constructor keywords of backend ``kind`` from ``config``: every field set must be one it takes (else
    an error naming the flag and the backends that take it), and the fields its constructor requires must be
    set."""
    entry = backend_entry(kind)
    named, _ = accepted(entry.factory)
    given = config.given()
    for key in given:
        if key in GenerateConfig.backend_fields() and key not in named:
            flag = GenerateConfig.flag(key)
            takers = [n for n, e in BACKENDS.entries().items() if key in e.accepts()]
            raise EmoalignError(f"{flag} is not taken by the {kind} backend",
                                hint=(f"{flag} is for the {' and '.join(takers)} backend{'s' if len(takers) > 1 else ''}"
                                      if takers else f"no backend takes {flag}") + f"; drop it with --rater {kind}:...")
    for key, p in named.items():
        if p.default is inspect.Parameter.empty and key not in given:
            flag = GenerateConfig.flag(key)
            raise EmoalignError(f"the {kind} backend needs {flag}", hint=f"pass {GenerateConfig.example(key)}")
    return given


def load_backend(kind: str, model: str, config: GenerateConfig | None = None, **options):
    """Instantiate backend ``kind`` for ``model`` (hub id, local dir, or served name) with ``config`` (and
    ``options``: more fields or backend options, as ``--option`` gives them)."""
    config = config or GenerateConfig()
    if options:
        config = GenerateConfig.from_options({**config.options, **options},
                                             **{k: getattr(config, k) for k in GenerateConfig.backend_fields()})
    entry = backend_entry(kind)
    kwargs = backend_kwargs(kind, config)
    try:
        return entry.factory(model, **kwargs)
    except ImportError as exc:
        raise EmoalignError(f"the {kind} backend is unavailable: {exc}",
                            hint=entry.install or "install the libraries it needs") from exc
