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
from report_checks import check_no_external, decode_images, pdf_pages, scan_html  # noqa: E402

from emoalign.errors import EmoalignError

pytestmark = pytest.mark.r


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    pytest.importorskip("rpy2")
    from emoalign.report.demo import run_demo

    lines: list[str] = []
    res = run_demo(tmp_path_factory.mktemp("demo"), profile="small", pdf=True, progress=False, echo=lines.append)
    return res, lines


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


def test_demo_manifest_marks_real_and_simulated(demo):
    res, _ = demo
    m = json.loads((res.results / "manifest.json").read_text())
    sim = {r["rater"]: r["simulated"] for r in m["raters"]}
    assert sim.pop("minixception") is False
    assert set(sim) == {"gemma3", "llama32v", "posterv2", "mobilevit", "efficientnet_va", "beit", "emonet"}
    assert all(sim.values())
    cls = pd.read_parquet(res.results / "classification.parquet")
    assert "minixception" in set(cls["rater"])


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
    # provenance table: minixception is a real run, the rest are SIMULATED profiles
    assert re.search(r"<td[^>]*>minixception</td> <td[^>]*>real model run</td>", html)
    assert html.count("<strong>SIMULATED</strong> profile") == 7
    assert "Real model runs: <code>minixception</code>" in html


def test_demo_refuses_existing(demo):
    from emoalign.report.demo import run_demo

    res, _ = demo
    with pytest.raises(EmoalignError, match="already holds a demo"):
        run_demo(res.out, profile="small", progress=False, echo=lambda s: None)


def test_demo_cli_help():
    from click.testing import CliRunner

    from emoalign.cli.main import cli

    r = CliRunner().invoke(cli, ["demo", "--help"])
    assert r.exit_code == 0 and "--profile" in r.output and "minixception" in r.output


def test_added_analysis_renders_generically(demo, tmp_path):
    """An analysis added to the YAML appears in the report with no edit to the .qmd."""
    import shutil

    import yaml

    from emoalign.analysis.engine import run_spec
    from emoalign.report.render import render_report

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
