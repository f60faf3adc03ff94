"""What every analysis kind shares: common spec fields, the result type, and its registry entry.

A kind is one module in ``emoalign/analysis/kinds/`` (or a third-party module declared under the entry-point
group ``emoalign.kinds``) that defines an options model (a subclass of ``AnalysisBase`` with
``kind: Literal["<name>"]``, whose docstring's first line describes the kind) and a
``run(options, study, r) -> KindResult`` function, and registers both with ``@register`` -- optionally with
its own data checks (``check=``). The registry (:data:`emoalign.registry.KINDS`) is the only list of kinds:
the spec model, ``emoalign spec schema``, the spec checks, the engine and the report all read it.
docs/architecture.md walks through adding one.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal, Sequence

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from emoalign.data.schemas import RESULT_VALUE_COLUMNS
from emoalign.registry import KINDS
from emoalign.spec.roles import PAPER_ROLES

if TYPE_CHECKING:
    from emoalign.analysis.checks import Problem
    from emoalign.analysis.study import Study


class ReportPlacement(BaseModel):
    """Where the report shows an analysis."""

    model_config = ConfigDict(extra="forbid")

    role: str | None = Field(
        None, pattern=r"^[A-Za-z0-9_.-]+$",
        description="The part this analysis plays in the paper's report (docs/architecture.md lists the roles: "
                    + ", ".join(PAPER_ROLES) + "). Without a role, an analysis whose id is one of these "
                    "plays that part (specs written before roles); any other renders under its kind. A role is "
                    "played by one analysis of the kind its section reads.")


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
    images: Literal["all", "common"] = Field(
        "all", description="Images each rater is judged on: all it rated (all; raters with fewer images than another "
                           "compared rater are flagged), or only those every compared rater rated (common).")
    report: ReportPlacement | None = Field(
        None, description="Where the report shows this analysis, e.g. {role: human_ceiling} (default: by its id and kind).")

    def dimensions(self) -> list[str]:
        if self.dimension is None:
            return []
        return [self.dimension] if isinstance(self.dimension, str) else list(self.dimension)

    def produces(self, raters: Sequence[str]) -> list[str]:
        """Names of the derived raters this analysis adds to the study for the analyses after it, given its
        resolved machine ``raters`` (none for most kinds; e.g. ``calibration`` writes ``<rater>:calibrated``)."""
        return []

    def r_formula(self) -> tuple[str, str] | None:
        """``(field, formula)`` when this analysis sends a model formula to R (checked against the grammar of
        :mod:`emoalign.formula` when the spec is loaded); None for kinds without one."""
        return None

    def r_names(self) -> list[tuple[tuple, str]]:
        """``(field path, name)`` of every other option that reaches R as text (a factor name such as ``lmm``'s
        ``contrast``); each must be a column name and a variable of ``r_formula``."""
        return []

    @property
    def role(self) -> str | None:
        """The report role (``report.role``), or None."""
        return self.report.role if self.report else None

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        if "kind" in cls.__dict__.get("__annotations__", {}):  # a kind's options (not a shared base)
            cls.__doc__ = options_docstring(cls)


def options_docstring(options: type[BaseModel]) -> str:
    """The numpydoc docstring of a kind's options model: its own text (summary, ``Examples``), a ``Parameters``
    section built from the fields (type, default, description: the text ``emoalign spec schema`` shows) and the
    ``References`` of the kind's module, so the options are documented once, where they are declared."""
    import inspect
    import sys
    import textwrap
    import typing

    def type_text(annotation) -> str:
        if typing.get_origin(annotation) is Literal:
            return "{" + ", ".join(repr(a) for a in typing.get_args(annotation)) + "}"
        return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")

    own = inspect.cleandoc(options.__doc__ or "")
    summary, _, examples = own.partition("Examples\n--------\n")
    params = []
    for name, f in options.model_fields.items():
        default = "" if f.is_required() or f.default_factory is not None else f", default {f.default!r}"
        text = f.description or ("The analysis kind." if name == "kind" else "")
        params.append(f"{name} : {type_text(f.annotation)}{default}\n"
                      + textwrap.fill(text, 100, initial_indent="    ", subsequent_indent="    "))
    module = sys.modules.get(options.__module__)
    refs = ((module.__doc__ or "") if module else "").partition("References\n----------\n")[2].strip()
    parts = [summary.strip(), "Parameters\n----------\n" + "\n".join(params)]
    if refs:
        parts.append("References\n----------\n" + refs)
    if examples.strip():
        parts.append("Examples\n--------\n" + examples.strip())
    return "\n\n".join(parts) + "\n"


@dataclass
class KindResult:
    """A tidy table (broom column names) plus warnings/messages worth keeping in the manifest.

    ``extra`` holds optional further tables (per-observation points a figure needs, e.g. Bland-Altman
    points; ``glance``: one row per fitted model); the engine writes each as
    ``results/<id>.<name>.parquet`` and lists it in the manifest. ``info`` goes into the manifest entry
    (e.g. ``ci``: how each interval is computed and what, if anything, is resampled). A
    ``flag`` column in ``table`` marks rows whose numbers cannot be taken at face value (see
    :func:`add_flag`). ``raters`` are derived raters the analysis hands to the analyses after it (the
    names its options' ``produces`` promised); the engine adds them to the study.
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
    """A registered kind: what the spec model, the checks, the engine and the report read.

    ``description``: one line (the options docstring's first line unless given), shown by the report and
    ``emoalign spec schema``. ``compares``: what the kind compares across raters (see :func:`register`).
    ``check(options, study) -> list[Problem]``: the kind's own data checks (formula frames, reference levels,
    columns only it reads), run before any statistics beside the checks every kind gets
    (:mod:`emoalign.analysis.checks`).
    """

    name: str
    options: type[AnalysisBase]
    run: Callable[..., KindResult]
    description: str = ""
    compares: str | None = None
    check: Callable[[AnalysisBase, "Study"], list["Problem"]] | None = None

#: row flag of a machine rater that gives one value to every image (of the dimension, or of the row's group)
CONSTANT_RATINGS = "constant machine ratings"


def register(name: str, options: type[AnalysisBase], *, compares: str | None = None,
             check: Callable[[AnalysisBase, "Study"], list["Problem"]] | None = None, description: str | None = None):
    """Decorator for a kind's ``run`` function: ``@register("agreement", AgreementOptions, compares=...)``.

    ``compares`` (``"ratings_vs_human"``, ``"ratings"``, ``"labels"`` or None) says what the kind compares
    across raters; the registered ``run`` then applies ``images: common``, warns about raters compared on
    unequal numbers of images or giving constant ratings, and flags their rows
    (:mod:`emoalign.analysis.kinds._images`). ``check``: the kind's own data checks (see :class:`KindEntry`).
    ``description``: one line (default: the first line of the options docstring). A name registered twice
    by two modules is an error.
    """

    def deco(fn):
        @functools.wraps(fn)
        def run(opts, study, r=None) -> KindResult:
            from emoalign.analysis.kinds._images import scope

            sc = scope(opts, study, compares)
            res = fn(opts, sc.study, r)
            res.warnings[:0] = sc.warnings
            for rater, (n, top) in sc.short.items():
                add_flag(res.table, rows_of(res.table, rater), f"fewer images ({n:,} of {top:,})")
            for (rater, dim), value in sc.constant.items():
                mask = rows_of(res.table, rater)
                if "dimension" in res.table.columns:
                    mask &= res.table["dimension"].astype(str).eq(dim).to_numpy()
                add_flag(res.table, mask, CONSTANT_RATINGS)
            return res

        doc = description or (options.__doc__ or "").strip().split("\n")[0]
        run.entry = KINDS.add(name, KindEntry(name=name, options=options, run=run, description=doc,
                                              compares=compares, check=check), origin=fn.__module__)
        return run

    return deco


def rows_of(table: pd.DataFrame, rater: str):
    """Boolean mask of the rows that involve ``rater`` (columns ``rater``, ``rater2`` or the comma-joined
    ``raters``)."""
    mask = np.zeros(len(table), dtype=bool)
    for col in ("rater", "rater2", "raters"):
        if col in table.columns:
            mask |= table[col].astype(str).map(lambda v: rater in v.split(",")).to_numpy(dtype=bool)
    return mask


def add_flag(table: pd.DataFrame, mask, text: str) -> None:
    """Append ``text`` to the ``flag`` column (created when missing; ``"; "``-joined) of the rows in ``mask``.

    A flag says why a row's numbers cannot be taken at face value (a fit that did not converge, a
    singular fit, constant ratings, fewer images than the other raters, ...); the manifest carries the
    matching warning and the report marks flagged rows.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return
    if "flag" not in table.columns:
        table["flag"] = pd.Series([None] * len(table), index=table.index, dtype=object)
    current = table.loc[mask, "flag"].tolist()
    table.loc[mask, "flag"] = [text if c is None or (isinstance(c, float) and pd.isna(c)) else
                               (c if text in c.split("; ") else f"{c}; {text}") for c in current]


def tidy(df: pd.DataFrame, group_cols: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """Order columns: grouping columns first, then the broom value columns that are present, then the rest."""
    front = [c for c in group_cols if c in df.columns]
    values = [c for c in RESULT_VALUE_COLUMNS if c in df.columns]
    rest = [c for c in df.columns if c not in front and c not in values]
    return df[front + values + rest].reset_index(drop=True)
