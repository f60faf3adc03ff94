"""``emoalign stimuli scan|check``: build and check the stimulus table."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from emoalign.errors import EmoalignError


def _label_set(emotions: str | None, spec: Path | None) -> list[str] | None:
    """The study's emotion set from --emotions (comma-separated) or --spec (study.emotions); None when neither."""
    if emotions:
        return [e.strip() for e in emotions.split(",") if e.strip()]
    if spec:
        from emoalign.spec.load import read_study

        study = read_study(spec)
        if "emotions" in study.model_fields_set and not study.emotions:
            raise EmoalignError(f"{spec}: study.emotions must be a non-empty list of labels",
                                hint="e.g. emotions: [angry, happy, sad]")
        return list(study.emotions) or None
    return None


@click.group(help="Build (scan) and check (check) a stimulus table: images + intended emotion + design metadata.")
def stimuli():
    pass


@stimuli.command("scan", short_help="Scan an image folder (or manifest) into stimuli.parquet with sha256/size.")
@click.argument("directory", metavar="[DIR]", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--pattern", "-p", help='Filename pattern naming metadata fields, e.g. "{race}_{gender}_{identity_id}_{emotion}.png". '
              "Paths are matched relative to DIR and may contain /; {image_id} overrides the default id (the file stem); "
              "{_} skips a part.")
@click.option("--manifest", "-m", type=click.Path(dir_okay=False, path_type=Path),
              help="CSV/TSV/parquet with path, emotion (optional image_id) and design columns, instead of (or with) a pattern. "
                   "Relative paths resolve against DIR if given, else the manifest's folder.")
@click.option("--out", "-o", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Output parquet (paths inside are stored relative to its folder).")
@click.option("--skip-unmatched", is_flag=True, help="Leave out image files that do not match the pattern instead of failing.")
@click.option("--emotions", "-e", help="Comma-separated study emotion set; a label outside it is an error.")
@click.option("--spec", type=click.Path(dir_okay=False, path_type=Path), help="Analysis spec YAML; its study.emotions is the label set.")
@click.option("--allow-duplicates", is_flag=True, help="Accept images with identical contents under different ids (a warning).")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def scan(directory, pattern, manifest, out, skip_unmatched, emotions, spec, allow_duplicates, force):
    """Scan image folder DIR (or a --manifest) into a stimuli table with sha256, width and height.

    \b
    Examples:
      emoalign stimuli scan images/ --pattern "{race}_{gender}_{identity_id}_{emotion}.png" -o stimuli.parquet
      emoalign stimuli scan images/ --pattern "{emotion}/{image_id}.jpg" -o stimuli.parquet
      emoalign stimuli scan --manifest stimuli.csv -o stimuli.parquet
    """
    from emoalign.data.io import ensure_writable_file, write_table
    from emoalign.stimuli.scan import scan_stimuli

    if out.exists() and not force:
        raise EmoalignError(f"{out} already exists", hint="pass --force to overwrite it, or choose another -o path")
    ensure_writable_file(out, "-o")
    label_set = _label_set(emotions, spec)
    df, report = scan_stimuli(directory, pattern, manifest=manifest, out=out, skip_unmatched=skip_unmatched, progress=True,
                              emotions=label_set, allow_duplicates=allow_duplicates)
    write_table(df, out, "stimuli", force=force,
                metadata={"source": report.source, "pattern": pattern, "manifest": str(manifest) if manifest else None,
                          "n_images": report.n_images})
    for line in report.lines():
        click.echo(line)
    click.echo(f"wrote {out}")


@stimuli.command("check", short_help="Check files, ids, hashes, labels and factorial balance; exit 1 on errors.")
@click.argument("table", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--emotions", "-e", help="Comma-separated study emotion set, e.g. angry,disgust,fear,happy,sad,neutral.")
@click.option("--spec", type=click.Path(dir_okay=False, path_type=Path), help="Analysis spec YAML; its study.emotions is the label set.")
@click.option("--design", "-d", help="Comma-separated design columns for the balance table (default: race,gender,emotion present).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), help="Folder relative paths resolve against (default: the table's folder).")
@click.option("--no-verify", is_flag=True, help="Only check that files exist; skip decoding and re-hashing them.")
def check(table, emotions, spec, design, root, no_verify):
    """Check stimuli TABLE: missing/unreadable files, duplicate ids and contents, sha256 changes,
    labels outside the emotion set, factorial balance.

    Exit status: 0 when fine (imbalance is only a warning), 1 when there are errors.
    """
    from emoalign.stimuli.check import check_stimuli

    label_set = _label_set(emotions, spec)
    report = check_stimuli(table, emotions=label_set, design=design.split(",") if design else None, root=root,
                           verify_images=not no_verify, progress=True)
    if label_set is None:
        click.echo("note: no --emotions/--spec given, labels not checked against a study set")
    click.echo(report.format())
    if not report.ok:
        sys.exit(1)
