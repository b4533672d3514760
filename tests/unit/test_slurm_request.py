"""Launcher requests checked against what sinfo reports, without a cluster."""

import pytest

from unmask.slurm import NodeInfo, SlurmRequestError, check_request, parse_gpus

CPU_NODE = NodeInfo("debug", cpus=2, memory_mb=22057, gpus=0, available=True)
GPU_NODE = NodeInfo("gpu", cpus=64, memory_mb=512000, gpus=8, available=True)


@pytest.mark.parametrize(
    ("gres", "gpus"), [("(null)", 0), ("gpu:4", 4), ("gpu:a100:8(S:0-1)", 8), ("gpu:2,shard:8", 2)]
)
def test_gpus_are_read_from_sinfo_gres(gres, gpus):
    assert parse_gpus(gres) == gpus


def test_requests_that_fit_pass():
    check_request({"partition": "debug", "cpus_per_task": 1, "tasks_per_node": 2}, [CPU_NODE, GPU_NODE])
    request = {"partition": "gpu", "gpus_per_node": 8, "tasks_per_node": 8, "cpus_per_gpu": 8, "mem_gb": 400}
    check_request(request, [CPU_NODE, GPU_NODE])
    check_request({"partition": None}, [CPU_NODE], default="debug")


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"partition": "debug", "cpus_per_task": 2, "tasks_per_node": 2}, "= 4 CPUs per node"),
        ({"partition": "gpu", "gpus_per_node": 4, "cpus_per_gpu": 32}, "cpus_per_gpu x gpus_per_node = 128"),
        ({"partition": "debug", "gpus_per_node": 1}, "gpus_per_node=1, but the nodes of partition 'debug'"),
        ({"partition": "debug", "gres": "gpu:1"}, "gpus_per_node=1"),
        ({"partition": "gpu", "gpus_per_node": 16}, "have 8 GPUs"),
        ({"partition": "debug", "mem_gb": 64}, "mem_gb=64"),
        ({"partition": "long"}, "partition='long': no such partition; sinfo lists debug, gpu"),
    ],
)
def test_requests_the_partition_cannot_satisfy_name_the_keys(request_, message):
    with pytest.raises(SlurmRequestError, match=message.replace("(", r"\(")):
        check_request(request_, [CPU_NODE, GPU_NODE])


def test_a_partition_that_is_down_is_refused():
    with pytest.raises(SlurmRequestError, match="is not up"):
        check_request({"partition": "debug"}, [NodeInfo("debug", 2, 1000, 0, available=False)])
