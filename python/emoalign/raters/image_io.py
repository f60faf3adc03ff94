"""Image loading shared by every machine rater (VLM and FER)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image file as RGB, fully decoded, so a truncated file fails here (an error row), not inside the model."""
    with Image.open(path) as im:
        im.load()
        return im.convert("RGB")
