"""Cohen's kappa vs sklearn and R psych::cohen.kappa; classification metrics vs sklearn."""

import numpy as np
import pytest
from sklearn import metrics as skm

from emoalign.analysis.stats import (
    INVALID_LABEL, accuracy, cohen_kappa, cohen_kappa_table, confusion_matrix, macro_f1, per_class_metrics,
)

# Fleiss (1981), Statistical Methods for Rates and Proportions, Table 13.1 (two psychiatrists, n = 100)
FLEISS = np.array([[75, 1, 4], [5, 4, 1], [0, 0, 10]])
LABELS = ["angry", "disgust", "fear", "happy", "sad", "neutral"]


def _labels(seed=0, n=300):
    rng = np.random.default_rng(seed)
    t = rng.choice(LABELS, n)
    p = np.where(rng.random(n) < .6, t, rng.choice(LABELS, n)).astype(object)
    return t, p


def test_kappa_fleiss_worked_example():
    k = cohen_kappa_table(FLEISS)
    assert k.estimate == pytest.approx((0.89 - 0.66) / 0.34, abs=1e-12)
    # textbook null SE: sqrt(p_e + p_e^2 - sum p_i. p_.i (p_i. + p_.i)) / ((1 - p_e) sqrt(n))
    pe, s = 0.66, 0.8 * 0.8 * 1.6 + 0.1 * 0.05 * 0.15 + 0.1 * 0.15 * 0.25
    assert k.std_error_null == pytest.approx(np.sqrt(pe + pe ** 2 - s) / (0.34 * 10), abs=1e-12)


def test_kappa_vs_r_psych():
    ro = pytest.importorskip("rpy2.robjects")
    if not ro.r('isTRUE(requireNamespace("psych", quietly = TRUE))')[0]:
        pytest.skip("R package psych not installed")
    rng = np.random.default_rng(1)
    tab = rng.integers(0, 30, size=(4, 4)) + np.diag([40, 30, 20, 35])
    for t in (FLEISS, tab):
        ro.globalenv["m"] = ro.r.matrix(ro.FloatVector(t.ravel(order="F").astype(float)), nrow=t.shape[0])
        var, lo, est, hi = ro.r("ck <- psych::cohen.kappa(m); c(ck$var.kappa, ck$confid[1, ])")
        k = cohen_kappa_table(t)
        assert k.estimate == pytest.approx(est, abs=1e-12)
        assert k.std_error ** 2 == pytest.approx(var, rel=1e-10)
        assert (k.conf_low, k.conf_high) == pytest.approx((lo, hi), abs=1e-10)


def test_kappa_vs_sklearn_with_invalid_predictions():
    t, p = _labels()
    p[:7] = None
    p[7:10] = "doubt"
    ref = skm.cohen_kappa_score(t, np.array([x if x in LABELS else "zz_invalid" for x in p]))
    assert cohen_kappa(t, p, labels=LABELS).estimate == pytest.approx(ref, abs=1e-12)


def test_classification_metrics_vs_sklearn():
    t, p = _labels(2)
    p[:5] = np.nan
    p[5:8] = "surprise"
    pc = np.array([x if isinstance(x, str) and x in LABELS else "zz" for x in p])
    prec, rec, f1, sup = skm.precision_recall_fscore_support(t, pc, labels=LABELS, zero_division=0)
    got = per_class_metrics(t, p, LABELS)
    np.testing.assert_allclose([m.precision for m in got], prec, atol=1e-12)
    np.testing.assert_allclose([m.recall for m in got], rec, atol=1e-12)
    np.testing.assert_allclose([m.f1 for m in got], f1, atol=1e-12)
    assert [m.support for m in got] == list(sup)
    assert macro_f1(t, p, LABELS) == pytest.approx(skm.f1_score(t, pc, labels=LABELS, average="macro"), abs=1e-12)
    correct, n = accuracy(t, p)
    assert correct / n == pytest.approx(skm.accuracy_score(t, pc), abs=1e-12)
    cm = confusion_matrix(t, p, LABELS)
    assert list(cm.columns) == LABELS + [INVALID_LABEL]
    np.testing.assert_array_equal(cm[LABELS].to_numpy(), skm.confusion_matrix(t, pc, labels=LABELS))
    assert cm[INVALID_LABEL].sum() == 8


def test_macro_f1_leaves_out_absent_labels():
    """A label with neither reference items nor predictions is not an F1 of 0: left out, as sklearn does
    when it infers the labels from the data (issue 11)."""
    from emoalign.analysis.stats import absent_labels

    t, p = _labels(4)
    keep = (t != "sad") & (p != "sad")
    t, p = t[keep], p[keep]
    assert absent_labels(t, p, LABELS) == ["sad"]
    assert macro_f1(t, p, LABELS) == pytest.approx(skm.f1_score(t, p, average="macro"), abs=1e-12)
    # counting sad as F1 = 0 would be 5/6 of that
    assert macro_f1(t, p, LABELS) > skm.f1_score(t, p, labels=LABELS, average="macro", zero_division=0) + 0.05
    assert absent_labels(t, p, [x for x in LABELS if x != "sad"]) == []
    assert np.isnan(macro_f1([], [], LABELS))
