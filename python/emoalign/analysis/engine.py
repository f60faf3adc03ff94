"""Run a spec: load the study, check every analysis against it, run each kind, write the results.

``run_spec(SPEC, OUT)`` writes ``OUT/<id>.parquet`` (+ ``OUT/<id>.<name>.parquet`` extras) and
``OUT/manifest.json`` exactly as ``docs/results-contract.md`` says, built in a staging folder beside
``OUT`` and swapped in whole at the end (an interrupted run leaves the old results as they were). Failures are isolated: an
analysis that fails its data checks or raises is recorded with ``status: failed`` and its error,
and the others still run (``RunReport.ok`` is False; the CLI exits 1).
"""

from __future__ import annotations

import glob
import hashlib
import json
import platform
import time
import traceback
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from emoalign import __version__
from emoalign.analysis.derived import build_ready
from emoalign.analysis.study import Study
from emoalign.data.io import (ensure_writable_dir, file_sha256, folder_lock, link_or_copy, read_metadata, read_table,
                              staged_folder, table_record, write_json_atomic, write_table)
from emoalign.errors import EmoalignError, did_you_mean
from emoalign.registry import KINDS
from emoalign.spec.load import LoadedSpec, load_spec

#: version of the results contract (docs/results-contract.md, "Versions") this engine writes
CONTRACT_VERSION = 2

#: Python packages whose versions go into the manifest
PACKAGES = ("numpy", "pandas", "pyarrow", "scipy", "pydantic", "pyyaml", "krippendorff", "statsmodels",
            "pingouin", "scikit-learn", "rpy2")
#: provenance columns of the machines table copied per rater into the manifest
PROVENANCE = ("backend", "model_id", "model_revision", "dtype", "quantization", "strategy", "template_hash",
              "prompt_order", "seed", "run_id")


@dataclass
class AnalysisOutcome:
    id: str
    kind: str
    title: str
    #: the kind's one-line description (its registry entry) and the report role the spec gives it (or None)
    description: str = ""
    role: str | None = None
    status: str = "ok"
    seconds: float = 0.0
    rows: int = 0
    file: str | None = None
    extra: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    #: the analysis' resolved options (every default filled in) and what its kind reports about the run
    #: (``KindResult.info``: formula, df method, adjustment, reference levels, ...); the report's captions read them
    options: dict = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    #: rows of the result table with a ``flag`` and their count per flag (see docs/results-contract.md)
    rows_flagged: int = 0
    flagged: dict[str, int] = field(default_factory=dict)


@dataclass
class RunReport:
    out: Path
    outcomes: list[AnalysisOutcome]
    manifest: dict
    seconds: float

    @property
    def ok(self) -> bool:
        return all(o.status == "ok" for o in self.outcomes)

    def summary(self) -> pd.DataFrame:
        return pd.DataFrame([{"id": o.id, "kind": o.kind, "status": o.status, "rows": o.rows,
                              "seconds": round(o.seconds, 2), "warnings": len(o.warnings),
                              "flagged": o.rows_flagged} for o in self.outcomes])


# ---- inputs ---------------------------------------------------------------------------------
def _resolve(base: Path, p: str) -> Path:
    q = Path(p).expanduser()
    return q if q.is_absolute() else base / q


def machine_files(base: Path, patterns: Sequence[str]) -> list[Path]:
    """Expand the study's machine files/globs (sorted, deduplicated); a literal path must exist."""
    files: list[Path] = []
    for pat in patterns:
        full = _resolve(base, pat)
        if glob.has_magic(str(full)):
            hits = sorted(Path(x) for x in glob.glob(str(full), recursive=True))
        else:
            if not full.exists():
                raise EmoalignError(f"study.machines: file not found: {full}",
                                    hint=f"paths are relative to {base} (set --data DIR to change it)")
            hits = [full]
        files += [h for h in hits if h not in files]
    return files


def load_study(loaded: LoadedSpec, data_dir: str | Path | None = None) -> tuple[Study, dict[str, str], list[str]]:
    """Read the study's tables. Returns the Study, {file: sha256}, and load warnings."""
    s = loaded.spec.study
    base = Path(data_dir) if data_dir else loaded.folder
    warnings: list[str] = []
    stim_path, hum_path = _resolve(base, s.stimuli), _resolve(base, s.humans)
    for what, p in (("study.stimuli", stim_path), ("study.humans", hum_path)):
        if not p.exists():
            raise EmoalignError(f"{loaded.where('study', what.split('.')[1])}: {what} file not found: {p}",
                                hint=f"paths are relative to {base} (pass --data DIR to point at the study folder)")
    stimuli = read_table(stim_path, "stimuli")
    humans = read_table(hum_path, "humans")
    files = machine_files(base, s.machines)
    if s.machines and not files:
        warnings.append(f"study.machines matched no files under {base}: {', '.join(s.machines)}")
    parts = [read_table(f, "machines") for f in files]
    machines = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {c: pd.Series(dtype=t) for c, t in (("rater", object), ("image_id", object), ("emotion", object),
                                            ("valence", float), ("arousal", float))})
    for df in (stimuli, humans, machines):
        for c in ("image_id", "rater_id", "rater"):
            if c in df.columns:
                df[c] = df[c].astype(str)
    if len(files) > 1 and machines.duplicated(["rater", "image_id"]).any():
        dup = machines.loc[machines.duplicated(["rater", "image_id"]), "rater"].unique()
        raise EmoalignError(f"machine rater(s) {', '.join(map(str, dup[:5]))} appear in more than one rating file",
                            hint="each rater must come from one run; narrow the study.machines globs")
    if s.reference not in stimuli.columns:
        raise EmoalignError(f"{loaded.where('study', 'reference')}: study.reference {s.reference!r} is not a stimulus "
                            f"column" + did_you_mean(s.reference, stimuli.columns),
                            hint=f"stimulus columns: {', '.join(stimuli.columns)}")
    inputs = {str(p): file_sha256(p) for p in (stim_path, hum_path, *files)}
    study = Study(stimuli=stimuli, humans=humans, machines=machines, scales=dict(s.scales),
                  emotions=list(s.emotions), reference=s.reference, groups=dict(s.groups),
                  pending_derived=list(s.derived))
    build_ready(study)  # study.derived raters whose sources are rater files; the rest once analyses write them
    return study, inputs, warnings


# ---- manifest parts -------------------------------------------------------------------------
def python_versions() -> dict:
    pk = {}
    for p in PACKAGES:
        try:
            pk[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pk[p] = None
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        numpy_blas = f"{blas.get('name')} {blas.get('version')}"
    except Exception:  # reporting only
        numpy_blas = None
    return {"emoalign": __version__, "python": platform.python_version(), "packages": pk, "numpy_BLAS": numpy_blas}


def r_versions() -> dict:
    """R and R package versions (starts R if this run did not; nulls when R is unavailable)."""
    from emoalign.analysis.rbridge import get_r, r_available

    if not r_available():
        return {"R": None, "R_packages": {}}
    try:
        return get_r().versions()
    except Exception as exc:  # reporting only: R missing or broken must not fail the run
        return {"R": f"unavailable: {str(exc).splitlines()[0]}", "R_packages": {}}


def _distribution(counts: pd.Series) -> dict:
    """min / median / max / mean and the full histogram {count: how many} of a count per unit."""
    if counts.empty:
        counts = pd.Series([0])
    hist = counts.value_counts().sort_index()
    return {"min": int(counts.min()), "median": float(counts.median()), "max": int(counts.max()),
            "mean": round(float(counts.mean()), 3), "histogram": {str(int(k)): int(v) for k, v in hist.items()}}


def study_summary(study: Study) -> dict:
    """The study design for the manifest, incl. how balanced the human design is: the distribution of
    trials per image (over all stimuli; images no human rated count 0) and per rater, and ``balanced``
    (every image the same number of trials)."""
    h = study.humans
    per_image = h.groupby("image_id").size().reindex(study.stimuli["image_id"].astype(str), fill_value=0) \
        if len(study.stimuli) else h.groupby("image_id").size()
    per_rater = h.groupby("rater_id").size()
    cell_cols = [c for c in ("race", "gender", study.reference) if c in study.stimuli.columns]
    cells = (study.stimuli.groupby(cell_cols, observed=True).size().reset_index(name="n").to_dict("records")
             if cell_cols else [])
    return {"n_images": int(len(study.stimuli)), "n_human_raters": int(h["rater_id"].nunique()),
            "n_trials": int(len(h)),
            "trials_per_image": _distribution(per_image), "trials_per_rater": _distribution(per_rater),
            "balanced": bool(per_image.nunique() <= 1),
            "design_columns": study.design_columns,
            "cells": [{k: (int(v) if isinstance(v, (np.integer,)) else v) for k, v in c.items()} for c in cells],
            "scales": {k: list(v) for k, v in study.scales.items()}, "emotions": study.emotions,
            "groups": study.groups}


def design_warnings(summary: dict) -> list[str]:
    """Manifest warnings about the human design (an unbalanced design gives correct values, but say so)."""
    t = summary["trials_per_image"]
    if summary["balanced"] or not summary["n_trials"]:
        return []
    common = max(t["histogram"].items(), key=lambda kv: kv[1])
    return [f"unbalanced human design: {t['min']}-{t['max']} trials per image (median {t['median']:g}; "
            f"{common[1]:,} of {summary['n_images']:,} images have {common[0]}); reliability and variance "
            "components are computed from the trials as they are (see study.trials_per_image)"]


def rater_provenance(study: Study, label_maps: dict[str, dict] | None = None) -> list[dict]:
    m = study.machines
    out = []
    for r in study.machine_raters:
        rows = m[m["rater"] == r]
        first = rows.iloc[0]
        entry = {"rater": r, "family": study.family_of(r),
                 "simulated": bool(rows["simulated"].fillna(False).astype(bool).any()) if "simulated" in rows else False}
        for c in PROVENANCE:
            if c in rows.columns:
                v = first[c]
                entry[c] = None if pd.isna(v) else (v.item() if hasattr(v, "item") else v)
        entry["n"] = int(len(rows))
        entry["n_errors"] = int(rows["error"].notna().sum()) if "error" in rows.columns else 0
        if r in study.derived:  # assembled from other raters or written by an analysis of this spec
            d = study.derived[r]
            entry.update(derived=d["description"], sources=d["sources"], produced_by=d["produced_by"])
        lm = (label_maps or {}).get(r)
        if lm and any(k != v for k, v in lm["label_map"].items()):  # a native label renamed or dropped
            entry["label_map"], entry["unmapped"] = lm["label_map"], lm.get("unmapped")
            if "unmapped_mass" in rows.columns:
                entry["unmapped_mass_mean"] = float(rows["unmapped_mass"].mean())
        out.append(entry)
    return out


def run_label_maps(files: Sequence[Path]) -> dict[str, dict]:
    """rater -> {label_map, unmapped} of runs whose run manifest maps a model's native classes onto the study's
    labels (e.g. a 7-class FER model: surprise -> none, renormalised); read from ``<run>/manifest.json``."""
    out: dict[str, dict] = {}
    for f in files:
        try:
            run = json.loads((Path(f).parent / "manifest.json").read_text())
        except (OSError, ValueError):
            continue
        cfg = run.get("config") or {}
        if run.get("rater") and isinstance(cfg.get("label_map"), dict):
            out[str(run["rater"])] = {"label_map": cfg["label_map"], "unmapped": cfg.get("unmapped")}
    return out


def simulation_record(loaded: LoadedSpec, data_dir: str | Path | None = None) -> dict | None:
    """What of the study's inputs is simulated: the parquet metadata ``simulated`` flag that ``emoalign simulate``
    writes into stimuli/humans, and its ``simulation.json`` (profile, seed) beside them; None when nothing is."""
    s = loaded.spec.study
    base = Path(data_dir) if data_dir else loaded.folder
    rec: dict = {}
    for what, rel in (("stimuli", s.stimuli), ("humans", s.humans)):
        try:
            meta = read_metadata(_resolve(base, rel))
        except Exception:  # a CSV or unreadable schema: nothing recorded
            meta = {}
        rec[what] = bool(meta.get("simulated"))
        for k in ("profile", "seed"):
            if meta.get(k) is not None:
                rec.setdefault(k, meta[k])
    sim_json = _resolve(base, s.stimuli).parent / "simulation.json"
    if sim_json.exists():
        try:
            sj = json.loads(sim_json.read_text())
            rec.setdefault("profile", (sj.get("profile") or {}).get("name"))
            rec.setdefault("seed", sj.get("seed"))
            rec["simulation_json"] = True
        except (OSError, ValueError):
            pass
    return rec if (rec.get("stimuli") or rec.get("humans")) else None


def _jsonable(obj):
    return json.loads(json.dumps(obj, default=lambda v: v.item() if hasattr(v, "item") else str(v)))


def record_flags(oc: AnalysisOutcome, table: pd.DataFrame) -> None:
    """Count the result rows with a ``flag``, in all and per flag, into the outcome (manifest)."""
    if "flag" in table.columns:
        oc.rows_flagged = int(table["flag"].notna().sum())
        flags = table["flag"].dropna().astype(str).str.split("; ").explode()
        oc.flagged = {str(k): int(v) for k, v in flags.value_counts().items()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---- run ------------------------------------------------------------------------------------
def _owned_files(entry: dict) -> list[str]:
    """Files of one manifest analysis entry (its table and extras)."""
    return [f for f in [entry.get("file"), *(entry.get("extra") or {}).values()] if f]


def _check_out(out: Path, force: bool, only) -> dict:
    """Refuse an --out that must not be replaced; return its current manifest ({} when none)."""
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        if not force and not only:
            raise EmoalignError(f"{out} already holds results (manifest.json)",
                                hint="pass --force to overwrite them, --only ID to rerun some, or choose another --out")
        try:
            return json.loads(manifest_path.read_text())
        except (OSError, ValueError):
            if only:
                raise EmoalignError(f"{manifest_path} cannot be read, so --only cannot keep the other results",
                                    hint="rerun every analysis with --force") from None
            return {}
    if out.exists() and not out.is_dir():
        raise EmoalignError(f"--out {out} is a file", hint="give a folder for the results")
    if out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        raise EmoalignError(f"--out {out} holds files but no emoalign results (manifest.json)",
                            hint="results go into a folder of their own, which analyze replaces as a whole: "
                                 "choose a new or empty folder, e.g. --out results/")
    return {}


def run_spec(spec: str | Path | LoadedSpec, out: str | Path, *, data_dir: str | Path | None = None,
             only: Sequence[str] | None = None, force: bool = False,
             progress: Callable[[str, int, int, AnalysisOutcome | None], None] | None = None) -> RunReport:
    """Run every analysis of a spec (or those in ``only``) and write results + manifest to ``out``.

    The new results are written into a staging folder beside ``out`` and swapped in as a whole at
    the end, so an interrupted run leaves the previous results untouched and a reader never sees a
    mix. Files in ``out`` that no analysis owns (e.g. a rendered report) are carried over; with
    ``only``, so are the tables of the analyses not rerun. The manifest records the sha256 and row
    count of every table (``tables``). ``progress(event, i, total, outcome)`` is called with event
    ``"start"`` and ``"done"``.
    """
    from emoalign.analysis.checks import check_spec, dependencies
    from emoalign.analysis.rbridge import LazyR

    t0 = time.perf_counter()
    started = _now()
    loaded = spec if isinstance(spec, LoadedSpec) else load_spec(spec)
    out = Path(out)
    ids = [a.id for a in loaded.spec.analyses]
    if only:
        unknown = [i for i in only if i not in ids]
        if unknown:
            raise EmoalignError(f"--only names unknown analysis id(s) {', '.join(unknown)}"
                                + did_you_mean(unknown[0], ids), hint=f"ids in the spec: {', '.join(ids)}")
    _check_out(out, force, only)
    ensure_writable_dir(out.absolute().parent, "the folder of --out")
    study, inputs, load_warnings = load_study(loaded, data_dir)
    load_warnings += design_warnings(study_summary(study))
    problems = check_spec(loaded, study)
    load_warnings += problems.pop("study.derived", [])
    if only:  # an analysis naming a derived rater needs the analysis that writes it to run first
        only = [*only, *dependencies(loaded, study, only)]
    selected = [a for a in loaded.spec.analyses if not only or a.id in only]
    needs = {a.id: dependencies(loaded, study, [a.id]) for a in selected}  # before any analysis adds raters
    with folder_lock(out.absolute(), "results folder"), staged_folder(out) as stage:
        old = _check_out(out, force, only)  # again, now that no other writer can change it
        rerun = {a.id for a in selected}
        kept = {e["id"]: e for e in old.get("analyses", []) if only and e.get("id") not in rerun and e.get("id") in ids}
        dropped = {f for e in old.get("analyses", []) if e.get("id") not in kept for f in _owned_files(e)}
        if out.is_dir():  # carry over what this run does not replace
            for p in out.iterdir():
                if p.name != "manifest.json" and p.name not in dropped:
                    link_or_copy(p, stage / p.name)
        r = LazyR()
        outcomes: list[AnalysisOutcome] = []
        for i, a in enumerate(selected):
            oc = AnalysisOutcome(id=a.id, kind=a.kind, title=a.title or a.id, description=KINDS.get(a.kind).description,
                                 role=a.role, options=a.model_dump(mode="json"))
            if progress:
                progress("start", i, len(selected), oc)
            t = time.perf_counter()
            failed_deps = [d for d in needs[a.id] if any(o.id == d and o.status != "ok" for o in outcomes)]
            if a.id in problems:
                oc.status, oc.error = "failed", "spec check failed:\n" + "\n".join(problems[a.id])
            elif failed_deps:
                oc.status, oc.error = "failed", (f"it names derived raters written by analysis "
                                                 f"{', '.join(repr(d) for d in failed_deps)}, which failed")
            else:
                try:
                    res = KINDS.get(a.kind).run(a, study, r)
                    table = res.table.copy()
                    table.insert(0, "analysis_id", a.id)
                    write_table(table, stage / f"{a.id}.parquet", "results", force=True,
                                metadata={"analysis_id": a.id, "kind": a.kind, "options": a.model_dump(mode="json")})
                    oc.file, oc.rows, oc.warnings = f"{a.id}.parquet", int(len(table)), list(res.warnings)
                    oc.info = _jsonable(res.info)
                    record_flags(oc, table)
                    for name, extra in res.extra.items():
                        fname = f"{a.id}.{name}.parquet"
                        write_table(extra, stage / fname, None, force=True)
                        oc.extra[name] = fname
                    for dr in res.raters:  # derived raters for the analyses after this one
                        study.add_rater(dr.rows, dr.name, description=dr.description, sources=[dr.source],
                                        produced_by=a.id)
                    build_ready(study)
                except Exception as exc:  # isolate: record and go on
                    oc.status = "failed"
                    if isinstance(exc, EmoalignError):
                        oc.error = str(exc)
                    else:
                        tb = traceback.format_exception(type(exc), exc, exc.__traceback__)
                        oc.error = f"{type(exc).__name__}: {exc}\n" + "".join(tb[-3:])
            oc.seconds = time.perf_counter() - t
            outcomes.append(oc)
            if progress:
                progress("done", i, len(selected), oc)
        new = {o.id: asdict(o) for o in outcomes}
        entries = [kept.get(i) or new[i] for i in ids if i in kept or i in new]
        tables = {f: table_record(stage / f) for e in entries if e.get("status", "ok") == "ok"
                  for f in _owned_files(e) if (stage / f).is_file()}
        versions = {**python_versions(), **r_versions()}
        compare_to = loaded.spec.compare_to.model_dump() if loaded.spec.compare_to else None
        if compare_to and Path(compare_to["published"]).suffix.lower() in (".yaml", ".yml"):
            compare_to["published"] = str(_resolve(loaded.folder, compare_to["published"]).resolve())
        base = Path(data_dir) if data_dir else loaded.folder
        manifest = {
            "contract": CONTRACT_VERSION,
            "spec": {"path": str(loaded.path) if loaded.path else None,
                     "sha256": hashlib.sha256(loaded.text.encode()).hexdigest(),
                     "labels": dict(loaded.spec.labels), "compare_to": compare_to},
            "inputs": inputs, "versions": versions,
            "started": started, "finished": _now(), "seconds": round(time.perf_counter() - t0, 3),
            "study": study_summary(study), "simulation": simulation_record(loaded, data_dir),
            "raters": rater_provenance(study, run_label_maps(machine_files(base, loaded.spec.study.machines))),
            "warnings": load_warnings, "analyses": entries, "tables": tables,
        }
        write_json_atomic(stage / "manifest.json", manifest, force=True)
    return RunReport(out=out, outcomes=outcomes, manifest=manifest, seconds=time.perf_counter() - t0)
