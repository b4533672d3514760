"""The configs ship with the package: ``pip install .`` (not editable) into a fresh venv runs
``unmask-eval`` and ``unmask-compare`` from any directory, and a user's own config directory is
added with ``--config-dir``.

The fresh venv gets the project's dependencies from this environment's site-packages through a
``.pth`` line (there is no network for a full install here); ``unmask`` itself is installed from
a wheel built from this tree, and the test checks that the installed copy is the one imported.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.subprocess]


def run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A fresh venv with ``unmask`` installed from a wheel of this tree; returns its bin dir."""
    base = tmp_path_factory.mktemp("fresh")
    project = base / "project"  # a copy, so the build leaves nothing in the clone
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copytree(ROOT / "src", project / "src", ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    wheels = base / "wheels"
    built = run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(wheels),
            str(project),
        ],
        cwd=base,
    )
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = wheels.glob("unmask-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {
        "unmask/conf/eval.yaml",
        "unmask/conf/sampler/llada.yaml",
        "unmask/conf/experiment/quickstart.yaml",
    } <= names
    venv = base / "venv"
    assert run([sys.executable, "-m", "venv", str(venv)], cwd=base).returncode == 0
    python = venv / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base)
    Path(site.stdout.strip(), "project-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    install = run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)], cwd=base
    )
    assert install.returncode == 0, install.stderr[-2000:]
    where = run([str(python), "-c", "import unmask.config as c; print(c.CONF_DIR)"], cwd=base)
    assert where.stdout.strip().startswith(str(venv)), where.stdout + where.stderr
    return venv / "bin"


def test_installed_unmask_compare_runs_outside_the_clone(installed, tmp_path):
    result = run(
        [
            str(installed / "unmask-compare"),
            "num_samples=10",
            "batch_size=10",
            "steps=[4]",
            f"hydra.run.dir={tmp_path}/c",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((tmp_path / "c" / "results.json").read_text())["rows"]


def test_installed_unmask_eval_takes_a_users_config_dir(installed, tmp_path):
    mine = tmp_path / "my_conf" / "sampler"
    mine.mkdir(parents=True)
    (mine / "my_llada.yaml").write_text(
        "_target_: unmask.samplers.build\nname: llada\nsteps: 4\nblock_length: null\ntemperature: 1.0\n"
        "remasking: low_confidence\n"
    )
    result = run(
        [
            str(installed / "unmask-eval"),
            "--config-dir",
            str(tmp_path / "my_conf"),
            "sampler=my_llada",
            "num_samples=8",
            "batch_size=8",
            "metrics=fast",
            f"hydra.run.dir={tmp_path}/e",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "e" / "results.json").read_text())
    assert record["config"]["sampler"]["name"] == "llada" and record["config"]["sampler"]["steps"] == 4
