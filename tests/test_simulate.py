"""Simulated study: exact design, determinism, real PNG faces, and human/machine statistics computed
here with independent code (the ``krippendorff`` package, numpy/pandas) against the profile targets.

Tolerances: statistics that are calibrated in expectation are compared within 3.5 standard errors
computed from the simulated data itself (plus a small slack); design counts are exact.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys

import krippendorff
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from emoalign.data.io import read_table
from emoalign.errors import EmoalignError
from emoalign.simulate import load_profile, simulate_study

EMOTIONS = ["angry", "disgust", "fear", "happy", "sad", "neutral"]


@pytest.fixture(scope="module")
def paper(tmp_path_factory):
    """The full paper profile without images (about a second)."""
    out = tmp_path_factory.mktemp("paper")
    res = simulate_study(out, "paper", seed=11, images=False)
    st = read_table(res.stimuli, "stimuli")
    hu = read_table(res.humans, "humans").merge(st[["image_id", "emotion", "race", "gender"]], on="image_id")
    ma = read_table(res.machines, "machines")
    return res, st, hu, ma


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("small")
    return simulate_study(out, "small", seed=5)


def _machine_frame(st, hu, ma):
    him = hu.groupby("image_id")[["valence", "arousal"]].mean().add_suffix("_h")
    m = ma.merge(st[["image_id", "emotion", "race", "gender"]].rename(columns={"emotion": "true"}), on="image_id")
    return m.join(him, on="image_id")


# ----------------------------------------------------------------------------------------------- design


def test_paper_design_counts(paper):
    res, st, hu, ma = paper
    assert len(st) == 1440 and st["image_id"].is_unique
    cells = st.groupby(["race", "gender", "emotion"]).size()
    assert len(cells) == 36 and (cells == 40).all()
    assert sorted(st["race"].unique()) == ["Black", "Caucasian", "Korean"]
    assert sorted(st["identity_id"].unique())[:2] == ["01", "02"] and st["identity_id"].nunique() == 40
    row = st.iloc[0]
    assert row["image_id"] == f"{row['race']}_{row['gender']}_{row['identity_id']}_{row['emotion']}"
    assert (st["path"] == "images/" + st["image_id"] + ".png").all()
    assert len(hu) == 72_000 and hu["rater_id"].nunique() == 1000
    assert (hu.groupby("rater_id").size() == 72).all()
    assert (hu.groupby("image_id").size() == 50).all()
    assert not hu.duplicated(["rater_id", "image_id"]).any()
    assert set(hu["rater_gender"]) == {"female", "male"} and (hu.drop_duplicates("rater_id")["rater_gender"].value_counts() == 500).all()
    for dim in ("valence", "arousal", "naturalness"):
        assert hu[dim].between(1, 9).all() and (hu[dim] == hu[dim].round()).all()
    cf = ma["image_id"].str.startswith("content_free_")          # blank inputs of the raters with a label prior
    assert set(ma.loc[cf, "rater"]) == {"gemma3", "llama32v"} and cf.sum() == 2 * 3
    ma = ma[~cf]
    assert len(ma) == 7 * 1440
    assert set(ma["rater"]) == {"gemma3", "llama32v", "posterv2", "mobilevit", "efficientnet_va", "beit", "emonet"}
    assert ma["simulated"].all() and (ma["backend"] == "simulated").all()
    assert (ma["model_id"] == "simulated:paper/" + ma["rater"]).all()
    assert ma.loc[ma["rater"].isin(["posterv2", "beit"]), ["valence", "arousal"]].isna().all().all()
    assert ma.loc[~ma["rater"].isin(["posterv2", "beit"]), ["valence", "arousal"]].notna().all().all()
    assert res.summary["ratings_per_image"] == {"min": 50, "median": 50.0, "max": 50}


def test_small_profile_design_and_files(small):
    st = read_table(small.stimuli, "stimuli")
    hu = read_table(small.humans, "humans")
    assert len(st) == 144 and hu["rater_id"].nunique() == 120 and len(hu) == 120 * 24
    assert (hu.groupby("image_id").size() == 20).all()
    manifest = json.loads((small.out_dir / "runs" / "simulated" / "manifest.json").read_text())
    assert manifest["simulated"] is True and manifest["profile"] == "small"
    assert json.loads((small.out_dir / "simulation.json").read_text())["summary"]["images"] == 144


# ----------------------------------------------------------------------------------------------- images


def test_images_are_valid_pngs_with_distinct_expressions(small):
    st = read_table(small.stimuli, "stimuli")
    pix = {}
    for rec in st.to_dict("records"):
        data = (small.out_dir / rec["path"]).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n"
        assert hashlib.sha256(data).hexdigest() == rec["sha256"]
        with Image.open(io.BytesIO(data)) as im:
            im.verify()
        with Image.open(io.BytesIO(data)) as im:
            assert im.size == (96, 96)
            pix[rec["image_id"]] = np.asarray(im.convert("L"), dtype=float)
    one = [pix[f"Korean_female_02_{e}"] for e in EMOTIONS]
    diffs = [np.abs(a - b).mean() for i, a in enumerate(one) for b in one[i + 1:]]
    assert min(diffs) > 1.0                                        # every pair of expressions differs visibly
    # expression changes the face less than identity does (same person stays recognisable)
    other = pix["Black_male_03_neutral"]
    assert np.abs(pix["Korean_female_02_neutral"] - other).mean() > 1.0
    assert len({hashlib.sha256(p.tobytes()).hexdigest() for p in pix.values()}) == 144


# ----------------------------------------------------------------------------------------------- determinism


def test_deterministic_given_seed(small, tmp_path):
    again = simulate_study(tmp_path / "b", "small", seed=5)
    for attr, contract in (("stimuli", "stimuli"), ("humans", "humans"), ("machines", "machines")):
        a = read_table(getattr(small, attr), contract).drop(columns=["timestamp"], errors="ignore")
        b = read_table(getattr(again, attr), contract).drop(columns=["timestamp"], errors="ignore")
        pd.testing.assert_frame_equal(a, b)
    other = simulate_study(tmp_path / "c", "small", seed=6, images=False)
    assert not read_table(other.humans)["valence"].equals(read_table(small.humans)["valence"])


def test_refuses_to_overwrite_without_force(small, tmp_path):
    with pytest.raises(EmoalignError, match="already holds a study"):
        simulate_study(small.out_dir, "small", seed=5, images=False)
    res = simulate_study(tmp_path / "x", "small", images=False)
    res2 = simulate_study(tmp_path / "x", "small", seed=9, images=False, force=True)
    assert res2.profile["seed"] == 9 and not (tmp_path / "x" / "images").exists()


# ----------------------------------------------------------------------------------------------- humans


def test_human_reliability_matches_paper(paper):
    """Krippendorff ordinal alpha (independent package) ~ .471 / .125 / .126 (§3.2)."""
    _, _, hu, _ = paper
    targets = {"valence": 0.471, "arousal": 0.125, "naturalness": 0.126}
    for dim, target in targets.items():
        mat = hu.pivot(index="rater_id", columns="image_id", values=dim).to_numpy()
        alpha = krippendorff.alpha(reliability_data=mat, level_of_measurement="ordinal", value_domain=list(range(1, 10)))
        assert alpha == pytest.approx(target, abs=0.015), dim


def test_human_means_and_sds_match_profile(paper):
    res, _, hu, _ = paper
    dims = res.profile["humans"]["dimensions"]
    for dim, spec in dims.items():
        g = hu.groupby("emotion")[dim]
        img_means = hu.groupby(["emotion", "image_id"])[dim].mean()
        for e in EMOTIONS:
            # SE of an emotion mean: image means vary (SD/sqrt(240)) and raters are shared (rater_sd/sqrt(1000))
            se = np.sqrt(img_means[e].var() / 240 + spec["rater_sd"] ** 2 / 1000)
            assert g.mean()[e] == pytest.approx(spec["means"][e], abs=3.5 * se + 0.01), (dim, e)
            tsd = spec["trial_sd"][e] if isinstance(spec["trial_sd"], dict) else spec["trial_sd"]
            assert g.std()[e] == pytest.approx(tsd, abs=0.05), (dim, e)
    im = hu.groupby("image_id")[["valence", "arousal"]].mean()
    assert hu["valence"].mean() == pytest.approx(4.60, abs=0.06) and im["valence"].std() == pytest.approx(1.42, abs=0.05)
    assert hu["arousal"].mean() == pytest.approx(5.61, abs=0.06) and im["arousal"].std() == pytest.approx(0.60, abs=0.05)
    happy = hu.loc[hu["emotion"] == "happy", "arousal"].mean()
    assert happy == pytest.approx(6.48, abs=0.08)
    nat = hu.groupby("emotion")["naturalness"].mean()
    assert nat.idxmin() == "fear" and nat.idxmax() == "happy"


def test_rater_variance_dominates_image_variance(paper):
    """Method-of-moments variance components (crossed design, emotion as fixed effect), §3.2."""
    _, _, hu, _ = paper
    for dim, sr2, ratio, lo, hi in (("valence", 0.450, 11, 6, 20), ("arousal", 0.696, 32, 15, 80)):
        dev = hu[dim] - hu.groupby("image_id")[dim].transform("mean")
        within = hu.assign(d=dev).groupby("image_id")["d"].var().mean()          # within-image variance
        rater = hu.assign(d=dev).groupby("rater_id")["d"].mean().var() * 50 / 49 - within / 72
        img_means = hu.groupby(["emotion", "image_id"])[dim].mean()
        image = img_means.groupby(level=0).var().mean() - within / 50
        assert rater == pytest.approx(sr2, rel=0.15), dim
        assert lo < rater / image < hi, (dim, rater, image)


# ----------------------------------------------------------------------------------------------- machines


def test_machine_accuracy_and_dominant_confusions(paper):
    res, st, hu, ma = paper
    m = _machine_frame(st, hu, ma)
    raters = res.profile["machines"]["raters"]
    for name, prof in raters.items():
        g = m[m["rater"] == name]
        acc = (g["emotion"] == g["true"]).groupby(g["true"]).mean()
        for e in EMOTIONS:
            p = prof["confusion"][e].get(e, 0.0) if "confusion" in prof else prof["accuracy"][e]
            tol = 3.5 * np.sqrt(p * (1 - p) / 240) + 0.01
            assert acc[e] == pytest.approx(p, abs=tol), (name, e)
    gem = m[(m["rater"] == "gemma3") & (m["true"] == "sad")]
    assert (gem["emotion"] == "neutral").mean() == pytest.approx(0.711, abs=0.1)
    lla = m[(m["rater"] == "llama32v") & (m["true"] == "disgust")]
    assert (lla["emotion"] == "angry").mean() == pytest.approx(0.992, abs=0.03)
    # §4.5: Gemma3 angry accuracy Black >> Korean
    ang = m[(m["rater"] == "gemma3") & (m["true"] == "angry")]
    by_race = (ang["emotion"] == "angry").groupby(ang["race"]).mean()
    assert by_race["Black"] - by_race["Korean"] > 0.2
    overall = m.assign(ok=m["emotion"] == m["true"]).groupby("rater")["ok"].mean()
    assert overall["gemma3"] == pytest.approx(0.726, abs=0.04) and overall["llama32v"] == pytest.approx(0.613, abs=0.04)


def test_machine_emotion_biases_match_profile(paper):
    """Per-emotion bias = mean(machine - human image mean) over the emotion's images (Tables 4 and 6) equals the
    simulator's own expectation (the calibration report: calibrated targets for FER heads, the exact expectation
    of the prototype lookup for VLMs) within sampling error."""
    res, st, hu, ma = paper
    m = _machine_frame(st, hu, ma)
    cal = json.loads((res.out_dir / "runs" / "simulated" / "manifest.json").read_text())["calibration"]
    for name, prof in res.profile["machines"]["raters"].items():
        for dim in ("valence", "arousal"):
            if prof.get(dim) is None:
                continue
            g = m[m["rater"] == name]
            diff = (g[dim] - g[f"{dim}_h"]).groupby(g["true"])
            for e in EMOTIONS:
                se = diff.std()[e] / np.sqrt(240)
                expected = cal[name][dim][e]["expected_bias"]
                assert diff.mean()[e] == pytest.approx(expected, abs=3.5 * se + 0.03), (name, dim, e)


def test_vlm_prototype_lookup_depends_on_the_predicted_label(paper):
    """§5.1: a VLM's rating is a lookup of the label it read, not of the face: every image with the same intended
    emotion, predicted label and demographic cell has the same expected rating, and the values are few."""
    res, st, hu, ma = paper
    m = _machine_frame(st, hu, ma)
    for name in ("gemma3", "llama32v"):
        g = m[m["rater"] == name]
        for dim in ("valence", "arousal"):
            assert "prototypes" in res.profile["machines"]["raters"][name][dim]
            cells = g.groupby(["true", "emotion", "race", "gender"])[f"{dim}_expected"].nunique()
            assert (cells == 1).all(), (name, dim)
            # within an emotion, the per-image human effect does not move the machine (no per-image discrimination)
            within = g.groupby(["true", "emotion", "race", "gender"]).filter(lambda x: len(x) > 20)
            if len(within):
                r = np.corrcoef(within[dim] - within.groupby(["true", "emotion", "race", "gender"])[dim].transform("mean"),
                                within[f"{dim}_h"] - within.groupby(["true", "emotion", "race", "gender"])[f"{dim}_h"].transform("mean"))[0, 1]
                assert abs(r) < 0.1, (name, dim, r)
        # Table 7 / §4.4: a handful of values per emotion (the paper: 1-6), where humans use all 9. LLaMA's arousal
        # reaches 7-8 on the emotions where the paper's SDs (1.2-1.9) and its race effect (-1.2) spread the ratings
        assert g.groupby("true")["valence"].nunique().max() <= 7 and g.groupby("true")["valence"].nunique().mean() <= 5
        assert g.groupby("true")["arousal"].nunique().max() <= 8 and g.groupby("true")["arousal"].nunique().mean() <= 6.5


def test_demographic_effects_planted(paper):
    res, st, hu, ma = paper
    m = _machine_frame(st, hu, ma)

    def effect(rater, dim, factor, level, ref):
        g = m[m["rater"] == rater]
        d = g[dim] - g[f"{dim}_h"]
        a, b = d[g[factor] == level], d[g[factor] == ref]
        return a.mean() - b.mean(), np.sqrt(a.var() / len(a) + b.var() / len(b))

    for rater, dim, factor, level, ref, target in (
        ("gemma3", "valence", "gender", "female", "male", -0.332),
        ("gemma3", "arousal", "gender", "female", "male", 0.169),
        ("gemma3", "arousal", "race", "Korean", "Caucasian", -0.399),
        ("llama32v", "valence", "race", "Korean", "Caucasian", 0.319),
        ("llama32v", "arousal", "race", "Korean", "Caucasian", -1.204),
        ("llama32v", "arousal", "race", "Black", "Caucasian", 0.50),
        ("llama32v", "arousal", "gender", "female", "male", -0.465),
    ):
        est, se = effect(rater, dim, factor, level, ref)
        assert est == pytest.approx(target, abs=3.5 * se + 0.02), (rater, dim, factor, level, est)
    est, se = effect("gemma3", "valence", "race", "Korean", "Caucasian")   # not planted: null
    assert abs(est) < 3.5 * se + 0.02


def test_vlm_context_carry_stereotypes_and_probabilities(paper):
    res, st, hu, ma = paper
    m = _machine_frame(st, hu, ma)
    gem = m[(m["rater"] == "gemma3") & (m["true"] == "sad")]
    # error propagation: sad faces called neutral get the (higher) neutral valence prototype
    assert gem.loc[gem["emotion"] == "neutral", "valence"].mean() > gem.loc[gem["emotion"] == "sad", "valence"].mean() + 0.7
    for name in ("gemma3", "llama32v"):
        g = m[m["rater"] == name]
        assert (g["valence"] == g["valence"].round()).all()
        assert g.groupby("true")["valence"].nunique().max() <= 7           # stereotyped responding (Table 7)
        # valence_expected is the mean of the token draw: the draws scatter around it without bias
        d = g["valence"] - g["valence_expected"]
        assert g["valence_expected"].between(1, 9).all() and abs(d.mean()) < 3.5 * d.std() / np.sqrt(len(d))
        probs = g[[f"p_emotion_{e}" for e in EMOTIONS]].to_numpy()
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
        assert (np.array(EMOTIONS)[probs.argmax(axis=1)] == g["emotion"].to_numpy()).all()
    fer = m[m["rater"] == "mobilevit"]
    assert fer.groupby("true")["valence"].nunique().min() > 20                # continuous FER head
    human_sd = hu.groupby("emotion")["valence"].std()
    for name in ("gemma3", "llama32v"):                                       # dimensional collapse (Table 7)
        ratio = m[m["rater"] == name].groupby("true")["valence"].std() / human_sd
        # the sad row mixes prototypes (71% called neutral), so it may reach the human SD; the others stay far below
        assert (ratio < 1).sum() >= 5 and ratio.mean() < 0.6, ratio.round(2).to_dict()
    # strength inversion (Tables 3, 5): VLMs beat FER on arousal r, FER beat VLMs on valence r (MobileViT vs Gemma3)
    r = m.groupby("rater")[["valence", "valence_h", "arousal", "arousal_h"]].apply(
        lambda g: pd.Series({"v": np.corrcoef(g["valence"], g["valence_h"])[0, 1] if g["valence"].notna().all() else np.nan,
                             "a": np.corrcoef(g["arousal"], g["arousal_h"])[0, 1] if g["arousal"].notna().all() else np.nan}))
    assert r.loc["gemma3", "a"] > 0.6 and r.loc["emonet", "a"] < 0.3 and r.loc["mobilevit", "v"] > r.loc["gemma3", "v"]


def test_calibration_report_hits_targets(paper):
    """Calibrated targets (FER heads) are hit exactly in expectation; the fitted VLM prototypes reach most published
    per-emotion biases within the scorecard tolerance (0.15; the paper's own numbers conflict in a few places)."""
    res, *_ = paper
    cal = json.loads((res.out_dir / "runs" / "simulated" / "manifest.json").read_text())["calibration"]
    for name, rep in cal.items():
        prototype = res.profile["machines"]["raters"][name]["family"] == "vlm"
        for dim in ("valence", "arousal"):
            if dim not in rep:
                continue
            gaps = [abs(v["expected_bias"] - v["target_bias"]) for v in rep[dim].values()]
            if prototype:
                assert sum(g <= 0.15 for g in gaps) >= 5 and max(gaps) < 0.4, (name, dim, gaps)
            else:
                assert max(gaps) < 0.03, (name, dim, gaps)


# ----------------------------------------------------------------------------------------------- profiles


def test_overrides_plant_a_new_effect(tmp_path):
    over = {"machines": {"raters": {"gemma3": {"valence": {"effects": {"gender": {"female": -1.0}}}}}}}
    res = simulate_study(tmp_path, "small", seed=3, overrides=over, images=False)
    st, hu, ma = read_table(res.stimuli), read_table(res.humans), read_table(res.machines)
    hu = hu.merge(st[["image_id", "emotion"]], on="image_id")
    m = _machine_frame(st, hu, ma)
    g = m[m["rater"] == "gemma3"]
    d = g["valence"] - g["valence_h"]
    a, b = d[g["gender"] == "female"], d[g["gender"] == "male"]
    se = np.sqrt(a.var() / len(a) + b.var() / len(b))
    assert a.mean() - b.mean() == pytest.approx(-1.0, abs=3.5 * se + 0.02)


def test_planted_human_effects_recovered(tmp_path):
    """Actor and rater effects on the human side (e.g. for a power analysis of own-group bias)."""
    over = {"humans": {"dimensions": {"arousal": {"effects": {"race": {"Korean": -0.5}},
                                                  "rater_effects": {"gender": {"female": 0.4}}}},
                      "n_raters": 1200}}
    res = simulate_study(tmp_path, "small", seed=4, overrides=over, images=False)
    hu = read_table(res.humans).merge(read_table(res.stimuli)[["image_id", "race", "emotion"]], on="image_id")
    # within-emotion, within-rater contrasts via simple means (balanced design); SE from the trial SD
    kor = hu.loc[hu["race"] == "Korean", "arousal"].mean() - hu.loc[hu["race"] == "Caucasian", "arousal"].mean()
    fem = hu.loc[hu["rater_gender"] == "female", "arousal"].mean() - hu.loc[hu["rater_gender"] == "male", "arousal"].mean()
    n = len(hu)
    assert kor == pytest.approx(-0.5, abs=3.5 * 1.5 * np.sqrt(2 / (n / 3)) + 0.05)
    # the rater contrast's SE is dominated by rater intercepts (SD .834, 600 raters per gender)
    assert fem == pytest.approx(0.4, abs=3.5 * 0.9 * np.sqrt(2 / 600) + 0.03)


def test_profile_errors_name_the_key(tmp_path):
    with pytest.raises(EmoalignError, match="unknown simulation profile"):
        load_profile("nope")
    bad = {"machines": {"raters": {"gemma3": {"confusion": {"sad": {"sad": 0.5, "neutral": 0.2}}}}}}
    with pytest.raises(EmoalignError, match=r"machines\.raters\.gemma3\.confusion\.sad.*sum to 1"):
        load_profile("small", overrides=bad)
    with pytest.raises(EmoalignError, match=r"humans\.dimensions\.valence\.means\.happy"):
        load_profile("small", overrides={"humans": {"dimensions": {"valence": {"means": {"happy": 9.5}}}}})
    path = tmp_path / "mine.yaml"
    path.write_text("base: small\nname: mine\nhumans: {n_raters: 30, images_per_rater: 12}\n")
    prof = load_profile(path)
    assert prof["name"] == "mine" and prof["humans"]["n_raters"] == 30 and prof["design"]["identities"] == 4


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_help_smoke():
    out = subprocess.run([sys.executable, "-m", "emoalign", "simulate", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert "--profile" in out.stdout and "--no-images" in out.stdout and "--force" in out.stdout


def test_cli_writes_summary_and_refuses_overwrite(tmp_path, capsys):
    from emoalign.cli.main import main

    args = ["simulate", "--profile", "small", "-o", str(tmp_path / "s"), "--no-images", "-q", "--set", "humans.n_raters=60"]
    main(args)                                   # success returns normally (standalone_mode=False)
    text = capsys.readouterr().out
    assert "144 images" in text and "60 raters" in text and "time:" in text
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    assert "already holds a study" in capsys.readouterr().err


def test_real_fer_cnn_reads_the_expressions(small):
    """The built-in mini-Xception (FER2013 weights, an independent real model) labels the drawn faces far
    above chance (1/6): expressions are carried by the pixels, not only by the metadata."""
    torch = pytest.importorskip("torch")
    try:
        from emoalign.raters.fer.minixception import FER2013_CLASSES, load_minixception, preprocess_gray64
        model = load_minixception()
    except (ImportError, OSError, ValueError) as exc:  # FER piece or its weights absent
        pytest.skip(f"mini-Xception unavailable: {exc}")
    st = read_table(small.stimuli, "stimuli")
    images = [Image.open(small.out_dir / p) for p in st["path"]]
    with torch.no_grad():
        probs = model(preprocess_gray64(images)).numpy()
    pred = np.array(FER2013_CLASSES)[probs.argmax(axis=1)]
    acc = (pred == st["emotion"].to_numpy()).mean()
    assert acc > 0.3, acc
    assert len(set(pred)) >= 4


def test_removing_a_rater_leaves_the_others_unchanged(tmp_path):
    """Common random numbers across profile variants: each rater has its own stream."""
    a = read_table(simulate_study(tmp_path / "a", "small", seed=2, images=False).machines)
    b = read_table(simulate_study(tmp_path / "b", "small", seed=2, images=False,
                                  overrides={"machines": {"raters": {"beit": None}}}).machines)
    assert "beit" not in set(b["rater"])
    cols = ["image_id", "emotion", "valence", "arousal"]
    pd.testing.assert_frame_equal(a.loc[a["rater"] == "gemma3", cols].reset_index(drop=True),
                                  b.loc[b["rater"] == "gemma3", cols].reset_index(drop=True))


# ----------------------------------------------------------------------------------------------- scorecard


def test_default_seed_reproduces_the_published_tables(tmp_path):
    """The built-in profile, fitted by scripts/calibrate_profile.py, against the paper's published values: the
    scorecard of the analyses that need no R (Tables 1-5 and 7, §4.1-§4.2 classification and SD ratios) on the
    default seed. The full scorecard with the LMMs is printed by `scripts/calibrate_profile.py --verify`."""
    from emoalign.analysis.engine import run_spec
    from emoalign.replication import load_published, scorecard, summary
    from emoalign.report.results import Results
    from emoalign.resources import specs_dir

    simulate_study(tmp_path / "study", "paper", images=False)
    python_only = ["classification", "dimensional_agreement", "valence_bias", "arousal_bias", "response_diversity",
                   "naturalness"]
    run_spec(specs_dir() / "paper.yaml", tmp_path / "results", data_dir=tmp_path / "study", only=python_only)
    pub = load_published("tae2026")
    card = scorecard(Results.load(tmp_path / "results").table, pub)
    card = card[card["analysis"].isin(python_only) & ~((card["measure"] == "p"))]
    s = summary(card, pub.tables()).set_index("table")
    assert s.loc["All", "estimated"] == len(card) >= 200
    assert s.loc["All", "share_inside"] >= 0.9, s
    for t in ("Table 1", "Table 2", "Table 4"):
        assert s.loc[t, "share_inside"] >= 0.9, (t, s.loc[t])
