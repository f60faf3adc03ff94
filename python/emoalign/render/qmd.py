"""A minimal Quarto-markdown reader for the offline renderer: .qmd -> notebook -> pandoc markdown.

Handles what ``quarto/report.qmd`` uses, with Quarto's meaning: YAML front matter; fenced
```` ```{python} ```` cells whose leading ``#| key: value`` lines are cell options (``echo``,
``output`` incl. ``asis``, ``include``, ``warning``, ``label``, ``fig-cap``, ``tbl-cap``, ``tags``); the
front matter's ``execute:`` defaults; a ``parameters``-tagged cell followed by injected values.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

import yaml

from emoalign.errors import EmoalignError

_FENCE = re.compile(r"^(?P<ticks>`{3,})\s*\{(?P<lang>[A-Za-z0-9_]+)(?P<rest>[^}]*)\}\s*$")


@dataclass
class Chunk:
    kind: str  # "md" or "code"
    text: str
    options: dict = field(default_factory=dict)
    line: int = 0


@dataclass
class QmdDoc:
    front: dict
    chunks: list[Chunk]

    def execute_defaults(self) -> dict:
        return dict(self.front.get("execute") or {})

    def format_options(self, target: str) -> dict:
        fmt = self.front.get("format") or {}
        opts = fmt.get(target) if isinstance(fmt, dict) else None
        return dict(opts or {})


def parse_qmd(text: str, source: str = "report.qmd") -> QmdDoc:
    """Split a .qmd into front matter and markdown/code chunks (code: ``{python}`` fences only)."""
    lines = text.splitlines()
    front: dict = {}
    i = 0
    if lines and lines[0].strip() == "---":
        try:
            end = next(k for k in range(1, len(lines)) if lines[k].strip() in ("---", "..."))
        except StopIteration:
            raise EmoalignError(f"{source}: the YAML front matter opened on line 1 is never closed",
                                hint="end it with a line holding only ---") from None
        try:
            front = yaml.safe_load("\n".join(lines[1:end])) or {}
        except yaml.YAMLError as exc:
            raise EmoalignError(f"{source}: invalid YAML front matter: {exc}") from exc
        i = end + 1
    chunks: list[Chunk] = []
    buf: list[str] = []
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            buf.append(lines[i])
            i += 1
            continue
        if buf:
            chunks.append(Chunk("md", "\n".join(buf)))
            buf = []
        start, ticks, lang = i, m["ticks"], m["lang"]
        i += 1
        body: list[str] = []
        while i < len(lines) and lines[i].strip() != ticks:
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            raise EmoalignError(f"{source}: the code cell opened on line {start + 1} is never closed",
                                hint=f"close it with a line holding only {ticks}")
        i += 1
        if lang != "python":
            raise EmoalignError(f"{source}:{start + 1}: only {{python}} cells are supported offline (found {{{lang}}})",
                                hint="install Quarto to render other engines")
        opt_lines = []
        while body and body[0].startswith("#|"):
            opt_lines.append(body.pop(0)[2:].strip())
        try:
            options = yaml.safe_load("\n".join(opt_lines)) or {} if opt_lines else {}
        except yaml.YAMLError as exc:
            raise EmoalignError(f"{source}:{start + 1}: invalid cell options: {exc}") from exc
        chunks.append(Chunk("code", "\n".join(body), options, start + 1))
    if buf:
        chunks.append(Chunk("md", "\n".join(buf)))
    return QmdDoc(front, chunks)


def to_notebook(doc: QmdDoc, params: dict | None = None):
    """A notebook of the code chunks; injected parameter values follow the ``parameters`` cell."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    injected = False
    for idx, ch in enumerate(doc.chunks):
        if ch.kind != "code":
            continue
        tags = ch.options.get("tags") or []
        cell = nbformat.v4.new_code_cell(ch.text, metadata={"tags": list(tags), "qmd_chunk": idx})
        nb.cells.append(cell)
        if "parameters" in tags and params:
            src = "\n".join(f"{k} = {v!r}" for k, v in params.items())
            nb.cells.append(nbformat.v4.new_code_cell(src, metadata={"tags": ["injected-parameters"], "qmd_chunk": None}))
            injected = True
    if params and not injected:
        nb.cells.insert(0, nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in params.items()),
                                                     metadata={"tags": ["injected-parameters"], "qmd_chunk": None}))
    return nb


def _opt(options: dict, defaults: dict, key: str, default):
    return options.get(key, defaults.get(key, default))


def _image_md(data_b64: str, mime: str, caption: str, label: str | None) -> str:
    attrs = f"{{#{label}}}" if label else ""
    return f"\n![{caption}](data:{mime};base64,{data_b64}){attrs}\n"


def cell_markdown(chunk: Chunk, cell, defaults: dict, target: str) -> str:
    """Markdown for one executed code cell, honouring Quarto's echo/output/include/warning options."""
    o = chunk.options
    if not _opt(o, defaults, "include", True):
        return ""
    parts = []
    if _opt(o, defaults, "echo", True):
        parts.append(f"```python\n{chunk.text}\n```\n")
    output = _opt(o, defaults, "output", True)
    if output is False:
        return "\n".join(parts)
    asis = output == "asis"
    label = o.get("label")
    fig_cap = o.get("fig-cap", "")
    show_warn = _opt(o, defaults, "warning", True)
    n_img = 0
    for out in cell.get("outputs", []):
        ot = out.get("output_type")
        if ot == "stream":
            if out.get("name") == "stderr" and not show_warn:
                continue
            text = out.get("text", "")
            parts.append(text if asis else f"```\n{text.rstrip()}\n```\n")
        elif ot in ("display_data", "execute_result"):
            data = out.get("data", {})
            if "text/markdown" in data:
                parts.append(data["text/markdown"])
            elif "image/png" in data or "image/svg+xml" in data:
                mime = "image/png" if "image/png" in data else "image/svg+xml"
                raw = data[mime]
                b64 = raw if mime == "image/png" else base64.b64encode(raw.encode()).decode()
                parts.append(_image_md(b64.replace("\n", ""), mime, fig_cap if n_img == 0 else "",
                                       label if n_img == 0 else None))
                n_img += 1
            elif "text/html" in data and target == "html":
                parts.append(f"\n```{{=html}}\n{data['text/html']}\n```\n")
            elif "text/plain" in data:
                text = data["text/plain"]
                parts.append(text if asis else f"```\n{text.rstrip()}\n```\n")
    return "\n".join(parts)


#: format options that are pandoc command-line switches, not metadata
SWITCHES = {"toc", "toc-depth", "number-sections", "embed-resources", "self-contained", "include-in-header"}


def header_includes(doc: QmdDoc, target: str) -> str:
    """The text of the target's ``include-in-header`` entries (Quarto syntax: a list of ``{text: ...}`` or
    ``{file: ...}`` items, or one string), for pandoc's ``--include-in-header``."""
    inc = doc.format_options(target).get("include-in-header")
    items = inc if isinstance(inc, list) else [inc] if inc else []
    out = []
    for it in items:
        if isinstance(it, dict) and "text" in it:
            out.append(str(it["text"]))
        elif isinstance(it, str):
            out.append(it)
        else:
            raise EmoalignError(f"include-in-header entry {it!r} is not supported offline",
                                hint="use `- text: |` with the header content inline")
    return "\n".join(out)


_TBL_CAPTION = re.compile(r"^: (?!Table \d+: )(.*\{#tbl-[^}]+\}.*)$", re.M)
_FIG = re.compile(r"^!\[(?!Figure \d+: )(?=[^\n]*\{#fig-)", re.M)


def number_captions(markdown: str) -> str:
    """Prefix every labelled table caption with ``Table N:`` and figure caption with ``Figure N:`` in document
    order, as Quarto and the Typst PDF number them (plain pandoc HTML does not)."""
    events = sorted([(m.start(), "tbl") for m in _TBL_CAPTION.finditer(markdown)]
                    + [(m.start(), "fig") for m in _FIG.finditer(markdown)])
    counts = {"tbl": 0, "fig": 0}
    out, last = [], 0
    for pos, kind in events:
        counts[kind] += 1
        out.append(markdown[last:pos])
        if kind == "tbl":
            out.append(f": Table {counts['tbl']}: ")
            last = pos + 2
        else:
            out.append(f"![Figure {counts['fig']}: ")
            last = pos + 2
    out.append(markdown[last:])
    return "".join(out)


def pandoc_args(doc: QmdDoc, target: str) -> list[str]:
    f = doc.format_options(target)
    args = []
    if f.get("toc"):
        args += ["--toc", f"--toc-depth={int(f.get('toc-depth', 3))}"]
    if f.get("number-sections"):
        args.append("--number-sections")
    return args


def assemble_markdown(doc: QmdDoc, nb, target: str = "html") -> str:
    """Pandoc markdown of the executed document (front matter: title etc. + the target's format options)."""
    meta = {k: v for k, v in doc.front.items() if k not in ("format", "execute", "jupyter", "params", "engine")}
    meta.update({k: v for k, v in doc.format_options(target).items() if k not in SWITCHES})
    cells = {c.metadata.get("qmd_chunk"): c for c in nb.cells if c.metadata.get("qmd_chunk") is not None}
    defaults = doc.execute_defaults()
    body = []
    for idx, ch in enumerate(doc.chunks):
        if ch.kind == "md":
            body.append(ch.text)
        elif idx in cells:
            body.append(cell_markdown(ch, cells[idx], defaults, target))
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) if meta else ""
    return (f"---\n{front}---\n\n" if front else "") + "\n\n".join(body) + "\n"
