"""``emoalign simulate``: write a simulated study from a YAML profile."""

from __future__ import annotations

from pathlib import Path

import click

from emoalign.errors import EmoalignError


def parse_set(items: tuple[str, ...]) -> dict:
    """``("a.b.c=1.5", "x=[1, 2]")`` -> nested override dict (values parsed as YAML)."""
    import yaml

    out: dict = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise EmoalignError(f"--set {item!r} is not KEY=VALUE", hint='e.g. --set machines.raters.gemma3.valence.effects.gender.female=-0.6')
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise EmoalignError(f"--set {item!r}: the value is not valid YAML ({exc})", hint="quote strings, e.g. KEY='[1, 2]'") from exc
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise EmoalignError(f"--set {item!r} conflicts with another --set on {part!r}", hint="set each key once")
        node[parts[-1]] = value
    return out


#: profile mappings whose keys are a fixed vocabulary (``*``: any key); elsewhere keys are data (raters, labels, levels)
SCHEMA_PATHS = ("", "design", "humans", "humans.rater_attributes", "humans.dimensions.*", "machines",
                "machines.raters.*", "machines.raters.*.valence", "machines.raters.*.arousal")
#: documented optional keys no built-in profile uses
OPTIONAL_KEYS = {"": {"base"}, "humans.dimensions.*": {"effects", "rater_effects"},
                 "machines.raters.*": {"confusion", "accuracy", "accuracy_by", "conditions"},
                 "machines.raters.*.valence": {"effects"}, "machines.raters.*.arousal": {"effects"}}


def _matches(pattern: str, path: tuple) -> bool:
    parts = pattern.split(".") if pattern else []
    return len(parts) == len(path) and all(p in ("*", str(q)) for p, q in zip(parts, path))


def check_set_keys(profile, overrides: dict) -> None:
    """Refuse a --set key the profile does not know (a typo would silently simulate the unchanged study).

    Keys of the fixed-vocabulary mappings (:data:`SCHEMA_PATHS`) must be ones the chosen or a
    built-in profile uses; keys naming raters, labels or levels may be new.
    """
    from collections.abc import Mapping

    from emoalign.simulate.profile import builtin_profiles, load_profile
    from emoalign.errors import did_you_mean

    known: dict[str, set] = {p: set(OPTIONAL_KEYS.get(p, ())) for p in SCHEMA_PATHS}

    def collect(node, path: tuple) -> None:
        if not isinstance(node, Mapping):
            return
        for pat in SCHEMA_PATHS:
            if _matches(pat, path):
                known[pat] |= {str(k) for k in node}
        for k, v in node.items():
            collect(v, path + (k,))

    for prof in dict.fromkeys([profile, *builtin_profiles()]):
        collect(load_profile(prof), ())
    known[""].discard("source")

    def walk(node, path: tuple) -> None:
        for key, value in node.items():
            pat = next((p for p in SCHEMA_PATHS if _matches(p, path)), None)
            if pat is not None and str(key) not in known[pat]:
                dotted = ".".join(map(str, (*path, key)))
                raise EmoalignError(f"--set {dotted}: the profile has no key {key!r}"
                                    + (f" under {'.'.join(map(str, path))!r}" if path else "")
                                    + did_you_mean(key, sorted(known[pat])),
                                    hint=f"keys there: {', '.join(sorted(known[pat]))} (documented at the top of "
                                         "profiles/paper.yaml)")
            if isinstance(value, dict):
                walk(value, path + (key,))

    walk(overrides, ())


@click.command(context_settings={"max_content_width": 100})
@click.option("--profile", "-p", default="paper", show_default=True,
              help="Built-in profile (paper: 1,440 images / 1,000 raters; small: 144 images / 120 raters) or a YAML path.")
@click.option("--out", "-o", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path), help="Study folder to write.")
@click.option("--seed", type=int, default=None, help="Random seed (default: the profile's). Same profile + seed = identical study.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a profile key (dotted path, YAML value); repeatable. "
                   "e.g. --set machines.raters.gemma3.valence.effects.gender.female=-0.6")
@click.option("--no-images", is_flag=True, help="Skip drawing the PNG faces (tables only; sha256 left empty).")
@click.option("--force", is_flag=True, help="Replace a study already in --out.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def simulate(profile, out_dir, seed, sets, no_images, force, quiet):
    """Write a simulated study (stimuli + face images, human trials, machine ratings) from a YAML profile.

    The built-in `paper` profile reproduces the design and statistics of Tae et al. (2026); copy it (or
    use --set) to plant your own effects, then analyze, and repeat over seeds for a power analysis.
    Simulated machine rows are flagged simulated=True, backend "simulated".

    \b
    Writes into --out:
      stimuli.parquet, images/<race>_<gender>_<identity>_<emotion>.png
      humans.parquet                   (one row per rater x image trial)
      runs/simulated/ratings.parquet   (simulated VLM/FER raters; simulated=True)
      runs/simulated/manifest.json, simulation.json
    \b
    Examples:
      emoalign simulate --profile paper -o study/
      emoalign simulate --profile small -o demo/ --seed 3 --no-images
      emoalign simulate -p my_plan.yaml -o sim/ --set humans.n_raters=300
    """
    import time

    from emoalign.data.io import ensure_writable_dir
    from emoalign.simulate import simulate_study

    t0 = time.perf_counter()
    overrides = parse_set(sets)
    if overrides:
        check_set_keys(profile, overrides)
    ensure_writable_dir(out_dir, "study folder -o")
    res = simulate_study(out_dir, profile, seed=seed, overrides=overrides or None, images=not no_images, force=force,
                         progress=not quiet)
    s = res.summary
    rpi = s["ratings_per_image"]
    click.echo(f"simulated study '{res.profile.get('name')}' (seed {res.profile['seed']}) -> {out_dir}")
    click.echo(f"  stimuli: {s['images']} images" + ("" if no_images else " (PNG faces in images/)"))
    click.echo(f"  humans:  {s['human_raters']} raters, {s['trials']} trials, ratings per image min/median/max "
               f"{rpi['min']}/{rpi['median']:g}/{rpi['max']}")
    click.echo(f"  machines: {len(s['machine_raters'])} simulated raters ({', '.join(s['machine_raters'])}), {s['machine_rows']} rows")
    click.echo(f"  time: {time.perf_counter() - t0:.1f} s (images {s['seconds']['images']:.1f} s)")
