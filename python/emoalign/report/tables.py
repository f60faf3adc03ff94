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
FLAG_MARK = "‡"


def mark(row) -> str:
    """``FLAG_MARK`` when the tidy row (a Series or dict) carries a flag, else ""."""
    flag = row.get("flag") if hasattr(row, "get") else None
    return FLAG_MARK if isinstance(flag, str) and flag else ""


def _cell(v) -> str:
    s = "–" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)
    return s.replace("|", "\\|").replace("\n", " ")


_NUMERIC = re.compile(r"^[<>≥≤]?\s*[−+\-]?\.?\d[\d.,]*%?(\s*/\s*[\d.,]+)?(\s*[\[(][^\])]*[\])])?\s*[*ᵃ]*"
                      r"(\s*\([^)]*\))?$")


def _numeric_looking(s: pd.Series) -> bool:
    """A column of numbers as the report prints them (``0.726 [0.70, 0.75]``, ``+1.17***``, ``< .001``, ``59 / 32``)."""
    vals = [str(v) for v in s if v is not None and str(v) not in ("", "–")]
    return bool(vals) and all(_NUMERIC.match(v) for v in vals)


def _csv_cell(v) -> str:
    return re.sub(r"\*\*|`", "", "" if v is None else str(v)).replace("−", "-")


def csv_link(df: pd.DataFrame, label: str) -> str:
    """A raw-HTML download link holding ``df`` as CSV (a data URI): shown in HTML, dropped from the PDF."""
    import base64

    data = df.astype(object).map(_csv_cell) if len(df) else df
    raw = data.to_csv(index=False).encode("utf-8")
    uri = "data:text/csv;charset=utf-8;base64," + base64.b64encode(raw).decode()
    return (f'\n```{{=html}}\n<p class="csv-download"><a download="{label}.csv" href="{uri}">Download this table '
            f"as CSV</a></p>\n```\n")


def md_table(df: pd.DataFrame, caption: str | None = None, label: str | None = None, *, align: str | None = None,
             csv: pd.DataFrame | bool | None = None) -> str:
    """A pandoc/Quarto pipe table; caption line ``: caption {#label}`` when given.

    ``align`` is one character per column (``l``/``r``/``c``); default: first column left, rest right.
    The separator dashes are proportional to each column's longest entry, which pandoc turns into relative
    column widths when a table is wider than the page (cells then wrap instead of overflowing the PDF).
    A labelled table gets an HTML "Download this table as CSV" link: of ``csv`` when it is a frame, else of
    the table as shown (``csv=False``: none).
    """
    cols = [str(c) for c in df.columns]
    if align is None:
        align = "l" + "".join("r" if _numeric_looking(df[c]) else "l" for c in df.columns[1:])
    # widths for the PDF: a column gets its longest cell (headers wrap at spaces, so only their longest word counts)
    width = [min(36, 2 + max(4, max((len(w) for w in c.split()), default=0), *(len(_csv_cell(_cell(v))) for v in df[col])))
             for c, col in zip(cols, df.columns)]
    sep = {"l": (":", ""), "r": ("", ":"), "c": (":", ":")}
    lines = ["| " + " | ".join(_cell(c) for c in cols) + " |",
             "|" + "|".join(sep[a][0] + "-" * w + sep[a][1] for a, w in zip(align[: len(cols)], width)) + "|"]
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    out = "\n".join(lines) + "\n"
    if caption:
        out += f"\n: {caption}" + (f" {{#{label}}}" if label else "") + "\n"
    if label and csv is not False:
        out += csv_link(csv if isinstance(csv, pd.DataFrame) else df, label)
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


def _nm(names, rater) -> str:
    return names.rater(rater) if names is not None else str(rater)


def overall(df: pd.DataFrame, keep: tuple[str, ...] = ("analysis_id", "rater", "dimension", "metric")) -> pd.DataFrame:
    """Only the rows without a by-group (every text column other than ``keep`` empty)."""
    d = df
    for c in [c for c in df.columns if c not in keep and is_text(df[c])]:
        d = d[d[c].isna()]
    return d


# --- study design and provenance -------------------------------------------------------------
def design_summary(study: dict, simulation: dict | None = None) -> pd.DataFrame:
    sim = simulation or {}
    tag = lambda what: " (**simulated**)" if sim.get(what) else ""  # noqa: E731
    tpi = study.get("trials_per_image") or {}
    rows = [("Images", fnum(study.get("n_images")) + tag("stimuli")),
            ("Human raters", fnum(study.get("n_human_raters")) + tag("humans")),
            ("Human trials", fnum(study.get("n_trials")) + tag("humans")),
            ("Trials per image (min / median / max)", " / ".join(fnum(tpi.get(k), 0) for k in ("min", "median", "max")) if tpi else "–"),
            ("Emotions", ", ".join(study.get("emotions") or []) or "–"),
            ("Design columns", ", ".join(study.get("design_columns") or []) or "–"),
            ("Scales", ", ".join(f"{k} {v[0]:g}–{v[1]:g}" for k, v in (study.get("scales") or {}).items()) or "–")]
    if sim.get("profile"):
        rows.append(("Simulation", f"profile `{sim['profile']}`, seed {sim.get('seed', '–')} (`emoalign simulate`)"))
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


def label_map_text(entry: dict) -> str:
    """``7 classes → 6: surprise dropped, renormalised`` for a rater whose native labels were mapped."""
    lm = entry.get("label_map") or {}
    if not lm:
        return "–"
    dropped = [k for k, v in lm.items() if v is None]
    renamed = [f"{k} → {v}" for k, v in lm.items() if v is not None and v != k]
    kept = len({v for v in lm.values() if v is not None})
    parts = [f"{len(lm)} classes → {kept}"]
    if dropped:
        how = {"renormalise": "dropped, the rest renormalised", "renormalize": "dropped, the rest renormalised"}.get(
            str(entry.get("unmapped")), f"dropped ({entry.get('unmapped')})")
        mass = entry.get("unmapped_mass_mean")
        parts.append(f"{', '.join(dropped)} {how}" + (f" (mean dropped probability {mass:.2f})" if mass is not None else ""))
    if renamed:
        parts.append(", ".join(renamed))
    return "; ".join(parts)


def provenance(raters: list[dict], names=None) -> pd.DataFrame:
    """One row per machine rater; simulated profiles are marked ``SIMULATED``, real runs ``real run``."""
    rows = []
    for r in raters:
        sim = bool(r.get("simulated"))
        th = r.get("template_hash")
        how = " · ".join(str(x) for x in (r.get("backend"), r.get("strategy")) if x)
        source = "**SIMULATED**" if sim else "real run"
        if r.get("derived"):
            source = "derived" + (" (**SIMULATED** sources)" if sim else "")
        rows.append({"Rater": _nm(names, r.get("rater")), "Source": source,
                     "Type": str(r.get("family") or "–").upper(), "Model": r.get("model_id") or "–",
                     "Backend · strategy": how or "–", "Template": f"`{str(th)[:12]}`" if th else "–",
                     "Labels": label_map_text(r), "n": fnum(r.get("n")), "Errors": fnum(r.get("n_errors"))})
    out = pd.DataFrame(rows)
    for col in ("Labels", "Template"):
        if len(out) and (out[col] == "–").all():
            out = out.drop(columns=col)
    return out


# --- human ceiling ---------------------------------------------------------------------------
METRIC_NAMES = {"krippendorff_alpha": "Krippendorff's α", "icc_a1": "ICC(A,1)", "icc_ak": "ICC(A,k)", "icc_c1": "ICC(C,1)",
                "icc_ck": "ICC(C,k)", "icc_1": "ICC(1)", "icc_k": "ICC(k)"}


def ceiling(df: pd.DataFrame, names=None) -> pd.DataFrame:
    rows = []
    for _, r in df.iterrows():
        name = METRIC_NAMES.get(r["metric"], r["metric"]) + (f" ({r['level']})" if "level" in df.columns and pd.notna(r.get("level")) else "")
        rows.append({"Raters": _nm(names, r.get("raters", "human")), "Dimension": r.get("dimension", "–"), "Statistic": name,
                     "Estimate [95% CI]": fci(r["estimate"], r.get("conf_low"), r.get("conf_high")) + mark(r),
                     "Images": fnum(r.get("n"))})
    return pd.DataFrame(rows)


def variance(df: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for dim, d in df.groupby("dimension", sort=False):
        ratio = _metric(d, "rater_image_ratio")["estimate"]
        for grp, g in d[d["metric"].isin(["variance", "share"])].groupby("group", sort=False):
            v = _metric(g, "variance")
            s = _metric(g, "share")["estimate"]
            rows.append({"Dimension": dim, "Component": {"rater_id": "rater", "image_id": "image (within emotion)"}.get(grp, grp),
                         "Variance σ²": fci(v["estimate"].iloc[0], v["conf_low"].iloc[0] if "conf_low" in v else None,
                                            v["conf_high"].iloc[0] if "conf_high" in v else None) + mark(v.iloc[0])
                         if len(v) else "–",
                         "Share": f"{100 * s.iloc[0]:.1f}%" if len(s) else "–",
                         "Rater/image ratio": fnum(ratio.iloc[0], 1) if len(ratio) else "–"})
    return pd.DataFrame(rows)


def naturalness(df: pd.DataFrame) -> pd.DataFrame:
    """Human naturalness per emotion: mean (SD) of the ratings and their number."""
    d = df[df["rater"] == "human"] if "rater" in df.columns else df
    by = "emotion" if "emotion" in d.columns else None
    rows = []
    for key, g in (d.groupby(by, sort=False) if by else [("all", d)]):
        m = {k: g[g.metric == k].iloc[0] for k in g.metric.unique()}
        rows.append({"Emotion": str(key).capitalize(), "Mean": fnum(m["mean"]["estimate"], 2) if "mean" in m else "–",
                     "SD": fnum(m["sd"]["estimate"], 2) if "sd" in m else "–",
                     "Ratings": fnum(int(m["mean"]["n"])) if "mean" in m and pd.notna(m["mean"].get("n")) else "–",
                     "_m": m["mean"]["estimate"] if "mean" in m else np.nan})
    out = pd.DataFrame(rows)
    if by and len(out):
        out = out.set_index(out["Emotion"].str.lower()).reindex(emotion_sort(out["Emotion"].str.lower())).reset_index(drop=True)
    return out.drop(columns="_m") if len(out) else out


# --- classification --------------------------------------------------------------------------
def classification_ranking(df: pd.DataFrame, family: dict, names=None) -> pd.DataFrame:
    """Table 1: overall accuracy, macro F1, Cohen's kappa, ranked by kappa (descending)."""
    ov = df[df["emotion"].isna()] if "emotion" in df.columns else df
    if "predicted" in ov.columns:
        ov = ov[ov["predicted"].isna()]
    rows = []
    for rater, d in ov.groupby("rater", sort=False):
        get = {m: d[d.metric == m].iloc[0] for m in ("accuracy", "macro_f1", "cohen_kappa") if (d.metric == m).any()}
        k = get.get("cohen_kappa")
        rows.append({"Rater": _nm(names, rater), "Type": _fam(family, rater),
                     "Accuracy [95% CI]": fci(*(get["accuracy"][["estimate", "conf_low", "conf_high"]])) if "accuracy" in get else "–",
                     "Macro F1": fci(*(get["macro_f1"][["estimate", "conf_low", "conf_high"]])) if "macro_f1" in get else "–",
                     "Cohen's κ [95% CI]": (fci(*(k[["estimate", "conf_low", "conf_high"]])) + mark(k)) if k is not None else "–",
                     "N": fnum(int(d["n"].max())) if "n" in d.columns and d["n"].notna().any() else "–",
                     "_k": k["estimate"] if k is not None else -np.inf})
    out = pd.DataFrame(rows)
    return out.sort_values("_k", ascending=False).drop(columns="_k").reset_index(drop=True) if len(out) else out


def per_emotion_accuracy(df: pd.DataFrame, metric: str = "accuracy", names=None) -> pd.DataFrame:
    """Table 2 (``accuracy``: proportion correct = recall) or per-emotion ``f1``: rows emotions, columns raters."""
    d = df[(df["metric"] == metric) & df["emotion"].notna()]
    if "predicted" in d.columns:
        d = d[d["predicted"].isna()]
    raters = list(pd.unique(d["rater"]))
    wide = d.pivot_table(index="emotion", columns="rater", values="estimate", aggfunc="first")
    wide = wide.reindex(emotion_sort(wide.index))[raters]
    out = wide.map(lambda v: fnum(v))
    out.columns = [_nm(names, r) for r in raters]
    out.insert(0, "Emotion", out.index.str.capitalize())
    return out.reset_index(drop=True)


# --- dimensional agreement -------------------------------------------------------------------
def dimension_summary(df: pd.DataFrame, dimension: str, family: dict, names=None) -> pd.DataFrame:
    """Tables 3/5: Pearson r [CI], ICC(A,1) [CI], MAE, RMSE, Bland–Altman bias [LoA], SD ratio, model and human
    M (SD); ranked by r."""
    d = overall(df[df["dimension"] == dimension])
    rows = []
    for rater, g in d.groupby("rater", sort=False):
        m = {k: g[g.metric == k].iloc[0] for k in g.metric.unique()}
        est = lambda k: m[k]["estimate"] if k in m else np.nan  # noqa: E731
        ci_of = lambda k: fci(m[k]["estimate"], m[k].get("conf_low"), m[k].get("conf_high")) if k in m else "–"  # noqa: E731
        r = m.get("pearson_r")
        sd_ratio = est("sd_ratio") if "sd_ratio" in m else (est("machine_sd") / est("human_sd") if "human_sd" in m else np.nan)
        rows.append({"Rater": _nm(names, rater), "Type": _fam(family, rater),
                     "Pearson r [95% CI]": ci_of("pearson_r") + (mark(r) if r is not None else ""), "ICC(A,1) [95% CI]": ci_of("icc_a1"),
                     "MAE": fnum(est("mae")), "RMSE": fnum(est("rmse")),
                     "Bias [LoA]": (f"{fsigned(est('mean_diff'))} [{fnum(est('loa_low'), 2)}, {fnum(est('loa_high'), 2)}]"
                                    if "mean_diff" in m else "–"),
                     "SD ratio": fnum(sd_ratio, 2),
                     "Model M (SD)": f"{fnum(est('machine_mean'), 2)} ({fnum(est('machine_sd'), 2)})",
                     "Human M (SD)": f"{fnum(est('human_mean'), 2)} ({fnum(est('human_sd'), 2)})",
                     "_r": r["estimate"] if r is not None else -np.inf})
    out = pd.DataFrame(rows)
    if len(out) and (out["ICC(A,1) [95% CI]"] == "–").all():
        out = out.drop(columns="ICC(A,1) [95% CI]")
    return out.sort_values("_r", ascending=False).drop(columns="_r").reset_index(drop=True) if len(out) else out


# --- per-emotion bias ------------------------------------------------------------------------
def bias_table(bias: pd.DataFrame, names=None) -> pd.DataFrame:
    """Tables 4/6: per-emotion mean bias (machine − human) per rater, marked by its Wilcoxon test (adjusted p)."""
    d = bias[bias["metric"] == "mean_diff"] if "metric" in bias.columns else bias
    pcol = "p_adjusted" if "p_adjusted" in d.columns and d["p_adjusted"].notna().any() else "p_value"
    out = pd.DataFrame({"Emotion": emotion_sort(d["emotion"])})
    for rater in pd.unique(d["rater"]):
        g = d[d["rater"] == rater].set_index("emotion")
        out[_nm(names, rater)] = [fsigned(g.loc[e, "estimate"]) + stars(g.loc[e, pcol]) + mark(g.loc[e]) if e in g.index else "–"
                                  for e in out["Emotion"]]
    out["Emotion"] = out["Emotion"].str.capitalize()
    return out


def lmm_term_row(lmm: pd.DataFrame, rater: str, emotion: str, reference: str | None, factor: str = "emotion"):
    """The model term the paper calls "LMM p" for ``emotion``: the rater_type main effect at the reference
    level, the rater_type × emotion interaction elsewhere (None when absent)."""
    d = lmm[(lmm["rater"] == rater) & (lmm["effect"] == "fixed")] if "effect" in lmm.columns else lmm[lmm["rater"] == rater]
    terms = d["term"].astype(str)
    rt = terms.str.startswith("rater_type")
    hit = d[rt & ~terms.str.contains(":")] if emotion == reference else d[rt & terms.str.endswith(f":{factor}{emotion}")]
    return hit.iloc[0] if len(hit) else None


def lmm_contrast_row(lmm: pd.DataFrame, rater: str, emotion: str, factor: str = "emotion"):
    """The emmeans simple effect (machine − human within ``emotion``), or None."""
    if "effect" not in lmm.columns or factor not in lmm.columns:
        return None
    c = lmm[(lmm["rater"] == rater) & (lmm["effect"] == "contrast") & (lmm[factor] == emotion)]
    return c.iloc[0] if len(c) else None


def lmm_tests(lmm: pd.DataFrame, reference: str | None, emotions: list[str], names=None) -> pd.DataFrame:
    """Both LMM tests of the per-emotion bias, per rater: the model term (the paper's "LMM p": main effect at the
    reference emotion, rater_type × emotion interaction elsewhere) and the emmeans simple effect."""
    out = pd.DataFrame({"Emotion": emotion_sort(emotions)})
    has_contrast = "effect" in lmm.columns and (lmm["effect"] == "contrast").any()
    for rater in pd.unique(lmm["rater"]):
        terms = [lmm_term_row(lmm, rater, e, reference) for e in out["Emotion"]]
        out[f"{_nm(names, rater)}: model term β (p)"] = [
            (f"{fsigned(r['estimate'], 3)} ({fp(r['p_value'])})" + (" ᵃ" if e == reference else "") + mark(r)) if r is not None else "–"
            for r, e in zip(terms, out["Emotion"])]
        if has_contrast:
            cons = [lmm_contrast_row(lmm, rater, e) for e in out["Emotion"]]
            out[f"{_nm(names, rater)}: simple effect Δ (p)"] = [
                f"{fsigned(r['estimate'], 3)} ({fp(r['p_value'])}){mark(r)}" if r is not None else "–" for r in cons]
    out["Emotion"] = out["Emotion"].str.capitalize()
    return out


def lmm_coefficients(lmm: pd.DataFrame, names=None, refs: dict | None = None, effect: str = "fixed") -> pd.DataFrame:
    """Every fixed-effect (or emmeans contrast) row of an LMM analysis with a reader's term label."""
    d = lmm[lmm["effect"] == effect] if "effect" in lmm.columns else lmm
    by = [c for c in ("dimension", "emotion", "race", "gender") if c in d.columns and d[c].notna().any()]
    nm = names
    rows = []
    for _, r in d.iterrows():
        row = {"Rater": _nm(nm, r["rater"])}
        for c in by:
            row[c.capitalize()] = r[c] if pd.notna(r[c]) else "–"
        term = str(r["term"])
        row["Term"] = nm.term(term, refs) if nm is not None else term
        row["β [95% CI]"] = fci(r["estimate"], r.get("conf_low"), r.get("conf_high")) + mark(r)
        row["SE"] = fnum(r.get("std_error"))
        row["t"] = fnum(r.get("statistic"), 2)
        row["df"] = fnum(r.get("df"), 1)
        row["p"] = fp(r.get("p_value")) + stars(r.get("p_value"))
        rows.append(row)
    return pd.DataFrame(rows)


# --- response diversity ----------------------------------------------------------------------
def response_variance(df: pd.DataFrame, metric: str = "sd", names=None) -> pd.DataFrame:
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
            if metric == "sd_ratio" and rater == "human":
                continue
            g = d[(d["rater"] == rater) & ((d["dimension"] == dim) if dim else True)].set_index("emotion")["estimate"]
            u = nu[(nu["rater"] == rater) & ((nu["dimension"] == dim) if dim else True)].set_index("emotion")["estimate"]
            show_u = metric == "sd" and rater != "human"
            out[f"{_nm(names, rater)} {short} {'SD' if metric == 'sd' else 'SD ratio'}"] = [
                (fnum(g.get(e), 2) + (f" ({int(u[e])})" if show_u and e in u.index else "")) if e in g.index else "–"
                for e in out["Emotion"]]
    out["Emotion"] = out["Emotion"].str.capitalize()
    return out


# --- other fixed tables ----------------------------------------------------------------------
def mcnemar(df: pd.DataFrame, names=None) -> pd.DataFrame:
    rows = []
    for _, r in df.iterrows():
        rows.append({"Rater A": _nm(names, r["rater"]), "Rater B": _nm(names, r.get("rater2", "–")),
                     "Δ accuracy (A − B)": fsigned(r["estimate"], 3) + mark(r), "n10 / n01": f"{fnum(r.get('n10'))} / {fnum(r.get('n01'))}"
                     if "n01" in df.columns else "–", "χ²": fnum(r.get("statistic"), 2),
                     "p": fp(r.get("p_value")), "p (adj.)": fp(r.get("p_adjusted")) + stars(r.get("p_adjusted"))})
    return pd.DataFrame(rows)


def group_accuracy(df: pd.DataFrame, names=None) -> pd.DataFrame:
    """Accuracy [Wilson CI] per rater × by-cells: rows = first by-column × rater, columns = last by-column."""
    by = [c for c in df.columns if c not in ("analysis_id", "rater", "metric") and is_text(df[c])
          and c not in ("term", "predicted")]
    d = df[df["metric"] == "accuracy"].copy()
    d["rater"] = [_nm(names, r) for r in d["rater"]]
    d["cell"] = [fci(e, lo, hi, 2) + mark(r) for (_, r), e, lo, hi in
                 zip(d.iterrows(), d["estimate"], d.get("conf_low", np.nan), d.get("conf_high", np.nan))]
    if len(by) >= 2:
        col = by[-1]
        idx = ["rater"] + by[:-1]
        wide = d.pivot_table(index=idx, columns=col, values="cell", aggfunc="first").reset_index()
        if col == "emotion":
            wide = wide[idx + emotion_sort([c for c in wide.columns if c not in idx])]
        wide.columns = [str(c).capitalize() if c in idx else str(c) for c in wide.columns]
        return wide
    return d[["rater"] + by + ["cell", "n"]].rename(columns={"cell": "accuracy [95% CI]", "rater": "Rater"})


# --- replication -----------------------------------------------------------------------------
def scorecard_summary(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"Table / section": summary["table"], "Published values": summary["published"].map(fnum),
                         "Estimated here": summary["estimated"].map(fnum), "Inside": summary["inside"].map(fnum),
                         "Outside": summary["outside"].map(fnum),
                         "Share inside": [f"{100 * v:.0f}%" if pd.notna(v) else "–" for v in summary["share_inside"]]})


def scorecard_rows(card: pd.DataFrame, names=None) -> pd.DataFrame:
    def est(r):
        if pd.isna(r["estimate"]):
            return "–"
        if r["measure"] == "p":
            return fp(r["estimate"])
        return fci(r["estimate"], r["conf_low"], r["conf_high"])

    verdict = {"inside": "✓ inside", "outside": "✗ outside", "not estimated": "not estimated",
               "not comparable": "not comparable"}
    return pd.DataFrame({"Row": card["row"], "Column": card["column"],
                         "Rater": [_nm(names, r) if isinstance(r, str) else "–" for r in card["rater"]],
                         "Published": card["published"], "This study [95% CI]": [est(r) for _, r in card.iterrows()],
                         "Tolerance": card["tolerance"], "Verdict": card["status"].map(verdict).fillna(card["status"])})


# --- generic --------------------------------------------------------------------------------
def generic(df: pd.DataFrame, max_rows: int = 60, names=None) -> tuple[pd.DataFrame, int]:
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
    if names is not None:
        for c in ("rater", "rater2", "raters"):
            if c in out.columns:
                out[c] = [names.rater(v) if isinstance(v, str) else v for v in out[c]]
    return out.reset_index(drop=True), left
