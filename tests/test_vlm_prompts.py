"""Prompt templates: the paper's Figure 2 wording verbatim, scales from the study, label orders, hashes."""

import pytest

from emoalign.errors import EmoalignError
from emoalign.raters.vlm.prompts import PromptSet, label_order, load_templates, strategies, template_hash

PAPER = ("happy", "sad", "angry", "fear", "disgust", "neutral")


def test_context_carry_is_the_papers_figure_2_text():
    ps = PromptSet()
    assert ps.render("emotion") == ("What is the facial expression in this image? Choose one from: happy, sad, angry, "
                                    "fear, disgust, neutral. Answer with a single word only.")
    assert ps.render("valence", emotion="happy") == (
        "You identified this face as happy. How pleasant is this facial expression? Rate from 1 to 9 where 1 is very "
        "unpleasant and 9 is very pleasant. Answer with a single number only.")
    assert ps.render("arousal", emotion="happy", valence=8.0) == (
        "You identified this face as happy with pleasantness 8 out of 9. How intense or activated is the emotion in "
        "this face? Rate from 1 to 9 where 1 is very calm and 9 is very excited. Answer with a single number only.")
    assert ps.steps == ("emotion", "valence", "arousal")
    assert ps.rating_values("valence") == tuple("123456789")


def test_scales_come_from_the_study():
    ps = PromptSet(scales={"valence": (0, 10), "arousal": (1, 7)})
    v = ps.render("valence", emotion="sad")
    assert "Rate from 0 to 10 where 0 is very unpleasant and 10 is very pleasant" in v
    a = ps.render("arousal", emotion="sad", valence=3)
    assert "pleasantness 3 out of 10" in a and "Rate from 1 to 7 where 1 is very calm and 7 is very excited" in a
    assert ps.rating_values("arousal") == tuple("1234567")
    with pytest.raises(EmoalignError):
        PromptSet(scales={"valence": (9, 1), "arousal": (1, 9)})


def test_integrated_and_independent():
    integ = PromptSet(strategy="integrated")
    text = integ.render("all")
    assert '{"emotion": "<label>", "valence": <number>, "arousal": <number>}' in text
    ind = PromptSet(strategy="independent")
    assert "{emotion}" not in str(load_templates()["strategies"]["independent"]["steps"])
    assert ind.render("valence").startswith("How pleasant")
    assert set(strategies()) == {"context_carry", "independent", "integrated", "open_vocabulary"}


def test_template_hash_is_stable_and_distinct():
    hashes = {s: template_hash(s) for s in strategies()}
    assert len(set(hashes.values())) == 4
    assert all(len(h) == 12 for h in hashes.values())
    assert template_hash("context_carry") == PromptSet().hash


def test_label_orders():
    assert label_order(PAPER, "fixed") == PAPER
    assert label_order(PAPER, "reversed") == PAPER[::-1]
    a = label_order(PAPER, "shuffle", seed=1, image_key="x")
    assert sorted(a) == sorted(PAPER) and a == label_order(PAPER, "shuffle", seed=1, image_key="x")
    assert len({label_order(PAPER, "shuffle", seed=s, image_key="x") for s in range(30)}) > 15
    assert PromptSet().render("emotion", labels=PAPER[::-1]).startswith(
        "What is the facial expression in this image? Choose one from: neutral, disgust, fear, angry, sad, happy.")
    with pytest.raises(EmoalignError, match="label order"):
        label_order(PAPER, "sideways")


def test_unknown_strategy_names_the_choices():
    with pytest.raises(EmoalignError, match="context_carry"):
        PromptSet(strategy="cot")
