"""The parse cascade on adversarial VLM outputs (paper §3.3: JSON, fence stripping, regex, 3-char fuzzy labels,
clamping), reasoning-trace stripping, answer markers, echoed option lists, negations, the dimension asked, number
words, incidental numbers, answer spans, and a property test over generated answer texts (hypothesis)."""

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

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
    # prompt echo: the option list is not the answer, the committed answer after it is
    ("Choose one from: happy, sad, angry, fear, disgust, neutral. The answer is fear", "fear", "regex"),
    ("Options: happy, sad or angry. I pick disgust", "disgust", "regex"),
    # negation
    ("not happy; it is sad", "sad", "regex"),
    ("The face is not angry at all, rather neutral.", "neutral", "regex"),
    ("It isn't fear. Disgust.", "disgust", "regex"),
    # an explicit marker wins over earlier mentions
    ("It could be sad, but on balance... **Answer:** angry", "angry", "regex"),
    ("Emotion: Happiness", "happy", "fuzzy"),
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
    ("rating: 10", 9.0, "clamped"),        # clamped to the scale, and said so
    ("0", 1.0, "clamped"),                 # clamped up
    ("-3", 1.0, "clamped"),
    ("7. The face looks calm.", 7.0, "regex"),
    ("On a scale of 1 to 9, I'd say 6.", 6.0, "regex"),
    ("Rate from 1 to 9: 4", 4.0, "regex"),
    ("On a 1-9 scale: 3", 3.0, "regex"),
    ("6.5", 6.5, "json"),
    ("7-8", 7.0, "regex"),
    ("<think>is it 2? maybe 9</think>5", 5.0, "json"),
    ("seven", 7.0, "regex"),               # number words
    ("Seven.", 7.0, "regex"),
    ("", None, "invalid"),
    ("NaN", None, "invalid"),              # json.loads("NaN") is nan: not a rating
    ('{"valence": NaN}', None, "invalid"),
    ("Infinity", None, "invalid"),
    ("I'd estimate it's around 8. **Answer:** 7", 7.0, "regex"),      # explicit marker after reasoning
    ("Thinking about it... maybe 3 or 4. Final answer: 6", 6.0, "regex"),
    ("The person seems to be in their 20s; I rate 4", 4.0, "regex"),   # incidental number skipped
    ("She looks about 30 years old. 5", 5.0, "regex"),
    ("The 2 eyes are relaxed: 6", 6.0, "regex"),
    ("Valence: 3, Arousal: 6", 3.0, "regex"),                          # the dimension asked (valence)
    ("Pleasantness is 2", 2.0, "regex"),
]


@pytest.mark.parametrize("text,value,status", RATING_CASES)
def test_parse_rating_table(text, value, status):
    p = parse_rating(text, 1, 9, "valence")
    assert (p.value, p.status) == (value, status)


def test_rating_step_takes_the_dimension_asked():
    assert parse_rating("Valence: 3, Arousal: 6", 1, 9, "arousal").value == 6.0
    assert parse_rating("Arousal: 6. Valence: 3", 1, 9, "valence").value == 3.0
    assert parse_rating("valence 2; intensity 8", 1, 9, "arousal").value == 8.0
    assert parse_rating("Valence: 3", 1, 9, "arousal").value is None     # only the other dimension named


def test_negative_scales_and_number_words():
    assert (parse_rating("-2", -4, 4).value, parse_rating("-2", -4, 4).status) == (-2.0, "json")
    assert parse_rating("minus three", -4, 4).value == -3.0
    assert parse_rating("negative 4", -4, 4).value == -4.0
    assert (parse_rating("-7", -4, 4).value, parse_rating("-7", -4, 4).status) == (-4.0, "clamped")
    assert parse_rating("ten", 1, 10).value == 10.0


def test_rating_uses_study_scale_not_1_to_9():
    assert parse_rating("rating: 10", 0, 10).value == 10.0
    assert parse_rating("12", 0, 10).value == 10.0
    assert parse_rating('{"arousal": 0}', 1, 7, "arousal").value == 1.0


def test_strip_reasoning_variants():
    assert strip_reasoning("<think>a</think>b") == "b"
    assert strip_reasoning("<reasoning>x\ny</reasoning>\n\n 3") == "3"
    assert strip_reasoning("no trace") == "no trace"
    assert strip_reasoning("<THINK>a</THINK>ok") == "ok"
    assert strip_reasoning("<|begin_of_thought|>a face<|end_of_thought|> sad") == "sad"


def test_parser_and_answer_position_share_one_list_of_reasoning_tags():
    """Every trace the parser strips is one the answer-position finder skips (and the other way round)."""
    from emoalign.raters.vlm.answer_probs import THINK_CLOSERS, reasoning_end
    from emoalign.raters.vlm.parse import REASONING_END_MARKERS, REASONING_TAGS

    assert set(THINK_CLOSERS) == {f"</{t}>" for t in REASONING_TAGS} | set(REASONING_END_MARKERS)
    for closer in THINK_CLOSERS:
        tokens = ["<" + closer[2:] if closer.startswith("</") else "", "hmm", closer, " happy"]
        assert reasoning_end(tokens) == 3 and strip_reasoning("".join(tokens)) == "happy"


def test_parse_integrated():
    scales = {"valence": (1, 9), "arousal": (1, 9)}
    out = parse_integrated('```json\n{"emotion": "Sadness", "valence": 2, "arousal": 11}\n```', LABELS, scales)
    assert (out["emotion"].value, out["emotion"].status) == ("sad", "fuzzy")
    assert (out["valence"].value, out["valence"].status) == (2.0, "fence")
    assert (out["arousal"].value, out["arousal"].status) == (9.0, "clamped")
    out = parse_integrated("emotion: happy, valence: 8, arousal: 7", LABELS, scales)
    assert [out[k].value for k in ("emotion", "valence", "arousal")] == ["happy", 8.0, 7.0]
    assert {p.status for p in out.values()} == {"regex"}
    out = parse_integrated('{"emotion": "doubt", "valence": 5}', LABELS, scales)
    assert out["emotion"].value is None and out["emotion"].status == "invalid"
    assert out["valence"].value == 5.0 and out["arousal"].status == "invalid"


def test_spans_point_at_the_answer_in_the_raw_text():
    text = "<think>sad? angry?</think>Choose one from: happy, sad, angry. The answer is fear."
    p = parse_label(text, LABELS)
    assert p.value == "fear" and text[p.span[0]:p.span[1]] == "fear"
    text = "Valence: 3, Arousal: 6"
    p = parse_rating(text, 1, 9, "arousal")
    assert text[p.span[0]:p.span[1]] == "6"
    text = '```json\n{"emotion": "Sadness"}\n```'
    p = parse_label(text, LABELS)
    assert text[p.span[0]:p.span[1]] == "Sadness"
    text = "<think>maybe 2</think> around 8. **Answer:** 7"
    p = parse_rating(text, 1, 9)
    assert text[p.span[0]:p.span[1]] == "7" and p.span[0] == len(text) - 1
    assert parse_rating("doubt", 1, 9).span is None


# --- property test: generated answer texts --------------------------------------------------------

FILLER = st.lists(st.sampled_from(["I", "think", "this", "face", "looks", "the", "person", "expression", "seems",
                                   "overall", "well", "so", "hmm", "okay", "quite", "clearly"]), max_size=6).map(" ".join)
NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]


@st.composite
def rating_answer(draw):
    lo = draw(st.sampled_from([1, 0, -4]))
    hi = draw(st.sampled_from([5, 7, 9, 10])) if lo >= 0 else 4
    value = draw(st.integers(lo - 3, hi + 3))
    dim = draw(st.sampled_from(["valence", "arousal"]))
    other = "arousal" if dim == "valence" else "valence"
    written = str(value) if value < 0 or value > 10 or not draw(st.booleans()) else NUMBER_WORDS[value]
    form = draw(st.sampled_from(["bare", "marker", "dimension", "json", "fence", "both_dims", "think", "denominator",
                                 "range_then"]))
    pre = draw(FILLER)
    distract = draw(st.integers(lo, hi))
    if form == "bare":
        text = f"{written}"
    elif form == "marker":
        text = f"{pre} around {distract}. **Answer:** {written}"
    elif form == "dimension":
        text = f"{pre}. {dim.capitalize()}: {written}"
    elif form == "json":
        text = json.dumps({dim: value})
    elif form == "fence":
        text = f"```json\n{json.dumps({dim: value})}\n```"
    elif form == "both_dims":
        pair = {dim: written, other: distract}
        order = [dim, other] if draw(st.booleans()) else [other, dim]
        text = ", ".join(f"{k.capitalize()}: {pair[k]}" for k in order)
    elif form == "think":
        text = f"<think>{pre} maybe {distract}, or {distract}?</think> {written}"
    elif form == "denominator":
        text = f"{written}/{hi}" if not written.isalpha() else f"{written} out of {hi}"
    else:
        text = f"On a scale from {lo} to {hi}, {pre} I'd say {written}."
    return text, value, lo, hi, dim


@settings(max_examples=400, deadline=None)
@given(rating_answer())
def test_property_ratings(case):
    text, value, lo, hi, dim = case
    p = parse_rating(text, lo, hi, dim)
    expected = min(max(value, lo), hi)
    assert p.value == float(expected), (text, p)
    assert not math.isnan(p.value) and lo <= p.value <= hi
    assert (p.status == "clamped") == (value != expected), (text, p)
    assert p.status in PARSE_STATUSES
    if p.status not in ("json", "fence", "clamped") or p.span is not None:
        s, e = p.span
        assert text[s:e].strip("*").lower().replace("−", "-") in (str(value), NUMBER_WORDS[value] if 0 <= value <= 10 else "")


@st.composite
def label_answer(draw):
    labels = LABELS
    label = draw(st.sampled_from(labels))
    others = [x for x in labels if x != label]
    written = draw(st.sampled_from([label, label.capitalize(), label.upper()]))
    form = draw(st.sampled_from(["bare", "echo", "negated", "marker", "json", "think", "sentence"]))
    pre = draw(FILLER)
    neg = draw(st.sampled_from(others))
    if form == "bare":
        text = f"{written}."
    elif form == "echo":
        shown = draw(st.permutations(labels))
        text = f"Choose one from: {', '.join(shown)}. {pre} {written}"
    elif form == "negated":
        text = f"{pre} not {neg}; it is {written}"
    elif form == "marker":
        text = f"{pre} {neg}? Final answer: {written}"
    elif form == "json":
        text = json.dumps({"emotion": written})
    elif form == "think":
        text = f"<think>{neg} or {label}?</think>{written}"
    else:
        text = f"The expression is {written}, {pre}"
    return text, label


@settings(max_examples=400, deadline=None)
@given(label_answer())
def test_property_labels(case):
    text, label = case
    p = parse_label(text, LABELS)
    assert p.value == label, (text, p)
    s, e = p.span
    assert text[s:e].lower() == label, (text, p)
