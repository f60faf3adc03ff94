"""``emoalign humans import``: validate a ratings CSV and write the human-ratings table."""

from __future__ import annotations

from pathlib import Path

import click

from emoalign.errors import EmoalignError


@click.group(help="Import and validate human ratings (one CSV row per trial).")
def humans():
    pass


@humans.command("import", short_help="Validate a ratings CSV against stimuli and scales; write humans.parquet.")
@click.argument("ratings", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--stimuli", "-s", "stimuli_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Stimuli table (from `emoalign stimuli scan`); every image id must be in it.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path), help="Output parquet.")
@click.option("--scale", "scale_opts", multiple=True, metavar="DIM=MIN:MAX",
              help="Scale of a rated column, e.g. --scale valence=1:9 (repeat per dimension; overrides --spec).")
@click.option("--spec", type=click.Path(dir_okay=False, path_type=Path),
              help="Analysis spec YAML: study.scales gives the scales, study.emotions the labels of an emotion column.")
@click.option("--rater-col", default="rater_id", show_default=True, help="Column holding the rater id.")
@click.option("--image-col", default="image_id", show_default=True, help="Column holding the image id.")
@click.option("--dimension", "dimensions", multiple=True, help="Treat this column as a rating dimension (it needs a scale).")
@click.option("--drop", multiple=True, help="Leave this column out (repeatable).")
@click.option("--allow-missing", is_flag=True, help="Keep empty rating cells as missing instead of failing.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def import_(ratings, stimuli_path, out, scale_opts, spec, rater_col, image_col, dimensions, drop, allow_missing, force):
    """Validate RATINGS (CSV, one row per trial) and write the humans table.

    Checks unknown image ids, values outside each scale, duplicate (rater, image) trials, non-numeric
    and missing cells; every problem is listed with its row (header = row 1) and column, all at once.

    \b
    Example:
      emoalign humans import ratings.csv --stimuli stimuli.parquet -o humans.parquet \\
          --scale valence=1:9 --scale arousal=1:9
    """
    from emoalign.data.io import ensure_writable_file, file_sha256, write_table
    from emoalign.humans.importer import import_humans, parse_scale
    from emoalign.spec.load import read_study

    if out.exists() and not force:
        raise EmoalignError(f"{out} already exists", hint="pass --force to overwrite it, or choose another -o path")
    ensure_writable_file(out, "-o")
    scales, emotions = {}, None
    if spec:
        study = read_study(spec)
        scales = dict(study.scales) if "scales" in study.model_fields_set else {}
        emotions = study.emotions or None
    scales.update(dict(parse_scale(s) for s in scale_opts))
    df, report = import_humans(ratings, stimuli_path, scales, rater_col=rater_col, image_col=image_col,
                               dimensions=dimensions, drop=drop, emotions=emotions, allow_missing=allow_missing)
    write_table(df, out, "humans", force=force,
                metadata={"source": str(ratings), "source_sha256": file_sha256(ratings), "stimuli": str(stimuli_path),
                          "scales": report.scales, "dimensions": report.dimensions})
    click.echo(report.summary())
    click.echo(f"wrote {out}")
