"""Helpers of the fault suite: file snapshots (to prove that a failing command harmed nothing), an
unprivileged context for unwritable folders, and the stand-in for kill -9."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


NOBODY = 65534


class Killed(BaseException):
    """Stands in for kill -9 in-process: not an Exception, so no handler of the code under test catches it."""


def snapshot(*roots) -> dict:
    """{path: (sha256, size, mtime_ns, mode)} of every file under ``roots`` (hidden files included)."""
    out = {}
    for root in roots:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []
        for p in files:
            st = p.stat()
            out[str(p)] = (hashlib.sha256(p.read_bytes()).hexdigest(), st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def assert_unharmed(before: dict, *roots) -> None:
    """Every file of the snapshot is still there, byte for byte, untouched; and no file was added."""
    after = snapshot(*roots)
    assert after == before, {k: (before.get(k), after.get(k)) for k in set(before) | set(after)
                             if before.get(k) != after.get(k)}


@contextmanager
def unprivileged():
    """Run the block as a user who cannot write into folders it does not own (root ignores permissions:
    switch the effective uid/gid to nobody and back; as any other user, nothing changes)."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def read_only_dir(parent: Path, name: str = "locked") -> Path:
    d = parent / name
    d.mkdir()
    d.chmod(0o555)
    return d
