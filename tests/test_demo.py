"""The end-to-end demo on the small profile: simulate -> real minixception inference -> analyze with
the paper spec (+ minixception) through R -> report; the report is checked like test_report's."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from report_checks import check_no_external, decode_images, pdf_pages, pdf_text, scan_html  # noqa: E402

from emoalign.errors import EmoalignError

pytestmark = pytest.mark.r


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    pytest.importorskip("rpy2")
    from emoalign.pipeline import run_demo

    lines: list[str] = []
    res = run_demo(tmp_path_factory.mktemp("demo"), profile="small", pdf=True, progress=False, echo=lines.append)
    return res, lines


@pytest.mark.slow  # the whole demo pipeline (simulate, FER inference, R analyses, HTML+PDF report)
def test_demo_stages_and_outputs(demo):
    res, lines = demo
    assert list(res.seconds) == ["simulate", "infer", "analyze", "report"]
    assert [ln[:5] for ln in lines if ln.startswith("[")] == ["[1/4]", "[2/4]", "[3/4]", "[4/4]"]
    assert res.failed == [], res.failed
    assert res.html.exists() and res.pdf.exists() and pdf_pages(res.pdf) >= 5
    spec = res.spec.read_text()
    assert "minixception" in spec
    # the real FER run is in the study next to the simulated profiles
    real = pd.read_parquet(res.study / "runs" / "minixception" / "ratings.parquet")
    assert len(real) == 144 and real["emotion"].notna().all() and not real["simulated"].fillna(False).any()


@pytest.mark.slow  # the whole demo pipeline (simulate, FER inference, R analyses, HTML+PDF report)
def test_demo_manifest_marks_real_and_simulated(demo):
    res, _ = demo
    m = json.loads((res.results / "manifest.json").read_text())
    sim = {r["rater"]: r["simulated"] for r in m["raters"] if not r.get("derived")}
    assert sim.pop("minixception") is False
    assert set(sim) == {"gemma3", "llama32v", "posterv2", "mobilevit", "efficientnet_va", "beit", "emonet"}
    assert all(sim.values())
    cls = pd.read_parquet(res.results / "classification.parquet")
    assert "minixception" in set(cls["rater"])
    # what of the study is simulated, read from the study's own files
    assert m["simulation"]["humans"] is True and m["simulation"]["stimuli"] is True
    assert m["simulation"]["profile"] == "small" and m["simulation"]["simulation_json"] is True
    # the FER model's 7 native classes mapped onto the study's 6
    mini = next(r for r in m["raters"] if r["rater"] == "minixception")
    assert mini["label_map"]["surprise"] is None and mini["unmapped"] == "renormalise" and 0 < mini["unmapped_mass_mean"] < 1
    # each analysis' resolved options and its kind's info, for captions built from what ran
    by_id = {a["id"]: a for a in m["analyses"]}
    lmm = by_id["valence_emotion_lmm"]
    assert lmm["options"]["df_method"] == "satterthwaite" and lmm["options"]["contrast"] == "rater_type"
    assert lmm["info"]["df_method"] == "satterthwaite"
    assert lmm["info"]["reference_levels"] == {"emotion": "angry", "rater_type": "human"}
    assert by_id["demographic_lmm"]["info"]["reference_levels"] == {"race": "Caucasian", "gender": "male", "rater_type": "human"}
    assert by_id["valence_bias"]["options"]["n_comparisons"] == 18 and by_id["valence_bias"]["info"]["adjust"] == "bonferroni"
    assert by_id["human_ceiling"]["options"]["bootstrap"] == 1000
    assert m["spec"]["compare_to"] == {"published": "tae2026", "raters": {}} and m["spec"]["labels"]["gemma3"] == "Gemma3-4B"


@pytest.mark.slow  # the whole demo pipeline (simulate, FER inference, R analyses, HTML+PDF report)
def test_demo_report_content(demo):
    res, _ = demo
    scan = scan_html(res.html)
    for i in ("tbl-classification", "tbl-emotion-accuracy", "fig-confusion", "tbl-valence", "tbl-arousal",
              "tbl-valence-bias", "tbl-arousal-bias", "tbl-response-variance-valence", "tbl-response-variance-arousal", "tbl-human-ceiling", "tbl-variance",
              "fig-strength-inversion", "fig-demographic-bias", "fig-bland-altman", "tbl-mcnemar", "tbl-raters",
              "tbl-race-emotion-accuracy", "tbl-design-cells"):
        assert i in scan.ids, i
    decode_images(scan.imgs)
    check_no_external(res.html, scan)
    html = " ".join(res.html.read_text().split())
    # provenance table: minixception is a real run (display name from the spec's labels), the rest SIMULATED profiles
    assert re.search(r"<td[^>]*>mini-Xception</td> <td[^>]*>real run</td>", html)
    assert len(re.findall(r"<td[^>]*><strong>SIMULATED</strong></td>", html)) == 7
    assert "Real model runs: <code>minixception</code>" in html
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    # the title page says what is real; simulated raters carry the mark; the FER label mapping is stated
    assert "Simulated study." in text and "Real: the outputs of mini-Xception (real model runs on the simulated images)" in text
    assert "Gemma3-4B†" in text and "mini-Xception†" not in text
    assert "7 classes → 6; surprise dropped, the rest renormalised" in text
    # McNemar: real-vs-simulated pairs kept apart from the simulated-vs-simulated ones
    for i in ("tbl-mcnemar", "tbl-mcnemar-mixed", "tbl-valence-lmm-tests", "tbl-arousal-lmm-tests",
              "tbl-replication-summary", "tbl-naturalness", "tbl-emotion-f1", "tbl-model-demographic-lmm"):
        assert i in scan.ids, i
    # both LMM tests named, captions naming the df method that ran; a scorecard row per published value
    assert "Satterthwaite df (lmerTest)" in text and "simple effect Δ (p)" in text and "model term β (p)" in text
    from emoalign.replication import load_published
    assert len(re.findall(r"✓ inside|✗ outside|not estimated|not comparable", text)) == len(load_published().values)
    assert "/tmp/" not in text.split("Provenance")[-1] and str(res.out) not in text
    # beyond the paper: the four remedies of specs/examples/remedies.yaml, each held out / paired and marked derived
    for i in ("sec-calibration", "tbl-calibration", "tbl-calibration-emotion", "tbl-prior-correction",
              "tbl-prior-correction-recall", "tbl-prior-correction-blank", "tbl-human-percentile", "fig-human-percentile",
              "tbl-derived-raters"):
        assert i in scan.ids, i
    assert "Sad recall, the paper" in text and "sad → neutral absorption" in text and "Gemma3-4B (calibrated)†" in text
    assert "Hybrid (FER + VLM)†" in text and "emotion from posterv2; valence from mobilevit; arousal from gemma3" in text
    m = json.loads((res.results / "manifest.json").read_text())
    derived = {r["rater"]: r for r in m["raters"] if r.get("derived")}
    assert derived["gemma3:calibrated"]["produced_by"] == "calibration" and derived["hybrid"]["simulated"] is True


@pytest.mark.slow  # the whole demo pipeline (simulate, FER inference, R analyses, HTML+PDF report)
def test_demo_pdf_text(demo):
    res, _ = demo
    flat = " ".join(pdf_text(res.pdf).split())
    if not flat:
        pytest.skip("pdftotext not installed")
    for phrase in ("Simulated study", "Satterthwaite df", "Model term", "simple effect", "Replication scorecard",
                   "mini-Xception"):
        assert phrase in flat, phrase


@pytest.mark.slow  # the whole demo pipeline (simulate, FER inference, R analyses, HTML+PDF report)
def test_demo_refuses_existing(demo):
    from emoalign.pipeline import run_demo

    res, _ = demo
    with pytest.raises(EmoalignError, match="already holds a demo"):
        run_demo(res.out, profile="small", progress=False, echo=lambda s: None)


def test_demo_cli_help():
    from click.testing import CliRunner

    from emoalign.cli.main import cli

    r = CliRunner().invoke(cli, ["demo", "--help"])
    assert r.exit_code == 0 and "--profile" in r.output and "minixception" in r.output


@pytest.mark.slow  # the whole demo pipeline (simulate, FER inference, R analyses, HTML+PDF report)
def test_added_analysis_renders_generically(demo, tmp_path):
    """An analysis added to the YAML appears in the report with no edit to the .qmd."""
    import shutil

    import yaml

    from emoalign.analysis.engine import run_spec
    from emoalign.render import render_report

    res, _ = demo
    spec = yaml.safe_load(res.spec.read_text())
    spec["analyses"].append({"id": "vlm_valence_by_race", "title": "VLM valence agreement by race", "kind": "agreement",
                             "raters": ["vlm"], "dimension": "valence", "by": ["race"]})
    spec_path = res.study / "extended.yaml"
    spec_path.write_text(yaml.safe_dump(spec, sort_keys=False))
    results = tmp_path / "results"
    shutil.copytree(res.results, results)
    run_spec(spec_path, results, data_dir=res.study, only=["vlm_valence_by_race"])
    rr = render_report(results, tmp_path / "r.html", None, engine="offline", progress=False)
    scan = scan_html(rr.html)
    for i in ("sec-vlm-valence-by-race", "tbl-vlm-valence-by-race", "fig-vlm-valence-by-race", "tbl-classification"):
        assert i in scan.ids, i
    assert any("VLM valence agreement by race" in c for c in scan.captions)
    html = rr.html.read_text()
    assert "Korean" in html and "pearson_r" in html
    decode_images(scan.imgs)
