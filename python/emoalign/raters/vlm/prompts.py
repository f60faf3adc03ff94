"""Prompt templates (``templates.yaml``), their hashes, scales and label orders.

The templates of the three strategies live in one data file; ``PromptSet`` renders a strategy's steps
for one image with the study's scales and a label order. ``template_hash`` is a stable hash of the
strategy's raw template text (not of the rendered prompt), recorded on every output row so results
from different wordings are never mixed silently.

Personas (``personas`` in ``templates.yaml``, or free text): a sentence put before every step's prompt; part
of the template hash when set. The ``open_vocabulary`` strategy offers no labels in step 1; its free answer is
mapped to the labels by ``lexicon.py``.

Label orders: ``fixed`` (the paper's order, or the study's), ``reversed``, and ``shuffle`` (a seeded
permutation per image, the order-sensitivity probe of the EVE study, Bhattacharyya & Wang 2025,
arXiv:2502.05660).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

import yaml

from emoalign.data.schemas import PAPER_PROMPT_ORDER
from emoalign.errors import EmoalignError

TEMPLATES_PATH = Path(__file__).with_name("templates.yaml")
Strategy = Literal["context_carry", "independent", "integrated", "open_vocabulary"]
LabelOrder = Literal["fixed", "reversed", "shuffle"]
LABEL_ORDERS = ("fixed", "reversed", "shuffle")
#: the paper's scale for valence and arousal
PAPER_SCALES = {"valence": (1, 9), "arousal": (1, 9)}


@lru_cache(maxsize=None)
def load_templates(path: str | None = None) -> dict:
    """The parsed templates file (default: the packaged ``templates.yaml``)."""
    p = Path(path) if path else TEMPLATES_PATH
    try:
        data = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise EmoalignError(f"cannot read prompt templates {p}: {exc}") from exc
    if not isinstance(data, dict) or "strategies" not in data:
        raise EmoalignError(f"prompt templates {p} lack a 'strategies' mapping")
    return data


def strategies(path: str | None = None) -> tuple[str, ...]:
    return tuple(load_templates(path)["strategies"])


def template_hash(strategy: str, path: str | None = None, persona: str = "") -> str:
    """sha256 (first 12 hex digits) of the strategy's step templates, canonical JSON; with a ``persona`` (its
    text), of the templates and the persona together (no persona: the hash is the templates' alone, as before)."""
    steps = _steps(strategy, path)
    what = {"steps": steps, "persona": persona} if persona else steps
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:12]


def personas(path: str | None = None) -> dict[str, str]:
    """The shipped personas: name -> the sentence put before every step (``none``: nothing)."""
    return {str(k): str(v or "") for k, v in (load_templates(path).get("personas") or {"none": ""}).items()}


def resolve_persona(value: str | None, path: str | None = None) -> tuple[str, str]:
    """``(name, text)`` of ``--persona``: a shipped name (``none``, ``psychologist``, ``layperson``) or free text
    (a sentence: it must contain a space, so a mistyped name is an error, not a persona), named
    ``custom-<sha256[:8]>`` for the provenance columns."""
    table = personas(path)
    value = (value or "none").strip()
    if value in table:
        return value, table[value]
    if " " not in value:
        from emoalign.errors import did_you_mean

        raise EmoalignError(f"unknown persona {value!r}" + did_you_mean(value, list(table)),
                            hint=f"use one of {', '.join(table)} or a sentence of your own, e.g. "
                                 "--persona 'You are a nurse in an emergency room.'")
    return f"custom-{hashlib.sha256(value.encode()).hexdigest()[:8]}", value


def _steps(strategy: str, path: str | None = None) -> dict[str, str]:
    table = load_templates(path)["strategies"]
    if strategy not in table:
        raise EmoalignError(f"unknown prompt strategy {strategy!r}", hint=f"choose one of: {', '.join(table)}")
    return dict(table[strategy]["steps"])


def label_order(labels: tuple[str, ...], order: str, *, seed: int = 0, image_key: str = "") -> tuple[str, ...]:
    """``labels`` in the requested order; ``shuffle`` is a permutation seeded by ``(seed, image_key)``."""
    if order == "fixed":
        return tuple(labels)
    if order == "reversed":
        return tuple(reversed(labels))
    if order == "shuffle":
        digest = hashlib.sha256(f"{seed}:{image_key}".encode()).digest()
        rng = random.Random(int.from_bytes(digest[:8], "big"))
        out = list(labels)
        rng.shuffle(out)
        return tuple(out)
    raise EmoalignError(f"unknown label order {order!r}", hint=f"choose one of: {', '.join(LABEL_ORDERS)}")


def _fmt_number(x) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else f"{x:g}"


@dataclass(frozen=True)
class PromptSet:
    """A strategy's templates bound to a label set and the study's scales."""

    strategy: str = "context_carry"
    labels: tuple[str, ...] = PAPER_PROMPT_ORDER
    scales: dict = field(default_factory=lambda: dict(PAPER_SCALES))
    templates_path: str | None = None
    #: the persona sentence put before every step ("" = none) and its name (:func:`resolve_persona`)
    persona: str = ""
    persona_name: str = "none"
    #: open_vocabulary: the lexicon file mapping free answers to the labels (None = the shipped one)
    lexicon_path: str | None = None

    def __post_init__(self):
        _steps(self.strategy, self.templates_path)  # validates the name
        for dim in ("valence", "arousal"):
            lo, hi = self.scale(dim)
            if not lo < hi:
                raise EmoalignError(f"scale of {dim} must have min < max, got [{lo}, {hi}]")

    def scale(self, dim: str) -> tuple[float, float]:
        lo, hi = self.scales.get(dim, PAPER_SCALES[dim])
        return float(lo), float(hi)

    def rating_values(self, dim: str) -> tuple[str, ...]:
        """The integer answers a rating step can take (``"1".."9"`` on the paper's scale)."""
        lo, hi = self.scale(dim)
        return tuple(str(k) for k in range(int(round(lo)), int(round(hi)) + 1))

    @property
    def steps(self) -> tuple[str, ...]:
        return tuple(_steps(self.strategy, self.templates_path))

    @property
    def hash(self) -> str:
        return template_hash(self.strategy, self.templates_path, self.persona)

    @cached_property
    def lexicon(self):
        """The :class:`~emoalign.raters.vlm.lexicon.Lexicon` of the open_vocabulary strategy, over ``labels``; read
        once per prompt set, so every batch of a run maps answers with the lexicon whose sha256 the run records."""
        from emoalign.raters.vlm.lexicon import load_lexicon

        return load_lexicon(self.labels, self.lexicon_path)

    def render(self, step: str, labels: tuple[str, ...] | None = None, **carried) -> str:
        """The prompt of ``step`` with labels (in the given order), scales and carried answers filled in."""
        template = _steps(self.strategy, self.templates_path)[step]
        (v_min, v_max), (a_min, a_max) = self.scale("valence"), self.scale("arousal")
        values = dict(labels=", ".join(labels or self.labels), v_min=_fmt_number(v_min), v_max=_fmt_number(v_max),
                      a_min=_fmt_number(a_min), a_max=_fmt_number(a_max))
        values.update({k: ("" if v is None else (_fmt_number(v) if isinstance(v, (int, float)) else str(v)))
                       for k, v in carried.items()})
        try:
            text = template.format(**values)
            return f"{self.persona} {text}" if self.persona else text
        except KeyError as exc:
            raise EmoalignError(f"template {self.strategy}.{step} needs {exc} carried from an earlier step") from None
