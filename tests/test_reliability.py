"""Reliability kind: Krippendorff's alpha (worked example, krippendorff package, bootstrap algebra),
ICC wiring (Shrout & Fleiss 1979 through the kind), per-group results, irr where installed."""

import numpy as np
import pandas as pd
import pytest

import krippendorff
from emoalign.analysis.kinds.reliability import ReliabilityOptions, run
from emoalign.analysis.stats.krippendorff import (alpha_bootstrap, alpha_data, alpha_two_way, alpha_weighted,
                                                  bootstrap_interval, bootstrap_weights, kripp_alpha)
from emoalign.analysis.study import Study
from emoalign.errors import EmoalignError

nan = np.nan
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", section C: 4 observers x 12 units, missing values
K2011 = np.array([
    [1, 2, 3, 3, 2, 1, 4, 1, 2, nan, nan, nan],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, nan, 3],
    [nan, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, nan],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, nan],
])
K2011_PUBLISHED = {"nominal": 0.743, "ordinal": 0.815, "interval": 0.849, "ratio": 0.797}
LEVELS = ("nominal", "ordinal", "interval", "ratio")


def _long(matrix):
    coders, units = np.nonzero(~np.isnan(matrix))
    return units, matrix[coders, units], coders


@pytest.mark.parametrize("level", LEVELS)
def test_krippendorff_2011_worked_example(level):
    units, values, _ = _long(K2011)
    a = kripp_alpha(units, values, level)
    assert round(a, 3) == K2011_PUBLISHED[level]
    assert a == pytest.approx(krippendorff.alpha(K2011, level_of_measurement=level), abs=1e-12)


def _sparse_study(seed=3, n_raters=80, n_units=120, per_unit=6):
    rng = np.random.default_rng(seed)
    m = np.full((n_raters, n_units), nan)
    truth = rng.normal(size=n_units)
    for u in range(n_units):
        who = rng.choice(n_raters, size=rng.integers(1, per_unit + 1), replace=False)  # some units unpairable
        m[who, u] = np.clip(np.round(5 + 1.5 * truth[u] + rng.normal(0, 1.2, len(who))), 1, 9)
    return m


@pytest.mark.parametrize("level", LEVELS)
def test_bootstrap_estimate_equals_krippendorff_package(level):
    m = _sparse_study()
    units, values, _ = _long(m)
    res = alpha_bootstrap(units, values, level, reps=200, seed=5)
    assert res["estimate"] == pytest.approx(krippendorff.alpha(m, level_of_measurement=level), abs=1e-10)
    assert res["conf_low"] < res["estimate"] < res["conf_high"]


@pytest.mark.parametrize("level", LEVELS)
def test_weighted_replicate_equals_alpha_of_resampled_units(level):
    """A replicate's weighted sum must equal alpha recomputed on the units actually drawn (duplicates kept)."""
    m = _sparse_study(seed=11, n_units=60)
    units, values, _ = _long(m)
    data = alpha_data(units, values)
    rng = np.random.default_rng(2)
    draw = rng.integers(0, data.n_units, data.n_units)
    w = np.bincount(draw, minlength=data.n_units)[None, :].astype(float)
    # the same replicate built explicitly: columns of the pairable units, repeated as drawn
    pairable_cols = np.asarray(data.units, dtype=int)
    resampled = m[:, pairable_cols[draw]]
    expected = krippendorff.alpha(resampled, level_of_measurement=level,
                                  value_domain=np.unique(values))
    assert alpha_weighted(data, w, level)[0] == pytest.approx(expected, abs=1e-10)


def _alpha_explicit(m, coder_copies, unit_copies, level):
    """Alpha of an explicitly resampled crossed data set, by enumerating pairs (independent of the weighted sums):
    unit u appears unit_copies[u] times, coder j's values coder_copies[j] times; pairs of copies of the same
    coder are not pairs of different coders and are left out of the observed disagreement."""
    units = []
    for u in range(m.shape[1]):
        for _ in range(int(unit_copies[u])):
            units.append([(j, m[j, u]) for j in range(m.shape[0]) if not np.isnan(m[j, u])
                          for _ in range(int(coder_copies[j]))])
    units = [x for x in units if len({j for j, _ in x}) >= 2]
    values = np.array([v for x in units for _, v in x])
    if level == "ordinal":
        domain = np.unique(values)
        counts = np.array([np.sum(values == v) for v in domain])
        rank = dict(zip(domain, np.cumsum(counts) - counts / 2))
        d = lambda a, b: (rank[a] - rank[b]) ** 2  # noqa: E731
    else:
        d = {"interval": lambda a, b: (a - b) ** 2, "nominal": lambda a, b: float(a != b),
             "ratio": lambda a, b: ((a - b) / (a + b)) ** 2 if a + b else 0.0}[level]
    observed = 0.0
    for x in units:
        pairs = [(a, b) for i, (ci, a) in enumerate(x) for k, (ck, b) in enumerate(x) if ci != ck]
        observed += sum(d(a, b) for a, b in pairs) * len(x) / len(pairs)
    expected = sum(d(a, b) for a in values for b in values)
    return 1 - (len(values) - 1) * observed / expected


@pytest.mark.parametrize("level", LEVELS)
def test_two_way_replicate_equals_alpha_of_explicit_resample(level):
    m = _sparse_study(seed=6, n_raters=12, n_units=25, per_unit=5)
    units, values, coders = _long(m)
    data = alpha_data(units, values, coders)
    rng = np.random.default_rng(3)
    # coder weights all 1 reduce to the unit bootstrap
    W = bootstrap_weights(data.n_units, 4, rng)
    assert np.allclose(alpha_two_way(data, np.ones((4, data.n_coders)), level, W), alpha_weighted(data, W, level),
                       atol=1e-12)
    for _ in range(3):
        cw, uw = bootstrap_weights(data.n_coders, 1, rng)[0], bootstrap_weights(data.n_units, 1, rng)[0]
        coder_copies = np.zeros(m.shape[0])
        coder_copies[np.asarray(data.coders, dtype=int)] = cw
        unit_copies = np.zeros(m.shape[1])
        unit_copies[np.asarray(data.units, dtype=int)] = uw
        expected = _alpha_explicit(m, coder_copies, unit_copies, level)
        assert alpha_two_way(data, cw[None, :], level, uw[None, :])[0] == pytest.approx(expected, abs=1e-10)
        assert alpha_two_way(data, cw[None, :], level)[0] == pytest.approx(
            _alpha_explicit(m, coder_copies, np.ones(m.shape[1]), level), abs=1e-10)


def _crossed_study(rng, n_raters=40, n_units=40, share=0.6, var_rater=1.0, var_unit=0.5, var_error=0.5):
    """Raters x units, each cell observed with probability ``share``: x = rater + unit + error (normal)."""
    a = rng.normal(0, np.sqrt(var_rater), n_raters)
    b = rng.normal(0, np.sqrt(var_unit), n_units)
    j, u = np.nonzero(rng.random((n_raters, n_units)) < share)
    return u, a[j] + b[u] + rng.normal(0, np.sqrt(var_error), len(j)), j


def test_two_way_bootstrap_covers_the_population_alpha_of_crossed_studies():
    """Coverage of the 95% alpha CI over 200 simulated crossed studies (40 raters x 40 units, 60% of cells rated,
    rater variance 1 = twice the unit variance 0.5, error 0.5). The population interval alpha is
    var_unit / (var_rater + var_unit + var_error) = 0.25. Stated tolerance: +-0.05 around 0.95 (the binomial SE
    of a coverage over 200 studies is 0.015). The two-way bootstrap (resample: both) covers within it, with the
    bias-corrected interval closest to nominal; the unit bootstrap, which holds the raters fixed, falls far below."""
    rng = np.random.default_rng(2026)
    population, n_studies = 0.25, 200
    hits = {"units": 0, "both": 0, "both_bc": 0}
    for s in range(n_studies):
        units, values, coders = _crossed_study(rng)
        by_units = alpha_bootstrap(units, values, "interval", 200, seed=s, coders=coders, resample="units")
        both = alpha_bootstrap(units, values, "interval", 200, seed=s, coders=coders, resample="both")
        lo, hi = bootstrap_interval(both["estimate"], both["replicates"], 0.95, "bc")
        hits["units"] += by_units["conf_low"] <= population <= by_units["conf_high"]
        hits["both"] += both["conf_low"] <= population <= both["conf_high"]
        hits["both_bc"] += lo <= population <= hi
    coverage = {k: v / n_studies for k, v in hits.items()}
    assert abs(coverage["both_bc"] - 0.95) <= 0.05, coverage
    assert abs(coverage["both"] - 0.95) <= 0.05, coverage
    assert coverage["units"] < 0.88, coverage


def test_bootstrap_interval_methods_and_resample_needs_coders():
    rng = np.random.default_rng(0)
    reps = rng.normal(0.4, 0.05, 4000)
    lo, hi = bootstrap_interval(0.4, reps, 0.9, "percentile")
    assert (lo, hi) == pytest.approx(tuple(np.quantile(reps, [0.05, 0.95])))
    # replicates centred below the estimate: the bias-corrected interval shifts up by about twice the bias
    blo, bhi = bootstrap_interval(0.42, reps, 0.9, "bc")
    assert blo - lo == pytest.approx(0.04, abs=0.01) and bhi - hi == pytest.approx(0.04, abs=0.01)
    units, values, coders = _long(_sparse_study())
    with pytest.raises(EmoalignError, match="needs the coder"):
        alpha_bootstrap(units, values, resample="both")
    a = alpha_bootstrap(units, values, "ordinal", 100, coders=coders, resample="coders")
    b = alpha_bootstrap(units, values, "ordinal", 100, coders=coders, resample="both")
    assert a["estimate"] == b["estimate"] == alpha_bootstrap(units, values, "ordinal", 0)["estimate"]
    assert a["n_coders"] == len(np.unique(coders[np.isin(units, np.flatnonzero((~np.isnan(_sparse_study())).sum(0) >= 2))]))
    assert a["conf_low"] < a["estimate"] < a["conf_high"] and b["conf_low"] < b["estimate"] < b["conf_high"]


def test_bootstrap_is_seeded_and_ci_is_sane():
    m = _sparse_study(seed=4, n_units=200)
    units, values, _ = _long(m)
    a = alpha_bootstrap(units, values, "ordinal", reps=300, seed=9)
    b = alpha_bootstrap(units, values, "ordinal", reps=300, seed=9)
    c = alpha_bootstrap(units, values, "ordinal", reps=300, seed=10)
    assert a["conf_low"] == b["conf_low"] and a["conf_high"] == b["conf_high"]
    assert a["conf_low"] != c["conf_low"]
    # percentile CI brackets the estimate and has a width consistent with its bootstrap SE (~3.92 SE)
    width = a["conf_high"] - a["conf_low"]
    assert 3.0 * a["std_error"] < width < 4.8 * a["std_error"]
    assert a["n"] == int((np.sum(~np.isnan(m), axis=0) >= 2).sum())


def test_continuous_values_many_levels_interval_and_ordinal():
    """Human image means are continuous: every value distinct (V = 236); still exact."""
    rng = np.random.default_rng(0)
    m = rng.normal(5, 1, size=(4, 60)) + rng.normal(0, 1, size=60)
    m[0, :10] = nan
    units, values, _ = _long(m)
    for level in LEVELS:
        est = alpha_bootstrap(units, values, level, reps=50, seed=1)["estimate"]
        assert est == pytest.approx(krippendorff.alpha(m, level_of_measurement=level), abs=1e-9)


def test_irr_kripp_alpha_matches_when_installed():
    from emoalign.analysis.rbridge import get_r

    r = get_r()
    if not r.has_package("irr"):
        pytest.skip("R package irr is not installed here")
    for level in LEVELS:
        got = r.call("irr_kripp_alpha", K2011, level=level).value["estimate"][0]
        units, values, _ = _long(K2011)
        assert got == pytest.approx(kripp_alpha(units, values, level), abs=1e-10)


# ---- the kind through a Study -------------------------------------------------------------
# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
SF_PUBLISHED = {"icc_1": .17, "icc_a1": .29, "icc_c1": .71, "icc_k": .44, "icc_ak": .62, "icc_ck": .91}


def _study_from_judges(x, humans=None):
    n, k = x.shape
    stim = pd.DataFrame({"image_id": [f"t{i}" for i in range(n)], "path": "", "sha256": "",
                         "emotion": ["happy", "sad"] * (n // 2)})
    mach = pd.DataFrame([{"rater": f"j{j}", "image_id": f"t{i}", "emotion": "happy", "valence": x[i, j], "arousal": nan}
                         for i in range(n) for j in range(k)])
    if humans is None:
        humans = pd.DataFrame({"rater_id": ["h1"], "image_id": ["t0"], "valence": [5.0]})
    return Study(stimuli=stim, humans=humans, machines=mach, scales={"valence": (1, 10)}, emotions=["happy", "sad"])


def test_kind_icc_shrout_fleiss_and_alpha_over_machine_raters():
    study = _study_from_judges(SF)
    opts = ReliabilityOptions(id="r", raters=["j0", "j1", "j2", "j3"], dimension="valence", method="both",
                              level="interval", bootstrap=100)
    t = run(opts, study).table
    est = dict(zip(t["metric"], t["estimate"]))
    for m, v in SF_PUBLISHED.items():
        assert round(est[m], 2) == v
    assert est["krippendorff_alpha"] == pytest.approx(krippendorff.alpha(SF.T, level_of_measurement="interval"), abs=1e-12)
    assert set(t["raters"]) == {"j0,j1,j2,j3"}
    assert (t.loc[t.metric == "icc_a1", "form"] == "ICC(2,1) = ICC(A,1)").all()
    assert (t["n"] == 6).all()


def test_kind_human_trials_by_emotion_and_icc_skipped_with_warning():
    rng = np.random.default_rng(1)
    rows = [{"rater_id": f"h{r}", "image_id": f"t{i}", "valence": float(rng.integers(1, 10))}
            for r in range(8) for i in range(6) if rng.random() < 0.7]
    humans = pd.DataFrame(rows)
    study = _study_from_judges(SF, humans)
    t = run(ReliabilityOptions(id="r", dimension="valence", by=["emotion"], bootstrap=0), study).table
    assert list(t["emotion"]) == ["happy", "sad"] and set(t["raters"]) == {"human"}
    for e, g in humans.merge(study.stimuli, on="image_id").groupby("emotion"):
        mat = g.pivot(index="rater_id", columns="image_id", values="valence").to_numpy()
        assert t.loc[t.emotion == e, "estimate"].item() == pytest.approx(
            krippendorff.alpha(mat, level_of_measurement="ordinal"), abs=1e-12)
    res = run(ReliabilityOptions(id="r", dimension="valence", method="both", bootstrap=0), study)
    assert any("ICC skipped" in w for w in res.warnings)  # raw trials are incomplete: no complete image
    with pytest.raises(EmoalignError):
        run(ReliabilityOptions(id="r", dimension="valence", method="icc", icc_missing="raise"), study)


def test_kind_nominal_alpha_of_human_label_choices():
    rng = np.random.default_rng(4)
    labels = np.array(["happy", "sad", "fear"])
    truth = rng.integers(0, 3, 6)
    rows = [{"rater_id": f"h{r}", "image_id": f"t{i}", "emotion_choice":
             labels[truth[i]] if rng.random() < 0.7 else labels[rng.integers(0, 3)]}
            for r in range(7) for i in range(6) if rng.random() < 0.8]
    humans = pd.DataFrame(rows)
    study = _study_from_judges(SF, humans)
    t = run(ReliabilityOptions(id="r", dimension="emotion_choice", level="nominal", bootstrap=50), study).table
    mat = humans.pivot(index="rater_id", columns="image_id", values="emotion_choice")
    codes = mat.apply(lambda c: c.map({"fear": 0.0, "happy": 1.0, "sad": 2.0})).to_numpy(dtype=float)
    ref = krippendorff.alpha(codes, level_of_measurement="nominal")
    assert t["estimate"].item() == pytest.approx(ref, abs=1e-12)
    with pytest.raises(EmoalignError, match="level: nominal"):
        run(ReliabilityOptions(id="r", dimension="emotion_choice", level="ordinal", bootstrap=0), study)


def test_kind_resample_option_states_the_method():
    """resample / ci_method reach the bootstrap and are stated per row and in the analysis info; the estimate does
    not depend on them, and the two-way interval equals alpha_bootstrap's on the same trials."""
    rng = np.random.default_rng(4)
    rater, truth = rng.normal(0, 1, 30), rng.normal(0, 1, 6)
    rows = [{"rater_id": f"h{r}", "image_id": f"t{i}", "valence": float(np.clip(np.round(5 + rater[r] + truth[i]
                                                                                         + rng.normal()), 1, 9))}
            for r in range(30) for i in range(6)]
    humans = pd.DataFrame(rows)
    study = _study_from_judges(SF, humans)
    by_units = run(ReliabilityOptions(id="r", dimension="valence", bootstrap=200), study)
    both = run(ReliabilityOptions(id="r", dimension="valence", bootstrap=200, resample="both", ci_method="bc"), study)
    u, b = by_units.table.iloc[0], both.table.iloc[0]
    assert u["estimate"] == b["estimate"]
    assert (u["resample"], b["resample"]) == ("units", "both")
    assert u["ci_method"].startswith("percentile interval, 200 replicates, bootstrap over units (images)")
    assert b["ci_method"].startswith("bias-corrected percentile interval, 200 replicates, bootstrap over units and coders")
    assert both.info["ci"]["krippendorff_alpha"] == b["ci_method"]
    ref = alpha_bootstrap(humans["image_id"].to_numpy(), humans["valence"].to_numpy(), "ordinal", 200, 1,
                          coders=humans["rater_id"].to_numpy(), resample="both", ci_method="bc")
    assert (b["conf_low"], b["conf_high"]) == pytest.approx((ref["conf_low"], ref["conf_high"]), abs=1e-12)
    # six images, thirty raters: the image bootstrap alone is the narrower interval here
    assert (b["conf_high"] - b["conf_low"]) > (u["conf_high"] - u["conf_low"])
