"""The one interface every VLM backend (``hf``, ``mlx``, ``openai``, plug-ins) implements: :class:`VLMBackend`,
checked when a backend is registered (``backends.vlm_backend``).

A prompting strategy (``strategies.py``) turns each image into a sequence of ``Ask`` requests (a
step's prompt depends on earlier answers under context-carry) and sends them in batches. Each ask is
one user turn holding the image and the text, placed as ``inputs.resolve_placement`` says (the model's
own placement by default: image first), so a backend may encode an image prefix once and reuse it (KV
cache) for every step of the same ``image_key`` until ``release(image_key)``.

Backends return the generated text and, where they expose logits/logprobs, the probability of each
candidate string (labels, or rating values "1".."9") at the answer position — where ``Ask.locate``
finds the parsed answer in the generated text — scored by its full token sequence and renormalised
over the candidates, plus the total mass the candidates had before renormalising (``answer_probs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence

from PIL import Image


@dataclass(frozen=True)
class Ask:
    """One prompt step for one image."""

    image_key: str                 # stable id of the image (image_id); prefix caches are keyed by it
    image: Image.Image
    prompt: str                    # the user text that follows the image
    candidates: tuple[str, ...] = ()   # strings whose answer-position probabilities to return
    max_new_tokens: int = 32
    #: generated text -> (start, end) of the parsed answer in it (None: not found); the answer position
    locate: Callable[[str], tuple[int, int] | None] | None = field(default=None, compare=False)


@dataclass
class Answer:
    text: str                                   # raw generated text (greedy)
    probs: dict[str, float] | None = None       # candidate -> probability (sums to 1), None if unavailable
    candidate_mass: float | None = None         # probability mass of candidates before renormalising
    info: dict = field(default_factory=dict)    # backend extras (tokens generated, fast-path used, ...)


class VLMBackend(Protocol):
    """A loaded model behind one of the backends. Registering a class (``@vlm_backend``, or an
    ``emoalign.backends`` entry point) checks that it has these methods; its constructor
    ``(model, **keywords)`` names the :class:`~emoalign.raters.vlm.config.GenerateConfig` fields it takes. An
    optional ``default_batch_size`` attribute sizes batches when ``--batch-size`` is not given (else 1)."""

    def provenance(self) -> dict:
        """model_id, model_revision, dtype, quantization, backend, image_placement, versions (package -> version)."""

    def ask(self, asks: Sequence[Ask]) -> list[Answer]:
        """Answer a batch of asks (greedy decoding), one Answer per Ask, in order."""

    def release(self, image_key: str) -> None:
        """Drop any cached state (image prefix) for ``image_key``."""
