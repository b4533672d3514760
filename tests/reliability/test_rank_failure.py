"""Any rank's failure fails a DDP training run: two real CPU processes (``hardware=ddp``), one of
them broken by a callback (``tests/rank_faults.py``, added through ``+hardware.callbacks``). Each
run must exit non-zero with one ``unmask-train: error:`` line naming the rank and the cause, and
write or ship no checkpoint (``ship=true``); a healthy two-process run still writes one."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from hydra_cli import ROOT, run_cli
from unmask.models.checkpoint import CHECKPOINT_DIR, load_model

pytestmark = [pytest.mark.slow, pytest.mark.subprocess]
TINY = [
    "pretrain=shakespeare",
    "name=ddp_run",
    "max_steps=8",
    "val_every=8",
    "val_batches=2",
    "batch_size=8",
    "net.width=32",
    "net.depth=1",
    "net.heads=2",
    "hardware=ddp",
]


def run_ddp(run_dir: Path, *overrides: str):
    """``unmask-train`` on two processes, with ``tests/`` importable by both (the fault callback)."""
    path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    return run_cli("unmask.cli.train", run_dir, *TINY, *overrides, env={"PYTHONPATH": path}, timeout=300)


@pytest.mark.parametrize(
    ("rank", "at", "message"),
    [
        (1, "start", "InstantiationException: injected failure on rank 1 before it joined the others"),
        (1, "validate", "rank 1 of 2: injected failure on rank 1 in the final validation"),  # was exit 0
        (1, "kill", "rank 1 of 2 was killed by SIGKILL; no checkpoint was written"),
        (0, "fit", "rank 0 of 2: injected failure on rank 0 at training step 3"),
    ],
)
def test_one_failing_rank_fails_the_run_and_ships_nothing(tmp_path, rank, at, message):
    shipped = {p.name: p.stat().st_mtime_ns for p in CHECKPOINT_DIR.iterdir()}
    fault = f"+hardware.callbacks=[{{_target_: rank_faults.FailOnRank, rank: {rank}, at: {at}}}]"
    result = run_ddp(tmp_path, "ship=true", fault)
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert result.returncode != 0, result.stderr[-3000:]
    assert errors == [f"unmask-train: error: {message}"], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("*.safetensors")) and not list(tmp_path.rglob("ddp_run.json"))
    assert {p.name: p.stat().st_mtime_ns for p in CHECKPOINT_DIR.iterdir()} == shipped


def test_two_healthy_ranks_write_one_checkpoint_with_the_metric_of_both(tmp_path):
    result = run_ddp(tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "error:" not in result.stderr
    card = json.loads((tmp_path / "ddp_run.json").read_text())
    assert card["training"]["processes"] == 2 and card["metrics"]["val/nelbo_bits"] > 0
    assert load_model(tmp_path / "ddp_run").seq_len == 128
