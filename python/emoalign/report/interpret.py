"""One short interpretation per report section, computed from the numbers in the results tables.

Every sentence is built from the estimates it states (no canned findings): which family leads, whether
the strength inversion holds, which biases survive correction, and so on. A function returns "" when
its tables are missing, so a section without data says nothing rather than something wrong.
Thresholds used in words: Krippendorff (2004) for alpha (>= .800 reliable, >= .667 tentative);
Landis & Koch (1977) for kappa; p < .05 for "significant".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emoalign.report.names import Names
from emoalign.report.tables import emotion_sort, fnum, fp, fsigned, overall

ALPHA = 0.05


def _r(x, d: int = 2) -> str:
    """A correlation-like number without the leading zero (APA): .47, −.12."""
    s = f"{float(x):.{d}f}"
    return s.replace("0.", ".", 1).replace("-", "−")


def _list(items: list[str]) -> str:
    items = [i for i in items if i]
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1] if items else ""


def _para(text: str) -> str:
    return f"\n**Reading.** {text}\n\n" if text else ""


def alpha_words(a: float) -> str:
    return "reliably" if a >= 0.8 else "tentatively" if a >= 0.667 else "moderately" if a >= 0.4 else "poorly"


def kappa_words(k: float) -> str:
    return ("almost perfect" if k > 0.8 else "substantial" if k > 0.6 else "moderate" if k > 0.4 else "fair" if k > 0.2
            else "slight")


def human_ceiling(R) -> str:
    hc = R.table(R.find("human_ceiling"))
    if hc is None or hc.empty:
        return ""
    a = hc[hc["metric"] == "krippendorff_alpha"] if "metric" in hc.columns else hc
    if a.empty:
        return ""
    parts = [f"{alpha_words(r.estimate)} on {r.dimension} (α = {_r(r.estimate, 3)})" for r in a.itertuples()]
    text = f"Human raters agree {_list(parts)}."
    low = a[a["estimate"] < 0.4]
    if len(low):
        text += (f" Where human agreement is this low ({_list(list(low['dimension']))}), even a rater that matches the "
                 "human consensus perfectly cannot be told apart from noise per rating; machine–human correlations "
                 "there are bounded by the reliability of the human image means.")
    vc = R.table(R.find("variance_decomposition"))
    if vc is not None and (vc["metric"] == "rater_image_ratio").any():
        ratios = vc[vc["metric"] == "rater_image_ratio"]
        big = ratios[ratios["estimate"] >= 1]
        if len(big):
            text += (" Rater differences outweigh image differences " + _list(
                [f"{fnum(r.estimate, 0)}-fold for {r.dimension}" for r in big.itertuples()])
                + " (rater variance / image variance within emotion): disagreement comes from the raters more than from the faces.")
        small = ratios[ratios["estimate"] < 1]
        if len(small):
            text += " For " + _list(list(small["dimension"])) + " the images vary more than the raters (ratio " + \
                _list([fnum(r.estimate, 2) for r in small.itertuples()]) + ")."
    return _para(text)


def naturalness(R) -> str:
    d = R.table(R.find("naturalness"))
    if d is None or d.empty:
        return ""
    m = d[(d["metric"] == "mean") & (d["rater"] == "human")].set_index("emotion")["estimate"]
    if m.empty:
        return ""
    lo, hi = (R.study.get("scales") or {}).get("naturalness", [1, 9])
    return _para(f"Mean naturalness ranges from {fnum(m.min(), 2)} ({m.idxmin()}) to {fnum(m.max(), 2)} ({m.idxmax()}) "
                 f"on the {lo:g}–{hi:g} scale.")


def classification(R, names: Names, family: dict) -> str:
    df = R.table(R.find("classification"))
    if df is None:
        return ""
    ov = df[df["emotion"].isna() & df["predicted"].isna()] if "predicted" in df.columns else df[df["emotion"].isna()]
    k = ov[ov["metric"] == "cohen_kappa"].set_index("rater")["estimate"].sort_values(ascending=False)
    if k.empty:
        return ""
    best = k.index[0]
    text = f"{names.rater(best)} classifies best (κ = {_r(k.iloc[0], 3)}, {kappa_words(k.iloc[0])} agreement)."
    fams = {r: family.get(r, "") for r in k.index}
    for fam in ("VLM", "FER"):
        members = [r for r in k.index if fams[r] == fam]
        if members and members[0] != best:
            text += f" The best {fam}, {names.rater(members[0])}, ranks {list(k.index).index(members[0]) + 1} of {len(k)} (κ = {_r(k[members[0]], 3)})."
    f1 = df[(df["metric"] == "f1") & df["emotion"].notna() & (df["predicted"].isna() if "predicted" in df.columns else True)]
    vlms = [r for r in k.index if fams[r] == "VLM"]
    worst = {r: f1[f1["rater"] == r].set_index("emotion")["estimate"].idxmin() for r in vlms if (f1["rater"] == r).any()}
    if worst:
        same = set(worst.values())
        if len(same) == 1:
            e = same.pop()
            vals = ", ".join(f"{names.rater(r)} {_r(f1[(f1.rater == r) & (f1.emotion == e)].estimate.iloc[0], 3)}" for r in worst)
            text += f" For every VLM the worst-classified emotion is {e} (F1: {vals})."
        else:
            text += " Worst-classified emotion per VLM: " + _list([f"{names.rater(r)}: {e}" for r, e in worst.items()]) + "."
    conf = df[(df["metric"] == "confusion_prop") & (df["emotion"] != df["predicted"])] if "predicted" in df.columns else None
    if conf is not None and len(conf) and vlms:
        tops = []
        for r in vlms:
            c = conf[conf["rater"] == r]
            if len(c):
                t = c.loc[c["estimate"].idxmax()]
                tops.append(f"{names.rater(r)} calls {100 * t.estimate:.0f}% of {t.emotion} faces {t.predicted}")
        if tops:
            text += " Dominant errors: " + "; ".join(tops) + "."
    return _para(text)


def _family_r(ag: pd.DataFrame, dim: str, family: dict) -> dict[str, pd.Series]:
    r = overall(ag[(ag["metric"] == "pearson_r") & (ag["dimension"] == dim)]).set_index("rater")["estimate"]
    return {f: r[[x for x in r.index if family.get(x) == f]] for f in ("VLM", "FER")}


def dimension(R, dim: str, names: Names, family: dict) -> str:
    ag = R.table(R.find("dimensional_agreement"))
    if ag is None or not (ag["dimension"] == dim).any():
        return ""
    fr = _family_r(ag, dim, family)
    o = overall(ag[ag["dimension"] == dim])
    text = ""
    if len(fr["VLM"]) and len(fr["FER"]):
        lead = "FER models" if fr["FER"].median() > fr["VLM"].median() else "VLMs"
        text = (f"{lead} lead {dim}: r = {_r(fr['VLM'].min())}–{_r(fr['VLM'].max())} for the VLMs against "
                f"{_r(fr['FER'].min())}–{_r(fr['FER'].max())} for the FER models.")
    mae = o[o["metric"] == "mae"].set_index("rater")["estimate"]
    if len(mae):
        text += f" The smallest absolute error is {names.rater(mae.idxmin())}'s (MAE = {fnum(mae.min())})."
    ratio = o[o["metric"] == "sd_ratio"].set_index("rater")["estimate"]
    vr = ratio[[r for r in ratio.index if family.get(r) == "VLM"]]
    if len(vr):
        if (vr > 1.2).all():
            text += (f" The VLMs spread their ratings {fnum(vr.min(), 2)}–{fnum(vr.max(), 2)} times as widely as the human "
                     "image means (SD ratio)" + (": polarity exaggeration, high correlation with large absolute errors."
                                                 if dim == "valence" else ", so their absolute errors stay large."))
        else:
            text += f" VLM SD ratios: {_list([f'{names.rater(r)} {fnum(v, 2)}' for r, v in vr.items()])}."
    slope = o[o["metric"] == "ba_slope"].set_index("rater")
    sig = slope[slope["p_value"] < ALPHA] if "p_value" in slope.columns else slope.iloc[0:0]
    if len(slope):
        text += (f" Bland–Altman: the bias changes with the rating level (proportional bias, p < .05) for "
                 f"{len(sig)} of {len(slope)} raters" + (f", most steeply for {names.rater(sig['estimate'].abs().idxmax())} "
                                                         f"(slope {fsigned(sig.loc[sig['estimate'].abs().idxmax(), 'estimate'])})"
                                                         if len(sig) else "") + ".")
    return _para(text)


def strength_inversion(R, family: dict) -> str:
    ag = R.table(R.find("dimensional_agreement"))
    if ag is None:
        return ""
    v, a = _family_r(ag, "valence", family), _family_r(ag, "arousal", family)
    if not (len(v["VLM"]) and len(v["FER"]) and len(a["VLM"]) and len(a["FER"])):
        return ""
    fer_v = v["FER"].median() > v["VLM"].median()
    vlm_a = a["VLM"].median() > a["FER"].median()
    state = ("holds" if fer_v and vlm_a else "does not hold")
    return _para(f"The strength inversion {state} here: on valence the median FER r is {_r(v['FER'].median())} against "
                 f"{_r(v['VLM'].median())} for the VLMs; on arousal the median VLM r is {_r(a['VLM'].median())} against "
                 f"{_r(a['FER'].median())} for the FER models"
                 + ("" if fer_v and vlm_a else (" (FER models do not lead valence)" if not fer_v else " (VLMs do not lead arousal)"))
                 + ".")


def bias(R, dim: str, names: Names) -> str:
    b = R.table(R.find(f"{dim}_bias"))
    if b is None or b.empty:
        return ""
    d = b[b["metric"] == "mean_diff"] if "metric" in b.columns else b
    pcol = "p_adjusted" if "p_adjusted" in d.columns and d["p_adjusted"].notna().any() else "p_value"
    sig = d[d[pcol] < ALPHA]
    text = (f"{len(sig)} of {len(d)} per-emotion {dim} biases remain significant after adjustment.")
    big = d.loc[d["estimate"].abs().idxmax()]
    text += f" The largest is {names.rater(big.rater)} on {big.emotion} ({fsigned(big.estimate)})."
    ns = d[d[pcol] >= ALPHA]
    if 0 < len(ns) <= 6:
        text += " Not significant: " + _list([f"{names.rater(r.rater)} {r.emotion}" for r in ns.itertuples()]) + "."
    return _para(text)


def lmm_tests(R, dim: str, names: Names, reference: str | None) -> str:
    lmm = R.table(R.find(f"{dim}_emotion_lmm"))
    if lmm is None or "effect" not in lmm.columns:
        return ""
    from emoalign.report.tables import lmm_contrast_row, lmm_term_row

    emos = emotion_sort(lmm["emotion"].dropna()) if "emotion" in lmm.columns else []
    if not emos:
        emos = sorted({t.split(":emotion")[-1] for t in lmm["term"].astype(str) if ":emotion" in t} | ({reference} if reference else set()))
    parts = []
    for rater in pd.unique(lmm["rater"]):
        ns_term = [e for e in emos if (row := lmm_term_row(lmm, rater, e, reference)) is not None and row["p_value"] >= ALPHA]
        ns_con = [e for e in emos if (row := lmm_contrast_row(lmm, rater, e)) is not None and row["p_value"] >= ALPHA]
        s = f"{names.rater(rater)}: "
        s += (f"the bias at {_list(ns_term)} does not differ from the bias at {reference} (model term p ≥ .05)" if ns_term
              else f"every emotion's bias differs from the bias at {reference} (model term p < .05)")
        if (lmm["effect"] == "contrast").any():
            s += ("; machine − human is significant within every emotion (simple effects)" if not ns_con else
                  f"; machine − human is not significant within {_list(ns_con)} (simple effects)")
        parts.append(s)
    return _para("The two tests answer different questions. " + ". ".join(parts) + ".")


def response_variance(R, names: Names, family: dict) -> str:
    d = R.table(R.find("response_diversity"))
    if d is None:
        return ""
    nu = d[d["metric"] == "n_unique"]
    sd = d[d["metric"] == "sd"]
    text = []
    vlms = [r for r in pd.unique(nu["rater"]) if family.get(r) == "VLM"]
    if vlms:
        v = nu[nu["rater"].isin(vlms)]["estimate"]
        h = nu[nu["rater"] == "human"]["estimate"]
        text.append(f"The VLMs answer {int(v.min())}–{int(v.max())} distinct values per emotion"
                    + (f", humans {int(h.min())}–{int(h.max())}" if len(h) else "") + ".")
        vs = sd[sd["rater"].isin(vlms)]["estimate"]
        hs = sd[sd["rater"] == "human"]["estimate"]
        if len(hs):
            text.append(f"Within-emotion SDs are {fnum(vs.min(), 2)}–{fnum(vs.max(), 2)} for the VLMs and "
                        f"{fnum(hs.min(), 2)}–{fnum(hs.max(), 2)} for human trials"
                        + (": stereotyped responding (prototype lookup rather than per-image judgement)."
                           if vs.median() < 0.6 * hs.median() else "."))
    return _para(" ".join(text))


def demographic(R, names: Names, refs: dict) -> str:
    d = R.table(R.find("demographic_lmm"))
    if d is None or "effect" not in d.columns:
        return ""
    fx = d[(d["effect"] == "fixed") & d["term"].astype(str).str.contains(":") & d["term"].astype(str).str.startswith("rater_type")]
    if fx.empty:
        return ""
    sig = fx[fx["p_value"] < ALPHA]
    if sig.empty:
        return _para(f"No machine × demographic interaction is significant ({len(fx)} tested).")
    items = [f"{names.rater(r.rater)} {r.dimension}: {names.term(str(r.term).split(':', 1)[1], refs)} "
             f"{fsigned(r.estimate, 3)} (p {fp(r.p_value) if fp(r.p_value).startswith('<') else '= ' + fp(r.p_value)})"
             for r in sig.itertuples()]
    by_rater = sig.groupby("rater")["term"].apply(lambda t: set(t.astype(str)))
    specific = len(by_rater) > 1 and len(set.intersection(*by_rater.tolist())) < max(len(x) for x in by_rater)
    return _para(f"{len(sig)} of {len(fx)} machine × demographic interactions are significant: " + "; ".join(items) + "."
                 + (" The biases differ between models (model-specific), so an audit of one model does not carry over "
                    "to another." if specific else ""))


def replication(summary: pd.DataFrame, short: str, simulated: bool) -> str:
    if summary is None or summary.empty:
        return ""
    allrow = summary[summary["table"] == "All"].iloc[0]
    tabs = summary[(summary["table"] != "All") & (summary["estimated"] > 0)]
    text = (f"{int(allrow['inside'])} of {int(allrow['estimated'])} published values of {short} "
            f"({100 * allrow['share_inside']:.0f}%) fall inside their tolerance")
    if int(allrow["published"]) > int(allrow["estimated"]):
        text += f" ({int(allrow['published']) - int(allrow['estimated'])} have no estimate in these results)"
    text += "."
    if len(tabs):
        worst = tabs.loc[tabs["share_inside"].idxmin()]
        text += f" Least reproduced: {worst['table']} ({int(worst['inside'])} of {int(worst['estimated'])})."
    text += (" Because this study is simulated, the scorecard measures how faithfully the simulator reproduces the "
             "paper, not a replication of its findings." if simulated else
             " With real model runs and real human ratings this is a replication of the paper's results.")
    return _para(text)
