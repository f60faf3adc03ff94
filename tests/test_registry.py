"""The one registry (emoalign/registry.py): duplicate names, lazy entries, discovery, and third-party plug-ins
registered through entry points of a tiny distribution written by the test (a kind that runs through
`analyze` end to end, and a FER model that rates an image)."""

import json
import textwrap

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emoalign.errors import EmoalignError
from emoalign.registry import FER_MODELS, KINDS, Registry
from engine_study import SPEC, write_study


def test_duplicate_names_lazy_entries_and_unknown_names():
    reg = Registry("widget")
    reg.add("a", 1, origin="pkg.one")
    reg.add("a", 2, origin="pkg.one")  # the same module registering again (a re-import) replaces
    assert reg.get("a") == 2
    with pytest.raises(EmoalignError, match="widget 'a' is registered twice: by pkg.one and by pkg.two"):
        reg.add("a", 3, origin="pkg.two")
    reg.add_lazy("join", "os.path:join", help="joins paths")
    assert not reg.is_loaded("join") and reg.meta("join") == {"help": "joins paths"}
    import os.path

    assert reg.get("join") is os.path.join and reg.is_loaded("join")
    reg.add_lazy("broken", "no_such_module_xyz:thing")
    with pytest.raises(EmoalignError, match="widget 'broken' .* cannot be loaded"):
        reg.get("broken")
    assert "broken" not in reg.entries() and "a" in reg.entries()
    with pytest.raises(EmoalignError, match="unknown widget 'jion' -- did you mean 'join'"):
        reg.get("jion")


def test_the_builtin_kinds_and_fer_models_are_found_without_a_list():
    kinds = KINDS.names()
    assert {"reliability", "lmm", "variance_components", "agreement", "calibration", "human_percentile"} <= set(kinds)
    for name in kinds:
        e = KINDS[name]
        assert e.name == name and e.description and not e.description.startswith("Fields every analysis has")
    assert KINDS["lmm"].check is not None and KINDS["variance_components"].check is not None
    with pytest.raises(EmoalignError, match="analysis kind 'lmm' is registered twice"):
        KINDS.add("lmm", KINDS["agreement"], origin="somebody.else")
    assert {"minixception", "hf", "hsemotion", "plugin"} <= set(FER_MODELS.names())


PLUGIN_KIND = '''
"""A third-party analysis kind: the mean rating per rater (an example plug-in written by the test)."""
from typing import Literal

import pandas as pd

from emoalign.analysis.kinds.base import AnalysisBase, KindResult, register, tidy


class MeanRatingOptions(AnalysisBase):
    """Mean rating of each rater over the images (a plug-in kind)."""

    kind: Literal["mean_rating"] = "mean_rating"


@register("mean_rating", MeanRatingOptions, compares="ratings_vs_human")
def run(opts, study, r=None):
    rows = []
    for dim in opts.dimensions():
        cf = study.comparison_frame(dim, [x for x in study.resolve_raters(opts.raters) if x != "human"])
        for rater, g in cf.groupby("rater", sort=True):
            rows.append({"rater": rater, "dimension": dim, "metric": "mean", "estimate": g["rating"].mean(),
                         "n": len(g)})
    return KindResult(tidy(pd.DataFrame(rows), ["rater", "dimension"]), info={"ci": "none"})
'''

PLUGIN_FER = '''
"""A third-party FER model: gives every face the same probabilities (an example plug-in written by the test)."""
import numpy as np

from emoalign.raters.fer.base import FERAdapter, FEROutput


class ConstantAdapter(FERAdapter):
    classes = ("anger", "happiness", "sadness", "neutral", "fear", "disgust")
    model_id = "example/constant"
    default_name = "constant"

    def preprocess(self, images):
        return np.zeros((len(images), 1))

    def forward(self, batch):
        p = np.tile(np.array([0.1, 0.5, 0.1, 0.1, 0.1, 0.1]), (len(batch), 1))
        return FEROutput(p)


def build_adapter(*, device="cpu"):
    return ConstantAdapter()
'''


@pytest.fixture
def plugin_distribution(tmp_path, monkeypatch):
    """An installed distribution `emoalign-plugin-demo` (a folder on sys.path with a .dist-info) declaring a kind
    and a FER model under the entry-point groups emoalign.kinds and emoalign.fer."""
    site = tmp_path / "site"
    pkg = site / "emoalign_plugin_demo"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "kinds.py").write_text(PLUGIN_KIND)
    (pkg / "fer.py").write_text(PLUGIN_FER)
    info = site / "emoalign_plugin_demo-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: emoalign-plugin-demo\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [emoalign.kinds]
        mean_rating = emoalign_plugin_demo.kinds:run

        [emoalign.fer]
        constant = emoalign_plugin_demo.fer:build_adapter
        """))
    monkeypatch.syspath_prepend(str(site))
    KINDS.refresh()
    FER_MODELS.refresh()
    yield site
    for reg, name in ((KINDS, "mean_rating"), (FER_MODELS, "constant")):
        reg.remove(name)
        reg.refresh()


def test_a_third_party_kind_from_an_entry_point_runs_through_analyze(plugin_distribution, tmp_path):
    from emoalign.analysis.engine import run_spec

    assert "mean_rating" in KINDS and not KINDS.is_loaded("mean_rating")  # declared, not imported yet
    assert KINDS.origin("mean_rating") == "entry point 'mean_rating' of emoalign-plugin-demo"
    info = write_study(tmp_path / "study", n_ids=6, n_raters=12, per_rater=12)
    spec = info["root"] / "plugin.yaml"
    spec.write_text(SPEC.split("analyses:")[0] + textwrap.dedent("""\
        analyses:
          - {id: means, kind: mean_rating, raters: [vlm, fer], dimension: valence}
          - {id: means_typo, kind: mean_ratng, raters: [vlm], dimension: valence}
        """))
    with pytest.raises(EmoalignError, match="unknown kind 'mean_ratng' -- did you mean 'mean_rating'"):
        run_spec(spec, tmp_path / "results")
    spec.write_text(spec.read_text().replace("  - {id: means_typo, kind: mean_ratng, raters: [vlm], dimension: valence}\n", ""))
    rep = run_spec(spec, tmp_path / "results")
    assert rep.ok, rep.outcomes
    table = pd.read_parquet(tmp_path / "results" / "means.parquet")
    machines = pd.concat([pd.read_parquet(p) for p in sorted((info["root"] / "runs").glob("*/ratings.parquet"))])
    expected = machines.groupby("rater")["valence"].mean()
    got = table.set_index("rater")["estimate"]
    np.testing.assert_allclose(got.loc[expected.index], expected.to_numpy(), rtol=1e-12)
    entry = json.loads((tmp_path / "results" / "manifest.json").read_text())["analyses"][0]
    assert entry["description"] == "Mean rating of each rater over the images (a plug-in kind)."


def test_a_plug_in_that_takes_a_builtin_name_is_an_error_naming_both(plugin_distribution):
    info = next(plugin_distribution.glob("*.dist-info"))
    (info / "entry_points.txt").write_text("[emoalign.kinds]\nlmm = emoalign_plugin_demo.kinds:run\n")
    KINDS.refresh()
    try:
        with pytest.raises(EmoalignError, match="analysis kind 'lmm' is registered twice: by "
                                                "emoalign.analysis.kinds.lmm and by entry point 'lmm' of emoalign-plugin-demo"):
            KINDS.names()   # every full listing (the spec model, schema, unknown names) reads the entry points
    finally:
        (info / "entry_points.txt").write_text("")
        KINDS.refresh()
        KINDS.names()


def test_a_builtin_fer_model_is_found_without_importing_the_others():
    """``fer:minixception`` imports raters/fer/minixception.py, not every FER module (a fresh interpreter)."""
    import subprocess
    import sys

    code = ("import sys; from emoalign.raters.fer import parse_fer_name; print(parse_fer_name('minixception'), "
            "'emoalign.raters.fer.hsemotion' in sys.modules, 'emoalign.raters.fer.example_plugin' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "('minixception', None) False False", out


def test_a_third_party_fer_model_from_an_entry_point_rates_faces(plugin_distribution, tmp_path):
    from emoalign.raters.fer import build_fer_rater, list_fer_models
    from emoalign.raters.runs import StimulusItem

    assert "constant" in list_fer_models()
    Image.fromarray(np.full((48, 48, 3), 128, dtype=np.uint8)).save(tmp_path / "face.png")
    rater = build_fer_rater("fer:constant", label_map={"anger": "angry", "happiness": "happy", "sadness": "sad"})
    row = rater.rate([StimulusItem("f1", tmp_path / "face.png")])[0]
    assert row["emotion"] == "happy" and row["p_emotion_happy"] == pytest.approx(0.5)


def test_the_registry_and_the_spec_import_no_stage():
    """registry.py imports nothing heavy; spec/ reaches the kinds only through the registry, not by importing
    analysis/ (a fresh interpreter, so modules other tests imported do not count)."""
    import subprocess
    import sys

    code = ("import sys, emoalign.registry; heavy = [m for m in ('numpy', 'pandas', 'pydantic', 'emoalign.analysis') "
            "if m in sys.modules]; import emoalign.spec.load, emoalign.spec.model; "
            "stages = [m for m in sys.modules if m.startswith(('emoalign.analysis', 'emoalign.report', 'emoalign.raters'))]; "
            "print(heavy, stages)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] []", out
