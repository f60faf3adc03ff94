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
    def load(cls, root) -> "Results":
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
        return cls(root=root, manifest=manifest)

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
            self._cache[analysis_id] = pd.read_parquet(self.root / (e.get("file") or f"{analysis_id}.parquet"))
        return self._cache[analysis_id].copy()

    def extra(self, analysis_id: str, name: str) -> pd.DataFrame | None:
        e = self.entry(analysis_id) or {}
        fname = (e.get("extra") or {}).get(name) or f"{analysis_id}.{name}.parquet"
        path = self.root / fname
        return pd.read_parquet(path) if path.exists() else None

    def ids_of_kind(self, kind: str) -> list[str]:
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
