"""Concurrent writers: one process at a time writes a run folder or a results folder; a run is complete
only when every selected image has exactly one row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading

import pandas as pd
import pytest
from faultkit import assert_unharmed, snapshot

from cli_runner import run_cli
from emoalign.data.io import FolderInUseError, folder_lock


def _items(face_study):
    from emoalign.raters.runs import items_from_stimuli

    return items_from_stimuli(pd.read_parquet(face_study / "stimuli12.parquet"), face_study)


def test_second_infer_with_force_on_a_busy_run_folder_is_refused(face_study, tmp_path, capsys):
    """The reported race: a second `infer --force` started mid-run. It is refused, names the holder's pid,
    does not suggest --force, and the first run finishes complete with exactly one row per image."""
    from emoalign.raters.fer import build_fer_rater
    from emoalign.raters.runs import run_rater

    items = _items(face_study)
    real = build_fer_rater("minixception", batch_size=4)
    entered, gate = threading.Event(), threading.Event()

    class Paused:  # the real rater, paused inside its second batch
        name, batch_size = real.name, 4

        def config(self):
            return real.config()

        def rate(self, batch):
            if batch[0].image_id == items[4].image_id:
                entered.set()
                gate.wait(60)
            return real.rate(batch)

    out = tmp_path / "runs"
    result = []
    t = threading.Thread(target=lambda: result.append(run_rater(Paused(), items, out, progress=False)))
    t.start()
    try:
        assert entered.wait(60)
        before = snapshot(out)
        code, _, err = run_cli(["infer", "--rater", "fer:minixception", "--stimuli", face_study / "stimuli12.parquet",
                                "--out", out, "--force", "--batch-size", "4", "--no-progress"], capsys)
        assert code == 2 and "run folder" in err and "is in use by another emoalign process" in err
        assert f"pid {os.getpid()} on " in err and "--force" not in err and "Traceback" not in err
        assert_unharmed(before, out)
    finally:
        gate.set()
        t.join(120)
    df = pd.read_parquet(result[0])
    assert sorted(df["image_id"]) == sorted(it.image_id for it in items) and df["image_id"].is_unique
    assert json.loads((out / "minixception" / "manifest.json").read_text())["status"] == "complete"
    assert not list(out.glob(".*.lock"))  # released and removed


def test_lock_held_by_another_process_names_it_and_dies_with_it(results_study, tmp_path, capsys):
    """A results folder locked by another process: analyze --force is refused with that pid, nothing is
    touched; after kill -9 of the holder the lock is free at once (never stale)."""
    out = tmp_path / "results"
    code, _, err = run_cli(["analyze", results_study["spec"], "--out", out, "-q"], capsys)
    assert code == 0, err
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom emoalign.data.io import folder_lock\n"
         "with folder_lock(sys.argv[1], 'results folder'):\n    print('locked', flush=True)\n    time.sleep(120)\n",
         str(out)], stdout=subprocess.PIPE, text=True, env=dict(os.environ))
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = snapshot(tmp_path)
        code, _, err = run_cli(["analyze", results_study["spec"], "--out", out, "--force", "-q"], capsys)
        assert code == 2 and f"results folder {out} is in use by another emoalign process (pid {holder.pid}" in err
        assert "--force" not in err
        assert_unharmed(before, tmp_path)
        with pytest.raises(FolderInUseError):
            with folder_lock(out):
                pass
    finally:
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
    with folder_lock(out):  # the kernel released the dead holder's lock
        pass


def test_rows_lost_to_another_writer_make_the_run_incomplete(face_study, tmp_path, capsys, monkeypatch):
    """A batch whose rows never reach the folder: the run is not `complete`, exits 4 naming the images,
    and the same command then finishes it."""
    from emoalign.raters.runs import RunStore

    items = _items(face_study)
    lost = [it.image_id for it in items[4:8]]
    append = RunStore.append

    def dropping(self, rows):
        if rows[0]["image_id"] != lost[0]:
            append(self, rows)

    monkeypatch.setattr(RunStore, "append", dropping)
    args = ["infer", "--rater", "fer:minixception", "--stimuli", face_study / "stimuli12.parquet", "--out",
            tmp_path / "runs", "--batch-size", "4", "--no-progress"]
    code, _, err = run_cli(args, capsys)
    assert code == 4 and "is incomplete: 4 of 12 selected images have no row: " + ", ".join(lost) in err
    assert "run the same command again" in err and "Traceback" not in err
    manifest = json.loads((tmp_path / "runs" / "minixception" / "manifest.json").read_text())
    assert manifest["status"] == "incomplete" and manifest["missing"] == lost
    monkeypatch.setattr(RunStore, "append", append)
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    df = pd.read_parquet(tmp_path / "runs" / "minixception" / "ratings.parquet")
    assert len(df) == 12 and df["image_id"].is_unique
    assert json.loads((tmp_path / "runs" / "minixception" / "manifest.json").read_text())["status"] == "complete"


def test_rows_for_other_images_become_error_rows(face_study, tmp_path):
    """A rater that answers for the wrong images cannot fill the table with them."""
    from emoalign.raters.runs import run_rater

    items = _items(face_study)[:3]

    class Confused:
        name, batch_size = "confused", 3

        def config(self):
            return {"model_id": "confused"}

        def rate(self, batch):
            return [{"image_id": "elsewhere", "emotion": "happy", "valence": 5.0, "arousal": 5.0} for _ in batch]

    df = pd.read_parquet(run_rater(Confused(), items, tmp_path, progress=False))
    assert sorted(df["image_id"]) == sorted(it.image_id for it in items) and df["error"].notna().all()
