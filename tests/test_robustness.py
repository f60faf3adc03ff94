"""Kind ``robustness`` on a simulated study with planted prompt conditions, against independent implementations
(statsmodels McNemar and Cochran's Q, sklearn kappa and macro F1, scipy Wilcoxon and Welch), and the simulator's
planted condition effects recovered."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import cohen_kappa_score, f1_score
from statsmodels.stats.contingency_tables import cochrans_q as sm_cochrans_q
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

from emoalign.analysis.kinds import KINDS
from emoalign.analysis.stats import cochrans_q, mcnemar
from emoalign.analysis.study import Study
from emoalign.errors import EmoalignError

EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "neutral"]
FLIP = {"reversed": 0.15, "layperson": 0.30}
#: planted valence shift per intended emotion (mid-scale emotions: no clipping at the scale ends) and arousal shift
SHIFT_V = {"sad": 1.0, "angry": -1.0}
SHIFT_A = -1.0
CONDITIONS = {
    "reversed": {"flip_rate": FLIP["reversed"]},
    "layperson": {"flip_rate": FLIP["layperson"]},
    "shifted": {"shift": {"valence": SHIFT_V, "arousal": SHIFT_A}},
    "independent": {"strategy": "independent"},
}
RATERS = ["gemma3@reversed", "gemma3@layperson", "gemma3@shifted", "gemma3@independent"]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    from emoalign.simulate.study import simulate_study

    out = tmp_path_factory.mktemp("robust")
    sim = simulate_study(out, "paper", seed=3, images=False,
                         overrides={"machines": {"raters": {"gemma3": {"conditions": CONDITIONS}}}})
    machines = pd.read_parquet(sim.machines)
    return Study(stimuli=pd.read_parquet(sim.stimuli), humans=pd.read_parquet(sim.humans), machines=machines,
                 scales={"valence": (1, 9), "arousal": (1, 9)}, emotions=EMOTIONS, reference="emotion")


@pytest.fixture(scope="module")
def result(study):
    entry = KINDS["robustness"]
    opts = entry.options(id="rob", kind="robustness", bootstrap=300,
                         conditions={"model": "gemma3", "baseline": "gemma3", "raters": RATERS})
    assert opts.raters == ["gemma3", *RATERS]          # raters default to the baseline and the conditions
    return entry.run(opts, study)


def row(t, metric, rater=None, **where):
    sel = t["metric"].eq(metric)
    if rater is not None:
        sel &= t["rater"].astype(str).eq(rater)
    for col, v in where.items():
        sel &= t[col].isna() if v is None else t[col].astype(str).eq(v)
    rows = t[sel]
    assert len(rows) == 1, (metric, rater, where, len(rows))
    return rows.iloc[0]


def wide(study, column):
    m = study.machines[study.machines["rater"].isin(["gemma3", *RATERS])]
    w = m.pivot(index="image_id", columns="rater", values=column)
    return w.dropna(subset=RATERS, how="any") if column == "emotion" else w


def test_planted_flip_rates_recovered(result):
    t = result.table
    n = int(row(t, "flip_rate", "gemma3@reversed")["n"])
    assert n == 1440
    for cond, planted in FLIP.items():
        r = row(t, "flip_rate", f"gemma3@{cond}")
        assert abs(r["estimate"] - planted) < 3.5 * np.sqrt(planted * (1 - planted) / n)
        assert r["conf_low"] < planted < r["conf_high"]
    for cond in ("shifted", "independent"):          # no flips planted: labels identical, kappa 1
        assert row(t, "flip_rate", f"gemma3@{cond}")["estimate"] == 0
        assert row(t, "kappa_vs_baseline", f"gemma3@{cond}")["estimate"] == pytest.approx(1.0)


def test_planted_shifts_recovered(study, result):
    t = result.table
    for emo in EMOTIONS:
        r = row(t, "shift", "gemma3@shifted", dimension="valence", emotion=emo)
        planted = SHIFT_V.get(emo, 0.0)
        assert r["estimate"] == pytest.approx(planted, abs=0.12), emo    # same noise draws: only rounding moves it
        if planted:
            assert np.sign(r["estimate"]) == np.sign(planted) and r["p_adjusted"] < 1e-6
    # arousal: a whole-point shift moves every integer rating by exactly one point, but clipping at the scale's
    # low end keeps the calmest ratings at 1, so the shift shows in full only where the baseline is above 1
    arousal = study.machines.pivot(index="image_id", columns="rater", values="arousal")
    emo = study.stimuli.set_index("image_id")["emotion"]
    above = arousal["gemma3"].gt(1).groupby(emo.reindex(arousal.index)).mean()
    for e in EMOTIONS:
        r = row(t, "shift", "gemma3@shifted", dimension="arousal", emotion=e)
        assert r["estimate"] == pytest.approx(SHIFT_A * above[e], abs=1e-9), e
        assert r["estimate"] < 0 and r["p_adjusted"] < 1e-6 or above[e] < 0.2
    assert row(t, "shift", "gemma3@shifted", dimension="arousal", emotion=None)["estimate"] < 0.7 * SHIFT_A
    # a condition with only flips planted shifts ratings only through its flipped labels (context carry)
    assert abs(row(t, "shift", "gemma3@reversed", dimension="valence", emotion=None)["estimate"]) < 0.4


def test_labels_against_statsmodels_and_sklearn(study, result):
    t = result.table
    w = wide(study, "emotion")
    ref = study.stimuli.set_index("image_id")["emotion"].reindex(w.index)
    correct = {r: (w[r] == ref).to_numpy() for r in ["gemma3", *RATERS]}
    for r in RATERS:
        k = row(t, "kappa_vs_baseline", r)
        assert k["estimate"] == pytest.approx(cohen_kappa_score(w["gemma3"], w[r]), abs=1e-12)
        assert row(t, "flip_rate", r)["estimate"] == pytest.approx((w[r] != w["gemma3"]).mean(), abs=1e-12)
        a, b = correct[r], correct["gemma3"]
        table = [[np.sum(a & b), np.sum(a & ~b)], [np.sum(~a & b), np.sum(~a & ~b)]]
        mc = row(t, "mcnemar", r)
        if table[0][1] + table[1][0]:
            ref_test = sm_mcnemar(table, exact=False, correction=True)
            assert mc["statistic"] == pytest.approx(ref_test.statistic, rel=1e-12)
            assert mc["p_value"] == pytest.approx(ref_test.pvalue, rel=1e-10)
        assert mc["estimate"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
        acc = row(t, "accuracy_change", r)
        assert acc["estimate"] == pytest.approx(a.mean() - b.mean(), abs=1e-12)
        f1 = row(t, "macro_f1_change", r)
        sk = (f1_score(ref, w[r], labels=EMOTIONS, average="macro", zero_division=0)
              - f1_score(ref, w["gemma3"], labels=EMOTIONS, average="macro", zero_division=0))
        assert f1["estimate"] == pytest.approx(sk, abs=1e-12)
        assert f1["conf_low"] <= f1["estimate"] <= f1["conf_high"]
    for cond in FLIP:   # flips to random labels cost accuracy: the bootstrap interval lies below 0
        assert row(t, "accuracy_change", f"gemma3@{cond}")["conf_high"] < 0
    q = row(t, "cochran_q")
    sm = sm_cochrans_q(np.column_stack([correct[r] for r in ["gemma3", *RATERS]]).astype(int))
    assert q["statistic"] == pytest.approx(sm.statistic, rel=1e-12)
    assert q["p_value"] == pytest.approx(sm.pvalue, rel=1e-9, abs=1e-300) and q["df"] == sm.df


def test_shift_tests_against_scipy(study, result):
    t = result.table
    vals = wide(study, "valence")
    emo = study.stimuli.set_index("image_id")["emotion"].reindex(vals.index)
    d = (vals["gemma3@layperson"] - vals["gemma3"])
    per = t[t["metric"].eq("shift") & t["emotion"].notna()]
    m = int(per["p_value"].notna().sum())
    for e in ("sad", "fear"):
        de = d[emo == e].to_numpy()
        r = row(t, "shift", "gemma3@layperson", dimension="valence", emotion=e)
        assert r["estimate"] == pytest.approx(de.mean(), abs=1e-12)
        nz = de[de != 0]
        sp = stats.wilcoxon(nz, zero_method="wilcox", correction=True, method="approx")
        assert r["p_value"] == pytest.approx(sp.pvalue, rel=1e-9)
        assert r["statistic"] == pytest.approx(stats.rankdata(np.abs(nz))[nz > 0].sum())
        assert r["p_adjusted"] == pytest.approx(min(1.0, r["p_value"] * m), rel=1e-12)      # Bonferroni
        lo, hi = stats.t.interval(0.95, len(de) - 1, loc=de.mean(), scale=stats.sem(de))
        assert (r["conf_low"], r["conf_high"]) == pytest.approx((lo, hi), abs=1e-12)


def test_error_propagation(study, result):
    t = result.table
    h = study.humans.groupby("image_id")["arousal"].mean()
    a = wide(study, "arousal")
    w = wide(study, "emotion")
    ref = study.stimuli.set_index("image_id")["emotion"].reindex(w.index)
    err = (a["gemma3"] - h).reindex(w.index).to_numpy()
    right = (w["gemma3"] == ref).to_numpy()
    r = row(t, "bias_wrong_minus_correct", "gemma3", dimension="arousal")
    # Welch by hand (independent of scipy's ttest_ind)
    x, y = err[~right], err[right]
    vx, vy = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    assert r["estimate"] == pytest.approx(x.mean() - y.mean(), abs=1e-12)
    assert r["statistic"] == pytest.approx((x.mean() - y.mean()) / np.sqrt(vx + vy), rel=1e-10)
    assert r["df"] == pytest.approx((vx + vy) ** 2 / (vx ** 2 / (len(x) - 1) + vy ** 2 / (len(y) - 1)), rel=1e-10)
    mae, mae_ok = np.abs(err).mean(), np.abs(y).mean()
    assert row(t, "abs_error_excess_share", "gemma3", dimension="arousal")["estimate"] == pytest.approx((mae - mae_ok) / mae)
    # planted: the independent condition rates every face as its intended emotion; context carry rates a misread
    # face under its wrong label, so carrying costs accuracy exactly on the wrong-label images
    for dim in ("valence", "arousal"):
        wrong = row(t, "carry_minus_independent", "gemma3", dimension=dim, step1="wrong")
        same = row(t, "carry_minus_independent", "gemma3", dimension=dim, step1="correct")
        assert same["estimate"] == 0 and same["n"] == right.sum()
        assert wrong["n"] == (~right).sum()
    assert row(t, "carry_minus_independent", "gemma3", dimension="arousal", step1="wrong")["conf_low"] > 0
    assert result.info["strategies"]["gemma3@independent"] == "independent"


def test_cochrans_q_matches_statsmodels_and_mcnemar():
    rng = np.random.default_rng(4)
    for k in (2, 3, 5):
        x = (rng.random((60, k)) < np.linspace(0.3, 0.7, k)).astype(int)
        q, sm = cochrans_q(x), sm_cochrans_q(x)
        assert q.statistic == pytest.approx(sm.statistic, rel=1e-12) and q.p_value == pytest.approx(sm.pvalue, rel=1e-12)
    x = (rng.random((40, 2)) < 0.5)
    b, c = int(np.sum(x[:, 0] & ~x[:, 1])), int(np.sum(~x[:, 0] & x[:, 1]))
    assert cochrans_q(x).statistic == pytest.approx(mcnemar(b, c, correct=False).statistic)
    assert np.isnan(cochrans_q(np.ones((5, 3))).p_value)


def test_spec_errors(study):
    from emoalign.analysis.checks import Problem  # noqa: F401  (the check hook's type)

    entry = KINDS["robustness"]
    opts = entry.options(id="rob", kind="robustness",
                         conditions={"model": "gemma3", "baseline": "gemma3", "raters": ["gemma3@reversd"]})
    problems = entry.check(opts, study)
    assert problems and "did you mean" in problems[0].text and problems[0].sub == ("raters", 0)
    with pytest.raises(EmoalignError, match="`by`"):
        entry.run(entry.options(id="rob", kind="robustness", by=["race"],
                                conditions={"model": "gemma3", "baseline": "gemma3", "raters": RATERS}), study)


def test_simulator_refuses_bad_conditions(tmp_path):
    from emoalign.simulate.study import simulate_study

    for bad, match in (({"x": {"flip_rate": 1.5}}, "flip_rate"), ({"x": {"shift": {"naturalness": 1}}}, "shift"),
                       ({"x": {"strategy": "integrated"}}, "strategy"), ({"x": {"flips": 0.1}}, "unknown key")):
        with pytest.raises(EmoalignError, match=match):
            simulate_study(tmp_path / "s", "small", images=False,
                           overrides={"machines": {"raters": {"gemma3": {"conditions": bad}}}})


def test_example_spec_end_to_end(tmp_path):
    """specs/examples/robustness.yaml on the simulated study its header describes, and its report section."""
    from click.testing import CliRunner

    from emoalign.cli.main import cli
    from emoalign.resources import specs_dir

    header = (specs_dir() / "examples" / "robustness.yaml").read_text()
    sets = [line.split("--set ")[1].split(" \\")[0].strip().strip("'") for line in header.splitlines() if "--set " in line]
    assert len(sets) == 3
    args = ["simulate", "-p", "small", "-o", str(tmp_path / "rob"), "--no-images", "-q"]
    for s in sets:
        args += ["--set", s]
    runner = CliRunner()
    res = runner.invoke(cli, args)
    assert res.exit_code == 0, res.output
    spec = tmp_path / "robustness.yaml"
    spec.write_text(header.replace("bootstrap: 1000", "bootstrap: 50"))
    res = runner.invoke(cli, ["analyze", str(spec), "--data", str(tmp_path / "rob"), "--out", str(tmp_path / "res")])
    assert res.exit_code == 0, res.output
    t = pd.read_parquet(tmp_path / "res" / "robustness.parquet")
    assert set(t.loc[t["metric"] == "flip_rate", "rater"]) == {"gemma3@reversed", "gemma3@layperson", "gemma3@independent"}

    from emoalign.report.names import Names
    from emoalign.report.results import Results
    from emoalign.report.sections.base import SECTIONS

    R = Results.load(tmp_path / "res")
    md = SECTIONS["robustness"].render(R, "robustness", Names.of(R))
    assert "data:image/svg+xml;base64," in md and "Flip rate" in md and "Cochran's Q" in md
    assert "error propagation" in md and "context carry minus independent" in md
