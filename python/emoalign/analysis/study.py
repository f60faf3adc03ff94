"""The loaded study every analysis kind reads from, and the comparison frames built from it.

The *comparison frame* (docs/architecture.md) has one row per (image, rater) for one dimension: the human
aggregate as rater ``human`` (mean over trials, or the raw trials when ``aggregate="trials"``),
every requested machine rater, and all stimulus design columns::

    image_id  rater  rater_type  family  rating  n_trials  emotion  race  gender  identity_id ...

``rater_type`` is ``"human"`` or ``"machine"`` (LMM formulas compare them, e.g.
``rating ~ rater_type * emotion + (1|image_id)``); ``family`` is the rater's group (``vlm``, ``fer``,
...; ``human`` for humans). A machine rater name with the suffix ``:expected`` (``gemma3:expected``)
uses that rater's probability-weighted rating column (``<dimension>_expected``).

The *label frame* has one row per (image, rater): ``predicted`` label and ``reference`` label.

*Derived raters* (:mod:`emoalign.analysis.derived`) are rows appended to ``machines`` while a spec runs:
raters assembled per field from others (``study.derived``) and raters an analysis writes for the
analyses after it (``<rater>:calibrated``, ``<rater>:prior_corrected``). They are ordinary raters for
every kind; ``Study.derived`` records what each one is. The groups ``machines`` and ``all`` hold the
study's own raters and its ``study.derived`` raters, not analysis products (name those explicitly).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np
import pandas as pd

from emoalign.errors import EmoalignError, format_examples

HUMAN = "human"
EXPECTED_SUFFIX = ":expected"
#: group names that always exist
BUILTIN_GROUPS = ("human", "machines", "all")


@dataclass
class Study:
    """Stimuli, human trials and machine ratings of one study, plus its scales and label set."""

    stimuli: pd.DataFrame
    humans: pd.DataFrame
    machines: pd.DataFrame
    scales: dict[str, tuple[float, float]]
    emotions: list[str]
    reference: str = "emotion"
    groups: dict[str, list[str]] = field(default_factory=dict)
    #: derived raters: name -> {"description", "sources", "produced_by" (analysis id or None), "family", "product"}
    derived: dict[str, dict] = field(default_factory=dict)
    #: ``study.derived`` definitions not built yet (their sources come from analyses still to run)
    pending_derived: list = field(default_factory=list)

    # ---- raters -------------------------------------------------------------------------
    @property
    def machine_raters(self) -> list[str]:
        if self.machines.empty:
            return []
        return list(pd.unique(self.machines["rater"].astype(str)))

    @property
    def own_raters(self) -> list[str]:
        """The raters the groups ``machines``/``all`` expand to: all but those written by analyses."""
        return [r for r in self.machine_raters if not self.derived.get(r, {}).get("product")]

    def family_of(self, rater: str) -> str:
        if rater == HUMAN:
            return HUMAN
        base = rater.removesuffix(EXPECTED_SUFFIX)
        for g, members in self.groups.items():
            if base in members or rater in members:
                return g
        return self.derived.get(base, {}).get("family") or "machine"

    def add_rater(self, rows: pd.DataFrame, name: str, *, description: str, sources: Sequence[str],
                  produced_by: str | None = None, family: str | None = None) -> None:
        """Append derived rater ``name`` (``rows``: one per image, machines-table columns) to ``machines``.

        ``simulated`` is true when any source is a simulated profile; ``product`` marks raters written by
        an analysis (or assembled from one), which the groups ``machines``/``all`` leave out.
        """
        if name in self.machine_raters:
            raise EmoalignError(f"derived rater {name!r} already exists in the study",
                                hint="give the derived rater another name")
        src = [s.removesuffix(EXPECTED_SUFFIX) for s in sources]
        m = self.machines
        sim = bool("simulated" in m.columns and m.loc[m["rater"].isin(src), "simulated"].fillna(False).astype(bool).any())
        rows = rows.copy()
        rows["rater"] = name
        rows["simulated"] = sim
        rows["derived"] = description
        self.machines = pd.concat([m, rows], ignore_index=True)
        product = produced_by is not None or any(self.derived.get(s, {}).get("product") for s in src)
        self.derived[name] = {"description": description, "sources": list(dict.fromkeys(sources)),
                              "produced_by": produced_by,
                              "family": family or (self.family_of(src[0]) if len(set(src)) == 1 else "hybrid"),
                              "product": product}

    def resolve_raters(self, spec: str | Sequence[str] | None, *, default: str = "machines") -> list[str]:
        """Expand rater names and group names (``human``, ``machines``, ``all``, spec groups) to rater names.

        Order is preserved and duplicates dropped. Unknown names raise an error listing the known ones.
        """
        names = [spec] if isinstance(spec, str) else list(spec or [default])
        known = set(self.machine_raters)
        out: list[str] = []
        for name in names:
            if name == "all":
                expanded = [HUMAN, *self.own_raters]
            elif name == "machines":
                expanded = self.own_raters
            elif name == HUMAN:
                expanded = [HUMAN]
            elif name in self.groups:
                expanded = [r for r in self.groups[name]]
            else:
                expanded = [name]
            for r in expanded:
                if r != HUMAN and r.removesuffix(EXPECTED_SUFFIX) not in known:
                    raise EmoalignError(
                        f"unknown rater {r!r}",
                        hint=f"known machine raters: {format_examples(sorted(known), 20)}; groups: "
                             f"{', '.join([*BUILTIN_GROUPS, *self.groups])}",
                    )
                if r not in out:
                    out.append(r)
        return out

    @property
    def design_columns(self) -> list[str]:
        skip = {"image_id", "path", "sha256", "width", "height"}
        return [c for c in self.stimuli.columns if c not in skip]

    # ---- frames ---------------------------------------------------------------------------
    def _check_dimension(self, dimension: str) -> None:
        if dimension not in self.humans.columns and dimension not in self.machines.columns:
            raise EmoalignError(f"unknown dimension {dimension!r}", hint=f"the study's scales: {', '.join(self.scales)}")

    def machine_ratings(self, rater: str, column: str) -> pd.DataFrame:
        """``image_id`` and ``value`` of one machine rater's column (``:expected`` handled)."""
        base = rater.removesuffix(EXPECTED_SUFFIX)
        col = f"{column}_expected" if rater.endswith(EXPECTED_SUFFIX) else column
        rows = self.machines[self.machines["rater"].astype(str) == base]
        if col not in rows.columns:
            raise EmoalignError(f"machine rater {base!r} has no column {col!r}",
                                hint="expected ratings exist only for raters run with token probabilities")
        out = rows[["image_id", col]].rename(columns={col: "value"})
        if "error" in rows.columns:
            out = out[rows["error"].isna().to_numpy()]
        return out

    def human_trials(self, dimension: str, subset: dict | None = None) -> pd.DataFrame:
        """Raw human trials of one dimension with design columns: rater_id, image_id, rating, ..."""
        self._check_dimension(dimension)
        h = self.humans[["rater_id", "image_id", dimension]].rename(columns={dimension: "rating"}).dropna(subset=["rating"])
        h = h.merge(self.stimuli[["image_id", *self.design_columns]], on="image_id", how="inner")
        return apply_subset(h, subset)

    def comparison_frame(self, dimension: str, raters: Sequence[str] | str | None = None,
                         aggregate: Literal["mean", "trials"] = "mean", subset: dict | None = None,
                         include_human: bool = True) -> pd.DataFrame:
        """One row per (image, rater) (per trial for humans when ``aggregate="trials"``)."""
        self._check_dimension(dimension)
        names = [r for r in self.resolve_raters(raters) if r != HUMAN]
        parts = []
        if include_human:
            h = self.humans[["rater_id", "image_id", dimension]].dropna(subset=[dimension])
            if aggregate == "mean":
                g = h.groupby("image_id", observed=True)[dimension]
                hf = pd.DataFrame({"rating": g.mean(), "n_trials": g.size()}).reset_index()
                hf["rater"] = HUMAN
            elif aggregate == "trials":
                hf = h.rename(columns={dimension: "rating"})
                hf["n_trials"] = 1
                hf["rater"] = HUMAN
            else:
                raise EmoalignError(f"aggregate must be 'mean' or 'trials', got {aggregate!r}")
            parts.append(hf)
        for r in names:
            m = self.machine_ratings(r, dimension).rename(columns={"value": "rating"}).dropna(subset=["rating"])
            m["rater"] = r
            m["n_trials"] = 1
            parts.append(m)
        if not parts:
            raise EmoalignError("no raters selected for the comparison frame")
        df = pd.concat(parts, ignore_index=True)
        df["rating"] = df["rating"].astype(float)
        df["rater_type"] = np.where(df["rater"] == HUMAN, "human", "machine")
        df["family"] = [self.family_of(r) for r in df["rater"]]
        df = df.merge(self.stimuli[["image_id", *self.design_columns]], on="image_id", how="inner")
        return apply_subset(df, subset).reset_index(drop=True)

    def label_frame(self, raters: Sequence[str] | str | None = None, reference: str | None = None,
                    subset: dict | None = None) -> pd.DataFrame:
        """One row per (image, machine rater): ``predicted`` and ``reference`` labels + design columns.

        Rows whose rater errored are dropped; a missing/invalid prediction is kept as ``predicted=NaN``
        (it counts as wrong in accuracy).
        """
        ref = reference or self.reference
        if ref not in self.stimuli.columns:
            raise EmoalignError(f"reference label column {ref!r} is not a stimulus column",
                                hint=f"stimulus columns: {', '.join(self.stimuli.columns)}")
        names = [r for r in self.resolve_raters(raters) if r != HUMAN]
        parts = []
        for r in names:
            m = self.machine_ratings(r.removesuffix(EXPECTED_SUFFIX), "emotion").rename(columns={"value": "predicted"})
            m["rater"] = r
            parts.append(m)
        if not parts:
            raise EmoalignError("no machine raters selected for a label frame")
        df = pd.concat(parts, ignore_index=True)
        design = self.stimuli[["image_id", *self.design_columns]].copy()
        design["reference"] = self.stimuli[ref].astype(str)
        df = df.merge(design, on="image_id", how="inner")
        df["family"] = [self.family_of(r) for r in df["rater"]]
        return apply_subset(df, subset).reset_index(drop=True)


def apply_subset(df: pd.DataFrame, subset: dict | None) -> pd.DataFrame:
    """Keep rows whose columns match ``subset`` ({column: value or [values]})."""
    if not subset:
        return df
    mask = pd.Series(True, index=df.index)
    for col, val in subset.items():
        if col not in df.columns:
            raise EmoalignError(f"subset names column {col!r}, which the data lacks",
                                hint=f"available columns: {', '.join(map(str, df.columns))}")
        vals = val if isinstance(val, (list, tuple, set)) else [val]
        mask &= df[col].astype(str).isin([str(v) for v in vals])
    return df[mask]
