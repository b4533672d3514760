"""Partial caching, measured: the cost of a refresh, and quality against cost.

1. ``refresh``: wall time of ``MaskedTransformer.refresh`` on q in {4, 16, 64} rows against a
   full forward (``encode``), at L in {256, 1024}, for a 6-layer width-256 model (4 heads,
   V = 1024, batch 8) on CPU; median of repeats; and the analytic FLOP ratio.
2. quality against cost on the image-like ``ProductMixture`` oracle (8 x 8, 16 levels): exact
   NLL of 1000 samples against forward-equivalents (``SampleOutput.cost``) for ``moment`` (tempered
   tokens) and ``moment`` with ``token_temperature=1`` at substeps 1, 2, 4, 8, and ``maskgit``, at
   steps 4, 8, 16. The oracle refreshes exactly, so this isolates what partial caching buys when
   refreshed rows are exact; a trained model's refresh is approximate (rows outside S are stale).

    python experiments/bench/partial_cache.py [--out experiments/bench/results/partial_cache.json]
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import torch
from timing import median_time

from unmask.io import write_json_atomic
from unmask.metrics.exact import nll, reference_nll
from unmask.models.oracle import ProductMixture
from unmask.models.transformer import MaskedTransformer
from unmask.samplers import build

WIDTH, DEPTH, HEADS, VOCAB, BATCH = 256, 6, 4, 1024, 8


def forward_flops(rows: int, length: int) -> float:
    """Multiply-adds x 2 of a forward that computes ``rows`` rows attending to ``length`` keys."""
    linear = 2 * rows * (3 * WIDTH * WIDTH + WIDTH * WIDTH + 2 * 4 * WIDTH * WIDTH)
    attention = 2 * 2 * rows * length * WIDTH
    head = 2 * rows * WIDTH * VOCAB
    return DEPTH * (linear + attention) + head


def refresh_timings(repeats: int) -> list[dict]:
    out = []
    for length in (256, 1024):
        torch.manual_seed(0)
        model = MaskedTransformer(VOCAB, length, width=WIDTH, depth=DEPTH, heads=HEADS).eval()
        tokens = torch.randint(0, VOCAB + 1, (BATCH, length), generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            full = median_time(lambda m=model, t=tokens: m.encode(t), repeats)
            _, cache = model.encode(tokens)
            for q in (4, 16, 64):
                rows = torch.stack([torch.randperm(length)[:q] for _ in range(BATCH)])
                seconds = median_time(lambda m=model, t=tokens, r=rows, c=cache: m.refresh(t, r, c), repeats)
                record = {
                    "length": length,
                    "rows": q,
                    "full_seconds": full,
                    "refresh_seconds": seconds,
                    "wall_ratio": seconds / full,
                    "flop_ratio": forward_flops(q, length) / forward_flops(length, length),
                    "rows_over_length": q / length,
                }
                out.append(record)
                print(
                    f"L={length:5d} q={q:3d} refresh/full wall {seconds / full:.3f}  "
                    f"flops {record['flop_ratio']:.3f}  (full {full * 1e3:.0f} ms)",
                    flush=True,
                )
    return out


def quality_against_cost(num_samples: int) -> dict:
    oracle = ProductMixture.image_like(8, 8, vocab_size=16, components=8)
    reference = reference_nll(oracle, num_samples)
    rows = []
    variants = [("maskgit", {}, 1)]
    for substeps in (1, 2, 4, 8):
        variants.append(("moment", {}, substeps))
        variants.append(("moment", {"token_temperature": 1.0}, substeps))
    for steps in (4, 8, 16):
        for name, params, substeps in variants:
            extra = {"substeps": substeps} if name != "maskgit" else {}
            sampler = build(name, steps=steps, **params, **extra)
            start = time.perf_counter()
            out = sampler.sample(oracle, num_samples, generator=torch.Generator().manual_seed(steps))
            seconds = time.perf_counter() - start
            score = nll(oracle, out.tokens)
            label = name + ("_t1" if params else "")
            rows.append(
                {
                    "sampler": label,
                    "steps": steps,
                    "substeps": substeps,
                    "nll": score.mean,
                    "stderr": score.stderr,
                    "nfe": out.nfe,
                    "cost": out.cost,
                    "seconds": seconds,
                }
            )
            print(
                f"{label:10s} steps={steps:2d} substeps={substeps} nll={score.mean:7.2f} "
                f"nfe={out.nfe:3d} cost={out.cost:6.2f}",
                flush=True,
            )
    return {
        "reference_nll": reference.mean,
        "reference_stderr": reference.stderr,
        "rows": rows,
        "oracle": "ProductMixture.image_like(8, 8, vocab_size=16, components=8)",
        "samples": num_samples,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=Path("experiments/bench/results/partial_cache.json"))
    args = parser.parse_args()
    report = {
        "machine": {
            "platform": platform.platform(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "model": {"width": WIDTH, "depth": DEPTH, "heads": HEADS, "vocab": VOCAB, "batch": BATCH},
        "target": "refresh of 16 rows at L = 256 <= 0.25 of a full forward (wall time)",
        "refresh": refresh_timings(args.repeats),
        "quality": quality_against_cost(args.samples),
    }
    write_json_atomic(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
