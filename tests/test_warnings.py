"""Warnings where the numbers cannot be trusted, each triggered by a minimal study and visible in the manifest,
the CLI summary and the report rows: constant machine ratings, raters on unequal image sets (and `images:
common`), an unbalanced human design, Wilcoxon near-ties, singular fits."""

import json

import numpy as np
import pandas as pd
import pytest

from cli_runner import run_cli
from engine_study import SPEC as ENGINE_SPEC, write_study
from emoalign.report import sections as S
from emoalign.report import tables as T
from emoalign.report.results import Results

SPEC = ENGINE_SPEC.split("analyses:")[0] + """analyses:
  - {id: human_ceiling, kind: reliability, raters: human, dimension: valence, bootstrap: 50}
  - {id: dimensional_agreement, kind: agreement, raters: [gemma3, fer_a], dimension: [valence, arousal]}
  - {id: agreement_common, kind: agreement, raters: [gemma3, fer_a], dimension: [valence, arousal], images: common}
  - {id: valence_bias, kind: group_bias, raters: [fer_a], dimension: valence}
  - {id: classification, kind: classification, raters: [gemma3, fer_a], confusion: false}
  - {id: classification_common, kind: classification, raters: [gemma3, fer_a], confusion: false, images: common}
  - {id: valence_emotion_lmm, kind: lmm, raters: [gemma3], dimension: valence,
     formula: "rating ~ rater_type * emotion + (1|image_id)", reference_levels: {emotion: angry, rater_type: human}}
"""


@pytest.fixture(scope="module")
def troubled(tmp_path_factory):
    """engine_study with: gemma3's valence constant (5), fer_a missing 10% of the images and rating valence in whole
    numbers (differences from human means k/m then have floating-point near-ties); the human design is unbalanced
    (raters rate random images, and the trials of 3 images are dropped)."""
    root = tmp_path_factory.mktemp("troubled")
    write_study(root, seed=5)
    g = pd.read_parquet(root / "runs/gemma3/ratings.parquet").assign(valence=5.0)
    g.to_parquet(root / "runs/gemma3/ratings.parquet", index=False)
    f = pd.read_parquet(root / "runs/fer_a/ratings.parquet")
    f = f.assign(valence=np.round(f["valence"])).iloc[: int(len(f) * 0.9)]
    f.to_parquet(root / "runs/fer_a/ratings.parquet", index=False)
    h = pd.read_parquet(root / "humans.parquet")
    h[~h["image_id"].isin(h["image_id"].unique()[:3])].to_parquet(root / "humans.parquet", index=False)
    (root / "spec.yaml").write_text(SPEC)
    return root


@pytest.fixture(scope="module")
def analyzed(troubled):
    from emoalign.analysis.engine import run_spec

    out = troubled / "results"
    report = run_spec(troubled / "spec.yaml", out)
    assert report.ok, [o.error for o in report.outcomes]
    return out, json.loads((out / "manifest.json").read_text())


def _entry(manifest, aid):
    return next(a for a in manifest["analyses"] if a["id"] == aid)


def test_constant_machine_ratings_flagged_and_lmm_inference_withheld(analyzed):
    out, manifest = analyzed
    ag = pd.read_parquet(out / "dimensional_agreement.parquet")
    r = ag[(ag.rater == "gemma3") & (ag.dimension == "valence") & (ag.metric == "pearson_r")].iloc[0]
    assert np.isnan(r["estimate"]) and "constant machine ratings" in r["flag"]
    ok = ag[(ag.rater == "gemma3") & (ag.dimension == "arousal")]
    assert not ok["flag"].fillna("").str.contains("constant").any()  # only the constant dimension
    assert any("gives every image the same valence rating (5)" in w for w in _entry(manifest, "dimensional_agreement")["warnings"])
    lmm = pd.read_parquet(out / "valence_emotion_lmm.parquet")
    fixed = lmm[lmm.effect == "fixed"]
    assert fixed["p_value"].isna().all() and fixed["df"].isna().all() and fixed["estimate"].notna().all()
    assert fixed["flag"].str.contains("constant machine ratings").all()
    assert any("p-values and CIs withheld" in w for w in _entry(manifest, "valence_emotion_lmm")["warnings"])
    glance = pd.read_parquet(out / "valence_emotion_lmm.glance.parquet")
    assert list(glance["rater"]) == ["gemma3"] and {"optimizer", "max_grad", "singular", "converged"} <= set(glance.columns)
    assert _entry(manifest, "valence_emotion_lmm")["extra"]["glance"] == "valence_emotion_lmm.glance.parquet"


def test_unequal_image_sets_flagged_and_images_common_restricts(analyzed):
    out, manifest = analyzed
    ag = pd.read_parquet(out / "dimensional_agreement.parquet")
    n = ag[ag.metric == "mae"].set_index(["rater", "dimension"])["n"]
    assert n["fer_a", "valence"] < n["gemma3", "valence"]
    fer = ag[ag.rater == "fer_a"]
    assert fer["flag"].str.contains(r"fewer images \(").all()
    assert not ag[ag.rater == "gemma3"]["flag"].fillna("").str.contains("fewer images").any()
    entry = _entry(manifest, "dimensional_agreement")
    assert any("unequal numbers of images" in w and "images: common" in w for w in entry["warnings"])
    assert any(k.startswith("fewer images (") and v == len(fer) for k, v in entry["flagged"].items())
    common = pd.read_parquet(out / "agreement_common.parquet")
    nc = common[common.metric == "mae"].groupby("dimension")["n"].nunique()
    assert (nc == 1).all()  # every rater judged on the same images
    assert common[common.metric == "mae"]["n"].max() == n["fer_a", "valence"]
    assert not common["flag"].fillna("").str.contains("fewer images").any()
    assert any("images: common keeps" in w for w in _entry(manifest, "agreement_common")["warnings"])
    # the same for emotion labels
    cl = pd.read_parquet(out / "classification.parquet")
    acc = cl[(cl.metric == "accuracy") & cl.emotion.isna()].set_index("rater")
    assert acc.loc["fer_a", "n"] < acc.loc["gemma3", "n"] and "fewer images" in acc.loc["fer_a", "flag"]
    cc = pd.read_parquet(out / "classification_common.parquet")
    acc = cc[(cc.metric == "accuracy") & cc.emotion.isna()].set_index("rater")
    assert acc.loc["fer_a", "n"] == acc.loc["gemma3", "n"] and "flag" not in cc.columns


def test_unbalanced_design_in_the_study_summary(analyzed, troubled):
    _, manifest = analyzed
    s = manifest["study"]
    h = pd.read_parquet(troubled / "humans.parquet")
    per_image = h.groupby("image_id").size().reindex(pd.read_parquet(troubled / "stimuli.parquet")["image_id"],
                                                      fill_value=0)
    assert s["balanced"] is False
    assert s["trials_per_image"]["histogram"] == {str(k): int(v) for k, v in per_image.value_counts().sort_index().items()}
    assert s["trials_per_image"]["min"] == 0 and s["trials_per_image"]["mean"] == pytest.approx(per_image.mean(), abs=1e-3)
    assert s["trials_per_rater"]["max"] == h.groupby("rater_id").size().max()
    assert any(w.startswith("unbalanced human design: 0-") for w in manifest["warnings"])


def test_wilcoxon_near_ties_flagged(analyzed):
    out, manifest = analyzed
    bias = pd.read_parquet(out / "valence_bias.parquet")
    flagged = bias["flag"].fillna("").str.contains("near-ties")
    assert flagged.any()
    assert any("near-ties" in w and "digits_rank: 12" in w for w in _entry(manifest, "valence_bias")["warnings"])


def test_report_rows_marked_and_notes_list_the_flags(analyzed):
    out, _ = analyzed
    R = Results.load(out)
    md = S.dimension_summary(R, "valence", 3)
    row = next(line for line in md.splitlines() if line.startswith("| gemma3"))
    assert T.FLAG_MARK in row  # constant ratings: NaN r, marked
    assert f"Estimates marked {T.FLAG_MARK}" in md and "constant machine ratings" in md
    bias = S.bias(R, "valence", 4)
    assert T.FLAG_MARK in bias and "near-ties" in bias
    ceiling = S.human_ceiling(R)
    assert "Human design: **unbalanced**" in ceiling
    assert T.mark({"flag": "singular fit"}) == T.FLAG_MARK and T.mark({"flag": None}) == "" and T.mark({}) == ""


def test_cli_summary_shows_the_warnings(troubled, capsys):
    code, out, err = run_cli(["analyze", troubled / "spec.yaml", "--out", troubled / "cli-results", "--only",
                              "dimensional_agreement", "--only", "valence_bias", "-q"], capsys)
    assert code == 0, err
    assert "flagged" in out.splitlines()[0]  # the summary table has the column
    assert "study: unbalanced human design" in err
    assert "dimensional_agreement: raters compared on unequal numbers of images" in err
    assert "flagged row(s): " in err and "constant machine ratings" in err
    assert "valence_bias: " in err and "near-ties" in err
