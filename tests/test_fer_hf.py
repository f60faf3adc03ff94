"""transformers image classifiers as FER raters: tiny random-weight MobileViT, BEiT, ViT built from configs."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from emoalign.errors import EmoalignError  # noqa: E402
from emoalign.raters.fer import build_fer_rater  # noqa: E402
from emoalign.raters.runs import StimulusItem  # noqa: E402

AFFECTNET8 = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
EMO = ["angry", "disgust", "fear", "happy", "sad", "neutral"]


def _tiny(family: str, labels: list[str]):
    id2label = dict(enumerate(labels))
    kw = dict(num_labels=len(labels), id2label=id2label, label2id={v: k for k, v in id2label.items()})
    if family == "mobilevit":
        cfg = transformers.MobileViTConfig(image_size=32, hidden_sizes=[16, 16, 16], neck_hidden_sizes=[8, 8, 8, 8, 8, 8, 16],
                                           num_attention_heads=2, mlp_ratio=2.0, **kw)
        model, proc = transformers.MobileViTForImageClassification(cfg), transformers.MobileViTImageProcessor(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    elif family == "beit":
        cfg = transformers.BeitConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                      intermediate_size=64, use_mean_pooling=True, **kw)
        model, proc = transformers.BeitForImageClassification(cfg), transformers.BeitImageProcessor(
            size={"height": 32, "width": 32}, do_center_crop=False)
    else:
        cfg = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                                     intermediate_size=64, **kw)
        model, proc = transformers.ViTForImageClassification(cfg), transformers.ViTImageProcessor(size={"height": 32, "width": 32})
    return model.eval(), proc


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("img")
    rng = np.random.default_rng(7)
    items = []
    for k in range(5):
        arr = rng.integers(0, 256, (40 + 3 * k, 36, 3), dtype=np.uint8)
        p = d / f"im{k}.png"
        Image.fromarray(arr).save(p)
        items.append(StimulusItem(f"im{k}", p))
    return items


@pytest.mark.parametrize("family", ["mobilevit", "beit", "vit"])
def test_random_weight_classifier_from_local_dir(family, images, tmp_path):
    torch.manual_seed(0)
    model, proc = _tiny(family, AFFECTNET8)
    with torch.no_grad():  # make the random head decisive so the argmax is not a near-tie
        model.classifier.weight.mul_(50.0)
    model.save_pretrained(tmp_path / family)
    proc.save_pretrained(tmp_path / family)
    rater = build_fer_rater(f"hf:{tmp_path / family}", batch_size=2)
    assert rater.name == family and rater.config()["label_map"]["Contempt"] is None
    rows = rater.rate(images)
    # independent path: transformers forward, softmax, drop Contempt/Surprise, renormalise
    with torch.no_grad():
        x = proc(images=[Image.open(it.path).convert("RGB") for it in images], return_tensors="pt")
        p = torch.softmax(model(**x).logits.double(), dim=1).numpy()
    keep = [AFFECTNET8.index(c) for c in ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Neutral"]]
    exp = p[:, keep] / p[:, keep].sum(axis=1, keepdims=True)
    got = np.array([[r[f"p_emotion_{e}"] for e in EMO] for r in rows])
    np.testing.assert_allclose(got, exp, atol=1e-6)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-9)
    assert [r["emotion"] for r in rows] == [EMO[i] for i in exp.argmax(axis=1)]
    np.testing.assert_allclose([r["unmapped_mass"] for r in rows], p[:, [1, 7]].sum(axis=1), atol=1e-6)
    np.testing.assert_allclose([r["p_class_contempt"] for r in rows], p[:, 1], atol=1e-6)


def test_va_columns_of_a_multitask_head(images, tmp_path):
    torch.manual_seed(1)
    model, proc = _tiny("vit", AFFECTNET8 + ["valence", "arousal"])
    model.save_pretrained(tmp_path / "mtl")
    proc.save_pretrained(tmp_path / "mtl")
    rater = build_fer_rater(str(tmp_path / "mtl"), valence_index=8, arousal_index=9, scales={"arousal": [0, 100]})
    assert rater.adapter.classes == tuple(AFFECTNET8) and rater.adapter.has_va
    rows = rater.rate(images[:3])
    with torch.no_grad():
        logits = model(**proc(images=[Image.open(it.path).convert("RGB") for it in images[:3]],
                              return_tensors="pt")).logits.double().numpy()
    np.testing.assert_allclose([r["valence"] for r in rows], (logits[:, 8] + 1) / 2 * 8 + 1, atol=1e-5)
    np.testing.assert_allclose([r["arousal"] for r in rows], (logits[:, 9] + 1) / 2 * 100, atol=1e-4)
    np.testing.assert_allclose([r["valence_native"] for r in rows], logits[:, 8], atol=1e-6)
    p = np.exp(logits[:, :8] - logits[:, :8].max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose([r["p_class_happiness"] for r in rows], p[:, 4], atol=1e-6)


def test_generic_labels_need_a_label_map(tmp_path):
    model, proc = _tiny("vit", [f"LABEL_{i}" for i in range(7)])
    model.save_pretrained(tmp_path / "generic")
    proc.save_pretrained(tmp_path / "generic")
    with pytest.raises(EmoalignError, match="no model class maps to study emotion"):
        build_fer_rater(f"hf:{tmp_path / 'generic'}")
    lm = {"LABEL_0": "angry", "LABEL_1": "disgust", "LABEL_2": "fear", "LABEL_3": "happy", "LABEL_4": "sad",
          "LABEL_5": None, "LABEL_6": "neutral"}
    rater = build_fer_rater(f"hf:{tmp_path / 'generic'}", label_map=lm)
    assert rater.label_map == lm


def test_missing_model_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmoalignError, match="could not load"):
        build_fer_rater(f"hf:{tmp_path / 'empty'}")
