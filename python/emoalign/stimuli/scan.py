"""Build a stimulus table (``stimuli.parquet``) from a folder of images or a manifest.

Two inputs, which can be combined:

* a folder plus a filename *pattern* such as ``"{race}_{gender}_{identity_id}_{emotion}.png"``: every
  ``{name}`` is a metadata column read from the file's path relative to the folder (a pattern may
  contain ``/`` to read folder names, e.g. ``"{emotion}/{image_id}.jpg"``). A field never contains
  ``/``, the character that follows it in the pattern, nor a separator used between two fields, so in
  ``{race}_{gender}_{identity_id}_{emotion}.png`` no field contains ``_`` and ``{emotion}`` stops at the
  first ``.``; a file with an extra part (``asian_f_01_very_happy.png``) is unmatched. Fields whose name starts with ``_`` (``{_}``,
  ``{_take}``) are matched but not recorded. ``image_id`` is the file stem unless the pattern names
  ``{image_id}``.
* a manifest (CSV, TSV or parquet) with ``path`` and ``emotion`` (optional ``image_id``, default: file
  stem) plus any design columns. Relative paths resolve against the folder if one is given, else
  against the manifest's folder. With a pattern too, pattern fields fill the columns the manifest
  lacks, and a value both give must agree.

Every image gets ``sha256`` (of the file bytes), ``width`` and ``height`` (read with Pillow; left empty
when the file cannot be decoded — ``emoalign stimuli check`` then reports it) and a ``path`` stored
relative to the output file's folder, so a study folder can be moved as a whole.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import pandas as pd

from emoalign.data.io import file_sha256  # noqa: F401  (re-exported: emoalign.stimuli.file_sha256)
from emoalign.errors import EmoalignError, format_examples

#: file suffixes treated as images when scanning a folder
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})

#: columns the scanner writes itself; a pattern or manifest may not define them (``path`` only in a manifest)
_COMPUTED = ("sha256", "width", "height")

_FIELD = re.compile(r"\{([^{}]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class FilenamePattern:
    """A compiled filename pattern: ``regex`` matches a relative POSIX path, ``fields`` are the recorded names."""

    pattern: str
    regex: re.Pattern
    fields: tuple[str, ...]

    def parse(self, relpath: str) -> dict[str, str] | None:
        """Return the recorded fields of ``relpath`` or None when it does not match."""
        m = self.regex.fullmatch(relpath)
        if m is None:
            return None
        return {k: v for k, v in m.groupdict().items() if not k.startswith("_")}


def compile_pattern(pattern: str) -> FilenamePattern:
    """Compile ``"{race}_{gender}_{identity_id}_{emotion}.png"`` into a :class:`FilenamePattern`.

    Literal text matches itself (case-insensitively, so ``.png`` matches ``.PNG``); each ``{name}``
    matches one or more characters other than ``/``, the literal character that follows it, and the
    first characters of the separators between fields.
    """
    if not pattern or not pattern.strip():
        raise EmoalignError("the --pattern is empty", hint='e.g. --pattern "{race}_{gender}_{identity_id}_{emotion}.png"')
    parts = _FIELD.split(pattern)  # literal, name, literal, name, ..., literal
    literals, names = parts[0::2], parts[1::2]
    if not names:
        raise EmoalignError(f"--pattern {pattern!r} names no field",
                            hint='put metadata names in braces, e.g. "{race}_{gender}_{identity_id}_{emotion}.png"')
    if any("{" in lit or "}" in lit for lit in literals):
        raise EmoalignError(f"--pattern {pattern!r} has an unbalanced brace", hint="write fields as {name}")
    seen: set[str] = set()
    regex = re.escape(literals[0])
    separators = {lit[:1] for lit in literals[1:-1]}  # characters that separate two fields
    anon = 0
    for i, name in enumerate(names):
        if not _NAME.match(name):
            raise EmoalignError(f"--pattern field {{{name}}} is not a valid column name",
                                hint="use letters, digits and _ (e.g. {identity_id}); {_} skips a part")
        if name in _COMPUTED or name == "path":
            raise EmoalignError(f"--pattern field {{{name}}} is computed by the scanner and cannot come from a filename",
                                hint="rename the field (e.g. {path_part})")
        if name.startswith("_"):
            group = f"_anon{anon}"
            anon += 1
        else:
            if name in seen:
                raise EmoalignError(f"--pattern names {{{name}}} twice", hint="give each field a distinct name; use {_} for parts to skip")
            seen.add(name)
            group = name
        stops = separators | {literals[i + 1][:1]}
        excluded = "/" + "".join(re.escape(c) for c in sorted(stops - {"", "/"}))
        if i + 1 < len(names) and not literals[i + 1]:
            raise EmoalignError(f"--pattern {pattern!r}: fields {{{name}}} and {{{names[i + 1]}}} touch, so the split between them is ambiguous",
                                hint="put a separator between fields, e.g. {race}_{gender}")
        regex += f"(?P<{group}>[^{excluded}]+)" + re.escape(literals[i + 1])
    return FilenamePattern(pattern, re.compile(regex, re.IGNORECASE), tuple(n for n in names if not n.startswith("_")))


def image_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) of an image, or None when Pillow cannot decode it."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return int(im.width), int(im.height)
    except Exception:  # PIL raises many types for damaged files
        return None


def stored_path(path: Path, base: Path | None) -> str:
    """``path`` relative to ``base`` (POSIX separators) when possible, else absolute."""
    path = path.resolve()
    if base is not None:
        try:
            return Path(os.path.relpath(path, base.resolve())).as_posix()
        except ValueError:  # different drive on Windows
            pass
    return path.as_posix()


@dataclass
class ScanReport:
    """What a scan found: counts, unmatched files and undecodable images."""

    n_images: int = 0
    unmatched: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    ignored_non_images: int = 0
    fields: tuple[str, ...] = ()
    source: str = ""
    duplicates: object = None  # stimuli.check.Issue of identical contents accepted with allow_duplicates

    def lines(self) -> list[str]:
        out = [f"{self.n_images} images from {self.source}" + (f"; fields: {', '.join(self.fields)}" if self.fields else "")]
        if self.ignored_non_images:
            out.append(f"ignored {self.ignored_non_images} non-image file(s)")
        if self.unmatched:
            out.append(f"skipped {len(self.unmatched)} file(s) not matching the pattern: {format_examples(self.unmatched)}")
        if self.duplicates is not None:
            out.append(f"warning: {self.duplicates.line()} (accepted with --allow-duplicates)")
        if self.unreadable:
            out.append(f"warning: {len(self.unreadable)} image(s) could not be decoded (width/height left empty): "
                       f"{format_examples(self.unreadable)}; run `emoalign stimuli check`")
        return out


def _list_images(root: Path, exclude: set[Path]) -> tuple[list[Path], int]:
    images, other = [], 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            if p.resolve() in exclude:
                continue
            if p.suffix.lower() in IMAGE_SUFFIXES:
                images.append(p)
            else:
                other += 1
    return images, other


def _read_manifest(manifest: Path) -> pd.DataFrame:
    if not manifest.exists():
        raise EmoalignError(f"manifest not found: {manifest}", hint="check the --manifest path")
    try:
        if manifest.suffix.lower() in (".parquet", ".pq"):
            df = pd.read_parquet(manifest)
        else:
            df = pd.read_csv(manifest, sep="\t" if manifest.suffix.lower() == ".tsv" else ",", dtype=str,
                             keep_default_na=False, encoding="utf-8-sig")
    except Exception as exc:
        raise EmoalignError(f"cannot read manifest {manifest}: {exc}", hint="a manifest is a CSV, TSV or parquet table") from exc
    df.columns = [str(c).strip() for c in df.columns]
    if "path" not in df.columns:
        raise EmoalignError(f"manifest {manifest} has no 'path' column; it has: {', '.join(df.columns)}",
                            hint="a manifest needs path and emotion (optional image_id) plus any design columns")
    bad = [c for c in _COMPUTED if c in df.columns]
    if bad:
        df = df.drop(columns=bad)  # recomputed from the files
    return df


def _progress(iterable: Iterable, total: int, show: bool, desc: str):
    if not show:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, total=total, desc=desc, unit="img", disable=total < 50, leave=False)


def scan_stimuli(
    directory: str | os.PathLike | None = None,
    pattern: str | None = None,
    *,
    manifest: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    skip_unmatched: bool = False,
    progress: bool = True,
    emotions: Sequence[str] | None = None,
    allow_duplicates: bool = False,
) -> tuple[pd.DataFrame, ScanReport]:
    """Build a stimuli table (STIMULI contract) from ``directory`` + ``pattern`` and/or a ``manifest``.

    Parameters
    ----------
    directory : folder of images (scanned recursively; hidden files skipped), or the base of a manifest's paths.
    pattern : filename pattern, e.g. ``"{race}_{gender}_{identity_id}_{emotion}.png"``.
    manifest : CSV/TSV/parquet with ``path``, ``emotion`` (optional ``image_id``) and design columns.
    out : the file the table will be written to; ``path`` is stored relative to its folder (absolute when None).
    skip_unmatched : image files that do not match the pattern are an error unless this is True.
    emotions : the study's emotion set; an intended label outside it is an error (None: not checked).
    allow_duplicates : identical image contents under different ids are an error unless this is True
        (then a warning in the report).

    Returns
    -------
    (DataFrame, ScanReport). Columns: ``image_id, path, emotion``, design columns, ``sha256, width, height``.
    Raises EmoalignError on unmatched files (unless skipped), a missing ``emotion``, duplicate ids,
    disagreeing metadata, missing manifest files, or no images.
    """
    if directory is None and manifest is None:
        raise EmoalignError("nothing to scan", hint="give an image folder with --pattern, or --manifest FILE")
    root = Path(directory) if directory is not None else None
    if root is not None and not root.is_dir():
        raise EmoalignError(f"image folder not found: {root}", hint="check the DIR argument")
    pat = compile_pattern(pattern) if pattern else None
    out_path = Path(out).resolve() if out is not None else None
    base = out_path.parent if out_path is not None else None
    report = ScanReport(fields=pat.fields if pat else ())

    if manifest is not None:
        man = _read_manifest(Path(manifest))
        mroot = root if root is not None else Path(manifest).resolve().parent
        report.source = str(manifest)
        rows = man.to_dict("records")
        files, missing = [], []
        for i, rec in enumerate(rows):
            p = Path(str(rec["path"]))
            p = p if p.is_absolute() else mroot / p
            if not p.is_file():
                missing.append(f"row {i + 2}: {rec['path']}")
            files.append(p)
        if missing:
            raise EmoalignError(f"manifest {manifest}: {len(missing)} file(s) not found (paths relative to {mroot}): "
                                f"{format_examples(missing)}", hint="fix the paths, or pass the image folder as DIR so relative paths resolve against it")
    else:
        if pat is None:
            raise EmoalignError("scanning a folder needs --pattern", hint='e.g. --pattern "{race}_{gender}_{identity_id}_{emotion}.png", or give --manifest')
        files, report.ignored_non_images = _list_images(root, {out_path} if out_path else set())
        rows = [{} for _ in files]
        report.source = str(root)

    if pat is not None:
        kept_files, kept_rows = [], []
        for p, rec in zip(files, rows):
            rel = stored_path(p, root if root is not None else p.parent)
            parsed = pat.parse(rel)
            if parsed is None and manifest is not None:
                parsed = pat.parse(p.name)
            if parsed is None:
                report.unmatched.append(rel)
                continue
            merged = dict(rec)
            for k, v in parsed.items():
                old = merged.get(k)
                if old is not None and not (isinstance(old, float) and pd.isna(old)) and str(old) != "" and str(old) != v:
                    raise EmoalignError(f"{p}: the manifest says {k}={old!r} but the filename says {k}={v!r}",
                                        hint="fix the manifest or the --pattern so they agree")
                merged[k] = v
            kept_files.append(p)
            kept_rows.append(merged)
        if report.unmatched and not skip_unmatched:
            raise EmoalignError(
                f"{len(report.unmatched)} image file(s) do not match --pattern {pat.pattern!r}: {format_examples(report.unmatched)}",
                hint="fix the pattern or the filenames, or pass --skip-unmatched to leave them out",
            )
        files, rows = kept_files, kept_rows

    if not files:
        raise EmoalignError(f"no images found in {report.source}", hint=f"image suffixes: {', '.join(sorted(IMAGE_SUFFIXES))}")
    if not any("emotion" in r for r in rows):
        raise EmoalignError("no 'emotion' (intended label) for the images",
                            hint="name {emotion} in --pattern or give an emotion column in the manifest")

    records = []
    for p, rec in _progress(zip(files, rows), len(files), progress, "scanning"):
        size = image_size(p)
        if size is None:
            report.unreadable.append(str(p))
        image_id = rec.get("image_id")
        if image_id is None or (isinstance(image_id, float) and pd.isna(image_id)) or str(image_id) == "":
            image_id = p.stem
        records.append({**rec, "image_id": str(image_id), "path": stored_path(p, base),
                        "sha256": file_sha256(p), "width": size[0] if size else None, "height": size[1] if size else None})
    df = pd.DataFrame.from_records(records)
    design = [c for c in df.columns if c not in ("image_id", "path", "emotion", *_COMPUTED)]
    df = df[["image_id", "path", "emotion", *design, *_COMPUTED]]
    df["width"] = df["width"].astype("Int32")
    df["height"] = df["height"].astype("Int32")
    dup = df["image_id"].duplicated(keep=False)
    if dup.any():
        ex = df.loc[dup].groupby("image_id")["path"].apply(lambda s: " & ".join(s.head(2))).head(5)
        raise EmoalignError(
            f"{df.loc[dup, 'image_id'].nunique()} image_id(s) occur more than once: "
            + "; ".join(f"{k} ({v})" for k, v in ex.items()),
            hint="image_id defaults to the file stem; name {image_id} in the pattern or give unique ids in the manifest",
        )
    from emoalign.stimuli.check import duplicate_content_issue, label_issue

    issues = [label_issue(df["emotion"], emotions) if emotions is not None else None,
              duplicate_content_issue(df["image_id"], df["sha256"])]
    if issues[1] is not None and allow_duplicates:
        report.duplicates = issues.pop()
    issues = [i for i in issues if i is not None]
    if issues:
        hints = {"bad_label": "fix the labels in the file names/manifest (or the --emotions/--spec set)",
                 "duplicate_content": "remove the copies, or pass --allow-duplicates if they are deliberate"}
        raise EmoalignError("; ".join(i.line() for i in issues) + "; nothing was written",
                            hint="; ".join(hints[i.kind] for i in issues))
    report.n_images = len(df)
    return df, report
