"""Label maps (model classes -> study emotions), unmapped-class policies, VA normalisation."""

from __future__ import annotations

import numpy as np
import pytest

from emoalign.errors import EmoalignError
from emoalign.raters.fer import labels as L

EMO = list(L.DEFAULT_EMOTIONS)
AFFECTNET8 = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]


def test_default_map_folds_names_and_leaves_surprise_contempt_unmapped():
    m = L.resolve_label_map(AFFECTNET8, EMO)
    assert m == {"Anger": "angry", "Contempt": None, "Disgust": "disgust", "Fear": "fear", "Happiness": "happy",
                 "Neutral": "neutral", "Sadness": "sad", "Surprise": None}
    assert L.resolve_label_map(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"], EMO)["surprise"] is None


def test_user_map_overrides_and_merges():
    m = L.resolve_label_map(AFFECTNET8, EMO, {"Contempt": "disgust"})
    assert m["Contempt"] == "disgust" and m["Disgust"] == "disgust"
    p = np.zeros((1, 8)); p[0, [1, 2, 4]] = [0.2, 0.3, 0.5]  # contempt .2 + disgust .3, happy .5
    mapped, un = L.map_probabilities(p, AFFECTNET8, m, EMO)
    assert mapped[0, EMO.index("disgust")] == pytest.approx(0.5) and un[0] == pytest.approx(0.0)


def test_unmapped_study_emotion_is_an_error_naming_it():
    with pytest.raises(EmoalignError, match=r"no model class maps to study emotion\(s\) fear") as e:
        L.resolve_label_map(["angry", "disgust", "happy", "sad", "neutral"], EMO, model="m")
    assert "label_map" in str(e.value)
    with pytest.raises(EmoalignError, match="not a study emotion"):
        L.resolve_label_map(AFFECTNET8, EMO, {"Surprise": "surprised"})
    with pytest.raises(EmoalignError, match="does not have"):
        L.resolve_label_map(AFFECTNET8, EMO, {"Joy": "happy"})
    with pytest.raises(EmoalignError, match="no model class maps"):
        L.resolve_label_map(["LABEL_0", "LABEL_1"], ["happy", "sad"])


def test_renormalise_equals_conditional_distribution():
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(8), size=50)
    m = L.resolve_label_map(AFFECTNET8, EMO)
    mapped, un = L.map_probabilities(p, AFFECTNET8, m, EMO, "renormalise")
    keep = [AFFECTNET8.index(c) for c in ["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Neutral"]]
    expected = p[:, keep] / p[:, keep].sum(axis=1, keepdims=True)
    np.testing.assert_allclose(mapped, expected, rtol=1e-12)
    np.testing.assert_allclose(un, p[:, [1, 7]].sum(axis=1), rtol=1e-12)
    np.testing.assert_allclose(mapped.sum(axis=1), 1.0, rtol=1e-12)


def test_abstain_policy():
    m = L.resolve_label_map(AFFECTNET8, EMO)
    p = np.array([[0.1, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.7],   # surprise on top
                  [0.1, 0.1, 0.0, 0.0, 0.6, 0.2, 0.0, 0.0]])
    mapped, un = L.map_probabilities(p, AFFECTNET8, m, EMO, "abstain")
    np.testing.assert_allclose(mapped.sum(axis=1), [0.3, 0.9])
    assert L.predict(mapped, p, AFFECTNET8, m, EMO, "abstain") == [None, "happy"]
    r, _ = L.map_probabilities(p, AFFECTNET8, m, EMO, "renormalise")
    assert L.predict(r, p, AFFECTNET8, m, EMO, "renormalise") == ["happy", "happy"]
    assert r[0, EMO.index("happy")] == pytest.approx(0.2 / 0.3)
    with pytest.raises(EmoalignError):
        L.map_probabilities(p, AFFECTNET8, m, EMO, "drop")


def test_all_mass_unmapped_gives_nan_and_no_prediction():
    m = L.resolve_label_map(AFFECTNET8, EMO)
    p = np.zeros((1, 8)); p[0, 7] = 1.0
    mapped, un = L.map_probabilities(p, AFFECTNET8, m, EMO)
    assert np.isnan(mapped).all() and un[0] == 1.0
    assert L.predict(mapped, p, AFFECTNET8, m, EMO) == [None]


def test_va_paper_formula_and_generalisation():
    v = np.array([-1.0, -0.5, 0.0, 0.25, 1.0])
    np.testing.assert_allclose(L.scale_va(v), (v + 1) / 2 * 8 + 1)  # paper §3.4
    np.testing.assert_allclose(L.scale_va(v), [1, 3, 5, 6, 9])
    np.testing.assert_allclose(L.scale_va(v, scale=(1, 7)), [1, 2.5, 4, 4.75, 7])
    np.testing.assert_allclose(L.scale_va([0, 5, 10], native=(0, 10), scale=(-1, 1)), [-1, 0, 1])
    np.testing.assert_allclose(L.scale_va([1.2, -1.1]), [9.8, 0.6])  # no clipping by default
    np.testing.assert_allclose(L.scale_va([1.2, -1.1], clip=True), [9, 1])
    assert np.isnan(L.scale_va([np.nan]))[0]
    with pytest.raises(EmoalignError):
        L.scale_va([0.0], scale=(9, 1))
