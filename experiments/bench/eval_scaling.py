"""Evaluation throughput with 1 and 2 CPU processes (one thread each) on the shipped MNIST model.

Runs ``unmask-eval model=mnist sampler=moment sampler.steps=8`` with ``hardware=cpu`` (1 thread)
and ``hardware=ddp`` (2 processes, 1 thread each), 512 samples in batches of 32, no metrics, and
reads ``results.json``: samples per second over the generation span (first batch started to last
batch written, all ranks), and the evaluator overhead = 1 - (time inside ``sampler.sample`` /
(processes x span)): everything but the denoiser and the sampler (Lightning's loop, shards).
Targets: speed-up >= 1.6x, overhead <= 5%.

    python experiments/bench/eval_scaling.py [--out experiments/bench/results/eval_scaling.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from unmask.io import write_json_atomic

ROOT = Path(__file__).resolve().parents[2]
COMMON = [
    "model=mnist",
    "sampler=moment",
    "sampler.steps=8",
    "num_samples=512",
    "batch_size=32",
    "metrics.names=[]",
    "save_samples=false",
    "hardware.num_threads=1",
]


def run(hardware: str, run_dir: Path) -> dict:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "unmask.cli.evaluate",
            f"hydra.run.dir={run_dir}",
            f"hardware={hardware}",
            *COMMON,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    if result.returncode != 0:
        raise RuntimeError(result.stderr[-2000:])
    cost = json.loads((run_dir / "results.json").read_text())["cost"]
    processes = 2 if hardware == "ddp" else 1
    span = cost["generation_span_seconds"]
    return {
        "samples_per_second": cost["samples_per_second"],
        "span_seconds": span,
        "sampling_seconds": cost["sampling_seconds"],
        "overhead_fraction": 1 - cost["sampling_seconds"] / (processes * span),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("experiments/bench/results/eval_scaling.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one, two = run("cpu", Path(tmp) / "one"), run("ddp", Path(tmp) / "two")
    report = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "setup": COMMON,
        "one_process": one,
        "two_processes": two,
        "speedup": two["samples_per_second"] / one["samples_per_second"],
        "targets": {"speedup": 1.6, "overhead_fraction": 0.05},
    }
    write_json_atomic(args.out, report)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
