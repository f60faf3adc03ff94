"""Readers and writers for contract tables: parquet (and CSV on import), written atomically.

Every write goes to a temporary file in the destination folder and is renamed into place, so an
interrupted write never leaves a half-written file behind, and an existing file is only replaced
when ``force=True``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from emoalign.data.schemas import CONTRACTS, TableContract, conform, validate_columns
from emoalign.errors import EmoalignError


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes (read in chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it onto ``path`` (atomic on POSIX)."""
    path = Path(path)
    if path.exists() and not force:
        raise EmoalignError(f"{path} already exists", hint="pass --force to overwrite it, or choose another output path")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path, data: bytes, *, force: bool = True) -> Path:
    with atomic_path(path, force=force) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_json_atomic(path, obj, *, force: bool = True) -> Path:
    return write_bytes_atomic(path, (json.dumps(obj, indent=2, default=str) + "\n").encode(), force=force)


def write_table(df: pd.DataFrame | pa.Table, path, contract: str | TableContract | None = None, *, force: bool = False,
                metadata: dict | None = None) -> Path:
    """Validate ``df`` against a contract (by name or object) and write it to parquet atomically.

    ``metadata`` (JSON-serialisable) is stored in the parquet schema metadata under ``emoalign``.
    """
    if isinstance(contract, str):
        contract = CONTRACTS[contract]
    if isinstance(df, pa.Table):
        table = df
    elif contract is not None:
        validate_columns(df, contract, source=str(path))
        table = conform(df, contract)
    else:
        table = pa.Table.from_pandas(df, preserve_index=False)
    if metadata:
        md = dict(table.schema.metadata or {})
        md[b"emoalign"] = json.dumps(metadata, default=str).encode()
        table = table.replace_schema_metadata(md)
    with atomic_path(path, force=force) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def read_table(path, contract: str | TableContract | None = None) -> pd.DataFrame:
    """Read a parquet (or CSV) table and check it against a contract; errors name the file."""
    path = Path(path)
    if not path.exists():
        raise EmoalignError(f"file not found: {path}", hint="check the path (relative paths are resolved from the current directory or the spec's folder)")
    try:
        if path.suffix.lower() in (".csv", ".tsv"):
            df = pd.read_csv(path, sep="\t" if path.suffix.lower() == ".tsv" else ",")
        else:
            df = pq.read_table(path).to_pandas()
    except EmoalignError:
        raise
    except Exception as exc:  # pyarrow/pandas raise many types
        raise EmoalignError(f"cannot read {path}: {exc}", hint="is it a valid parquet/CSV file?") from exc
    if isinstance(contract, str):
        contract = CONTRACTS[contract]
    if contract is not None:
        validate_columns(df, contract, source=str(path))
    return df


def read_metadata(path) -> dict:
    """Return the ``emoalign`` metadata dict stored in a parquet file (empty if none)."""
    md = pq.read_schema(path).metadata or {}
    raw = md.get(b"emoalign")
    return json.loads(raw) if raw else {}
