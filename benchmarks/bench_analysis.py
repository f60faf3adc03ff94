"""Benchmark the analysis engine on the simulated paper-size study.

Simulates the "paper" profile (1,440 images, 1,000 raters x 72 images = 72,000 human trials, 2 VLM + 5
FER raters; no images drawn) and runs ``specs/paper.yaml`` in a fresh process per run (R start and package
loading included, as a user's ``emoalign analyze`` pays them), printing the seconds of every analysis, the
total and the BLAS R used. With ``--baseline SRC`` it also runs another emoalign source tree (e.g. a checkout
of an earlier commit: ``SRC/python`` is put first on PYTHONPATH, and its own ``specs/paper.yaml`` is used),
optionally on another BLAS (``--baseline-blas DIR``: a folder holding ``libblas.so.3``, e.g. Debian's
reference BLAS ``/usr/lib/x86_64-linux-gnu/blas``, put first on LD_LIBRARY_PATH), interleaving the runs of
both and printing per-analysis medians and ratios from that one run. Then times Krippendorff's alpha with a
1,000-replicate bootstrap (units, coders, both) on the 72,000 valence trials and compares with
``krippendorff.alpha`` (and R's ``irr::kripp.alpha`` where irr is installed).

Targets on a 2-core machine: whole spec <= 15 s (including the converged-fit checks); alpha + 1,000
bootstrap replicates over units <= 2 s.

    python benchmarks/bench_analysis.py [--workdir DIR] [--seed 1] [--runs 1] [--reps 1000] [--no-irr]
        [--baseline SRC [--baseline-blas DIR]] [--clock wall|cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

RUN_SPEC = """
import json, os, sys, time
t0 = time.perf_counter()
import emoalign.analysis.engine as engine
if sys.argv[3] == "cpu":  # the engine's clock counts CPU seconds of this process and its finished R workers
    class CpuClock:
        def __getattr__(self, name):
            return getattr(time, name)
        @staticmethod
        def perf_counter():
            return sum(os.times()[:4])
    engine.time = CpuClock()
from emoalign.analysis.engine import run_spec
from emoalign.resources import specs_dir
rep = run_spec(specs_dir() / "paper.yaml", sys.argv[1], data_dir=sys.argv[2], force=True)
print(json.dumps({"total": time.perf_counter() - t0, "analyses": {o.id: o.seconds for o in rep.outcomes},
                  "failed": [o.id for o in rep.outcomes if o.status != "ok"],
                  "blas": rep.manifest["versions"].get("R_BLAS"), "spec": str(specs_dir() / "paper.yaml")}))
"""


def run_once(python_dir: Path, study: Path, out: Path, blas_dir: str | None, clock: str = "wall") -> dict:
    """One ``run_spec`` of the paper spec in a fresh interpreter with ``python_dir`` first on the path."""
    env = dict(os.environ, PYTHONPATH=str(python_dir))
    if blas_dir:
        env["LD_LIBRARY_PATH"] = blas_dir + (":" + env["LD_LIBRARY_PATH"] if env.get("LD_LIBRARY_PATH") else "")
    proc = subprocess.run([sys.executable, "-c", RUN_SPEC, str(out), str(study), clock], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"run with {python_dir} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def time_spec(args, study: Path, work: Path) -> int:
    here = Path(__file__).resolve().parents[1] / "python"
    configs = {"this tree": (here, None)}
    if args.baseline:
        configs = {"baseline": (Path(args.baseline).resolve() / "python", args.baseline_blas), **configs}
    runs: dict[str, list[dict]] = {k: [] for k in configs}
    for i in range(args.runs):  # interleaved, so both see the same machine load
        for name, (src, blas) in configs.items():
            runs[name].append(run_once(src, study, work / f"results-{name.replace(' ', '_')}-{i}", blas, args.clock))
            print(f"run {i + 1}/{args.runs} {name}: {runs[name][-1]['total']:.1f} s", flush=True)
    ids = list(dict.fromkeys(a for rs in reversed(list(runs.values())) for a in rs[0]["analyses"]))  # this tree's order
    table = {}
    for name, rs in runs.items():
        table[name] = pd.Series({a: float(np.median([r["analyses"].get(a, np.nan) for r in rs])) for a in ids})
        table[name]["TOTAL (process, incl. R start)"] = float(np.median([r["total"] for r in rs]))
    df = pd.DataFrame(table).reindex([*ids, "TOTAL (process, incl. R start)"])
    if args.baseline:
        df["ratio baseline / this tree"] = df["baseline"] / df["this tree"]
    what = "seconds" if args.clock == "wall" else "CPU seconds (process + R workers; total: wall)"
    print(f"\nspecs/paper.yaml, {what} per analysis (median of {args.runs} interleaved run(s)):")
    print(df.round(2).to_string())
    for name, rs in runs.items():
        blas = rs[0]["blas"] or (f"not recorded (LD_LIBRARY_PATH first: {configs[name][1]})" if configs[name][1] else "not recorded")
        totals = ", ".join(f"{r['total']:.1f}" for r in rs)
        print(f"  {name}: BLAS {blas}; spec {rs[0]['spec']}; totals {totals} s")
    failed = sorted({f for rs in runs.values() for r in rs for f in r["failed"]})
    print(f"target: this tree <= 15 s{'; FAILED: ' + ', '.join(failed) if failed else ''}")
    try:
        print(f"load average after the runs: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    except OSError:
        pass
    return 1 if failed else 0


def time_alpha(args, study: Path) -> None:
    import krippendorff

    from emoalign.analysis.stats.krippendorff import alpha_bootstrap

    humans = pd.read_parquet(study / "humans.parquet", columns=["rater_id", "image_id", "valence"])
    print(f"\nKrippendorff's alpha (ordinal) on {len(humans):,} valence trials, {args.reps} bootstrap replicates:")
    t_units = None
    for resample in ("units", "coders", "both"):
        t = time.perf_counter()
        res = alpha_bootstrap(humans["image_id"].to_numpy(), humans["valence"].to_numpy(), "ordinal", reps=args.reps,
                              seed=1, coders=humans["rater_id"].to_numpy(), resample=resample)
        dt = time.perf_counter() - t
        t_units = dt if resample == "units" else t_units
        print(f"  resample {resample:6s}: {dt:.2f} s; alpha = {res['estimate']:.6f} "
              f"[{res['conf_low']:.4f}, {res['conf_high']:.4f}] (percentile), bootstrap SE {res['std_error']:.4f}")
    wide = humans.pivot(index="rater_id", columns="image_id", values="valence").to_numpy()
    t = time.perf_counter()
    ref = krippendorff.alpha(wide, level_of_measurement="ordinal")
    t_k = time.perf_counter() - t
    print(f"  krippendorff.alpha (no bootstrap): {t_k:.2f} s; alpha = {ref:.6f} "
          f"(|difference| = {abs(ref - res['estimate']):.1e}); a naive bootstrap calling it {args.reps}x would take "
          f"~{t_k * args.reps:.0f} s")

    from emoalign.analysis.rbridge import get_r

    r = get_r()
    if not r.has_package("irr"):
        print("  irr is not installed here: no irr comparison (irr::kripp.alpha takes ~30-70 s on this matrix)")
    elif args.irr:  # default when irr is installed
        t = time.perf_counter()
        irr_val = r.call("irr_kripp_alpha", wide, level="ordinal").value["estimate"][0]
        t_irr = time.perf_counter() - t
        print(f"  irr::kripp.alpha: {t_irr:.1f} s, alpha = {irr_val:.6f}; emoalign alpha + {args.reps} unit-bootstrap "
              f"reps is {t_irr / t_units:.0f}x faster than one irr call")
    else:
        print("  irr comparison skipped (--no-irr)")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default=None, help="Folder for the simulated study and results (default: a temp dir).")
    ap.add_argument("--seed", type=int, default=1, help="Simulation seed.")
    ap.add_argument("--runs", type=int, default=1, help="Runs of the spec per configuration (interleaved; medians).")
    ap.add_argument("--baseline", default=None, metavar="SRC",
                    help="Also time the emoalign source tree SRC (a checkout; SRC/python is imported), interleaved.")
    ap.add_argument("--baseline-blas", default=None, metavar="DIR",
                    help="Folder with the libblas.so.3 the baseline's R should load (put first on LD_LIBRARY_PATH).")
    ap.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                    help="Per-analysis seconds: wall clock (default) or CPU seconds of the process and its R workers "
                         "(steadier on a shared machine; parallel R workers add up rather than overlap).")
    ap.add_argument("--reps", type=int, default=1000, help="Bootstrap replicates for the alpha timing.")
    ap.add_argument("--no-alpha", dest="alpha", action="store_false", help="Skip the alpha timings.")
    ap.add_argument("--no-irr", dest="irr", action="store_false",
                    help="Skip timing irr::kripp.alpha (done by default when irr is installed; ~30-70 s).")
    args = ap.parse_args(argv)

    from emoalign.simulate import simulate_study

    work = Path(args.workdir or tempfile.mkdtemp(prefix="emoalign-bench-"))
    study = work / "study"
    t = time.perf_counter()
    simulate_study(study, profile="paper", seed=args.seed, images=False, force=True)
    print(f"simulated paper-size study in {time.perf_counter() - t:.1f} s -> {study}")
    code = time_spec(args, study, work)
    if args.alpha:
        time_alpha(args, study)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
