"""A run directory: what the entry points write into it, when, and how, so that nothing in it
claims more than was done.

- **Checked before anything is written.** ``check_run_directory`` (run by the Hydra callback
  ``CheckRunDirectory`` before Hydra creates the folder) refuses, in one line, a run directory
  that is a file, lies under a file, cannot be written (tried with a probe file, so it also holds
  as root), or holds an output name that is not a regular file (a folder called
  ``results.json``).
- **The config snapshot after validation.** Hydra's own ``.hydra/`` snapshot is off
  (``hydra.output_subdir: null``: Hydra writes it before the task runs, so a refused rerun
  used to overwrite the snapshot of a finished run). ``snapshot_files`` gives the same three files
  (``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``); an entry point writes them once
  its input is valid, in a folder that holds no result yet (a crashed run is then visible as
  started), and always together with its results.
- **Results move together.** ``Commit`` writes every output (samples, the snapshot, then the
  record) to temporary files first; once all are written it withdraws the old record, moves the
  outputs into place, and moves the new record in last. A failure while writing leaves the old
  outputs untouched; a failure while moving leaves no record (the folder claims nothing, and a
  rerun resumes). The record lists the sha256 of every file it comes with.
- **Leftovers reported.** ``clean_leftovers`` removes the temporary files of an interrupted run
  (``*.tmp*`` and withdrawn records) on the next run, naming them in one warning.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from unmask.errors import ConfigError, wants_traceback
from unmask.io import sha256_of, write_json

log = logging.getLogger("unmask.rundir")

RECORD = "results.json"
SNAPSHOT_DIR = ".hydra"
OUTPUTS = (RECORD, "samples.pt", "samples.png", "samples.jsonl", SNAPSHOT_DIR)
WITHDRAWN = ".withdrawn"  # a record moved aside while its replacement is moved in
LEFTOVER_FOLDERS = (".", SNAPSHOT_DIR, "shards")


def check_run_directory(run_dir: Path, outputs: Iterable[str] = OUTPUTS, key: str = "hydra.run.dir") -> None:
    """``ConfigError`` naming ``key`` (and the output) unless ``run_dir`` is, or can be
    created as, a folder this process can write, whose existing ``outputs`` are files (folders
    for the snapshot) that can be replaced."""
    run_dir = Path(run_dir)
    existing = next(p for p in (run_dir, *run_dir.parents) if p.exists() or p == Path(p.anchor))
    if not existing.is_dir():
        what = "is a file" if existing == run_dir else f"lies under a file ({existing})"
        raise ConfigError(f"{key}={run_dir} {what}: pick a folder")
    try:
        handle, probe = tempfile.mkstemp(prefix=".unmask-probe-", dir=existing)
        os.close(handle)
        os.unlink(probe)
    except OSError as err:
        raise ConfigError(f"{key}={run_dir}: cannot write in {existing} ({err.strerror})") from None
    for name in outputs:
        path = run_dir / name
        wanted_dir = name == SNAPSHOT_DIR
        if path.exists() and path.is_dir() != wanted_dir:
            kind = "a file" if wanted_dir else "a folder"
            raise ConfigError(f"{key}={run_dir}: {path} is {kind}; move it away to run here")


def snapshot_files(cfg: Any) -> dict[str, str]:
    """The config snapshot of this run, ``{relative path: text}``: the task config, and inside
    a Hydra run its Hydra config and command-line overrides (the files Hydra itself writes)."""
    from omegaconf import OmegaConf

    files = {f"{SNAPSHOT_DIR}/config.yaml": OmegaConf.to_yaml(cfg)}
    try:
        from hydra.core.hydra_config import HydraConfig

        hydra_cfg = HydraConfig.get()
    except ValueError:  # not inside a Hydra run
        return files
    files[f"{SNAPSHOT_DIR}/hydra.yaml"] = OmegaConf.to_yaml(OmegaConf.create({"hydra": hydra_cfg}))
    files[f"{SNAPSHOT_DIR}/overrides.yaml"] = OmegaConf.to_yaml(list(hydra_cfg.overrides.task))
    return files


def write_snapshot(run_dir: Path, cfg: Any) -> None:
    """The snapshot of a run starting in a folder without a record (with a record present it
    is staged in the ``Commit`` of the new record, instead)."""
    if (Path(run_dir) / RECORD).exists():
        return
    with Commit(run_dir) as out:
        out.stage_snapshot(cfg)
        out.finish()


def is_leftover(path: Path) -> bool:
    return ".tmp" in path.name or WITHDRAWN in path.name or path.name.startswith(".unmask-probe-")


def clean_leftovers(run_dir: Path) -> list[Path]:
    """Remove the temporary files an interrupted run left (never a finished output), saying
    which in one warning; returns them."""
    found = [
        p
        for folder in LEFTOVER_FOLDERS
        if (Path(run_dir) / folder).is_dir()
        for p in sorted((Path(run_dir) / folder).iterdir())
        if p.is_file() and is_leftover(p)
    ]
    for path in found:
        path.unlink(missing_ok=True)
    if found:
        names = ", ".join(str(p.relative_to(run_dir)) for p in found[:5])
        more = f" and {len(found) - 5} more" if len(found) > 5 else ""
        log.warning("removed %d file(s) left by an interrupted run: %s%s", len(found), names, more)
    return found


class Commit:
    """Outputs of a run moved into ``run_dir`` all together (see the module docstring)::

        with Commit(run_dir) as out:
            out.stage("samples.pt", lambda path: torch.save(tokens, path))
            out.finish(record)  # results.json, with the sha256 of every staged file

    ``stage`` writes a file to a temporary name next to its place and returns that path (to
    read it back before the move, e.g. to log it); leaving the block without ``finish`` (an
    exception) removes the temporary files and leaves the folder as it was."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.staged: dict[str, Path] = {}

    def __enter__(self) -> Commit:
        return self

    def __exit__(self, *exc: Any) -> None:
        for tmp in self.staged.values():
            tmp.unlink(missing_ok=True)

    def stage(self, name: str, write: Callable[[Path], None]) -> Path:
        final = self.run_dir / name
        final.parent.mkdir(parents=True, exist_ok=True)
        self.staged[name] = final.with_name(f"{final.stem}.tmp{os.getpid()}{final.suffix}")  # suffix kept
        write(self.staged[name])
        return self.staged[name]

    def stage_snapshot(self, cfg: Any) -> None:
        """Stage the config snapshot of this run (``snapshot_files``)."""
        for name, text in snapshot_files(cfg).items():
            self.stage(name, lambda path, text=text: path.write_text(text))

    def finish(self, record: dict[str, Any] | None = None) -> dict[str, str]:
        """Move the staged files into place, then ``record`` (if any) as ``results.json`` with
        their sha256 under ``sha256``; returns the sha256."""
        digests = {name: sha256_of(tmp) for name, tmp in self.staged.items()}
        old_record = self.run_dir / RECORD
        withdrawn = old_record.with_name(f"{RECORD}{WITHDRAWN}{os.getpid()}")
        if record is not None:
            self.stage(RECORD, lambda path: write_json(path, record | {"sha256": digests}))
            if old_record.exists():
                os.replace(old_record, withdrawn)  # until the last move the folder claims nothing
        for name in sorted(self.staged, key=lambda n: n == RECORD):  # the record last
            os.replace(self.staged[name], self.run_dir / name)
        self.staged = {}
        withdrawn.unlink(missing_ok=True)
        return digests


def is_rank_zero() -> bool:
    """Whether this process is the first of its run (the one that writes the run's files)."""
    from lightning.pytorch.utilities import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


try:
    from hydra.experimental.callback import Callback
except ImportError:  # pragma: no cover - Hydra is a dependency
    Callback = object  # type: ignore[misc,assignment]


class CheckRunDirectory(Callback):
    """Hydra callback: ``check_run_directory`` on the run (or sweep) folder before Hydra
    creates it; a bad one ends the command with one line and exit status 2."""

    def __init__(self, program: str = "unmask") -> None:
        self.program = program

    def on_run_start(self, config: Any, **kwargs: Any) -> None:
        self.check(Path(str(config.hydra.run.dir)), OUTPUTS, "hydra.run.dir")

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        self.check(Path(str(config.hydra.sweep.dir)), (), "hydra.sweep.dir")

    def check(self, folder: Path, outputs: Iterable[str], key: str) -> None:
        try:
            check_run_directory(folder, outputs, key)
        except ConfigError as err:
            if wants_traceback():
                raise
            sys.stderr.write(f"{self.program}: error: {err}\n")
            sys.exit(2)
