"""Partial caching on the shipped MNIST model: the sub-steps' temperatures, what a refresh fixes,
and quality, for the two sub-step temperature rules (``sampler.substep_anneal``).

1. ``temperatures``: for the moment sampler (alpha 4.5, cosine counts, L = 49) at T steps with
   r sub-steps, the share of each step's tokens drawn at temperature 0 (argmax) and the
   token-weighted mean token temperature of the trajectory, under ``step`` (each sub-step at its
   step's temperature) and ``substep`` (sub-step j of step t at step t r + j of T r), against
   plain T r steps. Computed from the count plan (every row starts fully masked), no sampling.
2. ``refresh_kl``: at step 1 of T = 4 with r = 4, after the first chunk is revealed, the KL from
   a full forward's predictions (exact for the new tokens) to the later chunks' predictions when
   they are stale (the step's forward) and when refreshed (``refresh``, the cached K/V of the
   other rows), per row, averaged over 256 samples.
3. ``quality``: domain FID (``fid_mnist`` with its bootstrap standard error) of 256 samples x 3
   seeds for moment T = 4 with r = 4 under each rule, and plain T = 4 and T = 16.

    python experiments/bench/partial_cache_temperature.py [--seeds 3] [--samples 256]
        [--out experiments/bench/results/partial_cache_temperature.json]
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import torch

from unmask.io import write_json_atomic
from unmask.metrics.suite import MetricSuite, check_options
from unmask.models.pretrained import load_denoiser
from unmask.samplers import build
from unmask.samplers.caching import chunk_bounds
from unmask.samplers.schedules import unmask_counts

ALPHA, LENGTH = 4.5, 49


def temperature_plan(steps: int, substeps: int, rule: str) -> dict:
    """Tokens and their temperature per (step, sub-step) of one fully masked row."""
    sampler = build("moment", steps=steps, substeps=substeps, alpha=ALPHA, substep_anneal=rule)
    counts = unmask_counts(torch.tensor([LENGTH]), steps, "cosine")[0]
    per_step, total, weighted = [], 0, 0.0
    for t in range(steps):
        k = int(counts[t])
        chunks = min(substeps, k)
        bounds = chunk_bounds(torch.tensor([k]), chunks)[0]
        sizes = [int(bounds[j + 1] - bounds[j]) for j in range(chunks)]
        temps = [sampler.substep_token_temperature(t, j) for j in range(chunks)]
        argmax = sum(n for n, temp in zip(sizes, temps, strict=True) if temp == 0)
        per_step.append({"step": t, "tokens": k, "argmax_tokens": argmax, "argmax_share": argmax / max(1, k)})
        total += k
        weighted += sum(n * temp for n, temp in zip(sizes, temps, strict=True))
    return {
        "steps": steps,
        "substeps": substeps,
        "rule": rule,
        "per_step": per_step,
        "mean_temperature": weighted / total,
        "argmax_tokens": sum(s["argmax_tokens"] for s in per_step),
    }


def kl_rows(p_logits: torch.Tensor, q_logits: torch.Tensor) -> torch.Tensor:
    """KL(p || q) per row of logits [N, V], in nats."""
    log_p, log_q = p_logits.log_softmax(-1), q_logits.log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


@torch.no_grad()
def refresh_kl(model, samples: int, seed: int) -> dict:
    """Stale and refreshed predictions of the later chunks against a full forward (item 2)."""
    net = model.net
    generator = torch.Generator().manual_seed(seed)
    steps, substeps = 4, 4
    counts = unmask_counts(torch.full((samples,), LENGTH), steps, "cosine")
    # step 0 of plain moment, then the state before step 1
    first = build("moment", steps=steps, alpha=ALPHA)
    tokens = torch.full((samples, LENGTH), model.vocab_size)
    logits, _ = net.encode(tokens)
    positions, _ = first.choose(logits, tokens == model.vocab_size, counts[:, 0], 0, generator)
    draws = torch.distributions.Categorical(
        logits=logits.gather(1, positions[:, :, None].expand(-1, -1, logits.shape[-1]))
    )
    tokens.scatter_(1, positions, draws.sample())
    logits, cache = net.encode(tokens)
    k = int(counts[0, 1])
    positions, _ = first.choose(logits, tokens == model.vocab_size, counts[:, 1], 1, generator)
    bounds = chunk_bounds(torch.tensor([k]), substeps)[0]
    chunk0, later = positions[:, : int(bounds[1])], positions[:, int(bounds[1]) :]
    picked = logits.gather(1, chunk0[:, :, None].expand(-1, -1, logits.shape[-1]))
    tokens.scatter_(1, chunk0, torch.distributions.Categorical(logits=picked).sample())
    full, _ = net.encode(tokens)
    rows = torch.cat([chunk0, later], dim=1)
    refreshed = net.refresh(tokens, rows, cache)[:, chunk0.shape[1] :]
    vocab = logits.shape[-1]

    def at(source: torch.Tensor) -> torch.Tensor:
        return source.gather(1, later[:, :, None].expand(-1, -1, vocab)).reshape(-1, vocab)

    exact = at(full)
    stale_kl = kl_rows(exact, at(logits))
    fresh_kl = kl_rows(exact, refreshed.reshape(-1, vocab))
    return {
        "step": 1,
        "chunk0_rows": int(chunk0.shape[1]),
        "later_rows": int(later.shape[1]),
        "stale_kl_nats": float(stale_kl.mean()),
        "refreshed_kl_nats": float(fresh_kl.mean()),
        "share_removed": float(1 - fresh_kl.mean() / stale_kl.mean()),
    }


def quality(model, seeds: int, samples: int) -> list[dict]:
    suite = MetricSuite(["fid_mnist"], check_options({}), seed=0)
    runs = {
        "moment T=4": {"steps": 4},
        "moment T=16": {"steps": 16},
        "moment T=4 r=4 substep_anneal=step": {"steps": 4, "substeps": 4, "substep_anneal": "step"},
        "moment T=4 r=4 substep_anneal=substep": {"steps": 4, "substeps": 4, "substep_anneal": "substep"},
    }
    out = []
    for label, params in runs.items():
        for seed in range(seeds):
            sampler = build("moment", alpha=ALPHA, **params)
            result = sampler.sample(model, samples, generator=torch.Generator().manual_seed(seed))
            metrics = suite.reduce(model, result.tokens, suite.batch_features(model, result.tokens))
            out.append(
                {
                    "run": label,
                    "seed": seed,
                    "fid": metrics["fid_mnist"],
                    "fid_stderr": metrics["fid_mnist_stderr"],
                    "cost": float(result.cost),
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument(
        "--out", type=Path, default=Path("experiments/bench/results/partial_cache_temperature.json")
    )
    args = parser.parse_args()
    torch.set_num_threads(2)
    plans = [
        temperature_plan(4, 4, "step"),
        temperature_plan(4, 4, "substep"),
        temperature_plan(16, 1, "step"),
    ]
    plans += [
        temperature_plan(8, 4, "step"),
        temperature_plan(8, 4, "substep"),
        temperature_plan(32, 1, "step"),
    ]
    model = load_denoiser("mnist")
    record = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "temperatures": plans,
        "refresh_kl": refresh_kl(model, args.samples, 0),
        "quality": quality(model, args.seeds, args.samples),
    }
    write_json_atomic(args.out, record)
    for plan in plans:
        print(
            f"T={plan['steps']} r={plan['substeps']} {plan['rule']:8s} argmax tokens "
            f"{plan['argmax_tokens']:2d} mean temperature {plan['mean_temperature']:.3f}"
        )
    print("refresh KL", record["refresh_kl"])
    for row in record["quality"]:
        print(
            f"{row['run']:40s} seed {row['seed']} FID {row['fid']:.1f} +- {row['fid_stderr']:.1f} "
            f"cost {row['cost']:.2f}"
        )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
