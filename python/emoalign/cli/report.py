"""``emoalign report RESULTS -o report.html [--pdf report.pdf]``: render the Quarto report."""

from __future__ import annotations

from pathlib import Path

import click


@click.command(name="report")
@click.argument("results", type=click.Path(file_okay=False, path_type=Path))
@click.option("-o", "--output", "html", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Self-contained HTML report to write [default: RESULTS/report.html unless only --pdf is given].")
@click.option("--pdf", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write a PDF (Typst) to this path.")
@click.option("--engine", type=click.Choice(["auto", "quarto", "offline"]), default="auto", show_default=True,
              help="auto: Quarto if `quarto` is on PATH, else the offline renderer (Jupyter + pandoc + Typst).")
@click.option("--keep-markdown", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Offline engine: also keep the assembled pandoc markdown here (for debugging).")
@click.option("--force", is_flag=True, help="Overwrite the HTML/PDF files if they exist.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def report(results: Path, html: Path | None, pdf: Path | None, engine: str, keep_markdown: Path | None, force: bool,
           quiet: bool):
    """Render the report of a results folder (written by `emoalign analyze`).

    \b
    The report (quarto/report.qmd) reproduces the paper's tables and figures from the tidy
    results and renders every further analysis of the spec by its kind. Sections whose
    analysis is missing are skipped with a note.

    \b
    Nothing is overwritten without --force. A results folder whose tables do not match its
    manifest (sha256, row counts) is refused.

    \b
    Examples:
      emoalign report results/ -o report.html
      emoalign report results/ -o report.html --pdf report.pdf
      quarto render quarto/report.qmd -P results:$PWD/results    # the same, with Quarto
    """
    from emoalign.data.io import ensure_writable_file
    from emoalign.errors import EmoalignError
    from emoalign.render import render_report
    from emoalign.report.results import Results

    if html is None and pdf is None:
        html = results / "report.html"
    Results.load(results)  # refuses a folder whose tables do not match its manifest, before any rendering
    outputs = [p for p in (html, pdf, keep_markdown) if p is not None]
    if len({p.resolve() for p in outputs}) < len(outputs):
        raise EmoalignError("-o, --pdf and --keep-markdown name the same file", hint="give each output its own path")
    for p in outputs:
        if p.exists() and not force:
            raise EmoalignError(f"{p} already exists", hint="pass --force to overwrite it, or choose another path")
        ensure_writable_file(p, "report file", hint="write the report where you can write: -o PATH (and --pdf PATH)")
    res = render_report(results, html, pdf, engine=engine, progress=not quiet, keep_markdown=keep_markdown)
    click.echo(f"rendered with {res.engine} in {res.seconds:.1f} s")
    for p in (res.html, res.pdf):
        if p:
            click.echo(f"  {p}")
