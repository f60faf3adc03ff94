"""Readers and writers for contract tables: parquet (and CSV on import), written atomically.

Every write goes to a temporary file in the destination folder and is renamed into place, so an
interrupted write never leaves a half-written file behind, and an existing file is only replaced
when ``force=True``. New files get the permissions of any new file (0666 minus the user's umask).
Temps left by a writer that was killed are removed by the next write (:func:`remove_orphan_temps`).

Whole folders (a results folder) are built beside the old one and swapped in (:func:`staged_folder`);
one writer at a time holds a folder (:func:`folder_lock`); :func:`ensure_writable_dir` proves an
output folder writable before long work starts.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import re
import secrets
import shutil
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from emoalign.data.schemas import CONTRACTS, TableContract, conform, validate_columns
from emoalign.errors import UNWRITABLE_ERRNOS, EmoalignError  # noqa: F401  (re-exported)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 hex digest of a file's bytes (read in chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


#: temp files of :func:`atomic_path`: ``.<name>.<pid>-<8 hex>.tmp`` beside the target
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
#: temp files of earlier versions (``tempfile.mkstemp``: no pid) are removed once older than this
_LEGACY_TEMP_AGE_S = 3600
#: temp files and staging folders this process is writing right now (never swept as orphans)
_ACTIVE: set[str] = set()


def _orphan(path: str, pid: int) -> bool:
    """True when the writer of ``path`` is gone: another process that no longer runs, or this process
    after the write was abandoned (it is no longer among the writes in flight)."""
    if pid == os.getpid():
        return os.path.abspath(path) not in _ACTIVE
    return not pid_alive(pid)


def _discard(path: Path) -> None:
    """Remove a temp file or staging folder after a failed write (a killed process never gets here)."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_orphan_temps(folder: str | os.PathLike, name: str | None = None) -> list[Path]:
    """Delete temp files left in ``folder`` by writers that were killed mid-write; return what was removed.

    Only files named like :func:`atomic_path`'s temps whose writing process is gone are removed (and
    pid-less temps of earlier versions older than an hour), so a concurrent writer's temp is never
    touched. ``name`` limits the sweep to temps of that target file.
    """
    folder = Path(folder)
    removed: list[Path] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        fname = entry.name
        if not (fname.startswith(".") and fname.endswith(".tmp")) or not entry.is_file(follow_symlinks=False):
            continue
        m = _TEMP.match(fname)
        if m:
            if (name is not None and m.group("name") != name) or not _orphan(entry.path, int(m.group("pid"))):
                continue
        else:  # .<name>.<random>.tmp from tempfile.mkstemp (earlier versions)
            if name is not None and not fname.startswith(f".{name}."):
                continue
            try:
                if time.time() - entry.stat().st_mtime < _LEGACY_TEMP_AGE_S:
                    continue
            except OSError:
                continue
        try:
            os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def _new_temp(path: Path) -> Path:
    """Create an empty temp file beside ``path``; its mode follows the user's umask like any new file."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        _ACTIVE.add(os.path.abspath(tmp))
        return tmp
    raise FileExistsError(f"cannot create a temp file beside {path}")


@contextmanager
def atomic_path(path: str | os.PathLike, *, force: bool = False) -> Iterator[Path]:
    """Yield a temp path beside ``path``; on success rename it onto ``path`` (atomic on POSIX).

    The file gets the permissions of any new file (``0666`` minus the umask), so collaborators can
    read results. Temps of earlier writers of ``path`` that were killed mid-write are removed first.
    """
    path = Path(path)
    if path.exists() and not force:
        raise EmoalignError(f"{path} already exists", hint="pass --force to overwrite it, or choose another output path")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_orphan_temps(path.parent, path.name)
    tmp_path = _new_temp(path)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        _discard(tmp_path)
        raise
    finally:
        _ACTIVE.discard(os.path.abspath(tmp_path))


# ---- whole folders: build beside, swap in ---------------------------------------------------
_STAGE = re.compile(r"^\.(?P<name>.+)\.(?P<what>staging|old)-(?P<pid>\d+)-[0-9a-f]{8}$")


def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False where unsupported."""
    if sys.platform != "linux":
        return False
    import ctypes

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def recover_staged(folder: str | os.PathLike) -> list[str]:
    """Finish or undo what a killed :func:`staged_folder` left beside ``folder``; return what was done.

    A staging folder whose writer is gone is removed (the old folder was never touched). A moved-aside
    old folder (kill between the two renames of the fallback swap) is put back when ``folder`` is
    missing, else removed.
    """
    folder = Path(folder)
    done: list[str] = []
    try:
        entries = list(os.scandir(folder.parent))
    except OSError:
        return done
    for entry in entries:
        m = _STAGE.match(entry.name)
        if not m or m.group("name") != folder.name or not _orphan(entry.path, int(m.group("pid"))):
            continue
        path = Path(entry.path)
        if m.group("what") == "old" and not folder.exists():
            os.rename(path, folder)
            done.append(f"restored {folder} from {path.name}")
        else:
            shutil.rmtree(path, ignore_errors=True)
            done.append(f"removed {path.name}")
    return done


@contextmanager
def staged_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Build the new content of ``folder`` in a sibling staging folder and swap it in when the block ends.

    Readers see the old folder or the new one, never a mix: the swap is one atomic
    ``renameat2(RENAME_EXCHANGE)`` on Linux, else two renames (then, for an instant, no folder; a kill
    between them is repaired by :func:`recover_staged`). On an exception the staging folder is removed
    and ``folder`` is untouched. The staging folder is created like any new folder (the umask applies).
    """
    folder = Path(folder).absolute()
    recover_staged(folder)
    for _ in range(100):
        stage = folder.parent / f".{folder.name}.staging-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            stage.mkdir(parents=False)
            break
        except FileExistsError:
            continue
    _ACTIVE.add(str(stage))
    try:
        yield stage
        if not folder.exists():
            os.rename(stage, folder)
        elif _rename_exchange(stage, folder):
            shutil.rmtree(stage, ignore_errors=True)  # now holds the old content
        else:
            old = folder.parent / f".{folder.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            _ACTIVE.add(str(old))
            try:
                os.rename(folder, old)
                os.rename(stage, folder)
                shutil.rmtree(old, ignore_errors=True)
            finally:
                _ACTIVE.discard(str(old))
    except BaseException:
        _discard(stage)
        raise
    finally:
        _ACTIVE.discard(str(stage))


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` to ``dst`` (same file system: instant, no extra space), else copy it with its metadata."""
    if src.is_dir() and not src.is_symlink():
        shutil.copytree(src, dst, symlinks=True, copy_function=_link_or_copy_file)
    else:
        _link_or_copy_file(src, dst)


def _link_or_copy_file(src, dst) -> None:
    try:
        if os.path.islink(src):
            raise OSError
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def table_record(path: str | os.PathLike) -> dict:
    """``{"sha256": ..., "rows": ...}`` of a parquet table, as the results manifest records it."""
    return {"sha256": file_sha256(path), "rows": int(pq.ParquetFile(path).metadata.num_rows)}


class FolderInUseError(EmoalignError):
    """Another process holds the lock of a folder (see :func:`folder_lock`)."""


def _holder(fd: int) -> dict:
    """What the process holding a lock wrote into its lock file (waits briefly for it to be written)."""
    for _ in range(20):
        try:
            raw = os.pread(fd, 4096, 0)
            if raw:
                return json.loads(raw)
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    return {}


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str = "folder") -> Iterator[Path]:
    """Hold an exclusive lock on ``folder`` while the block runs; a second holder gets a clear error.

    The lock is ``flock`` on a sibling file ``.<name>.lock`` that records the holder's pid, host,
    start time and command; the operating system releases it when the holder exits in any way
    (including kill -9), so a lock is never stale. The file is removed on release.
    """
    import fcntl

    folder = Path(folder)
    lock_path = folder.parent / f".{folder.name}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            h = _holder(fd)
            os.close(fd)
            who = (f"pid {h.get('pid')} on {h.get('host')}, since {h.get('since')}: {h.get('command')}" if h
                   else "its pid is not recorded yet")
            raise FolderInUseError(
                f"{what} {folder} is in use by another emoalign process ({who})",
                hint=f"wait for it to finish, or stop it (kill {h.get('pid', 'PID')}) and run the command again; "
                     "finished work in the folder is kept") from None
        try:  # the previous holder may have removed the file between our open and flock: retry on a fresh one
            same = os.fstat(fd).st_ino == os.stat(lock_path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    info = {"pid": os.getpid(), "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%d %H:%M:%S"), "command": " ".join(["emoalign", *sys.argv[1:]])[:300]}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(info).encode(), 0)
    try:
        yield lock_path
    finally:
        try:
            os.unlink(lock_path)
        except OSError:
            pass
        os.close(fd)


_WRITE_HINT = "choose a folder you can write to, or ask its owner for write permission"


def _unwritable_reason(folder: Path) -> str | None:
    """Why ``folder`` cannot be written (created if missing, then probed with a real file), or None."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.is_dir():
            return "it exists and is not a folder"
        probe = _new_temp(folder / "emoalign-write-probe")
        probe.unlink()
        _ACTIVE.discard(os.path.abspath(probe))
    except FileExistsError:
        return "a part of the path exists and is not a folder"
    except OSError as exc:
        where = str(exc.filename or "")
        inside = where.startswith(str(folder))  # the folder itself or our probe file: already named
        return (exc.strerror or str(exc)).lower() + (f" ({where})" if where and not inside else "")
    return None


def ensure_writable_dir(folder: str | os.PathLike, what: str = "output folder", *, hint: str = _WRITE_HINT) -> Path:
    """Create ``folder`` if needed and prove it is writable (by writing a probe file), before long work.

    Raises EmoalignError naming the folder and the reason (permission denied, read-only file system,
    disk full, not a folder).
    """
    folder = Path(folder)
    reason = _unwritable_reason(folder)
    if reason:
        raise EmoalignError(f"cannot write into {what} {folder}: {reason}", hint=hint)
    return folder


def ensure_writable_file(path: str | os.PathLike, what: str = "output file", *, hint: str = _WRITE_HINT) -> Path:
    """Check that ``path`` can be written (its folder is created and probed); a folder at ``path`` is an error."""
    path = Path(path)
    if path.is_dir():
        raise EmoalignError(f"{what} {path} is a folder", hint="give a file path, e.g. out/name.parquet")
    folder = path.parent if str(path.parent) else Path(".")
    reason = _unwritable_reason(folder)
    if reason:
        raise EmoalignError(f"cannot write {what} {path}: {reason} in {folder}", hint=hint)
    return path


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
