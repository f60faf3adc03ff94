"""The replication scorecard: every published value beside this study's estimate, CI and verdict.

A published value ``v`` (printed to a last digit with half-unit ``h``) and this study's estimate ``x``
with 95% CI ``[lo, hi]`` (when the results table has one) are compared per the value's ``measure``:

* ``p`` (a p-value): inside when both give the same verdict at alpha = .05 (``< .001`` and any printed
  p < .05 are significant; ``n.s.`` and p >= .05 are not);
* any other measure: inside when ``lo - h <= v <= hi + h`` (the published value lies in this study's CI)
  or ``|x - v| <= tol``, the measure's tolerance (absolute, or ``{relative: f}``: ``f * |v|``).

With real model runs this is a replication of the paper; on a simulated study it measures how well
the simulator reproduces the paper. Nothing is estimated here: the estimates are read from the
results tables the analyses wrote.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import pandas as pd

from emoalign.replication.published import Published

ALPHA = 0.05
#: scorecard columns
COLUMNS = ["table", "row", "column", "published", "measure", "analysis", "rater", "estimate", "conf_low", "conf_high",
           "difference", "tolerance", "in_ci", "inside", "status", "note"]


def tolerance_of(published: Published, measure: str, value: float) -> float | None:
    """Absolute tolerance of a published value (None for p-values, which compare verdicts)."""
    tol = published.tolerance.get(measure)
    if measure == "p" or tol in (None, "verdict"):
        return None
    if isinstance(tol, dict):
        return float(tol.get("relative", 0.0)) * abs(value) + float(tol.get("absolute", 0.0))
    return float(tol)


def tolerance_text(published: Published, measure: str) -> str:
    tol = published.tolerance.get(measure)
    if measure == "p" or tol == "verdict":
        return "same verdict at α = .05"
    if isinstance(tol, dict):
        return f"±{100 * float(tol.get('relative', 0)):.0f}%"
    return f"±{float(tol):g}"


def find_row(table: pd.DataFrame, find: dict, rater_map: dict[str, str]) -> pd.Series | None:
    """The row of ``table`` that ``find`` selects (``rater`` mapped through ``rater_map``), or None."""
    mask = pd.Series(True, index=table.index)
    for key, want in find.items():
        if key in ("analysis", "value"):
            continue
        if key == "rater" and want is not None:
            want = rater_map.get(str(want), str(want))
        if key not in table.columns:
            if want is None:
                continue
            return None
        col = table[key]
        mask &= col.isna() if want is None else (col.astype(str) == str(want))
    hit = table[mask]
    return hit.iloc[0] if len(hit) else None


def _num(x) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return math.nan
    return v


def compare(entry: pd.Series, row: pd.Series | None, published: Published) -> dict:
    """One scorecard row: the published value against the estimate of ``row``."""
    find = dict(entry["find"])
    field = find.get("value", "estimate")
    out = {"estimate": math.nan, "conf_low": math.nan, "conf_high": math.nan, "difference": math.nan,
           "tolerance": tolerance_text(published, entry["measure"]), "in_ci": None, "inside": None,
           "status": "not estimated", "note": ""}
    if row is None:
        out["note"] = "no matching row in the results"
        return out
    x = _num(row.get(field))
    if math.isnan(x):
        out["note"] = f"{field} is missing"
        return out
    out["estimate"] = x
    v = entry["value"]
    bound = entry["bound"] if isinstance(entry["bound"], str) else None   # missing: None or NaN (pandas)
    if entry["measure"] == "p":
        pub_sig = bound == "<" or (bound is None and v < ALPHA)
        if bound == "<" and v >= ALPHA:
            pub_sig = None  # "< .10" says nothing at .05
        est_sig = x < ALPHA
        out["inside"] = None if pub_sig is None else bool(pub_sig == est_sig)
        out["note"] = ("both significant" if est_sig and pub_sig else "both not significant" if not est_sig and not pub_sig
                       else "significant here only" if est_sig else "significant in the paper only")
    else:
        lo = _num(row.get("conf_low")) if field == "estimate" else math.nan
        hi = _num(row.get("conf_high")) if field == "estimate" else math.nan
        out["conf_low"], out["conf_high"] = lo, hi
        out["difference"] = x - v
        h = float(entry["half_unit"])
        in_ci = None if (math.isnan(lo) or math.isnan(hi)) else bool(lo - h <= v <= hi + h)
        tol = tolerance_of(published, entry["measure"], v)
        within = bool(abs(x - v) <= tol + 1e-12) if tol is not None else False
        out["in_ci"] = in_ci
        out["inside"] = bool(in_ci or within)
    out["status"] = "inside" if out["inside"] else ("outside" if out["inside"] is not None else "not comparable")
    return out


def scorecard(table: Callable[[str], pd.DataFrame | None], published: Published,
              raters: dict[str, str] | None = None) -> pd.DataFrame:
    """Every published value beside this study's estimate (see the module docstring for the rule).

    ``table(analysis_id)`` returns a results table or None (``Results.table``); ``raters`` maps the
    published model keys onto this study's rater names (default: the same names).
    """
    raters = dict(raters or {})
    cache: dict[str, pd.DataFrame | None] = {}
    rows = []
    for _, e in published.values.iterrows():
        find = dict(e["find"])
        aid = find["analysis"]
        if aid not in cache:
            cache[aid] = table(aid)
        t = cache[aid]
        hit = find_row(t, find, raters) if t is not None else None
        res = compare(e, hit, published)
        if t is None:
            res["note"] = f"analysis {aid} is not in these results"
        rater = find.get("rater")
        rows.append({"table": e["table"], "row": e["row"], "column": e["column"], "published": e["published"],
                     "measure": e["measure"], "analysis": aid,
                     "rater": raters.get(str(rater), rater) if rater is not None else None, **res})
    return pd.DataFrame(rows, columns=COLUMNS)


def summary(card: pd.DataFrame, order: list[str] | None = None) -> pd.DataFrame:
    """Per table: published values, estimated here, inside their tolerance, and the share inside
    (of those estimated and comparable); a final ``All`` row."""
    order = order or list(dict.fromkeys(card["table"]))
    rows = []
    for t in [*order, None]:
        c = card if t is None else card[card["table"] == t]
        compared = c[c["inside"].notna()]
        inside = int(compared["inside"].astype(bool).sum())
        rows.append({"table": "All" if t is None else t, "published": int(len(c)), "estimated": int(len(compared)),
                     "inside": inside, "outside": int(len(compared) - inside),
                     "share_inside": inside / len(compared) if len(compared) else np.nan})
    return pd.DataFrame(rows)
