"""`emoalign infer` end to end on a tiny random Gemma3: contract columns, error rows, label-order probe,
config-change protection, and resume after kill -9 (exactly one row per image)."""

import hashlib
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from emoalign.cli.infer import infer
from emoalign.data.schemas import MACHINES


def _stimuli(folder, images, corrupt=True):
    (folder / "img").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, im in enumerate(images):
        p = folder / "img" / f"{i}.png"
        im.save(p)
        rows.append(dict(image_id=f"im{i:02d}", path=f"img/{i}.png", emotion="happy",
                         sha256=hashlib.sha256(p.read_bytes()).hexdigest()))
    if corrupt:
        (folder / "img" / "bad.png").write_bytes(b"not a png")
        rows.append(dict(image_id="bad", path="img/bad.png", emotion="sad", sha256="0" * 64))
    path = folder / "stimuli.parquet"
    pd.DataFrame(rows).to_parquet(path)
    return path


def _run(args):
    res = CliRunner().invoke(infer, args, catch_exceptions=False)
    return res


def test_infer_writes_contract_table_with_error_row(tmp_path, tiny_gemma3_dir, tiny_images, capsys):
    from cli_runner import run_cli

    stim = _stimuli(tmp_path, tiny_images[:3])
    code, out, err = run_cli(["infer", "--rater", f"hf:{tiny_gemma3_dir}", "--name", "tiny", "--stimuli", str(stim),
                              "--out", str(tmp_path / "runs"), "--batch-size", "2", "--max-new-tokens", "6", "--no-progress"],
                             capsys)
    assert code == 3, out + err  # finished with an error row: its own exit code, the first failing image, the retry option
    assert "1 of 4 images ended with an error row: bad (" in err and "--retry-errors" in err and "Traceback" not in err
    df = pd.read_parquet(tmp_path / "runs" / "tiny" / "ratings.parquet")
    assert sorted(df["image_id"]) == ["bad", "im00", "im01", "im02"]
    for col in list(MACHINES.required) + ["emotion_raw", "valence_status", "arousal_expected", "p_emotion_fear",
                                          "p_valence_9", "template_hash", "model_id", "dtype", "batch_size", "run_id"]:
        assert col in df.columns
    bad = df.set_index("image_id").loc["bad"]
    assert "bad.png" in bad["error"] and pd.isna(bad["emotion_status"])
    good = df[df["image_id"] != "bad"]
    assert good["error"].isna().all() and (good["batch_size"] == 2).all() and (good["backend"] == "hf").all()
    assert "images/s" in out and "emotion " in out and "1 errors" in out


@pytest.mark.slow  # two CLI runs of the model
def test_orders_write_one_rater_per_order_and_config_change_needs_force(tmp_path, tiny_gemma3_dir, tiny_images):
    stim = _stimuli(tmp_path, tiny_images[:2], corrupt=False)
    base = ["--rater", f"hf:{tiny_gemma3_dir}", "--name", "g", "--stimuli", str(stim), "--out", str(tmp_path / "runs"),
            "--max-new-tokens", "4", "--no-progress"]
    res = _run(base + ["--orders", "fixed,reversed"])
    assert res.exit_code == 0, res.output
    fixed = pd.read_parquet(tmp_path / "runs" / "g" / "ratings.parquet")
    rev = pd.read_parquet(tmp_path / "runs" / "g-reversed" / "ratings.parquet")
    assert set(fixed["rater"]) == {"g"} and set(rev["rater"]) == {"g@reversed"}
    assert set(rev["label_order"]) == {"reversed"}
    assert rev["emotion_prompt"].str.contains("neutral, disgust, fear, angry, sad, happy").all()
    from emoalign.cli.main import main

    with pytest.raises(SystemExit) as exc:  # same folder, different strategy -> refused
        main(["infer"] + base + ["--strategy", "independent"])
    assert exc.value.code == 2


# `python -m emoalign` whose run store, after its N-th part file, says so through a file and then hangs: the test
# kills it (SIGKILL) at that deterministic point instead of racing a running process.
HANG_AFTER_PARTS = """
import os, runpy, sys, time
from pathlib import Path
from emoalign.raters.runs import RunStore
n, flag = int(os.environ["EMOALIGN_TEST_HANG_AFTER"]), Path(os.environ["EMOALIGN_TEST_HANG_FLAG"])
append, written = RunStore.append, []
def hanging_append(self, rows):
    append(self, rows)
    written.append(1)
    if len(written) == n:
        flag.write_text(str(n))
        time.sleep(600)
RunStore.append = hanging_append
sys.argv = ["emoalign", *sys.argv[1:]]
runpy.run_module("emoalign", run_name="__main__")
"""


@pytest.mark.slow  # two `emoalign infer` processes (torch and the model loaded twice)
def test_resume_after_kill(tmp_path, tiny_gemma3_dir, tiny_images):
    from tiny_vlm import tiny_face_images

    stim = _stimuli(tmp_path, tiny_face_images(12, seed=3), corrupt=False)
    out = tmp_path / "runs"
    args = ["infer", "--rater", f"hf:{tiny_gemma3_dir}", "--name", "k", "--stimuli", str(stim), "--out", str(out),
            "--batch-size", "1", "--max-new-tokens", "4", "--no-progress"]
    flag = tmp_path / "hung"
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false", EMOALIGN_TEST_HANG_AFTER="3",
               EMOALIGN_TEST_HANG_FLAG=str(flag))
    proc = subprocess.Popen([sys.executable, "-c", HANG_AFTER_PARTS, *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    parts = out / "k" / "parts"
    deadline = time.time() + 300
    while time.time() < deadline and not flag.exists() and proc.poll() is None:
        time.sleep(0.05)
    assert flag.exists() and proc.poll() is None, "run did not reach its third part: " + proc.stdout.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)  # kill -9 after exactly three finished batches
    proc.wait()
    assert len(list(parts.glob("part-*.parquet"))) == 3 and not (out / "k" / "ratings.parquet").exists()
    done = set(pd.concat([pd.read_parquet(p) for p in parts.glob("part-*.parquet")])["image_id"])
    assert done == {"im00", "im01", "im02"}
    res = subprocess.run([sys.executable, "-m", "emoalign", *args], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    df = pd.read_parquet(out / "k" / "ratings.parquet")
    assert len(df) == 12 and df["image_id"].is_unique and sorted(df["image_id"]) == [f"im{i:02d}" for i in range(12)]
    import json

    manifest = json.loads((out / "k" / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["resumed"] is True


def test_bad_rater_spec_is_a_user_error(tmp_path, tiny_images):
    stim = _stimuli(tmp_path, tiny_images[:1], corrupt=False)
    from emoalign.cli.main import main

    with pytest.raises(SystemExit) as exc:
        main(["infer", "--rater", "gemma3", "--stimuli", str(stim), "--out", str(tmp_path / "r")])
    assert exc.value.code == 2


def test_backend_errors_are_user_errors(tmp_path):
    from emoalign.errors import EmoalignError
    from emoalign.raters.vlm.backends import load_backend

    with pytest.raises(EmoalignError, match="unknown VLM backend"):
        load_backend("vllm", "x")
    with pytest.raises(EmoalignError, match="base-url"):
        load_backend("openai", "x")
    with pytest.raises(EmoalignError, match="does not exist"):
        load_backend("hf", str(tmp_path / "nope"))


def test_spec_gives_scales_and_label_set_in_paper_prompt_order(tmp_path, tiny_gemma3_dir, tiny_images):
    stim = _stimuli(tmp_path, tiny_images[:1], corrupt=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text("study:\n  scales: {valence: [0, 10], arousal: [1, 7]}\n"
                    "  emotions: [angry, disgust, fear, happy, sad, neutral]\nanalyses: []\n")
    res = _run(["--rater", f"hf:{tiny_gemma3_dir}", "--name", "s", "--stimuli", str(stim), "--out", str(tmp_path / "runs"),
                "--spec", str(spec), "--max-new-tokens", "3", "--no-progress"])
    assert res.exit_code == 0, res.output
    row = pd.read_parquet(tmp_path / "runs" / "s" / "ratings.parquet").iloc[0]
    assert "Choose one from: happy, sad, angry, fear, disgust, neutral." in row["emotion_prompt"]
    assert "Rate from 0 to 10 where 0 is very unpleasant" in row["valence_prompt"]
    assert "Rate from 1 to 7 where 1 is very calm" in row["arousal_prompt"]
    assert "p_valence_0" in row.index and "p_arousal_7" in row.index and "p_arousal_8" not in row.index
    if row["valence"] is not None and not pd.isna(row["valence"]):
        assert 0 <= row["valence"] <= 10
    # defaults: hf on CPU batches 4 images (batch invariance is tested), the model's own image placement
    assert row["batch_size"] == 4 and row["image_placement"] == "before"


def test_image_placement_flag_and_unknown_backend_option(tmp_path, tiny_gemma3_dir, tiny_images):
    stim = _stimuli(tmp_path, tiny_images[:1], corrupt=False)
    base = ["--rater", f"hf:{tiny_gemma3_dir}", "--name", "p", "--stimuli", str(stim), "--out", str(tmp_path / "runs"),
            "--max-new-tokens", "2", "--no-progress"]
    res = _run(base + ["--image-placement", "after"])
    assert res.exit_code == 0, res.output
    row = pd.read_parquet(tmp_path / "runs" / "p" / "ratings.parquet").iloc[0]
    assert row["image_placement"] == "after"
    from emoalign.cli.main import main

    with pytest.raises(SystemExit) as exc:           # hf rejects unknown options, as mlx and openai do
        main(["infer"] + base + ["--run-id", "q", "--option", "max_prefix_imgs=3"])
    assert exc.value.code == 2
