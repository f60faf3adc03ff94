"""Derived raters: raters assembled per field from other raters (``study.derived``).

A derived rater takes each field from a named source rater, e.g. Tae, Park & Choi (2026, §5.4)'s hybrid
of FER labels and valence with VLM arousal::

    study:
      derived:
        - {name: hybrid, emotion: posterv2, valence: mobilevit, arousal: gemma3}

``emotion`` carries the source's label and its ``p_emotion_*`` probabilities; a dimension carries the
rating, ``<dim>_expected`` and ``p_<dim>_*``. A source named ``<rater>:expected`` gives its
probability-weighted rating as the rating. Sources may be raters an earlier analysis wrote
(``gemma3:calibrated``): the rater is then built as soon as its sources exist, while the spec runs in
order. Images are the union of the sources' images (a field is missing where its source lacks the image).
Derived raters are marked in the manifest (``derived``, ``sources``, ``produced_by``) and the report.
"""

from __future__ import annotations

import pandas as pd

from emoalign.analysis.study import EXPECTED_SUFFIX, Study
from emoalign.data.schemas import PROB_PREFIX


def field_columns(columns, field: str) -> list[str]:
    """The machines-table columns a field carries (``emotion`` + ``p_emotion_*``; a dimension + ``_expected`` + probs)."""
    prefix = PROB_PREFIX.get(field, f"p_{field}_")
    own = [field] if field == "emotion" else [field, f"{field}_expected"]
    return [c for c in columns if c in own or c.startswith(prefix)]


def fields_of(spec) -> dict[str, str]:
    """``{field: source rater}`` of a ``study.derived`` entry (its name and family are not fields)."""
    d = spec.model_dump(exclude_none=True) if hasattr(spec, "model_dump") else dict(spec)
    return {k: v for k, v in d.items() if k not in ("name", "family")}


def assemble(study: Study, fields: dict[str, str]) -> pd.DataFrame:
    """One row per image: every field's columns taken from its source rater (outer join on ``image_id``)."""
    out: pd.DataFrame | None = None
    m = study.machines
    for field, source in fields.items():
        base = source.removesuffix(EXPECTED_SUFFIX)
        rows = m[m["rater"].astype(str) == base]
        if "error" in rows.columns:
            rows = rows[rows["error"].isna()]
        cols = field_columns(rows.columns, field)
        part = rows[["image_id", *cols]].dropna(subset=cols, how="all").copy()  # e.g. a blank input without ratings
        if source.endswith(EXPECTED_SUFFIX) and field != "emotion" and f"{field}_expected" in part.columns:
            part[field] = part[f"{field}_expected"]
        out = part if out is None else out.merge(part, on="image_id", how="outer")
    return out if out is not None else pd.DataFrame({"image_id": []})


def describe(fields: dict[str, str]) -> str:
    return "; ".join(f"{f} from {s}" for f, s in fields.items())


def build_ready(study: Study) -> list[str]:
    """Build every pending ``study.derived`` rater whose sources all exist now; returns the names built."""
    built = []
    progress = True
    while progress:
        progress = False
        for spec in list(study.pending_derived):
            fields = fields_of(spec)
            known = set(study.machine_raters)
            if all(s.removesuffix(EXPECTED_SUFFIX) in known for s in fields.values()):
                study.add_rater(assemble(study, fields), spec.name, description=describe(fields),
                                sources=list(fields.values()), family=spec.family)
                study.pending_derived.remove(spec)
                built.append(spec.name)
                progress = True
    return built
