"""A synthetic results folder that follows docs/results-contract.md, for report tests and previews.

The per-image ratings are drawn from a small seeded generative model (paper-like rater profiles);
the agreement, bias, classification and response-diversity tables are then *computed* from them
(numpy/scipy/scikit-learn), so tables and figures are mutually consistent. Reliability, variance
and LMM rows are plausible values, not fits: this is a rendering fixture, never an analysis. The
real pipeline is ``emoalign simulate`` -> ``emoalign analyze``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "neutral"]
RACES = ["Caucasian", "Black", "Korean"]
GENDERS = ["male", "female"]
HUMAN_V = {"angry": 2.8, "disgust": 3.1, "fear": 3.4, "happy": 7.3, "sad": 3.0, "neutral": 5.0}
HUMAN_A = {"angry": 6.6, "disgust": 5.6, "fear": 6.9, "happy": 6.5, "sad": 4.3, "neutral": 3.8}
#: rater -> (family, accuracy, valence gain, valence noise, arousal gain, arousal noise, has VA)
PROFILES = {
    "gemma3": ("vlm", 0.73, 1.8, 0.5, 1.4, 0.7, True),
    "llama32v": ("vlm", 0.61, 2.1, 0.6, 1.6, 0.9, True),
    "posterv2": ("fer", 0.90, 0, 0, 0, 0, False),
    "mobilevit": ("fer", 0.87, 1.6, 0.6, 0.4, 2.0, True),
    "efficientnet_va": ("fer", 0.85, 1.7, 0.7, 0.5, 1.9, True),
    "beit": ("fer", 0.77, 0, 0, 0, 0, False),
    "emonet": ("fer", 0.73, 1.3, 0.6, 0.1, 1.5, True),
}
GROUPS = {"vlm": ["gemma3", "llama32v"], "fer": ["posterv2", "mobilevit", "efficientnet_va", "beit", "emonet"],
          "fer_va": ["mobilevit", "efficientnet_va", "emonet"]}


def _frame(rows, analysis_id):
    df = pd.DataFrame(rows)
    df.insert(0, "analysis_id", analysis_id)
    return df


def _simulate(rng, n_per_cell):
    stim = [dict(image_id=f"img{i:04d}", emotion=e, race=r, gender=g)
            for i, (e, r, g, _) in enumerate((e, r, g, k) for e in EMOTIONS for r in RACES for g in GENDERS
                                             for k in range(n_per_cell))]
    stim = pd.DataFrame(stim)
    n = len(stim)
    hv = stim.emotion.map(HUMAN_V).to_numpy() + rng.normal(0, 0.6, n)
    ha = stim.emotion.map(HUMAN_A).to_numpy() + rng.normal(0, 0.5, n)
    machines = []
    for rater, (fam, acc, vg, vs, ag, as_, va) in PROFILES.items():
        correct = rng.random(n) < acc
        wrong = rng.choice(EMOTIONS, n)
        pred = np.where(correct, stim.emotion, wrong)
        v = np.clip(np.round(5 + vg * (hv - 5) + rng.normal(0, vs, n)), 1, 9) if va else np.full(n, np.nan)
        a = np.clip(np.round(5 + ag * (ha - 5) + rng.normal(0, as_, n)), 1, 9) if va else np.full(n, np.nan)
        machines.append(pd.DataFrame(dict(rater=rater, image_id=stim.image_id, pred=pred, valence=v, arousal=a)))
    return stim.assign(human_valence=hv, human_arousal=ha), pd.concat(machines, ignore_index=True)


def _classification(stim, mach, aid):
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, precision_recall_fscore_support
    rows = []
    for rater, d in mach.groupby("rater", sort=False):
        y, p = stim.emotion.to_numpy(), d.pred.to_numpy()
        n = len(y)
        acc = float(np.mean(y == p))
        se = np.sqrt(acc * (1 - acc) / n)
        kappa = cohen_kappa_score(y, p)
        rows += [dict(rater=rater, emotion=None, metric="accuracy", estimate=acc, conf_low=acc - 1.96 * se, conf_high=acc + 1.96 * se, n=n),
                 dict(rater=rater, emotion=None, metric="macro_f1", estimate=f1_score(y, p, average="macro"), conf_low=np.nan, conf_high=np.nan, n=n),
                 dict(rater=rater, emotion=None, metric="cohen_kappa", estimate=kappa, conf_low=kappa - 0.05, conf_high=kappa + 0.05, n=n)]
        pr, rc, f1, sup = precision_recall_fscore_support(y, p, labels=EMOTIONS, zero_division=0)
        for i, e in enumerate(EMOTIONS):
            for m, v in (("accuracy", rc[i]), ("precision", pr[i]), ("recall", rc[i]), ("f1", f1[i])):
                rows.append(dict(rater=rater, emotion=e, metric=m, estimate=float(v), n=int(sup[i])))
        cm = confusion_matrix(y, p, labels=EMOTIONS)
        for i, e in enumerate(EMOTIONS):
            for j, q in enumerate(EMOTIONS):
                rows.append(dict(rater=rater, emotion=e, predicted=q, metric="confusion_count", estimate=float(cm[i, j]), n=int(cm[i].sum())))
                rows.append(dict(rater=rater, emotion=e, predicted=q, metric="confusion_prop", estimate=cm[i, j] / max(cm[i].sum(), 1), n=int(cm[i].sum())))
    return _frame(rows, aid)


def _agreement(stim, mach, raters, aid):
    rows, pts = [], []
    for rater in raters:
        d = mach[mach.rater == rater].reset_index(drop=True)
        for dim in ("valence", "arousal"):
            m, h = d[dim].to_numpy(), stim[f"human_{dim}"].to_numpy()
            r, _ = stats.pearsonr(m, h)
            z, se = np.arctanh(r), 1 / np.sqrt(len(m) - 3)
            diff = m - h
            md, sd = diff.mean(), diff.std(ddof=1)
            base = dict(rater=rater, dimension=dim, n=len(m))
            for metric, est, lo, hi in (("pearson_r", r, np.tanh(z - 1.96 * se), np.tanh(z + 1.96 * se)),
                                        ("mae", np.abs(diff).mean(), np.nan, np.nan),
                                        ("rmse", np.sqrt((diff ** 2).mean()), np.nan, np.nan),
                                        ("machine_mean", m.mean(), np.nan, np.nan), ("machine_sd", m.std(ddof=1), np.nan, np.nan),
                                        ("human_mean", h.mean(), np.nan, np.nan), ("human_sd", h.std(ddof=1), np.nan, np.nan),
                                        ("mean_diff", md, md - 1.96 * sd / np.sqrt(len(m)), md + 1.96 * sd / np.sqrt(len(m))),
                                        ("loa_low", md - 1.96 * sd, np.nan, np.nan), ("loa_high", md + 1.96 * sd, np.nan, np.nan),
                                        ("icc_a1", r * 0.8, r * 0.8 - 0.05, r * 0.8 + 0.05),
                                        ("sd_ratio", m.std(ddof=1) / h.std(ddof=1), np.nan, np.nan)):
                rows.append({**base, "metric": metric, "estimate": float(est), "conf_low": lo, "conf_high": hi})
            fit = stats.linregress((m + h) / 2, diff)
            for metric, est, se in (("ba_slope", fit.slope, fit.stderr), ("ba_intercept", fit.intercept, fit.intercept_stderr)):
                rows.append({**base, "metric": metric, "estimate": float(est), "std_error": float(se),
                             "p_value": float(2 * stats.t.sf(abs(est / se), len(m) - 2)),
                             "conf_low": est - 1.96 * se, "conf_high": est + 1.96 * se})
            pts.append(pd.DataFrame(dict(rater=rater, dimension=dim, image_id=d.image_id, machine=m, human=h,
                                         mean=(m + h) / 2, diff=diff)))
    return _frame(rows, aid), pd.concat(pts, ignore_index=True)


def _bias(stim, mach, raters, dim, aid):
    rows = []
    for rater in raters:
        d = mach[mach.rater == rater].reset_index(drop=True)
        for e in EMOTIONS:
            k = (stim.emotion == e).to_numpy()
            m, h = d[dim].to_numpy()[k], stim[f"human_{dim}"].to_numpy()[k]
            diff = m - h
            w = stats.wilcoxon(m, h, correction=True) if np.any(diff != 0) else None
            ci = stats.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=stats.sem(diff))
            rows.append(dict(rater=rater, dimension=dim, emotion=e, metric="mean_diff", estimate=diff.mean(),
                             statistic=w.statistic if w else np.nan, p_value=w.pvalue if w else 1.0,
                             conf_low=ci[0], conf_high=ci[1], n=int(k.sum()), machine_mean=m.mean(), human_mean=h.mean()))
    df = _frame(rows, aid)
    df["p_adjusted"] = np.minimum(df.p_value * len(df), 1.0)
    return df


def _lmm(bias, rater, dim, aid):
    b = bias[(bias.rater == rater)].set_index("emotion").estimate
    rows = [dict(effect="fixed", term="(Intercept)", estimate=HUMAN_V["angry"] if dim == "valence" else HUMAN_A["angry"])]
    rows.append(dict(effect="fixed", term="rater_typemachine", estimate=b["angry"]))
    for e in EMOTIONS[1:]:
        rows.append(dict(effect="fixed", term=f"emotion{e}", estimate=(HUMAN_V if dim == "valence" else HUMAN_A)[e] - 2.8))
        rows.append(dict(effect="fixed", term=f"rater_typemachine:emotion{e}", estimate=b[e] - b["angry"]))
    out = []
    for r in rows:
        se = 0.09
        t = r["estimate"] / se
        out.append({**r, "std_error": se, "statistic": t, "df": 430.0, "p_value": 2 * stats.t.sf(abs(t), 430),
                    "conf_low": r["estimate"] - 1.97 * se, "conf_high": r["estimate"] + 1.97 * se})
    for e in EMOTIONS:  # emmeans simple effects: machine - human within each emotion
        est, se = float(b[e]), 0.09
        t = est / se
        out.append(dict(effect="contrast", term="machine - human", emotion=e, estimate=est, std_error=se, statistic=t,
                        df=430.0, p_value=2 * stats.t.sf(abs(t), 430), conf_low=est - 1.97 * se, conf_high=est + 1.97 * se))
    out += [dict(effect="ran_pars", group="image_id", term="sd__(Intercept)", estimate=0.55),
            dict(effect="ran_pars", group="Residual", term="sd__Observation", estimate=0.61)]
    out += [dict(effect="fit", term=t, estimate=v) for t, v in (("AIC", 2400.0), ("BIC", 2470.0), ("logLik", -1187.0), ("nobs", 432.0))]
    df = pd.DataFrame(out)
    df.insert(0, "dimension", dim)
    df.insert(0, "rater", rater)
    df.insert(0, "analysis_id", aid)
    return df


def _demographic(rng, aid):
    out = []
    for rater in GROUPS["vlm"]:
        for dim in ("valence", "arousal"):
            for term in ("(Intercept)", "rater_typemachine", "raceBlack", "raceKorean", "genderfemale",
                         "rater_typemachine:raceBlack", "rater_typemachine:raceKorean", "rater_typemachine:genderfemale"):
                est = float(rng.normal(0, 0.4)) if term != "(Intercept)" else 4.6
                se = 0.12
                t = est / se
                out.append(dict(rater=rater, dimension=dim, effect="fixed", term=term, estimate=est, std_error=se, statistic=t,
                                df=860.0, p_value=2 * stats.t.sf(abs(t), 860), conf_low=est - 1.96 * se, conf_high=est + 1.96 * se))
    return _frame(out, aid)


def _diversity(stim, mach, raters, aid, rng):
    rows = []
    hsd = {}
    for dim in ("valence", "arousal"):
        for e in EMOTIONS:
            k = (stim.emotion == e).to_numpy()
            trials = np.clip(np.round(stim[f"human_{dim}"].to_numpy()[k][:, None] + rng.normal(0, 1.3, (k.sum(), 5))), 1, 9).ravel()
            hsd[dim, e] = trials.std(ddof=1)
            rows += [dict(rater="human", dimension=dim, emotion=e, metric="n_unique", estimate=float(len(np.unique(trials))), n=trials.size),
                     dict(rater="human", dimension=dim, emotion=e, metric="sd", estimate=hsd[dim, e], n=trials.size),
                     dict(rater="human", dimension=dim, emotion=e, metric="mean", estimate=trials.mean(), n=trials.size)]
    for rater in raters:
        d = mach[mach.rater == rater].reset_index(drop=True)
        for dim in ("valence", "arousal"):
            for e in EMOTIONS:
                v = d[dim].to_numpy()[(stim.emotion == e).to_numpy()]
                sd = v.std(ddof=1)
                rows += [dict(rater=rater, dimension=dim, emotion=e, metric=m, estimate=float(x), n=v.size)
                         for m, x in (("n_unique", len(np.unique(v))), ("sd", sd), ("mean", v.mean()), ("sd_ratio", sd / hsd[dim, e]))]
    return _frame(rows, aid)


def _group_accuracy(stim, mach, aid):
    rows = []
    for rater in GROUPS["vlm"]:
        d = mach[mach.rater == rater].reset_index(drop=True).assign(race=stim.race, emotion=stim.emotion)
        for (race, e), g in d.groupby(["race", "emotion"]):
            k, n = int((g.pred == g.emotion).sum()), len(g)
            p, z = k / n, 1.959964
            c = (p + z * z / (2 * n)) / (1 + z * z / n)
            h = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
            rows.append(dict(rater=rater, race=race, emotion=e, metric="accuracy", estimate=p, conf_low=c - h, conf_high=c + h, n=n))
    return _frame(rows, aid)


def _options(aid: str, kind: str) -> tuple[dict, dict]:
    """Resolved options of ``aid`` in specs/paper.yaml (every default filled in, as the engine records them) and
    the kind info the engine would record."""
    import yaml

    from emoalign.resources import specs_dir
    from emoalign.spec.model import spec_model

    spec = yaml.safe_load((specs_dir() / "paper.yaml").read_text())
    entry = next((a for a in spec["analyses"] if a["id"] == aid), None)
    if entry is None:
        return {"id": aid, "kind": kind}, {}
    opts = spec_model().model_validate({"study": spec["study"], "analyses": [entry]}).analyses[0].model_dump(mode="json")
    info = {}
    if kind == "lmm":
        refs = dict(opts.get("reference_levels") or {})
        refs.setdefault("emotion", "angry") if "emotion" in opts["formula"] else None
        info = {"formula": opts["formula"], "df_method": opts["df_method"], "reference_levels": refs}
    elif kind == "variance_components":
        info = {"formula": "rating ~ 1 + emotion + (1|rater_id) + (1|image_id)"}
    elif kind == "group_bias":
        info = {"adjust": opts["adjust"], "family": opts["family"], "n_comparisons": opts["n_comparisons"]}
    return opts, info


def write_sample_results(out_dir, *, seed: int = 0, n_per_cell: int = 12, drop: tuple[str, ...] = (),
                         extra_analyses: bool = True, real_raters: tuple[str, ...] = ("beit",)) -> Path:
    """Write a synthetic, contract-conformant results folder for every analysis id of specs/paper.yaml.

    ``drop`` leaves analyses out (to test skipped sections); ``extra_analyses`` adds analyses the fixed
    report sections do not use (a second reliability analysis and a calibration-style table of an
    unknown kind) to exercise the generic renderer. Returns the folder.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    stim, mach = _simulate(rng, n_per_cell)
    tables: dict[str, tuple[str, pd.DataFrame, dict]] = {}
    vlm, fer_va = GROUPS["vlm"], GROUPS["fer_va"]

    hc = []
    for dim, alpha in (("valence", 0.81), ("arousal", 0.42), ("naturalness", 0.28)):
        hc.append(dict(raters="human", dimension=dim, metric="krippendorff_alpha", level="ordinal", estimate=alpha,
                       conf_low=alpha - 0.03, conf_high=alpha + 0.03, n=len(stim)))
    tables["human_ceiling"] = ("reliability", _frame(hc, "human_ceiling"), {})
    vc = []
    for dim, (rv, iv, ev) in (("valence", (0.35, 2.9, 1.4)), ("arousal", (0.9, 0.5, 1.8))):
        tot = rv + iv + ev
        for grp, v in (("rater_id", rv), ("image_id", iv), ("Residual", ev)):
            vc += [dict(dimension=dim, group=grp, metric="variance", estimate=v), dict(dimension=dim, group=grp, metric="share", estimate=v / tot)]
        vc.append(dict(dimension=dim, group=None, metric="rater_image_ratio", estimate=rv / iv))
    tables["variance_decomposition"] = ("variance_components", _frame(vc, "variance_decomposition"), {})
    tables["classification"] = ("classification", _classification(stim, mach, "classification"), {})
    mc = []
    raters = vlm + GROUPS["fer"]
    acc = {r: float(np.mean(mach[mach.rater == r].pred.to_numpy() == stim.emotion.to_numpy())) for r in raters}
    for i, a in enumerate(raters):
        for b in raters[i + 1:]:
            ca = mach[mach.rater == a].pred.to_numpy() == stim.emotion.to_numpy()
            cb = mach[mach.rater == b].pred.to_numpy() == stim.emotion.to_numpy()
            n01, n10 = int(np.sum(~ca & cb)), int(np.sum(ca & ~cb))
            chi = (abs(n01 - n10) - 1) ** 2 / max(n01 + n10, 1)
            mc.append(dict(rater=a, rater2=b, metric="mcnemar", estimate=acc[a] - acc[b], statistic=chi, df=1.0,
                           p_value=stats.chi2.sf(chi, 1), n=len(stim), n01=n01, n10=n10))
    mc = _frame(mc, "mcnemar")
    mc["p_adjusted"] = np.minimum(mc.p_value * len(mc), 1)
    tables["mcnemar"] = ("mcnemar", mc, {})
    ag, pts = _agreement(stim, mach, vlm + fer_va, "dimensional_agreement")
    tables["dimensional_agreement"] = ("agreement", ag, {"points": pts.assign(analysis_id="dimensional_agreement")})
    vb = _bias(stim, mach, vlm + fer_va, "valence", "valence_bias")
    ab = _bias(stim, mach, vlm + fer_va, "arousal", "arousal_bias")
    tables["valence_bias"] = ("group_bias", vb, {})
    tables["arousal_bias"] = ("group_bias", ab, {})
    tables["valence_emotion_lmm"] = ("lmm", pd.concat([_lmm(vb, r, "valence", "valence_emotion_lmm") for r in vlm]), {})
    tables["arousal_emotion_lmm"] = ("lmm", pd.concat([_lmm(ab, r, "arousal", "arousal_emotion_lmm") for r in vlm]), {})
    tables["response_diversity"] = ("response_diversity", _diversity(stim, mach, vlm + fer_va, "response_diversity", rng), {})
    tables["demographic_lmm"] = ("lmm", _demographic(rng, "demographic_lmm"), {})
    tables["race_emotion_accuracy"] = ("group_accuracy", _group_accuracy(stim, mach, "race_emotion_accuracy"), {})
    nat = []
    for e in EMOTIONS:
        x = np.clip(np.round(rng.normal(5.2 + (1.6 if e == "happy" else 0.5 if e == "neutral" else 0.0), 1.7, 5 * n_per_cell * 6)), 1, 9)
        nat += [dict(rater="human", dimension="naturalness", emotion=e, metric=m, estimate=float(v), n=x.size)
                for m, v in (("n_unique", len(np.unique(x))), ("sd", x.std(ddof=1)), ("mean", x.mean()), ("sd_ratio", 1.0))]
    tables["naturalness"] = ("response_diversity", _frame(nat, "naturalness"), {})
    if extra_analyses:
        rel = [dict(raters=f"{r},human", dimension=dim, metric="icc_a1", estimate=float(rng.uniform(0.3, 0.9)), n=len(stim))
               for r in vlm for dim in ("valence", "arousal")]
        rel = _frame(rel, "machine_icc")
        rel["conf_low"], rel["conf_high"] = rel.estimate - 0.06, rel.estimate + 0.06
        tables["machine_icc"] = ("reliability", rel, {})
        cal = [dict(rater=r, dimension="valence", metric="expected_calibration_error", estimate=float(rng.uniform(0.02, 0.2)), n=len(stim))
               for r in vlm]
        tables["vlm_calibration"] = ("probability_calibration", _frame(cal, "vlm_calibration"), {})

    analyses = []
    for aid, (kind, df, extra) in tables.items():
        if aid in drop:
            continue
        df = df.reset_index(drop=True)
        df.to_parquet(out / f"{aid}.parquet", index=False)
        ex = {}
        for name, edf in extra.items():
            edf.to_parquet(out / f"{aid}.{name}.parquet", index=False)
            ex[name] = f"{aid}.{name}.parquet"
        opts, info = _options(aid, kind)
        analyses.append(dict(id=aid, kind=kind, title=None, status="ok", seconds=0.1, rows=len(df), file=f"{aid}.parquet",
                             extra=ex, warnings=[], error=None, options=opts, info=info))
    cells = (stim.groupby(["race", "gender", "emotion"]).size().rename("n").reset_index().to_dict("records"))
    rater_rows = [dict(rater=r, family=p[0], simulated=r not in real_raters,
                       backend="simulated" if r not in real_raters else "fer", model_id=f"simulated/{r}",
                       strategy="context_carry" if p[0] == "vlm" else "classifier",
                       template_hash=hashlib.sha256(r.encode()).hexdigest()[:12] if p[0] == "vlm" else None,
                       n=len(stim), n_errors=0) for r, p in PROFILES.items()]
    manifest = {
        "spec": {"path": "/home/someone/study/specs/paper.yaml", "sha256": "0" * 64,
                 "labels": {"gemma3": "Gemma3-4B", "llama32v": "LLaMA-3.2-11B", "emonet": "EmoNet"},
                 "compare_to": {"published": "tae2026", "raters": {}}},
        "inputs": {"/home/someone/study/stimuli.parquet": "1" * 64, "/home/someone/study/humans.parquet": "2" * 64,
                   "/home/someone/study/runs/simulated/ratings.parquet": "3" * 64},
        "simulation": {"stimuli": True, "humans": True, "profile": "sample", "seed": seed},
        "versions": {"emoalign": "sample", "python": "3.11", "packages": {}, "R": "4.2.2", "R_packages": {}},
        "started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:00:10Z", "seconds": 10.0,
        "study": {"n_images": len(stim), "n_human_raters": 60, "n_trials": len(stim) * 5,
                  "trials_per_image": {"min": 5, "median": 5, "max": 5}, "design_columns": ["race", "gender", "emotion"],
                  "cells": [{k: (int(v) if k == "n" else v) for k, v in c.items()} for c in cells],
                  "scales": {"valence": [1, 9], "arousal": [1, 9], "naturalness": [1, 9]}, "emotions": EMOTIONS,
                  "groups": GROUPS},
        "raters": rater_rows,
        "analyses": analyses,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return out
