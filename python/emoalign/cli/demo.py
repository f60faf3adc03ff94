"""``emoalign demo --out demo/``: the whole pipeline on the built-in simulated study."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="demo")
@click.option("-o", "--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True,
              help="Folder for the study, results and report.")
@click.option("--profile", default="paper", show_default=True,
              help="Simulation profile: paper (1,440 images, as in the paper) or small (144 images, quick).")
@click.option("--seed", type=int, default=None, help="Simulation seed [default: the profile's].")
@click.option("--no-pdf", is_flag=True, help="Render HTML only.")
@click.option("--force", is_flag=True, help="Redo a demo already in --out.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def demo(out: Path, profile: str, seed: int | None, no_pdf: bool, force: bool, quiet: bool):
    """Simulate a study, run a real FER model on it, analyze it with specs/paper.yaml, render the report.

    \b
    Stages:
      1. simulate  schematic face images, human trials, and SIMULATED VLM/FER rater profiles
      2. infer     the built-in FER model minixception on every image (real inference, offline)
      3. analyze   specs/paper.yaml, with minixception added to the fer group,
                   and the remedies of specs/examples/remedies.yaml
      4. report    report.html (+ report.pdf)
    The report marks which raters are SIMULATED profiles and which are real model runs.
    """
    from emoalign.pipeline import run_demo

    res = run_demo(out, profile=profile, seed=seed, pdf=not no_pdf, force=force, progress=not quiet, echo=click.echo)
    times = ", ".join(f"{k} {v:.1f} s" for k, v in res.seconds.items())
    click.secho(f"\ndemo finished in {res.total:.1f} s ({times})", fg="green", bold=True)
    if res.failed:
        click.secho(f"analyses that failed (see the report and results/manifest.json): {', '.join(res.failed)}", fg="red")
    click.echo(f"  study:   {res.study}/")
    click.echo(f"  spec:    {res.spec}")
    click.echo(f"  results: {res.results}/")
    click.echo(f"  report:  {res.html}")
    if res.pdf:
        click.echo(f"  pdf:     {res.pdf}")
