"""Read a results folder (docs/results-contract.md) for the report: manifest + tidy tables.

Nothing here computes a statistic; it only loads what ``emoalign analyze`` wrote and tells the
report which analyses are present, failed or missing, so a section can be skipped with a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from emoalign.errors import EmoalignError


@dataclass
class Results:
    """A loaded results folder. ``table(id)`` returns the tidy table or ``None`` when absent/failed."""

    root: Path
    manifest: dict
    _cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, root, *, verify: bool = True) -> "Results":
        """Load a results folder; with ``verify`` (default) refuse one whose tables do not match the manifest."""
        root = Path(root).expanduser().resolve()
        if not root.is_dir():
            raise EmoalignError(f"results folder {root} does not exist",
                                hint="run `emoalign analyze SPEC --out DIR` first and pass that DIR")
        mpath = root / "manifest.json"
        if not mpath.exists():
            raise EmoalignError(f"{mpath} is missing: {root} is not a results folder",
                                hint="pass the --out folder of `emoalign analyze` (it holds manifest.json)")
        try:
            manifest = json.loads(mpath.read_text())
        except json.JSONDecodeError as exc:
            raise EmoalignError(f"{mpath} is not valid JSON (line {exc.lineno}: {exc.msg})",
                                hint="re-run `emoalign analyze` to rewrite it") from exc
        res = cls(root=root, manifest=manifest)
        if verify:
            problems = res.verify()
            if problems:
                raise EmoalignError(
                    f"{root} does not match its manifest.json ({len(problems)} problem{'s' if len(problems) > 1 else ''}):\n  "
                    + "\n  ".join(problems[:20]) + (f"\n  (+{len(problems) - 20} more)" if len(problems) > 20 else ""),
                    hint="the folder changed after `emoalign analyze` wrote it (edited, copied in part, or mixed with "
                         "another run); rebuild it with `emoalign analyze SPEC --out DIR --force`")
        return res

    def verify(self) -> list[str]:
        """Problems of the tables the manifest lists: missing, unreadable, other sha256 or row count.

        Manifests that record ``tables`` (sha256 and rows per file) are checked byte for byte; older
        ones by each analysis's file and row count.
        """
        import pyarrow.parquet as pq

        from emoalign.data.io import file_sha256

        def rows_of(path: Path) -> int | str:
            try:
                return int(pq.ParquetFile(path).metadata.num_rows)
            except Exception as exc:  # zero-byte or damaged file
                return f"cannot be read as parquet ({type(exc).__name__})"

        problems = []
        tables = self.manifest.get("tables")
        expected: dict[str, dict] = {}
        if isinstance(tables, dict):
            expected = {str(f): dict(rec or {}) for f, rec in tables.items()}
            for a in self.analyses:
                if a.get("status", "ok") == "ok":
                    for f in [a.get("file"), *(a.get("extra") or {}).values()]:
                        if f and f not in expected:
                            problems.append(f"{f} (analysis {a.get('id')!r}) has no sha256/row count in the manifest")
        else:
            expected = {a["file"]: {"rows": a.get("rows")} for a in self.analyses
                        if a.get("status", "ok") == "ok" and a.get("file")}
        for fname, rec in expected.items():
            path = self.root / fname
            if Path(fname).is_absolute() or ".." in Path(fname).parts:
                problems.append(f"{fname}: the manifest names a file outside the results folder")
                continue
            if not path.is_file():
                problems.append(f"{fname} is missing")
                continue
            rows = rows_of(path)
            if isinstance(rows, str):
                problems.append(f"{fname} {rows}; size {path.stat().st_size} bytes")
                continue
            if rec.get("rows") is not None and rows != int(rec["rows"]):
                problems.append(f"{fname} has {rows} rows, the manifest says {rec['rows']}")
            if rec.get("sha256") and file_sha256(path) != rec["sha256"]:
                problems.append(f"{fname} differs from the file analyze wrote (sha256 mismatch)")
        return problems

    # --- manifest views -------------------------------------------------------------------
    @property
    def analyses(self) -> list[dict]:
        return list(self.manifest.get("analyses") or [])

    @property
    def study(self) -> dict:
        return dict(self.manifest.get("study") or {})

    @property
    def raters(self) -> list[dict]:
        return list(self.manifest.get("raters") or [])

    def entry(self, analysis_id: str) -> dict | None:
        for a in self.analyses:
            if a.get("id") == analysis_id:
                return a
        return None

    def role(self, analysis_id: str) -> str | None:
        """The report role the spec gave the analysis (``report: {role: ...}``), or None."""
        e = self.entry(analysis_id) or {}
        return e.get("role") or ((e.get("options") or {}).get("report") or {}).get("role")

    def find(self, role: str) -> str | None:
        """Id of the analysis that plays ``role`` in the report: the first whose spec entry says
        ``report: {role: <role>}``; else (specs written before roles) the analysis whose id is the role's name,
        unless it declares another role; else None."""
        for a in self.analyses:
            if a.get("id") and self.role(a["id"]) == role:
                return a["id"]
        if self.entry(role) is not None and self.role(role) in (None, role):
            return role
        return None

    def description(self, analysis_id: str) -> str:
        """One line on what the analysis' kind computes: the manifest's (from the kind's registry entry), or for
        older results the installed kind's, else empty."""
        e = self.entry(analysis_id) or {}
        if e.get("description"):
            return str(e["description"])
        from emoalign.registry import KINDS

        try:
            return KINDS.get(str(e.get("kind"))).description
        except Exception:  # a kind not installed here (a plug-in) or results without a kind
            return ""

    def title(self, analysis_id: str) -> str:
        e = self.entry(analysis_id) or {}
        return e.get("title") or analysis_id

    def status(self, analysis_id: str) -> str:
        """``ok``, ``failed`` or ``missing`` (not in the manifest, or its file is gone)."""
        e = self.entry(analysis_id)
        if e is None:
            return "missing"
        if e.get("status", "ok") != "ok":
            return "failed"
        if not (self.root / (e.get("file") or f"{analysis_id}.parquet")).exists():
            return "missing"
        return "ok"

    def note(self, analysis_id: str) -> str:
        """A one-line markdown note saying why a section is skipped."""
        st = self.status(analysis_id)
        if st == "failed":
            err = (self.entry(analysis_id) or {}).get("error") or "unknown error"
            return f"*Analysis `{analysis_id}` failed, so this section is skipped: {err}*"
        return f"*Analysis `{analysis_id}` is not in these results (not in the spec, or not run), so this section is skipped.*"

    # --- tables ---------------------------------------------------------------------------
    def table(self, analysis_id: str) -> pd.DataFrame | None:
        if self.status(analysis_id) != "ok":
            return None
        if analysis_id not in self._cache:
            e = self.entry(analysis_id) or {}
            self._cache[analysis_id] = _read(self.root / (e.get("file") or f"{analysis_id}.parquet"))
        return self._cache[analysis_id].copy()

    def extra(self, analysis_id: str, name: str) -> pd.DataFrame | None:
        e = self.entry(analysis_id) or {}
        fname = (e.get("extra") or {}).get(name) or f"{analysis_id}.{name}.parquet"
        path = self.root / fname
        return _read(path) if path.exists() else None

    def ids_of_kind(self, kind: str) -> list[str]:
        """Ids of the analyses of ``kind``, in spec order."""
        return [a["id"] for a in self.analyses if a.get("kind") == kind]

    # --- raters ---------------------------------------------------------------------------
    def rater_family(self) -> dict[str, str]:
        """rater -> family (``VLM``/``FER``/...), from the manifest's rater list, else the study groups."""
        fam: dict[str, str] = {}
        for r in self.raters:
            if r.get("rater") and r.get("family"):
                fam[r["rater"]] = str(r["family"]).upper()
        groups = self.study.get("groups") or {}
        for g, members in groups.items():
            label = "VLM" if g.lower().startswith("vlm") else "FER" if g.lower().startswith("fer") else g
            for m in members or []:
                fam.setdefault(m, label)
        return fam

    def simulated(self) -> dict[str, bool]:
        """Machine rater -> simulated profile (True) or real model run (False)."""
        return {r["rater"]: bool(r.get("simulated")) for r in self.raters if r.get("rater")}

    def rater_entry(self, rater: str) -> dict:
        return next((r for r in self.raters if r.get("rater") == rater), {})

    # --- what ran and what is simulated -----------------------------------------------------
    @property
    def simulation(self) -> dict:
        """What of the study's inputs is simulated (``manifest.simulation``; empty when nothing is)."""
        return dict(self.manifest.get("simulation") or {})

    @property
    def humans_simulated(self) -> bool:
        return bool(self.simulation.get("humans"))

    @property
    def stimuli_simulated(self) -> bool:
        return bool(self.simulation.get("stimuli"))

    @property
    def labels(self) -> dict[str, str]:
        """Display names from the spec's ``labels:`` map."""
        return dict((self.manifest.get("spec") or {}).get("labels") or {})

    @property
    def compare_to(self) -> dict | None:
        """The spec's ``compare_to`` (published values for the replication section), or None."""
        return (self.manifest.get("spec") or {}).get("compare_to")

    def options(self, analysis_id: str) -> dict:
        """The analysis' resolved options as the engine recorded them (empty for results of older versions)."""
        return dict((self.entry(analysis_id) or {}).get("options") or {})

    def info(self, analysis_id: str) -> dict:
        """What the analysis' kind reported about the run (formula, df method, reference levels, ...)."""
        return dict((self.entry(analysis_id) or {}).get("info") or {})


def _read(path: Path) -> pd.DataFrame:
    """Read one results table; a damaged file is an error naming it, not a parquet traceback."""
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for zero-byte / truncated files
        raise EmoalignError(f"results table {path} cannot be read ({type(exc).__name__}: {exc})",
                            hint="rebuild the results folder with `emoalign analyze SPEC --out DIR --force`") from exc
