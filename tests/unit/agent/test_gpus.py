"""GPUs on the agent: declaring them, finding them with nvidia-smi, what an attempt gets."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from agent.capacity import detect_gpus, parse_gpus, parse_nvidia_smi
from agent.runtime.base import gpu_environment, spec_from_container
from agent.runtime.container_cli import ContainerCliRuntime
from shoal.errors import InvalidArgument
from shoal.v1 import types_pb2

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("flag", "ids"),
    [("2", ("0", "1")), ("0", ()), ("none", ()), ("0,1", ("0", "1")), ("GPU-a1b2,GPU-c3d4", ("GPU-a1b2", "GPU-c3d4")), (" 3 ", ("0", "1", "2"))],
)
def test_gpus_flag_takes_a_count_or_device_ids(flag: str, ids: tuple[str, ...]) -> None:
    assert parse_gpus(flag) == ids


@pytest.mark.parametrize(("flag", "problem"), [("0,0", "listed twice"), ("0,,1", "device ids"), ("a b", "device ids"), ("2000", "at most 1024")])
def test_bad_gpus_flags_are_refused(flag: str, problem: str) -> None:
    with pytest.raises(InvalidArgument, match=problem):
        parse_gpus(flag)


def test_nvidia_smi_output_gives_the_device_indexes() -> None:
    text = "0, GPU-5e1a2c3d-0000-1111-2222-333344445555\n1, GPU-77aa2c3d-0000-1111-2222-333344445555\n\n"
    assert parse_nvidia_smi(text) == ("0", "1")
    assert parse_nvidia_smi("No devices were found\n") == ()


def test_detect_runs_nvidia_smi_with_the_documented_query(tmp_path: Path) -> None:
    fake = tmp_path / "nvidia-smi"
    fake.write_text('#!/bin/sh\n[ "$1 $2" = "--query-gpu=index,uuid --format=csv,noheader" ] || exit 9\necho "0, GPU-x"\necho "1, GPU-y"\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    assert detect_gpus(str(fake)) == ("0", "1")
    broken = tmp_path / "broken-smi"
    broken.write_text("#!/bin/sh\nexit 1\n")
    broken.chmod(broken.stat().st_mode | stat.S_IEXEC)
    assert detect_gpus(str(broken)) == ()  # a broken driver offers no GPUs
    assert detect_gpus(str(tmp_path / "absent")) == ()


def test_an_attempt_sees_only_its_devices() -> None:
    assert gpu_environment(("1", "3"), True) == {"CUDA_VISIBLE_DEVICES": "1,3", "NVIDIA_VISIBLE_DEVICES": "1,3"}
    assert gpu_environment((), True) == {"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"}
    assert gpu_environment((), False) == {}
    container = types_pb2.ContainerProperties(command=["x"], environment=[types_pb2.KeyValue(name="CUDA_VISIBLE_DEVICES", value="0,1")])
    spec = spec_from_container("j", 1, container, gpu_ids=("1",), node_has_gpus=True)
    # The job cannot widen its own assignment through its environment.
    assert spec.environment["CUDA_VISIBLE_DEVICES"] == "1" and spec.gpu_ids == ("1",)


def test_containers_get_their_devices_the_way_each_runtime_names_them() -> None:
    container = types_pb2.ContainerProperties(image="img", command=["x"])
    spec = spec_from_container("j", 1, container, gpu_ids=("0", "2"), node_has_gpus=True)
    podman = ContainerCliRuntime("podman", binary="podman").create_args(spec, "n")
    assert " ".join(podman).count("--device nvidia.com/gpu=") == 2
    assert "--device nvidia.com/gpu=0 --device nvidia.com/gpu=2" in " ".join(podman)
    docker = ContainerCliRuntime("docker", binary="docker").create_args(spec, "n")
    assert docker[docker.index("--gpus") + 1] == '"device=0,2"'
    # In the container its two devices are 0 and 1 to CUDA; the host's ids stay in NVIDIA_VISIBLE_DEVICES.
    for args in (podman, docker):
        assert "CUDA_VISIBLE_DEVICES=0,1" in args and "NVIDIA_VISIBLE_DEVICES=0,2" in args
    none = spec_from_container("j", 1, container)
    assert "--gpus" not in ContainerCliRuntime("docker", binary="docker").create_args(none, "n")
