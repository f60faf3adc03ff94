"""The CLI fault catalogue: every bad input the issue lists, one case each, run through the real entry
point. Each case asserts the exit code, the message (what is wrong and how to fix it), that no
traceback was printed, and that no file was harmed (every file of the scratch folder byte-identical,
untouched, none added)."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest
from faultkit import assert_unharmed, read_only_dir, snapshot, unprivileged

from cli_runner import run_cli

PATTERN = "{race}_{gender}_{identity_id}_{emotion}.png"
EMOTIONS = "angry,disgust,fear,happy,sad,neutral"


@pytest.fixture(scope="session")
def results_folder(results_study, tmp_path_factory):
    from emoalign.analysis.engine import run_spec

    out = tmp_path_factory.mktemp("cli_results") / "results"
    assert run_spec(results_study["spec"], out).ok
    return out


def _publish(folder: Path) -> None:
    """Readable by everyone (the unprivileged cases read their inputs as another user)."""
    for p in [folder, *folder.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)


@pytest.fixture
def scratch(open_dir, face_study, results_study, results_folder):
    """A world-readable study: images/ (12 faces), stimuli.parquet, ratings.csv, study/ + spec, results/."""
    d = open_dir
    stim = pd.read_parquet(face_study / "stimuli12.parquet")
    (d / "images").mkdir()
    for p in stim["path"]:
        shutil.copy(face_study / p, d / "images" / Path(p).name)
    stim.to_parquet(d / "stimuli.parquet", index=False)
    hum = pd.read_parquet(face_study / "humans.parquet")
    hum = hum[hum["image_id"].isin(stim["image_id"])][["rater_id", "image_id", "valence", "arousal"]]
    hum.to_csv(d / "ratings.csv", index=False)
    shutil.copytree(results_study["root"], d / "study", ignore=shutil.ignore_patterns("results*", "check.yaml"))
    shutil.copytree(results_folder, d / "results")
    _publish(d)
    return d


@dataclass
class Case:
    """One fault: how to set it up (returns the CLI args), the expected exit code and message parts."""

    name: str
    setup: Callable[[Path], list]
    code: int
    messages: tuple[str, ...]
    unprivileged: bool = False
    env: dict = field(default_factory=dict)
    max_seconds: float | None = None


def _locked(d: Path) -> Path:
    return read_only_dir(d)


def _ratings_variant(d: Path, text: str, name: str) -> Path:
    p = d / name
    p.write_text(text)
    p.chmod(0o644)
    return p


def _dup_images(d: Path) -> Path:
    src = d / "images"
    dup = d / "dup"
    shutil.copytree(src, dup)
    first = sorted(dup.glob("*.png"))[0]
    shutil.copy(first, dup / "Korean_male_09_happy.png")  # same bytes, another id
    _publish(dup)
    return dup


def _mislabelled(d: Path) -> Path:
    bad = d / "bad"
    shutil.copytree(d / "images", bad)
    png = sorted(bad.glob("*.png"))[0]
    png.rename(bad / "Korean_male_09_hapy.png")
    _publish(bad)
    return bad


def _spec_with_emotions(d: Path) -> Path:
    p = d / "labels.yaml"
    p.write_text("study:\n  stimuli: stimuli.parquet\n  humans: humans.parquet\n  emotions: [angry, disgust, fear, happy, "
                 "sad, neutral]\nanalyses: []\n")
    p.chmod(0o644)
    return p


def _zero_byte_table(d: Path) -> Path:
    res = d / "results"
    table = res / "agreement.parquet"
    table.write_bytes(b"")
    return res


def _foreign_table(d: Path) -> Path:
    res = d / "results"
    df = pd.read_parquet(res / "agreement.parquet")
    df["estimate"] = df["estimate"] + 1  # a table of another run, same shape
    df.to_parquet(res / "agreement.parquet", index=False)
    return res


def _existing(d: Path, name: str) -> Path:
    p = d / name
    p.write_text("keep me")
    return p


CASES = [
    # -- unwritable folders --------------------------------------------------------------------------
    Case("scan into an unwritable folder",
         lambda d: ["stimuli", "scan", d / "images", "-p", PATTERN, "-o", _locked(d) / "stimuli.parquet"],
         2, ("cannot write -o", "permission denied in", "hint:"), unprivileged=True),
    Case("humans import into an unwritable folder",
         lambda d: ["humans", "import", d / "ratings.csv", "-s", d / "stimuli.parquet", "--scale", "valence=1:9",
                    "--scale", "arousal=1:9", "-o", _locked(d) / "humans.parquet"],
         2, ("cannot write -o", "permission denied in"), unprivileged=True),
    Case("infer into an unwritable folder",
         lambda d: ["infer", "--rater", "fer:minixception", "--stimuli", d / "stimuli.parquet", "--out",
                    _locked(d) / "runs", "--no-progress"],
         2, ("cannot write into runs folder --out", "permission denied"), unprivileged=True),
    Case("analyze into an unwritable folder",
         lambda d: ["analyze", d / "study" / "faults.yaml", "--out", _locked(d) / "results"],
         2, ("cannot write into the folder of --out", "permission denied"), unprivileged=True),
    Case("simulate into an unwritable folder",
         lambda d: ["simulate", "-p", "small", "--no-images", "-q", "-o", _locked(d) / "study"],
         2, ("cannot write into study folder -o", "permission denied"), unprivileged=True),
    Case("report into an unwritable folder",
         lambda d: ["report", d / "results", "-o", _locked(d) / "report.html"],
         2, ("cannot write report file", "permission denied in", "-o PATH"), unprivileged=True),
    Case("report of a read-only results folder, default output inside it",
         lambda d: [(d / "results").chmod(0o555), "report", d / "results"][1:],
         2, ("report.html: permission denied in", "-o PATH"), unprivileged=True),
    # -- infer options ---------------------------------------------------------------------------------
    Case("infer --device cuda:7 on a CPU build",
         lambda d: ["infer", "--rater", "fer:minixception", "--stimuli", d / "stimuli.parquet", "--out", d / "runs",
                    "--device", "cuda:7"],
         2, ("--device cuda:7", "hint:", "--device cpu")),
    Case("infer --device nonsense",
         lambda d: ["infer", "--rater", "fer:minixception", "--stimuli", d / "stimuli.parquet", "--out", d / "runs",
                    "--device", "gpu0"],
         2, ("--device 'gpu0' is not a device", "use auto or one of: cpu")),
    Case("infer --option batch_size=abc",
         lambda d: ["infer", "--rater", "fer:minixception", "--stimuli", d / "stimuli.parquet", "--out", d / "runs",
                    "--option", "batch_size=abc"],
         2, ("--option batch_size='abc'", "valid integer", "--option batch_size=8")),
    Case("infer --option batch_size=0",
         lambda d: ["infer", "--rater", "fer:minixception", "--stimuli", d / "stimuli.parquet", "--out", d / "runs",
                    "--option", "batch_size=0"],
         2, ("--option batch_size=0", "at least 1")),
    Case("infer --limit -5",
         lambda d: ["infer", "--rater", "fer:minixception", "--stimuli", d / "stimuli.parquet", "--out", d / "runs",
                    "--limit", "-5"],
         2, ("Invalid value for '--limit'", "-5 is not in the range x>=1")),
    Case("infer --batch-size 0",
         lambda d: ["infer", "--rater", "fer:minixception", "--stimuli", d / "stimuli.parquet", "--out", d / "runs",
                    "--batch-size", "0"],
         2, ("Invalid value for '--batch-size'", "0 is not in the range x>=1")),
    Case("infer an unreachable hub id offline (hf)",
         lambda d: ["infer", "--rater", "hf:emoalign-tests/no-such-model", "--stimuli", d / "stimuli.parquet", "--out",
                    d / "runs"],
         2, ("cannot reach the Hugging Face hub", "not in the local cache", "--rater hf:/path/to/DIR"),
         env={"HF_ENDPOINT": "http://127.0.0.1:9"}, max_seconds=20),
    Case("infer an unreachable hub id offline (mlx)",
         lambda d: ["infer", "--rater", "mlx:emoalign-tests/no-such-model", "--stimuli", d / "stimuli.parquet", "--out",
                    d / "runs"],
         2, ("cannot reach the Hugging Face hub", "--rater mlx:/path/to/DIR"),
         env={"HF_ENDPOINT": "http://127.0.0.1:9"}, max_seconds=20),
    Case("infer an unreachable hub id offline (fer:hf)",
         lambda d: ["infer", "--rater", "fer:hf:emoalign-tests/no-such-model", "--stimuli", d / "stimuli.parquet",
                    "--out", d / "runs"],
         2, ("cannot reach the Hugging Face hub", "--rater fer:hf:/path/to/DIR"),
         env={"HF_ENDPOINT": "http://127.0.0.1:9"}, max_seconds=20),
    # -- human ratings ---------------------------------------------------------------------------------
    Case("humans import of a header-only CSV",
         lambda d: ["humans", "import", _ratings_variant(d, "rater_id,image_id,valence\n", "header.csv"), "-s",
                    d / "stimuli.parquet", "--scale", "valence=1:9", "-o", d / "humans.parquet"],
         2, ("header.csv has a header (row 1) but no trials", "hint:")),
    Case("humans import of a semicolon-separated CSV",
         lambda d: ["humans", "import", _ratings_variant(
             d, "rater_id;image_id;valence\np1;Black_female_01_angry;3\n", "semi.csv"), "-s", d / "stimuli.parquet",
             "--scale", "valence=1:9", "-o", d / "humans.parquet"],
         2, ("separated by semicolons, not commas", "save the sheet as comma-separated CSV")),
    # -- simulate --------------------------------------------------------------------------------------
    Case("simulate --set with an unknown key",
         lambda d: ["simulate", "-p", "small", "--no-images", "-o", d / "sim", "--set", "humans.n_ratersx=5"],
         2, ("--set humans.n_ratersx", "did you mean 'n_raters'", "keys there:")),
    Case("simulate --set with an unknown rater option",
         lambda d: ["simulate", "-p", "small", "--no-images", "-o", d / "sim", "--set",
                    "machines.raters.gemma3.valence.biass.happy=1"],
         2, ("no key 'biass'", "did you mean 'bias'")),
    # -- stimuli scan ----------------------------------------------------------------------------------
    Case("stimuli scan with duplicate image contents",
         lambda d: ["stimuli", "scan", _dup_images(d), "-p", PATTERN, "-o", d / "stimuli2.parquet"],
         2, ("identical image contents under different ids (1)", "Korean_male_09_happy", "pass --allow-duplicates if they are deliberate")),
    Case("stimuli scan with a label outside --emotions",
         lambda d: ["stimuli", "scan", _mislabelled(d), "-p", PATTERN, "-o", d / "stimuli2.parquet", "--emotions",
                    EMOTIONS],
         2, ("label outside the study's emotions", "'hapy' x1 (did you mean 'happy'?)")),
    Case("stimuli scan with a label outside the --spec emotions",
         lambda d: ["stimuli", "scan", _mislabelled(d), "-p", PATTERN, "-o", d / "stimuli2.parquet", "--spec",
                    _spec_with_emotions(d)],
         2, ("label outside the study's emotions", "'hapy'")),
    # -- results and report ----------------------------------------------------------------------------
    Case("report of a results folder with a zero-byte table",
         lambda d: ["report", _zero_byte_table(d), "-o", d / "report.html"],
         2, ("does not match its manifest.json", "agreement.parquet cannot be read as parquet", "size 0 bytes",
             "--force")),
    Case("report of a results folder holding another run's table",
         lambda d: ["report", _foreign_table(d), "-o", d / "report.html"],
         2, ("agreement.parquet differs from the file analyze wrote (sha256 mismatch)",)),
    Case("report -o onto an existing file",
         lambda d: ["report", d / "results", "-o", _existing(d, "report.html")],
         2, ("report.html already exists", "pass --force to overwrite it")),
    Case("report --pdf onto an existing file",
         lambda d: ["report", d / "results", "-o", d / "new.html", "--pdf", _existing(d, "report.pdf")],
         2, ("report.pdf already exists", "--force")),
    Case("report default output already there",
         lambda d: [_existing(d / "results", "report.html"), "report", d / "results"][1:],
         2, ("report.html already exists",)),
    Case("analyze --force into a folder that holds other files",
         lambda d: ["analyze", d / "study" / "faults.yaml", "--out", d / "study", "--force"],
         2, ("holds files but no emoalign results", "choose a new or empty folder")),
    Case("analyze without --force onto results",
         lambda d: ["analyze", d / "study" / "faults.yaml", "--out", d / "results"],
         2, ("already holds results", "--force")),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_fault(case, scratch, capsys, monkeypatch):
    if case.name.startswith("infer --device cuda:7"):
        import torch

        if torch.cuda.is_available() and torch.cuda.device_count() > 7:
            pytest.skip("this machine has a cuda:7")
    for k, v in case.env.items():
        monkeypatch.setenv(k, v)
    if case.env:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    args = case.setup(scratch)
    before = snapshot(scratch)
    t0 = time.perf_counter()
    if case.unprivileged:
        import emoalign.cli.humans, emoalign.cli.infer, emoalign.cli.report, emoalign.cli.simulate  # noqa: E401,F401
        import emoalign.cli.stimuli, emoalign.analysis.engine, emoalign.render  # noqa: E401,F401
        import torch  # noqa: F401  (imported as root: the unprivileged user only runs code)

        with unprivileged():
            code, out, err = run_cli(args, capsys)
    else:
        code, out, err = run_cli(args, capsys)
    seconds = time.perf_counter() - t0
    if os.environ.get("EMOALIGN_SHOW_FAULTS"):
        print(f"\n### {case.name}: exit {code} in {seconds:.1f} s\n{err.strip()}")
    assert code == case.code, (out, err)
    for m in case.messages:
        assert m in err, (m, err)
    assert "Traceback" not in err + out
    assert_unharmed(before, scratch)
    if case.max_seconds:
        assert seconds < case.max_seconds, f"took {seconds:.1f} s"


def test_outputs_follow_the_umask(scratch, capsys):
    old = os.umask(0o027)
    try:
        code, _, err = run_cli(["humans", "import", scratch / "ratings.csv", "-s", scratch / "stimuli.parquet",
                                "--scale", "valence=1:9", "--scale", "arousal=1:9", "-o", scratch / "h.parquet"], capsys)
        assert code == 0, err
        code, _, err = run_cli(["analyze", scratch / "study" / "faults.yaml", "--out", scratch / "res", "-q"], capsys)
        assert code == 0, err
    finally:
        os.umask(old)
    assert (scratch / "h.parquet").stat().st_mode & 0o777 == 0o640
    assert (scratch / "res").stat().st_mode & 0o777 == 0o750
    for p in (scratch / "res").iterdir():
        assert p.stat().st_mode & 0o777 == 0o640, p
    code, _, err = run_cli(["humans", "import", scratch / "ratings.csv", "-s", scratch / "stimuli.parquet",
                            "--scale", "valence=1:9", "--scale", "arousal=1:9", "-o", scratch / "h2.parquet"], capsys)
    assert code == 0 and (scratch / "h2.parquet").stat().st_mode & 0o777 == 0o666 & ~old


def test_orphan_temps_are_removed_and_live_ones_kept(tmp_path):
    from emoalign.data.io import remove_orphan_temps, write_table

    dead = tmp_path / ".t.parquet.999999999-deadbeef.tmp"
    live = tmp_path / ".t.parquet.1-cafebabe.tmp"  # pid 1 always runs
    legacy_old, legacy_new = tmp_path / ".t.parquet.abc123xy.tmp", tmp_path / ".u.parquet.zz.tmp"
    for p in (dead, live, legacy_old, legacy_new):
        p.write_bytes(b"half")
    os.utime(legacy_old, (time.time() - 7200, time.time() - 7200))
    write_table(pd.DataFrame({"a": [1]}), tmp_path / "t.parquet")  # the next write of that file sweeps its temps
    assert not dead.exists() and not legacy_old.exists() and live.exists() and legacy_new.exists()
    assert remove_orphan_temps(tmp_path) == [] and live.exists() and legacy_new.exists()


def test_infer_error_rows_exit_3_and_name_the_images(scratch, capsys):
    stim = pd.read_parquet(scratch / "stimuli.parquet")
    (scratch / "images" / "broken.png").write_bytes(b"not a png")
    stim = pd.concat([stim, pd.DataFrame([{"image_id": "broken", "path": "images/broken.png", "emotion": "sad"}])])
    stim.to_parquet(scratch / "stimuli_broken.parquet", index=False)
    args = ["infer", "--rater", "fer:minixception", "--stimuli", scratch / "stimuli_broken.parquet", "--out",
            scratch / "runs", "--no-progress"]
    code, out, err = run_cli(args, capsys)
    assert code == 3 and "minixception: 1 of 13 images ended with an error row: broken (" in err
    assert "--retry-errors" in err and "13 images, 1 errors" in out
    (scratch / "images" / "broken.png").write_bytes((scratch / "images" / Path(stim["path"].iloc[0]).name).read_bytes())
    code, out, err = run_cli(args + ["--retry-errors"], capsys)
    assert code == 0 and "13 images, 0 errors" in out, err


def test_device_checks_on_a_cuda_build_with_one_gpu(monkeypatch):
    """The CUDA branches of --device without a GPU here: torch reports a CUDA build with one device."""
    import torch

    from emoalign.errors import EmoalignError
    from emoalign.raters.device import resolve_device

    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == "cuda:0" and resolve_device("auto") == "cuda" and resolve_device("CPU") == "cpu"
    with pytest.raises(EmoalignError, match=r"--device cuda:7: this machine has 1 CUDA GPU\(s\) \(cuda:0..cuda:0\)"):
        resolve_device("cuda:7")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CUDA build on a machine without a driver
    with pytest.raises(EmoalignError, match="no CUDA GPU is visible"):
        resolve_device("cuda")
