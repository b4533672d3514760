"""A run prints what it did, not third-party noise, and an error once (cli/quiet.py, cli/errors.py)."""

from __future__ import annotations

from hydra_cli import run_cli

NOISE = (
    "anonymous setting",
    "litlogger",
    "LeafSpec",
    "predict returned None",
    "GPU available",
    "TPU available",
    "srun",
)


def test_an_evaluation_prints_no_known_noise(tmp_path):
    result = run_cli(
        "unmask.cli.evaluate", tmp_path, "num_samples=8", "batch_size=8", "sampler.steps=4", "metrics=fast"
    )
    assert result.returncode == 0, result.stderr[-2000:]
    printed = result.stdout + result.stderr
    for text in NOISE:
        assert text not in printed, text
    assert "run directory:" in result.stdout


def test_an_error_is_printed_once_and_kept_in_the_log(tmp_path):
    result = run_cli(
        "unmask.cli.evaluate",
        tmp_path,
        "num_samples=8",
        "batch_size=8",
        "model=faulty",
        "model.fault=exception",
        "model.at_call=2",
    )
    assert result.returncode == 1
    printed = result.stdout + result.stderr
    assert printed.count("injected failure at denoiser call 2") == 1, printed[-2000:]
    logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert "injected failure at denoiser call 2" in logs


def test_help_lists_only_the_groups_an_entry_point_can_use():
    import subprocess
    import sys

    from hydra_cli import ROOT

    def groups(module: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", module, "--help"], cwd=ROOT, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout.split("== Config ==")[0]

    listed = groups("unmask.cli.evaluate")
    assert "dataset:" in listed and "sampler:" in listed and "hybrid_g25" in listed
    assert "pretrain" not in listed  # the training recipes are on unmask-train's search path only
