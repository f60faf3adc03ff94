"""Spec model, loader and checks: did-you-mean with YAML lines, JSON Schema, data checks before R."""

import json
import textwrap

import pytest

from emoalign.analysis.engine import load_study
from emoalign.errors import EmoalignError
from emoalign.resources import specs_dir
from emoalign.analysis.checks import check_spec
from emoalign.formula import formula_variables
from emoalign.spec.load import load_spec, parse_spec
from emoalign.spec.model import json_schema
from engine_study import SPEC, write_study

HEAD = """\
study:
  stimuli: stimuli.parquet
  humans: humans.parquet
  machines: runs/*/ratings.parquet
  groups: {vlm: [gemma3]}
analyses:
"""


def _err(text):
    with pytest.raises(EmoalignError) as ei:
        parse_spec(text, path="s.yaml")
    return str(ei.value)


def test_valid_spec_parses_with_defaults():
    loaded = parse_spec(SPEC, path="s.yaml")
    a = loaded.spec.analyses[0]
    assert a.kind == "reliability" and a.level == "ordinal" and a.bootstrap == 200 and a.ci_level == 0.95
    lmm = loaded.spec.analyses[1]
    assert lmm.df_method == "satterthwaite" and lmm.per_rater is True and lmm.aggregate == "mean"
    assert loaded.spec.study.machines == ["runs/*/ratings.parquet"]
    assert loaded.line_of("analyses", 1, "formula") == 23


def test_misspelled_key_names_line_analysis_and_suggestion():
    msg = _err(HEAD + "  - id: ceiling\n    kind: reliability\n    raters: human\n    levl: ordinal\n")
    assert "s.yaml:10" in msg and "analysis 'ceiling'" in msg and "'levl'" in msg and "did you mean 'level'" in msg


def test_unknown_kind_and_bad_option_value_suggest():
    msg = _err(HEAD + "  - id: a\n    kind: reliabilty\n  - id: b\n    kind: reliability\n    level: ordnal\n")
    assert "s.yaml:8" in msg and "unknown kind 'reliabilty'" in msg and "did you mean 'reliability'" in msg
    assert "s.yaml:11" in msg and "analysis 'b'" in msg and "'ordnal'" in msg and "did you mean 'ordinal'" in msg
    assert "2 problems" in msg


def test_study_typo_duplicate_ids_and_yaml_syntax():
    msg = _err(HEAD.replace("humans:", "humanz:") + "  - {id: a, kind: lmm, formula: 'rating ~ 1 + (1|image_id)'}\n")
    assert "unknown field 'humanz'" in msg and "did you mean 'humans'" in msg and "s.yaml:3" in msg
    msg = _err(HEAD + "  - {id: a, kind: reliability}\n  - {id: a, kind: reliability}\n")
    assert "used twice" in msg
    msg = _err("study: [unclosed\n")
    assert "not valid YAML" in msg and "s.yaml:" in msg
    msg = _err(HEAD + "  - id: a\n    kind: reliability\n    level: ordinal\n    level: interval\n")
    assert "duplicate key" in msg and "s.yaml:10" in msg and "line 9" in msg
    msg = _err(HEAD + "  - {id: m, kind: lmm, dimension: valence}\n")
    assert "analysis 'm'" in msg and "'formula'" in msg and "required" in msg


def test_json_schema_validates_shipped_specs_and_rejects_typos():
    import jsonschema
    import yaml

    schema = json_schema()
    assert schema["title"] == "emoalign analysis spec"
    kinds = schema["$defs"]
    assert {"ReliabilityOptions", "LmmOptions", "VarianceComponentsOptions"} <= set(kinds)
    files = [specs_dir() / "paper.yaml", *sorted((specs_dir() / "examples").glob("*.yaml"))]
    assert len(files) >= 4
    for f in files:
        doc = yaml.safe_load(f.read_text())
        jsonschema.validate(doc, schema)
        load_spec(f)  # the pydantic model agrees
    bad = yaml.safe_load(HEAD + "  - {id: a, kind: reliability, levl: ordinal}\n")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_formula_syntax_problems():
    from emoalign.formula import formula_syntax_problem

    assert formula_syntax_problem("rating ~ rater_type * emotion + (1|image_id)") is None
    assert formula_syntax_problem("rating ~ x + (1 + x|rater_id) + I(x^2) - 1") is None
    assert formula_syntax_problem("rating ~ x + (1 + x || rater_id) + a:b + a %in% b") is None
    assert "'~'" in formula_syntax_problem("rating + emotion")
    assert "unbalanced" in formula_syntax_problem("rating ~ x + (1|image_id")
    assert "missing its term" in formula_syntax_problem("rating ~ x + + (1|image_id)")
    assert "missing its term" in formula_syntax_problem("rating ~ x +")


def test_formula_variables():
    assert formula_variables("rating ~ rater_type * (race + gender) + (1|image_id)") == \
        ["rating", "rater_type", "race", "gender", "image_id"]
    assert formula_variables("log(rating) ~ I(n_trials^2) + poly(x, 2) + (1 + x|rater_id)") == \
        ["rating", "n_trials", "x", "rater_id"]


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    return write_study(tmp_path_factory.mktemp("study"))


def _check(study_dir, analyses: str):
    text = HEAD.replace("humans.parquet\n", "humans.parquet\n") + textwrap.dedent(analyses)
    path = study_dir["root"] / "check.yaml"
    path.write_text(text)
    loaded = load_spec(path)
    study, _, _ = load_study(loaded)
    return check_spec(loaded, study)


def test_data_checks_unknown_rater_dimension_by_subset(study_dir):
    probs = _check(study_dir, """\
      - {id: ok, kind: reliability, raters: human, dimension: valence}
      - id: r1
        kind: reliability
        raters: [gemma, vlm]
        dimension: valnce
        by: [emotoin]
        subset: {race: Korea}
    """)
    assert list(probs) == ["r1"]
    text = "\n".join(probs["r1"])
    assert "unknown rater 'gemma'" in text and "did you mean 'gemma3'" in text
    assert "unknown dimension 'valnce'" in text and "did you mean 'valence'" in text
    assert "'emotoin'" in text and "did you mean 'emotion'" in text
    assert "value 'Korea'" in text and "did you mean 'Korean'" in text
    assert "check.yaml:10" in text  # the raters line


def test_formula_with_missing_column_caught_before_r(study_dir, monkeypatch):
    import emoalign.analysis.rbridge as rb

    monkeypatch.setattr(rb, "get_r", lambda: (_ for _ in ()).throw(AssertionError("R must not start")))
    probs = _check(study_dir, """\
      - id: m
        kind: lmm
        raters: [vlm]
        dimension: valence
        formula: rating ~ rater_type * emotoin + (1|image)
        reference_levels: {emotion: angy}
    """)
    text = "\n".join(probs["m"])
    assert "formula names 'emotoin'" in text and "did you mean 'emotion'" in text
    assert "formula names 'image'" in text and "did you mean 'image_id'" in text
    assert "'angy' is not a level of 'emotion'" in text and "did you mean 'angry'" in text
    assert "check.yaml:11" in text


def test_each_kind_checks_its_formula_against_its_own_frame(study_dir):
    """variance_components fits the raw human trials (rater_id is a column there); lmm fits the comparison
    frame (rater_id only with aggregate: trials). Each kind's own check hook says which."""
    probs = _check(study_dir, """\
      - {id: vc_default, kind: variance_components, dimension: valence}
      - id: vc_formula
        kind: variance_components
        dimension: valence
        formula: rating ~ 1 + (1|rater_id) + (1|image_id)
      - {id: vc_fixed, kind: variance_components, dimension: [valence, arousal], fixed: [emotion, race]}
      - id: vc_bad
        kind: variance_components
        dimension: valence
        formula: rating ~ 1 + rater_type + (1|rater_id) + (1|image_id)
      - id: lmm_trials
        kind: lmm
        raters: [vlm]
        dimension: valence
        aggregate: trials
        formula: rating ~ rater_type + (1|rater_id) + (1|image_id)
      - id: lmm_means
        kind: lmm
        raters: [vlm]
        dimension: valence
        formula: rating ~ rater_type + (1|rater_id) + (1|image_id)
    """)
    assert sorted(probs) == ["lmm_means", "vc_bad"], probs
    assert "formula names 'rater_type', which the human trials lack" in "\n".join(probs["vc_bad"])
    assert "formula names 'rater_id', which the comparison frame lacks" in "\n".join(probs["lmm_means"])


def test_a_kind_registered_late_is_accepted_by_the_next_spec_load(study_dir):
    """The spec model is rebuilt from the registry when a kind is registered after it was built."""
    from typing import Literal

    from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register
    from emoalign.registry import KINDS
    from emoalign.spec.model import spec_model

    text = HEAD + "  - {id: x, kind: late_kind_test, raters: human}\n"
    with pytest.raises(EmoalignError, match="unknown kind 'late_kind_test'"):
        parse_spec(text)
    before = spec_model()

    class LateOptions(AnalysisBase):
        """A kind registered after the spec model was first built."""

        kind: Literal["late_kind_test"] = "late_kind_test"

    @register("late_kind_test", LateOptions)
    def run(opts, study, r=None):  # pragma: no cover (only validated here)
        return KindResult(table=None)

    try:
        assert spec_model() is not before
        assert parse_spec(text).spec.analyses[0].kind == "late_kind_test"
        assert KINDS["late_kind_test"].description == "A kind registered after the spec model was first built."
    finally:
        KINDS.remove("late_kind_test")
    with pytest.raises(EmoalignError, match="unknown kind"):
        parse_spec(text)


def test_ci_level_is_the_one_name_and_older_specs_conf_level_still_reads():
    head = HEAD + "  - {id: m, kind: lmm, raters: [vlm], dimension: valence, formula: 'rating ~ rater_type + (1|image_id)'"
    assert parse_spec(head + ", conf_level: 0.9}\n").spec.analyses[0].ci_level == 0.9
    assert parse_spec(head + ", ci_level: 0.8}\n").spec.analyses[0].ci_level == 0.8
    dumped = parse_spec(head + "}\n").spec.analyses[0].model_dump(mode="json")
    assert dumped["ci_level"] == 0.95 and "conf_level" not in dumped   # the manifest records one name
    from emoalign.registry import KINDS

    levels = {k for e in KINDS.entries().values() for k in e.options.model_fields
              if k.endswith("_level") and k not in ("ci_level", "level")}
    assert not levels, levels


def test_one_reader_of_the_study_block(tmp_path, capsys):
    """stimuli check, humans import and infer read a spec's study block with the same model analyze validates:
    the table paths may be left out there, a typo names its line, {min, max} scales read as [min, max]."""
    from emoalign.spec.load import read_study
    from cli_runner import run_cli

    spec = tmp_path / "s.yaml"
    spec.write_text("study:\n  scales: {valence: [1, 9], arousal: {min: 0, max: 100}}\n  emotions: [happy, sad]\n")
    study = read_study(spec)
    assert study.scales == {"valence": (1, 9), "arousal": (0, 100)} and study.emotions == ["happy", "sad"]
    assert study.stimuli is None and "stimuli" not in study.model_fields_set
    from emoalign.cli.infer import _study_settings   # infer reads the block through read_study too

    assert _study_settings(spec) == (["happy", "sad"], {"valence": (1.0, 9.0), "arousal": (0.0, 100.0)})
    spec.write_text("study:\n  scales: {valence: [1, 9]}\n  emotion: [happy, sad]\n")
    with pytest.raises(EmoalignError, match=r"s.yaml:3: study, field 'emotion': unknown field 'emotion' -- did you mean 'emotions'"):
        read_study(spec)
    code, _, err = run_cli(["stimuli", "check", str(tmp_path / "none.parquet"), "--spec", str(spec)], capsys)
    assert code == 2 and "did you mean 'emotions'" in err


def test_report_roles_are_checked_when_the_spec_is_loaded(tmp_path, capsys):
    """A role no report section knows, a role two analyses claim, a role given to an analysis of another kind than
    its section reads: spec errors naming the YAML line (spec check --no-data, before any data is read)."""
    from cli_runner import run_cli

    head = "study: {stimuli: s.parquet, humans: h.parquet}\nanalyses:\n"
    ok = "  - {id: ceiling, kind: reliability, dimension: valence, report: {role: human_ceiling}}\n"
    assert parse_spec(head + ok).spec.analyses[0].role == "human_ceiling"
    bad = (ok + "  - {id: rel2, kind: reliability, dimension: arousal, report: {role: human_ceiling}}\n"
           "  - {id: acc, kind: classification, report: {role: clasification}}\n"
           "  - {id: va, kind: agreement, dimension: valence, report: {role: classification}}\n")
    with pytest.raises(EmoalignError) as e:
        parse_spec(head + bad, path="r.yaml")
    msg = str(e.value)
    assert "3 report-role problems" in msg
    assert "r.yaml:4: analysis 'rel2' claims report role 'human_ceiling', which analysis 'ceiling' (line 3) already plays" in msg
    assert "r.yaml:5: analysis 'acc': report role 'clasification' is not a role of the report -- did you mean 'classification'?" in msg
    assert "r.yaml:6: analysis 'va' (kind agreement) claims report role 'classification', whose section reads a classification" in msg
    spec = tmp_path / "r.yaml"
    spec.write_text(head + bad)
    code, _, err = run_cli(["spec", "check", str(spec), "--no-data"], capsys)
    assert code == 2 and "r.yaml:5" in err and "Traceback" not in err, err
    # specs written before roles: an analysis whose id is a role's name plays it, and is no claim to check
    assert parse_spec(head + "  - {id: classification, kind: classification}\n" + ok)


def test_spec_cli_check_and_schema(study_dir):
    from click.testing import CliRunner

    from emoalign.cli.spec import spec

    runner = CliRunner()
    ok = runner.invoke(spec, ["check", str(study_dir["spec"])])
    assert ok.exit_code == 0, ok.output
    assert "valid (2 analyses" in ok.output
    bad = study_dir["root"] / "bad.yaml"
    bad.write_text(SPEC.replace("raters: [vlm]", "raters: [gemma4]"))
    res = runner.invoke(spec, ["check", str(bad)])
    assert res.exit_code == 1 and "did you mean 'gemma3'" in res.output
    nodata = runner.invoke(spec, ["check", str(bad), "--no-data"])  # YAML/fields only: the rater is not checked
    assert nodata.exit_code == 0 and "data not checked" in nodata.output
    sch = runner.invoke(spec, ["schema"])
    assert sch.exit_code == 0 and json.loads(sch.output)["title"] == "emoalign analysis spec"
