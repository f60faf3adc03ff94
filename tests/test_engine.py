"""Engine: results + manifest per docs/results-contract.md, failure isolation, --only, CLI exit codes."""

import json

import pandas as pd
import pytest

from emoalign.analysis.engine import run_spec
from emoalign.data.io import read_metadata
from emoalign.errors import EmoalignError
from engine_study import SPEC, write_study

EXTRA = """\
  - id: bad_formula_r
    kind: lmm
    raters: [vlm]
    dimension: valence
    formula: rating ~ rater_type + log(emotion) + (1|image_id)
  - id: bad_column
    kind: lmm
    raters: [vlm]
    dimension: valence
    formula: rating ~ rater_type * emotoin + (1|image_id)
  - id: machines_alpha
    kind: reliability
    raters: [vlm, fer, human]
    dimension: valence
    method: both
    level: interval
    bootstrap: 100
"""


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    info = write_study(tmp_path_factory.mktemp("study"))
    (info["root"] / "mixed.yaml").write_text(SPEC + EXTRA)
    return info


@pytest.fixture(scope="module")
def run_mixed(study, tmp_path_factory):
    out = tmp_path_factory.mktemp("results")
    return run_spec(study["root"] / "mixed.yaml", out), out


def test_failure_isolated_others_written(run_mixed):
    report, out = run_mixed
    status = {o.id: o.status for o in report.outcomes}
    assert status == {"human_ceiling": "ok", "valence_emotion_lmm": "ok", "bad_formula_r": "failed",
                      "bad_column": "failed", "machines_alpha": "ok"}
    assert not report.ok
    errors = {o.id: o.error for o in report.outcomes}
    assert "spec check failed" in errors["bad_column"] and "did you mean 'emotion'" in errors["bad_column"]
    assert "mixed.yaml:" in errors["bad_column"]
    assert "R error in fit_lmm()" in errors["bad_formula_r"] and "factor" in errors["bad_formula_r"]
    assert not (out / "bad_column.parquet").exists()
    t = pd.read_parquet(out / "machines_alpha.parquet")
    assert (t["analysis_id"] == "machines_alpha").all()
    assert set(t["metric"]) == {"krippendorff_alpha", "icc_1", "icc_a1", "icc_c1", "icc_k", "icc_ak", "icc_ck"}
    assert set(t["raters"]) == {"fer_a,gemma3,human"}
    md = read_metadata(out / "human_ceiling.parquet")
    assert md["kind"] == "reliability" and md["options"]["level"] == "ordinal"


def test_manifest_contents(run_mixed, study):
    report, out = run_mixed
    m = json.loads((out / "manifest.json").read_text())
    assert set(m) >= {"spec", "inputs", "versions", "started", "finished", "seconds", "study", "raters", "analyses"}
    assert len(m["spec"]["sha256"]) == 64 and m["spec"]["path"].endswith("mixed.yaml")
    assert len(m["inputs"]) == 4 and all(len(h) == 64 for h in m["inputs"].values())
    v = m["versions"]
    assert v["packages"]["krippendorff"] and v["python"] and v["R"].startswith("R version")
    assert v["R_packages"]["lme4"] and v["R_packages"]["lmerTest"] and "irr" in v["R_packages"]
    s = m["study"]
    assert s["n_images"] == study["n_images"] and s["n_trials"] == study["n_trials"] and s["n_human_raters"] == 60
    assert s["trials_per_image"]["min"] <= s["trials_per_image"]["median"] <= s["trials_per_image"]["max"]
    assert sum(c["n"] for c in s["cells"]) == study["n_images"] and set(s["cells"][0]) == {"race", "gender", "emotion", "n"}
    assert s["groups"] == {"vlm": ["gemma3"], "fer": ["fer_a"]}
    raters = {r["rater"]: r for r in m["raters"]}
    assert raters["gemma3"]["family"] == "vlm" and raters["gemma3"]["simulated"] is True
    assert raters["fer_a"]["model_id"] == "sim/fer_a" and raters["fer_a"]["n"] == study["n_images"]
    a = {e["id"]: e for e in m["analyses"]}
    assert a["human_ceiling"]["file"] == "human_ceiling.parquet" and a["human_ceiling"]["rows"] == 2
    assert a["bad_column"]["status"] == "failed" and a["bad_column"]["file"] is None
    assert all(e["seconds"] >= 0 for e in m["analyses"])
    assert a["valence_emotion_lmm"]["kind"] == "lmm" and a["valence_emotion_lmm"]["error"] is None


def test_only_reruns_and_keeps_other_entries(run_mixed, study):
    report, out = run_mixed
    before = (out / "valence_emotion_lmm.parquet").stat().st_mtime_ns
    r2 = run_spec(study["root"] / "mixed.yaml", out, only=["human_ceiling"])
    assert [o.id for o in r2.outcomes] == ["human_ceiling"] and r2.ok
    m = json.loads((out / "manifest.json").read_text())
    assert [e["id"] for e in m["analyses"]] == ["human_ceiling", "valence_emotion_lmm", "bad_formula_r",
                                                 "bad_column", "machines_alpha"]
    assert (out / "valence_emotion_lmm.parquet").stat().st_mtime_ns == before
    with pytest.raises(EmoalignError, match="did you mean 'human_ceiling'"):
        run_spec(study["root"] / "mixed.yaml", out, only=["human_celing"])
    with pytest.raises(EmoalignError, match="--force"):
        run_spec(study["root"] / "mixed.yaml", out)


def test_cli_exit_codes_and_data_dir(study, tmp_path):
    from emoalign.cli.main import main

    spec = tmp_path / "elsewhere.yaml"
    spec.write_text(SPEC.replace("bootstrap: 200", "bootstrap: 50"))
    # paths resolve against --data, not the spec's folder; success returns normally (exit 0)
    main(["analyze", str(spec), "--data", str(study["root"]), "--out", str(tmp_path / "r1"), "-q"])
    assert (tmp_path / "r1" / "valence_emotion_lmm.parquet").exists()
    with pytest.raises(SystemExit) as ei:
        main(["analyze", str(study["root"] / "mixed.yaml"), "--out", str(tmp_path / "r2"), "-q",
              "--only", "bad_column", "--only", "human_ceiling"])
    assert ei.value.code == 1
    with pytest.raises(SystemExit) as ei:  # missing data: user error, exit 2, no traceback
        main(["analyze", str(spec), "--out", str(tmp_path / "r3")])
    assert ei.value.code == 2
