"""Simulation profiles: YAML files that hold every parameter of a simulated study.

A profile is a name shipped in ``emoalign/simulate/profiles/`` (``paper``, ``small``) or a path to a
YAML file. ``overrides`` (a nested dict) are deep-merged into it, so a user can plant an effect
without copying the file::

    load_profile("paper", overrides={"machines": {"raters": {"gemma3": {"valence": {"effects":
                 {"gender": {"female": -0.6}}}}}}})

The keys are documented at the top of ``profiles/paper.yaml``. A profile may name a ``base``
profile (``base: paper``) and then only list what differs from it, and a ``fitted`` file of parameters
that ``scripts/calibrate_profile.py`` fitted to published values (deep-merged onto the profile, so the
documented profile stays readable and the fitted numbers stay reproducible).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from emoalign.errors import EmoalignError

PROFILE_DIR = Path(__file__).resolve().parent / "profiles"


def builtin_profiles() -> list[str]:
    """Names of the profiles shipped with the package."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def deep_merge(base: Mapping, override: Mapping | None) -> dict:
    """Return ``base`` with ``override`` merged in recursively (mappings merge, everything else replaces)."""
    out = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise EmoalignError(f"profile {path} is not valid YAML: {exc}", hint="fix the YAML syntax at the line shown") from exc
    if not isinstance(data, dict):
        raise EmoalignError(f"profile {path} must be a YAML mapping at the top level", hint="see profiles/paper.yaml for the layout")
    return data


def _resolve(profile: str | Path, _seen: tuple = ()) -> tuple[dict, str]:
    p = Path(str(profile))
    if p.suffix.lower() in (".yaml", ".yml") or p.exists():
        if not p.exists():
            raise EmoalignError(f"profile file not found: {p}", hint=f"give a YAML path or one of: {', '.join(builtin_profiles())}")
        path, name = p, p.stem
    else:
        path, name = PROFILE_DIR / f"{profile}.yaml", str(profile)
        if not path.exists():
            raise EmoalignError(f"unknown simulation profile {profile!r}",
                                hint=f"use one of: {', '.join(builtin_profiles())}, or a path to a YAML profile")
    if str(path) in _seen:
        raise EmoalignError(f"profile {path}: `base` chain loops ({' -> '.join(_seen)})", hint="remove the circular `base`")
    data = _read_yaml(path)
    fitted = data.pop("fitted", None)
    if fitted:
        fpath = path.parent / fitted
        if not fpath.exists():
            raise EmoalignError(f"profile {path}: fitted parameters file not found: {fpath}",
                                hint="`fitted` is relative to the profile; regenerate it with scripts/calibrate_profile.py")
        data = deep_merge(data, _read_yaml(fpath))
        data["fitted_from"] = str(fitted)
    base = data.pop("base", None)
    if base:
        parent, _ = _resolve(base if not (path.parent / f"{base}.yaml").exists() else path.parent / f"{base}.yaml",
                             _seen + (str(path),))
        data = deep_merge(parent, data)
    data.setdefault("name", name)
    return data, str(path)


def load_profile(profile: str | Path | Mapping = "paper", overrides: Mapping | None = None) -> dict:
    """Load a profile by name, path or dict, deep-merge ``overrides`` and validate it.

    Returns the resolved profile dict (``source`` records where it came from).
    Raises EmoalignError naming the offending key when the profile is inconsistent.
    """
    if isinstance(profile, Mapping):
        data, source = copy.deepcopy(dict(profile)), "<dict>"
        data.setdefault("name", "custom")
    else:
        data, source = _resolve(profile)
    data = deep_merge(data, overrides)
    data["source"] = source
    validate_profile(data)
    return data


def _err(prof: dict, key: str, msg: str, hint: str) -> EmoalignError:
    return EmoalignError(f"profile {prof.get('name')!r} ({prof.get('source')}): {key}: {msg}", hint=hint)


def _need(prof: dict, mapping: Any, key: str, path: str):
    if not isinstance(mapping, Mapping) or key not in mapping:
        raise _err(prof, f"{path}.{key}".lstrip("."), "missing", "see the documented keys at the top of profiles/paper.yaml")
    return mapping[key]


def validate_profile(prof: dict) -> None:
    """Check the structure and the numbers of a profile; raise EmoalignError naming the key to fix."""
    design = _need(prof, prof, "design", "")
    emotions = list(_need(prof, design, "emotions", "design"))
    for key in ("races", "genders"):
        if not _need(prof, design, key, "design"):
            raise _err(prof, f"design.{key}", "is empty", "list at least one level")
    n_id = _need(prof, design, "identities", "design")
    if not isinstance(n_id, int) or n_id < 1:
        raise _err(prof, "design.identities", f"must be a positive integer, got {n_id!r}", "e.g. identities: 40")
    n_images = len(design["races"]) * len(design["genders"]) * len(emotions) * n_id

    humans = _need(prof, prof, "humans", "")
    for key in ("n_raters", "images_per_rater"):
        v = _need(prof, humans, key, "humans")
        if not isinstance(v, int) or v < 1:
            raise _err(prof, f"humans.{key}", f"must be a positive integer, got {v!r}", "e.g. n_raters: 1000")
    if humans["images_per_rater"] > n_images:
        raise _err(prof, "humans.images_per_rater", f"{humans['images_per_rater']} > number of images {n_images}",
                   "each rater sees distinct images; lower images_per_rater or add identities")
    lo, hi = _need(prof, humans, "scale", "humans")
    if not lo < hi:
        raise _err(prof, "humans.scale", f"[{lo}, {hi}] is not an interval", "e.g. scale: [1, 9]")
    for dim, spec in _need(prof, humans, "dimensions", "humans").items():
        means = _need(prof, spec, "means", f"humans.dimensions.{dim}")
        missing = [e for e in emotions if e not in means]
        if missing:
            raise _err(prof, f"humans.dimensions.{dim}.means", f"no mean for {', '.join(missing)}", "give one target mean per emotion")
        for e in emotions:
            if not lo < float(means[e]) < hi:
                raise _err(prof, f"humans.dimensions.{dim}.means.{e}", f"{means[e]} is outside the open scale ({lo}, {hi})",
                           "target means must lie strictly inside the scale")
        for key in ("rater_sd", "image_sd", "trial_sd"):
            _need(prof, spec, key, f"humans.dimensions.{dim}")

    machines = prof.get("machines") or {}
    n_cf = machines.get("content_free", 0)
    if not isinstance(n_cf, int) or isinstance(n_cf, bool) or n_cf < 0:
        raise _err(prof, "machines.content_free", f"must be a whole number >= 0, got {n_cf!r}", "e.g. content_free: 3")
    raters = machines.get("raters") or {}
    for name in [k for k, v in raters.items() if v is None]:  # `rater: null` (e.g. in overrides) drops it
        del raters[name]
    for name, r in raters.items():
        path = f"machines.raters.{name}"
        if r.get("family") not in ("vlm", "fer"):
            raise _err(prof, f"{path}.family", f"must be 'vlm' or 'fer', got {r.get('family')!r}", "set family: vlm or family: fer")
        if "confusion" not in r and "accuracy" not in r:
            raise _err(prof, path, "needs `confusion` (full rows) or `accuracy` (per emotion)", "see gemma3 / posterv2 in paper.yaml")
        for e, row in (r.get("confusion") or {}).items():
            if e not in emotions or any(k not in emotions for k in row):
                raise _err(prof, f"{path}.confusion.{e}", "names a label outside design.emotions", f"use labels from {emotions}")
            if any(float(v) < 0 for v in row.values()) or abs(sum(map(float, row.values())) - 1) > 0.02:
                raise _err(prof, f"{path}.confusion.{e}", f"probabilities must be >= 0 and sum to 1 (sum {sum(map(float, row.values())):.3f})",
                           "fix the row so it sums to 1")
        for e, v in (r.get("accuracy") or {}).items():
            if e not in emotions or not 0 <= float(v) <= 1:
                raise _err(prof, f"{path}.accuracy.{e}", f"must be an emotion of the design with a value in [0, 1] (got {v!r})", "fix the entry")
        for e, v in (r.get("label_prior") or {}).items():
            if e not in emotions or not float(v) > 0:
                raise _err(prof, f"{path}.label_prior.{e}", f"must be an emotion of the design with a weight > 0 (got {v!r})",
                           "relative prior weights per label, e.g. label_prior: {neutral: 4} (unlisted labels weigh 1)")
        _check_conditions(prof, r.get("conditions"), f"{path}.conditions", emotions)
        for dim in ("valence", "arousal"):
            spec = r.get(dim)
            if spec is None:
                continue
            if dim not in humans["dimensions"]:
                raise _err(prof, f"{path}.{dim}", f"humans have no {dim} dimension to compare with", f"add humans.dimensions.{dim}")
            if spec.get("prototypes"):  # prototype lookup: [latent value, spread] per predicted label
                protos = spec["prototypes"]
                missing = [e for e in emotions if e not in protos]
                if missing:
                    raise _err(prof, f"{path}.{dim}.prototypes", f"no prototype for {', '.join(missing)}",
                               "give [value, spread] per emotion label, e.g. angry: [2.1, 0.4]")
                for e in emotions:
                    v = protos[e]
                    if not (isinstance(v, (list, tuple)) and len(v) == 2 and float(v[1]) >= 0):
                        raise _err(prof, f"{path}.{dim}.prototypes.{e}", f"must be [value, spread >= 0], got {v!r}",
                                   "e.g. [2.1, 0.4]")
                if spec.get("sd_inflation"):
                    raise _err(prof, f"{path}.{dim}.sd_inflation", "applies to calibrated dimensions, not to prototypes",
                               "remove sd_inflation, or give bias/sd instead of prototypes")
            else:
                for e, v in (spec.get("sd_inflation") or {}).items():
                    if e not in emotions or not float(v) > 0:
                        raise _err(prof, f"{path}.{dim}.sd_inflation.{e}", f"must be an emotion with a factor > 0 (got {v!r})",
                                   "e.g. sd_inflation: {happy: 2.0}")
                for key in ("bias", "sd"):
                    vals = _need(prof, spec, key, f"{path}.{dim}")
                    missing = [e for e in emotions if e not in vals]
                    if missing:
                        raise _err(prof, f"{path}.{dim}.{key}", f"no value for {', '.join(missing)}", "give one value per emotion")
            for factor, levels in (spec.get("effects") or {}).items():
                if factor not in ("race", "gender"):
                    raise _err(prof, f"{path}.{dim}.effects.{factor}", "only race and gender effects are modelled", "use race or gender")
                allowed = design["races" if factor == "race" else "genders"]
                bad = [lv for lv in levels if lv not in allowed]
                if bad:
                    raise _err(prof, f"{path}.{dim}.effects.{factor}", f"unknown level(s) {bad}", f"levels are {allowed}")


def _check_conditions(prof: dict, conditions, path: str, emotions: list[str]) -> None:
    """``conditions`` of a rater: ``{name: {flip_rate, shift: {dimension: number or {emotion: number}}, strategy}}``
    (see :func:`emoalign.simulate.machines.condition_rater`)."""
    if conditions is None:
        return
    if not isinstance(conditions, dict):
        raise _err(prof, path, "must map condition names to their effects",
                   "e.g. conditions: {layperson: {flip_rate: 0.2, shift: {valence: 0.5}}}")
    for cname, cond in conditions.items():
        where = f"{path}.{cname}"
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", str(cname)):
            raise _err(prof, where, "condition names may hold letters, digits and _ . + - only", "e.g. reversed_order")
        cond = cond or {}
        unknown = sorted(set(cond) - {"flip_rate", "shift", "strategy"})
        if unknown:
            raise _err(prof, where, f"unknown key(s) {', '.join(unknown)}", "keys are flip_rate, shift, strategy")
        fr = cond.get("flip_rate", 0.0)
        if isinstance(fr, bool) or not isinstance(fr, (int, float)) or not 0 <= fr <= 1:
            raise _err(prof, f"{where}.flip_rate", f"must be a probability in [0, 1], got {fr!r}", "e.g. flip_rate: 0.2")
        if cond.get("strategy", "context_carry") not in ("context_carry", "independent"):
            raise _err(prof, f"{where}.strategy", f"must be context_carry or independent, got {cond['strategy']!r}",
                       "independent: ratings follow the face, not the step-1 label")
        for dim, s in (cond.get("shift") or {}).items():
            if dim not in ("valence", "arousal"):
                raise _err(prof, f"{where}.shift.{dim}", "only valence and arousal can shift", "e.g. shift: {valence: 0.5}")
            values = s.items() if isinstance(s, dict) else [(None, s)]
            for e, v in values:
                if (e is not None and e not in emotions) or isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise _err(prof, f"{where}.shift.{dim}" + (f".{e}" if e is not None else ""),
                               f"must be a number or {{emotion: number}} over {emotions}, got {v!r}",
                               "e.g. shift: {valence: 0.5} or shift: {valence: {happy: -1.0}}")
