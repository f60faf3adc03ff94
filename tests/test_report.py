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
from report_checks import (  # noqa: E402
    check_no_external, decode_images, pdf_pages, pdf_text, pdf_words, scan_html, svg_images, svg_min_font_pt,
)

from emoalign.errors import EmoalignError
from emoalign.report import captions as C
from emoalign.report import sections as S
from emoalign.report import tables as T
from emoalign.report.names import MARK, Names
from emoalign.render.qmd import assemble_markdown, parse_qmd, to_notebook
from emoalign.report.results import Results
from sample_results import write_sample_results
from emoalign.resources import quarto_dir

DROPPED = ("race_emotion_accuracy",)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return write_sample_results(tmp_path_factory.mktemp("results"), seed=3, n_per_cell=6, drop=DROPPED)


@pytest.fixture(scope="module")
def rendered(sample, tmp_path_factory):
    from emoalign.render import render_report

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
    assert "| x\\|y | 1.0 |" in md and "|:------|------:|" in md and ": Cap {#tbl-x}" in md
    # a labelled table carries a CSV download (raw HTML, dropped from the PDF) of what it shows
    import base64
    uri = re.search(r'href="data:text/csv;charset=utf-8;base64,([^"]+)"', md).group(1)
    assert base64.b64decode(uri).decode() == "a,b\nx|y,1.0\n" and 'download="tbl-x.csv"' in md
    assert "csv" not in T.md_table(pd.DataFrame({"a": [1]}), "Cap")


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


def test_bias_table_and_both_lmm_tests(sample):
    R = Results.load(sample)
    bias, lmm = R.table("arousal_bias"), R.table("arousal_emotion_lmm")
    t = T.bias_table(bias).set_index("Emotion")
    b = bias[(bias.rater == "gemma3") & (bias.emotion == "fear")].iloc[0]
    assert t.loc["Fear", "gemma3"] == T.fsigned(b.estimate) + T.stars(b.p_adjusted)
    # the paper's "LMM p": the rater_type main effect at the reference emotion (angry), the rater_type x emotion
    # interaction elsewhere; beside it the emmeans simple effect, each in its own column
    tests = T.lmm_tests(lmm, "angry", list(bias.emotion.unique())).set_index("Emotion")
    main = lmm[(lmm.rater == "llama32v") & (lmm.term == "rater_typemachine")].iloc[0]
    inter = lmm[(lmm.rater == "llama32v") & (lmm.term == "rater_typemachine:emotionsad")].iloc[0]
    con = lmm[(lmm.rater == "llama32v") & (lmm.effect == "contrast") & (lmm.emotion == "sad")].iloc[0]
    assert tests.loc["Angry", "llama32v: model term β (p)"] == f"{T.fsigned(main.estimate, 3)} ({T.fp(main.p_value)}) ᵃ"
    assert tests.loc["Sad", "llama32v: model term β (p)"] == f"{T.fsigned(inter.estimate, 3)} ({T.fp(inter.p_value)})"
    assert tests.loc["Sad", "llama32v: simple effect Δ (p)"] == f"{T.fsigned(con.estimate, 3)} ({T.fp(con.p_value)})"
    assert inter.estimate != con.estimate       # two different tests, not one number under two names
    # without contrast rows only the model-term columns remain
    only = T.lmm_tests(lmm[lmm.effect != "contrast"], "angry", list(bias.emotion.unique()))
    assert not any("simple effect" in c for c in only.columns)


def test_names_markers_and_term_labels():
    n = Names({"gemma3": "Gemma3-4B"}, {"gemma3": True, "mini": False}, humans_simulated=True)
    assert n.rater("gemma3") == "Gemma3-4B" + MARK and n.rater("mini") == "mini" and n.rater("human") == "Human" + MARK
    assert n.rater("gemma3,mini") == f"Gemma3-4B{MARK}, mini"
    refs = {"race": "Caucasian", "gender": "male", "rater_type": "human", "emotion": "angry"}
    assert n.term("genderfemale", refs) == "female vs male"
    assert n.term("rater_typemachine:raceKorean", refs) == "machine × Korean vs Caucasian"
    assert n.term("rater_typemachine", refs) == "machine"
    assert n.term("(Intercept)", refs).startswith("intercept (race = Caucasian")
    assert Names({"genderfemale": "women vs men"}).term("genderfemale", refs) == "women vs men"
    assert "simulated" in n.sim_note(["gemma3"]).lower() and MARK in n.sim_note(["gemma3"])
    assert n.sim_note(["mini"], humans=False) == "" and "human ratings" in n.sim_note(["mini"], humans=True)
    assert Names().sim_note(["x"]) == ""


def test_captions_come_from_what_ran(sample):
    """A Kenward-Roger fit is captioned Kenward-Roger; the adjustment, its family size and the reference levels are
    the recorded ones; the variance decomposition names its fixed effect."""
    import json

    m = json.loads((sample / "manifest.json").read_text())
    for a in m["analyses"]:
        if a["id"] == "valence_emotion_lmm":
            a["options"]["df_method"] = a["info"]["df_method"] = "kenward_roger"
            a["info"]["reference_levels"] = {"emotion": "happy", "rater_type": "human"}
        if a["id"] == "valence_bias":
            a["options"].update(adjust="holm", n_comparisons=None, family="rater")
    R = Results(root=sample, manifest=m)
    val = S.bias(R, "valence", 4)
    assert "Kenward–Roger df" in val and "Satterthwaite" not in val
    assert "reference levels: emotion = happy" in val and "at the reference emotion (happy" in val
    assert "p adjusted by Holm over 30 tests within each rater's tests" in val
    aro = S.bias(R, "arousal", 6)
    assert "Satterthwaite df" in aro and "Bonferroni for 18 comparisons within each rater family's tests" in aro
    vd = S.variance_decomposition(R)
    assert "`rating ~ 1 + emotion + (1|rater_id) + (1|image_id)`" in vd and "with emotion as fixed effect" in vd
    assert C.df_method({"df_method": "asymptotic"}) == "asymptotic z tests (lme4)"
    assert C.adjustment("none") == "p unadjusted"
    mc = S.mcnemar(Results.load(sample))
    assert "n10 = images rater A labels correctly and rater B does not; n01 = the reverse" in mc
    assert "continuity correction" in mc and "Holm" in mc


def test_dimension_summary_and_response_variance(sample):
    R = Results.load(sample)
    ag = R.table("dimensional_agreement")
    t = T.dimension_summary(ag, "arousal", R.rater_family()).set_index("Rater")
    a = ag[(ag.rater == "emonet") & (ag.dimension == "arousal")].set_index("metric").estimate
    assert t.loc["emonet", "MAE"] == f"{a['mae']:.3f}"
    assert t.loc["emonet", "SD ratio"] == f"{a['sd_ratio']:.2f}"
    icc = ag[(ag.rater == "emonet") & (ag.dimension == "arousal") & (ag.metric == "icc_a1")].iloc[0]
    assert t.loc["emonet", "ICC(A,1) [95% CI]"] == T.fci(icc.estimate, icc.conf_low, icc.conf_high)
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
    assert R.status("race_emotion_accuracy") == "missing" and "skipped" in S.race_emotion_accuracy(R)
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
EXPECTED_TABLES = ["tbl-design", "tbl-design-cells", "tbl-raters", "tbl-human-ceiling", "tbl-variance", "tbl-naturalness",
                   "tbl-classification", "tbl-emotion-accuracy", "tbl-emotion-f1", "tbl-mcnemar", "tbl-mcnemar-mixed",
                   "tbl-valence", "tbl-valence-bias", "tbl-valence-lmm-tests", "tbl-arousal", "tbl-arousal-bias",
                   "tbl-arousal-lmm-tests", "tbl-response-variance-valence", "tbl-response-variance-arousal", "tbl-sd-ratio",
                   "tbl-demographic-lmm", "tbl-replication-summary", "tbl-replication-table-1", "tbl-replication-4-5",
                   "tbl-model-valence-emotion-lmm", "tbl-model-valence-emotion-lmm-emmeans", "tbl-model-demographic-lmm",
                   "tbl-provenance", "tbl-analyses", "tbl-machine-icc", "tbl-vlm-calibration"]
EXPECTED_FIGURES = ["fig-variance", "fig-confusion", "fig-strength-inversion", "fig-bland-altman", "fig-demographic-bias",
                    "fig-machine-icc", "fig-vlm-calibration"]


def _text(html: str) -> str:
    import html as h

    return h.unescape(" ".join(re.sub(r"<[^>]+>", " ", html).split()))


def test_render_html(rendered):
    res, out = rendered
    assert res.engine == "offline" and res.html.exists()
    scan = scan_html(res.html)
    missing = [i for i in EXPECTED_TABLES + EXPECTED_FIGURES if i not in scan.ids]
    assert not missing, missing
    assert "tbl-race-emotion-accuracy" not in scan.ids  # dropped analysis: skipped with a note
    html = res.html.read_text()
    assert "<code>race_emotion_accuracy</code> is not in these results" in html
    caps = " | ".join(scan.captions)
    for phrase in ("paper Table 1", "paper Table 2", "paper Table 3", "paper Table 4", "paper Table 5", "paper Table 6",
                   "paper Table 7", "paper Figure 3", "paper Figure 4", "Bland–Altman plots", "Confusion matrices",
                   "Human inter-rater reliability"):
        assert phrase in caps, phrase
    # HTML numbers tables and figures in document order, like the PDF
    tcaps = [c for c in scan.captions if c.startswith("Table ")]
    assert [int(re.match(r"Table (\d+):", c).group(1)) for c in tcaps] == list(range(1, len(tcaps) + 1))
    assert len(tcaps) == len([i for i in scan.ids if i.startswith("tbl-")])
    assert any(c.startswith("Figure 3: Strength inversion") for c in scan.captions)
    # every table downloadable as CSV
    assert html.count('class="csv-download"') == len(tcaps)
    imgs = decode_images(scan.imgs)
    assert len(imgs) == len(EXPECTED_FIGURES)
    check_no_external(res.html, scan)
    text = _text(html)
    assert "Traceback" not in html and "Error" not in text.split("Provenance")[0]
    # honesty: a banner on the title page; every caption of a table/figure with simulated data says so
    assert "Simulated study. SIMULATED (profile sample" in text and "Real: the outputs of beit" in text
    for cap in scan.captions:
        if cap.startswith(("Table", "Figure")) and not any(k in cap for k in ("Provenance", "Analyses in the manifest",
                                                                               "Replication scorecard summary")):
            assert "imulated" in cap, cap
    assert text.count(f"Gemma3-4B{MARK}") >= 10 and "LLaMA-3.2-11B" in text            # labels: display names
    # McNemar: real vs simulated kept apart and said to be no model comparison
    assert "not comparisons of two models" in text
    # both LMM tests, each named for what it is; the df method that ran
    assert re.search(r"Model term ?: the test the paper reports as .LMM p. \(Tables 4 and 6\)", text)
    assert "simple effect Δ (p)" in text and "Satterthwaite df (lmerTest)" in text
    assert "reference levels: emotion = angry, rater_type = human" in text
    # hidden results shown
    for phrase in ("ICC(A,1) [95% CI]", "SD ratio", "Per-emotion F1", "Naturalness of the stimuli", "female vs male"):
        assert phrase in text, phrase
    # readings computed from the numbers, e.g. the strength inversion verdict
    assert re.search(r"The strength inversion (holds|does not hold) here", text)
    assert "Reading." in text and text.count("Reading.") >= 8
    # scorecard: a row for every published value
    from emoalign.replication import load_published
    n_pub = len(load_published("tae2026").values)
    assert len(re.findall(r"✓ inside|✗ outside|not estimated|not comparable", text)) == n_pub
    # no absolute machine paths in the provenance
    assert "/home/someone" not in html and "specs/paper.yaml" not in text.split("Provenance")[-1]
    assert "paper.yaml" in text.split("Provenance")[-1]
    assert "Every analysis of the spec" not in text and "editing this document" not in text   # reader-facing


def test_figures_are_vector_and_legible(rendered):
    res, _ = rendered
    scan = scan_html(res.html)
    svgs = svg_images(scan.imgs)
    assert len(svgs) == len(scan.imgs)                 # every figure an SVG (vector in HTML and in the PDF)
    conf = next(s for s in svgs if "intended (true)" in s)
    assert svg_min_font_pt(conf, 510) >= 7.0           # confusion matrices printed at >= 7 pt
    ba = next(s for s in svgs if "proportional bias (regression)" in s)
    assert "<image" in ba and "<text" in ba            # dense points rasterised inside; axes and text vector
    si = next(s for s in svgs if "arousal r &gt; valence r" in s or "arousal r > valence r" in s)
    assert "stroke-dasharray" in si                    # the reference line


def test_render_pdf(rendered):
    res, _ = rendered
    assert res.pdf.exists() and pdf_pages(res.pdf) >= 5
    text = pdf_text(res.pdf)
    if not text:
        pytest.skip("pdftotext not installed")
    flat = " ".join(text.split())
    for phrase in ("paper Table 1", "paper Figure 3", "Demographic bias", "vlm_calibration", "Satterthwaite df",
                   "simple effect", "Simulated study", "Replication scorecard", "Model term"):
        assert phrase in flat, phrase
    assert "intended (true)" in flat                   # figure text is text (vector), not pixels
    assert flat.count(MARK) >= 50                      # simulated raters marked in the PDF too
    assert len(re.findall(r"\b(inside|outside|not estimated)\b", flat.split("Replication scorecard")[-1])) >= 272
    words = pdf_words(res.pdf)
    right = max(w["x1"] for w in words)
    page = words[0]["page_width"]
    assert right <= page - 1.5 / 2.54 * 72 + 2, right  # nothing runs past the right margin
    assert max(w["y1"] for w in words) <= words[0]["page_height"]


def _with(sample, change) -> Results:
    """The sample's results with the manifest edited in memory by ``change(analyses)``."""
    import json

    m = json.loads((sample / "manifest.json").read_text())
    change(m["analyses"])
    return Results(root=sample, manifest=m)


def test_sections_follow_the_role_the_spec_gives_not_the_id(sample):
    """A spec names its analyses freely and says which part of the paper's report each plays (report: {role});
    results of specs without roles keep their fixed ids."""
    def rename(analyses):
        for a in analyses:
            if a["id"] == "human_ceiling":           # the paper's ceiling under another id, with its role
                a["id"], a["title"] = "alpha_of_humans", "Humans"
                a["options"]["report"] = {"role": "human_ceiling"}
            if a["id"] == "machine_icc":             # a second reliability analysis: no role, rendered by its kind
                a["options"]["report"] = {"role": "human_celing"}

    R = _with(sample, rename)
    assert R.find("human_ceiling") == "alpha_of_humans" and R.find("mcnemar") == "mcnemar"
    legacy = S.human_ceiling(Results.load(sample))
    assert S.human_ceiling(R) == legacy                 # same table, same caption, whatever the id
    further = S.other_analyses(R)
    assert "alpha_of_humans" not in further and "sec-machine-icc" in further
    assert "gives the report role `human_celing`, which this report does not have -- did you mean 'human_ceiling'" in further

    def wrong_kind(analyses):
        for a in analyses:
            a["options"].pop("report", None)                         # results of a spec without roles...
            if a["id"] == "mcnemar":
                a["options"]["report"] = {"role": "human_ceiling"}   # ...but one: an explicit role wins over an id
    R = _with(sample, wrong_kind)
    out = S.human_ceiling(R)
    assert "Analysis `mcnemar` (kind `mcnemar`) plays the role `human_ceiling`, which needs kind `reliability`" in out
    assert "tbl-human-ceiling" not in out and "sec-human-ceiling" in S.other_analyses(R)


def test_a_section_for_a_kind_is_one_registration(sample):
    """The report renders any analysis of a kind by the section registered for it (a new module in
    emoalign/report/sections/ registers with @section); the kind's description comes from the manifest."""
    from emoalign.report.sections.base import SECTIONS, section

    R = Results.load(sample)
    before = S.other_analyses(R)
    assert "sec-vlm-calibration" in before and "Expected calibration error" not in before

    @section("probability_calibration", heading="Probability calibration")
    def probability_calibration(R, aid, names):
        df = R.table(aid)
        return T.md_table(df[["rater", "estimate"]].rename(columns={"estimate": "Expected calibration error"}),
                          f"{R.title(aid)}: expected calibration error per rater.", f"tbl-{S.slug(aid)}")

    try:
        after = S.other_analyses(R)
    finally:
        SECTIONS.remove("probability_calibration")
    assert "| Expected calibration error |" in after and "sec-vlm-calibration" in after
    assert "fig-vlm-calibration" not in after           # its own section, not the generic table + plot
    assert "Inter-rater reliability: Krippendorff's alpha" in after   # the description of machine_icc's kind


def test_cli_report_errors(tmp_path):
    from click.testing import CliRunner

    from emoalign.cli.main import cli

    r = CliRunner().invoke(cli, ["report", str(tmp_path / "none"), "-o", str(tmp_path / "r.html")])
    assert r.exit_code != 0 and isinstance(r.exception, EmoalignError) and "does not exist" in str(r.exception)
    r = CliRunner().invoke(cli, ["report", "--help"])
    assert r.exit_code == 0 and "--pdf" in r.output and "quarto render" in r.output


def test_spec_compare_to_and_labels():
    """`compare_to` (a built-in name or a YAML file) and `labels` are spec keys; an unknown name is a spec error."""
    from emoalign.spec.load import parse_spec

    base = "study: {stimuli: s.parquet, humans: h.parquet}\n"
    sp = parse_spec(base + "compare_to: tae2026\nlabels: {gemma3: Gemma3-4B}\n").spec
    assert sp.compare_to.published == "tae2026" and sp.compare_to.raters == {} and sp.labels == {"gemma3": "Gemma3-4B"}
    sp = parse_spec(base + "compare_to: {published: mine.yaml, raters: {gemma3: g}}\n").spec
    assert sp.compare_to.published == "mine.yaml" and sp.compare_to.raters == {"gemma3": "g"}
    with pytest.raises(EmoalignError, match="unknown published values 'tae2025'"):
        parse_spec(base + "compare_to: tae2025\n")


def test_published_values_and_scorecard_rule(sample):
    """Every number of Tables 1-7 is in the package data; the rule: CI (widened by half a printed unit) or the
    measure's tolerance; p-values by verdict."""
    from emoalign.replication import load_published, parse_value, scorecard, summary
    from emoalign.replication.scorecard import compare

    pub = load_published("tae2026")
    v = pub.values
    counts = v.groupby("table").size()
    assert counts["Table 1"] == 21 and counts["Table 2"] == 42 and counts["Table 7"] == 36
    assert counts[["Table 3", "Table 4", "Table 5"]].tolist() == [30, 30, 30] and counts["Table 6"] == 24
    assert len(v) == 272 and not v.duplicated(["table", "row", "column"]).any()
    assert "Tae, J., Park, J.-H., & Choi, W. (2026)" in pub.citation
    assert parse_value("−1.99") == (-1.99, None, 0.005) and parse_value("< .001")[:2] == (0.001, "<")
    assert parse_value("0.00")[2] == 0.005 and parse_value("32")[2] == 0.5 and parse_value("n.s.")[1] == "n.s."
    e = v[(v.table == "Table 1") & (v.row == "Gemma3-4B") & (v.column == "Cohen's κ")].iloc[0]     # 0.671, tol .03
    row = lambda x, lo=float("nan"), hi=float("nan"): pd.Series({"estimate": x, "conf_low": lo, "conf_high": hi})  # noqa: E731
    assert compare(e, row(0.70), pub)["inside"] and not compare(e, row(0.702), pub)["inside"]
    assert compare(e, row(0.75, 0.6705, 0.80), pub)["inside"]                       # in the CI, widened by .0005
    assert not compare(e, row(0.75, 0.6720, 0.80), pub)["inside"]
    prow = lambda x: pd.Series({"estimate": 1.0, "p_value": x})  # noqa: E731  (p-values are read from p_value)
    p = v[(v.table == "Table 6") & (v.row == "Happy") & (v.column == "Gemma3 LMM p")].iloc[0]         # .442
    assert compare(p, prow(0.2), pub)["inside"] and not compare(p, prow(0.01), pub)["inside"]
    p = v[(v.table == "Table 6") & (v.row == "Fear") & (v.column == "Gemma3 LMM p")].iloc[0]          # < .001
    assert compare(p, prow(0.03), pub)["inside"] and not compare(p, prow(0.2), pub)["inside"]
    # the sample results: a row per value, the summary adds up
    R = Results.load(sample)
    card = scorecard(R.table, pub)
    assert len(card) == 272 and set(card["status"]) <= {"inside", "outside", "not estimated", "not comparable"}
    s = summary(card, pub.tables())
    allrow = s[s.table == "All"].iloc[0]
    assert allrow["published"] == 272 and allrow["inside"] + allrow["outside"] == allrow["estimated"]
    assert s[s.table != "All"]["inside"].sum() == allrow["inside"]
    # the dropped analysis has no estimates; a rater map sends a published model to another rater
    assert (card[card.analysis == "race_emotion_accuracy"]["status"] == "not estimated").all()
    mapped = scorecard(R.table, pub, {"gemma3": "llama32v"})
    g = mapped[(mapped.table == "Table 1") & (mapped.row == "Gemma3-4B")]
    ll = card[(card.table == "Table 1") & (card.row == "LLaMA-3.2-11B")]
    assert g["estimate"].tolist() == ll["estimate"].tolist() and (g["rater"] == "llama32v").all()
