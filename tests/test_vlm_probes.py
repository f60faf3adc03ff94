"""Prompt probes of `emoalign infer`: --persona, --strategy open_vocabulary with the emotion lexicon (--lexicon),
and a probe plan (--conditions) on the tiny random Gemma3 / Mllama around the real tokenizers."""

import pandas as pd
import pytest
from click.testing import CliRunner

from emoalign.errors import EmoalignError
from emoalign.raters.vlm.backend import Answer, Ask
from emoalign.raters.vlm.lexicon import load_lexicon
from emoalign.raters.vlm.prompts import PromptSet, personas, resolve_persona, template_hash
from emoalign.raters.vlm.strategies import run_strategy

LABELS = ("happy", "sad", "angry", "fear", "disgust", "neutral")
PSYCHOLOGIST = "You are a clinical psychologist with years of experience in reading facial expressions of emotion."
OPEN_STEP1 = ("What is the facial expression in this image? Describe the emotion in one word. "
              "Answer with a single word only.")


# ---------------------------------------------------------------------------------------- persona
def test_persona_prefixes_every_step_and_enters_the_hash():
    base = PromptSet()
    name, text = resolve_persona("psychologist")
    assert (name, text) == ("psychologist", PSYCHOLOGIST) and personas()["none"] == ""
    ps = PromptSet(persona=text, persona_name=name)
    for step, carried in (("emotion", {}), ("valence", {"emotion": "sad"}), ("arousal", {"emotion": "sad", "valence": 3})):
        assert ps.render(step, **carried) == f"{PSYCHOLOGIST} {base.render(step, **carried)}"
    assert ps.hash != base.hash and ps.hash == template_hash("context_carry", persona=PSYCHOLOGIST)
    assert PromptSet(persona="", persona_name="none").hash == base.hash == template_hash("context_carry")
    lay = PromptSet(persona=resolve_persona("layperson")[1], persona_name="layperson")
    assert len({base.hash, ps.hash, lay.hash}) == 3


def test_free_text_persona_and_typos():
    name, text = resolve_persona("You are a nurse in an emergency room.")
    assert name.startswith("custom-") and len(name) == 15 and text == "You are a nurse in an emergency room."
    assert resolve_persona(None) == ("none", "")
    with pytest.raises(EmoalignError, match="did you mean 'psychologist'"):
        resolve_persona("psycologist")


# ---------------------------------------------------------------------------------------- lexicon
FREE_ANSWERS = [
    ("Joyful.", "joyful", "happy", "lexicon"),
    ("happiness", "happiness", "happy", "lexicon"),
    ("A sad face.", "sad", "sad", "lexicon"),
    ("Sorrowful", "sorrowful", "sad", "lexicon"),
    ("FURIOUS!", "furious", "angry", "lexicon"),
    ("irritated", "irritated", "angry", "lexicon"),
    ("terrified", "terrified", "fear", "lexicon"),
    ("The person looks anxious.", "anxious", "fear", "lexicon"),
    ("disgusted", "disgusted", "disgust", "lexicon"),
    ("revulsion", "revulsion", "disgust", "lexicon"),
    ("Calm", "calm", "neutral", "lexicon"),
    ("expressionless", "expressionless", "neutral", "lexicon"),
    ('{"emotion": "scared"}', "scared", "fear", "lexicon"),
    ("<think>tears, maybe grief</think>Melancholy", "melancholy", "sad", "lexicon"),
    ("He is not angry, just calm", "calm", "neutral", "lexicon"),
    # never guessed
    ("surprised", "surprised", None, "unmapped"),
    ("Contempt", "contempt", None, "unmapped"),
    ("pensive", "pensive", None, "unmapped"),
    ("confusion", "confusion", None, "unmapped"),
    ("happyish", "happyish", None, "unmapped"),          # no stemming
    ("sadnes", "sadnes", None, "unmapped"),              # no spelling correction
    ("not happy", "not happy", None, "unmapped"),        # a negated label is not that label
    ("happy but sad", "happy", None, "ambiguous"),
    ("", None, None, "invalid"),
    ("...", None, None, "invalid"),
]


@pytest.mark.parametrize("answer,word,label,status", FREE_ANSWERS)
def test_shipped_lexicon_maps_free_answers(answer, word, label, status):
    r = load_lexicon(LABELS).read(answer)
    assert (r.word, r.label, r.status) == (word, label, status)


def test_lexicon_file_replaces_the_shipped_one(tmp_path):
    f = tmp_path / "lex.yaml"
    f.write_text("labels:\n  happy: [chuffed]\n  sad: [blue]\n")
    lex = load_lexicon(LABELS, f)
    assert lex.read("chuffed").label == "happy" and lex.read("blue").label == "sad"
    assert lex.read("joyful").status == "unmapped"                 # the shipped words are gone
    assert lex.read("fear").label == "fear"                         # a label always maps its own name
    assert lex.sha256 != load_lexicon(LABELS).sha256
    f.write_text("labels:\n  happy: [glad]\n  sad: [glad]\n")
    with pytest.raises(EmoalignError, match="'glad' is listed under 'happy' and 'sad'"):
        load_lexicon(LABELS, f)
    f.write_text("labels:\n  hapy: [glad]\n")
    with pytest.raises(EmoalignError, match="did you mean 'happy'"):
        load_lexicon(LABELS, f)


def test_shipped_lexicon_names_no_word_twice_and_no_other_category():
    lex = load_lexicon(LABELS)
    assert set(lex.words.values()) == set(LABELS)
    for other in ("surprise", "surprised", "contempt", "shame", "confused", "bored", "interest"):
        assert other not in lex.words


class Scripted:
    """A backend that answers each step from a script and records the prompts it was asked."""

    default_batch_size = 1

    def __init__(self, answers):
        self.answers, self.asked = answers, []

    def ask(self, asks):
        out = []
        for a in asks:
            self.asked.append(a)
            step = ("valence" if "How pleasant" in a.prompt else "arousal" if "How intense" in a.prompt else "emotion")
            out.append(Answer(text=self.answers[a.image_key][step]))
        return out

    def release(self, key):
        pass


def test_open_vocabulary_flow_keeps_the_word_and_carries_it():
    backend = Scripted({"a": {"emotion": "Joyful.", "valence": "8", "arousal": "6"},
                        "b": {"emotion": "Surprised", "valence": "5", "arousal": "7"}})
    rows = run_strategy(backend, PromptSet(strategy="open_vocabulary"), ["a", "b"], [None, None])
    a, b = rows
    assert a["emotion_prompt"] == OPEN_STEP1 and not any(lab in a["emotion_prompt"] for lab in LABELS)
    assert (a["emotion"], a["emotion_word"], a["emotion_status"], a["emotion_raw"]) == ("happy", "joyful", "lexicon", "Joyful.")
    assert (b["emotion"], b["emotion_word"], b["emotion_status"]) == (None, "surprised", "unmapped")
    assert a["valence_prompt"].startswith("You identified this face as joyful. How pleasant")
    assert b["arousal_prompt"].startswith("You identified this face as surprised with pleasantness 5 out of 9.")
    assert a["labels_shown"] == "" and a["valence"] == 8 and b["arousal"] == 7
    assert backend.asked[0].candidates == ()                       # no label candidates offered or scored


# ---------------------------------------------------------------------------------------- tiny real models
@pytest.fixture(scope="module")
def backends(tiny_gemma3_dir, tiny_mllama_dir):
    from emoalign.raters.vlm.hf_backend import HFBackend

    return {"gemma3": HFBackend(str(tiny_gemma3_dir), fast=True), "mllama": HFBackend(str(tiny_mllama_dir), fast=True)}


@pytest.mark.parametrize("arch", ["gemma3", "mllama"])
def test_flags_change_the_token_ids_as_documented(backends, arch, tiny_images):
    """Token ids of each step under each flag: the chat turn of the plain prompt with its text replaced by the
    documented text (persona sentence + one space + the step; the open-vocabulary step 1)."""
    backend = backends[arch]
    tok = backend.tokenizer
    base = PromptSet()
    plain = base.render("emotion")
    ids_plain = backend.prompt_ids(Ask("k", tiny_images[0], plain))
    body_plain = tok.encode(plain, add_special_tokens=False)
    start = next(i for i in range(len(ids_plain)) if ids_plain[i:i + len(body_plain)] == body_plain)
    head, tail = ids_plain[:start], ids_plain[start + len(body_plain):]
    persona = PromptSet(persona=PSYCHOLOGIST, persona_name="psychologist")
    for step, carried in (("emotion", {}), ("valence", {"emotion": "sad"}), ("arousal", {"emotion": "sad", "valence": 3})):
        text = persona.render(step, **carried)
        assert text == PSYCHOLOGIST + " " + base.render(step, **carried)
        ids = backend.prompt_ids(Ask("k", tiny_images[0], text))
        assert ids == head + tok.encode(text, add_special_tokens=False) + tail
        assert tok.decode(ids[len(head):len(ids) - len(tail)]) == text
    open_text = PromptSet(strategy="open_vocabulary").render("emotion")
    assert open_text == OPEN_STEP1
    ids = backend.prompt_ids(Ask("k", tiny_images[0], open_text))
    assert ids == head + tok.encode(OPEN_STEP1, add_special_tokens=False) + tail
    label_ids = {i for lab in LABELS for i in tok.encode(" " + lab, add_special_tokens=False)}
    assert label_ids & set(body_plain) and not label_ids & set(ids[len(head):len(ids) - len(tail)])


def test_open_vocabulary_on_a_tiny_model(backends, tiny_images):
    rows = pd.DataFrame(run_strategy(backends["gemma3"], PromptSet(strategy="open_vocabulary"), ["x", "y"],
                                     tiny_images[:2], max_new_tokens=4))
    assert (rows["emotion_prompt"] == OPEN_STEP1).all()
    assert set(rows["emotion_status"]) <= {"lexicon", "unmapped", "ambiguous", "invalid"}
    for r in rows.itertuples():        # the word the model gave, or its cleaned answer, is what step 2 carries
        carried = r.emotion_word if isinstance(r.emotion_word, str) else " ".join(r.emotion_raw.split())[:40]
        assert r.valence_prompt.startswith(f"You identified this face as {carried}. How pleasant")
        assert pd.isna(r.emotion) == (r.emotion_status != "lexicon")


def _stimuli(folder, images):
    from test_infer_cli import _stimuli as stimuli_table   # the stimuli table of the infer tests

    return stimuli_table(folder, images, corrupt=False)


def test_plan_of_three_conditions_writes_three_raters(tmp_path, tiny_gemma3_dir, tiny_images):
    from emoalign.cli.infer import infer

    stim = _stimuli(tmp_path, tiny_images[:2])
    plan = tmp_path / "conditions.yaml"
    plan.write_text("conditions:\n  base: {}\n  psych: {persona: psychologist, label_order: reversed}\n"
                    "  open: {strategy: open_vocabulary}\n")
    res = CliRunner().invoke(infer, ["--rater", f"hf:{tiny_gemma3_dir}", "--name", "g", "--stimuli", str(stim),
                                     "--out", str(tmp_path / "runs"), "--max-new-tokens", "3", "--no-progress",
                                     "--conditions", str(plan)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    runs = {p.parent.name: pd.read_parquet(p) for p in (tmp_path / "runs").glob("*/ratings.parquet")}
    assert len(runs) == 3
    df = pd.concat(runs.values(), ignore_index=True)
    assert set(df["rater"]) == {"g@base", "g@psych", "g@open"}
    by = df.groupby("rater")
    hashes = by["template_hash"].first()
    assert hashes.nunique() == 3 and (by["template_hash"].nunique() == 1).all()
    assert hashes["g@base"] == template_hash("context_carry")
    assert hashes["g@psych"] == template_hash("context_carry", persona=PSYCHOLOGIST)
    assert hashes["g@open"] == template_hash("open_vocabulary")
    psych = df[df["rater"] == "g@psych"]
    assert (psych["persona"] == "psychologist").all() and (psych["label_order"] == "reversed").all()
    assert psych["emotion_prompt"].str.startswith(PSYCHOLOGIST + " What is").all()
    assert psych["emotion_prompt"].str.contains("neutral, disgust, fear, angry, sad, happy").all()
    assert (df.loc[df["rater"] == "g@open", "emotion_prompt"] == OPEN_STEP1).all()
    assert "persona" not in runs[next(k for k in runs if k.endswith("base"))].columns or \
        df.loc[df["rater"] == "g@base", "persona"].isna().all()


@pytest.mark.parametrize("text,match", [
    ("conditions:\n  a: {persona: psycologist}\n", "did you mean 'psychologist'"),
    ("conditions:\n  a: {strategy: open_vocab}\n", "did you mean 'open_vocabulary'"),
    ("conditions:\n  a: {quantisation: 4bit}\n", "unknown setting 'quantisation'"),
    ("conditions:\n  a: {label_order: sideways}\n", "unknown order"),
    ("conditions:\n  'a b': {}\n", "letters, digits"),
    ("conditions: []\n", "no `conditions` mapping"),
])
def test_bad_plans_fail_before_the_model_loads(tmp_path, text, match):
    from emoalign.raters.vlm.plan import read_plan

    f = tmp_path / "c.yaml"
    f.write_text(text)
    with pytest.raises(EmoalignError, match=match):
        read_plan(f)


def test_cli_refuses_flag_mixups(tmp_path, tiny_images):
    from emoalign.cli.main import main

    stim = _stimuli(tmp_path, tiny_images[:1])
    plan = tmp_path / "c.yaml"
    plan.write_text("conditions:\n  a: {}\n")
    common = ["infer", "--stimuli", str(stim), "--out", str(tmp_path / "runs")]
    for extra in (["--rater", "fer:minixception", "--persona", "layperson"],
                  ["--rater", "hf:nowhere", "--conditions", str(plan), "--orders", "fixed,reversed"],
                  ["--rater", "hf:nowhere", "--lexicon", str(plan)]):
        with pytest.raises(SystemExit) as exc:
            main(common + extra)
        assert exc.value.code == 2
