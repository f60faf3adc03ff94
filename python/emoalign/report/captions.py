"""Caption parts built from what ran: the options and kind info the engine recorded per analysis.

Each function takes an analysis' recorded ``options`` / ``info`` (``Results.options(id)``,
``Results.info(id)``) and returns a phrase; nothing here assumes a default the analysis may not have
used (a Kenward-Roger fit is captioned Kenward-Roger).
"""

from __future__ import annotations

DF_METHOD = {"satterthwaite": "Satterthwaite df (lmerTest)", "kenward_roger": "Kenward–Roger df (lmerTest/pbkrtest)",
             "asymptotic": "asymptotic z tests (lme4)"}
ADJUST = {"bonferroni": "Bonferroni", "holm": "Holm", "hochberg": "Hochberg", "BH": "Benjamini–Hochberg (FDR)",
          "BY": "Benjamini–Yekutieli (FDR)", "none": "no"}
FAMILY = {"analysis": "all tests of the analysis", "rater": "each rater's tests", "dimension": "each dimension's tests",
          "rater_family": "each rater family's tests (VLM, FER)"}


def formula(text: str | None) -> str:
    return f"`{text}`" if text else "the model formula"


def df_method(opts: dict, info: dict | None = None) -> str:
    m = (info or {}).get("df_method") or opts.get("df_method") or "satterthwaite"
    return DF_METHOD.get(m, m)


def reference_levels(refs: dict | None, names=None) -> str:
    """``reference levels: emotion = angry, rater_type = human``."""
    refs = dict(refs or {})
    if not refs:
        return ""
    lab = (lambda v: names.labels.get(v, v)) if names is not None else (lambda v: v)
    return "reference levels: " + ", ".join(f"{k} = {lab(v)}" for k, v in refs.items())


def lmm_refs(opts: dict, info: dict) -> dict:
    """Reference levels that were used: the kind's record (every factor), else the spec's."""
    return dict(info.get("reference_levels") or opts.get("reference_levels") or {})


def adjustment(method: str | None, n: int | None = None, family: str | None = None, n_tests: int | None = None) -> str:
    """``p adjusted by Bonferroni for 18 comparisons within each rater family's tests``."""
    method = method or "none"
    if method == "none":
        return "p unadjusted"
    size = f"for {n} comparisons" if n else (f"over {n_tests} tests" if n_tests else "")
    fam = f" within {FAMILY.get(family, family)}" if family and family != "analysis" else ""
    return f"p adjusted by {ADJUST.get(method, method)} {size}{fam}".replace("  ", " ").strip()


def ci(level: float | None, method: str | None = None) -> str:
    lv = f"{100 * float(level or 0.95):.0f}%"
    return f"{lv} CI" + (f" ({method})" if method else "")


def reliability(opts: dict, table=None) -> str:
    """Method, level and CI of a reliability analysis (Krippendorff / ICC); the interval as the results state it
    (``ci_method``: what was resampled and how), else from the options."""
    method = opts.get("method", "krippendorff")
    parts = []
    if method in ("krippendorff", "both"):
        parts.append(f"Krippendorff's α ({opts.get('level', 'ordinal')})")
    if method in ("icc", "both"):
        parts.append("ICC (McGraw & Wong forms; F-based CIs)")
    boot = opts.get("bootstrap")
    level = f"{100 * float(opts.get('ci_level', 0.95)):.0f}%"
    stated = []
    if table is not None and "ci_method" in table.columns:
        stated = [str(x) for x in table["ci_method"].dropna().unique()]
    if stated:
        ci_text = f"{level} CI: " + "; ".join(stated) + (f" ({boot} replicates)" if boot else "")
    elif boot:
        what = {"units": "images (raters fixed)", "coders": "raters (images fixed)",
                "both": "raters and images (two-way bootstrap)"}.get(opts.get("resample", "units"), "images")
        kind = "bias-corrected percentile" if opts.get("ci_method") == "bc" else "percentile"
        ci_text = f"{level} {kind} bootstrap CI over {what} ({boot} replicates)"
    else:
        ci_text = "no bootstrap CI"
    return f"{' and '.join(parts)}; {ci_text}"


def wilcoxon(opts: dict) -> str:
    corr = "with" if opts.get("correct", True) else "without"
    exact = opts.get("exact", "auto")
    ex = "exact p when n < 50 without ties" if exact == "auto" else ("exact p" if exact is True else "normal approximation")
    return f"Wilcoxon signed-rank test ({ex}, {corr} continuity correction)"


def mcnemar(opts: dict) -> str:
    if opts.get("exact"):
        return "exact binomial McNemar test on the discordant pairs"
    return "McNemar χ² " + ("with continuity correction, (|n10 − n01| − 1)² / (n10 + n01)" if opts.get("correct", True)
                            else "without continuity correction, (n10 − n01)² / (n10 + n01)")
