"""Report figures (plotnine) from tidy result tables, and their embedding as markdown.

``figure_md`` renders a plot to SVG (vector text and lines; layers with hundreds of points are
rasterised inside the SVG so the file stays small) and returns ``![caption](data:image/svg+xml;base64,...){#fig-id}``,
a self-contained figure that Quarto and plain pandoc both cross-reference and embed, in HTML and in the
Typst PDF. Figures are drawn at their printed size (``TEXT_WIDTH`` inches = the PDF text width) with
fonts of at least 7 pt, so nothing is scaled below legibility. The figures only draw what the results
tables hold (estimates, CIs, per-observation points, fitted lines).
"""

from __future__ import annotations

import base64
import io
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from plotnine import (aes, annotate, coord_flip, element_blank, element_text, facet_grid, facet_wrap, geom_abline,
                      geom_col, geom_hline, geom_linerange, geom_point, geom_segment, geom_text, geom_tile, ggplot,
                      labs, position_dodge, scale_color_manual, scale_fill_gradient, scale_linetype_manual,
                      scale_shape_manual, theme, theme_bw)

from emoalign.report.names import Names
from emoalign.report.tables import emotion_sort, is_text

PALETTE = {"VLM": "#1b9e77", "FER": "#d95f02", "HUMAN": "#7570b3"}
RATER_COLORS = ["#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666", "#1f78b4"]
#: printed width of a full-width figure (A4, 1.5 cm margins: 18 cm)
TEXT_WIDTH = 7.0
MIN_PT = 7.0
BASE = theme_bw(base_size=9) + theme(legend_position="bottom", strip_text=element_text(size=8),
                                     axis_text=element_text(size=MIN_PT + 0.5), legend_text=element_text(size=MIN_PT + 0.5),
                                     legend_title=element_text(size=8))


def svg_bytes(plot, width: float, height: float, raster_points: int = 100) -> bytes:
    """Render a plotnine plot to SVG bytes; point layers with more than ``raster_points`` points are rasterised."""
    import matplotlib
    import matplotlib.pyplot as plt

    # text stays text (font "DejaVu Sans", which matplotlib ships and the PDF renderer is given): small, searchable
    with warnings.catch_warnings(), matplotlib.rc_context({"svg.fonttype": "none", "font.family": "DejaVu Sans"}):
        warnings.simplefilter("ignore")
        fig = (plot + theme(figure_size=(width, height))).draw()
        for coll in fig.findobj(lambda a: hasattr(a, "get_offsets")):
            offsets = coll.get_offsets()
            if offsets is not None and len(offsets) > raster_points:
                coll.set_rasterized(True)
        buf = io.BytesIO()
        fig.savefig(buf, format="svg", dpi=200)
        plt.close(fig)
    return buf.getvalue()


def font_dir() -> str:
    """matplotlib's bundled fonts (DejaVu Sans), for renderers that draw the SVG text (Typst)."""
    import matplotlib

    return str(Path(matplotlib.get_data_path()) / "fonts" / "ttf")


def figure_md(plot, caption: str, label: str | None = None, *, width: float = TEXT_WIDTH, height: float = 5) -> str:
    """Markdown for a self-contained SVG figure, printed at ``width`` inches (its share of the text width)."""
    data = base64.b64encode(svg_bytes(plot, width, height)).decode()
    attrs = [f"#{label}"] if label else []
    attrs.append(f'width="{min(100, round(width / TEXT_WIDTH * 100))}%"')
    return f"\n![{caption}](data:image/svg+xml;base64,{data}){{{' '.join(attrs)}}}\n\n"


def dim_order(values) -> list:
    """Dimensions in paper order: valence, arousal, then the rest alphabetically."""
    vals = [v for v in pd.unique(pd.Series(list(values))) if v is not None and not pd.isna(v)]
    return sorted(vals, key=lambda v: ({"valence": 0, "arousal": 1}.get(v, 2), str(v)))


def _families(raters, family: dict) -> pd.Series:
    return pd.Series([family.get(r, "other") for r in raters])


def _named(values, names: Names | None) -> list[str]:
    return [names.rater(v) if names else str(v) for v in values]


# --- paper figures ---------------------------------------------------------------------------
def confusion_heatmaps(df: pd.DataFrame, names: Names | None = None):
    """Confusion matrices (row proportions) per rater: true label (rows) × predicted label; cell labels 7 pt."""
    d = df[df["metric"] == "confusion_prop"].copy()
    emos = emotion_sort(pd.concat([d["emotion"], d["predicted"]]))
    d["true"] = pd.Categorical(d["emotion"], categories=list(reversed(emos)))
    d["pred"] = pd.Categorical(d["predicted"], categories=emos)
    order = list(pd.unique(d["rater"]))
    d["rater"] = pd.Categorical(_named(d["rater"], names), categories=list(dict.fromkeys(_named(order, names))))
    d["lab"] = [f"{v:.2f}".lstrip("0") if v >= 0.005 else "" for v in d["estimate"]]
    d["ink"] = np.where(d["estimate"] > 0.55, "white", "black")
    n = d["rater"].nunique()
    ncol = min(3, n)
    p = (ggplot(d, aes("pred", "true", fill="estimate")) + geom_tile(color="white")
         + geom_text(aes(label="lab", color="ink"), size=MIN_PT, show_legend=False)
         + scale_color_manual(values={"white": "white", "black": "black"}, guide=None)
         + scale_fill_gradient(low="#f7fbff", high="#08306b", limits=(0, 1), guide=None)  # the cells print their values
         + facet_wrap("rater", ncol=ncol) + labs(x="predicted", y="intended (true)") + BASE
         + theme(axis_text_x=element_text(rotation=45, ha="right"), panel_grid=element_blank()))
    rows = int(np.ceil(n / ncol))
    return p, (TEXT_WIDTH, 2.35 * rows + 1.3)


def strength_inversion(ag: pd.DataFrame, family: dict, names: Names | None = None):
    """Figure 3: valence r (x) vs arousal r (y) per rater with 95% CIs both ways, the diagonal where both are
    equal as reference line, and labels placed so they do not overlap (adjustText)."""
    r = ag[(ag["metric"] == "pearson_r") & ag["dimension"].isin(["valence", "arousal"])]
    for c in [c for c in r.columns if c not in ("analysis_id", "rater", "dimension", "metric") and is_text(r[c])]:
        r = r[r[c].isna()]  # overall rows only
    w = r.pivot_table(index="rater", columns="dimension", values=["estimate", "conf_low", "conf_high"], aggfunc="first")
    w.columns = [f"{a}_{b}" for a, b in w.columns]
    w = w.dropna(subset=["estimate_valence", "estimate_arousal"]).reset_index()
    for c in ("conf_low", "conf_high"):
        for dim in ("valence", "arousal"):
            if f"{c}_{dim}" not in w.columns:
                w[f"{c}_{dim}"] = w[f"estimate_{dim}"]
    w["family"] = _families(w["rater"], family).to_numpy()
    w["label"] = _named(w["rater"], names)
    colors = {f: PALETTE.get(f, RATER_COLORS[i % 9]) for i, f in enumerate(sorted(w["family"].unique()))}
    lo = float(np.nanmin([w["conf_low_valence"].min(), w["conf_low_arousal"].min(), 0.0])) - 0.05
    p = (ggplot(w, aes("estimate_valence", "estimate_arousal", color="family"))
         + geom_abline(intercept=0, slope=1, linetype="dashed", color="#888888")
         + annotate("text", x=lo + 0.02, y=0.99, label="arousal r > valence r", ha="left", va="top", size=MIN_PT,
                    color="#666666")
         + annotate("text", x=0.99, y=lo + 0.02, label="valence r > arousal r", ha="right", va="bottom", size=MIN_PT,
                    color="#666666")
         + geom_segment(aes(x="estimate_valence", xend="estimate_valence", y="conf_low_arousal", yend="conf_high_arousal"))
         + geom_segment(aes(x="conf_low_valence", xend="conf_high_valence", y="estimate_arousal", yend="estimate_arousal"))
         + geom_point(size=2.5)
         + geom_text(aes(label="label"), size=MIN_PT + 0.5, show_legend=False,
                     adjust_text={"expand": (1.4, 1.8), "arrowprops": {"arrowstyle": "-", "color": "#999999", "lw": 0.5}})
         + scale_color_manual(values=colors)
         + labs(x="valence: Pearson r with the human mean", y="arousal: Pearson r with the human mean", color="rater type")
         + BASE + theme(aspect_ratio=1))
    from plotnine import coord_cartesian
    p = p + coord_cartesian(xlim=(lo, 1.1), ylim=(lo, 1.05))
    return p, (5.2, 5.6)


def demographic_forest(lmm: pd.DataFrame, names: Names | None = None, refs: dict | None = None):
    """Figure 4: machine × demographic interaction terms (machine − human difference relative to the
    reference group) per rater, with 95% CIs; filled points where p < .05."""
    d = lmm[lmm["effect"] == "fixed"].copy() if "effect" in lmm.columns else lmm.copy()
    d = d[d["term"].astype(str).str.startswith("rater_type") & d["term"].astype(str).str.contains(":")]
    if d.empty:
        return None, (0, 0)
    nm = names or Names()
    d["label"] = [nm.term(t.split(":", 1)[1], refs) for t in d["term"].astype(str)]
    d["sig"] = np.where(d["p_value"] < 0.05, "p < .05", "n.s.")
    order = sorted(d["label"].unique(), reverse=True)
    d["label"] = pd.Categorical(d["label"], categories=order)
    if "dimension" in d.columns:
        d["dimension"] = pd.Categorical(d["dimension"], categories=dim_order(d["dimension"]))
    raters = list(pd.unique(d["rater"]))
    d["rater"] = pd.Categorical(_named(d["rater"], names), categories=list(dict.fromkeys(_named(raters, names))))
    facet = facet_wrap("dimension") if "dimension" in d.columns and d["dimension"].nunique() > 1 else None
    p = (ggplot(d, aes("label", "estimate", color="rater", shape="sig"))
         + geom_hline(yintercept=0, linetype="dashed", color="grey")
         + geom_linerange(aes(ymin="conf_low", ymax="conf_high"), position=position_dodge(width=0.5), size=0.8)
         + geom_point(size=2.4, position=position_dodge(width=0.5))
         + coord_flip()
         + scale_shape_manual(values={"p < .05": "o", "n.s.": "x"})
         + scale_color_manual(values={r: RATER_COLORS[i % 9] for i, r in enumerate(d["rater"].cat.categories)})
         + labs(y="interaction estimate (machine − human, level vs reference)", x="", shape="", color="rater")
         + BASE)
    if facet is not None:
        p = p + facet
    return p, (TEXT_WIDTH, 1.6 + 0.42 * len(order) * max(1, len(raters)) ** 0.5)


def bland_altman(points: pd.DataFrame, ag: pd.DataFrame | None = None, names: Names | None = None):
    """Bland–Altman plots: machine − human difference vs their mean, with the bias, the 95% limits of agreement
    and the proportional-bias regression line of the difference on the mean (Bland & Altman 1999)."""
    pts = points.copy()
    lines, reg = [], []
    for (rater, dim), g in pts.groupby(["rater", "dimension"], sort=False):
        vals = {}
        if ag is not None:
            a = ag[(ag["rater"] == rater) & (ag["dimension"] == dim)]
            for c in [c for c in a.columns if c not in ("analysis_id", "rater", "dimension", "metric") and is_text(a[c])]:
                a = a[a[c].isna()]
            vals = {m: a.loc[a.metric == m, "estimate"].iloc[0] for m in ("mean_diff", "loa_low", "loa_high", "ba_slope",
                                                                         "ba_intercept") if (a.metric == m).any()}
        if not {"mean_diff", "loa_low", "loa_high"} <= set(vals):  # results without them: draw from the points
            md, sd = g["diff"].mean(), g["diff"].std(ddof=1)
            vals.update({"mean_diff": md, "loa_low": md - 1.96 * sd, "loa_high": md + 1.96 * sd})
        lines += [dict(rater=rater, dimension=dim, y=vals[k], kind="bias" if k == "mean_diff" else "95% limits of agreement")
                  for k in ("mean_diff", "loa_low", "loa_high")]
        if "ba_slope" in vals and "ba_intercept" in vals and np.isfinite(vals["ba_slope"]):
            reg.append(dict(rater=rater, dimension=dim, slope=vals["ba_slope"], intercept=vals["ba_intercept"],
                            kind="proportional bias (regression)"))
    lines = pd.DataFrame(lines)
    raters = list(pd.unique(pts["rater"]))
    dims = dim_order(pts["dimension"])
    cats = list(dict.fromkeys(_named(raters, names)))
    frames = [pts, lines] + ([pd.DataFrame(reg)] if reg else [])
    for frame in frames:
        frame["rater"] = pd.Categorical(_named(frame["rater"], names), categories=cats)
        frame["dimension"] = pd.Categorical(frame["dimension"], categories=dims)
    p = (ggplot(pts, aes("mean", "diff")) + geom_hline(yintercept=0, color="grey")
         + geom_point(alpha=0.25, size=0.6, color="#2c7fb8")
         + geom_hline(lines, aes(yintercept="y", linetype="kind", color="kind")))
    styles = {"bias": "solid", "95% limits of agreement": "dashed", "proportional bias (regression)": "dotted"}
    inks = {"bias": "#d95f02", "95% limits of agreement": "#d95f02", "proportional bias (regression)": "#7a0177"}
    if reg:
        p = p + geom_abline(frames[2], aes(slope="slope", intercept="intercept", linetype="kind", color="kind"), size=0.8)
    p = (p + scale_linetype_manual(values=styles) + scale_color_manual(values=inks) + facet_grid("rater ~ dimension")
         + labs(x="mean of machine and human", y="machine − human", linetype="", color="") + BASE)
    return p, (TEXT_WIDTH, 1.55 * len(raters) + 1.3)


def variance_shares(df: pd.DataFrame):
    """Share of rating variance per component (rater, image, residual) per dimension."""
    d = df[df["metric"] == "share"].dropna(subset=["group"]).copy()
    if d.empty:
        return None, (0, 0)
    d["dimension"] = pd.Categorical(d["dimension"], categories=dim_order(d["dimension"]))
    p = (ggplot(d, aes("dimension", "estimate", fill="group")) + geom_col()
         + labs(x="", y="share of variance", fill="component") + BASE)
    return p, (4.2, 3.0)


# --- generic ---------------------------------------------------------------------------------
def generic_plot(df: pd.DataFrame, max_rows: int = 40, names: Names | None = None):
    """Default plot for any tidy table: estimate (with CI where present) per row label, one panel per
    metric/term. Returns (None, size) when the table has no finite estimates."""
    if "estimate" not in df.columns:
        return None, (0, 0)
    d = df[np.isfinite(pd.to_numeric(df["estimate"], errors="coerce"))].copy()
    if "effect" in d.columns:
        d = d[d["effect"].isna() | (d["effect"] == "fixed")]
    if d.empty:
        return None, (0, 0)
    if names is not None:
        for c in ("rater", "raters"):
            if c in d.columns:
                d[c] = _named(d[c], names)
    panel = "metric" if "metric" in d.columns and d["metric"].notna().any() else "term" if "term" in d.columns else None
    # label rows by the text columns that vary *within* a panel (a column fixed per metric, e.g. an
    # ICC's form, would only add empty rows to the other panels)
    cand = [c for c in d.columns if c not in ("analysis_id", panel, "metric", "term", "effect") and is_text(d[c])]
    if panel is not None:
        groups = [c for c in cand if d.groupby(panel, dropna=False)[c].nunique(dropna=False).max() > 1]
    else:
        groups = [c for c in cand if d[c].nunique(dropna=False) > 1]
    d["label"] = d[groups].astype(object).fillna("–").astype(str).agg(" · ".join, axis=1) if groups else d.get(panel, pd.Series("estimate", index=d.index)).astype(str)
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
    return p, (TEXT_WIDTH, min(9.5, 1.3 + 0.22 * n_labels * (1 + (n_panels > 2))))


def clean_term(term: str) -> str:
    return re.sub(r"^rater_type[^:]*", "machine", str(term))
