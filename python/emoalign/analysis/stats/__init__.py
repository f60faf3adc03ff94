"""Pure statistics used by the analysis kinds: small functions, one job each, numpy in, numbers out.

Each module implements one family of statistics with numpydoc references; results are frozen
dataclasses (or tidy DataFrames for the ICC family). Nothing here reads a Study or writes files.
"""

from emoalign.analysis.stats.bland_altman import BlandAltman, bland_altman
from emoalign.analysis.stats.classification import (
    ClassMetrics, INVALID_LABEL, absent_labels, accuracy, confusion_matrix, macro_f1, per_class_metrics,
)
from emoalign.analysis.stats.correlation import Correlation, pearson
from emoalign.analysis.stats.icc import ICC_FORMS, IccResult, icc, icc_long
from emoalign.analysis.stats.kappa import Kappa, cohen_kappa, cohen_kappa_table
from emoalign.analysis.stats.mcnemar import CochranQ, McNemar, cochrans_q, mcnemar, mcnemar_counts
from emoalign.analysis.stats.padjust import ADJUST_METHODS, p_adjust
from emoalign.analysis.stats.proportions import wilson_ci
from emoalign.analysis.stats.wilcoxon import Wilcoxon, wilcoxon_signed_rank

__all__ = [
    "ADJUST_METHODS", "BlandAltman", "ClassMetrics", "CochranQ", "Correlation", "ICC_FORMS", "INVALID_LABEL", "IccResult",
    "Kappa", "McNemar", "Wilcoxon", "accuracy", "bland_altman", "cohen_kappa", "cohen_kappa_table",
    "absent_labels", "cochrans_q", "confusion_matrix", "icc", "icc_long", "macro_f1", "mcnemar", "mcnemar_counts", "p_adjust", "pearson",
    "per_class_metrics", "wilcoxon_signed_rank", "wilson_ci",
]
