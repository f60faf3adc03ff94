"""Simulated machine raters (VLM and FER profiles) with context-carry error propagation.

Classification: the predicted label of an image with intended emotion ``e`` is drawn from row
``e`` of the rater's confusion matrix (``confusion``, or ``accuracy`` on the diagonal with errors
spread by ``machines.confusion_weights``); ``accuracy_by`` replaces the diagonal for a race or
gender level (e.g. Gemma3 angry: Black .613, Korean .225; Tae et al. 2026 §4.5). ``p_emotion_<k>``
is ``w * onehot(pred) + (1 - w) * row_e`` (row smoothed) with ``w ~ U(confidence)``, ``w > .5``, so the
distribution's argmax is always the greedy answer.

Label prior (``label_prior``, a rater knob): the rater's labels mix face evidence with a prior over labels
``pi`` (a VLM that says "neutral" when in doubt). Its probabilities are then ``softmax(log row + g)``
with Gumbel noise ``g`` drawn *given* that the argmax is the label already drawn (top-down Gumbel
sampling: the maximum is Gumbel(logsumexp), the others Gumbels truncated below it; Maddison, Tarlow &
Minka 2014), so (label, probabilities) is distributed as a Gumbel-max draw from the confusion row and the
fitted confusion rows stay exact. Dividing such probabilities by ``pi`` and re-taking the argmax draws the
label from the prior-free row ``normalise(row / pi)``: what ``prior_correction`` recovers (planted sad
recall after correction = ``normalise(C[sad] / pi)[sad]``). ``machines.content_free: n`` adds ``n``
content-free inputs (``image_id`` ``content_free_1..n``, not stimuli) answered by such raters with
``softmax(log pi + e)``, ``e ~ N(0, 0.1^2)``: the prior a blank image reveals (Zhao et al. 2021).

Dimensions, VLM prototype lookup (a dimension with ``prototypes``; Tae et al. 2026 §5.1: VLMs answer
1-6 fixed values per emotion category, whatever the face): the rating depends on the *predicted* label
``p`` (context carry, §3.3: a misread face is rated under the wrong emotional frame), not on the image::

    center   = m_p + leak * (H_e - H_p) * [p != e] + effects(race, gender)
    rating   = clip(floor(center + s_p * z + 1/2), lo, hi)             z ~ N(0, 1): an integer token
    expected = E[rating | center]                                      (recorded as ``<dim>_expected``)

``m_p``/``s_p`` are the latent value and spread of label ``p``'s prototype (a small ``s_p`` gives one or
two values per label); ``leak`` is the share of the human difference between the face's emotion ``e``
and the label read ``p`` that a misread face keeps (a sad face called neutral is rated a little below the
neutral prototype); ``H`` are the human target means. ``scripts/calibrate_profile.py`` fits ``m``,
``s``, ``leak`` and the confusion rows to the paper's published values; the dimension's ``bias`` and
``sd`` are then the targets of that fit (the calibration report sets the expected values beside them).

Dimensions, calibrated targets (every other dimension: FER regression heads, or a VLM profile without
``prototypes``): for an image with intended emotion ``e``, predicted ``p``, human latent image effect
``u_i`` and target human means ``H``::

    proto_p  = H_p + bias_p                                   (what the rater says for a face it calls p)
    center   = proto_p + leak * (H_e - H_p)   if context_carry (error propagation, Tae et al. 2026 §3.3)
             = H_e + bias_e                   otherwise (FER regression heads do not see the label)
    latent   = center + c_e + image_weight * u_i + effects(race, gender) + sigma_e * z
    rating   = stochastic_round(clip(latent, lo, hi))   (discrete: VLM integer tokens) or clip(latent)

``sd_inflation`` (``{emotion: factor}``, default 1) multiplies the within-emotion spread ``image_weight * u_i +
sigma_e * z`` after the calibration below, so the emotion means keep their targets (up to clipping) and the
SD grows by the factor: a planted per-emotion variance inflation that ``calibration`` must undo.
``stochastic_round(x) = floor(x) + Bernoulli(frac(x))`` keeps ``E[rating] = x`` (recorded as
``<dim>_expected``, the probability-weighted rating). The per-emotion offset ``c_e`` and noise
``sigma_e`` are calibrated by Monte Carlo on a large sample drawn with a fixed ``calibration_seed``
(independent of the study seed, so sampling variability across seeds stays honest) so that the
expected machine-minus-human mean per intended emotion equals ``bias_e`` and the within-emotion SD
of ratings equals ``sd_e`` where attainable (the mean wins: near a scale end the SD target is capped
at 0.6 * sqrt((hi - m)(m - lo)) for target mean ``m``, a fraction of the Bhatia-Davis bound on the
variance). Race/gender ``effects`` are the expected differences from the reference level (the levels
not listed, e.g. Caucasian / male); their latent sizes are calibrated too, so clipping and rounding
at the scale ends do not shrink them (in prototype mode they are centred on the design, so they move
the groups apart without moving the emotion means). ``manifest.json`` records the expected
(calibrated) values beside the targets.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from emoalign.errors import EmoalignError


def confusion_matrix(rater: dict, name: str, emotions: list[str], weights: dict | None) -> np.ndarray:
    """Row-stochastic confusion matrix (rows: intended emotion, columns: predicted) of a rater profile."""
    k = len(emotions)
    C = np.zeros((k, k))
    rows = rater.get("confusion") or {}
    acc = rater.get("accuracy") or {}
    for a, e in enumerate(emotions):
        if e in rows:
            for lab, p in rows[e].items():
                C[a, emotions.index(lab)] = float(p)
        elif e in acc:
            C[a] = _row_with_accuracy(np.eye(k)[a] * 0, a, float(acc[e]), emotions, weights)
        else:
            raise EmoalignError(f"machines.raters.{name}: no confusion row or accuracy for emotion {e!r}",
                                hint="add it under `confusion` or `accuracy`")
        C[a] /= C[a].sum()
    return C


def _row_with_accuracy(row: np.ndarray, a: int, acc: float, emotions: list[str], weights: dict | None) -> np.ndarray:
    off = row.copy()
    off[a] = 0.0
    if off.sum() <= 0:
        w = (weights or {}).get(emotions[a]) or {}
        off = np.array([float(w.get(lab, 1.0)) if i != a else 0.0 for i, lab in enumerate(emotions)])
        if off.sum() <= 0:
            off = np.ones(len(emotions))
            off[a] = 0.0
    out = off / off.sum() * (1.0 - acc)
    out[a] = acc
    return out


def image_rows(C: np.ndarray, rater: dict, emotions: list[str], emo_idx: np.ndarray, demo: pd.DataFrame,
               weights: dict | None) -> np.ndarray:
    """Per-image confusion rows, with ``accuracy_by`` (race/gender-specific accuracy) applied."""
    R = C[emo_idx].copy()
    for factor, levels in (rater.get("accuracy_by") or {}).items():
        col = demo[factor].to_numpy()
        for level, accs in levels.items():
            for e, acc in accs.items():
                a = emotions.index(e)
                mask = (col == level) & (emo_idx == a)
                if mask.any():
                    R[mask] = _row_with_accuracy(C[a], a, float(acc), emotions, weights)
    return R


def _draw_labels(R: np.ndarray, u: np.ndarray) -> np.ndarray:
    cum = np.cumsum(R, axis=1)
    cum[:, -1] = 1.0
    return (u[:, None] > cum).sum(axis=1)


def _effect_design(spec: dict, demo: pd.DataFrame, design: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indicator columns of the planted effects, their targets, and each column's reference mask."""
    cols, targets, refs = [], [], []
    for factor, levels in (spec.get("effects") or {}).items():
        col = demo[factor].to_numpy()
        all_levels = design["races" if factor == "race" else "genders"]
        ref_levels = [lv for lv in all_levels if lv not in levels]
        ref = np.isin(col, ref_levels) if ref_levels else np.ones(len(col), bool)
        for level, value in levels.items():
            cols.append(col == level)
            targets.append(float(value))
            refs.append(ref)
    if not cols:
        return np.zeros((len(demo), 0)), np.zeros(0), np.zeros((len(demo), 0), bool)
    return np.column_stack(cols).astype(float), np.array(targets), np.column_stack(refs)


@dataclass
class DimParams:
    """A rater's profile on one dimension, resolved against the human target means."""

    H: np.ndarray          # human target mean per emotion
    bias: np.ndarray
    sd: np.ndarray
    image_weight: float
    leak: float
    context_carry: bool
    discrete: bool
    lo: float
    hi: float
    inflation: np.ndarray | None = None   # per emotion: factor on the within-emotion spread (sd_inflation)

    def center(self, e: np.ndarray, p: np.ndarray) -> np.ndarray:
        if not self.context_carry:
            return self.H[e] + self.bias[e]
        proto = self.H[p] + self.bias[p]
        return np.where(p == e, proto, proto + self.leak * (self.H[e] - self.H[p]))

    def latent(self, e, p, u, eff, z, c, sigma, inflate: bool = False) -> np.ndarray:
        k = self.inflation[e] if inflate and self.inflation is not None else 1.0
        return self.center(e, p) + c[e] + eff + k * (self.image_weight * u + sigma[e] * z)

    def output(self, latent: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.clip(latent, self.lo, self.hi)
        if not self.discrete:
            return x, x
        f = np.floor(x)
        return f + (v < (x - f)), x


def _calibrate(dp: DimParams, e, p, u, X, eff_target, refs, z, v, n_emo: int, iters: int = 100):
    """Per-emotion offset ``c``, noise ``sigma`` and effect sizes ``beta`` so that the mean bias per emotion,
    the within-emotion SD and the level-minus-reference differences hit their targets (where attainable:
    clipping at the scale ends attenuates shifts, which the calibrated latent sizes undo)."""
    c = np.zeros(n_emo)
    target = dp.H + dp.bias
    # the mean wins over the SD: near a scale end only so much spread fits (Bhatia-Davis bound, scaled)
    sd_t = np.minimum(np.maximum(dp.sd, 0.0), 0.6 * np.sqrt(np.clip((dp.hi - target) * (target - dp.lo), 0, None)))
    var = sd_t ** 2 * 0.5
    beta = eff_target.copy()
    counts = np.bincount(e, minlength=n_emo)
    cap = 3 * np.abs(eff_target) + 1
    for _ in range(iters):
        y, _x = dp.output(dp.latent(e, p, u, X @ beta, z, c, np.sqrt(var)), v)
        mean = np.bincount(e, weights=y, minlength=n_emo) / counts
        sd = np.sqrt(np.maximum(np.bincount(e, weights=y ** 2, minlength=n_emo) / counts - mean ** 2, 0))
        c += target - mean
        var = np.maximum(var + 0.8 * (sd_t ** 2 - sd ** 2), 0.0)
        diff = np.array([y[X[:, k] > 0].mean() - y[refs[:, k]].mean() for k in range(X.shape[1])])
        beta = np.clip(beta + 0.8 * (eff_target - diff), -cap, cap)
        if (np.all(np.abs(target - mean) < 2e-3) and np.all(np.abs(eff_target - diff) < 5e-3)
                and np.all((np.abs(sd - sd_t) < 5e-3) | ((var == 0) & (sd > sd_t)))):
            break
    return c, np.sqrt(var), beta, {"mean": mean, "sd": sd, "effects": diff}


def rounded_pmf(center: np.ndarray, sd: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of the integer ratings ``lo..hi`` of ``clip(floor(center + sd * z + 1/2))`` per item.

    Returns ``(values, pmf)`` with ``pmf`` of shape ``(len(center), len(values))``; ``sd = 0`` is a point mass."""
    from scipy.special import ndtr

    k = np.arange(int(lo), int(hi) + 1, dtype=float)
    edges = np.concatenate([[-np.inf], k[:-1] + 0.5, [np.inf]])
    s = np.maximum(np.asarray(sd, float), 1e-9)[:, None]
    cdf = ndtr((edges[None, :] - np.asarray(center, float)[:, None]) / s)
    return k, np.diff(cdf, axis=1)


@dataclass
class PrototypeParams:
    """A VLM's prototype lookup on one dimension: per predicted label a latent value and spread (see module doc)."""

    H: np.ndarray          # human target mean per emotion
    mean: np.ndarray       # m_p
    sd: np.ndarray         # s_p
    leak: float
    lo: float
    hi: float

    def center(self, e: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.mean[p] + np.where(p == e, 0.0, self.leak * (self.H[e] - self.H[p]))

    def moments(self, center: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact E[rating] and E[rating^2] per item (over the token draw)."""
        k, pmf = rounded_pmf(center, self.sd[p], self.lo, self.hi)
        return pmf @ k, pmf @ (k ** 2)

    def draw(self, center: np.ndarray, p: np.ndarray, z: np.ndarray) -> np.ndarray:
        return np.clip(np.floor(center + self.sd[p] * z + 0.5), self.lo, self.hi)


def _calibrate_prototype_effects(pp: PrototypeParams, e, p, X, eff_target, refs, n_emo: int, iters: int = 60):
    """Latent sizes of the planted effects (columns of ``X``, centred on the sample) so that the expected
    level-minus-reference differences of the ratings hit their targets; returns (beta, column means, report)."""
    centre = X.mean(axis=0) if X.shape[1] else np.zeros(0)
    Xc = X - centre
    beta = eff_target.copy()
    base = pp.center(e, p)
    for _ in range(iters if X.shape[1] else 1):
        m1, m2 = pp.moments(base + Xc @ beta, p)
        diff = np.array([m1[X[:, k] > 0].mean() - m1[refs[:, k]].mean() for k in range(X.shape[1])])
        if not X.shape[1] or np.all(np.abs(eff_target - diff) < 2e-3):
            break
        beta = beta + 0.9 * (eff_target - diff)
    counts = np.bincount(e, minlength=n_emo)
    mean = np.bincount(e, weights=m1, minlength=n_emo) / counts
    sd = np.sqrt(np.maximum(np.bincount(e, weights=m2, minlength=n_emo) / counts - mean ** 2, 0))
    return beta, centre, {"mean": mean, "sd": sd, "effects": diff if X.shape[1] else np.zeros(0)}


def label_prior(rater: dict, emotions: list[str]) -> np.ndarray | None:
    """The rater's label prior ``pi`` (relative weights per label, unlisted labels 1, normalised), or None."""
    lp = rater.get("label_prior")
    if not lp:
        return None
    w = np.array([float(lp.get(e, 1.0)) for e in emotions])
    return w / w.sum()


def gumbel_probabilities(row: np.ndarray, pred: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``softmax(log row + g)`` per item with Gumbel noise ``g`` conditioned on ``argmax = pred``.

    Top-down sampling (Maddison, Tarlow & Minka 2014, "A* sampling"): the maximum ``M`` of the perturbed
    log-probabilities is Gumbel(logsumexp(log row)) whatever the argmax, and every other entry is a
    Gumbel with location ``log row_k`` truncated below ``M``: ``-log(exp(-M) + exp(-(log row_k + G)))``.
    """
    from scipy.special import logsumexp, softmax

    phi = np.log(row)
    n, k = phi.shape
    top = logsumexp(phi, axis=1) + rng.gumbel(size=n)
    other = phi + rng.gumbel(size=(n, k))
    z = -np.logaddexp(-top[:, None], -other)
    z[np.arange(n), pred] = top
    return softmax(z, axis=1)


def content_free_rows(name: str, family: str, prior: np.ndarray, emotions: list[str], n: int,
                      rng: np.random.Generator) -> pd.DataFrame:
    """A rater's answers to ``n`` content-free inputs: ``softmax(log pi + e)``, ``e ~ N(0, 0.1^2)``."""
    from scipy.special import softmax

    p = softmax(np.log(prior)[None, :] + rng.normal(0, 0.1, (n, len(emotions))), axis=1)
    df = pd.DataFrame({"rater": name, "image_id": [f"content_free_{i + 1}" for i in range(n)],
                       "emotion": np.array(emotions, dtype=object)[p.argmax(axis=1)], "family": family,
                       "valence": np.nan, "arousal": np.nan})
    for k, lab in enumerate(emotions):
        df[f"p_emotion_{lab}"] = p[:, k]
    return df


def condition_rater(name: str, cname: str, cond: dict, base: pd.DataFrame, pred: np.ndarray, w: np.ndarray,
                    smooth: np.ndarray, drawn: dict, emotions: list[str], emo_idx: np.ndarray,
                    seed: int) -> tuple[pd.DataFrame, dict]:
    """Rater ``<name>@<cname>``: the base rater under a prompt condition with planted effects (``conditions``).

    ``flip_rate``: each image's step-1 label is replaced, with this probability, by one of the other labels
    (uniformly), so the expected flip rate against the base rater is ``flip_rate``. ``shift``
    (``{dimension: number or {emotion: number}}``, by intended emotion) is added to the latent rating
    before clipping and rounding, with the base rater's own noise draws, so the paired shift is the planted
    one wherever no scale end clips it. ``strategy: independent`` rates each face as its intended emotion
    whatever its label (no error propagation); ``context_carry`` (default) rates it under its label, as the
    base VLM does. Draws come from a stream keyed by the study seed and the condition rater's name.
    """
    import dataclasses

    full = f"{name}@{cname}"
    k, n = len(emotions), len(pred)
    frng = np.random.default_rng([seed, 9, *full.encode()])
    flip = frng.random(n) < float(cond.get("flip_rate", 0.0))
    pc = pred.copy()
    pc[flip] = (pred[flip] + frng.integers(1, k, int(flip.sum()))) % k
    carry = cond.get("strategy", "context_carry") == "context_carry"
    out = base[["rater", "image_id", "family"]].copy()
    out["rater"] = full
    out["emotion"] = np.array(emotions, dtype=object)[pc]
    probs = w[:, None] * np.eye(k)[pc] + (1 - w)[:, None] * smooth
    for j, lab in enumerate(emotions):
        out[f"p_emotion_{lab}"] = probs[:, j]
    shifts = cond.get("shift") or {}
    for dim in ("valence", "arousal"):
        if dim not in drawn:
            out[dim] = np.nan
            continue
        s = shifts.get(dim, 0.0)
        add = (np.array([float(s.get(e, 0.0)) for e in emotions])[emo_idx] if isinstance(s, dict)
               else np.full(n, float(s)))
        how, params, extra, noise = drawn[dim]
        if how == "prototypes":
            label = pc if carry else emo_idx
            center = params.center(emo_idx, label) + extra + add
            out[dim] = params.draw(center, label, noise)
            out[f"{dim}_expected"] = np.round(params.moments(center, label)[0], 4)
        else:
            u, eff, z, c, sigma = extra
            dpc = dataclasses.replace(params, context_carry=params.context_carry and carry)
            y, x = dpc.output(dpc.latent(emo_idx, pc, u, eff, z, c, sigma, inflate=True) + add, noise)
            out[dim] = y if dpc.discrete else np.round(y, 4)
            if dpc.discrete:
                out[f"{dim}_expected"] = np.round(x, 4)
    out["strategy"] = ("simulated_context_carry" if carry else "simulated_independent") if base["family"].iat[0] == "vlm" \
        else "simulated_fer"
    rep = {"condition_of": name, "flip_rate": float(cond.get("flip_rate", 0.0)), "flipped": float(flip.mean()),
           "shift": shifts, "strategy": "context_carry" if carry else "independent"}
    return out, rep


def simulate_machines(stimuli: pd.DataFrame, image_effects: dict, profile: dict, seed: int) -> tuple[pd.DataFrame, dict]:
    """Ratings of every simulated machine rater; returns (machines table without provenance, calibration report).

    Each rater draws from its own random stream keyed by ``seed`` and its name."""
    design, humans, machines = profile["design"], profile["humans"], profile.get("machines") or {}
    emotions = list(design["emotions"])
    lo, hi = humans["scale"]
    weights = machines.get("confusion_weights")
    n_cal = int(machines.get("calibration_draws", 4000))
    cal_seed = int(machines.get("calibration_seed", 20260521))
    emo_idx = stimuli["emotion"].map({e: k for k, e in enumerate(emotions)}).to_numpy()
    n = len(stimuli)
    frames, report, cf_rows = [], {}, []
    for name, r in (machines.get("raters") or {}).items():
        family = r["family"]
        # one stream per rater (keyed by study seed and name): adding or removing a rater leaves the others as they were
        rng = np.random.default_rng([int(seed), 7, *name.encode()])
        C = confusion_matrix(r, name, emotions, weights)
        R = image_rows(C, r, emotions, emo_idx, stimuli, weights)
        pred = _draw_labels(R, rng.random(n))
        lo_w, hi_w = r.get("confidence", machines.get("confidence", [0.55, 0.98]))
        w = rng.uniform(max(lo_w, 0.5 + 1e-6), hi_w, n)
        smooth = (R + 0.005) / (1 + 0.005 * len(emotions))  # no exact zeros, as from a softmax
        prior = label_prior(r, emotions)
        # the label-prior model draws from its own stream, so the rest of the rater's draws stay as they were
        prng = np.random.default_rng([int(seed), 8, *name.encode()])
        probs = (w[:, None] * np.eye(len(emotions))[pred] + (1 - w)[:, None] * smooth if prior is None
                 else gumbel_probabilities(smooth, pred, prng))
        df = pd.DataFrame({"rater": name, "image_id": stimuli["image_id"].to_numpy(),
                           "emotion": np.array(emotions, dtype=object)[pred], "family": family})
        for k, lab in enumerate(emotions):
            df[f"p_emotion_{lab}"] = probs[:, k]
        rep = {"accuracy": {e: float(C[a, a]) for a, e in enumerate(emotions)}}
        if prior is not None:
            free = C / prior[None, :]
            free /= free.sum(axis=1, keepdims=True)
            rep["label_prior"] = {e: round(float(p), 4) for e, p in zip(emotions, prior)}
            rep["prior_free_recall"] = {e: round(float(free[a, a]), 4) for a, e in enumerate(emotions)}
            n_cf = int(machines.get("content_free", 0) or 0)
            if n_cf:
                cf_rows.append(content_free_rows(name, family, prior, emotions, n_cf, prng))
        # calibration sample: fixed seed per rater, balanced demographics, same model as the study
        crng = np.random.default_rng([cal_seed, *name.encode()])
        cells = len(design["races"]) * len(design["genders"])
        n_cal = -(-n_cal // cells) * cells
        ce = np.repeat(np.arange(len(emotions)), n_cal)
        cdemo = pd.DataFrame({
            "race": np.resize(np.repeat(design["races"], len(design["genders"])), len(ce)),
            "gender": np.resize(np.tile(design["genders"], len(design["races"])), len(ce)),
        })
        cR = image_rows(C, r, emotions, ce, cdemo, weights)
        cp = _draw_labels(cR, crng.random(len(ce)))
        drawn: dict[str, tuple] = {}   # per dimension: what the condition raters below redraw from
        for dim in ("valence", "arousal"):
            spec = r.get(dim)
            if spec is None:
                df[dim] = np.nan
                continue
            hspec = humans["dimensions"][dim]
            if spec.get("prototypes"):
                H = np.array([float(hspec["means"][e]) for e in emotions])
                pp = PrototypeParams(H=H, mean=np.array([float(spec["prototypes"][e][0]) for e in emotions]),
                                     sd=np.array([float(spec["prototypes"][e][1]) for e in emotions]),
                                     leak=float(spec.get("leak", 0.0)), lo=float(lo), hi=float(hi))
                Xc, eff_t, refs = _effect_design(spec, cdemo, design)
                beta, centre, got = _calibrate_prototype_effects(pp, ce, cp, Xc, eff_t, refs, len(emotions))
                Xs, _, _ = _effect_design(spec, stimuli, design)
                center = pp.center(emo_idx, pred) + (Xs - centre) @ beta if Xs.shape[1] else pp.center(emo_idx, pred)
                z = rng.standard_normal(n)
                df[dim] = pp.draw(center, pred, z)
                df[f"{dim}_expected"] = np.round(pp.moments(center, pred)[0], 4)
                drawn[dim] = ("prototypes", pp, center - pp.center(emo_idx, pred), z)
                # with prototypes, `bias` and `sd` are the published targets the prototypes were fitted to
                rep[dim] = {e: {"target_bias": (spec.get("bias") or {}).get(e),
                                "expected_bias": round(float(got["mean"][a] - H[a]), 4),
                                "target_sd": (spec.get("sd") or {}).get(e), "expected_sd": round(float(got["sd"][a]), 4),
                                "prototype": [float(pp.mean[a]), float(pp.sd[a])]}
                            for a, e in enumerate(emotions)}
                names = [f"{f}:{lv}" for f, lvs in (spec.get("effects") or {}).items() for lv in lvs]
                rep[f"{dim}_effects"] = {nm: {"target": float(t), "expected": round(float(g), 4), "latent": round(float(b), 4)}
                                         for nm, t, g, b in zip(names, eff_t, got["effects"], beta)}
                continue
            dp = DimParams(
                H=np.array([float(hspec["means"][e]) for e in emotions]),
                bias=np.array([float(spec["bias"][e]) for e in emotions]),
                sd=np.array([float(spec["sd"][e]) for e in emotions]),
                image_weight=float(spec.get("image_weight", 1.0 if family == "fer" else 0.3)),
                leak=float(spec.get("leak", 0.5)),
                context_carry=bool(spec.get("context_carry", family == "vlm")),
                discrete=bool(spec.get("discrete", family == "vlm")),
                lo=float(lo), hi=float(hi),
                inflation=(np.array([float((spec.get("sd_inflation") or {}).get(e, 1.0)) for e in emotions])
                           if spec.get("sd_inflation") else None),
            )
            img_sd = float(hspec["image_sd"])
            Xc, eff_t, refs = _effect_design(spec, cdemo, design)
            c, sigma, beta, got = _calibrate(dp, ce, cp, crng.normal(0, img_sd, len(ce)), Xc, eff_t, refs,
                                             crng.standard_normal(len(ce)), crng.random(len(ce)), len(emotions))
            Xs, _, _ = _effect_design(spec, stimuli, design)
            z = rng.standard_normal(n)
            v = rng.random(n)
            y, x = dp.output(dp.latent(emo_idx, pred, image_effects[dim], Xs @ beta, z, c, sigma, inflate=True), v)
            drawn[dim] = ("calibrated", dp, (image_effects[dim], Xs @ beta, z, c, sigma), v)
            df[dim] = y if dp.discrete else np.round(y, 4)
            if dp.discrete:
                df[f"{dim}_expected"] = np.round(x, 4)
            rep[dim] = {e: {"target_bias": float(dp.bias[a]), "expected_bias": round(float(got["mean"][a] - dp.H[a]), 4),
                            "target_sd": float(dp.sd[a]), "expected_sd": round(float(got["sd"][a]), 4),
                            "offset": round(float(c[a]), 4), "noise_sd": round(float(sigma[a]), 4),
                            **({"sd_inflation": float(dp.inflation[a])} if dp.inflation is not None else {})}
                        for a, e in enumerate(emotions)}
            names = [f"{f}:{lv}" for f, lvs in (spec.get("effects") or {}).items() for lv in lvs]
            rep[f"{dim}_effects"] = {nm: {"target": float(t), "expected": round(float(g), 4), "latent": round(float(b), 4)}
                                     for nm, t, g, b in zip(names, eff_t, got["effects"], beta)}
        df["strategy"] = "simulated_context_carry" if family == "vlm" else "simulated_fer"
        frames.append(df)
        report[name] = rep
        for cname, cond in (r.get("conditions") or {}).items():
            cdf, report[f"{name}@{cname}"] = condition_rater(name, cname, cond or {}, df, pred, w, smooth, drawn,
                                                              emotions, emo_idx, int(seed))
            frames.append(cdf)
    if not frames:
        return pd.DataFrame(columns=["rater", "image_id", "emotion", "valence", "arousal"]), report
    out = pd.concat(frames + cf_rows, ignore_index=True)
    out["strategy"] = out["strategy"].fillna(out["family"].map({"vlm": "simulated_context_carry"})).fillna("simulated_fer")
    out["label_order"] = json.dumps(emotions)
    return out, report
