"""Load and validate a YAML spec: safe loader, YAML line numbers kept, errors a user can act on.

Every validation problem is reported at once, each naming the YAML line, the analysis id, the
field, what is wrong, and a did-you-mean (difflib) for misspelled keys, kinds and option values::

    spec.yaml:23: analysis 'human_ceiling': unknown field 'levl' -- did you mean 'level'?
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from emoalign.errors import EmoalignError, did_you_mean
from emoalign.formula import PURE_FUNCTIONS
from emoalign.registry import KINDS
from emoalign.spec.model import SpecBase, StudySettings, StudySpec, spec_model
from emoalign.spec.roles import PAPER_ROLES, role_problems
from emoalign.spec.rstrings import r_string_problems


@dataclass
class LoadedSpec:
    """A validated spec plus where it came from and the YAML line of every key."""

    spec: SpecBase
    path: Path | None
    text: str
    raw: dict
    lines: dict[tuple, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.path) if self.path else "<spec>"

    @property
    def folder(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def line_of(self, *loc) -> int | None:
        """1-based YAML line of a key path, e.g. ``("analyses", 3, "formula")``; falls back to the parent."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return None

    def where(self, *loc) -> str:
        line = self.line_of(*loc)
        return f"{self.name}:{line}" if line else self.name


def _line_map(node, path: tuple = (), out: dict | None = None, dups: list | None = None) -> dict[tuple, int]:
    """{key path: 1-based line}; duplicate mapping keys (YAML keeps the last silently) go to ``dups``."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value
            if path + (key,) in out and dups is not None:
                dups.append((path + (key,), out[path + (key,)], k.start_mark.line + 1))
            out[path + (key,)] = k.start_mark.line + 1
            _line_map(v, path + (key,), out, dups)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out[path + (i,)] = v.start_mark.line + 1
            _line_map(v, path + (i,), out, dups)
    return out


def _yaml_path(raw: Any, loc: tuple) -> tuple:
    """Map a pydantic error location onto the YAML structure, dropping union tags."""
    path, cur = [], raw
    for el in loc:
        if isinstance(cur, list) and isinstance(el, int) and el < len(cur):
            path.append(el)
            cur = cur[el]
        elif isinstance(cur, dict) and el in cur:
            path.append(el)
            cur = cur[el]
        elif isinstance(cur, dict) and isinstance(el, str) and cur.get("kind") == el:
            continue  # discriminated-union tag
        else:
            path.append(el)
            cur = None
    return tuple(path)


def _fields_for(raw: Any, path: tuple) -> list[str]:
    """Allowed keys of the mapping at ``path`` (for did-you-mean on unknown keys)."""
    if len(path) == 0:
        return list(SpecBase.model_fields)
    if path[0] == "study" and len(path) == 1:
        return list(StudySpec.model_fields)
    if path[0] == "analyses" and len(path) == 2 and isinstance(raw, dict):
        try:
            entry = raw["analyses"][path[1]]
        except (KeyError, IndexError, TypeError):
            return []
        kind = entry.get("kind") if isinstance(entry, dict) else None
        if kind in KINDS:
            return list(KINDS.get(kind).options.model_fields)
    return []


def _format_error(err: dict, raw: Any, lines: dict, name: str) -> str:
    ypath = _yaml_path(raw, tuple(err["loc"]))
    line = None
    p = ypath + ("kind",) if err["type"] == "union_tag_invalid" else ypath
    while p:
        if p in lines:
            line = lines[p]
            break
        p = p[:-1]
    where = f"{name}:{line}" if line else name
    subject = ""
    if len(ypath) >= 2 and ypath[0] == "analyses" and isinstance(ypath[1], int):
        try:
            aid = raw["analyses"][ypath[1]].get("id")
        except Exception:
            aid = None
        subject = f"analysis {aid!r}" if aid else f"analysis #{ypath[1] + 1}"
        fpath = ypath[2:]
    elif ypath and ypath[0] == "study":
        subject, fpath = "study", ypath[1:]
    else:
        fpath = ypath
    fieldname = ".".join(str(x) for x in fpath)
    typ, msg = err["type"], err["msg"]
    if typ == "extra_forbidden":
        key = str(ypath[-1])
        text = f"unknown field {key!r}" + did_you_mean(key, _fields_for(raw, ypath[:-1]))
    elif typ == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", "")
        text = f"unknown kind {tag!r}" + did_you_mean(tag, KINDS.names()) + f" (kinds: {', '.join(KINDS.names())})"
        fieldname = "kind"
    elif typ == "union_tag_not_found":
        text = f"missing 'kind' (one of: {', '.join(KINDS.names())})"
        fieldname = ""
    elif typ == "literal_error":
        expected = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected", ""))
        text = f"{err.get('input')!r} is not allowed; expected {err.get('ctx', {}).get('expected')}" + \
            did_you_mean(err.get("input"), expected)
    elif typ == "missing":
        text = "required field is missing"
    elif typ == "value_error":
        text = msg.removeprefix("Value error, ")
    else:
        text = msg
    parts = [p for p in (subject, f"field {fieldname!r}" if fieldname else "") if p]
    return f"{where}: {', '.join(parts) + ': ' if parts else ''}{text}"


def _read_yaml(text: str, name: str) -> tuple[dict, dict[tuple, int]]:
    """(mapping, {key path: line}) of a spec's YAML text; errors for invalid YAML, a non-mapping, duplicate keys."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{name}:{mark.line + 1}" if mark else name
        raise EmoalignError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}",
                            hint="check indentation and that lists use '- ' or [a, b]") from exc
    if not isinstance(raw, dict):
        raise EmoalignError(f"{name}: a spec is a mapping with keys 'study' and 'analyses'",
                            hint="see specs/paper.yaml for the shape")
    dups: list = []
    lines = _line_map(node, dups=dups) if node is not None else {}
    if dups:
        raise EmoalignError("invalid spec: duplicate key(s): " + "; ".join(
            f"{name}:{second}: {'.'.join(map(str, p))!r} already set on line {first}" for p, first, second in dups),
            hint="YAML would silently keep only the last value; remove or rename one of them")
    return raw, lines


def _invalid(exc: ValidationError, raw: dict, lines: dict, name: str, prefix: tuple = ()) -> EmoalignError:
    """One error listing every validation problem with its YAML line (``prefix``: where the model sits)."""
    problems = list(dict.fromkeys(_format_error({**e, "loc": (*prefix, *e["loc"])}, raw, lines, name) for e in exc.errors()))
    return EmoalignError(f"invalid spec ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  "
                         + "\n  ".join(problems), hint="`emoalign spec schema` prints every field with its documentation")


def read_study(path: str | Path) -> StudySettings:
    """The validated ``study`` block of a spec file, without its analyses: the one reader of a study block for
    ``stimuli scan/check --spec``, ``humans import --spec`` and ``infer --spec`` (``analyze`` validates the same
    block as part of the whole spec). Fields the block leaves out are in ``model_fields_set`` as unset."""
    p = Path(path)
    if not p.is_file():
        raise EmoalignError(f"spec not found: {p}", hint="check the --spec path")
    raw, lines = _read_yaml(p.read_text(encoding="utf-8"), str(p))
    study = raw.get("study")
    if not isinstance(study, dict):
        raise EmoalignError(f"{p} has no 'study:' block",
                            hint="a spec starts with study: {stimuli, humans, scales, emotions, ...}")
    try:
        return StudySettings.model_validate(study)
    except ValidationError as exc:
        raise _invalid(exc, raw, lines, str(p), ("study",)) from None


def parse_spec(text: str, *, path: str | Path | None = None) -> LoadedSpec:
    """Validate YAML text as a spec; raise one EmoalignError listing every problem with its line."""
    name = str(path) if path else "<spec>"
    raw, lines = _read_yaml(text, name)
    try:
        spec = spec_model().model_validate(raw)
    except ValidationError as exc:
        raise _invalid(exc, raw, lines, name) from None
    loaded = LoadedSpec(spec=spec, path=Path(path) if path else None, text=text, raw=raw, lines=lines)
    roles = role_problems(loaded)
    if roles:
        raise EmoalignError(f"invalid spec ({len(roles)} report-role problem{'s' if len(roles) > 1 else ''}):\n  "
                            + "\n  ".join(roles),
                            hint="the roles, each read by one section of the report: " + ", ".join(
                                f"{r} ({k})" for r, (k, _) in PAPER_ROLES.items()) + "; see docs/architecture.md")
    problems = r_string_problems(loaded)
    if problems:
        raise EmoalignError(f"invalid spec ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  "
                            + "\n  ".join(problems),
                            hint="formulas may use column names, ~ + - * / : ^ %in% ( ), | and || in random-effect "
                                 f"terms, 0/1, and the functions {', '.join(PURE_FUNCTIONS)}; nothing else reaches R")
    return loaded


def load_spec(path: str | Path) -> LoadedSpec:
    """Read and validate a spec file (YAML, safe loader)."""
    p = Path(path)
    if not p.exists():
        raise EmoalignError(f"spec file not found: {p}", hint="pass the path of a YAML spec, e.g. specs/paper.yaml")
    return parse_spec(p.read_text(encoding="utf-8"), path=p)
