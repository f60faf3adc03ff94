"""``emoalign infer``: run a VLM (a registered backend: hf / mlx / openai / plug-ins) or a FER model over a stimulus
table into a resumable run folder ``OUT/<run_id>/`` (parts written as batches finish; ``ratings.parquet`` at the end).

The generation flags go into one :class:`~emoalign.raters.vlm.config.GenerateConfig`; each backend takes the fields
its constructor names (``raters/vlm/backends.py``), so no flag is mapped per backend here."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from emoalign.errors import EmoalignError


def _split_rater(spec: str) -> tuple[str, str]:
    kind, sep, model = spec.partition(":")
    if sep and model and kind == "fer":
        return kind, model
    from emoalign.raters.vlm.backends import BACKENDS

    if not sep or not model or kind not in BACKENDS:
        others = [f"{k}:<model>" for k in BACKENDS.names() if k not in ("hf", "mlx", "openai")]
        raise EmoalignError(f"--rater {spec!r} is not KIND:MODEL",
                            hint="use hf:<model id or dir>, mlx:<model>, openai:<served model>, "
                                 + "".join(f"{o}, " for o in others)
                                 + "or fer:<name>, e.g. mlx:mlx-community/gemma-3-4b-it-qat-4bit")
    return kind, model


def _default_name(kind: str, model: str) -> str:
    base = Path(model.rstrip("/")).name if kind != "fer" else model.split(":")[-1].rstrip("/").split("/")[-1]
    return base or model


def _parse_scale(values: tuple[str, ...]) -> dict:
    from emoalign.humans.importer import parse_scale

    return dict(parse_scale(v) for v in values)


def _parse_options(values: tuple[str, ...]) -> dict:
    import yaml

    out = {}
    for v in values:
        key, sep, raw = v.partition("=")
        if not sep or not key:
            raise EmoalignError(f"--option {v!r} is not KEY=VALUE", hint="e.g. --option max_prefix_images=16")
        try:
            out[key.replace("-", "_")] = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise EmoalignError(f"--option {v!r}: the value is not valid YAML ({exc})", hint="quote strings, e.g. KEY='[1, 2]'") from exc
    return out


#: options that count something and must be at least 1
POSITIVE_OPTIONS = ("batch_size", "concurrency", "max_prefix_images", "max_cached_images", "max_retries", "top_logprobs")


def _option_targets(kind: str, model: str) -> list:
    """The callables an --option reaches (their type hints say what each option must be)."""
    if kind == "fer":
        from emoalign.raters.fer import fer_builder
        from emoalign.raters.fer.base import FERRater

        return [fer_builder(model), FERRater.__init__]
    from emoalign.raters.vlm.backends import backend_class

    return [backend_class(kind).__init__]


def check_option_types(options: dict, targets) -> dict:
    """Validate each --option value against the type hint of the parameter it sets; return the converted values."""
    import inspect
    import typing

    from pydantic import TypeAdapter, ValidationError

    out = dict(options)
    for key, value in options.items():
        for fn in targets:
            try:
                hints = typing.get_type_hints(fn)
                params = inspect.signature(fn).parameters
            except Exception:  # unresolvable hints: the callee validates
                continue
            if key not in params or key not in hints:
                continue
            try:
                out[key] = TypeAdapter(hints[key]).validate_python(value)
            except ValidationError as exc:
                want = getattr(hints[key], "__name__", None) or str(hints[key]).replace("typing.", "")
                raise EmoalignError(f"--option {key}={value!r}: {exc.errors()[0]['msg'].lower()} ({key} is {want})",
                                    hint=f"e.g. --option {key}=" + ("8" if "int" in str(want) else "VALUE")) from None
            break
        if key in POSITIVE_OPTIONS and isinstance(out[key], (int, float)) and not isinstance(out[key], bool) and out[key] < 1:
            raise EmoalignError(f"--option {key}={value!r}: must be at least 1", hint=f"e.g. --option {key}=8")
    return out


def _preflight(kind: str, model: str, rater_spec: str, device: str, extra: dict, out: Path) -> None:
    """Checks that take seconds, run before minutes of model loading: device, option types, a writable
    --out, hub reachability."""
    from emoalign.data.io import ensure_writable_dir
    from emoalign.raters.hub import preflight

    entry = None
    if kind != "fer":
        from emoalign.raters.vlm.backends import backend_entry

        entry = backend_entry(kind)
    if kind == "fer" or "device" in entry.accepts():
        from emoalign.raters.device import resolve_device

        resolve_device(device, prefer_mps=kind == "fer")
    extra.update(check_option_types(extra, _option_targets(kind, model)))
    ensure_writable_dir(out, "runs folder --out")
    hub_model = model if entry is None or entry.hub_model else None
    if kind == "fer":
        from emoalign.raters.fer import parse_fer_name

        fer_kind, arg = parse_fer_name(model)
        hub_model = arg if fer_kind == "hf" and arg else None
    if hub_model:
        preflight(hub_model, rater=rater_spec, revision=extra.get("revision"))


def _study_settings(spec: Path | None) -> tuple[list[str] | None, dict]:
    """Emotion labels and valence/arousal scales from a spec's ``study`` block, read by the one study reader
    (:func:`emoalign.spec.load.read_study`; no other spec checks). Only what the block sets is returned."""
    if spec is None:
        return None, {}
    from emoalign.spec.load import read_study

    study = read_study(spec)
    given = study.model_fields_set
    scales = ({k: (float(lo), float(hi)) for k, (lo, hi) in study.scales.items() if k in ("valence", "arousal")}
              if "scales" in given else {})
    return (list(study.emotions) if "emotions" in given else None), scales


def _given_flags(**values) -> dict:
    """The flags among ``values`` the user gave (on the command line or through the environment), not the ones
    left at their defaults: a backend refuses a flag it does not take only when the user gave it."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    return {k: v for k, v in values.items()
            if ctx.get_parameter_source(k) not in (None, ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP)}


def _load_items(stimuli: Path, limit: int | None):
    from emoalign.data.io import read_table
    from emoalign.raters.runs import items_from_stimuli

    df = read_table(stimuli)
    missing = [c for c in ("image_id", "path") if c not in df.columns]
    if missing:
        raise EmoalignError(f"stimuli table {stimuli} lacks column(s) {', '.join(missing)}",
                            hint="build it with `emoalign stimuli scan`")
    if limit is not None:
        df = df.head(limit)
    return items_from_stimuli(df, stimuli.parent)


def _summary_lines(ratings: Path) -> list[str]:
    manifest = json.loads((ratings.parent / "manifest.json").read_text())
    s = manifest.get("summary", {})
    lines = [f"{manifest['rater']}: {s.get('images', 0)} images, {s.get('errors', 0)} errors -> {ratings}"]
    for step in ("emotion", "valence", "arousal"):
        counts = s.get(f"{step}_status")
        if counts:
            lines.append(f"  {step:<8} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if s.get("invalid_labels"):
        lines.append("  invalid labels: " + ", ".join(f"{k!r} x{v}" for k, v in s["invalid_labels"].items()))
    ips = manifest.get("images_per_second")
    lines.append(f"  {manifest.get('seconds', 0):.1f} s" + (f", {ips:.2f} images/s" if ips else " (nothing left to rate)"))
    return lines


def _probe_plan(kind: str, strategy: str, persona: str, lexicon, conditions_file, orders) -> dict:
    """The persona ``(name, text)`` and the conditions of ``--conditions`` (None without), checked before any
    model loads; persona, lexicon and plans apply to VLM raters only."""
    from emoalign.raters.vlm.prompts import resolve_persona

    if kind == "fer" and (persona != "none" or lexicon or conditions_file or strategy != "context_carry"):
        raise EmoalignError("--persona, --lexicon, --conditions and --strategy apply to VLM raters, not to fer:",
                            hint="drop them, or rate with a VLM (hf:, mlx:, openai:)")
    if conditions_file and orders:
        raise EmoalignError("--conditions and --orders both set", hint="put the label orders into the plan, "
                                                                       "e.g. reversed: {label_order: reversed}")
    if lexicon and strategy != "open_vocabulary" and not conditions_file:
        raise EmoalignError("--lexicon is only read by --strategy open_vocabulary",
                            hint="add --strategy open_vocabulary, or drop --lexicon")
    conditions = None
    if conditions_file:
        from emoalign.raters.vlm.plan import read_plan

        conditions = read_plan(conditions_file)
    return {"persona": resolve_persona(persona), "conditions": conditions}


@click.command()
@click.option("--rater", "rater_spec", required=True, metavar="KIND:MODEL",
              help="hf:<hub id or dir> (transformers), mlx:<hub id or dir> (mlx-vlm), openai:<served model> "
                   "(OpenAI-compatible server), or fer:<name> (e.g. fer:minixception).")
@click.option("--stimuli", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="stimuli.parquet (image_id, path, ...); relative paths resolve against its folder.")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Runs folder; the run goes to OUT/<run-id>/.")
@click.option("--name", help="Rater name in the output (the `rater` column). Default: the model's last path part.")
@click.option("--run-id", help="Run folder name under --out. Default: the rater name made file-safe.")
@click.option("--strategy", type=click.Choice(["context_carry", "independent", "integrated", "open_vocabulary"]),
              default="context_carry", show_default=True,
              help="Prompting strategy (context_carry = the paper's three steps; open_vocabulary = step 1 offers no "
                   "labels, the free word is mapped to the labels through the emotion lexicon).")
@click.option("--persona", default="none", show_default=True, metavar="NAME|TEXT",
              help="A persona put before every step: none, psychologist, layperson, or a sentence of your own "
                   "(recorded in the persona column and the template hash).")
@click.option("--lexicon", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="open_vocabulary: your emotion lexicon (YAML, labels: {label: [words]}) instead of the shipped one.")
@click.option("--conditions", "conditions_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Probe plan (YAML): one rater NAME@CONDITION per condition (strategy x label order x persona), "
                   "same model, same stimuli. See README, 'Probing prompt robustness'.")
@click.option("--label-order", type=click.Choice(["fixed", "reversed", "shuffle"]), default="fixed", show_default=True,
              help="Order of the labels in the emotion prompt (shuffle: seeded per image).")
@click.option("--orders", help="Comma-separated label orders to evaluate, one rater each named NAME@ORDER "
                               "(fixed keeps NAME), e.g. fixed,reversed,shuffle (label-order robustness probe).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the per-image label shuffle.")
@click.option("--spec", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Analysis spec whose study block gives the emotion labels and scales.")
@click.option("--labels", help="Comma-separated emotion labels in their fixed order (default: the spec's set, in the paper's "
                               "prompt order when it is the paper's six).")
@click.option("--scale", "scales", multiple=True, metavar="DIM=MIN:MAX", help="Rating scale, e.g. --scale valence=1:9 (default: the spec's, else 1-9).")
@click.option("--batch-size", type=click.IntRange(min=1), default=None,
              help="Images per batch (one part file each). Default per backend: hf 8 on a GPU, 4 on CPU (batched "
                   "answers equal batch-1 answers, tested; batch 4 rates >= 4x as fast as the paper's protocol "
                   "on the benchmark model); mlx 1 (it answers one image at a time); openai its "
                   "concurrency (4; one request per worker each step); FER the model's own (32).")
@click.option("--image-placement", type=click.Choice(["model", "before", "after"]), default="model", show_default=True,
              help="Where the image goes in the user turn: model = the model's own documented placement (before "
                   "the text for Gemma 3 and LLaMA-3.2-Vision); after = mlx-vlm's own prompt helper (what "
                   "`python -m mlx_vlm.generate` sends). Recorded as image_placement on every row.")
@click.option("--trust-remote-code", is_flag=True,
              help="fer: allow loading pickled model files (unpickling runs code; only for files you trust).")
@click.option("--fast/--reference", default=True, show_default=True,
              help="hf: reuse the image prefix KV cache and batch images (fast) or one generate per step, batch 1 "
                   "(reference, the paper's protocol); mlx: --reference turns its prefix cache off.")
@click.option("--dtype", type=click.Choice(["auto", "float32", "float16", "bfloat16"]), default="auto", show_default=True, help="hf: weights dtype.")
@click.option("--device", default="auto", show_default=True, help="hf/fer: cpu, cuda, cuda:N or auto.")
@click.option("--max-new-tokens", type=click.IntRange(min=1), default=32, show_default=True, help="Greedy decoding limit per step.")
@click.option("--base-url", help="openai: server address, e.g. http://localhost:8000/v1.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, help="openai: environment variable holding the API key (never written anywhere).")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Extra backend/FER option (YAML value), repeatable.")
@click.option("--limit", type=click.IntRange(min=1), help="Rate only the first N stimuli.")
@click.option("--force", is_flag=True, help="Start the run folder afresh (needed when the configuration changed).")
@click.option("--retry-errors", is_flag=True, help="Re-rate images whose rows hold an error.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def infer(rater_spec, stimuli, out, name, run_id, strategy, persona, lexicon, conditions_file, label_order, orders, seed,
          spec, labels, scales, batch_size, image_placement, fast, trust_remote_code, dtype, device, max_new_tokens,
          base_url, api_key_env, options, limit, force, retry_errors, no_progress):
    """Rate every stimulus with one model; re-running the same command resumes an interrupted run.

    \b
    Examples (the paper's two models, MLX on Apple silicon):
      emoalign infer --rater mlx:mlx-community/gemma-3-4b-it-qat-4bit --name gemma3 --stimuli stimuli.parquet --out runs/
      emoalign infer --rater mlx:mlx-community/Llama-3.2-11B-Vision-Instruct-4bit --name llama32v --stimuli stimuli.parquet --out runs/
    \b
    transformers on a GPU, an OpenAI-compatible server, a FER model, the label-order probe:
      emoalign infer --rater hf:google/gemma-3-4b-it --dtype bfloat16 --stimuli stimuli.parquet --out runs/
      emoalign infer --rater openai:gemma-3 --base-url http://gpu:8000/v1 --stimuli stimuli.parquet --out runs/
      emoalign infer --rater fer:minixception --stimuli stimuli.parquet --out runs/
      emoalign infer --rater hf:DIR --orders fixed,reversed,shuffle --stimuli stimuli.parquet --out runs/
      emoalign infer --rater hf:DIR --name gemma3 --conditions conditions.yaml --stimuli stimuli.parquet --out runs/
    """
    from emoalign.data.schemas import PAPER_PROMPT_ORDER
    from emoalign.raters.runs import RowErrorsError, row_errors_error, run_rater, slug

    kind, model = _split_rater(rater_spec)
    spec_labels, spec_scales = _study_settings(spec)
    label_list = [s.strip() for s in labels.split(",") if s.strip()] if labels else (spec_labels or None)
    if not labels and spec_labels and set(spec_labels) == set(PAPER_PROMPT_ORDER):
        label_list = list(PAPER_PROMPT_ORDER)  # the paper's prompt order (Figure 2), whatever order the spec lists
    scale_map = {**spec_scales, **_parse_scale(scales)}
    extra = _parse_options(options)
    name = name or _default_name(kind, model)
    items = _load_items(stimuli, limit)
    if not items:
        raise EmoalignError(f"stimuli table {stimuli} has no rows")
    _preflight(kind, model, rater_spec, device, extra, out)  # seconds of checks before minutes of model loading
    plan = _probe_plan(kind, strategy, persona, lexicon, conditions_file, orders)

    raters = []
    if kind == "fer":
        from emoalign.raters.fer import build_fer_rater

        fer_scales = {k: list(v) for k, v in scale_map.items()} or None
        fer_opts = dict(extra)
        if batch_size is not None:
            fer_opts["batch_size"] = batch_size
        if trust_remote_code:
            fer_opts["trust_remote_code"] = True
        raters.append(build_fer_rater(model, emotions=label_list, scales=fer_scales, device=device,
                                      rater_name=name, **fer_opts))
    else:
        from emoalign.raters.vlm.backends import load_backend
        from emoalign.raters.vlm.config import GenerateConfig
        from emoalign.raters.vlm.prompts import LABEL_ORDERS, PAPER_SCALES, PromptSet
        from emoalign.raters.vlm.rater import VLMRater

        order_list = [o.strip() for o in orders.split(",") if o.strip()] if orders else [label_order]
        bad = [o for o in order_list if o not in LABEL_ORDERS]
        if bad:
            raise EmoalignError(f"--orders has unknown order(s) {', '.join(bad)}", hint=f"choose from {', '.join(LABEL_ORDERS)}")
        config = GenerateConfig.from_options(extra, **_given_flags(
            max_new_tokens=max_new_tokens, batch_size=batch_size, image_placement=image_placement, dtype=dtype,
            device=device, fast=fast, base_url=base_url, api_key_env=api_key_env))
        prompts = PromptSet(strategy=strategy, labels=tuple(label_list) if label_list else PromptSet().labels,
                            scales={**PAPER_SCALES, **scale_map}, persona=plan["persona"][1],
                            persona_name=plan["persona"][0], lexicon_path=str(lexicon) if lexicon else None)
        if strategy == "open_vocabulary" or plan["conditions"]:  # a bad lexicon fails before the model loads
            from emoalign.raters.vlm.plan import plan_prompts

            for cond in plan["conditions"] or []:
                plan_prompts(prompts, cond)
            if strategy == "open_vocabulary":
                prompts.lexicon  # noqa: B018
        backend = load_backend(kind, model, config)
        rater_kw = dict(seed=seed, batch_size=config.batch_size or getattr(backend, "default_batch_size", 1),
                        max_new_tokens=config.max_new_tokens)
        if plan["conditions"]:
            from emoalign.raters.vlm.plan import plan_raters

            raters += plan_raters(name, backend, plan["conditions"], prompts, order=label_order, **rater_kw)
        else:
            for order in order_list:
                rname = name if (len(order_list) == 1 or order == "fixed") else f"{name}@{order}"
                raters.append(VLMRater(rname, backend, prompts, order=order, **rater_kw))

    failed = []
    for rater in raters:
        rid = slug((run_id or name) + rater.name[len(name):]) if rater.name.startswith(name) else slug(rater.name)
        t0 = time.perf_counter()
        path = run_rater(rater, items, out, run_id=rid, batch_size=batch_size, force=force, retry_errors=retry_errors,
                         progress=not no_progress)
        for line in _summary_lines(path):
            click.echo(line)
        click.echo(f"  wall time {time.perf_counter() - t0:.1f} s")
        err = row_errors_error(path, rater.name, [it.image_id for it in items])
        if err is not None:
            failed.append(err)
    if failed:  # distinct exit code (3): the run is saved, some images need a retry
        raise failed[0] if len(failed) == 1 else RowErrorsError(
            "\n".join(str(e).split("\n  hint:")[0] for e in failed), hint=failed[0].hint)
