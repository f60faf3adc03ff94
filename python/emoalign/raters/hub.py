"""Fail fast when a model is a Hugging Face hub id and the hub cannot be reached.

transformers and mlx-vlm retry an unreachable hub for minutes (about 150 s measured offline)
before they give up. :func:`preflight` checks first, in a few seconds: a local directory is used
as is; a hub id whose files are already in the local cache is loaded from the cache (offline mode
is switched on for this process); a hub id that is neither reachable nor cached is an error that
says how to use a local directory instead.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from urllib.parse import urlparse

from emoalign.errors import EmoalignError

#: seconds allowed for name resolution + TCP connect to the hub
PROBE_TIMEOUT_S = 4.0

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


def hub_endpoint() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")


def offline_mode() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def is_hub_id(model: str) -> bool:
    """True when ``model`` is not an existing local path and looks like ``org/name`` (or ``name``)."""
    text = str(model)
    if Path(text).expanduser().exists() or text.startswith(("/", "./", "../", "~")):
        return False
    return bool(_HUB_ID.match(text))


def hub_reachable(endpoint: str | None = None, timeout: float = PROBE_TIMEOUT_S) -> bool:
    """True when a TCP connection to the hub's host opens within ``timeout`` s (name lookup included)."""
    url = urlparse(endpoint or hub_endpoint())
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme != "http" else 80)
    ok = threading.Event()

    def probe():
        try:
            with socket.create_connection((host, port), timeout=timeout):
                ok.set()
        except OSError:
            pass

    t = threading.Thread(target=probe, daemon=True)  # getaddrinfo ignores socket timeouts: bound it here
    t.start()
    t.join(timeout + 0.5)
    return ok.is_set()


def in_local_cache(model_id: str, revision: str | None = None) -> bool:
    """True when the hub cache already holds ``config.json`` of ``model_id`` (so it can load offline)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        hit = try_to_load_from_cache(model_id, "config.json", revision=revision)
    except Exception:  # malformed id or cache: treat as not cached
        return False
    return isinstance(hit, str)


def preflight(model: str, *, rater: str, revision: str | None = None) -> str:
    """Make sure ``model`` can be loaded without minutes of network retries; returns what was decided.

    ``"local"`` (a path), ``"offline"`` (HF_HUB_OFFLINE already set), ``"online"`` (hub reachable),
    ``"cache"`` (hub unreachable, files cached: offline mode switched on). Raises EmoalignError when
    the hub is unreachable and the model is not cached.
    """
    if not is_hub_id(model):
        return "local"
    if offline_mode():
        return "offline"
    if hub_reachable():
        return "online"
    before = os.environ.get("HF_HUB_OFFLINE")
    os.environ["HF_HUB_OFFLINE"] = "1"  # before huggingface_hub reads it: no retries from here on
    if in_local_cache(model, revision):
        return "cache"
    if before is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = before
    prefix = rater[: len(rater) - len(model)] if rater.endswith(model) else "hf:"
    raise EmoalignError(
        f"--rater {rater}: cannot reach the Hugging Face hub ({hub_endpoint()}) to download {model!r}, "
        "and it is not in the local cache",
        hint=f"on a machine with internet run `huggingface-cli download {model} --local-dir DIR`, copy DIR here and "
             f"pass the local directory instead of the hub id: --rater {prefix}/path/to/DIR "
             "(or set HF_ENDPOINT to a reachable mirror)")
