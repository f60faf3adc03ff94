"""Analysis kinds. Importing this package imports every kind module, which registers itself in
``emoalign.analysis.kinds.base.KINDS`` (the only list of kinds)."""

import importlib
import pkgutil

from emoalign.analysis.kinds.base import KINDS, AnalysisBase, KindResult, register, tidy

for _m in pkgutil.iter_modules(__path__):
    if _m.name != "base":
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["KINDS", "AnalysisBase", "KindResult", "register", "tidy"]
