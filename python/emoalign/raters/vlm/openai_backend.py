"""``openai`` backend: any OpenAI-compatible chat-completions server (hosted APIs, vLLM, SGLang,
``mlx_vlm.server``).

Meant for any server that hosts a vision model behind the OpenAI chat API (vLLM or SGLang serving
``google/gemma-3-4b-it`` or ``meta-llama/Llama-3.2-11B-Vision-Instruct``, ``mlx_vlm.server``, hosted APIs).

Each ``Ask`` is one ``POST {base_url}/chat/completions`` whose user turn holds the image as a PNG data URL
and the prompt text, in ``image_placement`` order (``model``/``before``: image first; ``after``: text first;
the server applies the model's chat template), ``temperature: 0`` and, where the server supports them,
``logprobs: true`` and ``top_logprobs: N``. Candidate probabilities follow ``answer_probs`` on what the
``top_logprobs`` lists along the generated tokens show (``probs_from_top_logprobs_path``; tokens outside the
top N count as 0, so ``candidate_mass`` is a lower bound). A server that rejects ``logprobs`` is asked
again without and its answers carry ``probs=None``, as do answers whose ``top_logprobs`` lists come back
empty (``mlx_vlm.server`` fills them only when started with ``TOP_LOGPROBS_K=20`` in its environment).

Provenance records what the server reports: its ``GET {base_url}/models`` entry for the model (``root``,
``owned_by``; the revision when the server names one or serves a hub snapshot), read once when the backend
is built, and per answer the ``model`` and ``system_fingerprint`` of the response and whether logprobs came
back (``Answer.info``; the strategy puts them on each row as ``served_model``, ``system_fingerprint`` and
``logprobs_used``).

Requests run on a thread pool of ``concurrency`` workers. 429, 5xx and connection errors are
retried with exponential backoff and full jitter (``Retry-After`` honoured; Brooker 2015, "Exponential
Backoff And Jitter", AWS Architecture Blog); other 4xx raise ``EmoalignError`` at once.

The API key is read from the environment variable named by ``api_key_env`` when the backend is
built and is only ever placed in the ``Authorization`` header: it is not an attribute in ``repr``,
not in ``provenance()``, and any error text a server echoes is scrubbed of it.
"""

from __future__ import annotations

import base64
import io
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

from emoalign.errors import EmoalignError
from emoalign.raters.vlm.answer_probs import answer_position_text, probs_from_top_logprobs_path
from emoalign.raters.vlm.backend import Answer, Ask
from emoalign.raters.vlm.backends import vlm_backend
from emoalign.raters.vlm.inputs import image_digest, resolve_placement, user_content
from emoalign.raters.vlm.revision import hub_snapshot_commit

RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


def image_data_url(image, fmt: str = "PNG") -> str:
    """``data:image/png;base64,...`` for a PIL image (converted to RGB)."""
    buf = io.BytesIO()
    img = image if image.mode in ("RGB", "L") else image.convert("RGB")
    img.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64,{base64.b64encode(buf.getvalue()).decode('ascii')}"


class _Secret:
    """Holds the API key; its repr never shows it."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None):
        self._value = value or None

    def get(self) -> str | None:
        return self._value

    def scrub(self, text: str) -> str:
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "<secret>" if self._value else "<unset>"


@vlm_backend("openai", description="an OpenAI-compatible chat-completions server (vLLM, SGLang, mlx_vlm.server)",
             install="pip install 'emoalign[openai]' (httpx)")
class OpenAIBackend:
    """Chat-completions client for an OpenAI-compatible server.

    Parameters
    ----------
    model : model name as the server knows it (``--served-model-name`` for vLLM, a HF id or a
        local path for ``mlx_vlm.server``).
    base_url : the API root including its version, e.g. ``http://127.0.0.1:8000/v1``.
    api_key_env : name of the environment variable holding the key (default ``OPENAI_API_KEY``;
        variable unset -> no Authorization header, fine for local servers).
    concurrency : simultaneous requests.
    max_retries : retries per request after the first attempt (429/5xx/connection errors).
    timeout : seconds per request (connect and read).
    top_logprobs : alternatives per position to request (OpenAI allows at most 20).
    logprobs : request logprobs; "auto" (default) asks and falls back when the server refuses.
    backoff_base, backoff_max : seconds; attempt ``k`` sleeps ``uniform(0, min(max, base * 2**k))``.
    max_tokens_field : ``max_tokens`` (vLLM, SGLang, mlx-vlm) or ``max_completion_tokens`` (newer
        OpenAI models).
    extra_body : extra JSON fields merged into every request (e.g. ``{"seed": 0}``).
    image_placement : model/before/after: where the image goes in the user turn (``inputs``; the server's
        model type is unknown here, so ``model`` means before).
    """

    name = "openai"

    def __init__(self, model: str, base_url: str, api_key_env: str = "OPENAI_API_KEY", concurrency: int = 4,
                 max_retries: int = 5, timeout: float = 120.0, *, top_logprobs: int = 20,
                 logprobs: bool | str = "auto", backoff_base: float = 0.5, backoff_max: float = 30.0,
                 max_tokens_field: str = "max_tokens", extra_body: dict | None = None, seed: int | None = 0,
                 image_placement: str = "model", **opts):
        import httpx

        if opts:
            raise EmoalignError(f"openai backend: unknown option(s) {', '.join(sorted(opts))}",
                                hint="options: api_key_env, concurrency, max_retries, timeout, top_logprobs, "
                                     "logprobs, backoff_base, backoff_max, max_tokens_field, extra_body, seed, "
                                     "image_placement")
        self.image_placement = resolve_placement(image_placement, None)
        if not base_url or not str(base_url).startswith(("http://", "https://")):
            raise EmoalignError(f"openai backend: base_url {base_url!r} is not an http(s) URL",
                                hint="pass the API root, e.g. --base-url http://127.0.0.1:8000/v1")
        if int(concurrency) < 1:
            raise EmoalignError(f"openai backend: concurrency must be >= 1, got {concurrency}")
        if logprobs not in (True, False, "auto"):
            raise EmoalignError(f"openai backend: logprobs must be true, false or 'auto', got {logprobs!r}")
        self.model = model
        self.base_url = str(base_url).rstrip("/")
        self.api_key_env = api_key_env = api_key_env or "OPENAI_API_KEY"
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.timeout = float(timeout)
        self.top_logprobs = int(top_logprobs)
        self.logprobs = logprobs
        self.backoff_base = float(backoff_base)
        self.backoff_max = float(backoff_max)
        self.max_tokens_field = max_tokens_field
        self.extra_body = dict(extra_body or {})
        self.seed = seed
        self._key = _Secret(os.environ.get(api_key_env))
        self._logprobs_ok: bool | None = None if logprobs == "auto" else bool(logprobs)
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._urls: dict[str, tuple[str, str]] = {}   # image_key -> (pixel hash, data URL) until release
        headers = {"Content-Type": "application/json"}
        if self._key.get():
            headers["Authorization"] = f"Bearer {self._key.get()}"
        self._client = httpx.Client(timeout=httpx.Timeout(self.timeout), headers=headers,
                                    limits=httpx.Limits(max_connections=self.concurrency))
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="emoalign-openai")
        self.requests_sent = 0          # attempts, including retries (for tests and the run summary)
        self.default_batch_size = self.concurrency      # one request per worker for every step of a batch
        self.server_entry = self._server_model_entry()

    def __repr__(self) -> str:
        return (f"OpenAIBackend(model={self.model!r}, base_url={_public_url(self.base_url)!r}, "
                f"api_key_env={self.api_key_env!r}, concurrency={self.concurrency})")

    # -- interface -------------------------------------------------------------------------------
    def _server_model_entry(self) -> dict | None:
        """The server's ``GET /models`` entry for this model (one attempt; None when the server has no such
        endpoint or does not list the model)."""
        import httpx

        try:
            r = self._client.get(f"{self.base_url}/models", timeout=min(self.timeout, 10.0))
            data = r.json().get("data") if r.status_code == 200 else None
        except (httpx.HTTPError, ValueError, AttributeError):
            return None
        if not isinstance(data, list):
            return None
        entries = [e for e in data if isinstance(e, dict)]
        match = [e for e in entries if e.get("id") == self.model] or (entries if len(entries) == 1 else [])
        if not match:
            return None
        keep = ("id", "root", "parent", "owned_by", "revision", "created")
        return {k: match[0][k] for k in keep if match[0].get(k) is not None}

    def provenance(self) -> dict:
        import httpx

        from emoalign import __version__ as emoalign_version

        entry = self.server_entry or {}
        root = entry.get("root")
        revision = entry.get("revision") or (hub_snapshot_commit(root) if isinstance(root, str) else None)
        return {"model_id": self.model, "model_revision": revision, "dtype": None,
                "quantization": None, "backend": self.name, "base_url": _public_url(self.base_url),
                "server_model": entry or None, "logprobs": self.logprobs, "top_logprobs": self.top_logprobs,
                "image_placement": self.image_placement, "answer_probs": "sequence",
                "versions": {"httpx": httpx.__version__, "emoalign": emoalign_version}}

    def ask(self, asks: Sequence[Ask]) -> list[Answer]:
        if not asks:
            return []
        if self._logprobs_ok is None:      # probe once so parallel requests agree on the payload
            first = [self._ask_one(asks[0])]
            return first + list(self._pool.map(self._ask_one, asks[1:]))
        return list(self._pool.map(self._ask_one, asks))

    def release(self, image_key: str) -> None:
        """Forget the image's encoded data URL (server-side prefix caches are the server's business)."""
        with self._lock:
            self._urls.pop(image_key, None)

    def _data_url(self, ask: Ask) -> str:
        """The PNG data URL of the ask's image, encoded once per image (identical bytes every step,
        which also lets servers with image-aware prefix caching, e.g. vLLM, hit their cache)."""
        digest = image_digest(ask.image)
        with self._lock:
            hit = self._urls.get(ask.image_key)
        if hit is not None and hit[0] == digest:
            return hit[1]
        url = image_data_url(ask.image)
        with self._lock:
            self._urls[ask.image_key] = (digest, url)
        return url

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._client.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- one request -----------------------------------------------------------------------------
    def _payload(self, ask: Ask, with_logprobs: bool) -> dict:
        image = {"type": "image_url", "image_url": {"url": self._data_url(ask)}}
        body = {"model": self.model,
                "messages": [{"role": "user", "content": user_content(ask.prompt, self.image_placement, image)}],
                "temperature": 0, self.max_tokens_field: int(ask.max_new_tokens), "stream": False}
        if self.seed is not None:
            body["seed"] = self.seed
        if with_logprobs:
            body["logprobs"] = True
            body["top_logprobs"] = self.top_logprobs
        body.update(self.extra_body)
        return body

    def _ask_one(self, ask: Ask) -> Answer:
        want = self._logprobs_ok is not False and bool(ask.candidates)
        status, data = self._post(self._payload(ask, want))
        if status == 400 and want and self._logprobs_ok is None and "logprob" in str(data).lower():
            with self._lock:
                self._logprobs_ok = False
            want = False
            status, data = self._post(self._payload(ask, False))
        if status >= 400:
            self._raise_http(status, data)
        return self._answer(ask, data, want)

    def _post(self, body: dict) -> tuple[int, object]:
        import httpx

        url = f"{self.base_url}/chat/completions"
        shown = f"{_public_url(self.base_url)}/chat/completions"
        last_err = ""
        for attempt in range(self.max_retries + 1):
            with self._lock:
                self.requests_sent += 1
            try:
                r = self._client.post(url, json=body)
            except httpx.TransportError as exc:       # connect refused/reset, timeouts
                last_err = f"{type(exc).__name__}: {exc}"
                retry_after = None
            else:
                if r.status_code not in RETRY_STATUS:
                    try:
                        return r.status_code, r.json()
                    except ValueError:
                        return r.status_code, r.text
                last_err = f"HTTP {r.status_code}: {r.text[:300]}"
                retry_after = _retry_after(r.headers.get("retry-after"))
            if attempt == self.max_retries:
                break
            cap = min(self.backoff_max, self.backoff_base * (2 ** attempt))
            delay = self._rng.uniform(0, cap)
            if retry_after is not None:
                delay = max(delay, min(retry_after, self.backoff_max))
            time.sleep(delay)
        raise EmoalignError(self._key.scrub(
            f"openai backend: {shown} failed after {self.max_retries + 1} attempts; last error: {last_err}"),
            hint="check that the server is up and reachable, or raise max_retries/timeout")

    def _raise_http(self, status: int, data: object) -> None:
        msg = data.get("error", data) if isinstance(data, dict) else data
        if isinstance(msg, dict):
            msg = msg.get("message", msg)
        text = self._key.scrub(str(msg))[:500]
        hints = {401: f"the server rejected the API key: set the environment variable {self.api_key_env}",
                 403: f"the key in {self.api_key_env} has no access to model {self.model!r}",
                 404: f"check base_url (the API root, usually ending in /v1) and the model name {self.model!r}",
                 413: "the image is too large for the server; downscale the stimuli"}
        raise EmoalignError(f"openai backend: {_public_url(self.base_url)}/chat/completions returned HTTP {status}: {text}",
                            hint=hints.get(status, "fix the request options (model, max tokens, extra_body)"))

    def _answer(self, ask: Ask, data: object, asked_logprobs: bool) -> Answer:
        try:
            choice = data["choices"][0]
            msg = choice.get("message") or {}
            text = msg.get("content") or ""
            if isinstance(text, list):          # some servers return content parts
                text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        except (KeyError, IndexError, TypeError) as exc:
            raise EmoalignError(f"openai backend: unexpected response shape from {_public_url(self.base_url)} "
                                f"({type(exc).__name__}: {exc}); got {self._key.scrub(str(data))[:300]}")
        info = {"finish_reason": choice.get("finish_reason"),
                "usage": data.get("usage") if isinstance(data, dict) else None,
                "served_model": data.get("model") if isinstance(data, dict) else None,
                "system_fingerprint": data.get("system_fingerprint") if isinstance(data, dict) else None}
        probs, mass = None, None
        content = ((choice.get("logprobs") or {}).get("content") or []) if asked_logprobs else []
        if content:
            if self._logprobs_ok is None:
                with self._lock:
                    self._logprobs_ok = True
            toks = [c.get("token", "") for c in content]
            span = ask.locate(text) if ask.locate is not None else None
            pos = answer_position_text(toks, ask.candidates, span)
            at = pos if pos is not None else 0
            tops = [[(t.get("token", ""), t.get("logprob")) for t in (c.get("top_logprobs") or [])] for c in content]
            info["answer_position"] = pos
            info["top_logprobs_returned"] = len(tops[at])
            info["logprobs"] = [(c.get("token", ""), c.get("logprob")) for c in content]
            if tops[at]:    # the chosen token alone says nothing about the alternatives: no probabilities
                probs, mass = probs_from_top_logprobs_path(tops[at:], toks[at:], ask.candidates)
        elif asked_logprobs and self._logprobs_ok is None and text and choice.get("logprobs") is None:
            with self._lock:
                self._logprobs_ok = False      # server ignored the field
        info["logprobs_used"] = bool(content)        # the server sent log-probabilities back
        return Answer(text=text, probs=probs, candidate_mass=mass, info=info)


def _public_url(url: str) -> str:
    """``url`` without any ``user:password@`` part (for repr, provenance and messages)."""
    import httpx

    try:
        u = httpx.URL(url)
    except Exception:  # pragma: no cover - validated in __init__
        return url
    return str(u.copy_with(username=None, password=None)) if u.userinfo else url


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
