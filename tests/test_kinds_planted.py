"""The six pure-Python kinds on a small simulated Study with planted effects.

Planted: rater ``m1`` has a known per-emotion valence bias (machine - human image mean), a known
per-emotion accuracy (errors go to ``neutral``; a few invalid answers) and a race x emotion
accuracy gap; rater ``m2`` answers one stereotyped valence per emotion. Each kind must recover the
effects within sampling error and agree with independent implementations on the same data.
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn import metrics as skm

from emoalign.analysis.kinds import KINDS
from emoalign.analysis.stats import INVALID_LABEL, p_adjust
from emoalign.analysis.study import Study
from emoalign.data.schemas import RESULT_VALUE_COLUMNS, RESULTS, conform, validate_columns
from emoalign.errors import EmoalignError

EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "neutral"]
MU_V = dict(angry=3.0, disgust=3.2, fear=3.4, happy=7.0, sad=3.5, neutral=5.0)
BIAS_V = dict(angry=-1.0, disgust=-1.5, fear=-2.0, happy=1.3, sad=0.4, neutral=0.0)
ACC_M1 = dict(angry=0.4, disgust=0.85, fear=0.95, happy=1.0, sad=0.15, neutral=1.0)
ANGRY_ACC_BY_RACE = dict(Black=0.8, Korean=0.2)
N_PER_CELL = 50          # images per emotion x race
N_HUMANS = 12


@pytest.fixture(scope="module")
def study():
    rng = np.random.default_rng(2026)
    rows = []
    for e in EMOTIONS:
        for race in ("Black", "Korean"):
            for i in range(N_PER_CELL):
                rows.append(dict(image_id=f"{e}_{race}_{i}", path=f"{e}_{race}_{i}.png", emotion=e, race=race,
                                 gender="female" if i % 2 else "male", sha256="0"))
    stim = pd.DataFrame(rows)
    n = len(stim)
    true_v = stim["emotion"].map(MU_V).to_numpy() + rng.normal(0, 0.6, n)
    true_a = rng.normal(5, 1, n)
    hum = []
    for r in range(N_HUMANS):
        keep = rng.random(n) < 0.8                       # each human rates ~80% of images
        v = np.clip(np.round(true_v + rng.normal(0, 1.2, n)), 1, 9)
        a = np.clip(np.round(true_a + rng.normal(0, 1.5, n)), 1, 9)
        hum.append(pd.DataFrame(dict(rater_id=f"h{r}", image_id=stim["image_id"], valence=v, arousal=a))[keep])
    humans = pd.concat(hum, ignore_index=True)
    hmean = humans.groupby("image_id")["valence"].mean().reindex(stim["image_id"]).to_numpy()
    # m1: valence = human image mean + planted bias + noise; emotion with planted accuracy
    m1_v = hmean + stim["emotion"].map(BIAS_V).to_numpy() + rng.normal(0, 0.5, n)
    acc = stim["emotion"].map(ACC_M1).to_numpy().copy()
    angry = stim["emotion"].eq("angry").to_numpy()
    acc[angry] = stim.loc[angry, "race"].map(ANGRY_ACC_BY_RACE).to_numpy()
    right = rng.random(n) < acc
    pred = np.where(right, stim["emotion"], "neutral").astype(object)
    pred[~right & stim["emotion"].eq("neutral").to_numpy()] = "sad"
    wrong_idx = np.flatnonzero(~right)
    pred[wrong_idx[:2]] = "doubt"
    pred[wrong_idx[2]] = None
    m2_pred = np.where(rng.random(n) < 0.7, stim["emotion"], "angry").astype(object)
    machines = pd.concat([
        pd.DataFrame(dict(rater="m1", image_id=stim["image_id"], emotion=pred, valence=m1_v,
                          arousal=true_a + rng.normal(0, 1, n))),
        pd.DataFrame(dict(rater="m2", image_id=stim["image_id"], emotion=m2_pred,
                          valence=stim["emotion"].map(MU_V).to_numpy() + 1.0, arousal=np.full(n, 5.0))),
    ], ignore_index=True)
    return Study(stimuli=stim, humans=humans, machines=machines, scales={"valence": (1, 9), "arousal": (1, 9)},
                 emotions=EMOTIONS, reference="emotion", groups={"vlm": ["m1"], "fer": ["m2"]})


def run_kind(study, **spec):
    entry = KINDS[spec["kind"]]
    opts = entry.options(**spec)
    res = entry.run(opts, study)
    t = res.table
    assert "analysis_id" not in t.columns          # the engine inserts it
    values = [c for c in RESULT_VALUE_COLUMNS if c in t.columns]
    assert values[0] == "metric" and "estimate" in values
    validate_columns(t.assign(analysis_id=spec["id"]), RESULTS)       # the Arrow results contract
    conform(t.assign(analysis_id=spec["id"]), RESULTS)
    return res


# ---- classification ---------------------------------------------------------------------------
def test_classification_recovers_accuracy_and_matches_sklearn(study):
    res = run_kind(study, id="cls", kind="classification", raters=["vlm", "fer"])
    t = res.table
    assert list(t.columns[:4]) == ["rater", "emotion", "predicted", "metric"]
    assert any("m1" in w and "doubt x2" in w and "<missing> x1" in w for w in res.warnings)
    m1 = t[t.rater == "m1"]
    per = m1[(m1.metric == "accuracy") & m1.emotion.notna()].set_index("emotion")
    for e, p in ACC_M1.items():
        if e == "angry":
            p = np.mean(list(ANGRY_ACC_BY_RACE.values()))
        se = np.sqrt(p * (1 - p) / (2 * N_PER_CELL))
        assert abs(per.loc[e, "estimate"] - p) <= 3.5 * se + 1e-12, e
        assert per.loc[e, "n"] == 2 * N_PER_CELL
    lf = study.label_frame("m1")
    yt = lf["reference"].to_numpy()
    yp = np.array([x if x in EMOTIONS else "zz" for x in lf["predicted"]])
    overall = m1[m1.emotion.isna()].set_index("metric")
    assert overall.loc["accuracy", "estimate"] == pytest.approx(skm.accuracy_score(yt, yp), abs=1e-12)
    assert overall.loc["macro_f1", "estimate"] == pytest.approx(
        skm.f1_score(yt, yp, labels=EMOTIONS, average="macro"), abs=1e-12)
    assert overall.loc["cohen_kappa", "estimate"] == pytest.approx(skm.cohen_kappa_score(yt, yp), abs=1e-12)
    assert overall.loc["cohen_kappa", "conf_low"] < overall.loc["cohen_kappa", "estimate"] < overall.loc["cohen_kappa", "conf_high"]
    f1 = m1[m1.metric == "f1"].set_index("emotion")["estimate"]
    np.testing.assert_allclose(f1[EMOTIONS], skm.f1_score(yt, yp, labels=EMOTIONS, average=None), atol=1e-12)
    counts = m1[m1.metric == "confusion_count"]
    assert counts["estimate"].sum() == len(lf) and INVALID_LABEL in set(counts["predicted"])
    assert counts[(counts.emotion == "sad") & (counts.predicted == "neutral")]["estimate"].iloc[0] > 70
    props = m1[m1.metric == "confusion_prop"].groupby("emotion")["estimate"].sum()
    np.testing.assert_allclose(props, 1.0, atol=1e-12)
    assert set(t.rater) == {"m1", "m2"} and (t[t.rater == "m2"].predicted != INVALID_LABEL).all()


def test_classification_errors(study):
    with pytest.raises(EmoalignError, match="label"):
        run_kind(study, id="bad", kind="classification", raters="m1", reference="race")
    with pytest.raises(EmoalignError, match="by"):
        run_kind(study, id="bad", kind="classification", raters="m1", by=["rac"])


# ---- mcnemar ------------------------------------------------------------------------------------
@pytest.mark.parametrize("correct,exact", [(True, False), (False, False), (False, True)])
def test_mcnemar_kind_vs_statsmodels(study, correct, exact):
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
    res = run_kind(study, id="mc", kind="mcnemar", raters=["m1", "m2"], correct=correct, exact=exact)
    row = res.table.iloc[0]
    lf = study.label_frame(["m1", "m2"])
    ok = {r: (g.set_index("image_id")["predicted"] == g.set_index("image_id")["reference"]) for r, g in lf.groupby("rater")}
    a, b = ok["m1"], ok["m2"].reindex(ok["m1"].index)
    table = pd.crosstab(a, b).reindex(index=[True, False], columns=[True, False]).to_numpy()
    ref = sm_mcnemar(table, exact=exact, correction=correct)
    assert row["n10"] == table[0, 1] and row["n01"] == table[1, 0]
    assert row["p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert row["estimate"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
    assert row["p_adjusted"] == row["p_value"]          # one pair: nothing to adjust


def test_mcnemar_by_group_holm(study):
    t = run_kind(study, id="mc", kind="mcnemar", raters=["m1", "m2"], by=["race"]).table
    assert list(t["race"]) == ["Black", "Korean"]
    np.testing.assert_allclose(t["p_adjusted"], p_adjust(t["p_value"], "holm"), atol=1e-15)
    with pytest.raises(EmoalignError, match="at least two"):
        run_kind(study, id="mc", kind="mcnemar", raters=["m1"])


# ---- group_accuracy ------------------------------------------------------------------------------
def test_group_accuracy_race_emotion_gap(study):
    t = run_kind(study, id="ga", kind="group_accuracy", raters="m1", by=["race", "emotion"]).table
    assert list(t.columns[:4]) == ["rater", "race", "emotion", "metric"]
    ang = t[t.emotion == "angry"].set_index("race")
    for race, p in ANGRY_ACC_BY_RACE.items():
        assert ang.loc[race, "conf_low"] - 0.05 <= p <= ang.loc[race, "conf_high"] + 0.05
    assert ang.loc["Black", "conf_low"] > ang.loc["Korean", "conf_high"]    # the planted gap is detected
    assert t["n"].sum() == len(study.stimuli) and (t["n_correct"] / t["n"] == t["estimate"]).all()


# ---- agreement ------------------------------------------------------------------------------------
def test_agreement_matches_independent_implementations(study):
    pg = pytest.importorskip("pingouin")
    res = run_kind(study, id="ag", kind="agreement", raters="m1", dimension=["valence", "arousal"])
    t = res.table.set_index(["dimension", "metric"])
    pts = res.extra["points"]
    assert list(pts.columns) == ["rater", "dimension", "image_id", "machine", "human", "mean", "diff"]
    p = pts[pts.dimension == "valence"]
    m, h = p["machine"].to_numpy(), p["human"].to_numpy()
    r = stats.pearsonr(m, h)
    ci = r.confidence_interval()
    v = t.loc["valence"]
    assert v.loc["pearson_r", "estimate"] == pytest.approx(r.statistic, abs=1e-12)
    assert (v.loc["pearson_r", "conf_low"], v.loc["pearson_r", "conf_high"]) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert v.loc["mae", "estimate"] == pytest.approx(np.abs(m - h).mean(), abs=1e-12)
    assert v.loc["rmse", "estimate"] == pytest.approx(np.sqrt(((m - h) ** 2).mean()), abs=1e-12)
    assert v.loc["human_sd", "estimate"] == pytest.approx(h.std(ddof=1), abs=1e-12)
    planted = np.mean(list(BIAS_V.values()))
    assert v.loc["mean_diff", "conf_low"] < planted < v.loc["mean_diff", "conf_high"]
    assert v.loc["loa_high", "estimate"] == pytest.approx((m - h).mean() + 1.96 * (m - h).std(ddof=1), abs=1e-12)
    long = pd.DataFrame({"t": np.r_[np.arange(len(m)), np.arange(len(m))], "r": ["m"] * len(m) + ["h"] * len(m),
                         "y": np.r_[m, h]})
    ref = pg.intraclass_corr(long, "t", "r", "y").set_index("Type").loc["ICC(A,1)"]
    assert v.loc["icc_a1", "estimate"] == pytest.approx(ref["ICC"], abs=1e-10)
    assert set(res.table["dimension"]) == {"valence", "arousal"}


def test_agreement_by_group_and_missing_dimension(study):
    t = run_kind(study, id="ag", kind="agreement", raters="m1", dimension="valence", by=["emotion"]).table
    md = t[t.metric == "mean_diff"].set_index("emotion")
    for e, b in BIAS_V.items():
        assert md.loc[e, "conf_low"] - 0.05 < b < md.loc[e, "conf_high"] + 0.05, e
    with pytest.raises(EmoalignError, match="needs a dimension"):
        run_kind(study, id="ag", kind="agreement", raters="m1")


# ---- group_bias ------------------------------------------------------------------------------------
def test_group_bias_recovers_planted_bias(study):
    res = run_kind(study, id="vb", kind="group_bias", raters=["m1", "m2"], dimension="valence")
    t = res.table
    assert list(t.columns[:4]) == ["rater", "dimension", "emotion", "metric"]
    m1 = t[t.rater == "m1"].set_index("emotion")
    se = 0.5 / np.sqrt(2 * N_PER_CELL)
    for e, b in BIAS_V.items():
        assert abs(m1.loc[e, "estimate"] - b) < 4 * se, e
    assert m1.loc["fear", "p_adjusted"] < 1e-10 and m1.loc["neutral", "p_adjusted"] > 0.01
    # Wilcoxon vs scipy (continuity-corrected normal approximation; n = 100 > 50)
    cf = study.comparison_frame("valence", ["m1"])
    wide = cf.pivot_table(index="image_id", columns="rater", values="rating")
    emo = study.stimuli.set_index("image_id")["emotion"]
    d = (wide["m1"] - wide["human"])[emo.reindex(wide.index) == "sad"]
    ref = stats.wilcoxon(d, correction=True, method="approx")
    assert m1.loc["sad", "p_value"] == pytest.approx(ref.pvalue, rel=1e-10)
    assert m1.loc["sad", "statistic"] == pytest.approx((stats.rankdata(np.abs(d))[d > 0]).sum())
    assert m1.loc["sad", "machine_mean"] - m1.loc["sad", "human_mean"] == pytest.approx(m1.loc["sad", "estimate"])
    # family = analysis: Bonferroni over all 12 rows; n_comparisons = 18 as in the paper
    np.testing.assert_allclose(t["p_adjusted"], np.minimum(1, 12 * t["p_value"]), atol=1e-15)
    t18 = run_kind(study, id="vb", kind="group_bias", raters=["m1", "m2"], dimension="valence", n_comparisons=18).table
    np.testing.assert_allclose(t18["p_adjusted"], np.minimum(1, 18 * t18["p_value"]), atol=1e-15)
    tr = run_kind(study, id="vb", kind="group_bias", raters=["m1", "m2"], dimension="valence", family="rater",
                  adjust="holm").table
    for _, g in tr.groupby("rater"):
        np.testing.assert_allclose(g["p_adjusted"], p_adjust(g["p_value"], "holm"), atol=1e-15)


# ---- response_diversity -------------------------------------------------------------------------------
def test_response_diversity_stereotyped_rater(study):
    t = run_kind(study, id="rd", kind="response_diversity", raters="m2", dimension="valence").table
    m2 = t[t.rater == "m2"].pivot(index="emotion", columns="metric", values="estimate")
    assert (m2["n_unique"] == 1).all() and (m2["sd"] == 0).all() and (m2["sd_ratio"] == 0).all()
    hum = t[t.rater == "human"].pivot(index="emotion", columns="metric", values="estimate")
    trials = study.humans.merge(study.stimuli[["image_id", "emotion"]], on="image_id")
    ref = trials.groupby("emotion")["valence"].agg(["std", "mean", "nunique"])
    np.testing.assert_allclose(hum.loc[ref.index, "sd"], ref["std"], atol=1e-12)
    np.testing.assert_allclose(hum.loc[ref.index, "mean"], ref["mean"], atol=1e-12)
    np.testing.assert_allclose(hum.loc[ref.index, "n_unique"], ref["nunique"], atol=0)
    assert (hum["sd_ratio"] == 1).all()
    ti = run_kind(study, id="rd", kind="response_diversity", raters="m1", dimension="valence",
                  human_sd="image_mean").table
    hm = trials.groupby(["emotion", "image_id"])["valence"].mean().groupby("emotion").std()
    h2 = ti[(ti.rater == "human") & (ti.metric == "sd")].set_index("emotion")["estimate"]
    np.testing.assert_allclose(h2[hm.index], hm, atol=1e-12)
    r1 = ti[(ti.rater == "m1") & (ti.metric == "sd_ratio")].set_index("emotion")["estimate"]
    s1 = ti[(ti.rater == "m1") & (ti.metric == "sd")].set_index("emotion")["estimate"]
    np.testing.assert_allclose(r1, s1 / h2[s1.index], atol=1e-12)


# ---- options through the YAML spec model --------------------------------------------------------------
def test_options_parse_from_yaml_with_documented_defaults():
    from emoalign.spec.load import parse_spec
    text = """
study: {stimuli: s.parquet, humans: h.parquet, machines: [m.parquet], scales: {valence: [1, 9]},
        emotions: [angry, happy], reference: emotion}
analyses:
  - {id: c, kind: classification}
  - {id: m, kind: mcnemar, exact: true}
  - {id: a, kind: agreement, dimension: valence}
  - {id: b, kind: group_bias, dimension: valence, exact: auto, n_comparisons: 18}
  - {id: r, kind: response_diversity, dimension: valence, human_sd: image_mean}
  - {id: g, kind: group_accuracy, by: [race, emotion]}
"""
    a = {x.id: x for x in parse_spec(text).spec.analyses}
    assert a["m"].correct is True and a["m"].exact is True and a["m"].adjust == "holm"
    assert a["b"].by == ["emotion"] and a["b"].adjust == "bonferroni" and a["b"].exact == "auto"
    assert a["b"].correct is True and a["b"].family == "analysis" and a["b"].n_comparisons == 18
    assert a["r"].by == ["emotion"] and a["r"].human_sd == "image_mean"
    assert a["a"].loa_z == 1.96 and a["c"].reference is None and a["g"].by == ["race", "emotion"]
    with pytest.raises(EmoalignError, match="adjust"):
        parse_spec(text.replace("exact: true", "adjust: holmes"))


def test_agreement_sd_ratio_and_proportional_bias(study):
    """sd_ratio = machine SD / human SD; ba_slope/ba_intercept = OLS of the difference on the mean (vs statsmodels)."""
    sm = pytest.importorskip("statsmodels.api")
    from emoalign.analysis.kinds.agreement import agreement_rows

    res = run_kind(study, id="ag", kind="agreement", raters="m1", dimension="valence")
    t = res.table.set_index("metric")
    p = res.extra["points"]
    m, h = p["machine"].to_numpy(), p["human"].to_numpy()
    assert t.loc["sd_ratio", "estimate"] == pytest.approx(m.std(ddof=1) / h.std(ddof=1), abs=1e-12)
    ols = sm.OLS(m - h, sm.add_constant((m + h) / 2)).fit()
    assert t.loc["ba_slope", "estimate"] == pytest.approx(ols.params[1], abs=1e-10)
    assert t.loc["ba_intercept", "estimate"] == pytest.approx(ols.params[0], abs=1e-10)
    assert t.loc["ba_slope", "std_error"] == pytest.approx(ols.bse[1], abs=1e-10)
    assert t.loc["ba_slope", "p_value"] == pytest.approx(ols.pvalues[1], rel=1e-8)
    ci = ols.conf_int(0.05)
    assert (t.loc["ba_slope", "conf_low"], t.loc["ba_slope", "conf_high"]) == pytest.approx(tuple(ci[1]), abs=1e-10)
    # planted proportional bias: machine = 1.5 h - 2.5 + e: d = 0.5 h - 2.5 + e, mean = 1.25 h - 1.25 + e / 2, so the
    # slope is cov(d, mean) / var(mean) = (0.625 var h + var e / 2) / (1.5625 var h + var e / 4)
    rng = np.random.default_rng(3)
    hh = rng.uniform(2, 8, 4000)
    mm = 1.5 * hh - 2.5 + rng.normal(0, 0.1, hh.size)
    expected = (0.625 * 3 + 0.01 / 2) / (1.5625 * 3 + 0.01 / 4)   # var of U(2, 8) = 3
    slope = {r["metric"]: r for r in agreement_rows(mm, hh)}["ba_slope"]
    assert slope["estimate"] == pytest.approx(expected, abs=0.002) and slope["p_value"] < 1e-12


def test_classification_macro_f1_with_an_absent_label(study):
    """A subset without sad images where nobody answers sad: macro F1 over the 5 labels that occur, with a warning."""
    res = run_kind(study, id="cls", kind="classification", raters="m2", subset={"emotion": ["angry", "happy"]})
    ov = res.table[res.table.emotion.isna() & res.table.predicted.isna()].set_index("metric")
    lf = study.label_frame("m2", subset={"emotion": ["angry", "happy"]})
    yt, yp = lf["reference"].astype(str).to_numpy(), lf["predicted"].astype(str).to_numpy()
    assert ov.loc["macro_f1", "estimate"] == pytest.approx(skm.f1_score(yt, yp, average="macro"), abs=1e-12)
    assert any("have no reference items and no predictions" in w for w in res.warnings)


def test_confusion_proportions_have_wilson_cis(study):
    from statsmodels.stats.proportion import proportion_confint

    t = run_kind(study, id="cls", kind="classification", raters="m1").table
    cp = t[(t.metric == "confusion_prop") & (t.emotion == "sad") & (t.predicted == "neutral")].iloc[0]
    cc = t[(t.metric == "confusion_count") & (t.emotion == "sad") & (t.predicted == "neutral")].iloc[0]
    lo, hi = proportion_confint(int(cc.estimate), int(cc.n), alpha=0.05, method="wilson")
    assert (cp.conf_low, cp.conf_high) == pytest.approx((lo, hi), abs=1e-12) and cp.conf_low < cp.estimate < cp.conf_high
