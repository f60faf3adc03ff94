"""McNemar, p.adjust and Wilcoxon signed-rank vs R (rpy2), statsmodels and scipy."""

import numpy as np
import pytest
from scipy import stats

from emoalign.analysis.stats import mcnemar, mcnemar_counts, p_adjust, wilcoxon_signed_rank


@pytest.fixture(scope="module")
def ro():
    return pytest.importorskip("rpy2.robjects")


# ---- McNemar --------------------------------------------------------------------------------
@pytest.mark.parametrize("a,b,c,d", [(50, 12, 4, 30), (20, 7, 7, 10), (100, 1, 9, 5), (3, 40, 25, 2)])
def test_mcnemar_vs_statsmodels_and_r(ro, a, b, c, d):
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
    table = np.array([[a, b], [c, d]])
    for correct in (True, False):
        got = mcnemar(b, c, correct=correct)
        ref = sm_mcnemar(table, exact=False, correction=correct)
        if b != c:
            assert got.statistic == pytest.approx(ref.statistic, abs=1e-12)
            assert got.p_value == pytest.approx(ref.pvalue, abs=1e-12)
        ro.globalenv["m"] = ro.r.matrix(ro.IntVector(table.ravel(order="F")), nrow=2)
        stat, p = ro.r(f"mt <- mcnemar.test(m, correct = {str(correct).upper()}); c(mt$statistic, mt$p.value)")
        assert got.statistic == pytest.approx(stat, abs=1e-12)
        assert got.p_value == pytest.approx(p, abs=1e-12)
    ex = mcnemar(b, c, exact=True)
    ref = sm_mcnemar(table, exact=True)
    assert ex.p_value == pytest.approx(ref.pvalue, abs=1e-12) and ex.statistic == ref.statistic
    assert ex.p_value == pytest.approx(stats.binomtest(b, b + c, 0.5).pvalue, abs=1e-12)


def test_mcnemar_counts_and_empty():
    x = np.array([1, 1, 0, 0, 1, 0], bool)
    y = np.array([1, 0, 1, 0, 0, 0], bool)
    assert mcnemar_counts(x, y) == (2, 1)
    assert np.isnan(mcnemar(0, 0).p_value) and mcnemar(0, 0, exact=True).p_value == 1.0


# ---- p.adjust --------------------------------------------------------------------------------
P = [0.01, 0.02, 0.03, 0.04, 0.05, 0.001, 0.2, 0.5, 0.02, np.nan]


@pytest.mark.parametrize("method", ["bonferroni", "holm", "hochberg", "BH", "BY", "none"])
def test_p_adjust_vs_r(ro, method):
    vec = "c(" + ", ".join("NA" if np.isnan(p) else repr(p) for p in P) + ")"
    ref = np.array(ro.r(f'p.adjust({vec}, "{method}")'))
    np.testing.assert_allclose(p_adjust(P, method), ref, atol=1e-15, equal_nan=True)
    ref18 = np.array(ro.r(f'p.adjust({vec}, "{method}", n = 18)'))
    np.testing.assert_allclose(p_adjust(P, method, n=18), ref18, atol=1e-15, equal_nan=True)


def test_p_adjust_vs_statsmodels():
    from statsmodels.stats.multitest import multipletests
    p = np.array(P[:-1])
    for ours, theirs in [("bonferroni", "bonferroni"), ("holm", "holm"), ("BH", "fdr_bh"), ("BY", "fdr_by"),
                         ("hochberg", "simes-hochberg")]:
        np.testing.assert_allclose(p_adjust(p, ours), multipletests(p, method=theirs)[1], atol=1e-14, err_msg=ours)
    with pytest.raises(ValueError):
        p_adjust(p, "holm", n=3)


# ---- Wilcoxon ----------------------------------------------------------------------------------
def _r_wilcox(ro, d, correct, exact="NULL"):
    ro.globalenv["d"] = ro.FloatVector(d)
    return tuple(ro.r(f"suppressWarnings({{w <- wilcox.test(d, correct = {correct}, exact = {exact}); "
                      "c(w$statistic, w$p.value)})"))


@pytest.mark.parametrize("seed,n,rounding", [(0, 12, None), (1, 30, None), (2, 60, None), (3, 40, 1), (4, 25, 0)])
def test_wilcoxon_vs_r(ro, seed, n, rounding):
    rng = np.random.default_rng(seed)
    d = rng.normal(0.4, 1, size=n)
    if rounding is not None:
        d = np.round(d, rounding)          # ties (and zeros for rounding=0)
    for correct in (True, False):
        got = wilcoxon_signed_rank(d, correct=correct)
        v, p = _r_wilcox(ro, d, str(correct).upper())
        assert got.statistic == pytest.approx(v, abs=1e-12)
        assert got.p_value == pytest.approx(p, rel=1e-10, abs=1e-14), (seed, correct, got)
    # forcing the normal approximation on untied data, and exact on tied (falls back like R)
    got = wilcoxon_signed_rank(d, exact=False)
    assert got.p_value == pytest.approx(_r_wilcox(ro, d, "TRUE", "FALSE")[1], rel=1e-10)
    got = wilcoxon_signed_rank(d, exact=True)
    assert got.p_value == pytest.approx(_r_wilcox(ro, d, "TRUE", "TRUE")[1], rel=1e-10)


def test_wilcoxon_vs_scipy_paired():
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=80), rng.normal(0.3, 1, size=80)
    got = wilcoxon_signed_rank(x, y, correct=True)
    ref = stats.wilcoxon(x, y, correction=True, method="approx")
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert not got.exact and got.method == "normal, continuity corrected"
    small = wilcoxon_signed_rank(x[:15], y[:15])
    assert small.exact and small.p_value == pytest.approx(stats.wilcoxon(x[:15], y[:15], method="exact").pvalue, rel=1e-10)
    assert np.isnan(wilcoxon_signed_rank([0.0, 0.0]).p_value)


def _r_wilcox_digits(ro, d, digits):
    ro.globalenv["d"] = ro.FloatVector(d)
    return tuple(ro.r(f"suppressWarnings({{w <- wilcox.test(d, digits.rank = {digits}); c(w$statistic, w$p.value)}})"))


def test_wilcoxon_near_ties_match_r_with_and_without_digits_rank(ro):
    """Machine ratings minus human means k/50: differences equal in exact arithmetic differ in the last bits
    (e.g. 6 - 5.02 and 5 - 4.02). By default they are ranked apart, as R does; digits_rank = R's digits.rank."""
    rng = np.random.default_rng(6)
    human = rng.integers(150, 350, size=60) / 50
    machine = np.round(human + rng.normal(0.3, 0.8, size=60))
    d = machine - human
    default = wilcoxon_signed_rank(d)
    assert default.near_ties > 0  # the construction has floating-point near-ties
    v, p = _r_wilcox_digits(ro, d, "Inf")
    assert (default.statistic, default.p_value) == pytest.approx((v, p), rel=1e-10)
    tied = wilcoxon_signed_rank(d, digits_rank=12)
    v12, p12 = _r_wilcox_digits(ro, d, 12)
    assert tied.near_ties == 0 and (tied.statistic, tied.p_value) == pytest.approx((v12, p12), rel=1e-10)
    assert tied.statistic != default.statistic  # the near-ties matter here
    # exact ties are unaffected by digits_rank
    assert wilcoxon_signed_rank(np.round(d, 2), digits_rank=12).statistic == wilcoxon_signed_rank(np.round(d, 2)).statistic
