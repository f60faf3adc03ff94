"""Write a complete simulated study (stimuli + images, human trials, machine ratings) from a profile.

Layout of ``out_dir``::

    stimuli.parquet                 STIMULI contract (path relative to out_dir: images/<image_id>.png)
    images/<image_id>.png           schematic faces ({race}_{gender}_{identity_id}_{emotion}.png)
    humans.parquet                  HUMANS contract: one row per trial (+ rater_gender, rater_age)
    runs/simulated/ratings.parquet  MACHINES contract: every simulated rater, simulated=True
    runs/simulated/manifest.json    run manifest (profile, seed, calibration)
    simulation.json                 the resolved profile, seed, counts and timings
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import platform
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import numpy as np

from emoalign import __version__
from emoalign.data.io import write_json_atomic, write_table
from emoalign.errors import EmoalignError
from emoalign.simulate.design import assign_images, rater_table, stimulus_grid
from emoalign.simulate.faces import render_images
from emoalign.simulate.humans import simulate_humans
from emoalign.simulate.machines import simulate_machines
from emoalign.simulate.profile import load_profile

OUTPUTS = ("stimuli.parquet", "humans.parquet", "runs/simulated/ratings.parquet", "simulation.json")


@dataclass(frozen=True)
class SimulatedStudy:
    """Paths of a written study and the resolved profile it came from."""

    out_dir: Path
    stimuli: Path
    humans: Path
    machines: Path
    profile: dict
    summary: dict


def _versions() -> str:
    import numpy
    import pandas
    import PIL

    return json.dumps({"emoalign": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
                       "pandas": pandas.__version__, "pillow": PIL.__version__}, sort_keys=True)


def simulate_study(out_dir, profile: str | Path | Mapping = "paper", *, seed: int | None = None,
                   overrides: Mapping | None = None, images: bool = True, force: bool = False,
                   progress: bool = False) -> SimulatedStudy:
    """Simulate a study from ``profile`` (name, YAML path or dict) into ``out_dir``.

    ``seed`` (default: the profile's ``seed``) fixes everything: the same profile and seed give
    identical tables and images. ``overrides`` deep-merge into the profile. ``images=False`` skips
    drawing (``sha256`` is then null). An existing study in ``out_dir`` is only replaced with ``force``.
    """
    t0 = time.perf_counter()
    prof = load_profile(profile, overrides)
    seed = int(prof.get("seed", 0) if seed is None else seed)
    prof["seed"] = seed
    out = Path(out_dir)
    existing = [p for p in OUTPUTS if (out / p).exists()] + (["images/"] if (out / "images").is_dir() else [])
    if existing and not force:
        raise EmoalignError(f"{out} already holds a study ({', '.join(existing)})",
                            hint="pass --force (force=True) to replace it, or choose another output folder")
    if force:
        for p in OUTPUTS:
            (out / p).unlink(missing_ok=True)
        for d in ("images", "runs/simulated"):
            if (out / d).is_dir():
                shutil.rmtree(out / d)
    out.mkdir(parents=True, exist_ok=True)
    ss = np.random.SeedSequence(seed)
    rng_design, rng_humans, rng_images = (np.random.default_rng(s) for s in ss.spawn(3))
    design, humans_cfg = prof["design"], prof["humans"]
    emotions = list(design["emotions"])
    timings = {}

    stim = stimulus_grid(design)
    raters = rater_table(humans_cfg, rng_design)
    assignment = assign_images(len(stim), len(raters), int(humans_cfg["images_per_rater"]), rng_design)
    trials, image_effects, models = simulate_humans(stim, raters, assignment, humans_cfg, emotions, rng_humans)
    timings["humans"] = time.perf_counter() - t0

    t1 = time.perf_counter()
    stim["path"] = "images/" + stim["image_id"] + ".png"
    if images:
        ref = image_effects.get("arousal", image_effects.get(next(iter(image_effects)), np.zeros(len(stim))))
        sd = float(np.std(ref)) or 1.0
        intensity = np.clip(1.0 + 0.25 * ref / sd + rng_images.normal(0, 0.08, len(stim)), 0.55, 1.45)
        blobs = render_images(stim, out / "images", seed, intensity, int(prof.get("image_size", 96)), progress=progress,
                              zoom=float(prof.get("image_zoom", 1.3)))
        stim["sha256"] = [hashlib.sha256(b).hexdigest() for b in blobs]
        stim["width"] = stim["height"] = int(prof.get("image_size", 96))
    else:
        stim["sha256"] = None
    timings["images"] = time.perf_counter() - t1

    t2 = time.perf_counter()
    machines, calibration = simulate_machines(stim, image_effects, prof, seed)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    pname = prof.get("name", "custom")
    phash = hashlib.sha256(json.dumps(prof, sort_keys=True, default=str).encode()).hexdigest()[:16]
    if len(machines):
        fam = machines["family"]
        machines = machines.assign(
            backend="simulated", model_id="simulated:" + pname + "/" + machines["rater"], model_revision=phash,
            strategy=(machines["strategy"] if "strategy" in machines
                      else np.where(fam == "vlm", "simulated_context_carry", "simulated_fer")),
            seed=seed, timestamp=now, versions=_versions(), simulated=True, run_id="simulated", error=None,
        )
    timings["machines"] = time.perf_counter() - t2

    stim_cols = ["image_id", "path", "emotion", "sha256", "race", "gender", "identity_id"] + (["width", "height"] if images else [])
    stim_out = stim[stim_cols]
    meta = {"simulated": True, "profile": pname, "profile_hash": phash, "seed": seed}
    stimuli_path = write_table(stim_out, out / "stimuli.parquet", "stimuli", force=True, metadata=meta)
    humans_path = write_table(trials, out / "humans.parquet", "humans", force=True, metadata=meta)
    run_dir = out / "runs" / "simulated"
    machines_path = write_table(machines, run_dir / "ratings.parquet", "machines", force=True, metadata=meta)
    per_image = trials.groupby("image_id").size()
    summary = {
        "images": int(len(stim)), "human_raters": int(len(raters)), "trials": int(len(trials)),
        "ratings_per_image": {"min": int(per_image.min()), "median": float(per_image.median()), "max": int(per_image.max())},
        "machine_raters": sorted(machines["rater"].unique().tolist()) if len(machines) else [],
        "machine_rows": int(len(machines)),
    }
    write_json_atomic(run_dir / "manifest.json", {
        "run_id": "simulated", "simulated": True, "status": "complete", "backend": "simulated", "profile": pname,
        "profile_hash": phash, "seed": seed, "finished": now, "n_images": int(len(stim)),
        "raters": [{"rater": r, "family": (prof["machines"]["raters"][r.split("@")[0]]["family"]), "model_id": f"simulated:{pname}/{r}",
                    "simulated": True} for r in summary["machine_raters"]],
        "calibration": calibration,
        "note": "simulated ratings from a YAML profile; not the output of any model",
    })
    timings["total"] = time.perf_counter() - t0
    summary["seconds"] = {k: round(v, 3) for k, v in timings.items()}
    latent = {d: {"mu": m.mu, "residual_sd": m.residual_sd} for d, m in models.items()}
    write_json_atomic(out / "simulation.json", {"profile": prof, "seed": seed, "created": now, "summary": summary,
                                                "human_latent": latent, "versions": json.loads(_versions())})
    return SimulatedStudy(out, stimuli_path, humans_path, machines_path, prof, summary)
