"""Classification metrics against a reference label: accuracy, per-class precision/recall/F1, confusion."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

#: column/row name used for predictions outside the label set (or missing)
INVALID_LABEL = "(invalid)"


@dataclass(frozen=True)
class ClassMetrics:
    """One class: ``tp``, ``fp``, ``fn``, ``support`` (true count), precision, recall, F1."""

    label: str
    tp: int
    fp: int
    fn: int
    support: int
    precision: float
    recall: float
    f1: float


def _clean(y_true, y_pred, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray([str(v) for v in y_true], dtype=object)
    known = set(labels)
    p = np.asarray([str(v) if (v is not None and not (isinstance(v, float) and math.isnan(v)) and str(v) in known)
                    else INVALID_LABEL for v in y_pred], dtype=object)
    if t.shape != p.shape:
        raise ValueError("y_true and y_pred must have the same length")
    return t, p


def accuracy(y_true, y_pred) -> tuple[int, int]:
    """Number correct and number of items; a missing prediction (None/NaN) is wrong.

    Parameters
    ----------
    y_true, y_pred : sequence
        Reference and predicted labels, paired.

    Returns
    -------
    (correct, n) : tuple of int

    References
    ----------
    Sokolova, M., & Lapalme, G. (2009). Information Processing & Management, 45(4), 427-437.

    Examples
    --------
    >>> accuracy(["happy", "sad", "fear"], ["happy", "sad", None])
    (2, 3)
    """
    t = np.asarray(y_true, dtype=object)
    p = np.asarray(y_pred, dtype=object)
    ok = np.array([a == b for a, b in zip(t, p)], dtype=bool)
    return int(ok.sum()), int(ok.size)


def confusion_matrix(y_true, y_pred, labels: Sequence[str]) -> pd.DataFrame:
    """Counts with true labels as rows (``labels``) and predictions as columns (``labels`` plus
    ``INVALID_LABEL`` when some prediction is missing or outside ``labels``).

    Parameters
    ----------
    y_true, y_pred : sequence
        Reference and predicted labels, paired.
    labels : sequence of str
        The label set (row and column order).

    Returns
    -------
    pandas.DataFrame
        Integer counts, index ``true``, columns ``predicted``.

    References
    ----------
    Stehman, S. V. (1997). Selecting and interpreting measures of thematic classification accuracy. Remote
    Sensing of Environment, 62(1), 77-89.

    Examples
    --------
    >>> confusion_matrix(["happy", "sad", "sad"], ["happy", "happy", "angry"], ["happy", "sad"])
    predicted  happy  sad  (invalid)
    true
    happy          1    0          0
    sad            1    0          1
    """
    t, p = _clean(y_true, y_pred, labels)
    cols = list(labels) + ([INVALID_LABEL] if np.any(p == INVALID_LABEL) else [])
    ct = pd.crosstab(pd.Categorical(t, categories=list(labels)), pd.Categorical(p, categories=cols), dropna=False)
    ct.index.name, ct.columns.name = "true", "predicted"
    return ct.astype(int)


def per_class_metrics(y_true, y_pred, labels: Sequence[str], zero_division: float = 0.0) -> list[ClassMetrics]:
    """Precision, recall and F1 for each label (one-vs-rest), as ``sklearn.metrics.precision_recall_fscore_support``.

    Predictions outside ``labels`` (or missing) count as false negatives of the true class and as
    false positives of no class. A ratio whose denominator is 0 takes ``zero_division``
    (sklearn's default behaviour gives 0); F1 is 0 when precision + recall is 0.

    Parameters
    ----------
    y_true, y_pred : sequence
        Reference and predicted labels, paired.
    labels : sequence of str
        The label set.
    zero_division : float
        Value of a ratio whose denominator is 0.

    Returns
    -------
    list of ClassMetrics
        One per label, in ``labels`` order.

    References
    ----------
    van Rijsbergen, C. J. (1979). Information Retrieval (2nd ed.), ch. 7. Butterworths.

    Examples
    --------
    >>> m = per_class_metrics(["happy", "sad", "sad"], ["happy", "happy", "sad"], ["happy", "sad"])
    >>> [(c.label, c.precision, c.recall, round(c.f1, 3)) for c in m]
    [('happy', 0.5, 1.0, 0.667), ('sad', 1.0, 0.5, 0.667)]
    """
    t, p = _clean(y_true, y_pred, labels)
    out = []
    for lab in labels:
        tp = int(np.sum((t == lab) & (p == lab)))
        fp = int(np.sum((t != lab) & (p == lab)))
        fn = int(np.sum((t == lab) & (p != lab)))
        prec = tp / (tp + fp) if tp + fp else zero_division
        rec = tp / (tp + fn) if tp + fn else zero_division
        if tp + fp + fn == 0:
            f1 = zero_division
        else:
            f1 = 2 * tp / (2 * tp + fp + fn)
        out.append(ClassMetrics(str(lab), tp, fp, fn, tp + fn, float(prec), float(rec), float(f1)))
    return out


def absent_labels(y_true, y_pred, labels: Sequence[str]) -> list[str]:
    """Labels with neither reference items nor predictions (their F1 is undefined, 0/0).

    Parameters
    ----------
    y_true, y_pred : sequence
        Reference and predicted labels, paired.
    labels : sequence of str
        The label set.

    Returns
    -------
    list of str

    References
    ----------
    Sokolova, M., & Lapalme, G. (2009). Information Processing & Management, 45(4), 427-437.

    Examples
    --------
    >>> absent_labels(["happy", "sad"], ["happy", "sad"], ["happy", "sad", "fear"])
    ['fear']
    """
    return [m.label for m in per_class_metrics(y_true, y_pred, labels) if m.tp + m.fp + m.fn == 0]


def macro_f1(y_true, y_pred, labels: Sequence[str], zero_division: float = 0.0) -> float:
    """Unweighted mean of the per-label F1 over the labels that occur as a reference or a prediction.

    A label with neither reference items nor predictions has an undefined F1 (0/0) and is left out, as
    sklearn ``f1_score(y_true, y_pred, average="macro")`` leaves out labels absent from both (counting it
    as 0 would lower the mean for a class that was never tested; :func:`absent_labels` names them so
    callers can warn). A label that occurs has F1 = 2 TP / (2 TP + FP + FN), so ``zero_division`` (kept
    for the signature) cannot change the result. NaN when no label occurs.

    Parameters
    ----------
    y_true, y_pred : sequence
        Reference and predicted labels, paired.
    labels : sequence of str
        The label set.
    zero_division : float
        Kept for the signature (see above).

    Returns
    -------
    float

    References
    ----------
    Sokolova, M., & Lapalme, G. (2009). A systematic analysis of performance measures for classification
    tasks. Information Processing & Management, 45(4), 427-437.

    Examples
    --------
    >>> round(macro_f1(["happy", "sad", "sad"], ["happy", "happy", "sad"], ["happy", "sad", "fear"]), 4)  # fear left out
    0.6667
    """
    present = [m.f1 for m in per_class_metrics(y_true, y_pred, labels, zero_division) if m.tp + m.fp + m.fn > 0]
    return float(np.mean(present)) if present else float("nan")
