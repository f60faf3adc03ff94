"""Check a stimulus table against its files and its design.

Errors (``CheckReport.ok`` is False): missing files, files Pillow cannot decode (``verify()`` then a
full ``load()``, which also catches truncated data), duplicate ``image_id``, identical image contents
under different ids (SHA-256), recorded ``sha256`` differing from the file's, and intended labels
that are empty or outside the study's emotion set.

Warnings: factorial imbalance. The balance table counts images in every cell of the full crossing of
the design columns' levels (default ``race x gender x emotion``, those present; emotions of the study
set with no image count as cells with 0) and flags the cells whose count differs from the modal count.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Sequence

import pandas as pd

from emoalign.data.io import read_table
from emoalign.errors import EmoalignError, format_examples
from emoalign.stimuli.scan import file_sha256

DEFAULT_DESIGN = ("race", "gender", "emotion")


@dataclass(frozen=True)
class Issue:
    """One kind of problem: a stable ``kind`` name, a one-line message, how many, and the first examples."""

    kind: str
    message: str
    count: int
    examples: tuple[str, ...] = ()

    def line(self) -> str:
        ex = f": {format_examples(self.examples)}" if self.examples else ""
        return f"{self.message} ({self.count}){ex}"


@dataclass(frozen=True)
class CheckReport:
    """Result of :func:`check_stimuli`. ``balance`` has the design columns, ``n`` and ``off_modal`` per cell."""

    n_images: int
    errors: tuple[Issue, ...] = ()
    warnings: tuple[Issue, ...] = ()
    design: tuple[str, ...] = ()
    balance: pd.DataFrame = field(default_factory=pd.DataFrame)
    modal_count: int | None = None

    @property
    def ok(self) -> bool:
        return not self.errors

    def error_kinds(self) -> set[str]:
        return {e.kind for e in self.errors}

    def format(self, max_cells: int = 40) -> str:
        """Human-readable report: problems, then the balance table (all cells, or only off-modal ones when many)."""
        out = [f"{self.n_images} images checked"]
        for e in self.errors:
            out.append(f"ERROR   {e.line()}")
        for w in self.warnings:
            out.append(f"WARNING {w.line()}")
        if self.design and not self.balance.empty:
            b = self.balance
            n_off = int(b["off_modal"].sum())
            out.append("")
            out.append(f"balance over {' x '.join(self.design)}: {len(b)} cells, modal count {self.modal_count}, "
                       f"{n_off} cell(s) off the modal count")
            show = b if len(b) <= max_cells else b[b["off_modal"]]
            if len(show) > max_cells:
                out.append(f"(showing the first {max_cells} off-modal cells)")
                show = show.head(max_cells)
            if len(show):
                table = show.assign(off_modal=show["off_modal"].map({True: "<-", False: ""}))
                table = table.rename(columns={"off_modal": ""})
                out.append(table.to_string(index=False))
        if self.ok:
            out.append("")
            out.append("OK" + (" (with warnings)" if self.warnings else ""))
        else:
            out.append("")
            out.append(f"FAILED: {len(self.errors)} kind(s) of error")
        return "\n".join(out)


def balance_table(stimuli: pd.DataFrame, design: Sequence[str], levels: dict[str, Sequence[str]] | None = None
                  ) -> tuple[pd.DataFrame, int | None]:
    """Count images per cell of the full crossing of ``design`` columns; flag cells off the modal count.

    ``levels`` adds levels that may have no image (e.g. the study's emotion set). Missing values count as
    their own level ``"<NA>"``. Returns (table with design columns, ``n``, ``off_modal``; modal count).
    The modal count is the most frequent cell count (ties: the largest).
    """
    design = list(design)
    if not design:
        return pd.DataFrame(columns=["n", "off_modal"]), None
    d = stimuli[design].astype("string").fillna("<NA>")
    lv = []
    for c in design:
        observed = sorted(str(x) for x in pd.unique(d[c]))
        given = [str(x) for x in (levels or {}).get(c, [])]
        lv.append(given + [x for x in observed if x not in given])
    grid = pd.DataFrame(list(product(*lv)), columns=design)
    counts = d.value_counts(design).rename("n").reset_index()
    table = grid.merge(counts, on=design, how="left")
    table["n"] = table["n"].fillna(0).astype(int)
    freq = table["n"].value_counts()
    modal = int(max(freq[freq == freq.max()].index))
    table["off_modal"] = table["n"] != modal
    return table, modal


def _verify_image(path: Path) -> str | None:
    """None when Pillow can open, verify and fully decode the file, else the error text."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.verify()
        with Image.open(path) as im:
            im.load()
    except Exception as exc:  # PIL raises many types for damaged files
        return f"{type(exc).__name__}: {exc}"
    return None


def _suggest(label: str, allowed: Sequence[str]) -> str:
    low = {a.lower(): a for a in allowed}
    if label.strip().lower() in low:
        return f" (did you mean {low[label.strip().lower()]!r}?)"
    close = difflib.get_close_matches(label, list(allowed), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def duplicate_content_issue(ids: pd.Series, hashes: pd.Series) -> Issue | None:
    """Images whose SHA-256 is equal under different ids (``hashes`` indexed like ``ids``), else None."""
    hashes = hashes.dropna().astype("string")
    same = hashes[hashes.duplicated(keep=False)]
    if not len(same):
        return None
    groups = [" = ".join(ids.loc[g.index].astype(str).tolist()) for _, g in same.groupby(same)]
    return Issue("duplicate_content", "identical image contents under different ids", len(groups), tuple(groups[:5]))


def label_issue(labels: pd.Series, emotions: Sequence[str]) -> Issue | None:
    """Non-empty labels outside the study's emotion set (with did-you-mean), else None."""
    allowed = [str(e) for e in emotions]
    labels = labels.astype("string")
    outside = labels[labels.notna() & (labels.str.strip() != "") & ~labels.isin(allowed)]
    if not len(outside):
        return None
    counts = outside.value_counts()
    ex = tuple(f"{lab!r} x{n}{_suggest(lab, allowed)}" for lab, n in counts.head(5).items())
    return Issue("bad_label", f"label outside the study's emotions [{', '.join(allowed)}]", int(len(outside)), ex)


def check_stimuli(
    stimuli: pd.DataFrame | str | os.PathLike,
    *,
    emotions: Sequence[str] | None = None,
    design: Sequence[str] | None = None,
    root: str | os.PathLike | None = None,
    verify_images: bool = True,
    progress: bool = False,
) -> CheckReport:
    """Check a stimuli table (a DataFrame or a parquet/CSV path) and its image files.

    Parameters
    ----------
    emotions : the study's emotion label set; labels outside it are errors (None: not checked).
    design : design columns for the balance table (default: those of ``race, gender, emotion`` present).
    root : folder that relative ``path`` values resolve against (default: the table file's folder, or cwd).
    verify_images : open, verify and decode every file with Pillow and recompute its SHA-256.
    """
    if isinstance(stimuli, (str, os.PathLike)):
        src = Path(stimuli)
        df = read_table(src)
        root = Path(root) if root is not None else src.resolve().parent
    else:
        df = stimuli.copy()
        root = Path(root) if root is not None else Path.cwd()
    for col in ("image_id", "path", "emotion"):
        if col not in df.columns:
            raise EmoalignError(f"the stimuli table has no {col!r} column; it has: {', '.join(map(str, df.columns))}",
                                hint="build it with `emoalign stimuli scan`")
    if design is None:
        design = [c for c in DEFAULT_DESIGN if c in df.columns]
    else:
        design = [c.strip() for c in design if c.strip()]
        unknown = [c for c in design if c not in df.columns]
        if unknown:
            raise EmoalignError(f"--design column(s) {', '.join(unknown)} not in the stimuli table",
                                hint=f"its columns are: {', '.join(map(str, df.columns))}")

    errors: list[Issue] = []
    ids = df["image_id"].astype("string")

    dup = ids[ids.duplicated(keep=False)]
    if len(dup):
        errors.append(Issue("duplicate_id", "duplicate image_id", int(dup.nunique()), tuple(pd.unique(dup))[:5]))

    missing, unreadable, mismatch = [], [], []
    actual_hash: dict[int, str] = {}
    recorded = df["sha256"] if "sha256" in df.columns else pd.Series([None] * len(df), index=df.index)
    rows = list(zip(df.index, ids, df["path"].astype("string"), recorded))
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc="checking", unit="img", disable=len(rows) < 50, leave=False)
    for idx, image_id, path, rec_hash in rows:
        if pd.isna(path) or not str(path):
            missing.append(f"{image_id} (empty path)")
            continue
        p = Path(str(path))
        p = p if p.is_absolute() else root / p
        if not p.is_file():
            missing.append(f"{image_id} -> {p}")
            continue
        if not verify_images:
            continue
        problem = _verify_image(p)
        if problem:
            unreadable.append(f"{image_id} ({p.name}: {problem})")
        h = file_sha256(p)
        actual_hash[idx] = h
        if rec_hash is not None and not pd.isna(rec_hash) and str(rec_hash) and str(rec_hash) != h:
            mismatch.append(f"{image_id} ({p.name})")
    if missing:
        errors.append(Issue("missing_file", f"missing file (paths resolve against {root})", len(missing), tuple(missing[:5])))
    if unreadable:
        errors.append(Issue("unreadable", "unreadable image", len(unreadable), tuple(unreadable[:5])))
    if mismatch:
        errors.append(Issue("sha256_mismatch", "file changed since scan (sha256 differs from the recorded hash)",
                            len(mismatch), tuple(mismatch[:5])))

    hashes = pd.Series(actual_hash, dtype="string") if actual_hash else recorded.dropna().astype("string")
    dup_content = duplicate_content_issue(ids, hashes)
    if dup_content:
        errors.append(dup_content)

    labels = df["emotion"].astype("string")
    empty = ids[labels.isna() | (labels.str.strip() == "")]
    if len(empty):
        errors.append(Issue("missing_label", "empty intended emotion label", len(empty), tuple(empty.head(5))))
    if emotions is not None:
        bad = label_issue(labels, emotions)
        if bad:
            errors.append(bad)

    warnings: list[Issue] = []
    levels = {"emotion": list(emotions)} if emotions is not None and "emotion" in design else None
    balance, modal = balance_table(df, design, levels)
    if modal is not None and balance["off_modal"].any():
        off = balance[balance["off_modal"]]
        ex = tuple(", ".join(f"{c}={r[c]}" for c in design) + f": {r['n']}" for _, r in off.head(5).iterrows())
        warnings.append(Issue("imbalance", f"unbalanced design: cells off the modal count of {modal}", len(off), ex))
    return CheckReport(n_images=len(df), errors=tuple(errors), warnings=tuple(warnings), design=tuple(design),
                       balance=balance, modal_count=modal)

