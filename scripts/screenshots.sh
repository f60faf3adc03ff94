#!/usr/bin/env bash
# Screenshots of a rendered report, to look at before calling a report change done.
#   scripts/screenshots.sh report.html [report.pdf] [OUT_DIR]
# HTML: one tall headless-Chromium shot (1400 x SCREENSHOT_HEIGHT px, default 40000; blank space at the
# bottom is trimmed), cut into html-NN.png tiles of TILE px (default 2200) that an image viewer can show.
# PDF: pdftoppm, one pdf-NN.png per page (PDF_DPI, default 60).
set -euo pipefail
html=${1:?usage: scripts/screenshots.sh report.html [report.pdf] [OUT_DIR]}
pdf=${2:-}
out=${3:-screenshots}
height=${SCREENSHOT_HEIGHT:-40000}
tile=${TILE:-2200}
here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
[[ -x "$py" ]] || py=python3
mkdir -p "$out"
outabs=$(readlink -f "$out")
chrome=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
if [[ -z "$chrome" ]]; then echo "chromium not found; skipping HTML screenshots" >&2; else
  profile=$(mktemp -d)
  trap 'rm -rf "$profile"' EXIT
  timeout 180 "$chrome" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync --hide-scrollbars \
    --user-data-dir="$profile" --screenshot="$outabs/html-full.png" --window-size=1400,"$height" \
    "file://$(readlink -f "$html")" >/dev/null 2>&1 || echo "chromium failed" >&2
  if [[ -f "$outabs/html-full.png" ]]; then
    "$py" - "$outabs/html-full.png" "$tile" <<'PY'
import sys
from pathlib import Path
from PIL import Image, ImageOps
full, tile = Path(sys.argv[1]), int(sys.argv[2])
im = Image.open(full).convert("RGB")
box = ImageOps.invert(im.convert("L")).getbbox()  # content extent (non-white)
bottom = min(im.height, (box[3] + 40) if box else im.height)
if bottom >= im.height - 5:
    print(f"warning: the page may be taller than the {im.height}px window; raise SCREENSHOT_HEIGHT", file=sys.stderr)
for k, top in enumerate(range(0, bottom, tile), 1):
    p = full.with_name(f"html-{k:02d}.png")
    im.crop((0, top, im.width, min(bottom, top + tile))).save(p)
    print(p)
PY
  fi
fi
if [[ -n "$pdf" ]]; then
  if command -v pdftoppm >/dev/null; then
    pdftoppm -png -r "${PDF_DPI:-60}" "$pdf" "$out/pdf"
    ls "$out"/pdf*.png
  else echo "pdftoppm not found (apt install poppler-utils); skipping PDF pages" >&2; fi
fi
