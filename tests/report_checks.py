"""Shared checks of a rendered report (HTML + PDF), used by test_report.py and test_demo.py."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image


class _Scan(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.imgs: list[str] = []
        self.external: list[str] = []
        self.captions: list[str] = []
        self._cap = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "img":
            self.imgs.append(a.get("src") or "")
        for key in ("src", "href"):
            v = a.get(key) or ""
            if tag in ("img", "script", "link", "iframe", "source", "video", "audio", "embed") and re.match(r"^(https?:)?//", v):
                self.external.append(f"<{tag} {key}={v}>")
        if tag in ("caption", "figcaption"):
            self._cap = []

    def handle_endtag(self, tag):
        if tag in ("caption", "figcaption") and self._cap is not None:
            self.captions.append(" ".join("".join(self._cap).split()))
            self._cap = None

    def handle_data(self, data):
        if self._cap is not None:
            self._cap.append(data)


def scan_html(path: Path) -> _Scan:
    s = _Scan()
    s.feed(Path(path).read_text(encoding="utf-8"))
    return s


def decode_images(srcs: list[str]) -> list[Image.Image]:
    """Decode every embedded image (PIL images for PNG, SVG text for SVG); fail on anything not a data: URI of a
    real plot."""
    out = []
    for src in srcs:
        m = re.match(r"^data:image/(png|svg\+xml);base64,(.+)$", src, re.S)
        assert m, f"image is not embedded as a data URI: {src[:80]}"
        raw = base64.b64decode(m.group(2), validate=True)
        if m.group(1) == "png":
            im = Image.open(io.BytesIO(raw))
            im.load()
            assert im.format == "PNG" and im.width > 200 and im.height > 100, (im.format, im.size)
            # a real plot has many distinct colours, not a blank canvas
            assert len(im.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 20
            out.append(im)
        else:  # a real vector plot: well-formed SVG with many drawing elements and its text as text
            import xml.etree.ElementTree as ET

            root = ET.fromstring(raw)
            assert root.tag.endswith("svg")
            drawn = raw.count(b"<path") + raw.count(b"<use") + raw.count(b"<image")
            assert drawn > 20 and raw.count(b"<text") > 3, (drawn, raw.count(b"<text"))
            out.append(raw.decode("utf-8"))
    return out


def check_no_external(path: Path, scan: _Scan) -> None:
    text = Path(path).read_text(encoding="utf-8")
    assert not scan.external, scan.external
    assert not re.search(r"@import\s+url\(\s*['\"]?https?:", text)
    assert not re.search(r"url\(\s*['\"]?https?://", text)


def pdf_pages(path: Path) -> int:
    data = Path(path).read_bytes()
    assert data[:5] == b"%PDF-", "not a PDF"
    if shutil.which("pdfinfo"):
        info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True).stdout
        return int(re.search(r"Pages:\s+(\d+)", info).group(1))
    return len(re.findall(rb"/Type\s*/Page\b", data))


def pdf_text(path: Path) -> str:
    if not shutil.which("pdftotext"):
        return ""
    return subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True).stdout


def pdf_words(path: Path) -> list[dict]:
    """Every word of a PDF with its page size and bounding box (pdftotext -bbox); [] without poppler."""
    if not shutil.which("pdftotext"):
        return []
    xml = subprocess.run(["pdftotext", "-bbox", str(path), "-"], capture_output=True, text=True).stdout
    out = []
    for page in re.finditer(r'<page width="([\d.]+)" height="([\d.]+)">(.*?)</page>', xml, re.S):
        w, h = float(page.group(1)), float(page.group(2))
        for m in re.finditer(r'<word xMin="([\d.]+)" yMin="([\d.]+)" xMax="([\d.]+)" yMax="([\d.]+)">([^<]*)</word>', page.group(3)):
            out.append({"page_width": w, "page_height": h, "x0": float(m.group(1)), "y0": float(m.group(2)),
                        "x1": float(m.group(3)), "y1": float(m.group(4)), "text": m.group(5)})
    return out


def svg_images(srcs: list[str]) -> list[str]:
    """The SVG text of every embedded SVG image."""
    out = []
    for src in srcs:
        m = re.match(r"^data:image/svg\+xml;base64,(.+)$", src, re.S)
        if m:
            out.append(base64.b64decode(m.group(1)).decode("utf-8"))
    return out


def svg_min_font_pt(svg: str, printed_width_pt: float) -> float:
    """Smallest font size of an SVG's text once printed ``printed_width_pt`` wide (its text must be text)."""
    width = float(re.search(r'<svg[^>]* width="([\d.]+)pt"', svg).group(1))
    sizes = [float(x) for x in re.findall(r"font-size:\s*([\d.]+)px", svg)]
    assert sizes, "the SVG has no text elements (text drawn as paths?)"
    return min(sizes) * printed_width_pt / width
