"""Wilson CI, Pearson r + Fisher CI, and Bland-Altman vs statsmodels, scipy, R and Bland & Altman (1986)."""

import numpy as np
import pytest
from scipy import stats

from emoalign.analysis.stats import bland_altman, pearson, wilson_ci

# Bland & Altman (1986) PEFR data: first readings, Wright and mini Wright peak flow meters (l/min), 17 subjects
WRIGHT = np.array([494, 395, 516, 434, 476, 557, 413, 442, 650, 433, 417, 656, 267, 478, 178, 423, 427], float)
MINI = np.array([512, 430, 520, 428, 500, 600, 364, 380, 658, 445, 432, 626, 260, 477, 259, 350, 451], float)


@pytest.mark.parametrize("x,n", [(0, 10), (3, 10), (10, 10), (537, 1440), (1, 1)])
def test_wilson_vs_statsmodels(x, n):
    from statsmodels.stats.proportion import proportion_confint
    lo, hi = proportion_confint(x, n, alpha=0.05, method="wilson")
    assert wilson_ci(x, n) == pytest.approx((lo, hi), abs=1e-12)
    assert wilson_ci(x, n, 0.9) == pytest.approx(proportion_confint(x, n, alpha=0.1, method="wilson"), abs=1e-12)


def test_wilson_vs_r_prop_test():
    ro = pytest.importorskip("rpy2.robjects")
    lo, hi = ro.r("prop.test(37, 120, correct = FALSE)$conf.int")
    assert wilson_ci(37, 120) == pytest.approx((lo, hi), abs=1e-12)
    assert np.isnan(wilson_ci(0, 0)[0])


def test_pearson_vs_scipy():
    rng = np.random.default_rng(5)
    x = rng.normal(size=40)
    y = 0.6 * x + rng.normal(size=40)
    got = pearson(x, y)
    ref = stats.pearsonr(x, y)
    ci = ref.confidence_interval(0.95)
    assert got.estimate == pytest.approx(ref.statistic, abs=1e-12)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert (got.conf_low, got.conf_high) == pytest.approx((ci.low, ci.high), abs=1e-12)
    assert got.df == 38 and got.n == 40
    y2 = y.copy()
    y2[3] = np.nan
    assert pearson(x, y2).n == 39
    assert np.isnan(pearson([1, 2, 3], [2, 2, 2]).estimate)


def test_pearson_vs_r_cor_test():
    ro = pytest.importorskip("rpy2.robjects")
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=25), rng.normal(size=25)
    ro.globalenv["x"], ro.globalenv["y"] = ro.FloatVector(x), ro.FloatVector(y)
    r, t, p, lo, hi = ro.r("ct <- cor.test(x, y); c(ct$estimate, ct$statistic, ct$p.value, ct$conf.int)")
    got = pearson(x, y)
    np.testing.assert_allclose([got.estimate, got.statistic, got.p_value, got.conf_low, got.conf_high],
                               [r, t, p, lo, hi], rtol=1e-9, atol=1e-12)


def test_bland_altman_1986_example():
    ba = bland_altman(WRIGHT, MINI, z=2.0)
    # published (section 4-5): mean difference -2.1, SD 38.8, limits -79.7 and 75.5 (d -/+ 2 s), SE of bias 9.4,
    # bias CI -22.0 to 17.8, SE of a limit 16.3, CI of the lower limit -114.3 to -45.1 (t = 2.12, 16 df)
    assert ba.bias == pytest.approx(-2.1, abs=0.05)
    assert ba.sd == pytest.approx(38.8, abs=0.05)
    # the paper computed the limits from the rounded bias and SD
    assert round(ba.bias, 1) - 2 * round(ba.sd, 1) == pytest.approx(-79.7, abs=1e-9)
    assert round(ba.bias, 1) + 2 * round(ba.sd, 1) == pytest.approx(75.5, abs=1e-9)
    assert (ba.loa_low, ba.loa_high) == pytest.approx((-79.7, 75.5), abs=0.1)
    assert ba.bias_se == pytest.approx(9.4, abs=0.05)
    assert (ba.bias_conf_low, ba.bias_conf_high) == pytest.approx((-22.0, 17.8), abs=0.1)
    assert ba.loa_se == pytest.approx(16.3, abs=0.05)
    assert ba.loa_low_conf == pytest.approx((-114.3, -45.1), abs=0.2)
    # exact hand computation
    d = WRIGHT - MINI
    assert ba.bias == pytest.approx(d.mean(), abs=1e-12)
    assert ba.sd == pytest.approx(d.std(ddof=1), abs=1e-12)
    q = stats.t.ppf(0.975, 16)
    assert ba.bias_conf_high == pytest.approx(d.mean() + q * d.std(ddof=1) / np.sqrt(17), abs=1e-12)
    default = bland_altman(WRIGHT, MINI)
    assert default.loa_high == pytest.approx(d.mean() + 1.96 * d.std(ddof=1), abs=1e-12)
    assert default.n == 17
