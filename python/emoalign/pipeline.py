"""The whole pipeline behind `emoalign demo`: simulate a study -> real FER inference -> analyze -> report.

Stages (each timed and reported):

1. ``simulate``: the built-in profile (``paper``: 1,440 schematic face images, human trials, and
   SIMULATED VLM/FER rater profiles in ``study/runs/simulated/``);
2. ``infer``: the built-in offline FER model ``minixception`` (real inference, weights shipped in
   the package) on every image -> ``study/runs/minixception/``;
3. ``analyze``: ``specs/paper.yaml`` with ``minixception`` added to the ``fer`` group and the remedies of
   ``specs/examples/remedies.yaml`` (calibration, prior correction, the models among the humans, the hybrid
   rater) appended, written as ``study/demo-spec.yaml`` -> ``results/``;
4. ``report``: ``report.html`` (+ ``report.pdf``).

The report marks the simulated profiles as SIMULATED and minixception as a real model run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml

from emoalign.errors import EmoalignError
from emoalign.resources import specs_dir

DEMO_FER = "minixception"


@dataclass
class DemoResult:
    out: Path
    study: Path
    spec: Path
    results: Path
    html: Path | None
    pdf: Path | None
    seconds: dict[str, float] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def total(self) -> float:
        return sum(self.seconds.values())


def demo_spec(study_dir: Path, fer_rater: str = DEMO_FER) -> Path:
    """Write ``specs/paper.yaml`` with ``fer_rater`` added to the ``fer`` group, plus the derived raters, labels and
    analyses of ``specs/examples/remedies.yaml``, into the study folder."""
    spec = yaml.safe_load((specs_dir() / "paper.yaml").read_text())
    groups = spec.setdefault("study", {}).setdefault("groups", {})
    fer = groups.setdefault("fer", [])
    if fer_rater not in fer:
        fer.append(fer_rater)
    remedies = yaml.safe_load((specs_dir() / "examples" / "remedies.yaml").read_text())
    spec["study"]["derived"] = remedies["study"].get("derived", [])
    spec["labels"] = {**remedies.get("labels", {}), **spec.get("labels", {})}
    spec["analyses"] += remedies["analyses"]
    path = Path(study_dir) / "demo-spec.yaml"
    header = ("# specs/paper.yaml + the real FER run `minixception` in the fer group + the remedies of "
              "specs/examples/remedies.yaml (written by `emoalign demo`).\n")
    path.write_text(header + yaml.safe_dump(spec, sort_keys=False))
    return path


def run_demo(out, *, profile: str = "paper", seed: int | None = None, pdf: bool = True, force: bool = False,
             progress: bool = True, echo: Callable[[str], None] = print) -> DemoResult:
    """Run the whole pipeline into ``out`` (``study/``, ``results/``, ``report.html``, ``report.pdf``)."""
    import pandas as pd

    out = Path(out).resolve()
    study_dir, results_dir = out / "study", out / "results"
    if (study_dir / "stimuli.parquet").exists() and not force:
        raise EmoalignError(f"{out} already holds a demo", hint="pass --force to redo it, or choose another --out")
    res = DemoResult(out=out, study=study_dir, spec=study_dir / "demo-spec.yaml", results=results_dir, html=None, pdf=None)

    def stage(name: str, label: str):
        echo(f"[{len(res.seconds) + 1}/4] {label} ...")
        return name, time.perf_counter()

    def done(tok):
        name, t = tok
        res.seconds[name] = time.perf_counter() - t
        echo(f"      {name} done in {res.seconds[name]:.1f} s")

    # 1. simulate
    tok = stage("simulate", f"simulating the '{profile}' study (images, human trials, SIMULATED rater profiles)")
    from emoalign.simulate import simulate_study

    sim = simulate_study(study_dir, profile=profile, seed=seed, images=True, force=force, progress=progress)
    stim = pd.read_parquet(sim.stimuli)
    echo(f"      {len(stim)} images, {sim.summary.get('human_raters', '?')} human raters, "
         f"{sim.summary.get('trials', '?')} trials, simulated raters: {', '.join(sim.summary.get('machine_raters', []))}")
    done(tok)

    # 2. real FER inference
    tok = stage("infer", f"running the built-in FER model '{DEMO_FER}' on {len(stim)} images (real inference)")
    from emoalign.raters.fer import build_fer_rater
    from emoalign.raters.runs import items_from_stimuli, run_rater

    rater = build_fer_rater(DEMO_FER)
    run_rater(rater, items_from_stimuli(stim, sim.stimuli.parent), study_dir / "runs", force=True, progress=progress)
    done(tok)

    # 3. analyze
    tok = stage("analyze", "analyzing with specs/paper.yaml (+ minixception in the fer group) + specs/examples/remedies.yaml")
    from emoalign.analysis.engine import run_spec

    spec = demo_spec(study_dir)

    def on_progress(event, i, total, oc):
        if event == "done":
            echo(f"      [{i + 1}/{total}] {oc.id}: {oc.status} ({oc.seconds:.1f} s)")

    report = run_spec(spec, results_dir, data_dir=study_dir, force=True, progress=on_progress if progress else None)
    res.failed = [o.id for o in report.outcomes if o.status != "ok"]
    done(tok)

    # 4. report
    tok = stage("report", "rendering the report (HTML" + (" + PDF" if pdf else "") + ")")
    from emoalign.render import render_report

    rr = render_report(results_dir, out / "report.html", out / "report.pdf" if pdf else None, progress=progress)
    res.html, res.pdf = rr.html, rr.pdf
    done(tok)
    return res
