"""Stimulus scan and check on real image files written by the tests."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emoalign.data.io import read_table
from emoalign.errors import EmoalignError
from emoalign.stimuli.check import balance_table, check_stimuli
from emoalign.stimuli.scan import compile_pattern, scan_stimuli
from cli_runner import run_cli  # noqa: E402

PATTERN = "{race}_{gender}_{identity_id}_{emotion}.png"
RACES, GENDERS, EMOTIONS = ("asian", "black"), ("f", "m"), ("happy", "sad", "angry")


def _png(path: Path, seed: int, size=(6, 5)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _balanced(folder: Path, identities=("01", "02")) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths, seed = [], 0
    for r in RACES:
        for g in GENDERS:
            for i in identities:
                for e in EMOTIONS:
                    p = folder / f"{r}_{g}_{i}_{e}.png"
                    _png(p, seed)
                    seed += 1
                    paths.append(p)
    return paths


# ---- pattern --------------------------------------------------------------------------------

def test_pattern_fields_stop_at_the_next_separator():
    pat = compile_pattern(PATTERN)
    assert pat.fields == ("race", "gender", "identity_id", "emotion")
    assert pat.parse("asian_f_01_happy.png") == {"race": "asian", "gender": "f", "identity_id": "01", "emotion": "happy"}
    assert pat.parse("asian_f_01_happy.PNG")["emotion"] == "happy"
    assert pat.parse("asian_f_01_very_happy.png") is None  # a 5th part is not silently glued onto a field
    assert pat.parse("sub/asian_f_01_happy.png") is None
    nested = compile_pattern("{emotion}/{_}_{image_id}.jpg")
    assert nested.parse("fear/x_img7.jpg") == {"emotion": "fear", "image_id": "img7"}


@pytest.mark.parametrize("bad, match", [("{race}{gender}.png", "touch"), ("{a}_{a}.png", "twice"),
                                        ("{sha256}_{emotion}.png", "computed"), ("plain.png", "no field"),
                                        ("{my-field}.png", "valid column name")])
def test_bad_patterns_are_user_errors(bad, match):
    with pytest.raises(EmoalignError, match=match):
        compile_pattern(bad)


# ---- scan -----------------------------------------------------------------------------------

def test_scan_records_fields_hash_size_and_relative_path(tmp_path):
    paths = _balanced(tmp_path / "img")
    (tmp_path / "img" / "readme.txt").write_text("not an image")
    df, rep = scan_stimuli(tmp_path / "img", PATTERN, out=tmp_path / "stimuli.parquet")
    assert len(df) == len(paths) == 24 and rep.ignored_non_images == 1
    assert list(df.columns) == ["image_id", "path", "emotion", "race", "gender", "identity_id", "sha256", "width", "height"]
    row = df.set_index("image_id").loc["black_m_02_sad"]
    assert (row["race"], row["gender"], row["identity_id"], row["emotion"]) == ("black", "m", "02", "sad")
    assert row["path"] == "img/black_m_02_sad.png"
    assert row["sha256"] == hashlib.sha256((tmp_path / "img/black_m_02_sad.png").read_bytes()).hexdigest()
    assert (row["width"], row["height"]) == (6, 5)


def test_scan_unmatched_files_fail_unless_skipped(tmp_path):
    _balanced(tmp_path / "img")
    _png(tmp_path / "img" / "IMG_0001.png", 99)
    _png(tmp_path / "img" / "asian_f_03_sad_v2.png", 98)
    with pytest.raises(EmoalignError, match=r"(?s)2 image file\(s\) do not match.*IMG_0001.png.*--skip-unmatched"):
        scan_stimuli(tmp_path / "img", PATTERN)
    df, rep = scan_stimuli(tmp_path / "img", PATTERN, skip_unmatched=True)
    assert len(df) == 24 and sorted(rep.unmatched) == ["IMG_0001.png", "asian_f_03_sad_v2.png"]


def test_scan_needs_emotion_and_unique_ids(tmp_path):
    _balanced(tmp_path / "img")
    with pytest.raises(EmoalignError, match="emotion"):
        scan_stimuli(tmp_path / "img", "{race}_{gender}_{identity_id}_{mood}.png")
    nested = tmp_path / "nested"
    for e in ("happy", "sad"):
        (nested / e).mkdir(parents=True)
        _png(nested / e / "face1.png", len(e))
    with pytest.raises(EmoalignError, match=r"(?s)face1.*\{image_id\}"):
        scan_stimuli(nested, "{emotion}/{_}.png")
    (nested / "sad" / "face1.png").rename(nested / "sad" / "face2.png")
    df, _ = scan_stimuli(nested, "{emotion}/{image_id}.png")
    assert df.set_index("image_id")["emotion"].to_dict() == {"face1": "happy", "face2": "sad"}


def test_scan_from_manifest_with_pattern_fill_in(tmp_path):
    _balanced(tmp_path / "img", identities=("01",))
    man = pd.DataFrame({"path": ["asian_f_01_happy.png", "black_m_01_sad.png"], "emotion": ["happy", "sad"],
                        "lighting": ["day", "night"]})
    man.to_csv(tmp_path / "img" / "manifest.csv", index=False)
    df, _ = scan_stimuli(manifest=tmp_path / "img" / "manifest.csv", pattern="{race}_{gender}_{identity_id}_{_}.png",
                         out=tmp_path / "stimuli.parquet")
    assert list(df["image_id"]) == ["asian_f_01_happy", "black_m_01_sad"]
    assert list(df["lighting"]) == ["day", "night"] and list(df["race"]) == ["asian", "black"]
    assert list(df["path"]) == ["img/asian_f_01_happy.png", "img/black_m_01_sad.png"]
    man.loc[1, "path"] = "gone.png"
    man.to_csv(tmp_path / "img" / "manifest.csv", index=False)
    with pytest.raises(EmoalignError, match=r"row 3: gone.png"):
        scan_stimuli(manifest=tmp_path / "img" / "manifest.csv")
    # manifest and filename disagree
    pd.DataFrame({"path": ["asian_f_01_happy.png"], "emotion": ["sad"]}).to_csv(tmp_path / "m2.csv", index=False)
    with pytest.raises(EmoalignError, match="manifest says emotion='sad' but the filename says emotion='happy'"):
        scan_stimuli(tmp_path / "img", PATTERN, manifest=tmp_path / "m2.csv")


# ---- check ----------------------------------------------------------------------------------

def _broken_study(tmp_path) -> Path:
    """A balanced folder plus a corrupt PNG, a duplicate image under another name and a bad label."""
    img = tmp_path / "img"
    _balanced(img)
    good = (img / "asian_f_01_happy.png").read_bytes()
    (img / "asian_f_03_happy.png").write_bytes(good[: len(good) // 2])  # truncated PNG
    shutil.copy(img / "black_m_02_sad.png", img / "black_m_03_sad.png")  # duplicate content
    _png(img / "black_f_03_Happy.png", 123)  # label outside the set (case)
    _png(img / "black_f_04_joy.png", 124)  # label outside the set
    return img


def test_check_finds_every_error_kind(tmp_path):
    img = _broken_study(tmp_path)
    with pytest.raises(EmoalignError, match="identical image contents under different ids"):
        scan_stimuli(img, PATTERN, out=tmp_path / "stimuli.parquet")  # scan refuses duplicates unless told
    df, rep = scan_stimuli(img, PATTERN, out=tmp_path / "stimuli.parquet", allow_duplicates=True)
    assert rep.duplicates is not None and "black_m_02_sad = black_m_03_sad" in rep.duplicates.line()
    assert rep.unreadable and "asian_f_03_happy" in rep.unreadable[0]
    assert df.set_index("image_id").loc["asian_f_03_happy", "width"] is pd.NA
    df.to_parquet(tmp_path / "stimuli.parquet")
    # a file changed after the scan and a file deleted after the scan
    _png(img / "asian_m_01_sad.png", 555)
    (img / "black_f_01_angry.png").unlink()
    report = check_stimuli(tmp_path / "stimuli.parquet", emotions=EMOTIONS)
    assert not report.ok
    assert report.error_kinds() == {"unreadable", "duplicate_content", "bad_label", "sha256_mismatch", "missing_file"}
    by = {e.kind: e for e in report.errors}
    assert by["unreadable"].count == 1 and "asian_f_03_happy" in by["unreadable"].examples[0]
    assert by["duplicate_content"].examples == ("black_m_02_sad = black_m_03_sad",)
    assert by["bad_label"].count == 2 and any("did you mean 'happy'" in e for e in by["bad_label"].examples)
    assert by["sha256_mismatch"].examples == ("asian_m_01_sad (asian_m_01_sad.png)",)
    assert by["missing_file"].count == 1 and "black_f_01_angry" in by["missing_file"].examples[0]


def test_check_duplicate_ids_and_empty_labels(tmp_path):
    _balanced(tmp_path / "img", identities=("01",))
    df, _ = scan_stimuli(tmp_path / "img", PATTERN, out=tmp_path / "s.parquet")
    df = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    df.loc[1, "emotion"] = ""
    rep = check_stimuli(df, root=tmp_path)
    assert {"duplicate_id", "missing_label", "duplicate_content"} <= rep.error_kinds()


def test_balance_table_balanced_and_unbalanced():
    design = pd.DataFrame([(r, g, e) for r in RACES for g in GENDERS for e in EMOTIONS for _ in range(3)],
                          columns=["race", "gender", "emotion"])
    table, modal = balance_table(design, ["race", "gender", "emotion"])
    assert modal == 3 and len(table) == 12 and not table["off_modal"].any()
    # drop one image from one cell, add two to another, and declare an emotion with no image
    unbalanced = pd.concat([design.drop(index=0), design.iloc[[5, 5]]], ignore_index=True)
    table, modal = balance_table(unbalanced, ["race", "gender", "emotion"], {"emotion": [*EMOTIONS, "fear"]})
    assert modal == 3 and len(table) == 16
    off = table[table["off_modal"]].set_index(["race", "gender", "emotion"])["n"].to_dict()
    assert off[("asian", "f", "happy")] == 2
    assert off[tuple(design.iloc[5])] == 5
    assert sum(1 for k in off if k[2] == "fear") == 4 and all(off[k] == 0 for k in off if k[2] == "fear")
    assert len(off) == 6


def test_check_balanced_is_clean_and_imbalance_only_warns(tmp_path):
    _balanced(tmp_path / "img")
    df, _ = scan_stimuli(tmp_path / "img", PATTERN, out=tmp_path / "s.parquet")
    rep = check_stimuli(df, emotions=EMOTIONS, root=tmp_path)
    assert rep.ok and not rep.warnings and rep.modal_count == 2 and rep.design == ("race", "gender", "emotion")
    rep = check_stimuli(df[df["image_id"] != "asian_f_01_happy"], emotions=EMOTIONS, root=tmp_path)
    assert rep.ok and [w.kind for w in rep.warnings] == ["imbalance"]
    assert "race=asian, gender=f, emotion=happy: 1" in rep.warnings[0].examples
    rep = check_stimuli(df.iloc[1:], design=["gender", "identity_id"], root=tmp_path)
    assert rep.balance.shape[0] == 4 and rep.balance["n"].sum() == 23
    with pytest.raises(EmoalignError, match="--design column.*age"):
        check_stimuli(df, design=["age"], root=tmp_path)


# ---- CLI ------------------------------------------------------------------------------------

def test_cli_scan_check_exit_codes_and_no_overwrite(tmp_path, capsys):
    _balanced(tmp_path / "img")
    out = tmp_path / "stimuli.parquet"
    code, so, _ = run_cli(["stimuli", "scan", tmp_path / "img", "--pattern", PATTERN, "-o", out], capsys)
    assert code == 0 and "24 images" in so
    assert len(read_table(out, "stimuli")) == 24
    before = out.read_bytes()
    code, _, err = run_cli(["stimuli", "scan", tmp_path / "img", "--pattern", PATTERN, "-o", out], capsys)
    assert code == 2 and "already exists" in err and "--force" in err and "Traceback" not in err
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    spec = tmp_path / "spec.yaml"
    spec.write_text("study:\n  emotions: [happy, sad, angry]\n")
    code, so, _ = run_cli(["stimuli", "check", out, "--spec", spec], capsys)
    assert code == 0 and "OK" in so and "modal count 2" in so
    code, so, _ = run_cli(["stimuli", "check", out, "--emotions", "happy,sad"], capsys)
    assert code == 1 and "'angry' x8" in so and "FAILED" in so
    # an unbalanced but clean table: exit 0 with a warning
    df = read_table(out)
    df.iloc[1:].to_parquet(tmp_path / "unbalanced.parquet")
    code, so, _ = run_cli(["stimuli", "check", tmp_path / "unbalanced.parquet", "-e", "happy,sad,angry"], capsys)
    assert code == 0 and "WARNING unbalanced design" in so and "OK (with warnings)" in so


def test_cli_scan_force_overwrites_and_unmatched_exit(tmp_path, capsys):
    _balanced(tmp_path / "img", identities=("01",))
    _png(tmp_path / "img" / "stray.png", 7)
    out = tmp_path / "s.parquet"
    code, _, err = run_cli(["stimuli", "scan", tmp_path / "img", "-p", PATTERN, "-o", out], capsys)
    assert code == 2 and "stray.png" in err and not out.exists()
    code, so, _ = run_cli(["stimuli", "scan", tmp_path / "img", "-p", PATTERN, "-o", out, "--skip-unmatched"], capsys)
    assert code == 0 and "skipped 1" in so
    os.remove(tmp_path / "img" / "asian_f_01_happy.png")
    code, _, _ = run_cli(["stimuli", "scan", tmp_path / "img", "-p", PATTERN, "-o", out, "--skip-unmatched", "--force"], capsys)
    assert code == 0 and len(read_table(out)) == 11


def test_installed_entry_point_check_exit_code(tmp_path):
    img = _broken_study(tmp_path)
    exe = Path(sys.executable).with_name("emoalign")
    if not exe.exists():
        pytest.skip("emoalign console script not installed beside this python")
    r = subprocess.run([exe, "stimuli", "scan", img, "-p", PATTERN, "-o", tmp_path / "s.parquet", "--allow-duplicates"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([exe, "stimuli", "check", tmp_path / "s.parquet", "-e", ",".join(EMOTIONS)], capture_output=True, text=True)
    assert r.returncode == 1 and "unreadable image" in r.stdout and "Traceback" not in r.stderr
