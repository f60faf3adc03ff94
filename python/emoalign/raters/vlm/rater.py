"""``VLMRater``: a VLM backend plus a prompting strategy, as one machine rater of the run loop.

Implements ``emoalign.raters.runs.Rater``: ``name``, ``config()`` (everything that changes the output:
backend provenance, strategy, template hash, label order, seed, scales, labels, batch size, decoding
limits) and ``rate(items)``, which fills the machines-table columns (see ``strategies.py``). An image
that cannot be opened becomes an error row naming the file and the reason; the other images of the
batch are rated normally.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence


from emoalign.raters.image_io import load_rgb
from emoalign.raters.runs import StimulusItem
from emoalign.raters.vlm.prompts import LABEL_ORDERS, PromptSet
from emoalign.raters.vlm.strategies import run_strategy


@dataclass
class VLMRater:
    """One VLM rater: ``backend`` (hf/mlx/openai), ``prompts`` (strategy, labels, scales), label ``order``."""

    name: str
    backend: object
    prompts: PromptSet = field(default_factory=PromptSet)
    order: str = "fixed"
    seed: int = 0
    batch_size: int = 1
    max_new_tokens: int = 32

    def __post_init__(self):
        if self.order not in LABEL_ORDERS:
            from emoalign.errors import EmoalignError

            raise EmoalignError(f"unknown label order {self.order!r}", hint=f"choose one of: {', '.join(LABEL_ORDERS)}")

    def config(self) -> dict:
        prov = dict(self.backend.provenance())
        probe = {}  # only when set, so runs without a persona or lexicon keep the configuration they resume with
        if self.prompts.persona:
            probe.update(persona=self.prompts.persona_name, persona_text=self.prompts.persona)
        if self.prompts.strategy == "open_vocabulary":
            lex = self.prompts.lexicon
            probe["lexicon"] = {"source": self.prompts.lexicon_path or "shipped", "sha256": lex.sha256}
        return {**probe,
            **prov,
            "rater": self.name,
            "strategy": self.prompts.strategy,
            "template_hash": self.prompts.hash,
            "label_order": self.order,
            "labels": list(self.prompts.labels),
            "scales": {d: list(self.prompts.scale(d)) for d in ("valence", "arousal")},
            "seed": self.seed,
            "batch_size": self.batch_size,
            "max_new_tokens": self.max_new_tokens,
            "decoding": "greedy",
            "simulated": False,
        }

    def rate(self, items: Sequence[StimulusItem]) -> list[dict]:
        rows: dict[str, dict] = {}
        keys, images = [], []
        for it in items:
            try:
                images.append(load_rgb(it.path))
                keys.append(it.image_id)
            except Exception as exc:  # corrupt, missing, unsupported: an error row, the run goes on
                rows[it.image_id] = {"image_id": it.image_id, "error": f"cannot read image {it.path}: {type(exc).__name__}: {exc}"}
        if keys:
            for row in run_strategy(self.backend, self.prompts, keys, images, order=self.order, seed=self.seed,
                                    max_new_tokens=self.max_new_tokens):
                rows[row["image_id"]] = row
        return [rows[it.image_id] for it in items]
