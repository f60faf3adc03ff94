"""Resumable, incremental rater runs shared by every machine rater (VLM and FER).

A run folder ``runs/<run_id>/`` holds::

    manifest.json        config (rater provenance), status, times, counts
    parts/part-*.parquet one file per finished batch, written atomically
    ratings.parquet      the consolidated machines table (one row per image), written at the end

Interrupting a run (Ctrl-C, kill -9) loses at most the batch in flight; running the same command
again skips every image already in a part and finishes the rest. An image that cannot be rated
(corrupt file, backend error) becomes a row with ``error`` set and the run goes on.

One process at a time writes a run folder: the run holds an exclusive lock on it (a second writer
gets an error naming the holder's pid, even with ``force``). A run is ``complete`` only when every
selected image has exactly one row in ``ratings.parquet``; otherwise it is ``incomplete`` and
:class:`IncompleteRunError` names the missing images.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm.auto import tqdm

from emoalign.data.io import folder_lock, remove_orphan_temps, write_json_atomic, write_table
from emoalign.data.schemas import MACHINE_STEPS, MACHINES
from emoalign.errors import EXIT_INCOMPLETE, EXIT_INTERRUPTED, EXIT_ROW_ERRORS, EmoalignError, format_examples


@dataclass(frozen=True)
class StimulusItem:
    """One image to rate: its id, resolved path and design metadata (the stimuli row)."""

    image_id: str
    path: Path
    meta: dict = field(default_factory=dict)


class Rater(Protocol):
    """What the run loop needs from a machine rater.

    ``name``: the rater's name in the output (``rater`` column). ``config()``: a JSON-able dict of
    everything that changes the output (model id/revision, backend, dtype, strategy, template hashes,
    label order, seed, batch size...): it is hashed to decide whether a run folder may be resumed,
    and its keys that match machines-table provenance columns are copied onto every row.
    ``rate(items)``: one row dict per item (must carry ``image_id``); may raise, in which case the
    loop retries the items one by one and records the exception text in ``error``.
    """

    name: str

    def config(self) -> dict: ...

    def rate(self, items: Sequence[StimulusItem]) -> list[dict]: ...


def utc_now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def config_hash(config: dict) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()[:16]


def slug(text: str) -> str:
    """A file-system-safe run id from a rater name, e.g. ``mlx:org/model`` -> ``mlx-org-model``."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "run"


def items_from_stimuli(stimuli: pd.DataFrame, root: Path | None = None) -> list[StimulusItem]:
    """Turn a stimuli table into items; relative paths resolve against ``root`` (the table's folder)."""
    items = []
    for rec in stimuli.to_dict("records"):
        p = Path(str(rec["path"]))
        if not p.is_absolute() and root is not None:
            p = root / p
        items.append(StimulusItem(image_id=str(rec["image_id"]), path=p, meta=rec))
    return items


_PROVENANCE_KEYS = tuple(k for k in MACHINES.optional if k not in {f"{s}_raw" for s in MACHINE_STEPS}
                         and k not in {f"{s}_status" for s in MACHINE_STEPS}
                         and k not in {"error", "valence_expected", "arousal_expected", "timestamp", "run_id"})


class RunStore:
    """The files of one run folder: parts written as batches finish, consolidated at the end."""

    def __init__(self, run_dir: Path):
        self.dir = Path(run_dir)
        self.parts = self.dir / "parts"
        self.manifest_path = self.dir / "manifest.json"
        self.ratings_path = self.dir / "ratings.parquet"

    def manifest(self) -> dict:
        if not self.manifest_path.exists():
            return {}
        return json.loads(self.manifest_path.read_text())

    def write_manifest(self, manifest: dict) -> None:
        write_json_atomic(self.manifest_path, manifest, force=True)

    def existing(self) -> pd.DataFrame:
        """All rows written so far (consolidated table and parts), last write winning per image."""
        frames = []
        if self.ratings_path.exists():
            frames.append(pq.read_table(self.ratings_path).to_pandas())
        if self.parts.exists():
            for part in sorted(self.parts.glob("part-*.parquet")):
                frames.append(pq.read_table(part).to_pandas())
        if not frames:
            return pd.DataFrame(columns=["image_id"])
        df = pd.concat(frames, ignore_index=True)
        # a part holding only error rows stores valence/arousal as nulls; concatenated with numeric parts
        # that gives an object column, which the contract rejects: restore numeric contract columns
        for col, typ in MACHINES.known().items():
            if col in df.columns and df[col].dtype == object and (pa.types.is_floating(typ) or pa.types.is_integer(typ)):
                try:
                    df[col] = pd.to_numeric(df[col])
                except (TypeError, ValueError):
                    pass  # genuinely non-numeric: validate_columns names it
        return df.drop_duplicates("image_id", keep="last").reset_index(drop=True)

    def next_part(self) -> Path:
        self.parts.mkdir(parents=True, exist_ok=True)
        n = len(list(self.parts.glob("part-*.parquet")))
        while True:
            p = self.parts / f"part-{n:06d}.parquet"
            if not p.exists():
                return p
            n += 1

    def append(self, rows: list[dict]) -> None:
        write_table(pd.DataFrame(rows), self.next_part())

    def consolidate(self, metadata: dict | None = None) -> pd.DataFrame:
        df = self.existing()
        write_table(df, self.ratings_path, "machines", force=True, metadata=metadata)
        if self.parts.exists():
            shutil.rmtree(self.parts)
        return df


class IncompleteRunError(EmoalignError):
    """A run finished its loop but not every selected image has exactly one row."""

    exit_code = EXIT_INCOMPLETE


class RowErrorsError(EmoalignError):
    """A run completed, but some images ended with an error row (exit code 3 in the CLI)."""

    exit_code = EXIT_ROW_ERRORS


def _short(text: str, n: int = 160) -> str:
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= n else line[: n - 1] + "…"


def row_errors_error(ratings: Path, rater: str, image_ids: Sequence[str]) -> RowErrorsError | None:
    """The error to report when the selected images of a finished run include error rows (else None)."""
    df = pq.read_table(ratings, columns=["image_id", "error"]).to_pandas()
    df = df[df["image_id"].astype(str).isin(set(map(str, image_ids))) & df["error"].notna()]
    if df.empty:
        return None
    first = [f"{r.image_id} ({_short(str(r.error))})" for r in df.head(3).itertuples()]
    return RowErrorsError(
        f"{rater}: {len(df)} of {len(image_ids)} images ended with an error row: {format_examples(first, 3)}",
        hint="the other rows are saved; fix the cause (the `error` column of "
             f"{ratings} has each message) and rerun the same command with --retry-errors to rate only those images again")


def missing_rows(ratings: Path, image_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """Selected image ids with no row, and those with more than one row, in a ratings file."""
    counts = pq.read_table(ratings, columns=["image_id"]).to_pandas()["image_id"].astype(str).value_counts()
    missing = [i for i in image_ids if counts.get(i, 0) == 0]
    doubled = [i for i in image_ids if counts.get(i, 0) > 1]
    return missing, doubled


def _error_row(item: StimulusItem, exc: BaseException) -> dict:
    return {"image_id": item.image_id, "error": f"{type(exc).__name__}: {exc}"}


def _rate_checked(rater: Rater, batch: Sequence[StimulusItem]) -> list[dict]:
    """``rater.rate(batch)``, refusing an answer that is not one row per given image, in order."""
    rows = rater.rate(batch)
    if len(rows) != len(batch):
        raise RuntimeError(f"rater returned {len(rows)} rows for {len(batch)} images")
    if [str(r.get("image_id")) for r in rows] != [it.image_id for it in batch]:
        raise RuntimeError("rater returned rows for other images than it was given")
    return rows


def _rate_safely(rater: Rater, batch: Sequence[StimulusItem]) -> list[dict]:
    """Rate a batch; when it fails, rate its images one by one and turn each failure into an error row."""
    try:
        return _rate_checked(rater, batch)
    except KeyboardInterrupt:
        raise
    except Exception as exc:
        if len(batch) == 1:
            return [_error_row(batch[0], exc)]
        out = []
        for item in batch:
            try:
                out.extend(_rate_checked(rater, [item]))
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                out.append(_error_row(item, exc))
        return out


def _fill_row(row: dict, rater: Rater, config: dict, run_id: str) -> dict:
    row = dict(row)
    row["rater"] = rater.name
    for key in ("emotion", "valence", "arousal", "error"):
        row.setdefault(key, None)
    for key in _PROVENANCE_KEYS:
        if key not in row and key in config:
            v = config[key]
            row[key] = json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v
    row.setdefault("simulated", False)
    row["timestamp"] = row.get("timestamp") or utc_now()
    row["run_id"] = run_id
    return row


def summarize(df: pd.DataFrame) -> dict:
    """Counts a user wants at the end of a run: rows, errors, parse statuses per step, invalid labels."""
    out: dict = {"images": int(len(df)), "errors": int(df["error"].notna().sum()) if "error" in df else 0}
    for step in MACHINE_STEPS:
        col = f"{step}_status"
        if col in df:
            out[f"{step}_status"] = {str(k): int(v) for k, v in df[col].value_counts(dropna=True).items()}
    if "emotion_status" in df and "emotion_raw" in df:
        bad = df.loc[df["emotion_status"] == "invalid", "emotion_raw"].astype(str)
        out["invalid_labels"] = bad.value_counts().head(10).to_dict()
    return out


def run_rater(rater: Rater, items: Iterable[StimulusItem], out_dir: str | Path, *, run_id: str | None = None,
              batch_size: int | None = None, force: bool = False, retry_errors: bool = False, progress: bool = True) -> Path:
    """Rate ``items`` with ``rater`` into ``out_dir/<run_id>/`` resumably; return the ratings.parquet path.

    ``batch_size`` (images per ``rate`` call and per part file) defaults to the rater's own
    ``batch_size`` attribute when it has one, else 1.

    Re-running with the same rater config resumes; a different config in an existing folder is an
    error unless ``force`` (which starts the folder afresh). ``retry_errors`` re-rates error rows.
    """
    items = list(items)
    ids = [it.image_id for it in items]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise EmoalignError(f"the stimuli hold image_id(s) more than once: {format_examples(dup)}",
                            hint="every image needs a unique image_id (`emoalign stimuli check` lists them)")
    batch_size = int(batch_size or getattr(rater, "batch_size", None) or 1)
    config = rater.config()
    chash = config_hash(config)
    run_id = run_id or slug(rater.name)
    store = RunStore(Path(out_dir) / run_id)
    with folder_lock(store.dir, "run folder"):
        return _run_locked(rater, items, store, run_id, config, chash, batch_size, force, retry_errors, progress)


def _run_locked(rater: Rater, items: list[StimulusItem], store: RunStore, run_id: str, config: dict, chash: str,
                batch_size: int, force: bool, retry_errors: bool, progress: bool) -> Path:
    old = store.manifest()
    if old and old.get("config_hash") != chash:
        if not force:
            raise EmoalignError(
                f"run folder {store.dir} holds a run with a different configuration (config hash {old.get('config_hash')} vs {chash})",
                hint="pass --force to start it afresh, or --run-id NAME for a new folder",
            )
        shutil.rmtree(store.dir)
        old = {}
    elif old and force:
        shutil.rmtree(store.dir)
        old = {}
    store.dir.mkdir(parents=True, exist_ok=True)
    for folder in (store.dir, store.parts):  # temps of a writer killed mid-write
        remove_orphan_temps(folder)
    done = store.existing()
    if retry_errors and "error" in done:
        done = done[done["error"].isna()]
    done_ids = set(done["image_id"].astype(str))
    todo = [it for it in items if it.image_id not in done_ids]
    manifest = {
        "run_id": run_id,
        "rater": rater.name,
        "config": config,
        "config_hash": chash,
        "batch_size": batch_size,
        "started": old.get("started") or utc_now(),
        "resumed": bool(done_ids),
        "status": "running",
        "n_images": len(items),
    }
    store.write_manifest(manifest)
    t0 = time.perf_counter()
    bar = tqdm(total=len(items), initial=len(items) - len(todo), unit="img", desc=rater.name, disable=not progress,
               dynamic_ncols=True)
    try:
        for start in range(0, len(todo), batch_size):
            batch = todo[start:start + batch_size]
            rows = [_fill_row(r, rater, config, run_id) for r in _rate_safely(rater, batch)]
            store.append(rows)
            bar.update(len(batch))
    except KeyboardInterrupt:
        manifest.update(status="interrupted", interrupted=utc_now())
        store.write_manifest(manifest)
        bar.close()
        err = EmoalignError(f"run interrupted; finished batches are saved in {store.dir}",
                            hint="run the same command again to resume")
        err.exit_code = EXIT_INTERRUPTED
        raise err from None
    bar.close()
    elapsed = time.perf_counter() - t0
    df = store.consolidate(metadata={"run_id": run_id, "config": config})
    missing, doubled = missing_rows(store.ratings_path, [it.image_id for it in items])
    manifest.update(finished=utc_now(), seconds=round(elapsed, 3),
                    images_per_second=round(len(todo) / elapsed, 3) if elapsed > 0 and todo else None,
                    summary=summarize(df))
    if missing or doubled:
        manifest.update(status="incomplete", missing=missing, duplicated=doubled)
        store.write_manifest(manifest)
        parts = ([f"{len(missing)} of {len(items)} selected images have no row: {format_examples(missing)}"] if missing
                 else []) + ([f"{len(doubled)} have more than one row: {format_examples(doubled)}"] if doubled else [])
        raise IncompleteRunError(f"run {store.dir} is incomplete: " + "; ".join(parts),
                                 hint="run the same command again to rate the missing images")
    manifest.update(status="complete")
    store.write_manifest(manifest)
    return store.ratings_path
