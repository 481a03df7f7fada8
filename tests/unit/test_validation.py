"""Request validation: every rule refuses bad input naming the field; good input passes."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from controller.domain.validation import (
    parse_definition_ref,
    resolve_submission,
    submission_template,
    validate_cancel,
    validate_container_properties,
    validate_create_compute_environment,
    validate_create_job_queue,
    validate_job_id,
    validate_name,
    validate_register,
    validate_register_job_definition,
    validate_submit,
    validate_submit_batch,
    validate_terminate,
    validate_update_compute_environment,
    validate_update_job_queue,
)
from shoal.errors import InvalidArgument
from shoal.v1 import agent_pb2, batch_pb2, types_pb2

pytestmark = pytest.mark.unit

JOB_ID = "3f2a9c1e-7b4d-4e5f-8a6b-1c2d3e4f5a6b"
OTHER_ID = "0d6f1a2b-3c4d-4e5f-9a0b-1c2d3e4f5a6b"


def refused(fn: Callable, *args, field: str, problem: str = "") -> None:
    """fn(*args) raises InvalidArgument whose message starts with '<field>: ' and mentions problem."""
    with pytest.raises(InvalidArgument) as info:
        fn(*args)
    message = info.value.message
    assert message.startswith(f"{field}: "), message
    assert problem in message, message


# -- names, refs, ids -------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a", "A", "0", "my-job_1", "x" * 128, "9lives"])
def test_good_names(name):
    validate_name(name, "job_name")


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "is required"),
        ("x" * 129, "at most 128"),
        ("-lead", "starting with a letter or digit"),
        ("_lead", "starting with a letter or digit"),
        ("has space", "letters, digits"),
        ("dot.ted", "letters, digits"),
        ("ünï", "letters, digits"),
        ("a/b", "letters, digits"),
    ],
)
def test_bad_names(name, problem):
    refused(validate_name, name, "job_queue_name", field="job_queue_name", problem=problem)


@pytest.mark.parametrize(
    ("ref", "parsed"), [("def", ("def", None)), ("def:1", ("def", 1)), ("d-1:42", ("d-1", 42))]
)
def test_definition_refs(ref, parsed):
    assert parse_definition_ref(ref, "job_definition") == parsed


@pytest.mark.parametrize("ref", ["", ":1", "def:", "def:0", "def:-1", "def:x", "def:1:2", "de f:1", "def:１"])
def test_bad_definition_refs(ref):
    refused(parse_definition_ref, ref, "job_definition", field="job_definition")


@pytest.mark.parametrize("job_id", [JOB_ID, f"{JOB_ID}:0", f"{JOB_ID}:9999"])
def test_good_job_ids(job_id):
    validate_job_id(job_id, "job_id")


@pytest.mark.parametrize(
    "job_id",
    [
        "",
        "not-a-uuid",
        JOB_ID.upper(),  # canonical form is lowercase
        JOB_ID.replace("-", ""),
        "3f2a9c1e-7b4d-1e5f-8a6b-1c2d3e4f5a6b",  # version 1, not 4
        "3f2a9c1e-7b4d-4e5f-ca6b-1c2d3e4f5a6b",  # wrong variant
        f"{JOB_ID}:",
        f"{JOB_ID}:01",
        f"{JOB_ID}:-1",
        f"{JOB_ID}:100000",
        f"{JOB_ID}:1:2",
        f" {JOB_ID}",
    ],
)
def test_bad_job_ids(job_id):
    refused(validate_job_id, job_id, "depends_on[0].job_id", field="depends_on[0].job_id")


# -- submit -----------------------------------------------------------------------------------


def submit(**kw) -> batch_pb2.SubmitJobRequest:
    """A valid inline submission, with the given fields replaced."""
    fields = {
        "job_name": "job",
        "job_queue": "q",
        "container_overrides": batch_pb2.ContainerOverrides(command=["echo", "hi"]),
        **kw,
    }
    return batch_pb2.SubmitJobRequest(**fields)


def kv(name, value="v"):
    return types_pb2.KeyValue(name=name, value=value)


def with_overrides(**kw) -> batch_pb2.SubmitJobRequest:
    req = submit()
    for key, value in kw.items():
        field = getattr(req.container_overrides, key)
        if isinstance(value, list):
            del field[:]
            field.extend(value)
        else:
            setattr(req.container_overrides, key, value)
    return req


def with_retry(**kw) -> batch_pb2.SubmitJobRequest:
    req = submit()
    req.retry_strategy.CopyFrom(types_pb2.RetryStrategy(**kw))
    return req


def rule(**kw):
    kw.setdefault("action", types_pb2.RETRY_ACTION_RETRY)
    return types_pb2.EvaluateOnExit(**kw)


def good_submits():
    defined = batch_pb2.SubmitJobRequest(job_name="j", job_definition="def:3")
    yield "minimal inline", submit()
    yield "definition without command", defined
    yield (
        "no queue",
        batch_pb2.SubmitJobRequest(
            job_name="j", container_overrides=batch_pb2.ContainerOverrides(command=["true"])
        ),
    )
    yield (
        "full",
        batch_pb2.SubmitJobRequest(
            job_name="j",
            job_queue="q",
            job_definition="def",
            container_overrides=batch_pb2.ContainerOverrides(
                command=["x"] * 256,
                environment=[kv(f"V{i}") for i in range(100)],
                vcpus=1024,
                memory_mib=4,
                runtime="process",
            ),
            depends_on=[
                types_pb2.JobDependency(job_id=JOB_ID),
                types_pb2.JobDependency(job_id=f"{OTHER_ID}:3"),
            ],
            retry_strategy=types_pb2.RetryStrategy(
                attempts=10,
                evaluate_on_exit=[
                    rule(on_exit_code="1*"),
                    rule(on_reason="Out*"),
                    rule(on_status_reason="Host*"),
                ]
                + [rule(on_exit_code="*", action=types_pb2.RETRY_ACTION_EXIT)] * 2,
                interruption_attempts=10,
            ),
            timeout=types_pb2.JobTimeout(attempt_duration_seconds=1),
            tags={f"k{i}": "v" * 256 for i in range(50)},
            parameters={f"p{i}": "v" for i in range(100)},
        ),
    )
    yield "fractional vcpus", with_overrides(vcpus=0.25)
    yield "max memory", with_overrides(memory_mib=16 * 1024 * 1024)
    yield "arg of 32 KiB", with_overrides(command=["a" * 32 * 1024])


@pytest.mark.parametrize("req", [r for _, r in good_submits()], ids=[n for n, _ in good_submits()])
def test_good_submits(req):
    validate_submit(req)


BAD_SUBMITS = [
    # (id, request, field, problem)
    ("no name", submit(job_name=""), "job_name", "is required"),
    ("bad name", submit(job_name="a b"), "job_name", ""),
    ("bad queue", submit(job_queue="-q"), "job_queue", ""),
    ("bad definition", submit(job_definition="d:0"), "job_definition", "revision"),
    (
        "no command inline",
        batch_pb2.SubmitJobRequest(job_name="j"),
        "container_overrides.command",
        "is required",
    ),
    ("257 args", with_overrides(command=["x"] * 257), "container_overrides.command", "256 arguments"),
    (
        "arg too big",
        with_overrides(command=["a", "b" * (32 * 1024 + 1)]),
        "container_overrides.command[1]",
        "bytes",
    ),
    (
        "command too big",
        with_overrides(command=["b" * (32 * 1024)] * 9),
        "container_overrides.command",
        "in all",
    ),
    (
        "env name",
        with_overrides(environment=[kv("OK"), kv("1BAD")]),
        "container_overrides.environment[1].name",
        "",
    ),
    ("env name dash", with_overrides(environment=[kv("A-B")]), "container_overrides.environment[0].name", ""),
    (
        "env SHOAL_",
        with_overrides(environment=[kv("SHOAL_JOB_ID")]),
        "container_overrides.environment[0].name",
        "reserved",
    ),
    (
        "env AWS_BATCH_",
        with_overrides(environment=[kv("AWS_BATCH_JOB_ID")]),
        "container_overrides.environment[0].name",
        "reserved",
    ),
    (
        "101 env",
        with_overrides(environment=[kv(f"V{i}") for i in range(101)]),
        "container_overrides.environment",
        "100",
    ),
    ("vcpus < 0", with_overrides(vcpus=-1), "container_overrides.vcpus", "must be > 0 (got -1)"),
    ("vcpus 0", with_overrides(vcpus=0), "container_overrides.vcpus", "must be > 0"),
    ("vcpus big", with_overrides(vcpus=1025), "container_overrides.vcpus", "<= 1024"),
    ("vcpus nan", with_overrides(vcpus=float("nan")), "container_overrides.vcpus", "finite"),
    ("vcpus inf", with_overrides(vcpus=float("inf")), "container_overrides.vcpus", "finite"),
    ("memory small", with_overrides(memory_mib=3), "container_overrides.memory_mib", "4..16777216"),
    ("memory 0", with_overrides(memory_mib=0), "container_overrides.memory_mib", ""),
    ("memory big", with_overrides(memory_mib=16 * 1024 * 1024 + 1), "container_overrides.memory_mib", ""),
    ("runtime bogus", with_overrides(runtime="lxc"), "container_overrides.runtime", "one of"),
    (
        "21 deps",
        submit(depends_on=[types_pb2.JobDependency(job_id=f"{JOB_ID[:-2]}{i:02x}") for i in range(21)]),
        "depends_on",
        "20",
    ),
    ("dep id", submit(depends_on=[types_pb2.JobDependency(job_id="nope")]), "depends_on[0].job_id", ""),
    (
        "dep twice",
        submit(depends_on=[types_pb2.JobDependency(job_id=JOB_ID), types_pb2.JobDependency(job_id=JOB_ID)]),
        "depends_on[1].job_id",
        "twice",
    ),
    (
        "array 1",
        submit(array_properties=types_pb2.ArrayProperties(size=1)),
        "array_properties.size",
        "2..10000",
    ),
    (
        "array big",
        submit(array_properties=types_pb2.ArrayProperties(size=10001)),
        "array_properties.size",
        "",
    ),
    ("attempts 11", with_retry(attempts=11), "retry_strategy.attempts", "0..10"),
    (
        "6 rules",
        with_retry(evaluate_on_exit=[rule(on_exit_code="1")] * 6),
        "retry_strategy.evaluate_on_exit",
        "5",
    ),
    (
        "rule action",
        with_retry(evaluate_on_exit=[rule(on_exit_code="1", action=0)]),
        "retry_strategy.evaluate_on_exit[0].action",
        "RETRY or EXIT",
    ),
    (
        "rule empty",
        with_retry(evaluate_on_exit=[rule()]),
        "retry_strategy.evaluate_on_exit[0]",
        "at least one",
    ),
    (
        "exit code glob",
        with_retry(evaluate_on_exit=[rule(on_reason="x"), rule(on_exit_code="1?")]),
        "retry_strategy.evaluate_on_exit[1].on_exit_code",
        "digits and '*'",
    ),
    (
        "glob long",
        with_retry(evaluate_on_exit=[rule(on_status_reason="x" * 513)]),
        "retry_strategy.evaluate_on_exit[0].on_status_reason",
        "512",
    ),
    (
        "interruptions 11",
        with_retry(interruption_attempts=11),
        "retry_strategy.interruption_attempts",
        "0..10",
    ),
    ("51 tags", submit(tags={f"k{i}": "v" for i in range(51)}), "tags", "50"),
    ("tag key", submit(tags={"k" * 129: "v"}), f"tags[{'k' * 129!r}]", "key"),
    ("tag empty key", submit(tags={"": "v"}), "tags['']", "key"),
    ("tag value", submit(tags={"k": "v" * 257}), "tags['k']", "value"),
    ("101 params", submit(parameters={f"p{i}": "v" for i in range(101)}), "parameters", "100"),
]


@pytest.mark.parametrize(
    ("req", "field", "problem"), [c[1:] for c in BAD_SUBMITS], ids=[c[0] for c in BAD_SUBMITS]
)
def test_bad_submits(req, field, problem):
    refused(validate_submit, req, field=field, problem=problem)


ARRAY_ONLY = [
    (
        "n_to_n",
        submit(depends_on=[types_pb2.JobDependency(job_id=JOB_ID, type=types_pb2.DEPENDENCY_TYPE_N_TO_N)]),
        "depends_on[0].type",
        "N_TO_N applies to array jobs only",
    ),
    (
        "sequential",
        submit(depends_on=[types_pb2.JobDependency(type=types_pb2.DEPENDENCY_TYPE_SEQUENTIAL)]),
        "depends_on[0].type",
        "SEQUENTIAL applies to array jobs only",
    ),
    (
        "parallelism",
        submit(array_properties=types_pb2.ArrayProperties(parallelism=3)),
        "array_properties.parallelism",
        "array jobs only",
    ),
    (
        "index",
        submit(array_properties=types_pb2.ArrayProperties(size=3, index=2)),
        "array_properties.index",
        "set by shoal",
    ),
]


@pytest.mark.parametrize(
    ("req", "field", "problem"), [c[1:] for c in ARRAY_ONLY], ids=[c[0] for c in ARRAY_ONLY]
)
def test_array_only_settings_need_an_array(req, field, problem):
    refused(validate_submit, req, field=field, problem=problem)


def test_array_submissions_with_typed_dependencies_pass():
    validate_submit(
        submit(
            array_properties=types_pb2.ArrayProperties(size=10, parallelism=2),
            depends_on=[
                types_pb2.JobDependency(job_id=JOB_ID, type=types_pb2.DEPENDENCY_TYPE_N_TO_N),
                types_pb2.JobDependency(type=types_pb2.DEPENDENCY_TYPE_SEQUENTIAL),
            ],
        )
    )
    validate_submit(
        submit(depends_on=[types_pb2.JobDependency(job_id=JOB_ID, type=types_pb2.DEPENDENCY_TYPE_AFTER_ANY)])
    )


def test_container_submissions_are_accepted():
    validate_submit(with_overrides(image="alpine:3"))
    validate_submit(with_overrides(image="localhost/shoal-test/busybox:1", runtime="podman"))
    validate_submit(with_overrides(image="registry.example.com:5000/team/app@sha256:abc", runtime="docker"))


@pytest.mark.parametrize(
    ("req", "field", "problem"),
    [
        (with_overrides(image="has space"), "container_overrides.image", "image reference"),
        (with_overrides(image="alpine", runtime="process"), "container_overrides.runtime", "cannot run an image"),
    ],
)
def test_bad_container_overrides(req, field, problem):
    refused(validate_submit, req, field=field, problem=problem)


def test_submit_batch():
    validate_submit_batch([submit()] * 1000)
    refused(validate_submit_batch, [], field="jobs", problem="at least one")
    refused(validate_submit_batch, [submit()] * 1001, field="jobs", problem="1000")
    refused(
        validate_submit_batch,
        [submit(), submit(), submit(), submit(job_name="")],
        field="jobs[3].job_name",
    )
    refused(
        validate_submit_batch,
        [submit(), with_overrides(vcpus=-1)],
        field="jobs[1].container_overrides.vcpus",
        problem="must be > 0 (got -1)",
    )


# -- job definitions --------------------------------------------------------------------------


def definition(**cp) -> batch_pb2.RegisterJobDefinitionRequest:
    cp.setdefault("command", ["echo", "hi"])
    return batch_pb2.RegisterJobDefinitionRequest(
        job_definition_name="def", container_properties=types_pb2.ContainerProperties(**cp)
    )


def test_good_definitions():
    validate_register_job_definition(definition())
    validate_register_job_definition(
        definition(
            image="localhost/app:1", working_dir="/work", user="1000:1000", privileged=False,
            mounts=[types_pb2.Mount(source_path="/srv/data", container_path="/data", read_only=True)],
            ulimits=[types_pb2.Ulimit(name="nofile", soft_limit=1024, hard_limit=4096)],
            readonly_root_filesystem=True, shared_memory_size_mib=64,
        )
    )
    validate_register_job_definition(definition(command=[], image="localhost/app:1"))
    validate_register_job_definition(
        definition(resources=types_pb2.ResourceRequirements(vcpus=0.5, memory_mib=64), runtime="process")
    )
    validate_container_properties(types_pb2.ContainerProperties(command=["x"]), "container_properties")


@pytest.mark.parametrize(
    ("req", "field", "problem"),
    [
        (
            batch_pb2.RegisterJobDefinitionRequest(job_definition_name="def"),
            "container_properties.command",
            "required",
        ),
        (definition(command=[]), "container_properties.command", "required"),
        (definition(command=["x"] * 257), "container_properties.command", "256"),
        (definition(environment=[kv("SHOAL_X")]), "container_properties.environment[0].name", "reserved"),
        (
            definition(resources=types_pb2.ResourceRequirements(vcpus=-2)),
            "container_properties.resources.vcpus",
            ">",
        ),
        (
            definition(resources=types_pb2.ResourceRequirements(vcpus=float("nan"))),
            "container_properties.resources.vcpus",
            "finite",
        ),
        (
            definition(resources=types_pb2.ResourceRequirements(memory_mib=2)),
            "container_properties.resources.memory_mib",
            "",
        ),
        (
            definition(resources=types_pb2.ResourceRequirements(gpus=2000)),
            "container_properties.resources.gpus",
            "1024",
        ),
        (definition(runtime="lxc"), "container_properties.runtime", ""),
        (definition(runtime="docker"), "container_properties.image", "required with runtime docker"),
        (definition(image="alpine", runtime="process"), "container_properties.runtime", "cannot run an image"),
        (definition(image="a b"), "container_properties.image", "image reference"),
        (definition(image="a", working_dir="rel/dir"), "container_properties.working_dir", "absolute"),
        (definition(image="a", user="root;rm"), "container_properties.user", "uid:gid"),
        (definition(image="a", mounts=[types_pb2.Mount(source_path="data", container_path="/d")]),
         "container_properties.mounts[0].source_path", "absolute"),
        (definition(image="a", mounts=[types_pb2.Mount(source_path="/d/../etc", container_path="/d")]),
         "container_properties.mounts[0].source_path", ".."),
        (definition(image="a", mounts=[types_pb2.Mount(source_path="/d"), types_pb2.Mount(source_path="/e", container_path="/d")]),
         "container_properties.mounts[1].container_path", "twice"),
        (definition(image="a", ulimits=[types_pb2.Ulimit(name="files", soft_limit=1, hard_limit=1)]),
         "container_properties.ulimits[0].name", "nofile"),
        (definition(image="a", ulimits=[types_pb2.Ulimit(name="nofile", soft_limit=10, hard_limit=5)]),
         "container_properties.ulimits[0]", "soft_limit"),
        (definition(runtime="process", privileged=True), "container_properties.privileged", "containers only"),
    ],
)
def test_bad_definitions(req, field, problem):
    refused(validate_register_job_definition, req, field=field, problem=problem)


def test_bad_definition_name_retry_tags():
    req = definition()
    req.job_definition_name = "no good"
    refused(validate_register_job_definition, req, field="job_definition_name")
    req = definition()
    req.retry_strategy.attempts = 11
    refused(validate_register_job_definition, req, field="retry_strategy.attempts")
    req = definition()
    req.tags.update({f"k{i}": "" for i in range(51)})
    refused(validate_register_job_definition, req, field="tags")
    req = definition()
    req.parameters.update({f"k{i}": "" for i in range(101)})
    refused(validate_register_job_definition, req, field="parameters")


# -- queues and compute environments ----------------------------------------------------------


def ce_order(*pairs):
    return [types_pb2.ComputeEnvironmentOrder(order=o, compute_environment=n) for o, n in pairs]


def create_queue(**kw):
    kw.setdefault("job_queue_name", "q")
    kw.setdefault("compute_environment_order", ce_order((1, "a")))
    return batch_pb2.CreateJobQueueRequest(**kw)


def test_good_queues():
    validate_create_job_queue(create_queue())
    validate_create_job_queue(
        create_queue(
            priority=1000,
            state=types_pb2.ENTITY_STATE_DISABLED,
            compute_environment_order=ce_order((2, "a"), (1, "b"), (0, "c")),
        )
    )
    validate_update_job_queue(batch_pb2.UpdateJobQueueRequest(job_queue_name="q"))
    validate_update_job_queue(batch_pb2.UpdateJobQueueRequest(job_queue_name="q", priority=0))


@pytest.mark.parametrize(
    ("req", "field", "problem"),
    [
        (create_queue(job_queue_name=""), "job_queue_name", "required"),
        (create_queue(priority=-1), "priority", "0..1000"),
        (create_queue(priority=1001), "priority", "0..1000"),
        (create_queue(state=7), "state", "unknown"),
        (create_queue(compute_environment_order=[]), "compute_environment_order", "1..3"),
        (
            create_queue(compute_environment_order=ce_order((1, "a"), (2, "b"), (3, "c"), (4, "d"))),
            "compute_environment_order",
            "1..3",
        ),
        (
            create_queue(compute_environment_order=ce_order((1, "a"), (1, "b"))),
            "compute_environment_order[1].order",
            "twice",
        ),
        (
            create_queue(compute_environment_order=ce_order((1, "a"), (2, "a"))),
            "compute_environment_order[1].compute_environment",
            "twice",
        ),
        (
            create_queue(compute_environment_order=ce_order((1, "a b"))),
            "compute_environment_order[0].compute_environment",
            "",
        ),
    ],
)
def test_bad_create_queue(req, field, problem):
    refused(validate_create_job_queue, req, field=field, problem=problem)


@pytest.mark.parametrize(
    ("req", "field"),
    [
        (batch_pb2.UpdateJobQueueRequest(job_queue_name=""), "job_queue_name"),
        (batch_pb2.UpdateJobQueueRequest(job_queue_name="q", priority=2000), "priority"),
        (batch_pb2.UpdateJobQueueRequest(job_queue_name="q", state=9), "state"),
        (
            batch_pb2.UpdateJobQueueRequest(
                job_queue_name="q", compute_environment_order=ce_order((1, "a"), (1, "b"))
            ),
            "compute_environment_order[1].order",
        ),
    ],
)
def test_bad_update_queue(req, field):
    refused(validate_update_job_queue, req, field=field)


MANAGED = types_pb2.COMPUTE_ENVIRONMENT_TYPE_MANAGED
LOCAL_2CPU = types_pb2.Provisioner(kind="local", node_vcpus=2, node_memory_mib=2048)


def create_ce(**kw):
    kw.setdefault("compute_environment_name", "a")
    return batch_pb2.CreateComputeEnvironmentRequest(**kw)


def test_good_compute_environments():
    validate_create_compute_environment(create_ce())
    validate_create_compute_environment(
        create_ce(type=MANAGED, min_vcpus=0, desired_vcpus=4, max_vcpus=16, provisioner=LOCAL_2CPU)
    )
    validate_create_compute_environment(
        create_ce(type=MANAGED, min_vcpus=16, desired_vcpus=16, max_vcpus=16, provisioner=LOCAL_2CPU)
    )
    validate_update_compute_environment(
        batch_pb2.UpdateComputeEnvironmentRequest(compute_environment_name="a")
    )
    validate_update_compute_environment(
        batch_pb2.UpdateComputeEnvironmentRequest(
            compute_environment_name="a", state=types_pb2.ENTITY_STATE_DISABLED, desired_vcpus=3
        )
    )


@pytest.mark.parametrize(
    ("req", "field", "problem"),
    [
        (create_ce(compute_environment_name="a.b"), "compute_environment_name", ""),
        (create_ce(type=9), "type", "unknown"),
        (create_ce(state=9), "state", "unknown"),
        (create_ce(type=MANAGED), "max_vcpus", "MANAGED"),
        (create_ce(type=MANAGED, min_vcpus=8, max_vcpus=4), "min_vcpus", "<= max_vcpus"),
        (create_ce(type=MANAGED, desired_vcpus=8, max_vcpus=4), "desired_vcpus", "<= max_vcpus"),
        (create_ce(type=MANAGED, min_vcpus=4, desired_vcpus=2, max_vcpus=8), "desired_vcpus", ">= min_vcpus"),
        (create_ce(type=MANAGED, max_vcpus=8), "provisioner", "required"),
        (create_ce(type=MANAGED, max_vcpus=1, provisioner=LOCAL_2CPU), "max_vcpus", "one node"),
        (create_ce(provisioner=LOCAL_2CPU), "provisioner", "only MANAGED"),
        (create_ce(type=MANAGED, max_vcpus=8, provisioner=types_pb2.Provisioner(kind="x", node_vcpus=2, node_memory_mib=512)), "provisioner.kind", "local"),
        (create_ce(type=MANAGED, max_vcpus=8, provisioner=types_pb2.Provisioner(kind="command", node_vcpus=2, node_memory_mib=512)), "provisioner.command", "required"),
        (create_ce(type=MANAGED, max_vcpus=8, provisioner=types_pb2.Provisioner(kind="local", node_memory_mib=512)), "provisioner.node_vcpus", "> 0"),
        (create_ce(type=MANAGED, max_vcpus=8, provisioner=types_pb2.Provisioner(kind="local", node_vcpus=2)), "provisioner.node_memory_mib", ">="),
    ],
)
def test_bad_create_compute_environment(req, field, problem):
    refused(validate_create_compute_environment, req, field=field, problem=problem)


def test_bad_update_compute_environment():
    refused(
        validate_update_compute_environment,
        batch_pb2.UpdateComputeEnvironmentRequest(compute_environment_name="a", min_vcpus=8, max_vcpus=4),
        field="min_vcpus",
    )
    refused(
        validate_update_compute_environment,
        batch_pb2.UpdateComputeEnvironmentRequest(compute_environment_name=""),
        field="compute_environment_name",
    )


# -- cancel / terminate -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "cls"),
    [(validate_cancel, batch_pb2.CancelJobRequest), (validate_terminate, batch_pb2.TerminateJobRequest)],
)
def test_cancel_and_terminate(fn, cls):
    fn(cls(job_id=JOB_ID, reason="Cancelled by user"))
    fn(cls(job_id=f"{JOB_ID}:7", reason="x" * 1024))
    refused(fn, cls(job_id="x", reason="r"), field="job_id")
    refused(fn, cls(job_id=JOB_ID), field="reason", problem="required")
    refused(fn, cls(job_id=JOB_ID, reason="x" * 1025), field="reason", problem="1024")


# -- agent registration -----------------------------------------------------------------------


def register(**kw):
    kw = {
        "node_id": "host-1.example_a",
        "hostname": "host-1",
        "compute_environment": "a",
        "vcpus": 8,
        "memory_mib": 32768,
        "runtimes": ["process"],
        **kw,
    }
    return agent_pb2.Register(**kw)


def test_good_registrations():
    validate_register(register())
    validate_register(register(vcpus=0.5, memory_mib=1, gpus=1024, runtimes=["podman", "docker", "process"]))
    validate_register(register(vcpus=100_000, memory_mib=1 << 32, node_id="n" * 128))


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"node_id": ""}, "node_id"),
        ({"node_id": "a b"}, "node_id"),
        ({"node_id": "n" * 129}, "node_id"),
        ({"hostname": ""}, "hostname"),
        ({"compute_environment": ""}, "compute_environment"),
        ({"compute_environment": "a.b"}, "compute_environment"),
        ({"vcpus": 0}, "vcpus"),
        ({"vcpus": -4}, "vcpus"),
        ({"vcpus": 100_001}, "vcpus"),
        ({"vcpus": float("nan")}, "vcpus"),
        ({"vcpus": float("inf")}, "vcpus"),
        ({"memory_mib": 0}, "memory_mib"),
        ({"memory_mib": (1 << 32) + 1}, "memory_mib"),
        ({"gpus": 1025}, "gpus"),
        ({"runtimes": []}, "runtimes"),
        ({"runtimes": ["process", "lxc"]}, "runtimes[1]"),
        ({"runtimes": [""]}, "runtimes[0]"),
    ],
)
def test_nonsense_registrations_are_refused(kw, field):
    refused(validate_register, register(**kw), field=field)


# -- resolve_submission -----------------------------------------------------------------------


def stored_definition() -> types_pb2.JobDefinition:
    return types_pb2.JobDefinition(
        job_definition_name="def",
        revision=4,
        status="ACTIVE",
        container_properties=types_pb2.ContainerProperties(
            command=["python", "train.py"],
            environment=[kv("A", "1"), kv("B", "2")],
            resources=types_pb2.ResourceRequirements(vcpus=4, memory_mib=8192),
            runtime="process",
        ),
        retry_strategy=types_pb2.RetryStrategy(attempts=3),
        timeout=types_pb2.JobTimeout(attempt_duration_seconds=600),
    )


def test_resolve_definition_only():
    req = batch_pb2.SubmitJobRequest(job_name="j", job_definition="def")
    container, retry, timeout, ref = resolve_submission(req, stored_definition())
    assert container == stored_definition().container_properties
    assert retry.attempts == 3
    assert timeout.attempt_duration_seconds == 600
    assert ref == "def:4"


def test_resolve_overrides_apply():
    req = batch_pb2.SubmitJobRequest(
        job_name="j",
        job_definition="def:4",
        container_overrides=batch_pb2.ContainerOverrides(
            command=["python", "eval.py"],
            environment=[kv("B", "two"), kv("C", "3")],
            vcpus=0.5,
            memory_mib=512,
        ),
        retry_strategy=types_pb2.RetryStrategy(attempts=1),
        timeout=types_pb2.JobTimeout(),  # set, even if empty: overrides the definition's
    )
    definition = stored_definition()
    container, retry, timeout, ref = resolve_submission(req, definition)
    assert list(container.command) == ["python", "eval.py"]
    assert [(e.name, e.value) for e in container.environment] == [("A", "1"), ("B", "two"), ("C", "3")]
    assert (container.resources.vcpus, container.resources.memory_mib) == (0.5, 512)
    assert container.runtime == "process"
    assert retry.attempts == 1
    assert timeout.attempt_duration_seconds == 0
    assert ref == "def:4"
    assert definition == stored_definition(), "the stored definition must not be modified"


def test_resolve_inline_job_uses_overrides_and_defaults():
    req = batch_pb2.SubmitJobRequest(
        job_name="j",
        container_overrides=batch_pb2.ContainerOverrides(command=["true"], environment=[kv("X")]),
    )
    container, retry, timeout, ref = resolve_submission(req, None)
    assert list(container.command) == ["true"]
    assert [e.name for e in container.environment] == ["X"]
    assert (container.resources.vcpus, container.resources.memory_mib) == (1.0, 256)
    assert retry == types_pb2.RetryStrategy()
    assert timeout == types_pb2.JobTimeout()
    assert ref == ""


def test_resolve_defaults_fill_a_definition_without_resources():
    definition = types_pb2.JobDefinition(
        job_definition_name="d", revision=1, container_properties=types_pb2.ContainerProperties(command=["x"])
    )
    req = batch_pb2.SubmitJobRequest(
        job_name="j", job_definition="d", container_overrides=batch_pb2.ContainerOverrides(memory_mib=64)
    )
    container, *_ = resolve_submission(req, definition)
    assert (container.resources.vcpus, container.resources.memory_mib) == (1.0, 64)


def test_messages_name_the_field_first():
    with pytest.raises(InvalidArgument, match=re.escape("container_overrides.vcpus: must be > 0 (got -1)")):
        validate_submit(with_overrides(vcpus=-1))


def test_submit_batch_with_templates_checks_every_name_and_every_distinct_request():
    """Requests equal apart from the name are checked once; every name is still checked, and a
    request that differs anywhere else is checked in full, with its own index."""
    reqs = [submit(job_name=f"j{i}") for i in range(5)] + [submit(job_name="bad name")]
    templates = [submission_template(r) for r in reqs]
    assert len(set(templates)) == 1
    assert [r.job_name for r in reqs][:2] == ["j0", "j1"]  # the template does not change requests
    refused(validate_submit_batch, reqs, templates, field="jobs[5].job_name")
    reqs = [submit(job_name=f"j{i}") for i in range(3)] + [with_overrides(vcpus=-1)]
    templates = [submission_template(r) for r in reqs]
    refused(validate_submit_batch, reqs, templates, field="jobs[3].container_overrides.vcpus")
    validate_submit_batch(reqs[:3], templates[:3])


def test_a_controller_may_allow_larger_arrays():
    big = submit(array_properties=types_pb2.ArrayProperties(size=20_000))
    refused(validate_submit, big, field="array_properties.size", problem="2..10000 (got 20000)")
    validate_submit(big, max_array_size=20_000)
    validate_submit_batch([big], [submission_template(big)], max_array_size=20_000)
    refused(validate_submit, big, "", field="array_properties.size", problem="2..10000")
