"""A probe plan (``emoalign infer --conditions conditions.yaml``): one VLM rater per prompt condition, each
a strategy x label order x persona (x lexicon) over the same stimuli and the same loaded model, written as its
own rater ``<name>@<condition>``.

The file::

    conditions:
      baseline: {}                                  # the command line's settings
      reversed: {label_order: reversed}
      psychologist: {persona: psychologist}
      open: {strategy: open_vocabulary}
      nurse: {persona: "You are a nurse in an emergency room."}

Keys of a condition (each defaults to the command line's ``--strategy``, ``--label-order``, ``--persona``,
``--lexicon``): ``strategy``, ``label_order``, ``persona``, ``lexicon``. Quantisation is not a key: the same
model at two precisions is two models, run as two raters (``--dtype`` of the hf backend, or two mlx
checkpoints) and compared as conditions by the ``robustness`` analysis.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from emoalign.errors import EmoalignError, did_you_mean

KEYS = ("strategy", "label_order", "persona", "lexicon")
_NAME = re.compile(r"[A-Za-z0-9_.+-]+")


@dataclass(frozen=True)
class Condition:
    """One condition of a plan: its ``name`` and the settings it changes (None: the command line's)."""

    name: str
    strategy: str | None = None
    label_order: str | None = None
    persona: str | None = None
    lexicon: str | None = None


def read_plan(path: str | Path) -> list[Condition]:
    """The conditions of a plan file, validated (names, keys, strategies, label orders, personas, lexicon files)."""
    from emoalign.raters.vlm.prompts import LABEL_ORDERS, resolve_persona, strategies

    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise EmoalignError(f"cannot read conditions file {p}: {exc}", hint="a YAML file with a `conditions:` mapping") from None
    table = data.get("conditions") if isinstance(data, dict) else None
    if not isinstance(table, dict) or not table:
        raise EmoalignError(f"conditions file {p} has no `conditions` mapping",
                            hint="e.g.\nconditions:\n  baseline: {}\n  reversed: {label_order: reversed}")
    out = []
    for name, settings in table.items():
        where = f"conditions file {p}: conditions.{name}"
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise EmoalignError(f"{where}: a condition name may hold letters, digits and _ . + - only",
                                hint="the rater is named <name>@<condition>, e.g. gemma3@reversed")
        settings = settings or {}
        if not isinstance(settings, dict):
            raise EmoalignError(f"{where} must be a mapping of settings", hint=f"keys: {', '.join(KEYS)}")
        for key in settings:
            if key not in KEYS:
                raise EmoalignError(f"{where}: unknown setting {key!r}" + did_you_mean(str(key), KEYS),
                                    hint=f"settings are {', '.join(KEYS)} (quantisation: run the model twice, "
                                         "see the module help)")
        cond = Condition(name, **{k: (None if v is None else str(v)) for k, v in settings.items()})
        if cond.strategy is not None and cond.strategy not in strategies():
            raise EmoalignError(f"{where}.strategy: unknown strategy {cond.strategy!r}" + did_you_mean(cond.strategy, strategies()),
                                hint=f"choose one of {', '.join(strategies())}")
        if cond.label_order is not None and cond.label_order not in LABEL_ORDERS:
            raise EmoalignError(f"{where}.label_order: unknown order {cond.label_order!r}",
                                hint=f"choose one of {', '.join(LABEL_ORDERS)}")
        if cond.persona is not None:
            try:
                resolve_persona(cond.persona)
            except EmoalignError as exc:
                raise EmoalignError(f"{where}.persona: {str(exc).split(chr(10) + '  hint:')[0]}", hint=exc.hint) from None
        if cond.lexicon is not None:
            lex = Path(cond.lexicon)
            cond = dataclasses.replace(cond, lexicon=str(lex if lex.is_absolute() else (p.parent / lex)))
            if not Path(cond.lexicon).is_file():
                raise EmoalignError(f"{where}.lexicon: no file {cond.lexicon}", hint="a path relative to the conditions file")
        out.append(cond)
    return out


def plan_prompts(base, cond: Condition):
    """The :class:`~emoalign.raters.vlm.prompts.PromptSet` of a condition: ``base`` with the condition's changes."""
    from emoalign.raters.vlm.prompts import PromptSet, resolve_persona

    changes = {}
    if cond.strategy is not None:
        changes["strategy"] = cond.strategy
    if cond.persona is not None:
        changes["persona_name"], changes["persona"] = resolve_persona(cond.persona)
    if cond.lexicon is not None:
        changes["lexicon_path"] = cond.lexicon
    prompts: PromptSet = dataclasses.replace(base, **changes)
    if prompts.strategy == "open_vocabulary":
        prompts.lexicon  # noqa: B018  (a bad lexicon file fails here, before any image is rated)
    return prompts


def plan_raters(name: str, backend, conditions: list[Condition], base_prompts, *, order: str = "fixed", **rater_kw) -> list:
    """One :class:`~emoalign.raters.vlm.rater.VLMRater` ``<name>@<condition>`` per condition, sharing ``backend``."""
    from emoalign.raters.vlm.rater import VLMRater

    return [VLMRater(f"{name}@{c.name}", backend, plan_prompts(base_prompts, c), order=c.label_order or order, **rater_kw)
            for c in conditions]
