"""The report: table builders against the tidy tables they read, the .qmd reader, and one full offline
render (HTML + PDF) of a contract-conformant results folder, checked for real: every table and figure
id and caption, embedded decodable images, no external URLs, skipped sections, generic kinds."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_checks import check_no_external, decode_images, pdf_pages, pdf_text, scan_html  # noqa: E402

from emoalign.errors import EmoalignError
from emoalign.report import sections as S
from emoalign.report import tables as T
from emoalign.report.qmd import assemble_markdown, parse_qmd, to_notebook
from emoalign.report.results import Results
from emoalign.report.sample import write_sample_results
from emoalign.resources import quarto_dir

DROPPED = ("mcnemar", "race_emotion_accuracy")


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_results(tmp_path_factory.mktemp("results"), seed=3, n_per_cell=6, drop=DROPPED)


@pytest.fixture(scope="module")
def rendered(sample, tmp_path_factory):
    from emoalign.report.render import render_report

    out = tmp_path_factory.mktemp("report")
    res = render_report(sample, out / "report.html", out / "report.pdf", engine="offline", progress=False,
                        keep_markdown=out / "report.md")
    return res, out


# --- formatting and table builders ------------------------------------------------------------
def test_formatting():
    assert T.fp(0.0004) == "< .001" and T.fp(0.0234) == ".023" and T.fp(float("nan")) == "–"
    assert [T.stars(p) for p in (0.0009, 0.009, 0.049, 0.05, None)] == ["***", "**", "*", "", ""]
    assert T.fci(0.5, 0.4, 0.6) == "0.500 [0.400, 0.600]" and T.fci(0.5, np.nan, 0.6) == "0.500"
    assert T.fsigned(-1.234) == "−1.23" and T.fsigned(0.3) == "+0.30"
    md = T.md_table(pd.DataFrame({"a": ["x|y"], "b": ["1.0"]}), "Cap", "tbl-x")
    assert "| x\\|y | 1.0 |" in md and "|:---|---:|" in md and ": Cap {#tbl-x}" in md


def test_classification_ranking_reads_the_table(sample):
    R = Results.load(sample)
    df = R.table("classification")
    t1 = T.classification_ranking(df, R.rater_family())
    ov = df[df.emotion.isna() & df.predicted.isna()]
    kappa = ov[ov.metric == "cohen_kappa"].set_index("rater").estimate
    assert list(t1.Rater) == list(kappa.sort_values(ascending=False).index)  # ranked by kappa
    g = ov[(ov.rater == "gemma3")].set_index("metric")
    row = t1.set_index("Rater").loc["gemma3"]
    assert row["Accuracy [95% CI]"] == T.fci(*g.loc["accuracy", ["estimate", "conf_low", "conf_high"]])
    assert row["Type"] == "VLM" and t1.set_index("Rater").loc["posterv2", "Type"] == "FER"
    t2 = T.per_emotion_accuracy(df)
    acc = df[(df.metric == "accuracy") & (df.rater == "llama32v") & (df.emotion == "sad")].estimate.iloc[0]
    assert t2.set_index("Emotion").loc["Sad", "llama32v"] == f"{acc:.3f}"


def test_bias_table_marks_and_lmm_terms(sample):
    R = Results.load(sample)
    bias, lmm = R.table("arousal_bias"), R.table("arousal_emotion_lmm")
    t = T.bias_table(bias, lmm).set_index("Emotion")
    b = bias[(bias.rater == "gemma3") & (bias.emotion == "fear")].iloc[0]
    assert t.loc["Fear", "gemma3 bias"] == T.fsigned(b.estimate) + T.stars(b.p_adjusted)
    # reference emotion (angry) -> the rater_type main effect; others -> the interaction term
    main = lmm[(lmm.rater == "llama32v") & (lmm.term == "rater_typemachine")].iloc[0]
    inter = lmm[(lmm.rater == "llama32v") & (lmm.term == "rater_typemachine:emotionsad")].iloc[0]
    assert t.loc["Angry", "llama32v LMM β (p)"] == f"{T.fsigned(main.estimate, 3)} ({T.fp(main.p_value)})"
    assert t.loc["Sad", "llama32v LMM β (p)"] == f"{T.fsigned(inter.estimate, 3)} ({T.fp(inter.p_value)})"
    assert "mobilevit LMM β (p)" not in t.columns  # no LMM for FER raters

    # with emmeans contrast rows (spec: contrast: rater_type, contrast_by: [emotion]) those are shown instead
    con = pd.DataFrame([{"rater": "llama32v", "dimension": "arousal", "effect": "contrast", "term": "machine - human",
                         "emotion": "sad", "estimate": -2.1, "p_value": 0.0004}])
    tc = T.bias_table(bias, pd.concat([lmm, con], ignore_index=True)).set_index("Emotion")
    assert tc.loc["Sad", "llama32v LMM β (p)"] == f"{T.fsigned(-2.1, 3)} ({T.fp(0.0004)})"
    assert tc.loc["Angry", "llama32v LMM β (p)"] == t.loc["Angry", "llama32v LMM β (p)"]  # no contrast row: fallback


def test_dimension_summary_and_response_variance(sample):
    R = Results.load(sample)
    ag = R.table("dimensional_agreement")
    t = T.dimension_summary(ag, "arousal", R.rater_family()).set_index("Rater")
    a = ag[(ag.rater == "emonet") & (ag.dimension == "arousal")].set_index("metric").estimate
    assert t.loc["emonet", "MAE"] == f"{a['mae']:.3f}"
    assert t.loc["emonet", "Model M (SD)"] == f"{a['machine_mean']:.2f} ({a['machine_sd']:.2f})".replace("-", "−")
    r = ag[(ag.metric == "pearson_r") & (ag.dimension == "arousal")].set_index("rater").estimate
    assert list(t.index) == list(r.sort_values(ascending=False).index)
    rv = T.response_variance(R.table("response_diversity")).set_index("Emotion")
    d = R.table("response_diversity")
    sd = d[(d.rater == "human") & (d.dimension == "valence") & (d.emotion == "happy") & (d.metric == "sd")].estimate.iloc[0]
    assert rv.loc["Happy", "human V SD"] == f"{sd:.2f}"
    assert list(rv.columns)[-1] == "human A SD"


def test_missing_and_failed_sections_are_notes(sample, tmp_path):
    R = Results.load(sample)
    assert R.status("mcnemar") == "missing" and "skipped" in S.mcnemar(R)
    assert "callout-note" in S.race_emotion_accuracy(R)
    import json
    m = json.loads((sample / "manifest.json").read_text())
    for a in m["analyses"]:
        if a["id"] == "classification":
            a["status"], a["error"] = "failed", "boom in R"
    (tmp_path / "manifest.json").write_text(json.dumps(m))
    R2 = Results(root=sample, manifest=m)
    out = S.classification(R2)
    assert "failed" in out and "boom in R" in out and "tbl-classification" not in out


def test_results_errors(tmp_path):
    with pytest.raises(EmoalignError, match="does not exist"):
        Results.load(tmp_path / "nope")
    with pytest.raises(EmoalignError, match="manifest.json"):
        Results.load(tmp_path)


# --- the .qmd reader -------------------------------------------------------------------------
def test_qmd_parse_and_params():
    doc = parse_qmd((quarto_dir() / "report.qmd").read_text())
    assert doc.front["format"]["html"]["embed-resources"] is True and doc.execute_defaults()["echo"] is False
    code = [c for c in doc.chunks if c.kind == "code"]
    assert code[0].options["tags"] == ["parameters"] and 'results = "results"' in code[0].text
    assert all(not c.text.lstrip().startswith("#|") for c in code)
    nb = to_notebook(doc, {"results": "/x/y"})
    assert nb.cells[1].metadata["tags"] == ["injected-parameters"] and nb.cells[1].source == "results = '/x/y'"
    with pytest.raises(EmoalignError, match="never closed"):
        parse_qmd("---\ntitle: x\n---\n```{python}\n1\n")
    with pytest.raises(EmoalignError, match="only \\{python\\}"):
        parse_qmd("```{r}\n1\n```\n")


def test_assemble_honours_cell_options():
    import nbformat

    doc = parse_qmd("---\ntitle: T\nexecute:\n  echo: false\n---\n# H\n\n```{python}\n#| output: asis\nprint('x')\n```\n"
                    "```{python}\n#| include: false\nprint('hidden')\n```\n"
                    "```{python}\n#| echo: true\n#| label: fig-a\n#| fig-cap: A cap\nshow()\n```\n")
    nb = to_notebook(doc)
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="**raw md**\n")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="hidden\n")]
    nb.cells[2].outputs = [nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo="})]
    md = assemble_markdown(doc, nb)
    assert "**raw md**" in md and "```\n**raw md**" not in md and "hidden" not in md
    assert "```python\nshow()\n```" in md and "![A cap](data:image/png;base64,iVBORw0KGgo=){#fig-a}" in md
    assert md.startswith("---\ntitle: T\n---")


# --- full render -------------------------------------------------------------------------------
EXPECTED_TABLES = ["tbl-design", "tbl-design-cells", "tbl-raters", "tbl-human-ceiling", "tbl-variance", "tbl-classification",
                   "tbl-emotion-accuracy", "tbl-valence", "tbl-valence-bias", "tbl-arousal", "tbl-arousal-bias",
                   "tbl-response-variance-valence", "tbl-response-variance-arousal", "tbl-demographic-lmm", "tbl-provenance", "tbl-analyses",
                   "tbl-machine-icc", "tbl-vlm-calibration"]
EXPECTED_FIGURES = ["fig-variance", "fig-confusion", "fig-strength-inversion", "fig-bland-altman", "fig-demographic-bias",
                    "fig-machine-icc", "fig-vlm-calibration"]


def test_render_html(rendered):
    res, out = rendered
    assert res.engine == "offline" and res.html.exists()
    scan = scan_html(res.html)
    missing = [i for i in EXPECTED_TABLES + EXPECTED_FIGURES if i not in scan.ids]
    assert not missing, missing
    for absent in ("tbl-mcnemar", "tbl-race-emotion-accuracy"):  # dropped analyses: skipped with a note
        assert absent not in scan.ids
    html = res.html.read_text()
    assert "Analysis `mcnemar`" not in html and "<code>mcnemar</code> is not in these results" in html
    caps = " | ".join(scan.captions)
    for phrase in ("paper Table 1", "paper Table 2", "paper Table 3", "paper Table 4", "paper Table 5", "paper Table 6",
                   "paper Table 7", "paper Figure 3", "paper Figure 4", "Bland–Altman plots", "Confusion matrices",
                   "Human inter-rater reliability"):
        assert phrase in caps, phrase
    imgs = decode_images(scan.imgs)
    assert len(imgs) == len(EXPECTED_FIGURES)
    check_no_external(res.html, scan)
    assert "Traceback" not in html and "Error" not in re.sub(r"<[^>]+>", "", html).split("Provenance")[0]
    assert html.count("SIMULATED") >= 8  # every simulated rater marked, plus the note
    # generic kinds: an unknown kind and a second reliability analysis, with their own sections
    assert "sec-vlm-calibration" in scan.ids and "kind <code>calibration</code>" in " ".join(html.split())
    assert "expected_calibration_error" in html


def test_render_pdf(rendered):
    res, _ = rendered
    assert res.pdf.exists() and pdf_pages(res.pdf) >= 5
    text = pdf_text(res.pdf)
    if text:
        for phrase in ("paper Table 1", "paper Figure 3", "Demographic bias", "vlm_calibration"):
            assert phrase in text.replace("\n", " "), phrase


def test_cli_report_errors(tmp_path):
    from click.testing import CliRunner

    from emoalign.cli.main import cli

    r = CliRunner().invoke(cli, ["report", str(tmp_path / "none"), "-o", str(tmp_path / "r.html")])
    assert r.exit_code != 0 and isinstance(r.exception, EmoalignError) and "does not exist" in str(r.exception)
    r = CliRunner().invoke(cli, ["report", "--help"])
    assert r.exit_code == 0 and "--pdf" in r.output and "quarto render" in r.output
