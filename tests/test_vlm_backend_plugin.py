"""A VLM backend in one module: docs/architecture.md's example backend registered through the registry API
(``@vlm_backend``) and, undecorated, through an ``emoalign.backends`` entry point of a tiny distribution written
by the test, each run by `emoalign infer`;
the shared GenerateConfig refuses a flag the chosen backend does not take, naming the backends that do."""

import json
import re
import sys
from pathlib import Path

import pandas as pd
import pytest
from emoalign.errors import EmoalignError
from emoalign.registry import BACKENDS
from PIL import Image

DOCS = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def _docs_backend() -> str:
    """The one module of docs/architecture.md's "a VLM backend in one file" example."""
    text = DOCS.read_text()
    body = text.split("<!-- example: add-a-backend -->", 1)[1].split("<!-- /example -->", 1)[0]
    return body.split("```python\n", 1)[1].rsplit("```", 1)[0]


def _stimuli(folder):
    (folder / "img").mkdir(parents=True)
    rows = []
    for i, level in enumerate((230, 20)):
        Image.new("RGB", (24, 24), (level, level, level)).save(folder / "img" / f"{i}.png")
        rows.append({"image_id": f"im{i}", "path": f"img/{i}.png"})
    pd.DataFrame(rows).to_parquet(folder / "stimuli.parquet")
    return folder / "stimuli.parquet"


def _infer(args, capsys):
    from cli_runner import run_cli

    return run_cli(["infer", *map(str, args)], capsys)


def _check_run(run):
    df = pd.read_parquet(run / "ratings.parquet").set_index("image_id")
    assert df.loc["im0", "emotion"] == "happy" and df.loc["im1", "emotion"] == "sad"
    assert df.loc["im0", "valence"] == 1 + round(8 * 230 / 255) and df.loc["im1", "valence"] == 1 + round(8 * 20 / 255)
    assert (df["backend"] == "brightness").all() and (df["image_placement"] == "before").all()
    return json.loads((run / "manifest.json").read_text())


@pytest.fixture
def docs_module(tmp_path, monkeypatch):
    """The docs' backend as an importable module ``brightness_backend`` (registers itself on import)."""
    site = tmp_path / "docsite"
    site.mkdir()
    (site / "brightness_backend.py").write_text(_docs_backend())
    monkeypatch.syspath_prepend(str(site))
    yield site
    BACKENDS.remove("brightness")
    sys.modules.pop("brightness_backend", None)


def test_a_backend_registered_in_one_module_runs_through_infer(docs_module, tmp_path, capsys):
    import brightness_backend  # noqa: F401  (importing the one module registers it)
    from emoalign.raters.vlm.backends import backend_entry, list_backends

    assert list_backends()["brightness"] == "a stub that answers from the image's brightness (no model)"
    assert backend_entry("brightness").accepts() == ("image_placement", "device")
    stim = _stimuli(tmp_path / "study")
    code, out, err = _infer(["--rater", "brightness:brightness-v1", "--stimuli", stim, "--out", tmp_path / "runs",
                             "--image-placement", "before", "--device", "cpu", "--option", "threshold=100",
                             "--no-progress"], capsys)
    assert code == 0, out + err
    manifest = _check_run(tmp_path / "runs" / "brightness-v1")
    assert manifest["config"]["model_id"] == "brightness-v1" and manifest["config"]["device"] == "cpu"
    # a flag the backend does not take is refused before anything runs, naming the backends that take it
    code, out, err = _infer(["--rater", "brightness:brightness-v1", "--stimuli", stim, "--out", tmp_path / "runs2",
                             "--dtype", "bfloat16", "--no-progress"], capsys)
    assert code == 2 and "--dtype is not taken by the brightness backend" in err and "for the hf backend" in err, err
    assert not (tmp_path / "runs2" / "brightness-v1").exists()
    code, out, err = _infer(["--rater", "brightness:m", "--stimuli", stim, "--out", tmp_path / "runs2",
                             "--option", "concurrency=3", "--no-progress"], capsys)
    assert code == 2 and "--option concurrency=N is not taken by the brightness backend" in err and "openai" in err, err
    # an option of its own with the wrong type is caught from its constructor's hint
    code, out, err = _infer(["--rater", "brightness:m", "--stimuli", stim, "--out", tmp_path / "runs2",
                             "--option", "threshold=bright", "--no-progress"], capsys)
    assert code == 2 and "threshold" in err and "int" in err, err


def test_a_backend_from_an_entry_point_runs_through_infer(tmp_path, monkeypatch, capsys):
    """An installed distribution declares the class (here without the decorator) under ``emoalign.backends``."""
    site = tmp_path / "site"
    (site / "toy_vlm_plugin").mkdir(parents=True)
    (site / "toy_vlm_plugin" / "__init__.py").write_text("")
    (site / "toy_vlm_plugin" / "engine.py").write_text(re.sub(r"\n@vlm_backend\(.*\)\n", "\n", _docs_backend()))
    info = site / "toy_vlm_plugin-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: toy-vlm-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[emoalign.backends]\ntoy = toy_vlm_plugin.engine:BrightnessBackend\n")
    monkeypatch.syspath_prepend(str(site))
    BACKENDS.refresh()
    try:
        assert "toy" in BACKENDS and not BACKENDS.is_loaded("toy")  # declared, not imported yet
        assert BACKENDS.origin("toy") == "entry point 'toy' of toy-vlm-plugin"
        stim = _stimuli(tmp_path / "study")
        code, out, err = _infer(["--rater", "toy:bright", "--stimuli", stim, "--out", tmp_path / "runs",
                                 "--image-placement", "before", "--no-progress"], capsys)
        assert code == 0, out + err
        _check_run(tmp_path / "runs" / "bright")
        from emoalign.raters.vlm.backends import list_backends

        assert list_backends()["toy"] == "A stub that answers from the image's brightness (no model)."
    finally:
        BACKENDS.remove("toy")
        (info / "entry_points.txt").write_text("")
        BACKENDS.refresh()
        sys.modules.pop("toy_vlm_plugin.engine", None)
        sys.modules.pop("toy_vlm_plugin", None)


def test_a_class_without_the_backend_methods_is_refused():
    from emoalign.raters.vlm.backends import vlm_backend

    with pytest.raises(EmoalignError, match="VLM backend 'half' .* lacks ask, release"):
        @vlm_backend("half", description="no ask")
        class Half:
            def provenance(self):
                return {}
    assert "half" not in BACKENDS


def test_generate_config_fields_reach_only_the_backends_that_take_them():
    from emoalign.raters.vlm.backends import backend_entry, backend_kwargs
    from emoalign.raters.vlm.config import GenerateConfig

    assert backend_entry("hf").accepts() == ("image_placement", "dtype", "device", "fast", "revision")
    assert backend_entry("mlx").accepts() == ("image_placement", "fast", "revision")
    assert backend_entry("openai").accepts() == ("image_placement", "base_url", "api_key_env", "concurrency",
                                                 "top_logprobs")
    cfg = GenerateConfig.from_options({"max_prefix_images": 4}, dtype="float32", fast=False, max_new_tokens=7)
    assert backend_kwargs("hf", cfg) == {"dtype": "float32", "fast": False, "max_prefix_images": 4}
    assert cfg.max_new_tokens == 7 and cfg.batch_size is None
    with pytest.raises(EmoalignError, match="--dtype is not taken by the mlx backend") as e:
        backend_kwargs("mlx", cfg)
    assert "for the hf backend" in e.value.hint
    with pytest.raises(EmoalignError, match="--fast/--reference is not taken by the openai backend") as e:
        backend_kwargs("openai", GenerateConfig(fast=True, base_url="http://127.0.0.1:9/v1"))
    assert "for the hf and mlx backends" in e.value.hint
    with pytest.raises(EmoalignError, match="the openai backend needs --base-url") as e:
        backend_kwargs("openai", GenerateConfig())
    with pytest.raises(EmoalignError, match="contradicts --dtype"):
        GenerateConfig.from_options({"dtype": "float16"}, dtype="float32")
    assert GenerateConfig.from_options({"top_logprobs": 5}).top_logprobs == 5


def test_generate_config_docstring_example_runs():
    import doctest

    from emoalign.raters.vlm import config

    assert doctest.testmod(config).failed == 0
