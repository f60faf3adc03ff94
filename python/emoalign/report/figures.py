"""Report figures (plotnine) from tidy result tables, and their embedding as markdown.

``figure_md`` renders a plot to PNG and returns ``![caption](data:image/png;base64,...){#fig-id}``,
a self-contained figure that Quarto and plain pandoc both cross-reference and embed. The figures
only draw what the results tables hold (estimates, CIs, per-observation points).
"""

from __future__ import annotations

import base64
import io
import re
import warnings

import numpy as np
import pandas as pd
from plotnine import (aes, coord_flip, element_blank, element_text, facet_grid, facet_wrap, geom_hline, geom_linerange, geom_segment, geom_point, geom_text, geom_tile, geom_vline, ggplot, labs,
                      position_dodge, scale_color_manual, scale_fill_gradient, scale_shape_manual, theme,
                      theme_bw)

from emoalign.report.tables import emotion_sort, is_text

PALETTE = {"VLM": "#1b9e77", "FER": "#d95f02", "HUMAN": "#7570b3"}
RATER_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4"]
BASE = theme_bw(base_size=10) + theme(figure_size=(8, 5), legend_position="bottom",
                                     strip_text=element_text(size=9))


def png_bytes(plot, width: float, height: float, dpi: int = 110) -> bytes:
    """Render a plotnine plot to PNG bytes (no file on disk)."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plot.save(buf, format="png", width=width, height=height, dpi=dpi, verbose=False)
    return buf.getvalue()


def figure_md(plot, caption: str, label: str | None = None, *, width: float = 8, height: float = 5,
              dpi: int = 110, pct: int | None = None) -> str:
    """Markdown for a self-contained figure with caption and optional ``#fig-...`` id."""
    data = base64.b64encode(png_bytes(plot, width, height, dpi)).decode()
    attrs = [f"#{label}"] if label else []
    attrs.append(f'width="{pct or min(100, round(width / 8 * 100))}%"')
    return f"\n![{caption}](data:image/png;base64,{data}){{{' '.join(attrs)}}}\n\n"


def dim_order(values) -> list:
    """Dimensions in paper order: valence, arousal, then the rest alphabetically."""
    vals = [v for v in pd.unique(pd.Series(list(values))) if v is not None and not pd.isna(v)]
    return sorted(vals, key=lambda v: ({"valence": 0, "arousal": 1}.get(v, 2), str(v)))


def _families(raters, family: dict) -> pd.Series:
    return pd.Series([family.get(r, "other") for r in raters])


# --- paper figures ---------------------------------------------------------------------------
def confusion_heatmaps(df: pd.DataFrame):
    """Confusion matrices (row proportions) per rater: true label (rows) × predicted label."""
    d = df[df["metric"] == "confusion_prop"].copy()
    emos = emotion_sort(pd.concat([d["emotion"], d["predicted"]]))
    d["true"] = pd.Categorical(d["emotion"], categories=list(reversed(emos)))
    d["pred"] = pd.Categorical(d["predicted"], categories=emos)
    d["rater"] = pd.Categorical(d["rater"], categories=list(pd.unique(d["rater"])))
    d["lab"] = [f"{v:.2f}".lstrip("0") if v >= 0.005 else "" for v in d["estimate"]]
    d["ink"] = np.where(d["estimate"] > 0.55, "white", "black")
    n = d["rater"].nunique()
    ncol = min(4, n)
    p = (ggplot(d, aes("pred", "true", fill="estimate")) + geom_tile(color="white")
         + geom_text(aes(label="lab", color="ink"), size=6.5, show_legend=False)
         + scale_color_manual(values={"white": "white", "black": "black"}, guide=None)
         + scale_fill_gradient(low="#f7fbff", high="#08306b", limits=(0, 1), name="row proportion")
         + facet_wrap("rater", ncol=ncol) + labs(x="predicted", y="intended (true)") + BASE
         + theme(axis_text_x=element_text(rotation=45, ha="right"), panel_grid=element_blank()))
    rows = int(np.ceil(n / ncol))
    return p, (2.6 * ncol + 1.2, 2.6 * rows + 1.4)


def strength_inversion(ag: pd.DataFrame, family: dict):
    """Figure 3: valence r (x) vs arousal r (y) per rater, with 95% CIs both ways."""
    r = ag[(ag["metric"] == "pearson_r") & ag["dimension"].isin(["valence", "arousal"])]
    w = r.pivot_table(index="rater", columns="dimension", values=["estimate", "conf_low", "conf_high"], aggfunc="first")
    w.columns = [f"{a}_{b}" for a, b in w.columns]
    w = w.dropna(subset=["estimate_valence", "estimate_arousal"]).reset_index()
    for c in ("conf_low", "conf_high"):
        for dim in ("valence", "arousal"):
            if f"{c}_{dim}" not in w.columns:
                w[f"{c}_{dim}"] = w[f"estimate_{dim}"]
    w["family"] = _families(w["rater"], family).to_numpy()
    colors = {f: PALETTE.get(f, RATER_COLORS[i % 9]) for i, f in enumerate(sorted(w["family"].unique()))}
    p = (ggplot(w, aes("estimate_valence", "estimate_arousal", color="family"))
         + geom_segment(aes(x="estimate_valence", xend="estimate_valence", y="conf_low_arousal", yend="conf_high_arousal"))
         + geom_segment(aes(x="conf_low_valence", xend="conf_high_valence", y="estimate_arousal", yend="estimate_arousal"))
         + geom_point(size=3) + geom_text(aes(label="rater"), nudge_y=0.035, size=8, show_legend=False)
         + scale_color_manual(values=colors)
         + labs(x="valence Pearson r with human mean", y="arousal Pearson r with human mean", color="rater type")
         + BASE)
    return p, (7, 5.5)


def demographic_forest(lmm: pd.DataFrame):
    """Figure 4: machine × demographic interaction terms (machine − human difference relative to the
    reference group) per rater, with 95% CIs; filled points where p < .05."""
    d = lmm[(lmm.get("effect", pd.Series("fixed", index=lmm.index)) == "fixed")].copy() if "effect" in lmm.columns else lmm.copy()
    d = d[d["term"].astype(str).str.startswith("rater_type") & d["term"].astype(str).str.contains(":")]
    if d.empty:
        return None, (0, 0)
    d["label"] = d["term"].astype(str).str.replace(r"^rater_type[^:]*:", "", regex=True)
    d["sig"] = np.where(d["p_value"] < 0.05, "p < .05", "n.s.")
    order = sorted(d["label"].unique(), reverse=True)
    d["label"] = pd.Categorical(d["label"], categories=order)
    if "dimension" in d.columns:
        d["dimension"] = pd.Categorical(d["dimension"], categories=dim_order(d["dimension"]))
    raters = list(pd.unique(d["rater"]))
    facet = facet_wrap("dimension") if "dimension" in d.columns and d["dimension"].nunique() > 1 else None
    p = (ggplot(d, aes("label", "estimate", color="rater", shape="sig"))
         + geom_hline(yintercept=0, linetype="dashed", color="grey")
         + geom_linerange(aes(ymin="conf_low", ymax="conf_high"), position=position_dodge(width=0.5), size=0.8)
         + geom_point(size=2.6, position=position_dodge(width=0.5))
         + coord_flip()
         + scale_shape_manual(values={"p < .05": "o", "n.s.": "x"})
         + scale_color_manual(values={r: RATER_COLORS[i % 9] for i, r in enumerate(raters)})
         + labs(y="interaction estimate (machine − human, vs reference group)", x="", shape="", color="rater")
         + BASE)
    if facet is not None:
        p = p + facet
    return p, (8, 1.2 + 0.45 * len(order) * max(1, len(raters)) ** 0.5 + 1)


def bland_altman(points: pd.DataFrame, ag: pd.DataFrame | None = None):
    """Bland–Altman plots: machine − human difference vs their mean, with bias and 95% limits."""
    pts = points.copy()
    lines = []
    for (rater, dim), g in pts.groupby(["rater", "dimension"], sort=False):
        vals = {}
        if ag is not None:
            a = ag[(ag["rater"] == rater) & (ag["dimension"] == dim)]
            vals = {m: a.loc[a.metric == m, "estimate"].iloc[0] for m in ("mean_diff", "loa_low", "loa_high") if (a.metric == m).any()}
        if len(vals) < 3:  # fall back to the points themselves (Bland & Altman 1986)
            md, sd = g["diff"].mean(), g["diff"].std(ddof=1)
            vals = {"mean_diff": md, "loa_low": md - 1.96 * sd, "loa_high": md + 1.96 * sd}
        lines += [dict(rater=rater, dimension=dim, y=v, kind="bias" if k == "mean_diff" else "95% LoA") for k, v in vals.items()]
    lines = pd.DataFrame(lines)
    raters = list(pd.unique(pts["rater"]))
    dims = dim_order(pts["dimension"])
    for frame in (pts, lines):
        frame["rater"] = pd.Categorical(frame["rater"], categories=raters)
        frame["dimension"] = pd.Categorical(frame["dimension"], categories=dims)
    p = (ggplot(pts, aes("mean", "diff")) + geom_hline(yintercept=0, color="grey")
         + geom_point(alpha=0.25, size=0.8, color="#2c7fb8")
         + geom_hline(lines, aes(yintercept="y", linetype="kind"), color="#d95f02")
         + facet_grid("rater ~ dimension") + labs(x="mean of machine and human", y="machine − human", linetype="")
         + BASE)
    return p, (8, 1.9 * len(raters) + 1.2)


def variance_shares(df: pd.DataFrame):
    """Share of rating variance per component (rater, image, residual) per dimension."""
    d = df[df["metric"] == "share"].dropna(subset=["group"]).copy()
    if d.empty:
        return None, (0, 0)
    d["dimension"] = pd.Categorical(d["dimension"], categories=dim_order(d["dimension"]))
    from plotnine import geom_col
    p = (ggplot(d, aes("dimension", "estimate", fill="group")) + geom_col()
         + labs(x="", y="share of variance", fill="component") + BASE + theme(figure_size=(6, 3)))
    return p, (6, 3.2)


# --- generic ---------------------------------------------------------------------------------
def generic_plot(df: pd.DataFrame, max_rows: int = 40):
    """Default plot for any tidy table: estimate (with CI where present) per row label, one panel per
    metric/term. Returns (None, size) when the table has no finite estimates."""
    if "estimate" not in df.columns:
        return None, (0, 0)
    d = df[np.isfinite(pd.to_numeric(df["estimate"], errors="coerce"))].copy()
    if "effect" in d.columns:
        d = d[d["effect"].isna() | (d["effect"] == "fixed")]
    if d.empty:
        return None, (0, 0)
    panel = "metric" if "metric" in d.columns and d["metric"].notna().any() else "term" if "term" in d.columns else None
    # label rows by the text columns that vary *within* a panel (a column fixed per metric, e.g. an
    # ICC's form, would only add empty rows to the other panels)
    cand = [c for c in d.columns if c not in ("analysis_id", panel, "metric", "term", "effect") and is_text(d[c])]
    if panel is not None:
        groups = [c for c in cand if d.groupby(panel, dropna=False)[c].nunique(dropna=False).max() > 1]
    else:
        groups = [c for c in cand if d[c].nunique(dropna=False) > 1]
    d["label"] = d[groups].astype(str).agg(" · ".join, axis=1) if groups else d.get(panel, pd.Series("estimate", index=d.index)).astype(str)
    if panel is not None and d.groupby(panel).ngroups > 1 and groups:
        d = d.groupby(panel, sort=False).head(max_rows // max(1, min(4, d[panel].nunique())))
        d = d[d[panel].isin(list(pd.unique(d[panel]))[:4])]
    d = d.head(max_rows)
    has_ci = {"conf_low", "conf_high"} <= set(d.columns) and d["conf_low"].notna().any()
    if has_ci:
        d["lo"] = d["conf_low"].fillna(d["estimate"])
        d["hi"] = d["conf_high"].fillna(d["estimate"])
        geom = [geom_segment(aes(x="lo", xend="hi", y="label", yend="label"), color="#2c7fb8"),
                geom_point(color="#2c7fb8", size=2)]
    else:
        geom = [geom_point(color="#2c7fb8", size=2)]
    d["label"] = pd.Categorical(d["label"], categories=list(reversed(list(pd.unique(d["label"])))))
    p = ggplot(d, aes("estimate", "label"))
    for g in geom:
        p = p + g
    p = p + labs(x="estimate", y="") + BASE
    n_panels = 1
    if panel is not None and groups and d[panel].nunique() > 1:
        n_panels = d[panel].nunique()
        p = p + facet_wrap(panel, scales="free", ncol=min(n_panels, 2))
    n_labels = d["label"].nunique()
    return p, (8, min(14, 1.2 + 0.25 * n_labels * (1 + (n_panels > 2))))


def clean_term(term: str) -> str:
    return re.sub(r"^rater_type[^:]*", "machine", str(term))
