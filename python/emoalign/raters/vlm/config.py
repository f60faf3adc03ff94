"""``GenerateConfig``: how a VLM generates, one object for every backend (as inspect_ai's ``GenerateConfig``).

``emoalign infer`` puts the flags the user gave (and ``--option KEY=VALUE``) into one config; a backend takes
the fields its constructor names and refuses the others: ``--dtype`` with ``--rater mlx:...`` is an error that
names the flag and the backends that take it, not a flag silently ignored. A field left ``None`` takes the
backend's own default. ``max_new_tokens`` and ``batch_size`` belong to the rater (every backend takes them);
``options`` holds the backend's own ``--option`` keys (``max_prefix_images``, ``adapter_path``, ...), passed
through to its constructor, which refuses unknown ones.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field, fields, replace
from typing import Any

from emoalign.errors import EmoalignError


def _flag(flag: str, example: str | None = None, *, rater: bool = False):
    """Field metadata: the CLI flag that sets it, an example for messages, whether the rater (not the backend)
    reads it."""
    return {"flag": flag, "example": example or flag, "rater": rater}


@dataclass(frozen=True)
class GenerateConfig:
    """Generation settings shared by the VLM backends (``None``: the backend's own default).

    Examples
    --------
    >>> cfg = GenerateConfig.from_options({"concurrency": 8, "max_prefix_images": 16}, dtype="bfloat16")
    >>> cfg.dtype, cfg.concurrency, cfg.options
    ('bfloat16', 8, {'max_prefix_images': 16})
    >>> cfg.flag("concurrency")
    '--option concurrency=N'
    """

    max_new_tokens: int = field(default=32, metadata=_flag("--max-new-tokens", rater=True))
    batch_size: int | None = field(default=None, metadata=_flag("--batch-size", rater=True))
    image_placement: str | None = field(default=None, metadata=_flag("--image-placement", "--image-placement before"))
    dtype: str | None = field(default=None, metadata=_flag("--dtype", "--dtype bfloat16"))
    device: str | None = field(default=None, metadata=_flag("--device", "--device cuda"))
    fast: bool | None = field(default=None, metadata=_flag("--fast/--reference", "--reference"))
    revision: str | None = field(default=None, metadata=_flag("--option revision=REV", "--option revision=main"))
    base_url: str | None = field(default=None, metadata=_flag("--base-url", "--base-url http://localhost:8000/v1"))
    api_key_env: str | None = field(default=None, metadata=_flag("--api-key-env", "--api-key-env MY_KEY"))
    concurrency: int | None = field(default=None, metadata=_flag("--option concurrency=N", "--option concurrency=8"))
    top_logprobs: int | None = field(default=None, metadata=_flag("--option top_logprobs=N", "--option top_logprobs=20"))
    #: the backend's own options (``--option KEY=VALUE`` keys that are no field above)
    options: dict = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: dict | None = None, **flags) -> GenerateConfig:
        """A config from the flags the user gave (``None`` values are dropped) and ``--option`` values: an option
        named like a field sets that field; giving one both ways is an error."""
        names = {f.name for f in fields(cls)} - {"options"}
        values = {k: v for k, v in flags.items() if v is not None}
        rest = {}
        for key, value in (options or {}).items():
            if key not in names:
                rest[key] = value
            elif key in values and values[key] != value:
                flag = cls.flag(key)
                raise EmoalignError(f"--option {key}={value!r} contradicts {flag} {values[key]!r}",
                                    hint=f"give {key} once (with {flag})")
            else:
                values[key] = value
        return cls(**values, options=rest)

    @classmethod
    def flag(cls, name: str) -> str:
        """The CLI flag of field ``name`` (``--option NAME=VALUE`` for a backend's own option)."""
        meta = {f.name: f.metadata for f in fields(cls)}.get(name)
        return meta["flag"] if meta and "flag" in meta else f"--option {name}=VALUE"

    @classmethod
    def example(cls, name: str) -> str:
        meta = {f.name: f.metadata for f in fields(cls)}.get(name)
        return meta["example"] if meta and "example" in meta else f"--option {name}=VALUE"

    @classmethod
    def backend_fields(cls) -> tuple[str, ...]:
        """The fields a backend's constructor may take (not the rater's, not ``options``)."""
        return tuple(f.name for f in fields(cls) if f.name != "options" and not f.metadata.get("rater"))

    def given(self) -> dict[str, Any]:
        """The backend fields that are set, then the backend's own options."""
        out = {k: getattr(self, k) for k in self.backend_fields() if getattr(self, k) is not None}
        return {**out, **self.options}

    def with_defaults(self, **defaults) -> GenerateConfig:
        """A copy where the fields left ``None`` take ``defaults``."""
        return replace(self, **{k: v for k, v in defaults.items() if getattr(self, k) is None})


def accepted(factory) -> tuple[dict[str, inspect.Parameter], bool]:
    """The keyword parameters a backend's constructor declares (but ``model``), and whether it also takes
    ``**kwargs``."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    params = list(inspect.signature(target).parameters.values())
    if inspect.isclass(factory):
        params = params[1:]  # self
    named = {p.name: p for p in params[1:] if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}  # [0]: the model
    return named, any(p.kind is p.VAR_KEYWORD for p in params)
