"""``emoalign spec``: check a spec (optionally against its data) or print its JSON Schema."""

from __future__ import annotations

import json
import sys

import click


@click.group()
def spec():
    """Check an analysis spec, or print the JSON Schema of specs."""


@spec.command("check")
@click.argument("spec_file", metavar="SPEC", type=click.Path(dir_okay=False))
@click.option("--data", "data_dir", type=click.Path(file_okay=False), default=None,
              help="Study folder the spec's paths are relative to (default: the spec's folder).")
@click.option("--no-data", is_flag=True, help="Validate the YAML only; do not read the study tables.")
def check(spec_file, data_dir, no_data):
    """Validate SPEC: fields, kinds and options (with YAML line and did-you-mean), then -- unless
    --no-data -- raters, dimensions, by/subset columns and formula variables against the study.

    Exit code 0 when the spec is valid, 1 when an analysis has problems (2 for invalid YAML/fields).
    """
    from emoalign.analysis.engine import load_study
    from emoalign.analysis.checks import check_spec
    from emoalign.spec.load import load_spec

    loaded = load_spec(spec_file)
    n = len(loaded.spec.analyses)
    if no_data:
        click.echo(f"{spec_file}: valid ({n} analyses; data not checked)")
        return
    study, inputs, warnings = load_study(loaded, data_dir)
    for w in warnings:
        click.secho(f"warning: {w}", fg="yellow", err=True)
    problems = check_spec(loaded, study)
    if problems:
        for aid, probs in problems.items():
            for p in probs:
                click.secho(p, fg="red", err=True)
        n_bad = len([k for k in problems if k != "study.derived"])
        click.echo(f"{spec_file}: {n_bad} of {n} analyses have problems"
                   + ("; study.derived has problems" if "study.derived" in problems else ""), err=True)
        sys.exit(1)
    click.echo(f"{spec_file}: valid ({n} analyses; {len(study.stimuli)} images, {len(study.humans)} human trials, "
               f"{len(study.machine_raters)} machine raters)")


@spec.command("schema")
@click.option("--indent", default=2, show_default=True, help="JSON indentation.")
def schema(indent):
    """Print the JSON Schema of spec files (for editor validation and completion, e.g. with
    yaml-language-server: `# yaml-language-server: $schema=emoalign-spec.schema.json`)."""
    from emoalign.spec.model import json_schema

    click.echo(json.dumps(json_schema(), indent=indent))
