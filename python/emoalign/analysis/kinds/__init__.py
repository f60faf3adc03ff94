"""Analysis kinds: one module per kind, each registering itself with ``@register`` in
:data:`emoalign.registry.KINDS` (the only list of kinds). The registry imports these modules on first use;
``emoalign.analysis.kinds.base`` holds what they share."""

from emoalign.analysis.kinds.base import AnalysisBase, KindEntry, KindResult, register, tidy
from emoalign.registry import KINDS

__all__ = ["KINDS", "AnalysisBase", "KindEntry", "KindResult", "register", "tidy"]
