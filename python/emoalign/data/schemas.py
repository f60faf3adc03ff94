"""Arrow schemas of every table in the public contract (docs/results-contract.md and the tables below).

Each table has *required* columns with fixed types; any other columns (design columns such as
``race``/``gender``, rater attributes, extra dimensions, per-class probabilities) may ride along.
``validate_columns`` checks a DataFrame against a contract and names what is missing or mistyped.

Tables
------
stimuli   one row per image: ``image_id`` (unique), ``path``, ``emotion`` (intended label), ``sha256``,
          plus design columns (``race``, ``gender``, ``identity_id``, ...).
humans    one row per trial: ``rater_id``, ``image_id`` and one numeric column per rated dimension
          (``valence``, ``arousal``, ``naturalness``, ...). Optional ``emotion`` (a chosen category).
machines  one row per (rater, image): ``rater``, ``image_id``, ``emotion``, ``valence``, ``arousal``
          (nullable), probabilities ``p_emotion_<label>``, ``p_valence_<k>``, ``p_arousal_<k>``,
          expected ratings ``valence_expected``/``arousal_expected``, raw text of every prompt step
          (``<step>_raw``), per-step parse status (``<step>_status``), ``error``, and provenance
          (``backend``, ``model_id``, ``model_revision``, ``dtype``, ``quantization``, ``batch_size``,
          ``strategy``, ``template_hash``, ``persona`` (set only with a persona), ``image_placement``,
          ``label_order``, ``seed``, ``timestamp``, ``versions`` (JSON), ``simulated`` (bool: True for simulated
          profiles, never passed off as model output), ``run_id``). The ``open_vocabulary`` strategy adds
          ``emotion_word`` (the model's own word) and the step-1 statuses ``lexicon``/``unmapped``/``ambiguous``.
results   tidy, broom column names: ``analysis_id``, ``metric`` or ``term``, ``estimate``,
          ``std_error``, ``statistic``, ``df``, ``p_value``, ``p_adjusted``, ``conf_low``,
          ``conf_high``, ``n``, plus grouping columns (``rater``, ``dimension``, ``emotion``, ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pyarrow as pa

from emoalign.errors import EmoalignError

#: the paper's label set (Tae, Park & Choi 2026: six basic emotions without surprise), in report order
PAPER_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "neutral")
#: the same labels in the order the paper's prompt lists them (Figure 2)
PAPER_PROMPT_ORDER = ("happy", "sad", "angry", "fear", "disgust", "neutral")

#: parse statuses a machine-rating step can carry
PARSE_STATUSES = ("json", "fence", "regex", "fuzzy", "clamped", "invalid", "error", "none",
                  "lexicon", "unmapped", "ambiguous")  # the last three: open_vocabulary step 1 (raters/vlm/lexicon.py)

#: steps whose raw text / status are recorded for machine raters
MACHINE_STEPS = ("emotion", "valence", "arousal")


@dataclass(frozen=True)
class TableContract:
    """A table's required columns (name -> Arrow type) and optional known columns."""

    name: str
    required: dict[str, pa.DataType]
    optional: dict[str, pa.DataType] = field(default_factory=dict)
    unique: tuple[str, ...] = ()

    def known(self) -> dict[str, pa.DataType]:
        return {**self.required, **self.optional}


STIMULI = TableContract(
    name="stimuli",
    required={"image_id": pa.string(), "path": pa.string(), "emotion": pa.string(), "sha256": pa.string()},
    optional={"race": pa.string(), "gender": pa.string(), "identity_id": pa.string(), "width": pa.int32(), "height": pa.int32()},
    unique=("image_id",),
)

HUMANS = TableContract(
    name="humans",
    required={"rater_id": pa.string(), "image_id": pa.string()},
    optional={"emotion": pa.string(), "valence": pa.float64(), "arousal": pa.float64(), "naturalness": pa.float64()},
    unique=("rater_id", "image_id"),
)

_PROVENANCE = {
    "backend": pa.string(),
    "model_id": pa.string(),
    "model_revision": pa.string(),
    "dtype": pa.string(),
    "quantization": pa.string(),
    "batch_size": pa.int32(),
    "strategy": pa.string(),
    "template_hash": pa.string(),
    "persona": pa.string(),
    "image_placement": pa.string(),
    "label_order": pa.string(),
    "seed": pa.int64(),
    "timestamp": pa.string(),
    "versions": pa.string(),
    "simulated": pa.bool_(),
    "run_id": pa.string(),
}

MACHINES = TableContract(
    name="machines",
    required={
        "rater": pa.string(),
        "image_id": pa.string(),
        "emotion": pa.string(),
        "valence": pa.float64(),
        "arousal": pa.float64(),
    },
    optional={
        "valence_expected": pa.float64(),
        "arousal_expected": pa.float64(),
        **{f"{s}_raw": pa.string() for s in MACHINE_STEPS},
        **{f"{s}_status": pa.string() for s in MACHINE_STEPS},
        "error": pa.string(),
        **_PROVENANCE,
    },
    unique=("rater", "image_id"),
)

RESULTS = TableContract(
    name="results",
    required={"analysis_id": pa.string(), "estimate": pa.float64()},
    optional={
        "metric": pa.string(),
        "term": pa.string(),
        "std_error": pa.float64(),
        "statistic": pa.float64(),
        "df": pa.float64(),
        "p_value": pa.float64(),
        "p_adjusted": pa.float64(),
        "conf_low": pa.float64(),
        "conf_high": pa.float64(),
        "n": pa.int64(),
        "rater": pa.string(),
        "dimension": pa.string(),
        "emotion": pa.string(),
        "flag": pa.string(),
    },
)

#: tidy result columns in their canonical order (grouping columns go in front of these)
RESULT_VALUE_COLUMNS = (
    "metric", "term", "estimate", "std_error", "statistic", "df", "p_value", "p_adjusted", "conf_low", "conf_high", "n",
)

CONTRACTS = {c.name: c for c in (STIMULI, HUMANS, MACHINES, RESULTS)}

#: probability column prefixes in the machines table
PROB_PREFIX = {"emotion": "p_emotion_", "valence": "p_valence_", "arousal": "p_arousal_"}


def _type_ok(series: pd.Series, typ: pa.DataType) -> bool:
    if len(series) == 0 or series.isna().all():
        return True
    if pa.types.is_string(typ):
        return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series) or isinstance(series.dtype, pd.CategoricalDtype)
    if pa.types.is_floating(typ) or pa.types.is_integer(typ):
        return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
    if pa.types.is_boolean(typ):
        return pd.api.types.is_bool_dtype(series) or pd.api.types.is_object_dtype(series)
    return True


def validate_columns(df: pd.DataFrame, contract: TableContract, source: str = "") -> None:
    """Raise EmoalignError naming missing/mistyped required columns and duplicate keys."""
    where = f" in {source}" if source else ""
    missing = [c for c in contract.required if c not in df.columns]
    if missing:
        raise EmoalignError(
            f"{contract.name} table{where} lacks required column(s) {', '.join(missing)}; it has: {', '.join(map(str, df.columns))}",
            hint=f"the {contract.name} contract needs: {', '.join(contract.required)}",
        )
    bad = [c for c, t in contract.known().items() if c in df.columns and not _type_ok(df[c], t)]
    if bad:
        raise EmoalignError(
            f"{contract.name} table{where}: column(s) {', '.join(bad)} have the wrong type "
            f"({', '.join(f'{c}: {df[c].dtype}' for c in bad)})",
            hint="check that numeric columns hold only numbers and id columns hold text",
        )
    if contract.unique:
        dup = df.duplicated(list(contract.unique), keep=False)
        if dup.any():
            ex = df.loc[dup, list(contract.unique)].drop_duplicates().head(5).to_dict("records")
            raise EmoalignError(
                f"{contract.name} table{where}: {int(dup.sum())} rows share a key {tuple(contract.unique)}; first: {ex}",
                hint="each key must appear once; remove or merge the duplicate rows",
            )


def conform(df: pd.DataFrame, contract: TableContract) -> pa.Table:
    """Convert a DataFrame to an Arrow table with the contract's types for known columns.

    String-typed known columns are cast to ``str`` (keeping nulls); unknown columns keep their inferred type.
    """
    out = df.copy()
    for col, typ in contract.known().items():
        if col not in out.columns:
            continue
        if pa.types.is_string(typ):
            s = out[col]
            out[col] = s.astype("string").astype(object).where(s.notna(), None)
    table = pa.Table.from_pandas(out, preserve_index=False)
    fields = []
    for f in table.schema:
        typ = contract.known().get(f.name)
        fields.append(pa.field(f.name, typ if typ is not None else f.type))
    return table.cast(pa.schema(fields), safe=False)
