"""``load_backend(kind, model, **opts)``: the one place that maps a backend name to its module.

Imports are lazy so that choosing ``hf`` never imports MLX and vice versa.

* ``hf``: ``hf_backend.HFBackend(model, dtype=, device=, fast=, revision=)`` (transformers + torch)
* ``mlx``: ``mlx_backend.MLXBackend(model, **opts)`` (mlx-vlm)
* ``openai``: ``openai_backend.OpenAIBackend(model, base_url, api_key_env, **opts)`` (chat-completions HTTP)
"""

from __future__ import annotations

import importlib

from emoalign.errors import EmoalignError

BACKENDS = {
    "hf": ("emoalign.raters.vlm.hf_backend", "HFBackend", "pip install 'emoalign[hf]' (torch, transformers)"),
    "mlx": ("emoalign.raters.vlm.mlx_backend", "MLXBackend", "pip install 'emoalign[mlx]' (mlx-vlm; on Linux also 'mlx[cpu]')"),
    "openai": ("emoalign.raters.vlm.openai_backend", "OpenAIBackend", "pip install 'emoalign[openai]' (httpx)"),
}


def backend_class(kind: str):
    """The backend class of ``kind`` (imports its module, not the heavy libraries it uses)."""
    if kind not in BACKENDS:
        raise EmoalignError(f"unknown VLM backend {kind!r}", hint=f"choose one of: {', '.join(BACKENDS)}")
    module, cls, install = BACKENDS[kind]
    try:
        return getattr(importlib.import_module(module), cls)
    except ImportError as exc:
        raise EmoalignError(f"the {kind} backend is unavailable: {exc}", hint=install) from exc


def load_backend(kind: str, model: str, **opts):
    """Instantiate backend ``kind`` ("hf" | "mlx" | "openai") for ``model`` (hub id, local dir, or served name)."""
    klass = backend_class(kind)
    if kind == "openai":
        base_url = opts.pop("base_url", None)
        api_key_env = opts.pop("api_key_env", None)
        if not base_url:
            raise EmoalignError("the openai backend needs a server address", hint="pass --base-url http://host:port/v1")
        return klass(model, base_url, api_key_env, **opts)
    return klass(model, **opts)
