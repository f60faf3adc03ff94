"""A paper-calibrated simulated study: stimuli (schematic face PNGs), human trials, machine raters.

    from emoalign.simulate import simulate_study, load_profile
    res = simulate_study("study/", profile="paper", seed=1)   # res.stimuli, res.humans, res.machines

Every parameter lives in a YAML profile (``profiles/paper.yaml`` documents the keys); plant your
own effects with ``overrides`` and repeat simulate -> analyze for a power analysis::

    plant = {"machines": {"raters": {"gemma3": {"valence": {"effects": {"gender": {"female": -0.2}}}}}}}
    hits = 0
    for seed in range(200):
        simulate_study(f"sim/{seed}", "paper", seed=seed, overrides=plant, images=False)
        # emoalign analyze my_spec.yaml --data sim/<seed> --out res/<seed>; read the LMM term's p_value
        ...

The machine profiles are calibrated in expectation (fixed ``calibration_seed``), so repeated seeds
show honest sampling variability around the planted values.
"""

from emoalign.simulate.profile import builtin_profiles, deep_merge, load_profile
from emoalign.simulate.study import SimulatedStudy, simulate_study

__all__ = ["simulate_study", "load_profile", "builtin_profiles", "deep_merge", "SimulatedStudy"]
