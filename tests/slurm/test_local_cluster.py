"""Sweeps, SLURM tasks, cancellation and requeue on a real one-node SLURM cluster
(slurm/local_cluster.sh; `make test` starts it when it can). Jobs run the project's Hydra app
through submitit, exactly as on a GPU cluster, with 1-CPU tasks."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hydra_cli import ROOT, run_cli


def cluster_state() -> str:
    script = ROOT / "slurm" / "local_cluster.sh"
    result = subprocess.run(["bash", str(script), "status"], capture_output=True, text=True, timeout=60)
    return result.stdout.strip()


STATE = cluster_state()
pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(
        not STATE.startswith("up"),
        reason=f"no local SLURM cluster ({STATE or 'down'}); `bash slurm/local_cluster.sh start` as root",
    ),
]
SMALL = ["num_samples=24", "batch_size=8", "metrics.names=[]"]
SLURM = ["hydra/launcher=slurm_local"]


def run_eval(run_dir: Path, *overrides: str, multirun: bool = False, env: dict | None = None):
    threads = {"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", **(env or {})}
    return run_cli("unmask.cli.evaluate", run_dir, *overrides, env=threads, multirun=multirun, timeout=900)


def results_of(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/results.json"))]


def test_2x2_sweep_through_slurm_gives_four_results_and_four_finished_wandb_runs(tmp_path):
    sweep = ["sampler=moment,maskgit", "sampler.steps=4,8", "logger=wandb"]
    result = run_eval(tmp_path, *SMALL, *SLURM, *sweep, multirun=True)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = results_of(tmp_path)
    assert len(runs) == 4
    assert {(r["config"]["sampler"]["name"], r["config"]["sampler"]["steps"]) for r in runs} == {
        ("moment", 4),
        ("moment", 8),
        ("maskgit", 4),
        ("maskgit", 8),
    }
    assert all(r["hardware"]["slurm_job_id"] for r in runs), "each job ran inside SLURM"
    for job in sorted(p.parent for p in tmp_path.glob("*/results.json")):
        (wandb_run,) = (job / "wandb").glob("offline-run-*")
        summary = subprocess.run(
            [
                str(Path(sys.executable).with_name("wandb")),
                "leet",
                "inspect",
                "--summary",
                "--json",
                str(wandb_run),
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert json.loads(summary.stdout)["state"] == "finished"


def test_two_slurm_tasks_with_ddp_give_the_samples_of_one_task(tmp_path):
    setup = [*SMALL, *SLURM, "model=mnist", "sampler=maskgit"]
    one = run_eval(tmp_path / "one", *setup, multirun=True)
    assert one.returncode == 0, one.stderr[-3000:]
    two = run_eval(tmp_path / "two", *setup, "hardware=ddp", "hydra.launcher.tasks_per_node=2", multirun=True)
    assert two.returncode == 0, two.stderr[-3000:]
    (single,), (double,) = results_of(tmp_path / "one"), results_of(tmp_path / "two")
    assert single["hardware"]["world_size"] == 1 and double["hardware"]["world_size"] == 2
    a = torch.load(tmp_path / "one" / "0" / "samples.pt")
    b = torch.load(tmp_path / "two" / "0" / "samples.pt")
    assert a.shape == (24, 49) and torch.equal(a, b)
    ranks = {torch.load(p)["rank"] for p in (tmp_path / "two" / "0" / "shards").glob("batch_*.pt")}
    assert ranks == {0, 1}


# 6 batches of a few seconds each on one CPU: long enough to be interrupted between batches
SLOW = ["model=shakespeare", "sampler=moment", "sampler.steps=32", "num_samples=48", "batch_size=8"]
SLOW += ["metrics.names=[]"]
BATCHES = 6


def wait_for_shards(folder: Path, at_least: int, timeout: float = 300) -> int:
    deadline = time.time() + timeout
    while time.time() < deadline:
        done = len(list(folder.glob("batch_*.json")))
        if done >= at_least:
            return done
        time.sleep(0.2)
    raise AssertionError(f"fewer than {at_least} shards in {folder} after {timeout} s")


def job_state(job_id: str) -> str:
    out = subprocess.run(
        ["sacct", "-n", "-X", "-P", "-o", "State", "-j", job_id], capture_output=True, text=True
    )
    return out.stdout.strip().splitlines()[0] if out.stdout.strip() else ""


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> torch.Tensor:
    folder = tmp_path_factory.mktemp("uninterrupted")
    result = run_eval(folder, *SLOW)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(folder / "samples.pt")


def test_cancelled_job_relaunched_in_its_directory_ends_with_the_uninterrupted_samples(
    tmp_path, uninterrupted
):
    command = " ".join([sys.executable, "-m", "unmask.cli.evaluate", f"hydra.run.dir={tmp_path}", *SLOW])
    submitted = subprocess.run(
        ["sbatch", "--parsable", "-c", "1", "-o", str(tmp_path / "job.log"), "--wrap", command],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    wait_for_shards(tmp_path / "shards", 2)
    subprocess.run(["scancel", job_id], check=True)
    deadline = time.time() + 120
    while not job_state(job_id).startswith("CANCELLED") and time.time() < deadline:  # "CANCELLED by 0"
        time.sleep(0.5)
    assert job_state(job_id).startswith("CANCELLED")
    left = len(list((tmp_path / "shards").glob("batch_*.json")))
    assert 2 <= left < BATCHES and not (tmp_path / "results.json").exists(), "stopped mid-run, nothing final"
    again = run_eval(tmp_path, *SLOW)  # relaunch in the same run directory
    assert again.returncode == 0, again.stderr[-3000:]
    assert torch.equal(torch.load(tmp_path / "samples.pt"), uninterrupted)
    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert sorted(map(int, manifest["batches"])) == list(range(BATCHES)), "each batch once, none lost"


def test_preemption_signal_requeues_the_job_which_resumes_to_the_uninterrupted_samples(
    tmp_path, uninterrupted
):
    sweep = subprocess.Popen(
        [sys.executable, "-m", "unmask.cli.evaluate", "-m", f"hydra.sweep.dir={tmp_path}", *SLOW, *SLURM],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    job_id = None
    try:
        wait_for_shards(tmp_path / "0" / "shards", 2)
        (job_dir,) = [p for p in (tmp_path / ".submitit").iterdir() if p.is_dir()]
        job_id = job_dir.name
        # what SLURM sends signal_delay_s before the time limit, or on preemption
        subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
        _, err = sweep.communicate(timeout=600)
    finally:
        if sweep.poll() is None:
            sweep.send_signal(signal.SIGINT)
        if job_id is not None:  # a failed sweep leaves its requeued job behind: do not let it hold the node
            subprocess.run(["scancel", job_id], check=False)
    assert sweep.returncode == 0, err[-3000:]
    log = "".join(p.read_text() for p in (tmp_path / ".submitit").rglob("*_log.*"))
    assert "Requeued job" in log, "submitit checkpointed and requeued the job"
    assert torch.equal(torch.load(tmp_path / "0" / "samples.pt"), uninterrupted)
    (run,) = results_of(tmp_path)
    assert run["num_samples"] == 48


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["hydra.launcher.cpus_per_task=4"], "cpus_per_task x tasks_per_node = 4 CPUs per node"),
        (["hydra.launcher.gpus_per_node=1"], "hydra.launcher.gpus_per_node=1, but the nodes of partition"),
        (["hydra.launcher.partition=gpu"], "hydra.launcher.partition='gpu': no such partition"),
        (["hydra.launcher.mem_gb=4096"], "hydra.launcher.mem_gb=4096"),
    ],
)
def test_request_the_cluster_cannot_satisfy_is_refused_before_submission(tmp_path, overrides, message):
    started = time.time()
    result = run_eval(tmp_path, *SMALL, *SLURM, *overrides, multirun=True)
    assert result.returncode == 2 and message in result.stderr, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".submitit").exists(), "nothing was submitted"
    assert time.time() - started < 60
