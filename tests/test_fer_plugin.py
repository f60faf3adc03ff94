"""Plug-in point (fer:plugin) with the shipped example plug-ins, and HSEmotion's trust opt-in."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from emoalign.errors import EmoalignError  # noqa: E402
from emoalign.raters.fer import build_fer_rater  # noqa: E402
from emoalign.raters.fer.example_plugin import EMONET_CLASSES, TinyMTLNet, TinyVANet  # noqa: E402
from emoalign.raters.fer.hsemotion import CLASSES_8  # noqa: E402
from emoalign.raters.runs import StimulusItem  # noqa: E402

EMO = ["angry", "disgust", "fear", "happy", "sad", "neutral"]


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    import matplotlib.cbook as cbook

    d = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(11)
    out = [StimulusItem("grace_hopper", cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))]
    for k in range(3):
        p = d / f"r{k}.png"
        Image.fromarray(rng.integers(0, 256, (70, 60, 3), dtype=np.uint8)).save(p)
        out.append(StimulusItem(f"r{k}", p))
    return out


def _table(rows, cols):
    return np.array([[r[c] for c in cols] for r in rows], dtype=float)


def test_plugin_reproduces_builtin_model(items):
    """The generic plug-in path (grayscale, 64, mean .5, std .5) equals the built-in adapter."""
    plug = build_fer_rater("plugin:emoalign.raters.fer.example_plugin:minixception_plugin")
    builtin = build_fer_rater("minixception")
    assert plug.name == "minixception_plugin"
    cols = [f"p_emotion_{e}" for e in EMO]
    np.testing.assert_allclose(_table(plug.rate(items), cols), _table(builtin.rate(items), cols), atol=1e-6)


def test_plugin_from_file_with_dict_output_and_va(items, tmp_path):
    src = tmp_path / "my_emonet.py"
    src.write_text(
        "from emoalign.raters.fer.example_plugin import TinyVANet, EMONET_CLASSES\n"
        "def load(seed=0):\n"
        "    return {'model': TinyVANet(8, seed), 'labels': EMONET_CLASSES, 'input_size': 64, 'mean': 0.0, 'std': 1.0}\n")
    rater = build_fer_rater("plugin", entry=f"{src}:load", options={"seed": 3}, scales={"valence": [1, 7]},
                            rater_name="emonet_stub")
    rows = rater.rate(items)
    assert rater.name == "emonet_stub" and rater.label_map["contempt"] is None and rater.label_map["anger"] == "angry"
    net = TinyVANet(8, 3).eval()
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(it.path).convert("RGB").resize((64, 64), Image.BILINEAR),
                                                 dtype=np.float32).transpose(2, 0, 1) / 255.0) for it in items])
    with torch.no_grad():
        out = net(x)
    v, a = out["valence"].double().numpy(), out["arousal"].double().numpy()
    np.testing.assert_allclose([r["valence"] for r in rows], 1 + (v + 1) / 2 * 6, atol=1e-5)
    np.testing.assert_allclose([r["arousal"] for r in rows], 1 + (a + 1) / 2 * 8, atol=1e-5)
    p = torch.softmax(out["expression"].double(), 1).numpy()
    keep = [EMONET_CLASSES.index(c) for c in ["anger", "disgust", "fear", "happy", "sad", "neutral"]]
    np.testing.assert_allclose(_table(rows, [f"p_emotion_{e}" for e in EMO]),
                               p[:, keep] / p[:, keep].sum(1, keepdims=True), atol=1e-6)


def test_plugin_shipped_va_example(items):
    rater = build_fer_rater("plugin:emoalign.raters.fer.example_plugin:tiny_va_plugin")
    assert rater.config()["va"]["predicts_va"] and rater.name == "tiny_va"
    rows = rater.rate(items)
    assert all(1 <= r["valence"] <= 9 and 1 <= r["arousal"] <= 9 for r in rows)


def test_plugin_errors():
    with pytest.raises(EmoalignError, match="must look like"):
        build_fer_rater("plugin", entry="nocolon")
    with pytest.raises(EmoalignError, match="cannot import"):
        build_fer_rater("plugin:not_a_module_xyz:load")
    with pytest.raises(EmoalignError, match="no attribute"):
        build_fer_rater("plugin:emoalign.raters.fer.example_plugin:nope")
    with pytest.raises(EmoalignError, match="no class labels"):
        build_fer_rater("plugin:emoalign.raters.fer.example_plugin:TinyVANet")
    # a bare module + labels given in the options works
    r = build_fer_rater("plugin:emoalign.raters.fer.example_plugin:TinyVANet", labels=list(EMONET_CLASSES), input_size=32)
    assert r.adapter.classes == EMONET_CLASSES


def test_hsemotion_pickle_requires_trust_remote_code(items, tmp_path, monkeypatch):
    torch.manual_seed(0)
    path = tmp_path / "enet_b0_8_va_mtl.pt"
    net = TinyMTLNet(seed=5).eval()
    torch.save(net, path)  # whole pickled module, as HSEmotion publishes its models
    with pytest.raises(EmoalignError, match="refused without an explicit opt-in") as e:
        build_fer_rater("hsemotion", weights=str(path))
    assert "trust-remote-code" in str(e.value)
    with pytest.raises(EmoalignError, match="opt-in|hsemotion"):
        build_fer_rater("hsemotion:enet_b0_8_va_mtl")  # package path unpickles too
    rater = build_fer_rater("hsemotion", weights=str(path), trust_remote_code=True)
    assert rater.name == "enet_b0_8_va_mtl" and rater.adapter.classes == CLASSES_8 and rater.adapter.has_va
    rows = rater.rate(items[:2])
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = np.stack([(np.asarray(Image.open(it.path).convert("RGB").resize((224, 224), Image.BILINEAR)) / 255.0 - mean) / std
                  for it in items[:2]]).transpose(0, 3, 1, 2)
    with torch.no_grad():
        s = net(torch.tensor(x, dtype=torch.float32)).double().numpy()
    np.testing.assert_allclose([r["valence"] for r in rows], (s[:, 8] + 1) / 2 * 8 + 1, atol=1e-5)
    np.testing.assert_allclose([r["arousal_native"] for r in rows], s[:, 9], atol=1e-6)
    p = np.exp(s[:, :8] - s[:, :8].max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose([r["unmapped_mass"] for r in rows], p[:, 1] + p[:, 7], atol=1e-6)
    # TorchScript exports carry no pickled Python objects: no opt-in needed
    ts = tmp_path / "enet_b0_8_va_mtl_ts.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.trace(net, torch.zeros(1, 3, 224, 224)).save(str(ts))
    rows_ts = build_fer_rater("hsemotion:enet_b0_8_va_mtl", weights=str(ts)).rate(items[:2])
    np.testing.assert_allclose([r["valence"] for r in rows_ts], [r["valence"] for r in rows], atol=1e-5)
    # the installed-package path: hsemotion's get_model_path fetches the file; the same opt-in applies
    import types

    fake = types.ModuleType("hsemotion.facial_emotions")
    fake.get_model_path = lambda name: str(path)
    monkeypatch.setitem(sys.modules, "hsemotion", types.ModuleType("hsemotion"))
    monkeypatch.setitem(sys.modules, "hsemotion.facial_emotions", fake)
    with pytest.raises(EmoalignError, match="opt-in"):
        build_fer_rater("hsemotion:enet_b0_8_va_mtl")
    rows_pkg = build_fer_rater("hsemotion:enet_b0_8_va_mtl", trust_remote_code=True).rate(items[:2])
    np.testing.assert_allclose([r["p_emotion_happy"] for r in rows_pkg], [r["p_emotion_happy"] for r in rows], atol=1e-9)
