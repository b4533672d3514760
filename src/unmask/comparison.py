"""Every sampler x step count on an exact oracle, scored by exact NLL (``unmask-compare``).

``run_comparison(cfg)`` takes the composed ``conf/compare.yaml`` and samples ``num_samples``
sequences per (sampler, steps), batch ``b`` seeded by ``(seed, b)``; every sampler is built and
checked against the oracle at every step count before any sampling. The NLL of a sampler's
samples under the true law is the cross-entropy ``H(q, p)``; the row ``exact samples`` gives
``H(p)`` for reference: a sampler below it is sharper (lower temperature) than the data law,
above it is noisier or wrong.
"""

from __future__ import annotations

import logging
import platform
import time
from typing import Any

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from unmask.errors import ConfigError, first_line
from unmask.metrics.exact import nll, reference_nll
from unmask.samplers import build, peer_samplers
from unmask.samplers.budget import budget_key, spend_budget
from unmask.seeding import batch_seed
from unmask.validation import check_int, check_keys, check_memory, check_seed

log = logging.getLogger(__name__)


def resolve_steps(steps: list[Any], length: int) -> list[int]:
    resolved = []
    for s in steps:
        if s == "L":
            resolved.append(length)
        elif isinstance(s, int) and not isinstance(s, bool) and 1 <= s <= length:
            resolved.append(s)
        else:
            raise ValueError(f"steps entry {s!r} must be an integer in [1, {length}] or 'L'")
    return resolved


def build_samplers(spec: dict[str, dict], steps: int, length: int) -> dict[str, Any]:
    """``{label: sampler}`` from ``{label: sampler config}`` (a conf/sampler/ preset, or a dict of
    parameters whose sampler is named by the label), each spending a budget of ``steps`` calls
    (``unmask.samplers.budget``; a sampler without one, the ``fast_dllm`` peer, runs as it is)."""
    out = {}
    for label, params in spec.items():
        params = {k: v for k, v in (params or {}).items() if k != "_target_"}
        name = params.pop("name", label)
        try:
            if budget_key(name) is not None:
                params = spend_budget(name, params, steps, length)
            out[label] = build(name, **params)
        except ValueError as err:
            raise ValueError(f"samplers.{label}: {err}") from None
    return out


KEYS = ("oracle", "dataset", "samplers", "num_samples", "batch_size", "seed", "steps", "include_peers")


def check_config(cfg: DictConfig) -> None:
    """The top-level keys and values of ``conf/compare.yaml`` (``ConfigError`` naming the key)."""
    check_keys("", cfg.keys(), KEYS)
    for key in ("num_samples", "batch_size"):
        check_int(key, cfg.get(key), 1)
    check_seed("seed", cfg.get("seed"))
    if not OmegaConf.is_list(cfg.steps) or len(cfg.steps) == 0:
        raise ConfigError(f"steps={cfg.steps!r} must be a non-empty list, e.g. steps=[4,8] or steps=[L]")
    if not isinstance(cfg.get("include_peers"), bool):
        raise ConfigError(f"include_peers={cfg.get('include_peers')!r} must be true or false")


def run_comparison(cfg: DictConfig) -> dict:
    check_config(cfg)
    try:
        oracle = instantiate(cfg.oracle)
    except Exception as err:
        raise ConfigError(f"oracle: {first_line(err)}") from None
    check_memory(cfg.num_samples, cfg.batch_size, oracle.seq_len, oracle.vocab_size)
    spec = OmegaConf.to_container(cfg.samplers, resolve=True) or {}
    if cfg.include_peers:  # every peer at its defaults, beside the samplers above
        spec = {**spec, **{f"peer:{name}": {"name": name} for name in peer_samplers()}}
    try:
        step_counts = resolve_steps(list(cfg.steps), oracle.seq_len)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    for steps in step_counts:  # validate every sampler before any compute
        for label, sampler in build_samplers(spec, steps, oracle.seq_len).items():
            try:
                sampler.check_denoiser(oracle)
            except ValueError as err:
                raise ValueError(f"samplers.{label} at steps={steps}: {err}") from None
    reference = reference_nll(oracle, cfg.num_samples, seed=cfg.seed)
    rows = [{"sampler": "exact samples", "steps": None, "nll": reference.mean, "stderr": reference.stderr}]
    for steps in step_counts:
        for label, sampler in build_samplers(spec, steps, oracle.seq_len).items():
            start = time.perf_counter()
            batches, nfe, cost = [], 0, 0.0
            for b, first in enumerate(range(0, cfg.num_samples, cfg.batch_size)):
                size = min(cfg.batch_size, cfg.num_samples - first)
                generator = torch.Generator().manual_seed(batch_seed(cfg.seed, b))
                out = sampler.sample(oracle, size, generator=generator)
                batches.append(out.tokens)
                nfe, cost = max(nfe, out.nfe), max(cost, out.cost)
            score = nll(oracle, torch.cat(batches))
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "sampler": label,
                    "steps": steps,
                    "nll": score.mean,
                    "stderr": score.stderr,
                    "nfe": nfe,
                    "cost": cost,
                    "seconds": seconds,
                }
            )
            log.info("%-12s steps=%-3d nll=%.2f ± %.2f nfe=%d", label, steps, score.mean, score.stderr, nfe)
    return {
        "config": OmegaConf.to_container(cfg, resolve=True),
        "oracle": {
            "class": type(oracle).__name__,
            "seq_len": oracle.seq_len,
            "vocab_size": oracle.vocab_size,
        },
        "units": "nats per sequence",
        "rows": rows,
        "versions": {"torch": torch.__version__, "python": platform.python_version()},
    }
