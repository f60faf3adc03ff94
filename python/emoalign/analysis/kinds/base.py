"""What every analysis kind shares: common spec fields, the result type, and the registry.

A kind is one module in ``emoalign/analysis/kinds/`` that defines an options model (a subclass of
``AnalysisBase`` with ``kind: Literal["<name>"]``) and a ``run(options, study, r) -> KindResult``
function, and registers both with ``@register``. The registry is the only list of kinds: the spec
model, ``emoalign spec schema`` and the engine all read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from emoalign.data.schemas import RESULT_VALUE_COLUMNS


class AnalysisBase(BaseModel):
    """Fields every analysis has. Kind modules add their own options with documented defaults."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Unique id; the result file is results/<id>.parquet.", pattern=r"^[A-Za-z0-9_.-]+$")
    kind: str = Field(description="Analysis kind (see `emoalign spec schema`).")
    title: str | None = Field(None, description="Heading used in the report (default: the id).")
    raters: str | list[str] = Field("machines", description="Rater names or groups: human, machines, all, or a group of study.groups.")
    dimension: str | list[str] | None = Field(None, description="Rated dimension(s), e.g. valence or [valence, arousal].")
    subset: dict[str, str | int | float | list[str | int | float]] | None = Field(
        None, description="Keep only rows whose design columns match, e.g. {race: Korean} or {emotion: [sad, fear]}.")
    by: list[str] = Field(default_factory=list, description="Design columns to compute the analysis separately for (e.g. [emotion]).")

    def dimensions(self) -> list[str]:
        if self.dimension is None:
            return []
        return [self.dimension] if isinstance(self.dimension, str) else list(self.dimension)

    def produces(self, raters: Sequence[str]) -> list[str]:
        """Names of the derived raters this analysis adds to the study for the analyses after it, given its
        resolved machine ``raters`` (none for most kinds; e.g. ``calibration`` writes ``<rater>:calibrated``)."""
        return []


@dataclass
class KindResult:
    """A tidy table (broom column names) plus warnings/messages worth keeping in the manifest.

    ``extra`` holds optional per-observation tables a figure needs (e.g. Bland-Altman points); the
    engine writes each as ``results/<id>.<name>.parquet`` and lists it in the manifest. ``raters`` are
    derived raters the analysis hands to the analyses after it (the names its options' ``produces``
    promised); the engine adds them to the study.
    """

    table: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    info: dict = field(default_factory=dict)
    extra: dict[str, pd.DataFrame] = field(default_factory=dict)
    raters: list["DerivedRater"] = field(default_factory=list)


@dataclass
class DerivedRater:
    """A rater an analysis writes: ``rows`` (``image_id`` + machines-table columns), its ``source`` rater and
    a one-line ``description`` of how it was made (shown in the manifest and report)."""

    name: str
    rows: pd.DataFrame
    source: str
    description: str


@dataclass(frozen=True)
class KindEntry:
    name: str
    options: type[AnalysisBase]
    run: Callable[..., KindResult]
    needs_r: bool = False
    doc: str = ""


KINDS: dict[str, KindEntry] = {}


def register(name: str, options: type[AnalysisBase], *, needs_r: bool = False):
    """Decorator for a kind's ``run`` function: ``@register("agreement", AgreementOptions)``."""

    def deco(fn):
        KINDS[name] = KindEntry(name=name, options=options, run=fn, needs_r=needs_r, doc=(fn.__doc__ or "").strip())
        return fn

    return deco


def tidy(df: pd.DataFrame, group_cols: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Order columns: grouping columns first, then the broom value columns that are present, then the rest."""
    front = [c for c in group_cols if c in df.columns]
    values = [c for c in RESULT_VALUE_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in front and c not in values]
    return df[front + values + rest].reset_index(drop=True)
