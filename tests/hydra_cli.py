"""Run one of the project's Hydra entry points as a real subprocess from the repository root."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    module: str,
    run_dir: Path,
    *overrides: str,
    env: dict | None = None,
    multirun: bool = False,
    timeout: int = 600,
) -> subprocess.CompletedProcess:
    """``python -m module [-m] hydra.(run|sweep).dir=run_dir overrides...``, output captured."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    return subprocess.run(
        [sys.executable, "-m", module, *(["-m"] if multirun else []), f"{key}={run_dir}", *overrides],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def run_in_process(module, run_dir: Path, overrides: list[str], capsys, monkeypatch, multirun: bool = False):
    """``module.main()`` (a Hydra app) in this process with a patched ``sys.argv``: the console
    script's code path at a fraction of a subprocess's start-up. Returns (exit status, stderr)."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    argv = [module.__name__, *(["-m"] if multirun else []), f"{key}={run_dir}", *overrides]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("HYDRA_FULL_ERROR", raising=False)
    try:
        module.main()
    except SystemExit as exited:
        return exited.code, capsys.readouterr().err
    return 0, capsys.readouterr().err
