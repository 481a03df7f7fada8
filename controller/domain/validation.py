"""Structural checks of API requests and agent registrations, and submission resolution.

Every check raises `shoal.errors.InvalidArgument` with a message that starts with the field
path and says what is wrong, e.g. `container_overrides.vcpus: must be > 0 (got -1)`. Nothing
here looks anything up in the store: whether a named queue or definition exists is the
services' business. Pure functions, no I/O.

Limits follow AWS Batch where it has one (name lengths, 5 evaluateOnExit rules, 20
dependencies, 50 tags, array sizes 2-10000).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from controller.domain import multinode
from shoal.errors import InvalidArgument
from shoal.v1 import agent_pb2, batch_pb2, types_pb2

__all__ = [
    "parse_definition_ref",
    "refuse_unsupported",
    "resolve_node_properties",
    "resolve_submission",
    "validate_cancel",
    "validate_container_fields",
    "validate_container_properties",
    "validate_definition_node_properties",
    "validate_create_compute_environment",
    "validate_create_job_queue",
    "validate_job_id",
    "validate_managed_environment",
    "validate_name",
    "validate_register",
    "validate_register_job_definition",
    "validate_retry_strategy",
    "validate_submit",
    "validate_submit_batch",
    "validate_submit_node_properties",
    "validate_terminate",
    "validate_update_compute_environment",
    "validate_update_job_queue",
]

MAX_SUBMIT_BATCH = 1000
MAX_COMMAND_ARGS = 256
MAX_COMMAND_ARG_BYTES = 32 * 1024
MAX_COMMAND_BYTES = 256 * 1024
MAX_ENVIRONMENT = 100
RESERVED_ENV_PREFIXES = ("SHOAL_", "AWS_BATCH_")
MAX_VCPUS = 1024
MIN_MEMORY_MIB = 4
MAX_MEMORY_MIB = 16 * 1024 * 1024  # 16 TiB
MAX_GPUS = 1024
MAX_DEPENDS_ON = 20
MAX_ARRAY_SIZE = 10_000
"""Default largest array (AWS Batch's limit); a controller may allow more (--max-array-size)."""
ARRAY_SIZE_CAP = 100_000
"""The most --max-array-size may allow (and the largest child index a job id may carry)."""
MAX_ATTEMPTS = 10
MAX_RULES = 5
MAX_GLOB = 512
MAX_INTERRUPTION_ATTEMPTS = 10
MAX_TAGS = 50
MAX_TAG_KEY = 128
MAX_TAG_VALUE = 256
MAX_PARAMETERS = 100
MAX_PRIORITY = 1000
MAX_SCHEDULING_PRIORITY = 9999  # a job's schedulingPriority (fair-share queues), as AWS
MAX_QUEUE_ENVS = 3
MAX_REASON = 1024
RUNTIMES = frozenset({"process", "podman", "docker"})
# Tag keys shoal itself writes; a user may set only SECRET_ENV_TAG (environment variable names,
# comma-separated, whose values describe calls and logs show as ****).
RESERVED_TAG_PREFIX = "shoal:"
OWNER_TAG = "shoal:owner"
SECRET_ENV_TAG = "shoal:secret-env"
DEFAULT_VCPUS = 1.0
DEFAULT_MEMORY_MIB = 256

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")
_NODE_ID = re.compile(r"[A-Za-z0-9._-]{1,128}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_EXIT_CODE_GLOB = re.compile(r"[0-9*]+")
_JOB_ID = re.compile(
    r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"
    r"(?::(0|[1-9][0-9]{0,4})|#(?:0|[1-9][0-9]{0,2}))?"
)


def _at(field: str, child: str) -> str:
    return f"{field}.{child}" if field else child


def _fail(field: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"{field}: {problem}")


# -- names and references ---------------------------------------------------------------------


def validate_name(value: str, field: str) -> None:
    """1-128 letters, digits, '-' and '_', the first a letter or digit."""
    if not value:
        raise _fail(field, "is required")
    if len(value) > 128:
        raise _fail(field, f"must be at most 128 characters (got {len(value)})")
    if not _NAME.fullmatch(value):
        raise _fail(
            field,
            f"must be letters, digits, '-' and '_', starting with a letter or digit (got {value!r})",
        )


def parse_definition_ref(ref: str, field: str) -> tuple[str, int | None]:
    """'name' -> (name, None) (latest ACTIVE revision); 'name:N' -> (name, N), N >= 1."""
    name, sep, revision = ref.partition(":")
    validate_name(name, field)
    if not sep:
        return name, None
    if not revision.isascii() or not revision.isdigit() or int(revision) < 1:
        raise _fail(field, f"revision must be a whole number >= 1 (got {ref!r})")
    return name, int(revision)


def validate_job_id(value: str, field: str) -> None:
    """A UUID4 in canonical lowercase form, optionally ':<index>' for an array child or
    '#<index>' for a node of a multi-node job."""
    match = _JOB_ID.fullmatch(value)
    if match is None:
        raise _fail(
            field, f"must be a job id (a lowercase UUID4, optionally ':<index>' or '#<node>') (got {value!r})"
        )
    if match.group(1) is not None and int(match.group(1)) >= ARRAY_SIZE_CAP:
        raise _fail(field, f"array index must be below {ARRAY_SIZE_CAP} (got {value!r})")


# -- shared pieces ----------------------------------------------------------------------------


def _validate_command(command: Sequence[str], field: str) -> None:
    if len(command) > MAX_COMMAND_ARGS:
        raise _fail(field, f"at most {MAX_COMMAND_ARGS} arguments (got {len(command)})")
    total = 0
    for i, arg in enumerate(command):
        size = len(arg.encode())
        if size > MAX_COMMAND_ARG_BYTES:
            raise _fail(f"{field}[{i}]", f"at most {MAX_COMMAND_ARG_BYTES} bytes (got {size})")
        total += size
    if total > MAX_COMMAND_BYTES:
        raise _fail(field, f"at most {MAX_COMMAND_BYTES} bytes in all (got {total})")


def _validate_environment(environment: Sequence[types_pb2.KeyValue], field: str) -> None:
    if len(environment) > MAX_ENVIRONMENT:
        raise _fail(field, f"at most {MAX_ENVIRONMENT} variables (got {len(environment)})")
    for i, kv in enumerate(environment):
        path = f"{field}[{i}].name"
        if not _ENV_NAME.fullmatch(kv.name):
            raise _fail(path, f"must match [A-Za-z_][A-Za-z0-9_]* (got {kv.name!r})")
        if kv.name.startswith(RESERVED_ENV_PREFIXES):
            raise _fail(path, f"{kv.name} is reserved: SHOAL_* and AWS_BATCH_* are set by shoal")


def _validate_vcpus(vcpus: float, field: str) -> None:
    if not math.isfinite(vcpus):
        raise _fail(field, f"must be a finite number (got {vcpus})")
    if vcpus <= 0:
        raise _fail(field, f"must be > 0 (got {vcpus:g})")
    if vcpus > MAX_VCPUS:
        raise _fail(field, f"must be <= {MAX_VCPUS} (got {vcpus:g})")


def _validate_memory(memory_mib: int, field: str) -> None:
    if not MIN_MEMORY_MIB <= memory_mib <= MAX_MEMORY_MIB:
        raise _fail(field, f"must be {MIN_MEMORY_MIB}..{MAX_MEMORY_MIB} MiB (got {memory_mib})")


def _validate_runtime(runtime: str, field: str) -> None:
    if runtime and runtime not in RUNTIMES:
        raise _fail(field, f"must be one of process, podman, docker or empty (got {runtime!r})")


def validate_retry_strategy(strategy: types_pb2.RetryStrategy, field: str) -> None:
    if strategy.attempts > MAX_ATTEMPTS:
        raise _fail(_at(field, "attempts"), f"must be 0..{MAX_ATTEMPTS} (got {strategy.attempts})")
    rules = strategy.evaluate_on_exit
    if len(rules) > MAX_RULES:
        raise _fail(_at(field, "evaluate_on_exit"), f"at most {MAX_RULES} rules (got {len(rules)})")
    for i, rule in enumerate(rules):
        path = _at(field, f"evaluate_on_exit[{i}]")
        if rule.action not in (types_pb2.RETRY_ACTION_RETRY, types_pb2.RETRY_ACTION_EXIT):
            raise _fail(f"{path}.action", "must be RETRY or EXIT")
        if not (rule.on_exit_code or rule.on_reason or rule.on_status_reason):
            raise _fail(path, "needs at least one of on_exit_code, on_reason, on_status_reason")
        for name in ("on_exit_code", "on_reason", "on_status_reason"):
            glob = getattr(rule, name)
            if len(glob) > MAX_GLOB:
                raise _fail(f"{path}.{name}", f"at most {MAX_GLOB} characters (got {len(glob)})")
        if rule.on_exit_code and not _EXIT_CODE_GLOB.fullmatch(rule.on_exit_code):
            raise _fail(
                f"{path}.on_exit_code", f"may contain only digits and '*' (got {rule.on_exit_code!r})"
            )
    if strategy.interruption_attempts > MAX_INTERRUPTION_ATTEMPTS:
        raise _fail(
            _at(field, "interruption_attempts"),
            f"must be 0..{MAX_INTERRUPTION_ATTEMPTS} (got {strategy.interruption_attempts})",
        )


# JobTimeout.attempt_duration_seconds needs no check: "0 (no limit) or >= 1" is every uint32.


def _validate_tags(tags: Mapping[str, str], field: str) -> None:
    if len(tags) > MAX_TAGS:
        raise _fail(field, f"at most {MAX_TAGS} tags (got {len(tags)})")
    for key, value in sorted(tags.items()):
        if key.startswith(RESERVED_TAG_PREFIX) and key != SECRET_ENV_TAG:
            raise _fail(
                f"{field}[{key!r}]", f"keys starting with {RESERVED_TAG_PREFIX!r} are reserved for shoal"
            )
        if key == SECRET_ENV_TAG:
            for name in value.split(","):
                if name.strip() and not _ENV_NAME.fullmatch(name.strip()):
                    raise _fail(
                        f"{field}[{key!r}]", f"must be comma-separated variable names (got {name.strip()!r})"
                    )
        if not 1 <= len(key) <= MAX_TAG_KEY:
            raise _fail(f"{field}[{key!r}]", f"key must be 1..{MAX_TAG_KEY} characters (got {len(key)})")
        if len(value) > MAX_TAG_VALUE:
            raise _fail(
                f"{field}[{key!r}]", f"value must be at most {MAX_TAG_VALUE} characters (got {len(value)})"
            )


def _validate_parameters(parameters: Mapping[str, str], field: str) -> None:
    count = len(parameters)
    if count > MAX_PARAMETERS:
        raise _fail(field, f"at most {MAX_PARAMETERS} parameters (got {count})")


# -- job submission ---------------------------------------------------------------------------


def refuse_unsupported(req: batch_pb2.SubmitJobRequest, field_prefix: str = "") -> None:
    """Override combinations no runtime can run (an image for the process runtime)."""
    overrides = req.container_overrides
    o_field = _at(field_prefix, "container_overrides")
    if overrides.image:
        _validate_image(overrides.image, f"{o_field}.image")
    if overrides.image and overrides.runtime == "process":
        raise _fail(f"{o_field}.runtime", "process cannot run an image: use podman, docker or leave it empty")


_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@+-]*")
MAX_IMAGE = 255
MAX_MOUNTS = 50
MAX_ULIMITS = 20
# docker's --ulimit names (setrlimit resources).
ULIMIT_NAMES = frozenset(
    {
        "core",
        "cpu",
        "data",
        "fsize",
        "locks",
        "memlock",
        "msgqueue",
        "nice",
        "nofile",
        "nproc",
        "rss",
        "rtprio",
        "rttime",
        "sigpending",
        "stack",
    }
)
_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,63})?")
MAX_PATH = 4096


def _validate_image(image: str, field: str) -> None:
    if len(image) > MAX_IMAGE:
        raise _fail(field, f"at most {MAX_IMAGE} characters (got {len(image)})")
    if not _IMAGE.fullmatch(image):
        raise _fail(field, f"is not an image reference like registry/name:tag (got {image!r})")


def _validate_abs_path(path: str, field: str) -> None:
    if not path.startswith("/"):
        raise _fail(field, f"must be an absolute path (got {path!r})")
    if len(path) > MAX_PATH or "\0" in path:
        raise _fail(field, "is not a usable path")
    if ".." in path.split("/"):
        raise _fail(field, f"must not contain '..' (got {path!r})")
    if ":" in path or "," in path:
        raise _fail(field, f"must not contain ':' or ',' (got {path!r})")


def validate_container_fields(cp: types_pb2.ContainerProperties, field: str) -> None:
    """Image, working directory, user, mounts, ulimits and container-only flags."""
    if cp.image:
        _validate_image(cp.image, _at(field, "image"))
        if cp.runtime == "process":
            raise _fail(
                _at(field, "runtime"), "process cannot run an image: use podman, docker or leave it empty"
            )
    elif cp.runtime in ("podman", "docker"):
        raise _fail(_at(field, "image"), f"is required with runtime {cp.runtime}")
    if cp.working_dir:
        _validate_abs_path(cp.working_dir, _at(field, "working_dir"))
    if cp.user and not _USER.fullmatch(cp.user):
        raise _fail(_at(field, "user"), f"must be name, uid or uid:gid (got {cp.user!r})")
    if len(cp.mounts) > MAX_MOUNTS:
        raise _fail(_at(field, "mounts"), f"at most {MAX_MOUNTS} mounts (got {len(cp.mounts)})")
    targets: set[str] = set()
    for i, mount in enumerate(cp.mounts):
        path = _at(field, f"mounts[{i}]")
        if not mount.source_path:
            raise _fail(f"{path}.source_path", "is required")
        _validate_abs_path(mount.source_path, f"{path}.source_path")
        target = mount.container_path or mount.source_path
        if mount.container_path:
            _validate_abs_path(mount.container_path, f"{path}.container_path")
        if target in targets:
            raise _fail(f"{path}.container_path", f"{target} is mounted twice")
        targets.add(target)
    if len(cp.ulimits) > MAX_ULIMITS:
        raise _fail(_at(field, "ulimits"), f"at most {MAX_ULIMITS} ulimits (got {len(cp.ulimits)})")
    names: set[str] = set()
    for i, ulimit in enumerate(cp.ulimits):
        path = _at(field, f"ulimits[{i}]")
        if ulimit.name not in ULIMIT_NAMES:
            raise _fail(
                f"{path}.name", f"must be one of {', '.join(sorted(ULIMIT_NAMES))} (got {ulimit.name!r})"
            )
        if ulimit.name in names:
            raise _fail(f"{path}.name", f"{ulimit.name} is set twice")
        names.add(ulimit.name)
        if ulimit.hard_limit and ulimit.soft_limit > ulimit.hard_limit:
            raise _fail(path, f"soft_limit must be <= hard_limit ({ulimit.soft_limit} > {ulimit.hard_limit})")
    if cp.shared_memory_size_mib > MAX_MEMORY_MIB:
        raise _fail(
            _at(field, "shared_memory_size_mib"),
            f"must be <= {MAX_MEMORY_MIB} (got {cp.shared_memory_size_mib})",
        )
    if cp.runtime == "process":
        for name in ("privileged", "readonly_root_filesystem", "shared_memory_size_mib"):
            if getattr(cp, name):
                raise _fail(_at(field, name), "is for containers only (runtime process has none)")


def validate_submit(
    req: batch_pb2.SubmitJobRequest, field_prefix: str = "", *, max_array_size: int = MAX_ARRAY_SIZE
) -> None:
    """Structural checks of one submission; no store lookups."""
    validate_name(req.job_name, _at(field_prefix, "job_name"))
    if req.job_queue:
        validate_name(req.job_queue, _at(field_prefix, "job_queue"))
    if req.job_definition:
        parse_definition_ref(req.job_definition, _at(field_prefix, "job_definition"))

    overrides = req.container_overrides
    o_field = _at(field_prefix, "container_overrides")
    node_ranges = req.node_properties.node_range_properties
    if not req.job_definition and not overrides.command and not overrides.image and not node_ranges:
        raise _fail(f"{o_field}.command", "is required for a job without a job definition or image")
    _validate_command(overrides.command, f"{o_field}.command")
    _validate_environment(overrides.environment, f"{o_field}.environment")
    if overrides.HasField("vcpus"):
        _validate_vcpus(overrides.vcpus, f"{o_field}.vcpus")
    if overrides.HasField("memory_mib"):
        _validate_memory(overrides.memory_mib, f"{o_field}.memory_mib")
    if overrides.HasField("gpus") and overrides.gpus > MAX_GPUS:
        raise _fail(f"{o_field}.gpus", f"must be <= {MAX_GPUS} (got {overrides.gpus})")
    _validate_runtime(overrides.runtime, f"{o_field}.runtime")

    if len(req.depends_on) > MAX_DEPENDS_ON:
        raise _fail(
            _at(field_prefix, "depends_on"),
            f"at most {MAX_DEPENDS_ON} dependencies (got {len(req.depends_on)})",
        )
    size = req.array_properties.size
    if size == 1 or size > max_array_size:
        raise _fail(
            _at(field_prefix, "array_properties.size"),
            f"must be 0 (not an array) or 2..{max_array_size} (got {size})",
        )
    if req.array_properties.index:
        raise _fail(
            _at(field_prefix, "array_properties.index"),
            "is set by shoal on array children, not on submission",
        )
    if req.array_properties.parallelism and not size:
        raise _fail(
            _at(field_prefix, "array_properties.parallelism"), "applies to array jobs only (set size too)"
        )

    seen: set[str] = set()
    for i, dep in enumerate(req.depends_on):
        path = _at(field_prefix, f"depends_on[{i}].job_id")
        if dep.type not in types_pb2.DependencyType.values():
            raise _fail(_at(field_prefix, f"depends_on[{i}].type"), f"unknown dependency type {dep.type}")
        array_only = dep.type in (types_pb2.DEPENDENCY_TYPE_N_TO_N, types_pb2.DEPENDENCY_TYPE_SEQUENTIAL)
        if array_only and not size:
            name = types_pb2.DependencyType.Name(dep.type).removeprefix("DEPENDENCY_TYPE_")
            raise _fail(
                _at(field_prefix, f"depends_on[{i}].type"),
                f"{name} applies to array jobs only (set array_properties.size)",
            )
        if dep.type == types_pb2.DEPENDENCY_TYPE_SEQUENTIAL and not dep.job_id:
            continue  # orders this array's own children; no other job involved
        validate_job_id(dep.job_id, path)
        if dep.job_id in seen:
            raise _fail(path, f"{dep.job_id} is listed twice")
        seen.add(dep.job_id)
    if req.HasField("retry_strategy"):
        validate_retry_strategy(req.retry_strategy, _at(field_prefix, "retry_strategy"))
    _validate_tags(req.tags, _at(field_prefix, "tags"))
    _validate_parameters(req.parameters, _at(field_prefix, "parameters"))
    refuse_unsupported(req, field_prefix)
    if req.HasField("node_properties"):
        validate_submit_node_properties(req, field_prefix)


def submission_template(req: batch_pb2.SubmitJobRequest) -> bytes:
    """What a submission asks for apart from its name: requests with equal templates validate
    and resolve the same way, so a batch of 1,000 copies of one job does that work once."""
    name = req.job_name
    req.job_name = ""
    try:
        return req.SerializeToString(deterministic=True)
    finally:
        req.job_name = name


def validate_submit_batch(
    reqs: Sequence[batch_pb2.SubmitJobRequest],
    templates: Sequence[bytes] | None = None,
    *,
    max_array_size: int = MAX_ARRAY_SIZE,
) -> None:
    """1..1000 jobs; a problem is reported with its index (`jobs[3].job_name: ...`).

    With `templates` (`submission_template` of each request), requests equal to an earlier
    one apart from the name get only their name checked: the rest was checked already.
    """
    if not reqs:
        raise _fail("jobs", "at least one job is required")
    if len(reqs) > MAX_SUBMIT_BATCH:
        raise _fail("jobs", f"at most {MAX_SUBMIT_BATCH} jobs per call (got {len(reqs)})")
    if templates is None:
        for i, req in enumerate(reqs):
            validate_submit(req, f"jobs[{i}]", max_array_size=max_array_size)
        return
    checked: set[bytes] = set()
    for i, (req, template) in enumerate(zip(reqs, templates, strict=True)):
        if template in checked:
            validate_name(req.job_name, f"jobs[{i}].job_name")
        else:
            validate_submit(req, f"jobs[{i}]", max_array_size=max_array_size)
            checked.add(template)


# -- job definitions --------------------------------------------------------------------------


def validate_container_properties(cp: types_pb2.ContainerProperties, field: str) -> None:
    """A definition's container properties. The command may be empty only with an image."""
    if not cp.command and not cp.image:
        raise _fail(_at(field, "command"), "is required (there is no image with a default command)")
    _validate_command(cp.command, _at(field, "command"))
    _validate_environment(cp.environment, _at(field, "environment"))
    resources = cp.resources
    # 0 = unset (the defaults apply at submission); anything else must be sane.
    if resources.vcpus != 0 or not math.isfinite(resources.vcpus):
        _validate_vcpus(resources.vcpus, _at(field, "resources.vcpus"))
    if resources.memory_mib != 0:
        _validate_memory(resources.memory_mib, _at(field, "resources.memory_mib"))
    if resources.gpus > MAX_GPUS:
        raise _fail(_at(field, "resources.gpus"), f"must be <= {MAX_GPUS} (got {resources.gpus})")
    _validate_runtime(cp.runtime, _at(field, "runtime"))
    validate_container_fields(cp, field)


def validate_register_job_definition(req: batch_pb2.RegisterJobDefinitionRequest) -> None:
    validate_name(req.job_definition_name, "job_definition_name")
    if req.HasField("node_properties"):
        validate_definition_node_properties(req)
    else:
        validate_container_properties(req.container_properties, "container_properties")
    validate_retry_strategy(req.retry_strategy, "retry_strategy")
    _validate_tags(req.tags, "tags")
    _validate_parameters(req.parameters, "parameters")
    if not 0 <= req.scheduling_priority <= MAX_SCHEDULING_PRIORITY:
        raise _fail("scheduling_priority", f"must be 0..{MAX_SCHEDULING_PRIORITY} (got {req.scheduling_priority})")


# -- queues and compute environments ----------------------------------------------------------


def _validate_state(state: int, field: str) -> None:
    if state not in types_pb2.EntityState.values():
        raise _fail(field, f"unknown state {state}")


def _validate_priority(priority: int, field: str) -> None:
    if not 0 <= priority <= MAX_PRIORITY:
        raise _fail(field, f"must be 0..{MAX_PRIORITY} (got {priority})")


def _validate_env_order(orders: Sequence[types_pb2.ComputeEnvironmentOrder], field: str) -> None:
    if not 1 <= len(orders) <= MAX_QUEUE_ENVS:
        raise _fail(field, f"must list 1..{MAX_QUEUE_ENVS} compute environments (got {len(orders)})")
    seen_orders: set[int] = set()
    seen_names: set[str] = set()
    for i, entry in enumerate(orders):
        validate_name(entry.compute_environment, f"{field}[{i}].compute_environment")
        if entry.order in seen_orders:
            raise _fail(f"{field}[{i}].order", f"order {entry.order} is used twice")
        if entry.compute_environment in seen_names:
            raise _fail(f"{field}[{i}].compute_environment", f"{entry.compute_environment} is listed twice")
        seen_orders.add(entry.order)
        seen_names.add(entry.compute_environment)


def validate_create_job_queue(req: batch_pb2.CreateJobQueueRequest) -> None:
    validate_name(req.job_queue_name, "job_queue_name")
    _validate_state(req.state, "state")
    _validate_priority(req.priority, "priority")
    _validate_env_order(req.compute_environment_order, "compute_environment_order")
    if req.scheduling_policy:
        validate_name(req.scheduling_policy, "scheduling_policy")


def validate_update_job_queue(req: batch_pb2.UpdateJobQueueRequest) -> None:
    validate_name(req.job_queue_name, "job_queue_name")
    _validate_state(req.state, "state")
    if req.HasField("priority"):
        _validate_priority(req.priority, "priority")
    if req.compute_environment_order:  # empty = unchanged
        _validate_env_order(req.compute_environment_order, "compute_environment_order")
    if req.scheduling_policy:  # empty = unchanged
        validate_name(req.scheduling_policy, "scheduling_policy")


def _validate_vcpu_range(min_vcpus: int, desired: int, max_vcpus: int, managed: bool) -> None:
    if managed and max_vcpus == 0:
        raise _fail("max_vcpus", "must be > 0 for a MANAGED compute environment")
    if max_vcpus:
        if min_vcpus > max_vcpus:
            raise _fail("min_vcpus", f"must be <= max_vcpus ({min_vcpus} > {max_vcpus})")
        if desired > max_vcpus:
            raise _fail("desired_vcpus", f"must be <= max_vcpus ({desired} > {max_vcpus})")
    if desired and desired < min_vcpus:
        raise _fail("desired_vcpus", f"must be >= min_vcpus ({desired} < {min_vcpus})")


def validate_create_compute_environment(req: batch_pb2.CreateComputeEnvironmentRequest) -> None:
    validate_name(req.compute_environment_name, "compute_environment_name")
    if req.type not in types_pb2.ComputeEnvironmentType.values():
        raise _fail("type", f"unknown type {req.type}")
    _validate_state(req.state, "state")
    managed = req.type == types_pb2.COMPUTE_ENVIRONMENT_TYPE_MANAGED
    _validate_vcpu_range(req.min_vcpus, req.desired_vcpus, req.max_vcpus, managed=managed)
    if managed:
        if not req.HasField("provisioner"):
            raise _fail(
                "provisioner",
                "is required for a MANAGED compute environment (kind local or command, node_vcpus, node_memory_mib)",
            )
        validate_managed_environment(req.max_vcpus, req.provisioner)
    elif req.HasField("provisioner"):
        raise _fail("provisioner", "only MANAGED compute environments have a provisioner")


def validate_update_compute_environment(req: batch_pb2.UpdateComputeEnvironmentRequest) -> None:
    """Checks what the request alone can tell; the merged result needs the stored record."""
    validate_name(req.compute_environment_name, "compute_environment_name")
    _validate_state(req.state, "state")
    min_vcpus = req.min_vcpus if req.HasField("min_vcpus") else 0
    desired = req.desired_vcpus if req.HasField("desired_vcpus") else 0
    max_vcpus = req.max_vcpus if req.HasField("max_vcpus") else 0
    _validate_vcpu_range(min_vcpus, desired, max_vcpus, managed=False)
    if req.HasField("provisioner"):
        _validate_provisioner(req.provisioner, "provisioner")


PROVISIONER_KINDS = ("local", "command")


def validate_managed_environment(max_vcpus: int, provisioner: types_pb2.Provisioner) -> None:
    """A MANAGED environment's provisioner, and room for at least one node under max_vcpus."""
    _validate_provisioner(provisioner, "provisioner")
    if provisioner.node_vcpus > max_vcpus:
        raise _fail(
            "max_vcpus",
            f"must be at least one node's vCPUs (provisioner.node_vcpus {provisioner.node_vcpus:g} > {max_vcpus})",
        )


def _validate_provisioner(p: types_pb2.Provisioner, field: str) -> None:
    if p.kind not in PROVISIONER_KINDS:
        raise _fail(f"{field}.kind", f"must be one of {', '.join(PROVISIONER_KINDS)} (got {p.kind!r})")
    if p.kind == "command":
        if not p.command:
            raise _fail(f"{field}.command", "is required for kind command (the argv to run)")
        if len(p.command) > MAX_COMMAND_ARGS:
            raise _fail(f"{field}.command", f"must have at most {MAX_COMMAND_ARGS} arguments")
        if not p.command[0]:
            raise _fail(f"{field}.command[0]", "must not be empty")
    elif p.command:
        raise _fail(f"{field}.command", "is only for kind command")
    if not math.isfinite(p.node_vcpus) or not 0 < p.node_vcpus <= MAX_VCPUS:
        raise _fail(f"{field}.node_vcpus", f"must be > 0 and <= {MAX_VCPUS} (got {p.node_vcpus:g})")
    if not MIN_MEMORY_MIB <= p.node_memory_mib <= MAX_MEMORY_MIB:
        raise _fail(
            f"{field}.node_memory_mib",
            f"must be >= {MIN_MEMORY_MIB} and <= {MAX_MEMORY_MIB} (got {p.node_memory_mib})",
        )


# -- cancel / terminate -----------------------------------------------------------------------


def _validate_stop(job_id: str, reason: str) -> None:
    validate_job_id(job_id, "job_id")
    if not reason:
        raise _fail("reason", "is required (it becomes the job's status reason)")
    if len(reason) > MAX_REASON:
        raise _fail("reason", f"must be at most {MAX_REASON} characters (got {len(reason)})")


def validate_cancel(req: batch_pb2.CancelJobRequest) -> None:
    _validate_stop(req.job_id, req.reason)


def validate_terminate(req: batch_pb2.TerminateJobRequest) -> None:
    _validate_stop(req.job_id, req.reason)


# -- agents -----------------------------------------------------------------------------------


def validate_node_id(value: str, field: str) -> None:
    if not _NODE_ID.fullmatch(value):
        raise _fail(field, f"must be 1..128 letters, digits, '.', '_' or '-' (got {value!r})")


def validate_register(reg: agent_pb2.Register) -> None:
    """An agent's registration: identity and a capacity that makes sense."""
    if not _NODE_ID.fullmatch(reg.node_id):
        raise _fail("node_id", f"must be 1..128 letters, digits, '.', '_' or '-' (got {reg.node_id!r})")
    if not reg.hostname:
        raise _fail("hostname", "is required")
    if len(reg.advertise_address) > 253 or any(c.isspace() for c in reg.advertise_address):
        raise _fail("advertise_address", f"must be an address or host name (got {reg.advertise_address[:64]!r})")
    validate_name(reg.compute_environment, "compute_environment")
    if not math.isfinite(reg.vcpus) or not 0 < reg.vcpus <= 100_000:
        raise _fail("vcpus", f"must be > 0 and <= 100000 (got {reg.vcpus})")
    if not 0 < reg.memory_mib <= 1 << 32:
        raise _fail("memory_mib", f"must be > 0 and <= {1 << 32} (got {reg.memory_mib})")
    if reg.gpus > MAX_GPUS:
        raise _fail("gpus", f"must be <= {MAX_GPUS} (got {reg.gpus})")
    if reg.gpu_ids:  # one distinct id per GPU (agents of before device ids send none)
        if len(reg.gpu_ids) != reg.gpus:
            raise _fail("gpu_ids", f"must list one id per GPU ({reg.gpus} GPUs, {len(reg.gpu_ids)} ids)")
        if len(set(reg.gpu_ids)) != len(reg.gpu_ids):
            raise _fail("gpu_ids", "lists a device twice")
        for i, gpu_id in enumerate(reg.gpu_ids):
            if not _NODE_ID.fullmatch(gpu_id):
                raise _fail(f"gpu_ids[{i}]", f"must be 1..128 letters, digits, '.', '_' or '-' (got {gpu_id!r})")
    if not reg.runtimes:
        raise _fail("runtimes", "must list at least one runtime (process, podman, docker)")
    for i, runtime in enumerate(reg.runtimes):
        if runtime not in RUNTIMES:
            raise _fail(f"runtimes[{i}]", f"must be process, podman or docker (got {runtime!r})")


# -- resolution -------------------------------------------------------------------------------


def resolve_submission(
    req: batch_pb2.SubmitJobRequest, definition: types_pb2.JobDefinition | None
) -> tuple[types_pb2.ContainerProperties, types_pb2.RetryStrategy, types_pb2.JobTimeout, str]:
    """What the job runs with: the definition's properties with the request's overrides applied.

    command replaces; environment merges by name (the override wins, the definition's order
    first, new names after); vcpus / memory override when set; image / runtime override when
    non-empty; vcpus defaults to 1 and memory to 256 MiB when still unset. Retry strategy and
    timeout come from the request when it sets them, else from the definition. Returns also the
    definition reference 'name:revision' ('' for an inline job).
    """
    container = types_pb2.ContainerProperties()
    retry = types_pb2.RetryStrategy()
    timeout = types_pb2.JobTimeout()
    ref = ""
    if definition is not None:
        container.CopyFrom(definition.container_properties)
        retry.CopyFrom(definition.retry_strategy)
        timeout.CopyFrom(definition.timeout)
        ref = f"{definition.job_definition_name}:{definition.revision}"

    overrides = req.container_overrides
    if overrides.command:
        del container.command[:]
        container.command.extend(overrides.command)
    if overrides.environment:
        merged = {kv.name: kv.value for kv in container.environment}
        for kv in overrides.environment:
            merged[kv.name] = kv.value
        del container.environment[:]
        container.environment.extend(types_pb2.KeyValue(name=k, value=v) for k, v in merged.items())
    if overrides.HasField("vcpus"):
        container.resources.vcpus = overrides.vcpus
    if overrides.HasField("memory_mib"):
        container.resources.memory_mib = overrides.memory_mib
    if overrides.HasField("gpus"):
        container.resources.gpus = overrides.gpus
    if overrides.image:
        container.image = overrides.image
    if overrides.runtime:
        container.runtime = overrides.runtime
    if container.resources.vcpus == 0:
        container.resources.vcpus = DEFAULT_VCPUS
    if container.resources.memory_mib == 0:
        container.resources.memory_mib = DEFAULT_MEMORY_MIB

    if req.HasField("retry_strategy"):
        retry.CopyFrom(req.retry_strategy)
    if req.HasField("timeout"):
        timeout.CopyFrom(req.timeout)
    return container, retry, timeout, ref


# -- multi-node parallel jobs -----------------------------------------------------------------


def validate_definition_node_properties(req: batch_pb2.RegisterJobDefinitionRequest) -> None:
    """A multi-node definition: every node in one range, each range a complete container."""
    if req.container_properties.ByteSize():
        raise _fail(
            "container_properties",
            "must be empty in a multi-node definition: each node range has its own container",
        )
    props = req.node_properties
    multinode.validate_shape(props, "node_properties", ranges_required=True)
    for i, rng in enumerate(props.node_range_properties):
        validate_container_properties(rng.container, f"node_properties.node_range_properties[{i}].container")


def validate_submit_node_properties(req: batch_pb2.SubmitJobRequest, field_prefix: str = "") -> None:
    """What a submission may say about nodes (the definition is checked at resolution)."""
    field = _at(field_prefix, "node_properties")
    props = req.node_properties
    if req.array_properties.size:
        raise _fail(field, "a multi-node job cannot also be an array job (array_properties.size)")
    if req.job_definition:
        if props.node_range_properties:
            raise _fail(
                f"{field}.node_range_properties",
                "come from the job definition; a submission may only change num_nodes and main_node",
            )
        multinode.validate_shape(props, field, ranges_required=False)
        return
    multinode.validate_shape(props, field, ranges_required=False)
    for i, rng in enumerate(props.node_range_properties):
        validate_container_properties(rng.container, f"{field}.node_range_properties[{i}].container")


def resolve_node_properties(
    req: batch_pb2.SubmitJobRequest, definition: types_pb2.JobDefinition | None, field_prefix: str = ""
) -> types_pb2.NodeProperties | None:
    """The nodes a submission runs, every range with its resolved container (the range's,
    with the submission's container_overrides and the defaults applied); None for a job
    that is not multi-node. A single-container definition submitted with num_nodes runs that
    container on every node."""
    field = _at(field_prefix, "node_properties")
    from_definition = definition is not None and definition.HasField("node_properties")
    if not from_definition and not req.HasField("node_properties"):
        return None
    props = types_pb2.NodeProperties()
    if from_definition:
        assert definition is not None
        props.CopyFrom(definition.node_properties)
        if req.node_properties.num_nodes:
            props.num_nodes = req.node_properties.num_nodes
            props.main_node = req.node_properties.main_node
    else:
        props.CopyFrom(req.node_properties)
        if not props.node_range_properties:
            base = definition.container_properties if definition is not None else types_pb2.ContainerProperties()
            props.node_range_properties.add(target_nodes="0:", container=base)
    multinode.validate_shape(props, field, ranges_required=True)
    for i, rng in enumerate(props.node_range_properties):
        container, _, _, _ = resolve_submission(req, types_pb2.JobDefinition(container_properties=rng.container))
        if not container.command and not container.image:
            raise _fail(
                f"{field}.node_range_properties[{i}].container.command",
                "is required (neither the range, the definition nor the submission gives one)",
            )
        rng.container.CopyFrom(container)
    return props
