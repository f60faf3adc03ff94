"""How honest are the human_percentile intervals? Simulate the paper-size study over many seeds and compare.

For each seed (new raters, images and machine draws) of the paper profile, and of a synthetic study whose
machine is exactly one more human (true percentile 50), it computes the machine's percentile among the human
raters and its mean agreement, with the pigeonhole bootstrap (raters and images) and with raters alone.
Printed per statistic: the mean estimate, the SD of the estimates across seeds (the sampling SD the
intervals should reflect), the mean bootstrap SD of each scheme, the mean shift of the replicates from
the estimate, and the coverage of the two-way intervals (percentile, recentred on the estimate, and their
hull, which human_percentile reports) of the mean estimate over seeds (a stand-in for the truth).

    PYTHONPATH=python python benchmarks/bench_percentile_ci.py --seeds 20 --reps 300
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd

from emoalign.analysis.stats.krippendorff import bootstrap_weights
from emoalign.analysis.stats.rater_percentile import Trials, loo_agreement, pigeonhole_bootstrap, summarise
from emoalign.analysis.stats.weighted import hull_percentile_ci, percentile_ci, recentred_percentile_ci
from emoalign.simulate import simulate_study

CASES = (("mobilevit", "arousal"), ("gemma3", "arousal"), ("gemma3", "valence"))
STATS = ("percentile_r", "percentile_mae", "machine_r", "machine_mae")


def crowd(seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A synthetic study whose machine is exactly one more human (true percentile 50): 600 images, 200 raters x 100."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(5, 1.2, 600)
    parts = []
    for j in range(200):
        imgs = rng.choice(600, 100, replace=False)
        parts.append(pd.DataFrame({"rater_id": f"h{j}", "image_id": imgs.astype(str),
                                   "valence": truth[imgs] + rng.normal(0, 1, 100)}))
    ma = pd.DataFrame({"rater": "like_a_human", "image_id": np.arange(600).astype(str),
                       "valence": truth + rng.normal(0, 1, 600)})
    return pd.concat(parts, ignore_index=True), ma


def one_seed(seed: int, reps: int, folder: str) -> list[dict]:
    res = simulate_study(f"{folder}/s{seed}", profile="paper", seed=seed, images=False, force=True, progress=False)
    studies = [(pd.read_parquet(res.humans), pd.read_parquet(res.machines), CASES), (*crowd(seed), [("like_a_human", "valence")])]
    return [r for hu, ma, cases in studies for r in one_study(seed, reps, hu, ma, cases)]


def one_study(seed: int, reps: int, hu: pd.DataFrame, ma: pd.DataFrame, cases) -> list[dict]:
    rows = []
    for rater, dim in cases:
        m = ma[ma["rater"] == rater].set_index("image_id")[dim]
        rc, _ = pd.factorize(hu["rater_id"])
        ic, iids = pd.factorize(hu["image_id"])
        tr = Trials(rc, ic, hu[dim].to_numpy(float), m.reindex(iids).to_numpy(float))
        agree = loo_agreement(tr)
        point = {k: float(v[0]) for k, v in summarise(agree).items()}
        two = pigeonhole_bootstrap(tr, reps, seed=1)
        V = bootstrap_weights(tr.n_raters, reps, np.random.default_rng(2))
        raters_only = summarise({k: np.repeat(v, reps, axis=0) for k, v in agree.items()}, V)
        for k in STATS:
            rows.append(dict(seed=seed, rater=rater, dimension=dim, stat=k, estimate=point[k],
                             sd_two_way=float(np.std(two[k])), shift_two_way=float(np.mean(two[k]) - point[k]),
                             sd_raters_only=float(np.std(raters_only[k])),
                             pct=percentile_ci(two[k])[:2], recentred=recentred_percentile_ci(two[k], point[k])[:2],
                             hull=hull_percentile_ci(two[k], point[k])[:2]))
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--reps", type=int, default=300)
    args = ap.parse_args()
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [r for s in range(100, 100 + args.seeds) for r in one_seed(s, args.reps, tmp)]
    df = pd.DataFrame(rows)
    truth = df.groupby(["rater", "dimension", "stat"])["estimate"].transform("mean")
    df["cover_pct"] = [lo <= t <= hi for (lo, hi), t in zip(df["pct"], truth)]
    df["cover_recentred"] = [lo <= t <= hi for (lo, hi), t in zip(df["recentred"], truth)]
    df["cover_hull"] = [lo <= t <= hi for (lo, hi), t in zip(df["hull"], truth)]
    out = df.groupby(["rater", "dimension", "stat"]).agg(
        mean=("estimate", "mean"), sd_across_seeds=("estimate", "std"), sd_two_way=("sd_two_way", "mean"),
        sd_raters_only=("sd_raters_only", "mean"), shift=("shift_two_way", "mean"),
        coverage_percentile=("cover_pct", "mean"),
        coverage_recentred=("cover_recentred", "mean"), coverage_hull=("cover_hull", "mean"))
    pd.set_option("display.width", 200)
    print(out.round(4).to_string())
    print(f"\n{args.seeds} seeds x {len(CASES)} cases, {args.reps} replicates each, {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
