"""Display names for the report: raters (with the simulated-data marker), dimensions and model terms.

Names come from the spec's ``labels:`` map (recorded in the manifest); a name not listed is shown as it
is. Every simulated rater carries :data:`MARK` wherever it is named, and so does ``human`` when the
human ratings are simulated; :meth:`Names.sim_note` is the caption sentence that explains the mark.
Model terms get a reader's label from the reference levels the analysis recorded, e.g.
``rater_typemachine:genderfemale`` -> ``machine × female vs male``.
"""

from __future__ import annotations

import re
from typing import Iterable

MARK = "†"
HUMAN = "human"


class Names:
    """Display names of one results folder."""

    def __init__(self, labels: dict | None = None, simulated: dict[str, bool] | None = None,
                 humans_simulated: bool = False, remapped: Iterable[str] = ()):
        self.labels = dict(labels or {})
        self.simulated = dict(simulated or {})
        self.humans_simulated = bool(humans_simulated)
        self.remapped = set(remapped)

    @classmethod
    def of(cls, R) -> "Names":
        return cls(R.labels, R.simulated(), R.humans_simulated,
                   [r["rater"] for r in R.raters if r.get("label_map")])

    # --- raters ----------------------------------------------------------------------------
    def is_simulated(self, rater: str) -> bool:
        if rater == HUMAN:
            return self.humans_simulated
        return any(self.simulated.get(p.strip(), False) for p in str(rater).split(","))

    def rater(self, rater, mark: bool = True) -> str:
        """The display name (``labels`` or the name), with :data:`MARK` when simulated."""
        r = str(rater)
        if "," in r:  # a model over several raters
            return ", ".join(self.rater(x.strip(), mark) for x in r.split(","))
        name = self.labels.get(r, "Human" if r == HUMAN else r)
        if r not in self.labels and ":" in r and r.split(":", 1)[0] in self.labels:  # gemma3:calibrated
            base, suffix = r.split(":", 1)
            name = f"{self.labels[base]} ({suffix.replace('_', ' ')})"
        return name + (MARK if mark and self.is_simulated(r) else "")

    def any_simulated(self, raters: Iterable[str], humans: bool = False) -> bool:
        return any(self.is_simulated(r) for r in raters) or (humans and self.humans_simulated)

    def sim_note(self, raters: Iterable[str] = (), humans: bool = True) -> str:
        """The caption sentence for a table/figure showing ``raters`` (and the human data, when ``humans``)."""
        raters = [str(r) for r in raters]
        machines = [r for r in raters if r != HUMAN and self.is_simulated(r)]
        hum = (humans or HUMAN in raters) and self.humans_simulated
        if machines and hum:
            return (f" {MARK} Simulated data: rater profiles drawn from published values, not model outputs; the human "
                    "ratings are simulated too.")
        if machines:
            return f" {MARK} Simulated rater profile (drawn from published values), not a model's output."
        if hum:
            return f" Simulated data: the human ratings{' (' + MARK + ')' if HUMAN in raters else ''} are simulated."
        return ""

    def dimension(self, dim) -> str:
        return self.labels.get(str(dim), str(dim))

    # --- model terms -----------------------------------------------------------------------
    def level(self, factor: str, level: str, reference: str | None) -> str:
        key = f"{factor}{level}"
        if key in self.labels:
            return self.labels[key]
        if factor == "rater_type":
            return "machine" if level == "machine" else level
        lab = self.labels.get(level, level)
        return f"{lab} vs {self.labels.get(reference, reference)}" if reference else lab

    def term(self, term: str, reference_levels: dict | None = None) -> str:
        """A reader's label for an R coefficient name (``(Intercept)``, ``raceKorean``, ``a:b`` interactions)."""
        t = str(term)
        if t in self.labels:
            return self.labels[t]
        refs = dict(reference_levels or {})
        if t == "(Intercept)":
            at = ", ".join(f"{f} = {self.labels.get(v, v)}" for f, v in refs.items())
            return "intercept" + (f" ({at})" if at else "")
        if " - " in t:  # an emmeans contrast, e.g. "machine - human"
            return t.replace(" - ", " − ")
        parts = []
        for part in t.split(":"):
            factor = next((f for f in sorted(refs, key=len, reverse=True) if part.startswith(f) and part != f), None)
            if factor is None:
                m = re.match(r"^(rater_type|emotion|race|gender)(.+)$", part)
                factor = m.group(1) if m else None
            if factor is None:
                parts.append(self.labels.get(part, part))
            else:
                parts.append(self.level(factor, part[len(factor):], refs.get(factor)))
        return " × ".join(parts)
