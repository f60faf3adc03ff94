"""Interrupted at random points, resumed, and compared row by row with an uninterrupted run.

kill -9 is stood in for in-process (a subprocess race would make these flaky): at a seeded random
point a ``Killed`` BaseException is raised, which no handler of the code under test catches, and the
clean-up a dying process would not do is switched off (temp files and staging folders stay behind,
half written). The next run must clean up, resume, and produce exactly what an uninterrupted run
produces; in between, a reader must never see a mix of old and new results.
"""

from __future__ import annotations

import json
import random
from contextlib import contextmanager
from dataclasses import replace

import pandas as pd
import pytest
from faultkit import Killed, snapshot

import emoalign.data.io as io
from cli_runner import run_cli

SEED = 20261201


class KillAt:
    """Raise Killed at the ``n``-th atomic write (after half of the temp file is written), leaving the temp."""

    def __init__(self, n: int):
        self.n, self.calls = n, 0

    def install(self, monkeypatch):
        real = io.atomic_path
        outer = self

        @contextmanager
        def atomic_path(path, *, force=False):
            with real(path, force=force) as tmp:
                yield tmp
                outer.calls += 1
                if outer.calls == outer.n:
                    data = tmp.read_bytes()
                    tmp.write_bytes(data[: len(data) // 2])  # a write cut short
                    raise Killed(f"killed while writing {path}")

        monkeypatch.setattr(io, "atomic_path", atomic_path)
        monkeypatch.setattr(io, "_discard", lambda path: None)  # a killed process cleans nothing up


def _counting_writes(monkeypatch) -> KillAt:
    k = KillAt(n=10 ** 9)
    k.install(monkeypatch)
    return k


def _frames_equal(a: pd.DataFrame, b: pd.DataFrame, key: list[str], drop=()) -> None:
    a = a.drop(columns=list(drop), errors="ignore").sort_values(key).reset_index(drop=True)
    b = b.drop(columns=list(drop), errors="ignore").sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def _temps(folder) -> list:
    return [p for p in folder.rglob(".*") if p.name.endswith(".tmp") or ".staging-" in p.name or ".old-" in p.name]


# ---- infer ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def infer_reference(face_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("infer_ref")
    from emoalign.raters.fer import build_fer_rater
    from emoalign.raters.runs import items_from_stimuli, run_rater

    items = items_from_stimuli(pd.read_parquet(face_study / "stimuli12.parquet"), face_study)
    path = run_rater(build_fer_rater("minixception", batch_size=3), items, out, run_id="minixception", progress=False)
    return pd.read_parquet(path)


def _infer_args(face_study, out):
    return ["infer", "--rater", "fer:minixception", "--stimuli", face_study / "stimuli12.parquet", "--out", out,
            "--batch-size", "3", "--no-progress"]


def test_infer_writes_count(face_study, tmp_path, capsys, monkeypatch):
    """12 images in batches of 3: 4 parts + ratings + 2 manifests = 7 atomic writes to choose kill points from."""
    k = _counting_writes(monkeypatch)
    code, _, err = run_cli(_infer_args(face_study, tmp_path), capsys)
    assert code == 0, err
    assert k.calls == 7


INFER_CYCLES = 8


@pytest.mark.parametrize("cycle", range(INFER_CYCLES))
def test_infer_killed_at_a_random_point_resumes_exactly(cycle, face_study, infer_reference, tmp_path, capsys,
                                                        monkeypatch):
    rng = random.Random(SEED + cycle)
    out = tmp_path / "runs"
    where = rng.choice(["write", "write", "rate", "parts_cleanup"])
    with monkeypatch.context() as mp:
        if where == "write":
            KillAt(rng.randint(1, 7)).install(mp)
        elif where == "rate":
            from emoalign.raters.fer.base import FERRater

            real, n, calls = FERRater.rate, rng.randint(1, 4), []

            def rate(self, batch):
                calls.append(1)
                if len(calls) == n:
                    raise Killed("killed while rating")
                return real(self, batch)

            mp.setattr(FERRater, "rate", rate)
        else:  # after ratings.parquet is written, before the parts are removed
            import emoalign.raters.runs as runs

            mp.setattr(runs.shutil, "rmtree", lambda *a, **k: (_ for _ in ()).throw(Killed("killed in cleanup")))
        with pytest.raises(Killed):
            run_cli(_infer_args(face_study, out), capsys)
    capsys.readouterr()
    code, stdout, err = run_cli(_infer_args(face_study, out), capsys)  # the same command resumes
    assert code == 0, err
    run = out / "minixception"
    df = pd.read_parquet(run / "ratings.parquet")
    _frames_equal(df, infer_reference, ["image_id"], drop=["timestamp"])  # every other column identical
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["n_images"] == 12
    assert not (run / "parts").exists() and _temps(out) == [], _temps(out)  # orphans cleaned up


def test_ctrl_c_saves_and_says_how_to_resume(face_study, infer_reference, tmp_path, capsys, monkeypatch):
    from emoalign.raters.fer.base import FERRater

    real, calls = FERRater.rate, []

    def rate(self, batch):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, batch)

    with monkeypatch.context() as mp:
        mp.setattr(FERRater, "rate", rate)
        code, _, err = run_cli(_infer_args(face_study, tmp_path), capsys)
    assert code == 130 and "run interrupted" in err and "run the same command again to resume" in err
    assert json.loads((tmp_path / "minixception" / "manifest.json").read_text())["status"] == "interrupted"
    code, _, err = run_cli(_infer_args(face_study, tmp_path), capsys)
    assert code == 0, err
    _frames_equal(pd.read_parquet(tmp_path / "minixception" / "ratings.parquet"), infer_reference, ["image_id"],
                  drop=["timestamp"])


# ---- analyze --------------------------------------------------------------------------------
def _analyze(spec, out, capsys, *extra):
    return run_cli(["analyze", spec, "--out", out, "-q", *extra], capsys)


def _tables(folder) -> dict[str, pd.DataFrame]:
    return {p.name: pd.read_parquet(p) for p in sorted(folder.glob("*.parquet"))}


@pytest.fixture(scope="module")
def analyze_reference(results_study, tmp_path_factory):
    """Complete results of the spec (new) and of a variant with another bootstrap seed (old)."""
    from emoalign.analysis.engine import run_spec

    root = tmp_path_factory.mktemp("analyze_ref")
    old_spec = root / "old.yaml"
    old_spec.write_text(results_study["spec"].read_text().replace("seed: 1", "seed: 2"))
    data = results_study["root"]
    new, old = run_spec(results_study["spec"], root / "new"), run_spec(old_spec, root / "old", data_dir=data)
    assert new.ok and old.ok
    assert not _tables(root / "new")["ceiling.parquet"].equals(_tables(root / "old")["ceiling.parquet"])
    return {"new": root / "new", "old": root / "old"}


#: where each cycle is killed: the first cycle has no earlier results, the others replace complete old ones
ANALYZE_POINTS = ["write", "write", "analysis", "swap_between_renames", "swap_after_exchange", "analysis", "write"]


@pytest.mark.parametrize("cycle", range(len(ANALYZE_POINTS)))
def test_analyze_killed_at_a_random_point_never_mixes_and_resumes(cycle, results_study, analyze_reference, tmp_path,
                                                                   capsys, monkeypatch):
    import shutil

    from emoalign.analysis.kinds import KINDS
    from emoalign.report.results import Results

    rng = random.Random(SEED * 7 + cycle)
    out = tmp_path / "results"
    fresh = cycle == 0
    if not fresh:
        shutil.copytree(analyze_reference["old"], out)
    before = snapshot(out)
    where = ANALYZE_POINTS[cycle]
    with monkeypatch.context() as mp:
        if where == "write":  # 4 tables + agreement's extra table + the manifest
            KillAt(rng.randint(1, 6)).install(mp)
        elif where == "analysis":
            kind = rng.choice(["reliability", "agreement", "classification", "lmm"])

            def run(*a, **k):
                raise Killed(f"killed in {kind}")

            mp.setitem(KINDS, kind, replace(KINDS[kind], run=run))
        elif where == "swap_between_renames":  # the fallback swap: old moved aside, new not yet in place
            real_rename = io.os.rename

            def rename(a, b):
                if ".staging-" in str(a):
                    raise Killed("killed between the renames")
                return real_rename(a, b)

            mp.setattr(io, "_rename_exchange", lambda a, b: False)
            mp.setattr(io.os, "rename", rename)
        else:  # new content swapped in, the old not yet removed
            mp.setattr(io.shutil, "rmtree", lambda *a, **k: (_ for _ in ()).throw(Killed("killed before cleanup")))
            mp.setattr(io, "_discard", lambda path: None)
        with pytest.raises(Killed):
            _analyze(results_study["spec"], out, capsys, *([] if fresh else ["--force"]))
    capsys.readouterr()
    # a reader sees the old results or the new ones, complete and verified, never a mix
    if where == "swap_between_renames":
        assert not out.exists()  # the instant between the two renames: the next run puts the old folder back
        assert io.recover_staged(out) and out.exists()
    if fresh:
        assert not out.exists()
    elif where == "swap_after_exchange":
        assert Results.load(out).verify() == []
        for name, df in _tables(analyze_reference["new"]).items():
            pd.testing.assert_frame_equal(_tables(out)[name], df, check_exact=True)
    else:
        assert snapshot(out) == before and Results.load(out).verify() == []  # the old results, untouched
    code, _, err = _analyze(results_study["spec"], out, capsys, "--force")
    assert code == 0, err
    got, ref = _tables(out), _tables(analyze_reference["new"])
    assert list(got) == list(ref)
    for name in ref:  # row by row, every column, bit for bit
        pd.testing.assert_frame_equal(got[name], ref[name], check_exact=True)
    assert Results.load(out).verify() == [] and _temps(tmp_path) == [], _temps(tmp_path)
