"""HSEmotion / EmotiEffLib EfficientNet models (``fer:hsemotion:<model name>``), e.g. the paper's
EfficientNet-B0-8-VA-MTL (``enet_b0_8_va_mtl``: 8 AffectNet classes + valence + arousal).

Savchenko, A. V. (2022). "Classifying emotions and engagement in online learning based on a single
facial expression recognition neural network." IEEE Trans. Affective Computing (HSEmotion models).

Two sources:

``weights=PATH``
    a local ``<model_name>.pt`` file as published by HSEmotion (a whole pickled timm model). Unpickling
    runs code from the file, so it needs ``trust_remote_code=True``; without it this is an error. A
    TorchScript export (``torch.jit.save``) or a ``torch.export`` archive (``.pt2``) loads without the opt-in.
no ``weights``
    the file the user's installed ``hsemotion`` package fetches (``get_model_path``: downloaded to
    ``~/.hsemotion`` on first use), loaded as above — also needs ``trust_remote_code=True``. emoalign loads
    it itself (``torch.load(weights_only=False)``, which torch >= 2.6 requires for whole pickled models).

Classes: ``Anger, Contempt, Disgust, Fear, Happiness, Neutral, Sadness, Surprise`` (7-class models drop
Contempt); model names containing ``_mtl`` put valence, arousal in the last two outputs (range [-1, 1]).
Preprocessing as ``hsemotion.facial_emotions`` (torchvision ``Resize((s, s))`` on PIL images = PIL
bilinear, ``ToTensor``, ImageNet ``Normalize``): s = 224 (B0) or 260 (B2). The model is applied whole
(backbone + classifier), which equals the package's features @ classifier weights + bias.
"""

from __future__ import annotations

from pathlib import Path

from emoalign.data.io import file_sha256
from emoalign.errors import EmoalignError
from emoalign.raters.fer import fer_model
from emoalign.raters.fer.base import FERAdapter, parse_model_output, to_tensor

CLASSES_8 = ("Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")
CLASSES_7 = ("Anger", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
TRUST_HINT = ("unpickling a model file runs arbitrary code from it; if you trust the file, opt in with "
              "trust_remote_code=True (CLI: --trust-remote-code or --option trust_remote_code=true), "
              "or export the model with torch.jit.save / torch.export")


def model_facts(model_name: str) -> tuple[tuple[str, ...], bool, int]:
    """(classes, multi-task VA?, input size) from an HSEmotion model name, as the hsemotion package does."""
    classes = CLASSES_7 if "_7" in model_name else CLASSES_8
    return classes, "_mtl" in model_name, 224 if "_b0_" in model_name else 260


def _package_weights(model_name: str) -> str:
    """Path of ``<model_name>.pt`` from the user's hsemotion package (it downloads to ~/.hsemotion once)."""
    try:
        from hsemotion.facial_emotions import get_model_path
    except ImportError as exc:
        raise EmoalignError("fer:hsemotion without weights= needs the hsemotion package",
                            hint="pip install hsemotion (downloads the weights on first use), or pass "
                                 "weights=PATH to a local <model>.pt file") from exc
    try:
        return get_model_path(model_name)
    except Exception as exc:
        raise EmoalignError(f"hsemotion could not fetch {model_name}: {type(exc).__name__}: {exc}",
                            hint="download <model>.pt from the HSEmotion repository and pass weights=PATH") from exc


def _load_file(path: Path, trust_remote_code: bool, device: str):
    import warnings

    import torch

    if path.suffix == ".pt2":  # torch.export archive: no pickled Python objects
        return torch.export.load(str(path)).module().to(device), "torch.export"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device), "torchscript"
    except Exception:
        pass
    if not trust_remote_code:
        raise EmoalignError(f"{path} is a pickled model; loading it is refused without an explicit opt-in",
                            hint=TRUST_HINT)
    try:
        model = torch.load(str(path), map_location=device, weights_only=False)
    except Exception as exc:
        raise EmoalignError(f"could not load the HSEmotion model file {path}: {type(exc).__name__}: {exc}",
                            hint="give the .pt file published by HSEmotion/EmotiEffLib (a whole pickled model)") from exc
    if not callable(model):
        raise EmoalignError(f"{path} holds a {type(model).__name__}, not a model",
                            hint="a state dict needs the model code: use fer:plugin with your loader")
    return model, "pickle"


class HSEmotionAdapter(FERAdapter):
    def __init__(self, model_name: str = "enet_b0_8_va_mtl", *, weights: str | Path | None = None,
                 trust_remote_code: bool = False, device: str = "cpu", image_size: int | None = None):
        self.device = device
        self.model_name = model_name
        classes, mtl, size = model_facts(model_name)
        self.classes = classes
        self.has_va = mtl
        self.image_size = int(image_size or size)
        self.default_name = model_name
        if weights is None:
            if not trust_remote_code:
                raise EmoalignError(f"fer:hsemotion:{model_name} would unpickle the model the hsemotion package "
                                    "downloads; that is refused without an explicit opt-in",
                                    hint=TRUST_HINT)
            weights = _package_weights(model_name)
        path = Path(weights).expanduser()
        if not path.is_file():
            raise EmoalignError(f"HSEmotion weights file {path} not found", hint="check the weights path")
        self.model, self.format = _load_file(path, trust_remote_code, device)
        if hasattr(self.model, "eval"):
            self.model.eval()
        self.weights_path = str(path)
        self.model_id = f"hsemotion/{model_name}"
        self.revision = file_sha256(path)[:16]

    def preprocess(self, images):
        return to_tensor(images, self.image_size, IMAGENET_MEAN, IMAGENET_STD).to(self.device)

    def forward(self, batch):
        va = {"valence_index": len(self.classes), "arousal_index": len(self.classes) + 1} if self.has_va else {}
        return parse_model_output(self.model(batch), len(self.classes), **va)

    def provenance(self):
        return {"model_revision": self.revision, "model_format": self.format,
                "preprocessing": {"input_size": self.image_size, "mean": IMAGENET_MEAN, "std": IMAGENET_STD}}


@fer_model("hsemotion", arg="model_name",
           description="HSEmotion/EmotiEffLib EfficientNet (e.g. enet_b0_8_va_mtl, 8 classes + valence/arousal): "
                       "fer:hsemotion:<model>, weights=<file.pt> or the hsemotion package; needs --trust-remote-code")
def build_adapter(*, model_name: str | None = None, weights: str | None = None, trust_remote_code: bool = False,
                  device: str = "cpu", image_size: int | None = None, **unknown) -> HSEmotionAdapter:
    if unknown:
        raise EmoalignError(f"fer:hsemotion got unknown option(s) {', '.join(sorted(unknown))}",
                            hint="its options are: model_name, weights, image_size, trust_remote_code")
    if model_name is None and weights is not None:
        model_name = Path(weights).stem
    return HSEmotionAdapter(model_name or "enet_b0_8_va_mtl", weights=weights, trust_remote_code=trust_remote_code,
                            device=device, image_size=image_size)
