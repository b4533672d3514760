"""What a run directory may hold after any sequence of runs, refusals and failures
(``unmask.rundir``): nothing written before the input is valid, outputs that move together or not
at all, leftovers of an interrupted run removed and named, folders that cannot be written refused
before Hydra creates them, and reruns that never change a reported number unless their inputs
changed (then they recompute or refuse).

The Hydra apps run in-process (``hydra_cli.run_in_process``); every run is the real
``unmask-eval`` on the exact-oracle model (16 samples, a few seconds)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hydra_cli import run_in_process
from unmask import rundir
from unmask.cli import compare, evaluate
from unmask.figures.records import load_runs
from unmask.validation import check_memory

SMALL = ["num_samples=16", "batch_size=8"]


def contents(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder but its log, by relative path."""
    return {
        str(p.relative_to(run_dir)): p.read_bytes()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file() and p.suffix != ".log"
    }


def record(run_dir: Path) -> dict:
    return json.loads((run_dir / "results.json").read_text())


def assert_consistent(run_dir: Path) -> None:
    """A record's listed files exist with the sha256 it gives, its snapshot is this run's."""
    results = record(run_dir)
    for name, digest in results["sha256"].items():
        assert rundir.sha256_of(run_dir / name) == digest, name
    assert f"seed: {results['config']['seed']}" in (run_dir / ".hydra" / "config.yaml").read_text()


def test_a_refused_rerun_leaves_a_finished_run_untouched(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert run_in_process(evaluate, run, SMALL, capsys, monkeypatch)[0] == 0
    before = contents(run)
    assert {".hydra/config.yaml", ".hydra/hydra.yaml", ".hydra/overrides.yaml", "results.json"} <= set(before)
    code, err = run_in_process(evaluate, run, [*SMALL, "seed=1"], capsys, monkeypatch)
    assert code == 2 and "holds shards of another configuration" in err, err
    assert contents(run) == before  # the snapshot still says seed 0, like results.json
    assert_consistent(run)


def test_bad_input_in_a_new_folder_writes_no_snapshot_or_shard(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    code, err = run_in_process(evaluate, run, [*SMALL, "sampler.steps=0"], capsys, monkeypatch)
    assert code == 2 and "steps=0" in err
    assert contents(run) == {}  # Hydra's log only


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("file", "hydra.run.dir={run} is a file: pick a folder"),
        ("under_file", "lies under a file"),
        ("record_is_folder", "results.json is a folder; move it away"),
        ("snapshot_is_file", ".hydra is a file; move it away"),
        ("unwritable", "cannot write in /sys (Permission denied)"),
    ],
)
def test_a_folder_that_cannot_hold_the_run_is_refused_before_hydra_creates_it(
    tmp_path, capsys, monkeypatch, layout, message
):
    run = tmp_path / "run"
    if layout == "file":
        run.write_text("a file")
    elif layout == "under_file":
        tmp_path.joinpath("a_file").write_text("a file")
        run = tmp_path / "a_file" / "run"
    elif layout == "record_is_folder":
        (run / "results.json").mkdir(parents=True)
    elif layout == "snapshot_is_file":
        run.mkdir()
        (run / ".hydra").write_text("a file")
    else:
        if os.access("/sys", os.W_OK) and not Path("/sys").is_mount():
            pytest.skip("/sys is writable here")
        run = Path("/sys/unmask-run")
    started = time.perf_counter()
    code, err = run_in_process(evaluate, run, SMALL, capsys, monkeypatch)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith("unmask-eval: error: ")
        and message.format(run=run) in lines[0]
    )
    assert time.perf_counter() - started < 30  # before any model is built (the 5 s target: README)


def test_a_sweep_folder_that_is_a_file_is_refused(tmp_path, capsys, monkeypatch):
    sweep = tmp_path / "sweep"
    sweep.write_text("a file")
    code, err = run_in_process(evaluate, sweep, [*SMALL, "seed=0,1"], capsys, monkeypatch, multirun=True)
    assert code == 2 and f"hydra.sweep.dir={sweep} is a file" in err, err


def test_a_full_disk_while_writing_the_outputs_keeps_the_old_ones(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert run_in_process(evaluate, run, SMALL, capsys, monkeypatch)[0] == 0
    before = contents(run)

    def full(path, *args, **kwargs):
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(rundir, "write_json", full)
    code, err = run_in_process(evaluate, run, ["num_samples=24", "batch_size=8"], capsys, monkeypatch)
    assert code == 1 and "No space left on device" in err and "results.tmp" in err, err
    after = contents(run)
    assert {k: v for k, v in after.items() if not k.startswith("shards/")} == {
        k: v for k, v in before.items() if not k.startswith("shards/")
    }  # results, samples (16 rows) and snapshot as they were; the new batch's shard is kept
    assert not [name for name in after if ".tmp" in name]
    assert torch.load(run / "samples.pt").shape[0] == record(run)["num_samples"] == 16


def test_a_failure_while_moving_withdraws_the_record_and_the_rerun_restores_it(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert run_in_process(evaluate, run, SMALL, capsys, monkeypatch)[0] == 0
    reported = record(run)["metrics"]
    real_replace = os.replace

    def fail_on_samples(src, dst):
        if Path(dst).name == "samples.pt":
            raise OSError(5, "Input/output error", str(dst))
        real_replace(src, dst)

    with monkeypatch.context() as patch:
        patch.setattr(rundir.os, "replace", fail_on_samples)
        code, err = run_in_process(evaluate, run, ["num_samples=24", "batch_size=8"], capsys, monkeypatch)
    assert code == 1 and "Input/output error" in err, err
    assert not (run / "results.json").exists()  # no record claims 16 or 24 samples
    assert load_runs([tmp_path], partial=True)[0] == []  # and the figures see a missing run
    assert [p.name for p in run.iterdir() if "withdrawn" in p.name or ".tmp" in p.name]
    code, _ = run_in_process(evaluate, run, SMALL, capsys, monkeypatch)
    assert code == 0 and record(run)["metrics"] == reported
    assert not [p for p in run.rglob("*") if rundir.is_leftover(p)]
    assert_consistent(run)


def test_leftovers_of_an_interrupted_run_are_removed_and_named(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    assert run_in_process(evaluate, run, SMALL, capsys, monkeypatch)[0] == 0
    left = [
        run / "samples.tmp123.pt",
        run / "shards" / "batch_000001.pt.tmp9",
        run / ".hydra" / "config.tmp7.yaml",
    ]
    for path in left:
        path.write_text("torn")
    assert run_in_process(evaluate, run, SMALL, capsys, monkeypatch)[0] == 0
    assert not any(p.exists() for p in left)
    log = "".join(p.read_text() for p in run.glob("*.log"))
    warnings = [line for line in log.splitlines() if "[unmask.rundir][WARNING]" in line]
    assert len(warnings) == 1 and "removed 3 file(s)" in warnings[0] and "samples.tmp123.pt" in warnings[0], (
        log
    )


def test_ctrl_c_in_the_metrics_phase_is_one_line_and_writes_no_record(tmp_path, capsys, monkeypatch):
    from unmask.metrics.suite import MetricSuite

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(MetricSuite, "reduce", interrupted)
    code, err = run_in_process(evaluate, tmp_path / "run", SMALL, capsys, monkeypatch)
    assert code == 130, err
    assert err.strip().splitlines() == [
        "unmask-eval: interrupted; no result was written for the unfinished run"
    ]
    assert not (tmp_path / "run" / "results.json").exists()


@pytest.mark.parametrize(
    ("overrides", "env", "message"),
    [
        (["num_samples=1000000000000"], {}, "num_samples=1000000000000: needs at least"),
        (["num_samples=100000000", "batch_size=100000000"], {}, "batch_size=100000000: needs at least"),
        (["logger=wandb", "logger.mode=online"], {}, "logger.mode=online but no W&B API key is set"),
        (["logger=wandb"], {"WANDB_MODE": "online"}, "logger.mode=online but no W&B API key is set"),
        (
            ["seed=18446744073709551616"],
            {},
            "seed=18446744073709551616 must be an integer in [0, 4294967295]",
        ),
    ],
)
def test_requests_that_cannot_run_here_are_refused_in_one_line_before_compute(
    tmp_path, capsys, monkeypatch, overrides, env, message
):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc: no W&B login
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert contents(tmp_path / "run") == {}


def test_the_memory_floor_counts_samples_twice_and_one_batch_of_logits(monkeypatch):
    monkeypatch.setattr("unmask.validation.available_memory", lambda: 10 * 2**30)
    # 2 x 8 bytes x N x L for the samples: N = 2^30 / 16 / 64 rows of L = 64 fill 1 GiB exactly
    check_memory(9 * 2**20, 1, 64, 16)  # 9 GiB of samples: fits in 10
    with pytest.raises(Exception, match=r"num_samples=11534336: needs at least 11 GiB"):
        check_memory(11 * 2**20, 1, 64, 16)
    # 2 x 4 bytes x B x L x V for the logits: B = 2^30 / 8 / (64 x 1024) per GiB
    with pytest.raises(Exception, match=r"batch_size=.*for a batch's logits"):
        check_memory(22 * 2**11, 22 * 2**11, 64, 1024)


def test_compare_writes_its_snapshot_with_its_record(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    overrides = ["num_samples=16", "batch_size=8", "steps=[2]", "include_peers=false"]
    assert run_in_process(compare, run, overrides, capsys, monkeypatch)[0] == 0
    assert_consistent(run)
    before = contents(run)
    for bad in (["+foo=1"], ["num_samples=1000000000000"]):
        code, err = run_in_process(compare, run, [*overrides, *bad], capsys, monkeypatch)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "num_samples=1000000000000: needs at least" in err
    assert contents(run) == before


# reruns in one folder, in any order: a reported number changes only with its inputs
CONFIGS = {
    "base": SMALL,
    "longer": ["num_samples=24", "batch_size=8"],
    "seed": [*SMALL, "seed=3"],
    "metrics": [*SMALL, "metrics.names=[]"],
}
ACTIONS = st.lists(
    st.sampled_from(
        ["run:base", "run:longer", "run:seed", "run:metrics", "drop_record", "drop_shard", "tear_shard"]
    ),
    min_size=2,
    max_size=5,
)


@pytest.fixture(scope="module")
def references(tmp_path_factory) -> dict[str, dict]:
    """Each config run once in a fresh folder: (metrics, samples)."""
    out = {}
    for name, overrides in CONFIGS.items():
        run = tmp_path_factory.mktemp(name) / "run"
        with pytest.MonkeyPatch.context() as patch:
            code, err = run_in_process(evaluate, run, overrides, _NoCapture(), patch)
        assert code == 0, err
        out[name] = {"metrics": record(run)["metrics"], "samples": torch.load(run / "samples.pt")}
    return out


class _NoCapture:
    def readouterr(self):
        return type("Captured", (), {"err": "", "out": ""})()


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(actions=ACTIONS)
def test_reruns_never_change_a_reported_number_unless_their_inputs_changed(
    tmp_path_factory, references, actions
):
    """Any sequence of runs (4 configs: another length, seed, metric set) and damage (a record
    deleted, a shard deleted or torn) in one folder: a run is refused exactly when the folder
    holds shards of another seed, and a record present is always the one a fresh run of its
    config gives (metrics and samples), with its files and snapshot."""
    run = tmp_path_factory.mktemp("reruns") / "run"
    held, last = None, None  # the seed the folder's shards belong to; the last run that finished
    with pytest.MonkeyPatch.context() as patch:
        for action in actions:
            kind, _, name = action.partition(":")
            if kind == "run":
                seed = 3 if name == "seed" else 0
                code, err = run_in_process(evaluate, run, CONFIGS[name], _NoCapture(), patch)
                refused = held is not None and held != seed
                assert code == (2 if refused else 0), (actions, err)
                if not refused:
                    held, last = seed, name
            elif kind == "drop_record":
                (run / "results.json").unlink(missing_ok=True)
                last = None
            elif list(run.glob("shards/batch_*.pt")):
                shard = sorted(run.glob("shards/batch_*.pt"))[0]
                if kind == "drop_shard":
                    shard.unlink()
                else:
                    shard.write_bytes(shard.read_bytes()[:100])
            assert (run / "results.json").exists() == (last is not None), actions
            if last is not None:
                assert record(run)["metrics"] == references[last]["metrics"], actions
                assert torch.equal(torch.load(run / "samples.pt"), references[last]["samples"]), actions
                assert_consistent(run)


def test_figures_refuse_an_output_folder_that_is_a_file(tmp_path, capsys):
    from unmask.cli import figures

    out = tmp_path / "figures"
    out.write_text("a file")
    assert figures.main(["quickstart", str(tmp_path), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"unmask-figures: error: --out={out} is a file: pick a folder"


def test_ctrl_c_inside_lightnings_loop_is_one_line_with_status_130(tmp_path, capsys, monkeypatch):
    """Lightning answers an interrupt in ``predict`` with ``sys.exit(1)``; it is reported as Ctrl-C."""
    from unmask.lightning.eval_module import SamplingEvaluator

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(SamplingEvaluator, "predict_step", interrupted)
    code, err = run_in_process(evaluate, tmp_path / "run", SMALL, capsys, monkeypatch)
    assert code == 130, err
    assert err.strip().splitlines() == [
        "unmask-eval: interrupted; no result was written for the unfinished run"
    ]
    assert not (tmp_path / "run" / "results.json").exists()
