"""Human-rating import: every validation names row and column; summary numbers; atomic, no-overwrite writes."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from emoalign.data.io import read_metadata, read_table, write_table
from emoalign.errors import EmoalignError
from emoalign.humans.importer import import_humans, parse_scale, scales_from_spec
from cli_runner import run_cli  # noqa: E402

IDS = [f"img{i:02d}" for i in range(6)]
SCALES = {"valence": (1, 9), "arousal": (1, 9)}


@pytest.fixture
def stimuli(tmp_path):
    df = pd.DataFrame({"image_id": IDS, "path": [f"{i}.png" for i in IDS], "emotion": ["happy", "sad"] * 3,
                       "sha256": ["0" * 64] * 6})
    return write_table(df, tmp_path / "stimuli.parquet", "stimuli")


def _write(tmp_path, text, name="ratings.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def _clean_csv(tmp_path, seed=0, n_raters=5):
    rng = np.random.default_rng(seed)
    rows = [(f"r{r}", i, int(rng.integers(1, 10)), int(rng.integers(1, 10)), 20 + r) for r in range(n_raters) for i in IDS
            if not (r == 0 and i == "img05")]
    df = pd.DataFrame(rows, columns=["rater_id", "image_id", "valence", "arousal", "age"])
    df.to_csv(tmp_path / "ratings.csv", index=False)
    return tmp_path / "ratings.csv", df


def test_clean_import_values_and_summary(tmp_path, stimuli):
    csv, src = _clean_csv(tmp_path)
    df, rep = import_humans(csv, stimuli, SCALES)
    assert rep.ok and list(df.columns) == ["rater_id", "image_id", "valence", "arousal", "age"]
    assert df["valence"].dtype == float and df["age"].dtype.kind in "if"
    np.testing.assert_array_equal(df["valence"].to_numpy(), src["valence"].to_numpy(dtype=float))
    assert (rep.n_raters, rep.n_trials, rep.n_images_rated, rep.n_stimuli) == (5, 29, 6, 6)
    per_image = src.groupby("image_id").size()
    assert rep.ratings_per_image == {"min": per_image.min(), "median": per_image.median(), "max": per_image.max()} == \
        {"min": 4, "median": 5, "max": 5}
    stats = rep.dimension_stats.set_index("dimension")
    assert stats.loc["valence", "mean"] == pytest.approx(src["valence"].mean(), abs=1e-12)
    assert stats.loc["arousal", "sd"] == pytest.approx(np.std(src["arousal"], ddof=1), abs=1e-12)
    assert rep.attributes == ["age"]
    assert "29 trials from 5 raters on 6 of 6 images" in rep.summary()


def test_every_validation_is_collected_with_row_and_column(tmp_path, stimuli):
    csv = _write(tmp_path, "\n".join([
        "rater_id,image_id,valence,arousal",      # row 1
        "r1,img00,5,5",                            # row 2
        "r1,img99,5,5",                            # row 3: unknown image id
        "r1,img01,abc,5",                          # row 4: non-numeric
        "r1,img02,,4",                             # row 5: missing value
        "",                                        # row 6: blank line (skipped, numbering kept)
        "r2,img03,5,12",                           # row 7: out of scale
        "r2,img04,0.5,3",                          # row 8: out of scale (below)
        "r1,img00,6,6",                            # row 9: duplicate of row 2
        ",img05,3,3",                              # row 10: missing rater id
    ]) + "\n")
    with pytest.raises(EmoalignError) as info:
        import_humans(csv, stimuli, SCALES)
    rep = info.value.report
    assert rep.error_kinds() == {"unknown_image", "non_numeric", "missing_value", "out_of_scale", "duplicate_trial", "missing_id"}
    by = {p.kind: p.occurrences for p in rep.errors}
    assert by["unknown_image"] == ["row 3, column image_id: 'img99'"]
    assert by["non_numeric"] == ["row 4, column valence: 'abc'"]
    assert by["missing_value"] == ["row 5, column valence: empty"]
    assert by["out_of_scale"] == ["row 8, column valence: 0.5 not in [1, 9]", "row 7, column arousal: 12 not in [1, 9]"]
    assert by["duplicate_trial"] == ["rows 2, 9, columns rater_id/image_id: 'r1' rated 'img00' 2 times"]
    assert by["missing_id"] == ["row 10, column rater_id: empty"]
    msg = str(info.value)
    assert "7 problem(s) in 6 kind(s); nothing was written" in msg
    assert "rating outside its scale: 2 (row 8, column valence: 0.5 not in [1, 9], row 7, column arousal" in msg


def test_scales_are_not_hard_wired(tmp_path, stimuli):
    csv = _write(tmp_path, "rater_id,image_id,valence\nr1,img00,-3\nr1,img01,3\nr2,img00,7\n")
    with pytest.raises(EmoalignError) as info:
        import_humans(csv, stimuli, {"valence": (-3, 3)})
    assert [p.occurrences for p in info.value.report.errors] == [["row 4, column valence: 7 not in [-3, 3]"]]
    df, rep = import_humans(csv, stimuli, {"valence": (-3, 7)})
    assert list(df["valence"]) == [-3.0, 3.0, 7.0]


def test_dimension_without_scale_names_it_and_how_to_pass_one(tmp_path, stimuli):
    csv = _write(tmp_path, "rater_id,image_id,valence,arousal,dominance\nr1,img00,5,5,5\n")
    with pytest.raises(EmoalignError, match=r"(?s)arousal, dominance have no scale.*--scale arousal=1:9 --scale dominance=1:9"):
        import_humans(csv, stimuli, {"valence": (1, 9)})
    df, _ = import_humans(csv, stimuli, {"valence": (1, 9)}, drop=["arousal", "dominance"])
    assert list(df.columns) == ["rater_id", "image_id", "valence"]
    csv2 = _write(tmp_path, "rater_id,image_id,fun\nr1,img00,5\n", "r2.csv")
    with pytest.raises(EmoalignError, match="fun have no scale"):
        import_humans(csv2, stimuli, {}, dimensions=["fun"])
    with pytest.raises(EmoalignError, match="no rating column"):
        import_humans(csv2, stimuli, {})


def test_custom_columns_missing_allowed_and_emotion_labels(tmp_path, stimuli):
    csv = _write(tmp_path, "pid,stim,valence,emotion\np1,img00,NA,happy\np1,img01,4,sad\np2,img00,2,joy\n")
    with pytest.raises(EmoalignError, match=r"(?s)no rater column 'rater_id'.*--rater-col"):
        import_humans(csv, stimuli, {"valence": (1, 9)})
    with pytest.raises(EmoalignError) as info:
        import_humans(csv, stimuli, {"valence": (1, 9)}, rater_col="pid", image_col="stim", emotions=["happy", "sad"])
    by = {p.kind: p.occurrences for p in info.value.report.errors}
    assert by == {"missing_value": ["row 2, column valence: empty"], "bad_label": ["row 4, column emotion: 'joy'"]}
    df, rep = import_humans(csv, stimuli, {"valence": (1, 9)}, rater_col="pid", image_col="stim", allow_missing=True)
    assert df["valence"].isna().tolist() == [True, False, False] and list(df["emotion"]) == ["happy", "sad", "joy"]
    assert any("kept as missing" in w for w in rep.warnings)
    assert rep.dimension_stats.set_index("dimension").loc["valence", "n"] == 2
    clash = _write(tmp_path, "pid,rater_id,image_id,valence\np1,x,img00,3\n", "clash.csv")
    with pytest.raises(EmoalignError, match="already has a 'rater_id' column"):
        import_humans(clash, stimuli, {"valence": (1, 9)}, rater_col="pid")


def test_unknown_ids_that_look_like_filenames_get_a_hint(tmp_path, stimuli):
    csv = _write(tmp_path, "rater_id,image_id,valence\nr1,img00.png,5\nr1,img01.png,5\n")
    with pytest.raises(EmoalignError, match="look like file names"):
        import_humans(csv, stimuli, {"valence": (1, 9)})


def test_parse_scale_and_spec_scales():
    assert parse_scale("valence=1:9") == ("valence", (1.0, 9.0))
    assert parse_scale("valence=1,9") == ("valence", (1.0, 9.0))  # the comma form is accepted too
    assert parse_scale(" v =-3:3") == ("v", (-3.0, 3.0))
    for bad in ("valence", "valence=1-9", "valence=9:1", "=1:9"):
        with pytest.raises(EmoalignError, match="scale"):
            parse_scale(bad)
    assert scales_from_spec({"scales": {"valence": [1, 9], "arousal": {"min": 0, "max": 100}}}) == \
        {"valence": (1.0, 9.0), "arousal": (0.0, 100.0)}
    with pytest.raises(EmoalignError, match="study.scales.valence"):
        scales_from_spec({"scales": {"valence": [1]}})


def test_cli_import_writes_atomically_and_never_overwrites(tmp_path, stimuli, capsys):
    csv, _ = _clean_csv(tmp_path)
    out = tmp_path / "humans.parquet"
    spec = tmp_path / "spec.yaml"
    spec.write_text("study:\n  scales: {valence: [1, 9], arousal: [1, 9]}\n  emotions: [happy, sad]\n")
    code, so, err = run_cli(["humans", "import", csv, "--stimuli", stimuli, "-o", out, "--spec", spec], capsys)
    assert code == 0, err
    assert "29 trials from 5 raters" in so and "ratings per image: min 4, median 5, max 5" in so
    table = read_table(out, "humans")
    assert len(table) == 29 and read_metadata(out)["scales"] == {"valence": [1.0, 9.0], "arousal": [1.0, 9.0]}
    before = out.read_bytes()
    code, _, err = run_cli(["humans", "import", csv, "--stimuli", stimuli, "-o", out, "--spec", spec], capsys)
    assert code == 2 and "already exists" in err and "--force" in err
    assert out.read_bytes() == before
    # a failing import with --force leaves the old file intact and no temp files behind
    bad = _write(tmp_path, "rater_id,image_id,valence,arousal\nr1,img00,5,x\n", "bad.csv")
    code, _, err = run_cli(["humans", "import", bad, "-s", stimuli, "-o", out, "--scale", "valence=1:9",
                            "--scale", "arousal=1:9", "--force"], capsys)
    assert code == 2 and "row 2, column arousal: 'x'" in err and "Traceback" not in err
    assert out.read_bytes() == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    code, _, _ = run_cli(["humans", "import", csv, "-s", stimuli, "-o", out, "--scale", "valence=0:9",
                          "--scale", "arousal=1:9", "--force"], capsys)
    assert code == 0 and read_metadata(out)["scales"]["valence"] == [0.0, 9.0]


def test_cli_errors_name_file_row_and_column(tmp_path, stimuli, capsys):
    csv = _write(tmp_path, "rater_id,image_id,valence\nr1,img00,5\nr1,nope,11\n")
    code, _, err = run_cli(["humans", "import", csv, "-s", stimuli, "-o", tmp_path / "h.parquet", "--scale", "valence=1:9"], capsys)
    assert code == 2 and not (tmp_path / "h.parquet").exists()
    assert re.search(r"ratings\.csv: 2 problem\(s\)", err)
    assert "row 3, column image_id: 'nope'" in err and "row 3, column valence: 11 not in [1, 9]" in err
    code, _, err = run_cli(["humans", "import", csv, "-s", stimuli, "-o", tmp_path / "h.parquet", "--scale", "valence"], capsys)
    assert code == 2 and "NAME=MIN:MAX" in err
    csv = _write(tmp_path, "rater_id,image_id,valence,valence\nr1,img00,5,5\n", "dup.csv")
    code, _, err = run_cli(["humans", "import", csv, "-s", stimuli, "-o", tmp_path / "h.parquet", "--scale", "valence=1:9"], capsys)
    assert code == 2 and "row 1 names column(s) valence more than once" in err
