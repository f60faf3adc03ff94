"""Report tables: reshape tidy result tables into the paper's tables and emit Quarto/pandoc markdown.

Every builder takes tidy tables (docs/results-contract.md) and returns a display ``DataFrame`` of
formatted strings; ``md_table`` turns it into a pipe table with a cross-referenceable caption
(``: caption {#tbl-id}``), valid in both Quarto and plain pandoc. No statistic is computed here
except presentation (rounding, significance stars, pivoting).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

EMOTION_ORDER = ["happy", "neutral", "fear", "disgust", "angry", "sad", "surprise", "contempt"]


# --- formatting ------------------------------------------------------------------------------
def fnum(x, digits: int = 3) -> str:
    """Format a number; NaN/None -> an en dash."""
    if x is None or (isinstance(x, float) and math.isnan(x)) or pd.isna(x):
        return "–"
    if isinstance(x, (int, np.integer)):
        return f"{int(x):,}"
    return f"{float(x):.{digits}f}".replace("-", "−")


def fsigned(x, digits: int = 2) -> str:
    if x is None or pd.isna(x):
        return "–"
    return ("+" if x > 0 else "") + fnum(x, digits)


def fci(est, lo, hi, digits: int = 3) -> str:
    """``est [lo, hi]``, or just ``est`` when the CI is absent."""
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return fnum(est, digits)
    return f"{fnum(est, digits)} [{fnum(lo, digits)}, {fnum(hi, digits)}]"


def fp(p) -> str:
    """APA-style p: ``< .001`` or ``.023`` (no leading zero)."""
    if p is None or pd.isna(p):
        return "–"
    if p < 0.001:
        return "< .001"
    return f"{p:.3f}".lstrip("0") if p < 1 else "1.000"


def stars(p) -> str:
    """Significance marks: * p < .05, ** p < .01, *** p < .001 (empty otherwise / NaN)."""
    if p is None or pd.isna(p):
        return ""
    return "***" if p < 0.001 else "**" if p < 0.01 else "*" if p < 0.05 else ""


#: text columns of result tables that describe a row (whether it is flagged, how its interval was computed)
#: rather than group it: never by-columns
ANNOTATION_COLUMNS = ("flag", "resample", "ci_method")

#: mark appended to an estimate whose result row is flagged (column ``flag``: not converged, singular fit,
#: constant machine ratings, fewer images than the other raters, ...); the section notes list the flags
MARK = "†"


def mark(row) -> str:
    """``MARK`` when the tidy row (a Series or dict) carries a flag, else ""."""
    flag = row.get("flag") if hasattr(row, "get") else None
    return MARK if isinstance(flag, str) and flag else ""


def _cell(v) -> str:
    s = "–" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
    return s.replace("|", "\\|").replace("\n", " ")


def _numeric_looking(s: pd.Series) -> bool:
    vals = [str(v) for v in s if v is not None and str(v) not in ("", "–")]
    return bool(vals) and all(re.match(r"^[−+\-]?[\d.,<> ]", v) for v in vals)


def md_table(df: pd.DataFrame, caption: str | None = None, label: str | None = None, *, align: str | None = None) -> str:
    """A pandoc/Quarto pipe table; caption line ``: caption {#label}`` when given.

    ``align`` is one character per column (``l``/``r``/``c``); default: first column left, rest right.
    """
    cols = [str(c) for c in df.columns]
    if align is None:
        align = "l" + "".join("r" if _numeric_looking(df[c]) else "l" for c in df.columns[1:])
    sep = {"l": ":---", "r": "---:", "c": ":---:"}
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |",
             "|" + "|".join(sep[a] for a in align[: len(cols)]) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    out = "\n".join(lines) + "\n"
    if caption:
        out += f"\n: {caption}" + (f" {{#{label}}}" if label else "") + "\n"
    return "\n" + out + "\n"


def emotion_sort(values) -> list:
    vals = [v for v in pd.unique(pd.Series(list(values))) if v is not None and not pd.isna(v)]
    return sorted(vals, key=lambda e: (EMOTION_ORDER.index(e) if e in EMOTION_ORDER else 99, str(e)))


def is_text(s: pd.Series) -> bool:
    """True for string/object/categorical columns (grouping columns), false for numbers and for the annotation
    columns (``ANNOTATION_COLUMNS``: ``flag``, ``ci_method``, ...), which describe a row rather than group it."""
    return (pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s)
            or isinstance(s.dtype, pd.CategoricalDtype)) and not pd.api.types.is_bool_dtype(s) \
        and s.name not in ANNOTATION_COLUMNS


def _metric(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    return df[df["metric"] == metric] if "metric" in df.columns else df.iloc[0:0]


def _fam(family: dict, rater: str) -> str:
    return family.get(rater, "")


# --- study design and provenance -------------------------------------------------------------
def design_summary(study: dict) -> pd.DataFrame:
    tpi = study.get("trials_per_image") or {}
    rows = [("Images", fnum(study.get("n_images"))), ("Human raters", fnum(study.get("n_human_raters"))),
            ("Human trials", fnum(study.get("n_trials"))),
            ("Trials per image (min / median / max)", " / ".join(fnum(tpi.get(k), 0) for k in ("min", "median", "max")) if tpi else "–"),
            ("Emotions", ", ".join(study.get("emotions") or []) or "–"),
            ("Design columns", ", ".join(study.get("design_columns") or []) or "–"),
            ("Scales", ", ".join(f"{k} {v[0]}–{v[1]}" for k, v in (study.get("scales") or {}).items()) or "–")]
    for g, members in (study.get("groups") or {}).items():
        rows.append((f"Group `{g}`", ", ".join(members or [])))
    return pd.DataFrame(rows, columns=["Design", "Value"])


def design_cells(study: dict) -> pd.DataFrame | None:
    """Stimulus counts per design cell: one row per non-emotion cell, one column per emotion."""
    cells = pd.DataFrame(study.get("cells") or [])
    if cells.empty or "n" not in cells.columns:
        return None
    keys = [c for c in cells.columns if c not in ("n", "emotion")]
    if "emotion" not in cells.columns:
        return cells
    emos = emotion_sort(cells["emotion"])
    if not keys:
        wide = cells.groupby("emotion")["n"].sum().reindex(emos).to_frame().T
        wide.insert(0, "cell", "all")
    else:
        wide = cells.pivot_table(index=keys, columns="emotion", values="n", aggfunc="sum", fill_value=0)[emos].reset_index()
    wide["total"] = wide[emos].sum(axis=1)
    total = {k: "" for k in wide.columns}
    total[wide.columns[0]] = "**total**"
    for c in emos + ["total"]:
        total[c] = int(wide[c].sum())
    wide = pd.concat([wide, pd.DataFrame([total])], ignore_index=True)
    return wide.astype(object).map(lambda v: fnum(v) if isinstance(v, (int, np.integer, float)) else v)


def provenance(raters: list[dict]) -> pd.DataFrame:
    """One row per machine rater; simulated profiles are marked ``SIMULATED``, real runs ``real run``."""
    rows = []
    for r in raters:
        sim = bool(r.get("simulated"))
        th = r.get("template_hash")
        rows.append({"Rater": r.get("rater"), "Source": "**SIMULATED** profile" if sim else "real model run",
                     "Family": str(r.get("family") or "–").upper(), "Model": r.get("model_id") or "–",
                     "Backend": r.get("backend") or "–", "Strategy": r.get("strategy") or "–",
                     "Template": f"`{str(th)[:12]}`" if th else "–",
                     "n": fnum(r.get("n")), "Errors": fnum(r.get("n_errors"))})
    return pd.DataFrame(rows)


# --- human ceiling ---------------------------------------------------------------------------
def ceiling(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in df.iterrows():
        name = r["metric"] + (f" ({r['level']})" if "level" in df.columns and pd.notna(r.get("level")) else "")
        rows.append({"Raters": r.get("raters", "human"), "Dimension": r.get("dimension", "–"), "Statistic": name,
                     "Estimate [95% CI]": fci(r["estimate"], r.get("conf_low"), r.get("conf_high")) + mark(r),
                     "Units": fnum(r.get("n"))})
    return pd.DataFrame(rows)


def variance(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for dim, d in df.groupby("dimension", sort=False):
        ratio = _metric(d, "rater_image_ratio")["estimate"]
        for grp, g in d[d["metric"].isin(["variance", "share"])].groupby("group", sort=False):
            v = _metric(g, "variance")["estimate"]
            s = _metric(g, "share")["estimate"]
            vrow = _metric(g, "variance")
            rows.append({"Dimension": dim, "Component": grp,
                         "Variance": fnum(v.iloc[0] if len(v) else None) + (mark(vrow.iloc[0]) if len(vrow) else ""),
                         "Share": f"{100 * s.iloc[0]:.1f}%" if len(s) else "–",
                         "Rater/image ratio": fnum(ratio.iloc[0]) if len(ratio) else "–"})
    return pd.DataFrame(rows)


# --- classification --------------------------------------------------------------------------
def classification_ranking(df: pd.DataFrame, family: dict) -> pd.DataFrame:
    """Table 1: overall accuracy, macro F1, Cohen's kappa, ranked by kappa (descending)."""
    ov = df[df["emotion"].isna()] if "emotion" in df.columns else df
    if "predicted" in ov.columns:
        ov = ov[ov["predicted"].isna()]
    rows = []
    for rater, d in ov.groupby("rater", sort=False):
        get = {m: d[d.metric == m].iloc[0] for m in ("accuracy", "macro_f1", "cohen_kappa") if (d.metric == m).any()}
        k = get.get("cohen_kappa")
        rows.append({"Rater": rater, "Type": _fam(family, rater),
                     "Accuracy [95% CI]": fci(*(get["accuracy"][["estimate", "conf_low", "conf_high"]])) if "accuracy" in get else "–",
                     "Macro F1": fci(*(get["macro_f1"][["estimate", "conf_low", "conf_high"]])) if "macro_f1" in get else "–",
                     "Cohen's κ [95% CI]": (fci(*(k[["estimate", "conf_low", "conf_high"]])) + mark(k)) if k is not None else "–",
                     "N": fnum(int(d["n"].max())) if "n" in d.columns and d["n"].notna().any() else "–",
                     "_k": k["estimate"] if k is not None else -np.inf})
    out = pd.DataFrame(rows)
    return out.sort_values("_k", ascending=False).drop(columns="_k").reset_index(drop=True) if len(out) else out


def per_emotion_accuracy(df: pd.DataFrame, metric: str = "accuracy") -> pd.DataFrame:
    """Table 2: rows emotions, columns raters (proportion correct = recall)."""
    d = df[(df["metric"] == metric) & df["emotion"].notna()]
    if "predicted" in d.columns:
        d = d[d["predicted"].isna()]
    wide = d.pivot_table(index="emotion", columns="rater", values="estimate", aggfunc="first")
    wide = wide.reindex(emotion_sort(wide.index))[list(pd.unique(d["rater"]))]
    out = wide.map(lambda v: fnum(v))
    out.insert(0, "Emotion", out.index.str.capitalize())
    return out.reset_index(drop=True)


# --- dimensional agreement -------------------------------------------------------------------
def dimension_summary(df: pd.DataFrame, dimension: str, family: dict) -> pd.DataFrame:
    """Tables 3/5: Pearson r [CI], MAE, RMSE, Bland–Altman bias, model M (SD), human M (SD); by r."""
    d = df[df["dimension"] == dimension]
    if "metric" in d.columns:
        by_cols = [c for c in d.columns if c not in ("analysis_id", "rater", "dimension", "metric") and is_text(d[c])]
        for c in by_cols:  # only overall rows (no by-grouping) in this table
            d = d[d[c].isna()]
    rows = []
    for rater, g in d.groupby("rater", sort=False):
        m = {k: g[g.metric == k].iloc[0] for k in g.metric.unique()}
        est = lambda k: m[k]["estimate"] if k in m else np.nan  # noqa: E731
        r = m.get("pearson_r")
        rows.append({"Rater": rater, "Type": _fam(family, rater),
                     "Pearson r [95% CI]": (fci(r["estimate"], r.get("conf_low"), r.get("conf_high")) + mark(r)) if r is not None else "–",
                     "MAE": fnum(est("mae")), "RMSE": fnum(est("rmse")),
                     "Bias [LoA]": (f"{fsigned(est('mean_diff'))} [{fnum(est('loa_low'), 2)}, {fnum(est('loa_high'), 2)}]"
                                    if "mean_diff" in m else "–"),
                     "Model M (SD)": f"{fnum(est('machine_mean'), 2)} ({fnum(est('machine_sd'), 2)})",
                     "Human M (SD)": f"{fnum(est('human_mean'), 2)} ({fnum(est('human_sd'), 2)})",
                     "_r": r["estimate"] if r is not None else -np.inf})
    out = pd.DataFrame(rows)
    return out.sort_values("_r", ascending=False).drop(columns="_r").reset_index(drop=True) if len(out) else out


# --- per-emotion bias ------------------------------------------------------------------------
def _lmm_emotion_terms(lmm: pd.DataFrame, rater: str, emotion: str, reference: str | None):
    """The LMM row testing machine − human at ``emotion``: the emmeans contrast at that emotion when the
    analysis computed contrasts; else the rater_type main effect at the reference level and the
    rater_type × emotion interaction (difference from the reference's bias) otherwise."""
    if "effect" in lmm.columns and "emotion" in lmm.columns:
        # emmeans simple effect (spec option contrast: rater_type, contrast_by: [emotion]) when present
        c = lmm[(lmm["rater"] == rater) & (lmm["effect"] == "contrast") & (lmm["emotion"] == emotion)]
        if len(c):
            return c.iloc[0]
    d = lmm[(lmm["rater"] == rater) & (lmm.get("effect", "fixed") == "fixed")] if "effect" in lmm.columns else lmm[lmm["rater"] == rater]
    terms = d["term"].astype(str)
    rt = terms.str.startswith("rater_type")
    if emotion == reference:
        hit = d[rt & ~terms.str.contains(":")]
    else:
        hit = d[rt & terms.str.endswith(f":emotion{emotion}")]
    return hit.iloc[0] if len(hit) else None


def bias_table(bias: pd.DataFrame, lmm: pd.DataFrame | None = None, reference: str | None = None) -> pd.DataFrame:
    """Tables 4/6: per-emotion mean bias (machine − human) per rater with Wilcoxon marks (adjusted p),
    and the LMM β and p where an emotion LMM for that rater exists."""
    d = bias[bias["metric"] == "mean_diff"] if "metric" in bias.columns else bias
    if reference is None and lmm is not None and len(lmm):
        emos = set(d["emotion"].dropna())
        inter = {t.split(":emotion")[-1] for t in lmm["term"].astype(str) if ":emotion" in t}
        left = sorted(emos - inter)
        reference = left[0] if len(left) == 1 else None
    pcol = "p_adjusted" if "p_adjusted" in d.columns and d["p_adjusted"].notna().any() else "p_value"
    out = pd.DataFrame({"Emotion": emotion_sort(d["emotion"])})
    for rater in pd.unique(d["rater"]):
        g = d[d["rater"] == rater].set_index("emotion")
        out[f"{rater} bias"] = [fsigned(g.loc[e, "estimate"]) + stars(g.loc[e, pcol]) + mark(g.loc[e]) if e in g.index else "–"
                                for e in out["Emotion"]]
        if lmm is not None and len(lmm) and (lmm["rater"] == rater).any():
            rows = [_lmm_emotion_terms(lmm, rater, e, reference) for e in out["Emotion"]]
            out[f"{rater} LMM β (p)"] = [f"{fsigned(r['estimate'], 3)} ({fp(r['p_value'])}){mark(r)}" if r is not None else "–"
                                         for r in rows]
    out["Emotion"] = out["Emotion"].str.capitalize()
    return out


# --- response diversity ----------------------------------------------------------------------
def response_variance(df: pd.DataFrame, metric: str = "sd") -> pd.DataFrame:
    """Table 7: within-emotion SD per rater and dimension (human included), with unique-value counts."""
    d = df[df["metric"] == metric]
    nu = df[df["metric"] == "n_unique"]
    out = pd.DataFrame({"Emotion": emotion_sort(d["emotion"])})
    dims = list(pd.unique(d["dimension"])) if "dimension" in d.columns else [None]
    raters = list(pd.unique(d["rater"]))
    raters = [r for r in raters if r != "human"] + (["human"] if "human" in raters else [])
    for dim in dims:
        short = (dim or "")[:1].upper()
        for rater in raters:
            g = d[(d["rater"] == rater) & ((d["dimension"] == dim) if dim else True)].set_index("emotion")["estimate"]
            u = nu[(nu["rater"] == rater) & ((nu["dimension"] == dim) if dim else True)].set_index("emotion")["estimate"]
            out[f"{rater} {short} SD"] = [
                (fnum(g.get(e), 2) + (f" ({int(u[e])})" if e in u.index and rater != "human" else "")) if e in g.index else "–"
                for e in out["Emotion"]]
    out["Emotion"] = out["Emotion"].str.capitalize()
    return out


# --- other fixed tables ----------------------------------------------------------------------
def mcnemar(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in df.iterrows():
        rows.append({"Rater": r["rater"], "vs": r.get("rater2", "–"), "Δ accuracy": fsigned(r["estimate"], 3) + mark(r),
                     "χ²": fnum(r.get("statistic"), 2), "n01 / n10": f"{fnum(r.get('n01'))} / {fnum(r.get('n10'))}" if "n01" in df.columns else "–",
                     "p": fp(r.get("p_value")), "p (adj.)": fp(r.get("p_adjusted")) + stars(r.get("p_adjusted"))})
    return pd.DataFrame(rows)


def group_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    """Accuracy [Wilson CI] per rater × by-cells: rows = first by-column × rater, columns = last by-column."""
    by = [c for c in df.columns if c not in ("analysis_id", "rater", "metric") and is_text(df[c])
          and c not in ("term", "predicted")]
    d = df[df["metric"] == "accuracy"].copy()
    d["cell"] = [fci(e, lo, hi, 2) + mark(r) for (_, r), e, lo, hi in
                 zip(d.iterrows(), d["estimate"], d.get("conf_low", np.nan), d.get("conf_high", np.nan))]
    if len(by) >= 2:
        col = by[-1]
        idx = ["rater"] + by[:-1]
        wide = d.pivot_table(index=idx, columns=col, values="cell", aggfunc="first").reset_index()
        if col == "emotion":
            wide = wide[idx + emotion_sort([c for c in wide.columns if c not in idx])]
        wide.columns = [str(c) for c in wide.columns]
        return wide
    return d[["rater"] + by + ["cell", "n"]].rename(columns={"cell": "accuracy [95% CI]"})


# --- generic --------------------------------------------------------------------------------
def generic(df: pd.DataFrame, max_rows: int = 60) -> tuple[pd.DataFrame, int]:
    """A tidy table for display: drop all-NaN and constant bookkeeping columns, round numbers.

    Returns the formatted frame (at most ``max_rows`` rows) and the number of rows left out.
    """
    d = df.drop(columns=[c for c in ("analysis_id",) if c in df.columns])
    d = d[[c for c in d.columns if not d[c].isna().all()]]
    left = max(0, len(d) - max_rows)
    d = d.head(max_rows)
    out = d.astype(object).map(lambda v: fnum(v) if isinstance(v, (float, np.floating)) else ("–" if v is None else v))
    for c in ("p_value", "p_adjusted"):
        if c in d.columns:
            out[c] = [fp(v) for v in d[c]]
    return out.reset_index(drop=True), left
