"""ICC forms vs Shrout & Fleiss (1979) Table 2, pingouin, and R psych::ICC."""

import numpy as np
import pandas as pd
import pytest

from emoalign.analysis.stats import icc, icc_long
from emoalign.errors import EmoalignError

# Shrout & Fleiss (1979), Table 2: 6 targets x 4 judges
SF = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
# Published (Table 4) to two decimals
SF_PUBLISHED = {"icc_1": .17, "icc_a1": .29, "icc_c1": .71, "icc_k": .44, "icc_ak": .62, "icc_ck": .91}


def test_shrout_fleiss_table2():
    res = icc(SF)
    for m, v in SF_PUBLISHED.items():
        assert round(res[m].estimate, 2) == pytest.approx(v, abs=1e-12), m
    # hand values from the ANOVA: MSR = 11.2417, MSC = 32.4861, MSE = 1.0194, MSW = 6.2639
    assert res["icc_1"].statistic == pytest.approx(11.241666666666667 / 6.263888888888889, rel=1e-12)
    assert res["icc_c1"].df2 == 15 and res["icc_1"].df2 == 18 and res["icc_a1"].df1 == 5


@pytest.fixture(scope="module")
def pg_table():
    pg = pytest.importorskip("pingouin")
    long = pd.DataFrame(SF).rename_axis("t").reset_index().melt(id_vars="t", var_name="j", value_name="y")
    old = pg.options.get("round.column.CI95")
    pg.options["round.column.CI95"] = None
    try:
        out = pg.intraclass_corr(long, targets="t", raters="j", ratings="y")
    finally:
        pg.options["round.column.CI95"] = old
    return out.set_index("Type"), long


def test_against_pingouin(pg_table):
    table, long = pg_table
    res = icc_long(long, "t", "j", "y")
    names = {"icc_1": "ICC(1,1)", "icc_a1": "ICC(A,1)", "icc_c1": "ICC(C,1)", "icc_k": "ICC(1,k)", "icc_ak": "ICC(A,k)",
             "icc_ck": "ICC(C,k)"}
    for m, r in res.items():
        row = table.loc[names[m]]
        ci = "CI95%" if "CI95%" in table.columns else "CI95"
        assert r.estimate == pytest.approx(row["ICC"], abs=1e-10), m
        assert r.statistic == pytest.approx(row["F"], abs=1e-10)
        assert r.p_value == pytest.approx(row["pval"], abs=1e-12)
        assert r.conf_low == pytest.approx(row[ci][0], abs=1e-8), m
        assert r.conf_high == pytest.approx(row[ci][1], abs=1e-8), m


def test_against_r_psych_random_data():
    ro = pytest.importorskip("rpy2.robjects")
    if not ro.r('isTRUE(requireNamespace("psych", quietly = TRUE))')[0]:
        pytest.skip("R package psych not installed")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(25, 1)) + rng.normal(size=(25, 3)) + np.array([0, .5, 1.0])
    ro.globalenv["x"] = ro.r.matrix(ro.FloatVector(x.ravel(order="F")), nrow=25)
    r = ro.r("as.data.frame(psych::ICC(x, lmer = FALSE)$results[, c('ICC','F','df1','df2','p','lower bound','upper bound')])")
    vals = np.array([list(r.rx2(c)) for c in r.names]).T  # rows ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k
    res = icc(x)
    for row, m in zip(vals, ["icc_1", "icc_a1", "icc_c1", "icc_k", "icc_ak", "icc_ck"]):
        got = res[m]
        np.testing.assert_allclose([got.estimate, got.statistic, got.df1, got.df2, got.p_value, got.conf_low, got.conf_high],
                                   row, rtol=1e-8, atol=1e-10, err_msg=m)


def test_long_missing_policy():
    long = pd.DataFrame(SF).rename_axis("t").reset_index().melt(id_vars="t", var_name="j", value_name="y")
    long = long.iloc[1:]
    with pytest.raises(EmoalignError, match="lack a rating"):
        icc_long(long, "t", "j", "y")
    res = icc_long(long, "t", "j", "y", nan_policy="omit")
    assert res["icc_1"].n == 5 and res["icc_1"].estimate == pytest.approx(icc(SF[1:])["icc_1"].estimate, abs=1e-12)
