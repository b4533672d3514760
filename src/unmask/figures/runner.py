"""Producing a figure's data: an ``unmask-eval`` sweep of its preset (one process per model, in
parallel) or, for the figures that are exact computations, the computation itself; and turning
runs into the figure's tables and plot files."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from unmask.figures.records import FigureError, Run, check_runs
from unmask.figures.tables import Table, write_tables

log = logging.getLogger(__name__)
SWEEPS = Path("outputs/sweeps")


def split_overrides(overrides: list[str]) -> tuple[list[str], dict[str, str]]:
    """Hydra overrides split into plain ones and sweeps (``key=a,b``: ``{key: "a,b"}``)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    plain, sweeps = [], {}
    for override, parsed in zip(overrides, OverridesParser.create().parse_overrides(overrides), strict=True):
        if parsed.is_sweep_override():
            sweeps[parsed.get_key_element().lstrip("+~")] = override.split("=", 1)[1]
        else:
            plain.append(override)
    return plain, sweeps


def compose_preset(name: str, overrides: list[str]) -> Any:
    """The preset ``experiment=<name>`` composed with the plain ``overrides`` (hydra config
    included)."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException

    from unmask.config import CONF_DIR

    plain, _ = split_overrides(overrides)
    try:
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return compose("eval", overrides=[f"experiment={name}", *plain], return_hydra_config=True)
    except HydraException as err:
        raise FigureError(f"{name}: bad override: {str(err).splitlines()[0]}") from None


def sweep_axes(cfg: Any, overrides: list[str]) -> dict[str, list[str]]:
    """The preset's sweep axes, with the command line's overrides of the same keys applied in
    order (a later one replaces an earlier one, as Hydra does)."""
    axes = {str(k): str(v).split(",") for k, v in (cfg.hydra.sweeper.params or {}).items()}
    for override in overrides:  # in order: the last override of a key wins, as in Hydra
        plain, sweeps = split_overrides([override])
        if sweeps:
            key, values = next(iter(sweeps.items()))
            axes[key] = values.split(",")
        elif plain:
            key, value = override.split("=", 1)
            if key.lstrip("+~") in axes:
                axes[key.lstrip("+~")] = [value]
    return axes


def timestamp() -> str:
    return dt.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")


def eval_command(preset: str, overrides: list[str], sweep_dir: Path, extra: list[str]) -> list[str]:
    return [
        sys.executable,
        "-m",
        "unmask.cli.evaluate",
        "-m",
        f"experiment={preset}",
        *overrides,
        *extra,
        f"hydra.sweep.dir={sweep_dir}",
    ]


def shown(command: list[str]) -> str:
    """The command as a user would type it (``unmask-eval`` for ``python -m unmask.cli.evaluate``)."""
    return shlex.join(["unmask-eval", *command[3:]])


def also_sweeps(cfg: Any) -> list[list[str]]:
    """The preset's further sweeps (``figure.also``: lists of overrides of its sweep, e.g. one
    reference run per seed), each run after the main sweep by the same process per model."""
    from omegaconf import OmegaConf

    also = OmegaConf.to_container(cfg.figure, resolve=False).get("also") or []
    if not isinstance(also, list) or not all(
        isinstance(a, list) and all(isinstance(o, str) for o in a) for a in also
    ):
        raise FigureError(f"figure.also={also!r} must be a list of lists of overrides")
    return also


@dataclass
class Slot:
    """One model group's process slot: its commands (run in order) and the one running now."""

    group: list[str]
    folder: Path
    chain: list[tuple[list[str], Path]]  # (command, log file) still to run
    logfile: Path | None = None
    handle: Any = None
    process: Any = None

    def launch_next(self) -> None:
        command, self.logfile = self.chain.pop(0)
        print(f"  $ {shown(command)}  > {self.logfile}", flush=True)
        self.handle = open(self.logfile, "w")  # noqa: SIM115  (closed when the process ends)
        self.process = subprocess.Popen(
            command, stdout=self.handle, stderr=subprocess.STDOUT, env=child_env()
        )


def run_sweep(preset: str, overrides: list[str], base: Path, jobs: int = 2) -> Path:
    """Run ``unmask-eval -m experiment=<preset>`` into ``base``: one process per model (at most
    ``jobs`` at a time, the CPU's threads shared between them), each logging to
    ``base/<model>.log``, then the preset's ``figure.also`` sweeps one after the other in the same
    slot (into ``<model>/also<i>``, logging to ``<model>_also<i>.log``). Returns ``base``; a failed
    process is a ``FigureError`` with its log."""
    cfg = compose_preset(preset, overrides)
    axes = sweep_axes(cfg, overrides)
    models = axes.pop("model", [str(cfg.model.name)])
    also = also_sweeps(cfg)
    per_model = math.prod(len(v) for v in axes.values())
    for extra_overrides in also:
        extra_axes = sweep_axes(cfg, [*overrides, *extra_overrides])
        extra_axes.pop("model", None)
        per_model += math.prod(len(v) for v in extra_axes.values())
    others = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "model"]
    parallel = max(1, min(jobs, len(models)))
    groups = [[m] for m in models] if parallel > 1 else [models]
    threads: int | str = max(1, (os.cpu_count() or 1) // parallel)
    given = [o.split("=", 1)[1] for o in overrides if o.startswith("hardware.num_threads=")]
    extra = [] if given else [f"hardware.num_threads={threads}"]
    threads = given[-1] if given else threads
    base.mkdir(parents=True, exist_ok=True)
    pending = []  # per group: its folder and its commands, run in order
    for group in groups:
        folder = base / group[0] if len(groups) > 1 else base
        name = "_".join(group)
        chain = [
            (eval_command(preset, [*others, f"model={','.join(group)}"], folder, extra), base / f"{name}.log")
        ]
        for i, extra_overrides in enumerate(also):
            command = eval_command(
                preset, [*others, *extra_overrides, f"model={','.join(group)}"], folder / f"also{i}", extra
            )
            chain.append((command, base / f"{name}_also{i}.log"))
        pending.append((group, folder, chain))
    print(
        f"{preset}: {len(models) * per_model} runs, {len(groups)} process(es) of {threads} thread(s)",
        flush=True,
    )
    running: list[Slot] = []
    done_counts: dict[str, int] = {}
    start = time.perf_counter()
    while pending or running:
        while pending and len(running) < parallel:
            slot = Slot(*pending.pop(0))
            slot.launch_next()
            running.append(slot)
        time.sleep(1.0)
        for slot in list(running):
            count = sum(1 for _ in slot.folder.rglob("results.json")) if slot.folder.exists() else 0
            name = ",".join(slot.group)
            if done_counts.get(name) != count:
                done_counts[name] = count
                seconds = time.perf_counter() - start
                print(f"  [{name}] {count}/{per_model * len(slot.group)} runs ({seconds:.0f} s)", flush=True)
            if slot.process.poll() is None:
                continue
            slot.handle.close()
            if slot.process.returncode == 0 and slot.chain:
                slot.launch_next()
                continue
            running.remove(slot)
            if slot.process.returncode != 0:
                for other in running:
                    other.process.terminate()
                    other.process.wait()
                    other.handle.close()
                tail = "\n".join(slot.logfile.read_text().splitlines()[-15:])
                raise FigureError(
                    f"unmask-eval failed for model={name} (exit {slot.process.returncode}); "
                    f"its log ends with:\n{tail}",
                    [str(slot.logfile)],
                )
    print(f"{preset}: done in {time.perf_counter() - start:.0f} s -> {base}", flush=True)
    return base


def child_env() -> dict[str, str]:
    """The environment of the evaluation processes: this one, with the package importable."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if src not in paths:
        env["PYTHONPATH"] = os.pathsep.join([src, *paths])
    return env


def run_computed(module: ModuleType, overrides: list[str], base: Path) -> Path:
    """Compute a figure that needs no sampling run; its record goes to ``base/results.json``."""
    from omegaconf import OmegaConf

    from unmask.io import git_sha, write_json_atomic

    cfg = compose_preset(module.NAME, overrides)
    settings = OmegaConf.to_container(cfg.figure, resolve=True)
    shown_settings = ", ".join(f"{k}={v}" for k, v in settings.items() if not isinstance(v, dict))
    print(
        f"{module.NAME}: computing ({shown_settings})",
        flush=True,
    )
    start = time.perf_counter()
    tables = module.compute(settings)
    seconds = time.perf_counter() - start
    record = {
        "kind": "computed",
        "figure": module.NAME,
        "config": {"experiment": module.NAME, "figure": settings},
        "tables": tables,
        "seconds": seconds,
        "git_sha": git_sha(),
        "end_time": dt.datetime.now(dt.timezone.utc).isoformat(),
    }
    write_json_atomic(base / "results.json", record)
    print(f"{module.NAME}: computed in {seconds:.0f} s -> {base / 'results.json'}", flush=True)
    return base


def latest_sweep(name: str) -> Path | None:
    """The most recent ``outputs/sweeps/<name>/<time>`` folder, if any."""
    folder = SWEEPS / name
    candidates = sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    return candidates[-1] if candidates else None


def no_data(module: ModuleType, sources: list[str]) -> FigureError:
    where = ", ".join(sources) if sources else "(no input)"
    if module.COMPUTED:
        how = f"unmask-figures {module.NAME}  (computes it: {module.RUNTIME})"
    else:
        how = (
            f"unmask-figures {module.NAME} --run  (or: unmask-eval -m experiment={module.NAME}, then "
            f"unmask-figures {module.NAME} outputs/sweeps/{module.NAME}/<time>; "
            f"{module.RUNTIME} on the 2-core CPU)"
        )
    return FigureError(
        f"{module.NAME}: no data in {where}; it needs {module.NEEDS}; produce them with: {how}"
    )


def produce(
    module: ModuleType, runs: list[Run], out_dir: Path, sources: list[str]
) -> tuple[list[Table], list[Path]]:
    """Select the figure's runs, check them, and write its tables and plot files."""
    selected = module.select(runs)
    if not selected:
        raise no_data(module, sources)
    if not module.COMPUTED:
        check_runs(selected, module.point, getattr(module, "SHARED", ("seed",)))
    elif len(selected) > 1:
        raise FigureError(
            f"{module.NAME}: {len(selected)} computed records; pass one", [r.source for r in selected]
        )
    tables = module.collect(selected)
    files = write_tables(tables, out_dir, module.NAME, heading=module.TITLE)
    files += module.draw(tables, out_dir)
    return tables, files


def grid_points(axes: dict[str, list[str]]) -> list[dict[str, str]]:
    keys = list(axes)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*axes.values())]
