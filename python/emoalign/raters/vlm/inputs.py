"""How a prompt and an image reach a model, shared by the ``hf`` and ``mlx`` backends (and the placement by
``openai``), so every backend sends the same token ids.

* **Image placement** (``IMAGE_PLACEMENTS``): where the image goes in the user turn relative to the text.
  ``model`` (default) is the placement the model's publisher documents for its chat template, which is
  *before* the text for Gemma 3 (``google/gemma-3-*-it`` model cards) and LLaMA-3.2-Vision (Meta's
  prompt format: ``<|image|>`` first; text before the image cannot attend to it through cross-attention),
  and before the text for any other model. ``before`` / ``after`` force it. mlx-vlm's own prompt helper
  (``mlx_vlm.prompt_utils.apply_chat_template``, used by ``python -m mlx_vlm.generate``) puts the image
  *after* the text for gemma3 and mllama; ``after`` reproduces those prompts. The resolved placement is
  recorded in provenance (``image_placement``).
* **Special tokens**: the chat templates of Gemma 3 and LLaMA-3.2-Vision already start with the BOS token,
  so the templated text is tokenised *without* adding special tokens; a template without BOS gets the
  tokenizer's own. (mlx-vlm 0.7 adds them whenever the processor has no chat template of its own, which
  gave Gemma3 ``<bos><bos>`` and LLaMA ``<|begin_of_text|>`` twice.)
* **Preprocessing once per image**: ``ImageProcessorMemo`` wraps a processor's image processor so the
  resize/normalise of an image runs once, not once per prompt step; the steps only re-tokenise their text.
"""

from __future__ import annotations

import copy
import hashlib
from collections import OrderedDict

from emoalign.errors import EmoalignError

IMAGE_PLACEMENTS = ("model", "before", "after")
#: the documented placement of each publisher's chat usage (model cards / prompt-format guides)
MODEL_PLACEMENT = {"gemma3": "before", "mllama": "before"}


def resolve_placement(requested: str | None, model_type: str | None) -> str:
    """``before`` or ``after`` for ``requested`` (``model``/None: the model's own documented placement)."""
    requested = requested or "model"
    if requested not in IMAGE_PLACEMENTS:
        raise EmoalignError(f"unknown image placement {requested!r}", hint=f"choose one of: {', '.join(IMAGE_PLACEMENTS)}")
    if requested == "model":
        return MODEL_PLACEMENT.get((model_type or "").lower(), "before")
    return requested


def user_content(prompt: str, placement: str, image_part: dict | None = None) -> list[dict]:
    """The user turn's content parts: the image part and the text, in ``placement`` order."""
    image = image_part if image_part is not None else {"type": "image"}
    text = {"type": "text", "text": prompt}
    return [image, text] if placement == "before" else [text, image]


def chat_template_of(*objs) -> str | None:
    """The first chat template found on ``objs`` (a processor, then its tokenizer)."""
    for obj in objs:
        template = getattr(obj, "chat_template", None)
        if template:
            return template
    return None


def render_chat(processor, tokenizer, prompt: str, placement: str) -> str:
    """The chat-formatted text of one user turn (image and ``prompt`` in ``placement`` order) with the
    generation prompt, rendered by the model's own chat template (the processor's, else the tokenizer's)."""
    template = chat_template_of(processor, tokenizer)
    if template is None:
        raise EmoalignError("the model has no chat template (neither its processor nor its tokenizer)",
                            hint="use an instruction-tuned checkpoint that ships chat_template.json or a tokenizer chat_template")
    messages = [{"role": "user", "content": user_content(prompt, placement)}]
    return tokenizer.apply_chat_template(messages, chat_template=template, add_generation_prompt=True, tokenize=False)


def add_special_tokens_for(text: str, tokenizer) -> bool:
    """Whether tokenising the templated ``text`` should add special tokens: not when it already starts
    with the BOS token (one BOS, as the model was trained)."""
    bos = getattr(tokenizer, "bos_token", None)
    return not (bos and text.startswith(bos))


def image_digest(image) -> str:
    """Content digest of a PIL image (mode, size and pixels)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()


def _leaves(images):
    if isinstance(images, (list, tuple)):
        for x in images:
            yield from _leaves(x)
    else:
        yield images


class ImageProcessorMemo:
    """A processor's image processor that preprocesses each distinct image once.

    Installed as ``processor.image_processor``: the processor's ``__call__`` calls it with the images of a
    prompt; a call with the same images (by pixel digest) and options returns a copy of the first result.
    Everything else is delegated to the wrapped processor. ``forget(digests)`` drops entries (a backend's
    ``release``); at most ``max_entries`` are kept (least recently used dropped first).
    """

    def __init__(self, inner, max_entries: int = 32):
        self._inner = inner
        self._cache: OrderedDict[tuple, object] = OrderedDict()
        self.max_entries = max_entries
        self.calls = 0          # preprocessing runs (cache misses)

    @classmethod
    def install(cls, processor, **kw) -> "ImageProcessorMemo | None":
        """Wrap ``processor.image_processor`` (once); returns the memo, or None when there is none to wrap."""
        inner = getattr(processor, "image_processor", None)
        if inner is None:
            return None
        if isinstance(inner, cls):
            return inner
        memo = cls(inner, **kw)
        processor.image_processor = memo
        return memo

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def __call__(self, images, *args, **kwargs):
        leaves = list(_leaves(images))
        if not leaves or not all(hasattr(im, "tobytes") and hasattr(im, "mode") for im in leaves):
            self.calls += 1
            return self._inner(images, *args, **kwargs)
        key = (tuple(image_digest(im) for im in leaves), repr(args), repr(sorted(kwargs.items(), key=lambda kv: kv[0])))
        hit = self._cache.get(key)
        if hit is None:
            self.calls += 1
            hit = self._inner(images, *args, **kwargs)
            self._cache[key] = hit
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return copy.copy(hit)        # processors pop keys (num_tiles, num_crops) from what they get

    def forget(self, digests) -> None:
        drop = set(digests)
        for key in [k for k in self._cache if drop & set(k[0])]:
            del self._cache[key]
