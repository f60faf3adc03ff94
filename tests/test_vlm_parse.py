"""The parse cascade on adversarial VLM outputs (paper §3.3: JSON, fence stripping, regex, 3-char fuzzy labels,
clamping), plus reasoning-trace stripping."""

import pytest

from emoalign.data.schemas import PARSE_STATUSES
from emoalign.raters.vlm.parse import parse_integrated, parse_label, parse_rating, strip_reasoning

LABELS = ("happy", "sad", "angry", "fear", "disgust", "neutral")

LABEL_CASES = [
    ('{"emotion": "happy"}', "happy", "json"),
    ('"angry"', "angry", "json"),
    ('```json\n{"emotion": "fear"}\n```', "fear", "fence"),
    ('```\n{"emotion": "Disgust"}\n```\nHope this helps!', "disgust", "fence"),
    ('Sure! {"emotion": "sad"} is my answer.', "sad", "regex"),
    ("happy", "happy", "regex"),
    ("Angry.", "angry", "regex"),
    ("  NEUTRAL\n", "neutral", "regex"),
    ("The expression is happy, though it could be read otherwise.", "happy", "regex"),
    ("sadness", "sad", "fuzzy"),
    ("Fearful", "fear", "fuzzy"),
    ("disgusted", "disgust", "fuzzy"),
    ('{"emotion": "happiness"}', "happy", "fuzzy"),
    ("<think>It might be sad, or angry... the brows are raised.</think>\nfear", "fear", "regex"),
    ("<thinking>\nmaybe happy\n</thinking>disgust", "disgust", "regex"),
    ("reasoning about sad faces</think> neutral", "neutral", "regex"),
    ("<think>unfinished reasoning about happy faces", None, "invalid"),
    ("doubt", None, "invalid"),
    ('{"emotion": "doubt"}', None, "invalid"),
    ("", None, "invalid"),
    ("42", None, "invalid"),
]


@pytest.mark.parametrize("text,value,status", LABEL_CASES)
def test_parse_label_table(text, value, status):
    p = parse_label(text, LABELS)
    assert (p.value, p.status) == (value, status)
    assert p.status in PARSE_STATUSES


def test_invalid_label_keeps_raw_text_and_is_not_coerced():
    p = parse_label("doubt", LABELS)
    assert p.value is None and p.status == "invalid" and p.text == "doubt"


RATING_CASES = [
    ("8", 8.0, "json"),
    ('{"valence": 3}', 3.0, "json"),
    ('{"rating": "6"}', 6.0, "json"),
    ("```json\n{\"valence\": 2}\n```", 2.0, "fence"),
    ("8/9", 8.0, "regex"),
    ("7 out of 9", 7.0, "regex"),
    ("rating: 10", 9.0, "regex"),          # clamped to the scale
    ("0", 1.0, "json"),                    # clamped up
    ("-3", 1.0, "json"),
    ("7. The face looks calm.", 7.0, "regex"),
    ("On a scale of 1 to 9, I'd say 6.", 6.0, "regex"),
    ("Rate from 1 to 9: 4", 4.0, "regex"),
    ("On a 1-9 scale: 3", 3.0, "regex"),
    ("6.5", 6.5, "json"),
    ("7-8", 7.0, "regex"),
    ("<think>is it 2? maybe 9</think>5", 5.0, "json"),
    ("seven", None, "invalid"),
    ("", None, "invalid"),
]


@pytest.mark.parametrize("text,value,status", RATING_CASES)
def test_parse_rating_table(text, value, status):
    p = parse_rating(text, 1, 9, "valence")
    assert (p.value, p.status) == (value, status)


def test_rating_uses_study_scale_not_1_to_9():
    assert parse_rating("rating: 10", 0, 10).value == 10.0
    assert parse_rating("12", 0, 10).value == 10.0
    assert parse_rating('{"arousal": 0}', 1, 7, "arousal").value == 1.0


def test_strip_reasoning_variants():
    assert strip_reasoning("<think>a</think>b") == "b"
    assert strip_reasoning("<reasoning>x\ny</reasoning>\n\n 3") == "3"
    assert strip_reasoning("no trace") == "no trace"
    assert strip_reasoning("<THINK>a</THINK>ok") == "ok"


def test_parse_integrated():
    scales = {"valence": (1, 9), "arousal": (1, 9)}
    out = parse_integrated('```json\n{"emotion": "Sadness", "valence": 2, "arousal": 11}\n```', LABELS, scales)
    assert (out["emotion"].value, out["emotion"].status) == ("sad", "fuzzy")
    assert (out["valence"].value, out["valence"].status) == (2.0, "fence")
    assert (out["arousal"].value, out["arousal"].status) == (9.0, "fence")
    out = parse_integrated("emotion: happy, valence: 8, arousal: 7", LABELS, scales)
    assert [out[k].value for k in ("emotion", "valence", "arousal")] == ["happy", 8.0, 7.0]
    assert {p.status for p in out.values()} == {"regex"}
    out = parse_integrated('{"emotion": "doubt", "valence": 5}', LABELS, scales)
    assert out["emotion"].value is None and out["emotion"].status == "invalid"
    assert out["valence"].value == 5.0 and out["arousal"].status == "invalid"
