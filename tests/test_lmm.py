"""LMM and variance-components kinds (R lme4/lmerTest via rpy2) against independent references:
statsmodels MixedLM (REML estimates), lmerTest called directly (Satterthwaite df), the closed-form
df of a balanced design, ANOVA (expected-mean-squares) estimates of a balanced crossed design,
and a planted rater_type x emotion effect recovered within its CIs."""

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("rpy2")

from emoalign.analysis.engine import load_study  # noqa: E402
from emoalign.analysis.kinds.lmm import LmmOptions, run as run_lmm  # noqa: E402
from emoalign.analysis.kinds.variance_components import VarianceComponentsOptions, run as run_vc  # noqa: E402
from emoalign.analysis.rbridge import get_r  # noqa: E402
from emoalign.analysis.study import Study  # noqa: E402
from emoalign.spec.load import load_spec  # noqa: E402
from engine_study import BIAS, write_study  # noqa: E402

pytestmark = pytest.mark.r


@pytest.fixture(scope="module")
def r():
    return get_r()


def _frame(seed=0, n_img=40):
    rng = np.random.default_rng(seed)
    img = np.repeat(np.arange(n_img), 2)
    rt = np.tile(["human", "machine"], n_img)
    emo = np.where(img % 2 == 0, "angry", "happy")
    y = (3 + 4 * (emo == "happy") - 0.5 * (rt == "machine") + 0.8 * ((rt == "machine") & (emo == "happy"))
         + rng.normal(0, 0.7, n_img)[img] + rng.normal(0, 0.4, len(img)))
    return pd.DataFrame({"rating": y, "image_id": [f"i{i}" for i in img], "rater_type": rt, "emotion": emo})


def test_fixed_effects_match_statsmodels_mixedlm(r):
    import statsmodels.formula.api as smf

    df = _frame()
    opts = LmmOptions(id="m", kind="lmm", formula="rating ~ rater_type * emotion + (1|image_id)",
                      reference_levels={"emotion": "angry", "rater_type": "human"})
    from emoalign.analysis.kinds.lmm import fit

    t, glance, w = fit(opts, df, r)
    fixed = t[t.effect == "fixed"].set_index("term")
    sm = smf.mixedlm("rating ~ rater_type * emotion", df, groups=df["image_id"]).fit(reml=True)
    names = {"Intercept": "(Intercept)", "rater_type[T.machine]": "rater_typemachine",
             "emotion[T.happy]": "emotionhappy", "rater_type[T.machine]:emotion[T.happy]": "rater_typemachine:emotionhappy"}
    for sm_name, r_name in names.items():
        assert fixed.loc[r_name, "estimate"] == pytest.approx(sm.fe_params[sm_name], abs=1e-5)
        assert fixed.loc[r_name, "std_error"] == pytest.approx(sm.bse_fe[sm_name], rel=1e-3)
    ran = t[t.effect == "ran_pars"].set_index("group")
    assert ran.loc["image_id", "estimate"] == pytest.approx(sm.cov_re.iloc[0, 0], rel=1e-3)
    assert ran.loc["Residual", "estimate"] == pytest.approx(sm.scale, rel=1e-4)
    # balanced design, within-image terms: Satterthwaite df = n_images - 2 (closed form); between: n_images - 2 too
    assert fixed.loc["rater_typemachine", "df"] == pytest.approx(38, abs=1e-3)
    kr, _, _ = fit(opts.model_copy(update={"df_method": "kenward_roger"}), df, r)  # KR = Satterthwaite = exact here
    assert kr[kr.term == "rater_typemachine"]["df"].item() == pytest.approx(38, abs=1e-3)
    # Wald CI with t(df) quantile
    from scipy import stats

    row = fixed.loc["rater_typemachine:emotionhappy"]
    q = stats.t.ppf(0.975, row["df"])
    assert row["conf_low"] == pytest.approx(row["estimate"] - q * row["std_error"], abs=1e-10)
    fits = glance.iloc[0]  # model-level statistics: the glance table (results contract 2)
    assert fits["nobs"] == len(df) and np.isfinite(fits["AIC"]) and not fits["singular"]
    assert fits["logLik"] == pytest.approx(sm.llf, abs=1e-4)  # REML log-likelihood, as statsmodels
    assert "fit" not in set(t["effect"])


def test_satterthwaite_df_matches_lmertest_directly_unbalanced(r):
    import rpy2.robjects as ro

    df = _frame(seed=3, n_img=50)
    df = df.drop(index=np.random.default_rng(1).choice(len(df), 17, replace=False)).reset_index(drop=True)
    df["x"] = np.random.default_rng(2).normal(size=len(df))
    opts = LmmOptions(id="m", kind="lmm", formula="rating ~ rater_type + emotion + x + (1|image_id)")
    from emoalign.analysis.kinds.lmm import fit

    t, _, _ = fit(opts, df, r)
    fixed = t[t.effect == "fixed"].set_index("term")
    # independent: build the data frame in R with plain vectors and call lmerTest ourselves
    ro.globalenv["d"] = ro.r["data.frame"](rating=ro.FloatVector(df["rating"]), x=ro.FloatVector(df["x"]),
                                           image_id=ro.StrVector(df["image_id"]), rater_type=ro.StrVector(df["rater_type"]),
                                           emotion=ro.StrVector(df["emotion"]), stringsAsFactors=True)
    co = ro.r("coef(summary(lmerTest::lmer(rating ~ rater_type + emotion + x + (1|image_id), data = d)))")
    rows = list(ro.r["rownames"](co))
    ref = np.asarray(co)
    for i, term in enumerate(rows):
        assert fixed.loc[term, "estimate"] == pytest.approx(ref[i, 0], abs=1e-10)
        assert fixed.loc[term, "df"] == pytest.approx(ref[i, 2], rel=1e-8)
        assert fixed.loc[term, "p_value"] == pytest.approx(ref[i, 4], rel=1e-6)
    assert not (fixed["df"] == fixed["df"].iloc[0]).all()  # unbalanced: df differ by term

    asym, _, _ = fit(opts.model_copy(update={"df_method": "asymptotic"}), df, r)
    a = asym[asym.effect == "fixed"].set_index("term")
    assert np.isinf(a["df"]).all()
    assert a.loc["x", "estimate"] == pytest.approx(fixed.loc["x", "estimate"], abs=1e-10)
    from scipy import stats

    assert a.loc["x", "p_value"] == pytest.approx(2 * stats.norm.sf(abs(a.loc["x", "statistic"])), rel=1e-10)


def test_planted_emotion_bias_recovered_within_cis(tmp_path, r):
    info = write_study(tmp_path, seed=7)
    study, _, _ = load_study(load_spec(info["spec"]))
    opts = LmmOptions(id="m", kind="lmm", raters=["vlm"], dimension="valence",
                      formula="rating ~ rater_type * emotion + (1|image_id)",
                      reference_levels={"emotion": "angry", "rater_type": "human"})
    res = run_lmm(opts, study, r)
    f = res.table[res.table.effect == "fixed"].set_index("term")
    assert set(res.table["rater"]) == {"gemma3"}
    truth = {"rater_typemachine": BIAS["angry"]}
    truth.update({f"rater_typemachine:emotion{e}": BIAS[e] - BIAS["angry"] for e in BIAS if e != "angry"})
    for term, value in truth.items():
        assert f.loc[term, "conf_low"] <= value <= f.loc[term, "conf_high"], term
        assert abs(f.loc[term, "estimate"] - value) < 0.25
    # per-rater models: one model per machine rater vs the human aggregate; frame = human + that rater
    both_res = run_lmm(opts.model_copy(update={"raters": ["gemma3", "fer_a"], "formula": "rating ~ rater_type + (1|image_id)",
                                               "reference_levels": {}}), study, r)
    both = both_res.table
    assert set(both["rater"]) == {"gemma3", "fer_a"}
    nobs = both_res.extra["glance"].set_index("rater")["nobs"]
    assert (nobs == 2 * info["n_images"]).all()
    fer = both[(both.rater == "fer_a") & (both.term == "rater_typemachine")].iloc[0]
    assert fer["conf_low"] <= 0.3 <= fer["conf_high"]  # planted constant bias of fer_a


def test_variance_components_equal_anova_estimates_in_balanced_design(r):
    rng = np.random.default_rng(5)
    n_r, n_i = 30, 40
    rr, ii = np.meshgrid(np.arange(n_r), np.arange(n_i), indexing="ij")
    y = 5 + rng.normal(0, np.sqrt(0.5), n_r)[rr] + rng.normal(0, 1.0, n_i)[ii] + rng.normal(0, 1.0, rr.shape)
    humans = pd.DataFrame({"rater_id": [f"p{x}" for x in rr.ravel()], "image_id": [f"i{x}" for x in ii.ravel()],
                           "valence": y.ravel()})
    stim = pd.DataFrame({"image_id": [f"i{x}" for x in range(n_i)], "path": "", "sha256": "", "emotion": "happy"})
    study = Study(stimuli=stim, humans=humans, machines=pd.DataFrame(columns=["rater", "image_id", "emotion", "valence"]),
                  scales={"valence": (1, 9)}, emotions=["happy"])
    t = run_vc(VarianceComponentsOptions(id="v", dimension="valence"), study, r).table
    v = t[t.metric == "variance"].set_index("group")["estimate"]
    # expected-mean-squares (ANOVA) estimators of the two-way crossed random model (REML = ANOVA when positive)
    grand = y.mean()
    ms_r = n_i * ((y.mean(1) - grand) ** 2).sum() / (n_r - 1)
    ms_i = n_r * ((y.mean(0) - grand) ** 2).sum() / (n_i - 1)
    resid = y - y.mean(1, keepdims=True) - y.mean(0, keepdims=True) + grand
    ms_e = (resid ** 2).sum() / ((n_r - 1) * (n_i - 1))
    assert v["Residual"] == pytest.approx(ms_e, rel=1e-5)
    assert v["rater_id"] == pytest.approx((ms_r - ms_e) / n_i, rel=1e-4)
    assert v["image_id"] == pytest.approx((ms_i - ms_e) / n_r, rel=1e-4)
    share = t[t.metric == "share"].set_index("group")["estimate"]
    assert share.sum() == pytest.approx(1.0)
    ratio = t.loc[t.metric == "rater_image_ratio", "estimate"].item()
    assert ratio == pytest.approx(v["rater_id"] / v["image_id"])
    # the planted variances are recovered within sampling error (0.5, 1.0, 1.0)
    prof = run_vc(VarianceComponentsOptions(id="v", dimension="valence", ci="profile"), study, r).table
    pv = prof[prof.metric == "variance"].set_index("group")
    import rpy2.robjects as ro

    ro.globalenv["vd"] = ro.r["data.frame"](y=ro.FloatVector(humans["valence"]), r=ro.StrVector(humans["rater_id"]),
                                            i=ro.StrVector(humans["image_id"]))
    ci = np.asarray(ro.r("cc <- confint(lme4::lmer(y ~ 1 + (1|r) + (1|i), data = vd), parm = 'theta_', oldNames = FALSE); cc"))
    rows = list(ro.r("rownames(cc)"))
    direct = {"rater_id" if "|r" in k else "image_id" if "|i" in k else "Residual": ci[j] ** 2 for j, k in enumerate(rows)}
    for g in ("rater_id", "image_id", "Residual"):
        assert pv.loc[g, "conf_low"] == pytest.approx(direct[g][0], rel=1e-4)
        assert pv.loc[g, "conf_high"] == pytest.approx(direct[g][1], rel=1e-4)
        assert pv.loc[g, "conf_low"] < pv.loc[g, "estimate"] < pv.loc[g, "conf_high"]
    assert t["conf_low"].isna().all()  # ci: none (default)
    assert v["rater_id"] == pytest.approx(0.5, abs=0.3) and v["image_id"] == pytest.approx(1.0, abs=0.5)
    assert v["Residual"] == pytest.approx(1.0, abs=0.1)


def test_singular_fit_message_captured_not_printed(r, capfd):
    rng = np.random.default_rng(0)
    e = rng.normal(size=(20, 3))
    e -= e.mean(axis=1, keepdims=True)  # identical image means: the image variance is estimated as 0
    df = pd.DataFrame({"rating": e.ravel(), "image_id": [f"i{i}" for i in np.repeat(np.arange(20), 3)],
                       "rater_type": np.tile(["human", "machine", "machine"], 20)})
    from emoalign.analysis.kinds.lmm import fit

    t, glance, warnings = fit(LmmOptions(id="m", kind="lmm", formula="rating ~ rater_type + (1|image_id)"), df, r)
    assert any("singular" in w for w in warnings)
    assert (t["flag"] == "singular fit").all() and bool(glance["singular"].item())
    assert t.loc[t.effect == "fixed", "p_value"].notna().all()  # kept (reduced model), flagged
    err = capfd.readouterr().err
    assert "singular" not in err


def test_simulated_study_planted_effects_recovered(tmp_path, r):
    """emoalign.simulate (profile "small") plants per-emotion biases and gender effects; the LMMs' CIs cover them."""
    from emoalign.simulate import load_profile, simulate_study
    from emoalign.spec.load import parse_spec

    simulate_study(tmp_path, profile="small", seed=1, images=False)
    prof = load_profile("small")["machines"]["raters"]
    loaded = parse_spec("""
study: {stimuli: stimuli.parquet, humans: humans.parquet, machines: [runs/*/ratings.parquet]}
analyses:
  - {id: e, kind: lmm, raters: [gemma3], dimension: [valence, arousal], formula: "rating ~ rater_type * emotion + (1|image_id)",
     reference_levels: {emotion: angry, rater_type: human}}
  - {id: g, kind: lmm, raters: [gemma3, llama32v], dimension: [valence, arousal],
     formula: "rating ~ rater_type * (race + gender) + emotion + (1|image_id)",
     reference_levels: {race: Caucasian, gender: male, rater_type: human}}
""", path=tmp_path / "s.yaml")
    study, _, _ = load_study(loaded)
    emo, dem = (run_lmm(a, study, r).table for a in loaded.spec.analyses)
    checked = 0
    for dim in ("valence", "arousal"):
        bias = prof["gemma3"][dim]["bias"]
        f = emo[(emo.dimension == dim) & (emo.effect == "fixed")].set_index("term")
        truth = {"rater_typemachine": bias["angry"],
                 **{f"rater_typemachine:emotion{e}": bias[e] - bias["angry"] for e in bias if e != "angry"}}
        for term, value in truth.items():
            assert f.loc[term, "conf_low"] <= value <= f.loc[term, "conf_high"], (dim, term)
            checked += 1
    for rater in ("gemma3", "llama32v"):
        for dim in ("valence", "arousal"):
            planted = (prof[rater][dim].get("effects") or {}).get("gender", {}).get("female", 0.0)
            row = dem[(dem.rater == rater) & (dem.dimension == dim) & (dem.term == "rater_typemachine:genderfemale")]
            assert row["conf_low"].item() <= planted <= row["conf_high"].item(), (rater, dim)
            checked += 1
    assert checked == 16


def test_pooled_model_and_by_groups(tmp_path, r):
    info = write_study(tmp_path, seed=3)
    study, _, _ = load_study(load_spec(info["spec"]))
    pooled_res = run_lmm(LmmOptions(id="p", kind="lmm", raters="machines", dimension="valence", per_rater=False,
                                    formula="rating ~ rater + (1|image_id)", reference_levels={"rater": "human"}),
                         study, r)
    pooled = pooled_res.table
    assert set(pooled["rater"]) == {"fer_a,gemma3"}
    assert pooled_res.extra["glance"]["nobs"].item() == 3 * info["n_images"]
    assert {"raterfer_a", "ratergemma3"} <= set(pooled["term"])
    by_res = run_lmm(LmmOptions(id="b", kind="lmm", raters=["gemma3"], dimension="valence", by=["race"],
                                formula="rating ~ rater_type + (1|image_id)"), study, r)
    by = by_res.table
    assert list(by.columns[:4]) == ["rater", "dimension", "race", "effect"]
    nobs = by_res.extra["glance"].set_index("race")["nobs"]
    assert dict(nobs) == {"Black": 96, "Caucasian": 96, "Korean": 96}


def test_rbridge_round_trip_factors_na_and_errors(r):
    from emoalign.analysis.rbridge import RCallError
    from emoalign.errors import EmoalignError

    df = pd.DataFrame({"s": ["b", None, "a", "b"], "x": [1.5, np.nan, 3.0, 4.0], "i": [1, 2, 3, 4],
                       "flag": [True, False, True, True], "c": pd.Categorical(["u", "v", "u", "u"], categories=["v", "u", "w"])})
    back = r.call("identity", df).value
    assert back["s"][0] == "b" and pd.isna(back["s"][1]) and back["s"][2] == "a"
    assert np.isnan(back["x"][1]) and back["x"][3] == 4.0 and list(back["i"]) == [1, 2, 3, 4]
    assert list(back["flag"]) == [True, False, True, True] and list(back["c"]) == ["u", "v", "u", "u"]
    # strings arrive in R as factors (unused categories dropped); numbers as double
    assert r.call("sapply", df, "class").value == ["factor", "numeric", "numeric", "logical", "factor"]
    assert r.call("levels", df["c"]).value == ["v", "u"]
    res = r.call("warning", "careful")
    assert res.warnings == ["careful"]
    with pytest.raises(RCallError, match="boom") as ei:
        r.call("stop", "boom")
    assert isinstance(ei.value, EmoalignError)


def test_variance_components_in_parallel_r_workers_equal_the_serial_fits(tmp_path, r, monkeypatch):
    """The dimensions (and by groups) of a variance decomposition are fitted side by side in forked R workers
    (RBridge.call_each) when cores allow: components, glance rows and messages equal the fits made in turn."""
    info = write_study(tmp_path, seed=6)
    study, _, _ = load_study(load_spec(info["spec"]))
    opts = VarianceComponentsOptions(id="v", dimension=["valence", "arousal"], by=["race"], fixed=["emotion"])
    out = {}
    for workers in ("1", "2"):
        monkeypatch.setenv("EMOALIGN_R_WORKERS", workers)
        out[workers] = run_vc(opts, study, r)
    serial, parallel = out["1"], out["2"]
    assert len(serial.table) == len(parallel.table) == 2 * 3 * 7  # 2 dimensions x 3 races x (3 variances, 3 shares, the ratio)
    pd.testing.assert_frame_equal(serial.table.drop(columns="estimate"), parallel.table.drop(columns="estimate"))
    assert parallel.table["estimate"].to_numpy() == pytest.approx(serial.table["estimate"].to_numpy(), abs=1e-6, rel=0)
    num = ["criterion", "feval", "REMLcrit", "sigma"]
    pd.testing.assert_frame_equal(serial.extra["glance"].drop(columns=num), parallel.extra["glance"].drop(columns=num))
    assert parallel.extra["glance"][num].to_numpy() == pytest.approx(serial.extra["glance"][num].to_numpy(), abs=1e-6)
    assert serial.warnings == parallel.warnings


def test_call_each_keeps_order_messages_and_errors_of_each_worker(r):
    from emoalign.analysis.rbridge import RCallError

    import threading

    # another Python thread busy while the workers fork: they must not wait for a lock it held (R's own fork did)
    stop = threading.Event()
    busy = threading.Thread(target=lambda: [sum(range(1000)) for _ in iter(lambda: stop.is_set(), True)], daemon=True)
    busy.start()
    r.eval("emoalign_test_each <- function(x) { message('got ', x); if (x == 3) warning('three'); "
           "if (x == 4) stop('four is bad'); if (x == 5) tools::pskill(Sys.getpid(), tools::SIGKILL); x * 10 }")
    for workers in (1, 2):
        res = r.call_each("emoalign_test_each", [((x,), {}) for x in (1, 2, 3)], workers=workers)
        assert [c.value for c in res] == [[10.0], [20.0], [30.0]]
        assert [c.messages for c in res] == [["got 1"], ["got 2"], ["got 3"]] and res[2].warnings == ["three"]
        with pytest.raises(RCallError, match="four is bad"):
            r.call_each("emoalign_test_each", [((x,), {}) for x in (1, 4)], workers=workers)
    # a worker that dies (killed) is an error of its call, not a hang or a crash of this session
    with pytest.raises(RCallError, match="worker process failed") as ei:
        r.call_each("emoalign_test_each", [((x,), {}) for x in (1, 5)], workers=2)
    assert "EMOALIGN_R_WORKERS=1" in str(ei.value)
    assert r.call("emoalign_test_each", 6).value == [60.0]  # the session goes on
    stop.set()
    busy.join()


def test_r_workers_from_the_environment(monkeypatch):
    from emoalign.analysis.rbridge import r_workers
    from emoalign.errors import EmoalignError

    monkeypatch.setenv("EMOALIGN_R_WORKERS", "3")
    assert r_workers() == 3
    monkeypatch.setenv("EMOALIGN_R_WORKERS", "0")
    assert r_workers() == 1
    monkeypatch.setenv("EMOALIGN_R_WORKERS", "two")
    with pytest.raises(EmoalignError, match="EMOALIGN_R_WORKERS='two' is not a whole number"):
        r_workers()
    monkeypatch.delenv("EMOALIGN_R_WORKERS")
    assert r_workers() >= 1


def test_emmeans_contrasts_are_the_per_emotion_bias(tmp_path, r):
    """contrast: rater_type by emotion = beta_machine + beta_machine:emotion (emmeans), recovering the planted
    per-emotion bias; at the reference emotion the row equals the main-effect test exactly."""
    info = write_study(tmp_path, seed=11)
    study, _, _ = load_study(load_spec(info["spec"]))
    opts = LmmOptions(id="m", kind="lmm", raters=["gemma3"], dimension="valence",
                      formula="rating ~ rater_type * emotion + (1|image_id)",
                      reference_levels={"emotion": "angry", "rater_type": "human"},
                      contrast="rater_type", contrast_by=["emotion"])
    t = run_lmm(opts, study, r).table
    f = t[t.effect == "fixed"].set_index("term")
    c = t[t.effect == "contrast"].set_index("emotion")
    assert set(c["term"]) == {"machine - human"}
    assert set(c.index) == set(BIAS)
    main = f.loc["rater_typemachine"]
    for e, planted in BIAS.items():
        implied = main["estimate"] + (0.0 if e == "angry" else f.loc[f"rater_typemachine:emotion{e}", "estimate"])
        assert c.loc[e, "estimate"] == pytest.approx(implied, abs=1e-8)
        assert c.loc[e, "conf_low"] <= planted <= c.loc[e, "conf_high"], e
    ref = c.loc["angry"]
    for col in ("std_error", "statistic", "df", "p_value"):
        assert ref[col] == pytest.approx(main[col], rel=1e-6), col
    with pytest.raises(Exception, match="not in the formula"):
        run_lmm(opts.model_copy(update={"contrast_by": ["race"]}), study, r)


def _crossed(seed=5, n_raters=30, n_images=40, share=0.5):
    rng = np.random.default_rng(seed)
    rater_effect, image_effect = rng.normal(0, 0.9, n_raters), rng.normal(0, 0.5, n_images)
    j, i = np.nonzero(rng.random((n_raters, n_images)) < share)
    emotion = i % 3
    y = 5 + emotion / 2 + rater_effect[j] + image_effect[i] + rng.normal(0, 1, len(j))
    return pd.DataFrame({"rating": y, "rater_id": [f"r{x}" for x in j], "image_id": [f"i{x}" for x in i],
                         "emotion": [f"e{x}" for x in emotion]})


def _reml_optimum(df):
    """REML fit of rating ~ emotion + (1|rater_id) + (1|image_id) with numpy and scipy, independent of lme4.

    -2 log restricted likelihood = log|V| + log|X'V^-1 X| + r'V^-1 r + (n - p) log(2 pi), V = ve I + Z G Z'
    (G = diag of the rater and image variances), evaluated through the q x q matrix M = G^-1 + Z'Z / ve
    (Woodbury identity, matrix determinant lemma). Returns the criterion, the minimising (rater, image,
    residual) variances and the minimum."""
    from scipy.optimize import minimize

    y = df["rating"].to_numpy()
    X = pd.get_dummies(df["emotion"], drop_first=True, dtype=float).assign(one=1.0).to_numpy()
    Zr = pd.get_dummies(df["rater_id"], dtype=float).to_numpy()
    Z = np.hstack([Zr, pd.get_dummies(df["image_id"], dtype=float).to_numpy()])
    n, p = X.shape
    ZtZ, ZtX, Zty = Z.T @ Z, Z.T @ X, Z.T @ y

    def crit(variances):
        vr, vi, ve = variances
        g = np.r_[np.full(Zr.shape[1], vr), np.full(Z.shape[1] - Zr.shape[1], vi)]
        M = np.diag(1 / g) + ZtZ / ve
        Minv = np.linalg.inv(M)
        XtVX = X.T @ X / ve - ZtX.T @ Minv @ ZtX / ve ** 2
        XtVy = X.T @ y / ve - ZtX.T @ Minv @ Zty / ve ** 2
        beta = np.linalg.solve(XtVX, XtVy)
        res = y - X @ beta
        Ztr = Z.T @ res
        quad = res @ res / ve - Ztr @ Minv @ Ztr / ve ** 2
        logdet = n * np.log(ve) + np.log(g).sum() + np.linalg.slogdet(M)[1]
        return logdet + np.linalg.slogdet(XtVX)[1] + quad + (n - p) * np.log(2 * np.pi)

    start = np.log([0.5, 0.5, 1.0])
    for _ in range(2):  # Nelder-Mead, restarted once at its own solution
        best = minimize(lambda t: crit(np.exp(t)), start, method="Nelder-Mead",
                        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 10000})
        start = best.x
    return crit, np.exp(best.x), best.fun


def test_nonconverging_crossed_fit_is_restarted_to_the_independent_optimum(r):
    """A crossed fit whose optimizer stops early (constructed with a loose first-fit tolerance, from lme4's start) fails
    lme4's own check;
    emoalign restarts it from the fitted theta and keeps the better fit, which is the REML optimum found by an
    independent dense-matrix REML fit."""
    import rpy2.robjects as ro

    df = _crossed()
    formula = "rating ~ emotion + (1|rater_id) + (1|image_id)"
    # lme4 itself, with the same first-fit control, flags the fit
    ro.globalenv["crossed"] = r.to_r(df)
    lme4_warns = list(r.eval(f"""local({{ w <- character(0)
        withCallingHandlers(lme4::lmer({formula}, crossed, control = lme4::lmerControl(optCtrl = list(ftol_abs = 0.01))),
                            warning = function(x) {{ w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") }})
        w }})""") or [])
    assert any("failed to converge" in w for w in lme4_warns), lme4_warns

    res = r.call("variance_components", df, formula=formula, control={"ftol_abs": 0.01}, start="lme4")
    g = res.value["glance"].iloc[0]
    assert g["restarted"] and g["restart_kept"] and g["converged"] and g["optimizer"] == "bobyqa"
    assert g["restart_criterion_change"] > 1e-3 and g["restart_max_change"] > 1e-3
    assert g["max_grad"] < 0.002
    assert any(m.startswith("restarted from the fitted theta with bobyqa: criterion lowered") for m in res.messages)
    crit, optimum, best = _reml_optimum(df)
    v = res.value["table"].query("metric == 'variance'").set_index("group")["estimate"]
    ours = np.array([v["rater_id"], v["image_id"], v["Residual"]])
    assert crit(ours) == pytest.approx(g["criterion"], abs=1e-6)  # the same criterion (lme4's REML deviance)
    assert g["criterion"] <= best + 1e-6  # ... at its independent optimum
    assert ours == pytest.approx(optimum, rel=1e-4)
    # without a restart the early stop is reported, not hidden: converged false, rows flagged by the kind
    stay = r.call("variance_components", df, formula=formula, control={"ftol_abs": 0.01}, restart="none",
                  start="lme4")
    gs = stay.value["glance"].iloc[0]
    assert not gs["converged"] and not gs["restarted"] and gs["criterion"] > best + 1e-3
    assert any("failed to converge" in w for w in stay.warnings)


def test_converged_fit_is_not_restarted_and_matches_lme4_default(r):
    """A fit that passes the check is lme4's default fit (same optimizer, same start): components identical to
    lme4::lmer to 1e-9, and the check needs no restart."""
    import rpy2.robjects as ro

    df = _crossed(seed=8)
    formula = "rating ~ emotion + (1|rater_id) + (1|image_id)"
    res = r.call("variance_components", df, formula=formula, start="lme4")
    g = res.value["glance"].iloc[0]
    assert g["converged"] and not g["restarted"] and g["optimizer"] == "nloptwrap" and not g["singular"]
    assert g["start"] == "lme4"
    ro.globalenv["crossed"] = r.to_r(df)
    direct = r.eval(f"as.data.frame(lme4::VarCorr(lme4::lmer({formula}, crossed)))$vcov")
    ours = res.value["table"].query("metric == 'variance'")["estimate"].to_numpy()
    assert ours == pytest.approx(direct, abs=1e-9)
    assert g["criterion"] == pytest.approx(r.eval(f"lme4::REMLcrit(lme4::lmer({formula}, crossed))")[0], abs=1e-9)
    # the default method-of-moments start reaches the same optimum (within the optimizer's tolerance) in fewer steps
    moments = r.call("variance_components", df, formula=formula)
    gm = moments.value["glance"].iloc[0]
    assert gm["start"] == "moments" and gm["converged"] and gm["feval"] < g["feval"]
    assert gm["criterion"] == pytest.approx(g["criterion"], abs=1e-6)
    assert moments.value["table"].query("metric == 'variance'")["estimate"].to_numpy() == pytest.approx(ours, rel=1e-4)


BLAS_PROBE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from test_lmm import _crossed, _frame
from emoalign.analysis.kinds.lmm import LmmOptions, fit
from emoalign.analysis.rbridge import get_r
r = get_r()
vc = r.call("variance_components", _crossed(seed=3, n_raters=60, n_images=80), formula="rating ~ emotion + (1|rater_id) + (1|image_id)")
t, _, _ = fit(LmmOptions(id="m", kind="lmm", formula="rating ~ rater_type * emotion + (1|image_id)"), _frame(seed=4), r)
print(json.dumps({"blas": r.versions()["R_BLAS"], "vc": vc.value["table"]["estimate"].tolist(),
                  "lmm": t["estimate"].tolist(), "p": t["p_value"].fillna(-1).tolist()}))
"""


@pytest.mark.slow
def test_results_identical_with_the_reference_blas(r):
    """OpenBLAS (scripts/setup.sh) and R's reference BLAS give the same variance components and LMM estimates
    (1e-6); skipped where R already runs on the reference BLAS or it is not installed."""
    import glob
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    ref = sorted(glob.glob("/usr/lib/*/blas/libblas.so.3"))
    lapack = sorted(glob.glob("/usr/lib/*/lapack/liblapack.so.3"))
    current = r.versions()["R_BLAS"] or ""
    if not ref or os.path.realpath(current) == os.path.realpath(ref[0]):
        pytest.skip("R's reference BLAS is not installed, or R already uses it")
    here = Path(__file__).parent
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(str(Path(p).parent) for p in ref[:1] + lapack[:1]),
               PYTHONPATH=os.pathsep.join([str(here.parent / "python"), str(here / "fixtures")]))
    proc = subprocess.run([sys.executable, "-c", BLAS_PROBE, str(here)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    other = json.loads(proc.stdout.strip().splitlines()[-1])
    assert os.path.realpath(other["blas"]) != os.path.realpath(current)  # really another BLAS
    here_run = json.loads(subprocess.run([sys.executable, "-c", BLAS_PROBE, str(here)], capture_output=True, text=True,
                                         env=dict(env, LD_LIBRARY_PATH=os.environ.get("LD_LIBRARY_PATH", "")),
                                         timeout=300).stdout.strip().splitlines()[-1])
    assert np.allclose(here_run["vc"], other["vc"], rtol=0, atol=1e-6)
    assert np.allclose(here_run["lmm"], other["lmm"], rtol=0, atol=1e-6)
    assert np.allclose(here_run["p"], other["p"], rtol=1e-6, atol=1e-12)
