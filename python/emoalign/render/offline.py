"""Render ``quarto/report.qmd`` for a results folder to self-contained HTML and (optionally) PDF.

With ``quarto`` on PATH this runs ``quarto render report.qmd -P results:DIR``. Without it (Quarto
cannot be installed everywhere) the same .qmd is rendered offline:

1. the .qmd is parsed into a Jupyter notebook (``qmd.py``); the cell tagged ``parameters`` is
   followed by an injected cell with the parameter values, as Quarto and papermill do;
2. the notebook is executed with nbclient/ipykernel in the .qmd's folder; any cell error aborts;
3. cell outputs are assembled into pandoc markdown (``output: asis`` cells verbatim, figures as
   embedded PNGs), then pandoc (pypandoc-binary) writes HTML with ``--embed-resources --standalone``
   and Typst source (``-t typst``), which the ``typst`` package compiles to PDF.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from emoalign.errors import EmoalignError
from emoalign.render.qmd import assemble_markdown, header_includes, number_captions, pandoc_args, parse_qmd, to_notebook
from emoalign.resources import quarto_dir

CSS = """
body { max-width: 1180px; margin: 0 auto; padding: 1.5em 2em; font-family: -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; font-size: 15px; line-height: 1.5; color: #222; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .2em; margin-top: 1.8em; }
h1.title { border: none; margin-top: .3em; } p.subtitle { font-size: 1.1em; color: #555; margin-top: -.6em; }
table { border-collapse: collapse; margin: 1em 0 1.6em; font-size: 13px; font-variant-numeric: tabular-nums; }
th, td { padding: 3px 9px; border-bottom: 1px solid #e3e3e3; }
thead th { border-bottom: 2px solid #888; background: #f7f7f7; }
tbody tr:hover { background: #fafafa; }
caption { caption-side: top; text-align: left; font-weight: 600; padding: .3em 0 .5em; color: #333; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: #444; margin-top: .3em; }
.callout-note { border-left: 4px solid #2c7fb8; background: #eef5fb; padding: .5em 1em; margin: 1em 0; }
nav#TOC { background: #fafafa; border: 1px solid #eee; padding: .3em 1em .3em 0; margin: 0 0 1em 1.5em; font-size: 13px;
  float: right; width: 300px; }
nav#TOC ul { padding-left: 1.4em; margin: .3em 0; }
code { background: #f3f3f3; padding: 0 3px; border-radius: 3px; font-size: 90%; }
.callout-warning { border-left: 4px solid #d95f02; background: #fff4e8; padding: .5em 1em; margin: 1em 0; }
p.csv-download { margin: -1.2em 0 1.6em; font-size: 12px; }
p.csv-download a { color: #2c7fb8; text-decoration: none; } p.csv-download a:before { content: "⤓ "; }
td, th { vertical-align: top; }
"""


@dataclass
class RenderResult:
    html: Path | None
    pdf: Path | None
    engine: str  # "quarto" or "offline"
    seconds: float
    markdown: Path | None = None
    warnings: list[str] = field(default_factory=list)


_DATA_URI = re.compile(r"\]\(data:image/(png|svg\+xml);base64,([A-Za-z0-9+/=\s]+)\)")


def externalize_images(markdown: str, folder: Path) -> str:
    """Write data-URI images of ``markdown`` to ``folder`` and link them by relative path instead.

    Pandoc's markdown reader is slow on megabyte-long inline URIs (~10 s for the paper-size report);
    from files, ``--embed-resources`` re-embeds them in the HTML and Typst reads them directly.
    """
    import base64
    import hashlib

    folder.mkdir(parents=True, exist_ok=True)

    def repl(m):
        raw = base64.b64decode(re.sub(r"\s", "", m.group(2)))
        name = f"{hashlib.sha1(raw).hexdigest()[:16]}.{'png' if m.group(1) == 'png' else 'svg'}"
        (folder / name).write_bytes(raw)
        return f"]({folder.name}/{name})"

    return _DATA_URI.sub(repl, markdown)


def pandoc_path() -> str:
    """The pandoc binary shipped by pypandoc-binary (else one on PATH)."""
    try:
        import pypandoc

        return pypandoc.get_pandoc_path()
    except (ImportError, OSError):
        p = shutil.which("pandoc")
        if p:
            return p
    raise EmoalignError("pandoc is not available", hint="pip install pypandoc-binary (or install Quarto)")


def _run(cmd: list[str], what: str, cwd=None) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise EmoalignError(f"{what} failed (exit {proc.returncode}): {proc.stderr.strip()[-2000:]}",
                            hint="see the message above; re-run with a fresh results folder if it names a table")


def kernel_env() -> dict:
    """The environment for the report kernel: ours, with a non-interactive matplotlib backend.

    (The R bridge restores LD_LIBRARY_PATH after R starts, so a kernel started after R is safe.)"""
    env = dict(os.environ)
    env["MPLBACKEND"] = "Agg"
    return env


def execute_notebook(nb, cwd: Path, *, timeout: int = 900, progress: bool = True):
    """Execute a notebook in ``cwd``; raise EmoalignError naming the first cell that raised."""
    import nbclient
    from tqdm.auto import tqdm

    n = sum(1 for c in nb.cells if c.cell_type == "code")
    bar = tqdm(total=n, desc="report cells", unit="cell", disable=not progress, leave=False)

    def on_cell_executed(**kw):
        bar.update(1)

    try:
        from jupyter_client.manager import KernelManager

        with tempfile.TemporaryDirectory(prefix="emoalign-kernel-") as rt:
            # IPC (unix sockets in a private folder) rather than TCP on loopback: no open port, no
            # dependence on a loopback interface, and no "running over TCP" warning
            km = KernelManager(kernel_name="python3", transport="ipc", ip=str(Path(rt) / "k"))
            client = nbclient.NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3", allow_errors=True,
                                             resources={"metadata": {"path": str(cwd)}}, on_cell_executed=on_cell_executed)
            try:
                client.execute(env=kernel_env())
            finally:  # nbclient leaves a kernel it did not create running
                if km.has_kernel:
                    km.shutdown_kernel(now=True)
    except Exception as exc:  # kernel died / timed out
        raise EmoalignError(f"executing the report notebook failed: {exc}",
                            hint="check that ipykernel is installed in this environment") from exc
    finally:
        bar.close()
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                tb = "\n".join(out.get("traceback", [])[-3:])
                tb = re.sub(r"\x1b\[[0-9;]*m", "", tb)
                first = cell.source.strip().splitlines()[-1] if cell.source.strip() else ""
                raise EmoalignError(f"report cell {i + 1} (`{first[:80]}`) raised {out.get('ename')}: {out.get('evalue')}\n{tb}",
                                    hint="the results folder may not follow docs/results-contract.md; re-run `emoalign analyze`")
    return nb


def render_offline(results, html=None, pdf=None, *, qmd: Path | None = None, keep_markdown: Path | None = None,
                   progress: bool = True) -> RenderResult:
    """Render without Quarto: notebook execution + pandoc (HTML) + Typst (PDF)."""
    t0 = time.perf_counter()
    qmd = Path(qmd) if qmd else quarto_dir() / "report.qmd"
    doc = parse_qmd(qmd.read_text(), source=str(qmd))
    nb = to_notebook(doc, {"results": str(Path(results).resolve())})
    execute_notebook(nb, qmd.parent, progress=progress)
    pandoc = pandoc_path()
    out_html = out_pdf = None
    with tempfile.TemporaryDirectory(prefix="emoalign-report-") as tmp:
        tmp = Path(tmp)
        md_html = tmp / "report-html.md"
        md_text = assemble_markdown(doc, nb, target="html")
        if keep_markdown:
            Path(keep_markdown).write_text(md_text)
        md_html.write_text(externalize_images(number_captions(md_text), tmp / "img"))
        if html:
            out_html = Path(html).resolve()
            out_html.parent.mkdir(parents=True, exist_ok=True)
            css = tmp / "report.css"
            css.write_text(CSS)
            part = out_html.with_name(f".{out_html.name}.part")
            _run([pandoc, str(md_html), "-f", "markdown", "-t", "html5", "--standalone", "--columns=100000", "--embed-resources",
                  "--section-divs", "--css", str(css), *pandoc_args(doc, "html"), "-o", str(part)], "pandoc (HTML)", cwd=tmp)
            os.replace(part, out_html)
        if pdf:
            import typst

            out_pdf = Path(pdf).resolve()
            out_pdf.parent.mkdir(parents=True, exist_ok=True)
            md_pdf = tmp / "report-typst.md"
            md_pdf.write_text(externalize_images(assemble_markdown(doc, nb, target="typst"), tmp / "img"))
            typ = tmp / "report.typ"
            head = tmp / "header.typ"
            head.write_text(header_includes(doc, "typst"))
            # --columns=120: a pipe table wider than that gets relative column widths (from its separator dashes),
            # so its cells wrap within the page instead of running off it
            _run([pandoc, str(md_pdf), "-f", "markdown", "-t", "typst", "--standalone", "--columns=120", "--extract-media", "media",
                  "--include-in-header", str(head), *pandoc_args(doc, "typst"), "-o", str(typ)], "pandoc (Typst)", cwd=tmp)
            part = out_pdf.with_name(f".{out_pdf.name}.part")
            try:
                from emoalign.report.figures import font_dir

                typst.compile(str(typ), output=str(part), root=str(tmp), font_paths=[font_dir()])
            except Exception as exc:
                raise EmoalignError(f"typst could not compile the PDF: {exc}", hint="render HTML only (omit --pdf) and report this") from exc
            os.replace(part, out_pdf)
    return RenderResult(html=out_html, pdf=out_pdf, engine="offline", seconds=time.perf_counter() - t0)


def render_quarto(results, html=None, pdf=None, *, quarto: str = "quarto", qmd: Path | None = None) -> RenderResult:
    """Render with the Quarto CLI in a scratch copy of the quarto/ folder (the package may be read-only)."""
    t0 = time.perf_counter()
    src = Path(qmd).parent if qmd else quarto_dir()
    name = Path(qmd).name if qmd else "report.qmd"
    out_html = out_pdf = None
    with tempfile.TemporaryDirectory(prefix="emoalign-quarto-") as tmp:
        work = Path(tmp) / "quarto"
        shutil.copytree(src, work)
        for fmt, target in (("html", html), ("typst", pdf)):
            if not target:
                continue
            ext = "html" if fmt == "html" else "pdf"
            _run([quarto, "render", name, "--to", fmt, "-P", f"results:{Path(results).resolve()}", "--output", f"report.{ext}"],
                 f"quarto render --to {fmt}", cwd=work)
            dest = Path(target).resolve()
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(work / f"report.{ext}", dest)
            if fmt == "html":
                out_html = dest
            else:
                out_pdf = dest
    return RenderResult(html=out_html, pdf=out_pdf, engine="quarto", seconds=time.perf_counter() - t0)


def render_report(results, html=None, pdf=None, *, engine: str = "auto", progress: bool = True,
                  keep_markdown: Path | None = None) -> RenderResult:
    """Render the report of a results folder. ``engine``: ``auto`` (Quarto if on PATH), ``quarto`` or ``offline``."""
    from emoalign.report.results import Results

    Results.load(results)  # fail early, with a clear message, on a wrong folder
    if not html and not pdf:
        raise EmoalignError("nothing to render", hint="give an HTML output (-o report.html) and/or --pdf report.pdf")
    quarto = shutil.which("quarto")
    if engine == "quarto" and not quarto:
        raise EmoalignError("--engine quarto was asked for but `quarto` is not on PATH",
                            hint="install Quarto (https://quarto.org) or use --engine offline")
    if engine in ("auto", "quarto") and quarto:
        return render_quarto(results, html, pdf, quarto=quarto)
    return render_offline(results, html, pdf, progress=progress, keep_markdown=keep_markdown)


if __name__ == "__main__":  # pragma: no cover - manual use
    r = render_report(sys.argv[1], sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None)
    print(r)
