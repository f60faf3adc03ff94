"""Label-prior correction of a classifier's probabilities ("contextual calibration").

A rater's label probabilities ``p(k | x)`` mix the evidence of the image with a prior over labels (a VLM
that answers "neutral" whenever in doubt has a large neutral prior). Dividing by an estimate of that prior
and renormalising,

    q(k | x) = (p(k | x) / prior_k) / sum_j (p(j | x) / prior_j),

removes it (Bayes' rule with the prior replaced by a uniform one: Saerens et al. 2002); the corrected
answer is ``argmax_k q(k | x)``. Zhao et al. (2021) estimate the prior from the model's answer to a
content-free input (an empty or "N/A" input; here e.g. a blank image), i.e. the affine map
``W = diag(p_cf)^-1``, ``b = 0`` of their contextual calibration; estimating it instead as the mean
predicted distribution over the inputs themselves is the batch variant (Zhou et al. 2024). Estimated
from the inputs, the prior must come from training folds only, so that held-out metrics stay honest
(:func:`cross_fit_prior`).

References
----------
Zhao, Z., Wallace, E., Feng, S., Klein, D., & Singh, S. (2021). Calibrate before use: Improving few-shot
performance of language models. ICML 2021, PMLR 139, 12697-12706.
Saerens, M., Latinne, P., & Decaestecker, C. (2002). Adjusting the outputs of a classifier to new a priori
probabilities: A simple procedure. Neural Computation, 14(1), 21-41.
Zhou, H., Wan, X., Proleev, L., Mincu, D., Chen, J., Heller, K., & Roy, S. (2024). Batch calibration:
Rethinking calibration for in-context learning and prompt engineering. ICLR 2024.
"""

from __future__ import annotations

import numpy as np


def estimate_prior(P) -> np.ndarray:
    """Mean label distribution of the rows of ``P`` (items x labels; rows with a NaN are skipped), summing to 1.

    Parameters
    ----------
    P : array-like, shape (items, labels)
        Label probabilities.

    Returns
    -------
    numpy.ndarray, shape (labels,)

    References
    ----------
    Zhou, H. et al. (2024). Batch calibration. ICLR 2024 (the mean prediction as the prior).

    Examples
    --------
    >>> estimate_prior([[0.6, 0.4], [0.8, 0.2]]).tolist()
    [0.7, 0.3]
    """
    P = np.asarray(P, dtype=float)
    ok = ~np.isnan(P).any(axis=1)
    if not ok.any():
        raise ValueError("no complete probability rows to estimate a label prior from")
    m = P[ok].mean(axis=0)
    return m / m.sum()


def correct(P, prior) -> np.ndarray:
    """Rows of ``P`` divided by ``prior`` and renormalised (NaN rows stay NaN).

    A label with prior 0 cannot be corrected (division by zero): it is given a tiny floor
    (1e-12 times the largest prior entry) so its probabilities stay finite.

    Parameters
    ----------
    P : array-like, shape (items, labels)
        Label probabilities.
    prior : array-like, shape (labels,)
        The label prior to divide out.

    Returns
    -------
    numpy.ndarray, shape (items, labels)
        Rows sum to 1.

    References
    ----------
    Zhao, Z. et al. (2021). Calibrate before use. ICML 2021. Saerens, M. et al. (2002). Neural Computation, 14(1), 21-41.

    Examples
    --------
    >>> [round(float(q), 4) for q in correct([[0.6, 0.4]], [0.7, 0.3])[0]]   # the argmax moves to the rarer label
    [0.3913, 0.6087]
    """
    P = np.asarray(P, dtype=float)
    prior = np.asarray(prior, dtype=float)
    prior = np.maximum(prior, 1e-12 * prior.max())
    Q = P / prior[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        return Q / Q.sum(axis=1, keepdims=True)


def cross_fit_prior(P, fold, train=None) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """Out-of-fold corrected probabilities: each fold divided by the prior estimated on the other folds.

    ``train`` (boolean per row, default all) limits which rows may enter a prior estimate. Returns the
    corrected matrix and ``{fold: prior}``.

    Parameters
    ----------
    P : array-like, shape (items, labels)
        Label probabilities.
    fold : array-like of int
        Fold of each item.
    train : array-like of bool, optional
        Rows that may enter a prior estimate.

    Returns
    -------
    (Q, priors)
        Corrected probabilities and ``{fold: prior}``.

    References
    ----------
    Zhao, Z. et al. (2021). ICML 2021. Hastie, T. et al. (2009). The Elements of Statistical Learning, §7.10.2.

    Examples
    --------
    >>> Q, priors = cross_fit_prior([[0.6, 0.4], [0.8, 0.2], [0.5, 0.5], [0.9, 0.1]], fold=[0, 0, 1, 1])
    >>> priors[0].tolist(), [round(float(q), 3) for q in Q[0]]   # fold 0 corrected by fold 1's prior
    ([0.7, 0.3], [0.391, 0.609])
    """
    P = np.asarray(P, dtype=float)
    fold = np.asarray(fold)
    use = np.ones(len(P), bool) if train is None else np.asarray(train, bool)
    Q = np.full(P.shape, np.nan)
    priors = {}
    for f in np.unique(fold):
        prior = estimate_prior(P[(fold != f) & use])
        Q[fold == f] = correct(P[fold == f], prior)
        priors[int(f)] = prior
    return Q, priors
