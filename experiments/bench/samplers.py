"""Per-step sampler overhead with precomputed logits (no network), as a ratio to one log_softmax.

For each vocabulary size, a fixed logits tensor [B, L, V] (B = 64, L = 256) is returned by a
denoiser that costs nothing. For each sampler and peer we time
  - the first step (every position masked: the most work a step can do; samplers with a
    ``step`` of their own), and
  - a whole trajectory (T = 16 steps where the sampler has steps; adaptive samplers and peers
    such as ``fast_dllm`` run until done), divided by its denoiser calls (the mean step),
and divide by the time of one ``torch.log_softmax`` over the same tensor (median of repeats).
Besides the samplers listed in ``SAMPLERS``, every conf/sampler/ preset (the named variants:
``hybrid_g25``, ``moment_cached``, ...) is timed as ``unmask-eval sampler=<preset> budget=16``
builds it. Peak extra memory is measured in a fresh subprocess per sampler (peak RSS after the run minus
peak RSS once the logits exist), as a ratio to the logits' size.

For context, ``reference_maskgit`` is a typical eager port of the MaskGIT step (log_softmax,
Categorical sampling on the whole tensor, float32 Gumbel confidence), written here; it is not
any repository's code.

    python experiments/bench/samplers.py [--vocab 1024 8192] [--samplers maskgit llada ...]
        [--out experiments/bench/results/samplers.json]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import subprocess
import sys
from pathlib import Path

import torch
from timing import median_time

from unmask.io import write_json_atomic
from unmask.samplers import build, sampler_parameters

BATCH, LENGTH, STEPS = 64, 256, 16
# label -> parameters; "_sampler_" names the sampler when it is not the label
SAMPLERS = {
    "maskgit": {"alpha": 4.5},
    "moment": {"alpha": 4.5},
    "confidence": {},
    "margin": {},
    "entropy": {},
    "random": {},
    "halton": {"grid": (16, 16)},
    "ancestral": {},
    "low_confidence": {},
    "low_confidence_t0.7": {"_sampler_": "low_confidence", "temperature": 0.7},
    "threshold": {"threshold": 0.9},
    "greedy_confidence": {"_sampler_": "confidence", "temperature": 0.0},
    # the peers (conf/sampler/ presets at their defaults, 16 steps where they have steps)
    "llada": {},
    "llada_t1": {"_sampler_": "llada", "temperature": 1.0},
    "fast_dllm": {},
    "fast_dllm_t1": {"_sampler_": "fast_dllm", "temperature": 1.0},
    "maskgit_jax": {},
    "maskgit_pytorch": {},
    "halton_maskgit_confidence": {},
    "halton_maskgit": {"grid": (16, 16)},
    "mdlm": {},
    "eb_sampler": {},
}


def preset_configs() -> dict[str, dict]:
    """Every conf/sampler/ preset not listed above, as ``unmask-eval sampler=<preset>`` composes
    it (a [16, 16] grid, blocks of 32), with the budget of STEPS calls spent by the library."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from unmask.config import CONF_DIR
    from unmask.samplers.budget import budget_key, spend_budget

    names = sorted(p.stem for p in (Path(CONF_DIR) / "sampler").glob("*.yaml") if p.stem not in SAMPLERS)
    out = {}
    with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
        for label in names:
            overrides = [f"sampler={label}", "dataset.grid=null", "dataset.block_length=32"]
            overrides.append("dataset.llada_block_length=32")
            params = OmegaConf.to_container(compose("eval", overrides=overrides).sampler, resolve=True)
            params.pop("_target_")
            name = params["name"]
            if budget_key(name) is not None:
                params = spend_budget(name, params, STEPS, LENGTH)
            out[label] = {"_sampler_": params.pop("name"), **params}
    return out


ALL_SAMPLERS = SAMPLERS | preset_configs()


def make_sampler(label: str):
    params = dict(ALL_SAMPLERS[label])
    name = params.pop("_sampler_", label)
    if "steps" in sampler_parameters(name) and label in SAMPLERS:
        params["steps"] = STEPS
    return build(name, **params)


class PrecomputedLogits:
    def __init__(self, logits: torch.Tensor):
        self.logits = logits
        self.seq_len, self.vocab_size = logits.shape[1:]

    def __call__(self, tokens, cond=None):
        return self.logits


def reference_maskgit_step(logits: torch.Tensor, masked: torch.Tensor, k: int, alpha: float, g):
    """A typical eager MaskGIT step: every op on the whole [B, L, V] tensor, float32 noise."""
    log_probs = torch.log_softmax(logits, dim=-1)
    sampled = torch.distributions.Categorical(logits=log_probs).sample()
    confidence = log_probs.gather(-1, sampled[..., None]).squeeze(-1)
    gumbel = -torch.log(-torch.log(torch.rand(confidence.shape, generator=g)))
    confidence = torch.where(masked, confidence + alpha * gumbel, torch.inf * -1)
    return sampled, confidence.topk(k, dim=-1).indices


def make_logits(vocab: int) -> torch.Tensor:
    """Standard normal logits times 3, made in place (no temporary that would inflate max RSS)."""
    logits = torch.empty(BATCH, LENGTH, vocab)
    return logits.normal_(generator=torch.Generator().manual_seed(0)).mul_(3.0)


def time_vocab(vocab: int, repeats: int, labels: list[str]) -> dict:
    logits = make_logits(vocab)
    denoiser = PrecomputedLogits(logits)
    base = median_time(lambda: torch.log_softmax(logits, dim=-1), repeats)
    masked = torch.ones(BATCH, LENGTH, dtype=torch.bool)
    first_k = LENGTH - math.floor(LENGTH * math.cos(math.pi / 2 / STEPS))  # cosine schedule, step 0
    counts = torch.full((BATCH,), first_k, dtype=torch.long)
    rows = {"log_softmax_seconds": base}
    g = torch.Generator().manual_seed(0)
    ref = median_time(lambda: reference_maskgit_step(logits, masked, first_k, 4.5, g), repeats)
    rows["reference_maskgit"] = {"first_step_ratio": ref / base}
    for name in labels:
        sampler = make_sampler(name)
        calls = sampler.sample(denoiser, BATCH, generator=g).nfe
        whole = median_time(lambda s=sampler: s.sample(denoiser, BATCH, generator=g), max(1, repeats // 2))
        rows[name] = {"mean_step_ratio": whole / calls / base, "calls": calls}
        line = f"V={vocab} {name:26s} mean {whole / calls / base:5.2f}x over {calls:3d} calls"
        if hasattr(sampler, "step"):
            first = median_time(lambda s=sampler: s.step(logits, masked, counts, 0, g), repeats)
            rows[name]["first_step_ratio"] = first / base
            line += f"  first {first / base:5.2f}x"
        print(line, flush=True)
    print(f"V={vocab} reference    first {ref / base:5.2f}x  (log_softmax {base * 1e3:.1f} ms)", flush=True)
    return rows


def max_rss_bytes() -> int:
    """Peak resident set of this process image (VmHWM). ``ru_maxrss`` is not used: Linux keeps
    it across exec, so a worker started by a large parent would inherit the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def memory_worker(name: str, vocab: int) -> None:
    """Run in a subprocess: print max-RSS growth of one full trajectory of ``name``."""
    logits = make_logits(vocab)
    logits.add_(0)  # touch every page
    before = max_rss_bytes()
    g = torch.Generator().manual_seed(0)
    if name == "log_softmax":
        torch.log_softmax(logits, dim=-1)
    elif name == "reference_maskgit":
        reference_maskgit_step(logits, torch.ones(BATCH, LENGTH, dtype=torch.bool), 10, 4.5, g)
    else:
        make_sampler(name).sample(PrecomputedLogits(logits), BATCH, generator=g)
    print(json.dumps({"extra_bytes": max_rss_bytes() - before, "logits_bytes": logits.numel() * 4}))


def memory_vocab(vocab: int, labels: list[str]) -> dict:
    out = {}
    for name in ["log_softmax", "reference_maskgit", *labels]:
        result = subprocess.run(
            [sys.executable, __file__, "--memory-worker", name, str(vocab)],
            capture_output=True,
            text=True,
            check=True,
        )
        record = json.loads(result.stdout.strip().splitlines()[-1])
        out[name] = record["extra_bytes"] / record["logits_bytes"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vocab", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samplers", nargs="+", default=list(ALL_SAMPLERS), choices=list(ALL_SAMPLERS))
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--out", type=Path, default=Path("experiments/bench/results/samplers.json"))
    parser.add_argument("--memory-worker", nargs=2, metavar=("NAME", "VOCAB"))
    args = parser.parse_args()
    if args.memory_worker:
        memory_worker(args.memory_worker[0], int(args.memory_worker[1]))
        return
    report = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
        },
        "shape": {"batch": BATCH, "length": LENGTH, "steps": STEPS, "schedule": "cosine"},
        "targets": {"maskgit_step": 3.0, "cts_step": 2.0, "extra_memory": 3.0},
        "results": {},
    }
    for vocab in args.vocab:
        timing = time_vocab(vocab, args.repeats, args.samplers)
        memory = {} if args.no_memory else memory_vocab(vocab, args.samplers)
        for name, ratio in memory.items():
            timing.setdefault(name, {})["peak_extra_memory_ratio"] = ratio
        report["results"][str(vocab)] = timing
    write_json_atomic(args.out, report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
