"""Benchmark the analysis engine on the simulated paper-size study.

Simulates the "paper" profile (1,440 images, 1,000 raters x 72 images = 72,000 human trials, 2 VLM + 5
FER raters; no images drawn), runs ``specs/paper.yaml`` and prints the time of every analysis and
the total (R start included: R starts lazily at the first analysis that needs it), then times
Krippendorff's alpha with a 1,000-replicate bootstrap CI on the 72,000 valence trials and compares
with ``krippendorff.alpha`` (and with R's ``irr::kripp.alpha`` where irr is installed).

Targets on a 2-core machine: whole spec <= 60 s; alpha + 1,000 bootstrap replicates <= 2 s.

    python benchmarks/bench_analysis.py [--workdir DIR] [--seed 1] [--reps 1000] [--no-irr]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import pandas as pd


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=None, help="Folder for the simulated study and results (default: a temp dir).")
    ap.add_argument("--seed", type=int, default=1, help="Simulation seed.")
    ap.add_argument("--reps", type=int, default=1000, help="Bootstrap replicates for the alpha timing.")
    ap.add_argument("--no-irr", dest="irr", action="store_false",
                    help="Skip timing irr::kripp.alpha (done by default when irr is installed; ~70 s).")
    args = ap.parse_args(argv)

    from emoalign.resources import specs_dir
    from emoalign.simulate import simulate_study

    work = Path(args.workdir or tempfile.mkdtemp(prefix="emoalign-bench-"))
    study_dir = work / "study"
    t = time.perf_counter()
    simulate_study(study_dir, profile="paper", seed=args.seed, images=False, force=True)
    print(f"simulated paper-size study in {time.perf_counter() - t:.1f} s -> {study_dir}")

    from emoalign.analysis.engine import run_spec

    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    report = run_spec(specs_dir() / "paper.yaml", work / "results", data_dir=study_dir, force=True)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    print("\nspecs/paper.yaml, time per analysis:")
    print(report.summary().to_string(index=False))
    failed = [o.id for o in report.outcomes if o.status != "ok"]
    print(f"TOTAL (incl. data load and R start): {wall:.1f} s wall, {cpu:.1f} s CPU of this process "
          f"(target <= 60 s){'; FAILED: ' + ', '.join(failed) if failed else ''}")
    try:
        load = os.getloadavg()[0]
        print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores")
    except OSError:
        pass

    import krippendorff

    from emoalign.analysis.kinds.reliability import alpha_bootstrap

    humans = pd.read_parquet(study_dir / "humans.parquet", columns=["rater_id", "image_id", "valence"])
    print(f"\nKrippendorff's alpha (ordinal) on {len(humans):,} valence trials:")
    t = time.perf_counter()
    res = alpha_bootstrap(humans["image_id"].to_numpy(), humans["valence"].to_numpy(), "ordinal",
                          reps=args.reps, seed=1)
    t_boot = time.perf_counter() - t
    print(f"  emoalign alpha + {args.reps} bootstrap reps: {t_boot:.2f} s (target <= 2 s); alpha = "
          f"{res['estimate']:.6f} [{res['conf_low']:.4f}, {res['conf_high']:.4f}]")
    wide = humans.pivot(index="rater_id", columns="image_id", values="valence").to_numpy()
    t = time.perf_counter()
    ref = krippendorff.alpha(wide, level_of_measurement="ordinal")
    t_k = time.perf_counter() - t
    print(f"  krippendorff.alpha (no bootstrap): {t_k:.2f} s; alpha = {ref:.6f} "
          f"(|difference| = {abs(ref - res['estimate']):.1e})")
    print(f"  a naive bootstrap calling krippendorff.alpha {args.reps}x would take ~{t_k * args.reps:.0f} s")

    from emoalign.analysis.rbridge import get_r

    r = get_r()
    if not r.has_package("irr"):
        print("  irr is not installed here: no irr comparison (irr::kripp.alpha takes ~68 s on this matrix)")
    elif args.irr:  # default when irr is installed
        t = time.perf_counter()
        irr_val = r.call("irr_kripp_alpha", wide, level="ordinal").value["estimate"][0]
        t_irr = time.perf_counter() - t
        print(f"  irr::kripp.alpha: {t_irr:.1f} s, alpha = {irr_val:.6f}; emoalign alpha + {args.reps} bootstrap "
              f"reps is {t_irr / t_boot:.0f}x faster than one irr call")
    else:
        print("  irr comparison skipped (--no-irr)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
