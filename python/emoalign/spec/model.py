"""The spec model: one ``study`` block and a flat list of ``analyses``.

The analysis entries are a discriminated union on ``kind`` built from the kinds registry
(:data:`emoalign.registry.KINDS`), so adding a kind module (or installing a plug-in that declares one) adds
it to validation, to ``emoalign spec schema`` and to the engine, with no list to edit here.
"""

from __future__ import annotations

from typing import Annotated, Any, Union

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class DerivedRaterSpec(BaseModel):
    """A rater assembled per field from other raters, e.g. the hybrid of Tae, Park & Choi (2026, §5.4):
    ``{name: hybrid, emotion: posterv2, valence: mobilevit, arousal: gemma3}``. Any further key names a
    dimension of study.scales and the rater it comes from."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, str] = Field(init=False)

    name: str = Field(description="Name of the derived rater (letters, digits, _ . -; no ':').",
                      pattern=r"^[A-Za-z0-9_.-]+$")
    family: str | None = Field(None, description="Rater family shown in the report (default: the source's family "
                                                 "when all fields come from one rater, else 'hybrid').")
    emotion: str | None = Field(None, description="Rater whose emotion labels (and p_emotion_* probabilities) it gives.")
    valence: str | None = Field(None, description="Rater whose valence ratings it gives (`<rater>:expected`: the "
                                                  "probability-weighted rating; `<rater>:calibrated`: written by a "
                                                  "calibration analysis earlier in the spec).")
    arousal: str | None = Field(None, description="Rater whose arousal ratings it gives (as for valence).")


class StudySettings(BaseModel):
    """A spec's ``study`` block as the commands before ``analyze`` read it (``stimuli check``, ``humans import``,
    ``infer``: the label set and scales), where the table paths may be left out. :class:`StudySpec`, the block
    ``analyze`` reads, requires them; both validate everything else the same way."""

    model_config = ConfigDict(extra="forbid")

    stimuli: str | None = Field(None, description="Stimulus table (parquet or CSV): image_id, path, emotion, design columns.")
    humans: str | None = Field(None, description="Human ratings, one row per trial: rater_id, image_id, one column per "
                                                 "dimension.")
    machines: list[str] = Field(default_factory=list,
                                description="Machine rating files or globs, e.g. [runs/*/ratings.parquet].")
    scales: dict[str, tuple[float, float]] = Field(
        default_factory=lambda: {"valence": (1, 9), "arousal": (1, 9)},
        description="Scale (min, max) of each rated dimension, e.g. {valence: [1, 9]}.")
    emotions: list[str] = Field(default_factory=list, description="The emotion label set (order = report order).")
    reference: str = Field("emotion", description="Stimulus column holding the intended (reference) label.")
    groups: dict[str, list[str]] = Field(default_factory=dict,
                                         description="Named sets of machine raters usable in `raters`, e.g. {vlm: [gemma3]}.")
    derived: list[DerivedRaterSpec] = Field(
        default_factory=list,
        description="Raters assembled per field from other raters (or from raters an analysis writes, such as "
                    "`gemma3:calibrated`), e.g. [{name: hybrid, emotion: posterv2, valence: mobilevit, arousal: gemma3}]. "
                    "They are ordinary raters for every analysis and marked derived in the manifest and report.")

    @field_validator("machines", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("scales", mode="before")
    @classmethod
    def _min_max(cls, v: Any) -> Any:
        """``{valence: {min: 1, max: 9}}`` reads as ``{valence: [1, 9]}`` (the form ``humans import`` accepted)."""
        if isinstance(v, dict):
            return {k: ([r["min"], r["max"]] if isinstance(r, dict) and set(r) == {"min", "max"} else r)
                    for k, r in v.items()}
        return v

    @field_validator("scales")
    @classmethod
    def _scale_order(cls, v: dict) -> dict:
        for dim, (lo, hi) in v.items():
            if not lo < hi:
                raise ValueError(f"scale of {dim!r} must be [min, max] with min < max, got [{lo}, {hi}]")
        return v

    @field_validator("groups")
    @classmethod
    def _reserved(cls, v: dict) -> dict:
        for name in v:
            if name in ("human", "machines", "all"):
                raise ValueError(f"group name {name!r} is reserved (built-in group); choose another name")
        return v

    @model_validator(mode="after")
    def _derived_fields(self):
        seen: set[str] = set()
        for d in self.derived:
            if d.name in seen or d.name in self.groups or d.name in ("human", "machines", "all"):
                raise ValueError(f"derived rater name {d.name!r} is used twice or names a group; choose another name")
            seen.add(d.name)
            fields = {k: v for k, v in d.model_dump(exclude_none=True).items() if k not in ("name", "family")}
            if not fields:
                raise ValueError(f"derived rater {d.name!r} takes no field from any rater; add e.g. `emotion: posterv2`")
            for f in fields:
                if f != "emotion" and f not in self.scales:
                    raise ValueError(f"derived rater {d.name!r}: {f!r} is neither `emotion` nor a dimension of "
                                     f"study.scales ({', '.join(self.scales)})")
        return self


class StudySpec(StudySettings):
    """Where the study's tables are and how to read them. Paths are relative to ``--data DIR``
    (default: the spec file's folder)."""

    stimuli: str = Field(description="Stimulus table (parquet or CSV): image_id, path, emotion, design columns.")
    humans: str = Field(description="Human ratings, one row per trial: rater_id, image_id, one column per dimension.")


class CompareTo(BaseModel):
    """Published values to set beside this study's estimates (the report's replication scorecard)."""

    model_config = ConfigDict(extra="forbid")

    published: str = Field("tae2026", description="Built-in published values (`tae2026`: Tae, Park & Choi 2026) or a "
                                                  "YAML file of published values in the same format (relative to the spec).")
    raters: dict[str, str] = Field(default_factory=dict,
                                   description="Published model -> rater of this study, e.g. {gemma3: my_gemma_run}; "
                                               "models not listed are looked up under their own key.")


class SpecBase(BaseModel):
    """Base for the generated spec model (see :func:`spec_model`)."""

    model_config = ConfigDict(extra="forbid")

    study: StudySpec
    labels: dict[str, str] = Field(
        default_factory=dict,
        description="Display names for the report: raters, dimensions, factor levels and model terms, e.g. "
                    "{gemma3: Gemma3-4B, genderfemale: female vs male}. Names not listed are shown as they are "
                    "(model terms get an automatic 'level vs reference' label).")
    compare_to: CompareTo | str | None = Field(
        None, description="Published values to compare with (the report's replication section), e.g. `tae2026` or "
                          "{published: tae2026, raters: {gemma3: my_gemma_run}}.")
    analyses: list[Any] = Field(default_factory=list)

    @field_validator("compare_to", mode="before")
    @classmethod
    def _compare_to_name(cls, v: Any) -> Any:
        return {"published": v} if isinstance(v, str) else v

    @field_validator("compare_to")
    @classmethod
    def _known_published(cls, v: CompareTo | str | None) -> CompareTo | None:
        from emoalign.replication.published import builtin_published

        if isinstance(v, str):  # (the before-validator turns a name into a mapping; kept for the JSON Schema)
            v = CompareTo(published=v)
        if v is not None and not v.published.lower().endswith((".yaml", ".yml")) and v.published not in builtin_published():
            raise ValueError(f"unknown published values {v.published!r}; built-in: {', '.join(builtin_published())} "
                             "(or give a .yaml file of published values)")
        return v

    @model_validator(mode="after")
    def _unique_ids(self):
        seen: set[str] = set()
        for a in self.analyses:
            if a.id in seen:
                raise ValueError(f"analysis id {a.id!r} is used twice; ids name the result files and must be unique")
            seen.add(a.id)
        return self


_MODEL: dict[int, type[SpecBase]] = {}


def spec_model() -> type[SpecBase]:
    """The Spec model class, with ``analyses`` typed as the union of every registered kind.

    Built from the registry and rebuilt whenever a kind is registered after the last build (the cache is keyed
    on the registry's ``version``), so a kind registered at run time is accepted by the next spec load.
    """
    from pydantic import create_model

    from emoalign.registry import KINDS

    entries = KINDS.entries()  # imports the kind modules (and plug-ins) on first use
    if KINDS.version in _MODEL:
        return _MODEL[KINDS.version]
    options = tuple(e.options for e in entries.values())
    if not options:
        raise RuntimeError("no analysis kinds are registered")
    union = Annotated[Union[options], Field(discriminator="kind")] if len(options) > 1 else options[0]  # type: ignore[valid-type]
    model = create_model("Spec", __base__=SpecBase,
                         analyses=(list[union], Field(default_factory=list, description="The analyses to run, in order.")))
    _MODEL.clear()
    _MODEL[KINDS.version] = model
    return model


def json_schema() -> dict:
    """JSON Schema of spec files (for editors: yaml-language-server, VS Code)."""
    schema = spec_model().model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "emoalign analysis spec"
    return schema
