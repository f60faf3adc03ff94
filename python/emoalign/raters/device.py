"""One place that turns ``--device`` into a torch device string, checked before any model loads."""

from __future__ import annotations

import re

from emoalign.errors import EmoalignError

_DEVICE = re.compile(r"^(cpu|mps|cuda)(?::(\d+))?$")


def resolve_device(device: str | None, *, prefer_mps: bool = True) -> str:
    """``auto``/None -> ``cuda`` if available, else ``mps`` (when ``prefer_mps``), else ``cpu``.

    An explicit ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` is checked against this machine's torch build
    and devices; anything unavailable is an EmoalignError naming what is available.
    """
    import torch

    mps = getattr(torch.backends, "mps", None)
    has_mps = bool(mps is not None and mps.is_available())
    if device in (None, "", "auto"):
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if prefer_mps and has_mps else "cpu"
    text = str(device).strip().lower()
    m = _DEVICE.match(text)
    available = ["cpu"] + (["mps"] if has_mps else []) + \
        ([f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else [])
    if m is None:
        raise EmoalignError(f"--device {device!r} is not a device", hint=f"use auto or one of: {', '.join(available)}")
    kind, index = m.group(1), m.group(2)
    if kind == "cuda":
        if torch.version.cuda is None or not torch.cuda.is_available():
            why = "this torch build has no CUDA support" if torch.version.cuda is None else "no CUDA GPU is visible"
            raise EmoalignError(f"--device {device}: {why} (torch {torch.__version__})",
                                hint=f"use --device cpu (or auto); available here: {', '.join(available)}")
        n = torch.cuda.device_count()
        if index is not None and int(index) >= n:
            raise EmoalignError(f"--device {device}: this machine has {n} CUDA GPU(s) (cuda:0..cuda:{n - 1})",
                                hint=f"available here: {', '.join(available)}")
    if kind == "mps" and not has_mps:
        raise EmoalignError(f"--device {device}: Apple MPS is not available here",
                            hint=f"available here: {', '.join(available)}")
    if kind == "cpu" and index is not None:
        raise EmoalignError(f"--device {device!r} is not a device", hint="use cpu")
    return text
