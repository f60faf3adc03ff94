"""``emoalign analyze SPEC --out DIR``: run every analysis of a spec and write tidy results + manifest."""

from __future__ import annotations

import sys

import click


@click.command()
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--out", "-o", "out", required=True, type=click.Path(file_okay=False),
              help="Results folder: <id>.parquet per analysis + manifest.json.")
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Study folder the spec's paths are relative to (default: the spec's folder).")
@click.option("--only", multiple=True, metavar="ID", help="Run only this analysis id (repeatable); other results are kept.")
@click.option("--force", is_flag=True, help="Overwrite results already in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No per-analysis progress lines.")
def analyze(spec_file, out, data_dir, only, force, quiet):
    """Run the analyses of SPEC on its study and write DIR/<id>.parquet and DIR/manifest.json.

    A failing analysis is reported and the others still run; the exit code is 1 if any failed.

    \b
    Example:
      emoalign analyze specs/paper.yaml --data study/ --out results/
    """
    from emoalign.analysis.engine import run_spec

    def progress(event, i, total, oc):
        if quiet:
            return
        if event == "start":
            click.echo(f"[{i + 1}/{total}] {oc.id} ({oc.kind}) ...", nl=False, err=True)
        else:
            color = "green" if oc.status == "ok" else "red"
            extra = f", {len(oc.warnings)} warning(s)" if oc.warnings else ""
            click.secho(f" {oc.status} {oc.seconds:.1f} s, {oc.rows} rows{extra}", fg=color, err=True)

    report = run_spec(spec_file, out, data_dir=data_dir, only=list(only) or None, force=force, progress=progress)
    summary = report.summary()
    click.echo(summary.to_string(index=False) if len(summary) else "no analyses")
    echo_warnings(report)
    for oc in report.outcomes:
        if oc.status != "ok":
            body = "\n".join("    " + line for line in (oc.error or "").strip().splitlines())
            click.secho(f"\n  {oc.id} failed:\n{body}", fg="red", err=True)
    n_failed = sum(o.status != "ok" for o in report.outcomes)
    click.echo(f"{len(report.outcomes) - n_failed} ok, {n_failed} failed in {report.seconds:.1f} s -> {report.out}/")
    if n_failed:
        sys.exit(1)


def echo_warnings(report, per_analysis: int = 3) -> None:
    """The run's warnings (study design, then per analysis, at most ``per_analysis`` each) and the flagged rows;
    all of them are in manifest.json."""
    study = report.manifest.get("warnings") or []
    noisy = [o for o in report.outcomes if o.warnings or o.rows_flagged]
    if not (study or noisy):
        return
    click.secho("\nwarnings (all of them: manifest.json; flagged rows: column `flag`):", fg="yellow", err=True)
    for w in study:
        click.secho(f"  study: {w}", fg="yellow", err=True)
    for o in noisy:
        for w in o.warnings[:per_analysis]:
            click.secho(f"  {o.id}: {w.removeprefix(o.id + ': ')}", fg="yellow", err=True)
        if len(o.warnings) > per_analysis:
            click.secho(f"  {o.id}: ... {len(o.warnings) - per_analysis} more", fg="yellow", err=True)
        if o.rows_flagged:
            what = ", ".join(f"{k} ({v})" for k, v in o.flagged.items())
            click.secho(f"  {o.id}: {o.rows_flagged} flagged row(s): {what}", fg="yellow", err=True)
