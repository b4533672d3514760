"""SLURM support: refuse a launcher request the cluster cannot satisfy, before submitting.

SLURM accepts some impossible requests and leaves them PENDING forever (e.g. more CPUs per task
than any node has), which makes a submitit sweep wait for ever. ``CheckSlurmRequest`` is a Hydra
callback (``hydra.callbacks`` in conf/eval.yaml): at the start of a multirun whose launcher is
submitit's SLURM launcher, it reads the partition's nodes with ``sinfo`` and compares them with
``hydra.launcher`` (partition, nodes, CPUs per node, GPUs, memory). A request that cannot fit
stops the sweep with one line naming the ``hydra.launcher`` keys and exit status 2.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

from hydra.experimental.callback import Callback

from unmask.errors import wants_traceback

log = logging.getLogger(__name__)


class SlurmRequestError(ValueError):
    """The launcher asks for something the partition does not have."""


@dataclass(frozen=True)
class NodeInfo:
    partition: str
    cpus: int
    memory_mb: int
    gpus: int
    available: bool


def parse_gpus(gres: str) -> int:
    """GPUs in an sinfo GRES string such as ``gpu:a100:4(S:0-1),shard:8`` (0 for ``(null)``)."""
    total = 0
    for item in gres.split(","):
        parts = item.split("(")[0].split(":")
        if parts[0] == "gpu" and len(parts) > 1 and parts[-1].isdigit():
            total += int(parts[-1])
    return total


def read_partitions(sinfo: str = "sinfo") -> list[NodeInfo]:
    """One ``NodeInfo`` per (partition, node type) line of ``sinfo``."""
    if shutil.which(sinfo) is None:
        raise SlurmRequestError(
            "hydra/launcher is a SLURM launcher but `sinfo` is not on PATH: submit from a SLURM "
            "login node (or start the test cluster: bash slurm/local_cluster.sh start)"
        )
    result = subprocess.run([sinfo, "-h", "-o", "%P|%c|%m|%G|%a"], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SlurmRequestError(f"`sinfo` failed: {result.stderr.strip() or result.returncode}")
    nodes = []
    for line in result.stdout.splitlines():
        partition, cpus, memory, gres, state = line.strip().split("|")
        nodes.append(
            NodeInfo(
                partition=partition.rstrip("*"),
                cpus=int(re.sub(r"\D.*", "", cpus) or 0),
                memory_mb=int(re.sub(r"\D.*", "", memory) or 0),
                gpus=parse_gpus(gres),
                available=state == "up",
            )
        )
    return nodes


def default_partition(sinfo: str = "sinfo") -> str | None:
    result = subprocess.run([sinfo, "-h", "-o", "%P"], capture_output=True, text=True, timeout=60)
    for name in result.stdout.split():
        if name.endswith("*"):
            return name[:-1]
    return None


def check_request(launcher: dict[str, Any], nodes: list[NodeInfo], default: str | None = None) -> None:
    """Raise ``SlurmRequestError`` naming the ``hydra.launcher`` keys when no node of the
    partition can run one task set of the job."""
    partition = launcher.get("partition") or default
    known = sorted({n.partition for n in nodes})
    mine = [n for n in nodes if n.partition == partition]
    if not mine:
        raise SlurmRequestError(
            f"hydra.launcher.partition={partition!r}: no such partition; sinfo lists {', '.join(known)}"
        )
    if not any(n.available for n in mine):
        raise SlurmRequestError(f"hydra.launcher.partition={partition!r} is not up")
    tasks = int(launcher.get("tasks_per_node") or 1)
    gpus = int(launcher.get("gpus_per_node") or 0)
    gres = launcher.get("gres")
    if gres:
        gpus = max(gpus, parse_gpus(str(gres)))
    if launcher.get("cpus_per_gpu"):
        cpus = int(launcher["cpus_per_gpu"]) * max(gpus, 1)
        cpu_keys = "cpus_per_gpu x gpus_per_node"
    else:
        cpus = int(launcher.get("cpus_per_task") or 1) * tasks
        cpu_keys = "cpus_per_task x tasks_per_node"
    most_cpus = max(n.cpus for n in mine)
    if cpus > most_cpus:
        raise SlurmRequestError(
            f"hydra.launcher: {cpu_keys} = {cpus} CPUs per node, but the nodes of partition "
            f"{partition!r} have at most {most_cpus} (SLURM would leave the job pending forever)"
        )
    most_gpus = max(n.gpus for n in mine)
    if gpus > most_gpus:
        raise SlurmRequestError(
            f"hydra.launcher.gpus_per_node={gpus}, but the nodes of partition {partition!r} have "
            f"{most_gpus or 'no'} GPUs; use a GPU partition, or gpus_per_node=null with hardware=ddp"
        )
    mem_gb = launcher.get("mem_gb")
    most_mb = max(n.memory_mb for n in mine)
    if mem_gb and int(mem_gb) * 1024 > most_mb:
        raise SlurmRequestError(
            f"hydra.launcher.mem_gb={mem_gb}, but the nodes of partition {partition!r} have at most "
            f"{most_mb // 1024} GB"
        )
    wanted_nodes = int(launcher.get("nodes") or 1)
    if wanted_nodes > 1 and wanted_nodes > node_count(partition):
        raise SlurmRequestError(
            f"hydra.launcher.nodes={wanted_nodes}, but partition {partition!r} has "
            f"{node_count(partition)} node(s)"
        )


def node_count(partition: str, sinfo: str = "sinfo") -> int:
    result = subprocess.run([sinfo, "-h", "-p", partition, "-o", "%D"], capture_output=True, text=True)
    return sum(int(x) for x in result.stdout.split() if x.isdigit())


def is_slurm_launcher(launcher: Any) -> bool:
    return "SlurmLauncher" in str(launcher.get("_target_", ""))


class CheckSlurmRequest(Callback):
    """Hydra callback: validate a SLURM launcher request against ``sinfo`` before the sweep."""

    def on_multirun_start(self, config: Any, **kwargs: Any) -> None:
        from omegaconf import OmegaConf

        launcher = config.hydra.launcher
        if not is_slurm_launcher(launcher):
            return
        request = OmegaConf.to_container(launcher, resolve=True)
        try:
            check_request(request, read_partitions(), default_partition())
        except SlurmRequestError as err:
            if wants_traceback():
                raise
            sys.stderr.write(f"{os.path.basename(sys.argv[0])}: error: {err}\n")
            sys.exit(2)
        log.info("SLURM request fits partition %s", request.get("partition"))
