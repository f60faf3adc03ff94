"""Published values of a paper, as package data, for the replication scorecard.

A published set is a YAML file (``published/tae2026.yaml`` documents the format): a citation, the
paper's model names, a tolerance per measure, and one entry per printed number with its
``table``/``row``/``column`` keys, the number as printed (``published``: a string, so the printed digits
are kept), its ``measure`` and ``find``: where its counterpart lives in an emoalign results folder.

    >>> pub = load_published("tae2026")
    >>> pub.values.head()        # table, row, column, published, measure, find, value, bound, half_unit
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from emoalign.errors import EmoalignError

PUBLISHED_DIR = Path(__file__).resolve().parent / "published"
MEASURES = ("r", "proportion", "kappa", "alpha", "mean", "sd", "mae", "bias", "beta", "sd_ratio", "t", "variance",
            "ratio", "p")


def builtin_published() -> list[str]:
    """Names of the published sets shipped with the package."""
    return sorted(p.stem for p in PUBLISHED_DIR.glob("*.yaml"))


@dataclass(frozen=True)
class Published:
    """A loaded published set: citation, model names, tolerances and one row per published value."""

    name: str
    citation: str
    short: str
    models: dict
    tolerance: dict
    values: pd.DataFrame

    def tables(self) -> list[str]:
        """Table keys in the order the file lists them."""
        return list(dict.fromkeys(self.values["table"]))


_NUM = re.compile(r"^([<>]\s*)?([+\-−]?)(\d*)(?:\.(\d+))?$")


def parse_value(text: str) -> tuple[float, str | None, float]:
    """A printed number -> (value, bound, half a unit of its last digit).

    ``bound`` is ``"<"`` for ``"< .001"`` (the value is the bound) and ``"n.s."`` for a p-value reported
    only as not significant (value NaN). The minus sign may be ``−`` (U+2212) as the paper prints it.
    """
    s = str(text).strip()
    if s.lower() in ("n.s.", "ns"):
        return math.nan, "n.s.", 0.0
    m = _NUM.match(s.replace(" ", ""))
    if not m or not (m.group(3) or m.group(4)):
        raise ValueError(f"not a printed number: {text!r}")
    bound = "<" if (m.group(1) or "").startswith("<") else (">" if m.group(1) else None)
    digits = m.group(4) or ""
    value = float(f"{m.group(3) or '0'}.{digits or '0'}") * (-1 if m.group(2) in ("-", "−") else 1)
    return value, bound, 0.5 * 10 ** -len(digits)


def _check(doc: dict, source: str) -> None:
    for key in ("name", "citation", "tolerance", "values"):
        if key not in doc:
            raise EmoalignError(f"published values {source}: missing top-level key {key!r}",
                                hint="see emoalign/replication/published/tae2026.yaml for the format")
    for i, v in enumerate(doc["values"]):
        missing = [k for k in ("table", "row", "column", "published", "measure", "find") if k not in v]
        if missing:
            raise EmoalignError(f"published values {source}: entry {i + 1} lacks {', '.join(missing)}",
                                hint="every entry needs table, row, column, published, measure and find")
        if v["measure"] not in doc["tolerance"]:
            raise EmoalignError(f"published values {source}: entry {i + 1} ({v['table']}, {v['row']}, {v['column']}) "
                                f"has measure {v['measure']!r} without a tolerance",
                                hint=f"add it under `tolerance` (measures: {', '.join(MEASURES)})")
        if "analysis" not in (v["find"] or {}):
            raise EmoalignError(f"published values {source}: entry {i + 1} has no find.analysis",
                                hint="name the analysis id whose table holds the counterpart")
        try:
            parse_value(v["published"])
        except ValueError as exc:
            raise EmoalignError(f"published values {source}: entry {i + 1}: {exc}",
                                hint="write the number as printed, e.g. '0.726', '−1.99', '< .001' or 'n.s.'") from None


def load_published(name_or_path: str | Path = "tae2026") -> Published:
    """Load a built-in published set by name or a YAML file of the same format."""
    p = Path(str(name_or_path))
    if p.suffix.lower() not in (".yaml", ".yml"):
        p = PUBLISHED_DIR / f"{name_or_path}.yaml"
        if not p.exists():
            raise EmoalignError(f"unknown published values {str(name_or_path)!r}",
                                hint=f"built-in: {', '.join(builtin_published())}; or give a path to a YAML file")
    elif not p.exists():
        raise EmoalignError(f"published values file not found: {p}", hint="compare_to.published is relative to the spec")
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise EmoalignError(f"published values {p} are not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise EmoalignError(f"published values {p} must be a YAML mapping", hint="see tae2026.yaml for the format")
    _check(doc, str(p))
    values = pd.DataFrame(doc["values"])
    parsed = [parse_value(x) for x in values["published"]]
    values["value"] = [x[0] for x in parsed]
    values["bound"] = [x[1] for x in parsed]
    values["half_unit"] = [x[2] for x in parsed]
    return Published(name=str(doc["name"]), citation=str(doc["citation"]), short=str(doc.get("short") or doc["name"]),
                     models=dict(doc.get("models") or {}), tolerance=dict(doc["tolerance"]), values=values)
