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
    """Decode every embedded image; fail on anything not a data: URI of a real PNG/SVG."""
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
        else:
            assert b"<svg" in raw[:2000]
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
