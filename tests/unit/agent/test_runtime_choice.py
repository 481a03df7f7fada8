"""How a node picks the runtime of an attempt, and what a StartAttempt carries into the spec."""

from __future__ import annotations

import pytest

from agent.runtime import NodeRuntimes, ProcessRuntime
from agent.runtime.base import AttemptSpec, CannotStart, Mount, Ulimit, spec_from_container
from agent.runtime.container_cli import ContainerCliRuntime, container_name
from shoal.v1 import types_pb2

pytestmark = pytest.mark.unit


def test_every_container_field_reaches_the_spec() -> None:
    container = types_pb2.ContainerProperties(
        image="localhost/app:1", command=["run"], runtime="podman", working_dir="/w", user="1000:1000",
        environment=[types_pb2.KeyValue(name="A", value="1")],
        resources=types_pb2.ResourceRequirements(vcpus=0.5, memory_mib=64),
        mounts=[types_pb2.Mount(source_path="/srv", read_only=True)], privileged=True,
        readonly_root_filesystem=True, ulimits=[types_pb2.Ulimit(name="nofile", soft_limit=1, hard_limit=2)],
        shared_memory_size_mib=16,
    )
    spec = spec_from_container("job:1", 2, container)
    assert spec == AttemptSpec(
        job_id="job:1", attempt=2, command=("run",), environment={"A": "1"}, image="localhost/app:1", vcpus=0.5,
        memory_mib=64, working_dir="/w", user="1000:1000", mounts=(Mount("/srv", "/srv", True),), privileged=True,
        readonly_root_filesystem=True, ulimits=(Ulimit("nofile", 1, 2),), shared_memory_size_mib=16, runtime="podman",
    )


def test_images_go_to_the_container_runtime_the_rest_to_processes() -> None:
    podman, process = ContainerCliRuntime("podman", binary="podman"), ProcessRuntime(cgroups=False)
    node = NodeRuntimes([podman, process])
    assert node.name == "podman" and node.names == ("podman", "process")
    assert node.choose(AttemptSpec("j", 1, ("x",), image="i")) is podman
    assert node.choose(AttemptSpec("j", 1, ("x",))) is process
    assert node.choose(AttemptSpec("j", 1, ("x",)), "podman") is podman
    with pytest.raises(CannotStart, match="runtime 'docker' is not available on this node"):
        node.choose(AttemptSpec("j", 1, ("x",)), "docker")
    only_processes = NodeRuntimes([process])
    with pytest.raises(CannotStart, match="no container runtime"):
        only_processes.choose(AttemptSpec("j", 1, ("x",), image="i"))


def test_create_args_carry_limits_labels_and_mounts() -> None:
    runtime = ContainerCliRuntime("podman", binary="podman", pull="never", oci_runtime="runc")
    spec = AttemptSpec("job:1", 3, ("sh", "-c", "true"), environment={"A": "b c"}, image="img", vcpus=1.5,
                       memory_mib=100, working_dir="/w", user="nobody", mounts=(Mount("/s", "/d", True),),
                       readonly_root_filesystem=True, shared_memory_size_mib=8, ulimits=(Ulimit("nofile", 10, 20),))
    args = runtime.create_args(spec, "shoal-job-1-3-abc")
    joined = " ".join(args)
    for part in ("--label shoal.job-id=job:1", "--label shoal.attempt=3", "--runtime runc", "--pull never",
                 "--cpus 1.5", "--memory 100m --memory-swap 100m", "--env A=b c", "--workdir /w", "--user nobody",
                 "--volume /s:/d:ro", "--read-only", "--shm-size 8m", "--ulimit nofile=10:20"):
        assert part in joined
    assert args[-4:] == ["img", "sh", "-c", "true"]
    assert "--privileged" not in args


def test_container_names_are_valid_and_unique() -> None:
    a, b = container_name("0b7c:12", 1), container_name("0b7c:12", 1)
    assert a.startswith("shoal-0b7c-12-1-") and a != b
