"""What revision of a model a run used, for provenance (a resume never mixes two models).

* a Hugging Face hub snapshot (``.../snapshots/<commit>/``): the commit the snapshot is;
* any other local directory: ``local-`` + a digest of the *contents* of its weight, config, tokenizer and
  processor files (two different weight files of equal size differ);
* the ``hf`` backend on a hub id records the commit transformers resolved (``config._commit_hash``), not the
  branch name that was asked for.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from emoalign.data.io import file_sha256

#: files whose contents define a checkpoint (weights, configs, tokenizer, processor, chat template)
MODEL_FILE_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".npz", ".json", ".jinja", ".model", ".txt",
                       ".tiktoken")
_CACHE: dict[tuple, str] = {}


def hub_snapshot_commit(path: str | os.PathLike) -> str | None:
    """The commit of a hub-cache snapshot directory (``.../snapshots/<commit>``), else None."""
    parts = Path(path).resolve().parts
    if "snapshots" in parts:
        i = parts.index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None


def model_dir_digest(path: str | os.PathLike) -> str:
    """``local-`` + the first 16 hex digits of a SHA-256 over the names and SHA-256 contents of the model files
    directly in ``path`` (cached per process by file size and modification time)."""
    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in MODEL_FILE_SUFFIXES)
    key = (str(path.resolve()),) + tuple((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files)
    if key not in _CACHE:
        h = hashlib.sha256()
        for p in files:
            h.update(p.name.encode() + b"\0" + file_sha256(p).encode() + b"\n")
        _CACHE[key] = "local-" + h.hexdigest()[:16]
    return _CACHE[key]


def local_revision(path: str | os.PathLike) -> str:
    """The revision of a local model directory: its snapshot commit, else its content digest."""
    return hub_snapshot_commit(path) or model_dir_digest(path)
