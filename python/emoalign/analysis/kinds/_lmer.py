"""What the lme4 kinds (``lmm``, ``variance_components``) share: the convergence options passed to
``fit_lmer`` (``R/lmm.R``) and how a model's glance row becomes row flags and warnings.

Every fit is checked the way lme4 checks it (``?lme4::convergence``: max(min(|g|, |chol(H)^-1 g|)) of the
finite-difference gradient ``g`` and Hessian ``H`` of the REML/ML criterion against ``grad_tol``), with
lme4's own derivative step turned off (``lmerControl(calc.derivs = FALSE)``) because the check replaces
it. A fit that fails is restarted from its fitted variance parameters with ``restart`` (an optimizer of
``lme4::allFit``'s set) and the fit with the lower criterion is kept. The glance table records, per
model: optimizer, criterion, max gradient, relative gradient, singularity (``lme4::isSingular``),
whether a restart ran, whether it was kept and how much it changed the criterion and the estimates.

References
----------
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. Journal of Statistical Software, 67(1), 1-48 (sections 1.2 and 3; ``?convergence``, ``?allFit``).
Powell, M. J. D. (2009). The BOBYQA algorithm for bound constrained optimization without derivatives.
Report DAMTP 2009/NA06, University of Cambridge.
"""

from __future__ import annotations

from typing import Literal

import pandas as pd
from pydantic import BaseModel, Field

NOT_CONVERGED = "not converged"
SINGULAR = "singular fit"


class ConvergenceOptions(BaseModel):
    """Convergence checks of lme4 fits (mixed into the lme4 kinds' options)."""

    restart: Literal["bobyqa", "Nelder_Mead", "nlminbwrap", "nloptwrap", "none"] = Field(
        "bobyqa", description="Optimizer that restarts, from the fitted variance parameters, a fit failing lme4's "
                              "convergence check (lme4::allFit's set); the lower criterion is kept. none: no restart.")
    grad_tol: float = Field(0.002, gt=0, description="Tolerance of lme4's gradient check (lme4 default 0.002).")

    def lmer_args(self) -> dict:
        return {"restart": self.restart, "grad_tol": self.grad_tol}


def glance_flags(glance: pd.DataFrame) -> list[str]:
    """Row flags of one model's glance row: not converged (after the restart), singular."""
    g = glance.iloc[0]
    return [f for f, on in ((NOT_CONVERGED, not bool(g["converged"])), (SINGULAR, bool(g["singular"]))) if on]


def lmer_messages(res) -> list[str]:
    """R warnings and messages of one call (lme4's singular-fit note, fit_lmer's restart note and
    convergence failure), deduplicated."""
    return list(dict.fromkeys([*res.warnings, *res.messages]))
