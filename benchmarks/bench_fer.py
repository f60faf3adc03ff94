"""Benchmark FER raters on CPU: images/s of the built-in mini-Xception over the 1,440-image simulated study
(through the full resumable run loop: decoding, preprocessing, forward, parquet parts), and of random-weight
MobileViT-small (~5.6M parameters) and BEiT-base (~86M) classifiers of the paper's baseline sizes.

    python benchmarks/bench_fer.py                       # simulate the paper study into a temp folder
    python benchmarks/bench_fer.py --stimuli study/stimuli.parquet --threads 2 --hf-images 32

Random weights: the speed of an architecture does not depend on its weights, and no hub is reachable here.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import pandas as pd


def _study(args, tmp: Path) -> tuple[pd.DataFrame, Path]:
    if args.stimuli:
        p = Path(args.stimuli)
        return pd.read_parquet(p), p.parent
    from emoalign.simulate.study import simulate_study

    t = time.perf_counter()
    simulate_study(tmp / "study", "paper", seed=1)
    print(f"simulated the paper study in {time.perf_counter() - t:.1f} s")
    return pd.read_parquet(tmp / "study" / "stimuli.parquet"), tmp / "study"


def _hf_rater(family: str, tmp: Path, batch_size: int):
    import torch
    import transformers

    from emoalign.raters.fer import build_fer_rater

    labels = ["Anger", "Contempt", "Disgust", "Fear", "Happiness", "Neutral", "Sadness", "Surprise"]
    kw = dict(num_labels=8, id2label=dict(enumerate(labels)), label2id={v: k for k, v in enumerate(labels)})
    torch.manual_seed(0)
    if family == "mobilevit-small":
        model = transformers.MobileViTForImageClassification(transformers.MobileViTConfig(**kw))
        proc = transformers.MobileViTImageProcessor()
    else:
        model = transformers.BeitForImageClassification(transformers.BeitConfig(use_mean_pooling=True, **kw))
        proc = transformers.BeitImageProcessor(size={"height": 224, "width": 224}, do_center_crop=False)
    n_params = sum(p.numel() for p in model.parameters())
    d = tmp / family
    model.save_pretrained(d)
    proc.save_pretrained(d)
    return build_fer_rater(f"hf:{d}", batch_size=batch_size), n_params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stimuli", help="an existing stimuli.parquet (default: simulate the paper study)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--hf-images", type=int, default=48, help="images for the transformers models")
    ap.add_argument("--skip-hf", action="store_true")
    args = ap.parse_args(argv)
    import torch

    from emoalign.raters.fer import build_fer_rater
    from emoalign.raters.runs import items_from_stimuli, run_rater

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        stim, root = _study(args, tmp)
        items = items_from_stimuli(stim, root)
        rater = build_fer_rater("minixception", batch_size=args.batch_size)
        t = time.perf_counter()
        path = run_rater(rater, items, tmp / "runs", batch_size=args.batch_size, progress=False)
        dt = time.perf_counter() - t
        df = pd.read_parquet(path)
        print(f"minixception: {len(items)} images in {dt:.2f} s = {len(items) / dt:.0f} images/s "
              f"(run loop incl. decode + parquet; batch {args.batch_size}; errors {int(df['error'].notna().sum())})")
        if "emotion" in stim:
            merged = df.merge(stim[["image_id", "emotion"]].rename(columns={"emotion": "intended"}), on="image_id")
            acc = float((merged["emotion"] == merged["intended"]).mean())
            dist = merged["emotion"].value_counts().to_dict()
            print(f"  predicted: {dist}; agreement with intended label {acc:.3f} (schematic faces: not a validity claim)")
        if args.skip_hf:
            return 0
        sub = items[: args.hf_images]
        for family in ("mobilevit-small", "beit-base"):
            r, n = _hf_rater(family, tmp, batch_size=16)
            r.rate(sub[:2])  # warm-up
            t = time.perf_counter()
            rows = r.rate(sub)
            dt = time.perf_counter() - t
            print(f"{family} (random weights, {n / 1e6:.1f}M params, 224-256 px): {len(rows)} images in {dt:.2f} s "
                  f"= {len(rows) / dt:.1f} images/s (batch 16)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
