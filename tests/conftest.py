"""Shared pytest fixtures. Tiny random-weight VLMs (Gemma3, Mllama) live in tests/fixtures/tiny_vlm.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))

from tiny_vlm import tiny_gemma3_dir, tiny_gemma3_sliding_dir, tiny_images, tiny_mllama_dir  # noqa: E402,F401

# --doctest-modules (pyproject) runs the numpydoc examples of the package; the fixtures and helpers here hold none
collect_ignore_glob = ["fixtures/*.py", "faults/faultkit.py", "report_checks.py"]
