"""Example FER plug-ins (see ``plugin.py``), used by the tests and as templates.

``minixception_plugin``
    the built-in mini-Xception through the generic plug-in path (grayscale 64x64, mean 0.5, std 0.5 ==
    ``(x / 255 - 0.5) * 2``): gives the same ratings as ``fer:minixception``.
``tiny_va_plugin``
    a small seeded random-weight CNN with EmoNet's output format (dict with ``expression`` logits over
    EmoNet's 8 AffectNet classes, ``valence`` and ``arousal`` in [-1, 1] via tanh): a stand-in for EmoNet
    that exercises label mapping with contempt/surprise and VA scaling. Not a trained model.
``TinyMTLNet``
    HSEmotion-style multi-task head (N x (8 + 2): 8 logits, valence, arousal) used to test the
    ``fer:hsemotion`` local-file path.
"""

from __future__ import annotations

import torch
from torch import nn

from emoalign.raters.fer.plugin import FERPlugin

#: EmoNet's 8-class order (AffectNet): neutral, happy, sad, surprise, fear, disgust, anger, contempt
EMONET_CLASSES = ("neutral", "happy", "sad", "surprise", "fear", "disgust", "anger", "contempt")
#: HSEmotion / EmotiEffLib 8-class order
HSEMOTION_CLASSES = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")


def minixception_plugin(weights: str | None = None) -> FERPlugin:
    from emoalign.raters.fer.minixception import FER2013_CLASSES, load_minixception

    return FERPlugin(load_minixception(weights), labels=FER2013_CLASSES, input_size=64, mean=0.5, std=0.5,
                     grayscale=True, name="minixception_plugin")


class TinyVANet(nn.Module):
    """Conv -> pool -> linear heads; returns ``{"expression", "valence", "arousal"}`` like EmoNet."""

    def __init__(self, n_expression: int = 8, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 8, 5, stride=2), nn.ReLU(), nn.Conv2d(8, 16, 3, stride=2), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.expression = nn.Linear(16, n_expression)
        self.va = nn.Linear(16, 2)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        h = self.features(x)
        va = torch.tanh(self.va(h))
        return {"expression": self.expression(h), "valence": va[:, 0], "arousal": va[:, 1]}


def tiny_va_plugin(seed: int = 0, input_size: int = 64) -> FERPlugin:
    return FERPlugin(TinyVANet(len(EMONET_CLASSES), seed), labels=EMONET_CLASSES, input_size=input_size,
                     mean=0.0, std=1.0, has_va=True, name="tiny_va", model_id=f"example/tiny-va-seed{seed}")


class TinyMTLNet(nn.Module):
    """HSEmotion-style output: one N x 10 tensor (8 class logits, then valence, arousal)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.features = nn.Sequential(nn.Conv2d(3, 4, 7, stride=4), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(4, 10)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        return self.classifier(self.features(x))
