"""Human ratings from a crossed random-effects model, rounded and clipped to the integer scale.

For rater ``j`` and image ``i`` (intended emotion ``e``) on one dimension::

    x_ji = mu_e + u_i + r_j + g_j * (mu_e + u_i - m) + eps_ji
    y_ji = clip(floor(x_ji + 0.5), lo, hi)

``u_i ~ N(0, image_sd^2)`` (image effect within emotion), ``r_j ~ N(0, rater_sd^2)`` (rater
intercept, i.e. leniency), ``g_j ~ N(0, rater_slope_sd^2)`` (scale use: how strongly rater j
spreads the emotions apart; ``m`` is the mean of ``mu``), ``eps ~ N(0, sigma_e^2)``.

Optional planted effects shift the latent: ``effects`` by actor race/gender (image level) and
``rater_effects`` by rater gender / age (rater level); the target ``means`` then describe the
reference levels. The latent ``mu_e`` and ``sigma_e`` are solved exactly, per emotion, so that the rounded-and-clipped
ratings have the profile's target mean (``means``) and raw-trial SD (``trial_sd``): under the
model ``x`` given ``e`` is normal, and the moments of a rounded, clipped normal are sums of normal
CDF differences. The crossed design follows Baayen, Davidson & Bates (2008), J. Mem. Lang. 59:390-412.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats

from emoalign.errors import EmoalignError


def rounded_normal_moments(mu: float, sd: float, lo: int, hi: int) -> tuple[float, float]:
    """Mean and SD of ``clip(floor(X + 0.5), lo, hi)`` for ``X ~ N(mu, sd^2)`` (exact)."""
    k = np.arange(lo, hi + 1, dtype=float)
    edges = np.concatenate([[-np.inf], k[:-1] + 0.5, [np.inf]])
    p = np.diff(stats.norm.cdf((edges - mu) / sd))
    mean = float(p @ k)
    var = float(p @ (k - mean) ** 2)
    return mean, float(np.sqrt(max(var, 0.0)))


def solve_latent(mean: float, sd: float, lo: int, hi: int) -> tuple[float, float]:
    """The latent ``(mu, s)`` whose rounded, clipped normal has the given mean and SD."""

    def mu_for(s: float) -> float:
        return optimize.brentq(lambda m: rounded_normal_moments(m, s, lo, hi)[0] - mean, lo - 10 * s - 5, hi + 10 * s + 5)

    def sd_gap(s: float) -> float:
        return rounded_normal_moments(mu_for(s), s, lo, hi)[1] - sd

    s_lo, s_hi = 0.3, 8.0
    if sd_gap(s_lo) > 0 or sd_gap(s_hi) < 0:
        raise EmoalignError(f"no latent normal gives ratings with mean {mean} and SD {sd} on [{lo}, {hi}]",
                            hint="lower trial_sd (or move the mean away from the scale ends)")
    s = optimize.brentq(sd_gap, s_lo, s_hi, xtol=1e-6)
    return mu_for(s), s


@dataclass(frozen=True)
class DimensionModel:
    """Solved parameters of one rated dimension (all per emotion where indexed by emotion)."""

    name: str
    mu: dict
    residual_sd: dict
    image_sd: float
    rater_sd: float
    rater_slope_sd: float
    center: float


def solve_dimension(name: str, spec: dict, emotions: list[str], scale: tuple[int, int]) -> DimensionModel:
    """Turn a profile's ``humans.dimensions.<name>`` block into latent parameters."""
    lo, hi = int(scale[0]), int(scale[1])
    tsd = spec["trial_sd"]
    tsd = {e: float(tsd[e] if isinstance(tsd, dict) else tsd) for e in emotions}
    img, rat, slope = float(spec["image_sd"]), float(spec["rater_sd"]), float(spec.get("rater_slope_sd", 0.0))
    latent = {e: solve_latent(float(spec["means"][e]), tsd[e], lo, hi) for e in emotions}
    mu = {e: latent[e][0] for e in emotions}
    center = float(np.mean(list(mu.values())))
    resid = {}
    for e in emotions:
        var = latent[e][1] ** 2 - img ** 2 - rat ** 2 - slope ** 2 * (mu[e] - center) ** 2
        if var <= 0.01:
            raise EmoalignError(
                f"humans.dimensions.{name}: trial_sd for {e} ({tsd[e]}) is too small for image_sd, rater_sd and rater_slope_sd",
                hint="raise trial_sd or lower the random-effect SDs")
        resid[e] = float(np.sqrt(var))
    return DimensionModel(name, mu, resid, img, rat, slope, center)


def _image_shift(spec: dict, stimuli: pd.DataFrame) -> np.ndarray:
    """Planted actor effects: ``effects: {race|gender: {level: shift}}`` added to the latent rating."""
    out = np.zeros(len(stimuli))
    for factor, levels in (spec.get("effects") or {}).items():
        if factor not in stimuli:
            raise EmoalignError(f"humans effects name {factor!r}, which is not a design column", hint="use race or gender")
        for level, shift in levels.items():
            out += np.where(stimuli[factor].to_numpy() == level, float(shift), 0.0)
    return out


def _rater_shift(spec: dict, raters: pd.DataFrame) -> np.ndarray:
    """Planted rater effects: ``rater_effects: {gender: {level: shift}, age_per_decade: slope}`` (age centred at 45)."""
    eff = spec.get("rater_effects") or {}
    out = np.zeros(len(raters))
    for level, shift in (eff.get("gender") or {}).items():
        out += np.where(raters["rater_gender"].to_numpy() == level, float(shift), 0.0)
    if eff.get("age_per_decade"):
        out += float(eff["age_per_decade"]) * (raters["rater_age"].to_numpy() - 45) / 10
    return out


def simulate_humans(stimuli: pd.DataFrame, raters: pd.DataFrame, assignment: np.ndarray, humans: dict,
                    emotions: list[str], rng: np.random.Generator) -> tuple[pd.DataFrame, dict, dict]:
    """Simulate every trial. Returns (trials table, latent image effects per dimension, solved models)."""
    lo, hi = humans["scale"]
    n_img = len(stimuli)
    emo_idx = stimuli["emotion"].map({e: k for k, e in enumerate(emotions)}).to_numpy()
    rater_of = np.repeat(np.arange(len(raters)), assignment.shape[1])
    image_of = assignment.ravel()
    out = pd.DataFrame({"rater_id": raters["rater_id"].to_numpy()[rater_of], "image_id": stimuli["image_id"].to_numpy()[image_of]})
    image_effects, models = {}, {}
    for dim, spec in humans["dimensions"].items():
        m = solve_dimension(dim, spec, emotions, (lo, hi))
        models[dim] = m
        mu = np.array([m.mu[e] for e in emotions])[emo_idx]
        sig = np.array([m.residual_sd[e] for e in emotions])[emo_idx]
        u = rng.normal(0.0, m.image_sd, n_img)
        r = rng.normal(0.0, m.rater_sd, len(raters))
        g = rng.normal(0.0, m.rater_slope_sd, len(raters)) if m.rater_slope_sd > 0 else np.zeros(len(raters))
        signal = mu[image_of] + u[image_of] + _image_shift(spec, stimuli)[image_of]
        x = (signal + r[rater_of] + _rater_shift(spec, raters)[rater_of] + g[rater_of] * (signal - m.center)
             + sig[image_of] * rng.standard_normal(len(image_of)))
        out[dim] = np.clip(np.floor(x + 0.5), lo, hi).astype(float)
        image_effects[dim] = u
    out = out.merge(raters, on="rater_id", how="left")
    return out, image_effects, models
