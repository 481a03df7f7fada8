"""Job definition files: YAML in AWS Batch's camelCase shape -> RegisterJobDefinitionRequest.

A file written for `aws batch register-job-definition --cli-input-yaml` mostly works as is::

    jobDefinitionName: hello
    type: container                  # optional; only "container" exists here
    containerProperties:
      command: ["sh", "-c", "echo hello $NAME"]
      image: ""                      # empty = run the command directly on the host
      vcpus: 1                       # or resourceRequirements: [{type: VCPU, value: "1"}, ...]
      memory: 256                    # MiB
      environment: [{name: NAME, value: world}]   # or a plain mapping {NAME: world}
      runtime: ""                    # "process", "podman", "docker"; empty = agent's choice
      workingDir: /work              # containers: the image's by default
      user: "1000:1000"              # name, uid or uid:gid
      privileged: false
      readonlyRootFilesystem: false
      ulimits: [{name: nofile, softLimit: 1024, hardLimit: 4096}]
      mounts: [{sourcePath: /srv/data, containerPath: /data, readOnly: true}]
      # or AWS's shape: volumes: [{name: d, host: {sourcePath: /srv/data}}] +
      #                 mountPoints: [{sourceVolume: d, containerPath: /data, readOnly: true}]
      linuxParameters: {sharedMemorySize: 64}   # MiB of /dev/shm
    retryStrategy: {attempts: 3, evaluateOnExit: [{onExitCode: "1", action: RETRY}]}
    timeout: {attemptDurationSeconds: 60}
    parameters: {}
    tags: {}

A multi-node parallel job (AWS's `type: multinode`) has `nodeProperties` instead of
`containerProperties`; each node range has its own container (same keys as above)::

    jobDefinitionName: allreduce
    type: multinode
    nodeProperties:
      numNodes: 4
      mainNode: 0
      nodeRangeProperties:
        - targetNodes: "0"           # one node; "1:" = 1 to the last; ":2" and "0:2" = 0 to 2
          container: {command: ["python3", "coordinator.py"], vcpus: 2, memory: 1024}
        - targetNodes: "1:"
          container: {command: ["python3", "worker.py"], vcpus: 4, memory: 4096}

Every problem is reported as `FILE: key.path: what is wrong`. Unknown keys are errors, because a
misspelt key silently dropped (`retrystrategy:`) changes what the job does without a word.
"""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Any, NoReturn

import yaml

from shoal.errors import InvalidArgument
from shoal.v1 import batch_pb2, types_pb2


class JobDefinitionFileError(InvalidArgument):
    """A job definition file cannot be read or does not describe a valid definition.

    The message names the file and the key, e.g.
    "hello.yaml: containerProperties.vcpus: expected a number, got 'two'".
    """


_TOP_KEYS = (
    "jobDefinitionName",
    "type",
    "containerProperties",
    "nodeProperties",
    "retryStrategy",
    "timeout",
    "parameters",
    "tags",
    "schedulingPriority",
)
_CONTAINER_KEYS = ("command", "image", "vcpus", "memory", "resourceRequirements", "environment", "runtime",
                   "workingDir", "user", "privileged", "readonlyRootFilesystem", "ulimits", "mounts",
                   "volumes", "mountPoints", "linuxParameters")
_ULIMIT_KEYS = ("name", "softLimit", "hardLimit")
_MOUNT_KEYS = ("sourcePath", "containerPath", "readOnly")
_VOLUME_KEYS = ("name", "host")
_HOST_KEYS = ("sourcePath",)
_MOUNT_POINT_KEYS = ("sourceVolume", "containerPath", "readOnly")
_LINUX_KEYS = ("sharedMemorySize",)
_RETRY_KEYS = ("attempts", "evaluateOnExit", "interruptionAttempts")
_RULE_KEYS = ("onExitCode", "onReason", "onStatusReason", "action")
_TIMEOUT_KEYS = ("attemptDurationSeconds",)
_RESOURCE_KEYS = ("type", "value")
_ENV_KEYS = ("name", "value", "secret")
SECRET_ENV_TAG = "shoal:secret-env"
"""Definition tag listing the environment variables marked `secret: true` (comma-separated).
The controller shows their values as **** in describe calls and logs; jobs still get them.
Same key as controller.domain.validation.SECRET_ENV_TAG (the API has no field for it yet)."""


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


class _Reader:
    """Walks the parsed YAML, converting values and naming the key path in every error."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.secret_env: list[str] = []

    def fail(self, path: str, problem: str) -> NoReturn:
        where = f"{self.source}: {path}: " if path else f"{self.source}: "
        raise JobDefinitionFileError(where + problem)

    def mapping(self, value: Any, path: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping, got {_describe(value)}")
        for key in value:
            if not isinstance(key, str) or key not in allowed:
                hint = difflib.get_close_matches(str(key), allowed, n=1)
                suggestion = (
                    f" (did you mean '{hint[0]}'?)" if hint else f" (expected one of: {', '.join(allowed)})"
                )
                self.fail(_join(path, str(key)), "unknown key" + suggestion)
        return value

    def string(self, value: Any, path: str) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        self.fail(
            path,
            f"expected a string, got {_describe(value)}" + (" (quote it)" if isinstance(value, bool) else ""),
        )

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            result = float(value)
        elif isinstance(value, str):
            try:
                result = float(value.strip())
            except ValueError:
                self.fail(path, f"expected a number, got {value!r}")
        else:
            self.fail(path, f"expected a number, got {_describe(value)}")
        if not math.isfinite(result):
            self.fail(path, f"expected a finite number, got {value!r}")
        return result

    def integer(self, value: Any, path: str, *, minimum: int = 0, maximum: int | None = None) -> int:
        if isinstance(value, int) and not isinstance(value, bool):
            result = value
        elif isinstance(value, float) and value.is_integer():
            result = int(value)
        elif isinstance(value, str):
            try:
                result = int(value.strip())
            except ValueError:
                self.fail(path, f"expected a whole number, got {value!r}")
        else:
            self.fail(path, f"expected a whole number, got {_describe(value)}")
        if result < minimum or (maximum is not None and result > maximum):
            bounds = f"{minimum}-{maximum}" if maximum is not None else f">= {minimum}"
            self.fail(path, f"expected a whole number {bounds}, got {result}")
        return result

    def string_list(self, value: Any, path: str) -> list[str]:
        if isinstance(value, str):
            self.fail(path, f'expected a list of strings such as ["sh", "-c", "echo hi"], got {value!r}')
        if not isinstance(value, list):
            self.fail(path, f"expected a list of strings, got {_describe(value)}")
        return [self.string(item, f"{path}[{i}]") for i, item in enumerate(value)]

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, f"expected a mapping of names to strings, got {_describe(value)}")
        return {self.string(k, path): self.string(v, _join(path, str(k))) for k, v in value.items()}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _environment(r: _Reader, value: Any, path: str) -> list[types_pb2.KeyValue]:
    if value is None:
        return []
    if isinstance(value, dict):
        return [
            types_pb2.KeyValue(name=r.string(k, path), value=r.string(v, _join(path, str(k))))
            for k, v in value.items()
        ]
    if not isinstance(value, list):
        r.fail(path, f"expected a list of {{name, value}} or a mapping, got {_describe(value)}")
    result = []
    for i, item in enumerate(value):
        item_path = f"{path}[{i}]"
        entry = r.mapping(item, item_path, _ENV_KEYS)
        if "name" not in entry:
            r.fail(item_path, "missing key 'name'")
        result.append(
            types_pb2.KeyValue(
                name=r.string(entry["name"], f"{item_path}.name"),
                value=r.string(entry.get("value", ""), f"{item_path}.value"),
            )
        )
        secret = entry.get("secret", False)
        if not isinstance(secret, bool):
            r.fail(f"{item_path}.secret", f"expected true or false, got {_describe(secret)}")
        if secret:
            r.secret_env.append(result[-1].name)
    return result


def _boolean(r: _Reader, value: Any, path: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        r.fail(path, f"expected true or false, got {_describe(value)}")
    return value


def _items(r: _Reader, value: Any, path: str, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        r.fail(path, f"expected a list of {what}, got {_describe(value)}")
    return value


def _container_extras(r: _Reader, c: dict[str, Any], path: str, props: types_pb2.ContainerProperties) -> None:
    """Working directory, user, flags, ulimits, mounts and /dev/shm size."""
    props.working_dir = r.string(c.get("workingDir") or "", _join(path, "workingDir"))
    user = c.get("user")
    props.user = str(user) if isinstance(user, int) and not isinstance(user, bool) else r.string(user or "", _join(path, "user"))
    props.privileged = _boolean(r, c.get("privileged"), _join(path, "privileged"))
    props.readonly_root_filesystem = _boolean(r, c.get("readonlyRootFilesystem"), _join(path, "readonlyRootFilesystem"))
    ulimits_path = _join(path, "ulimits")
    for i, item in enumerate(_items(r, c.get("ulimits"), ulimits_path, "{name, softLimit, hardLimit}")):
        entry = r.mapping(item, f"{ulimits_path}[{i}]", _ULIMIT_KEYS)
        soft = r.integer(entry.get("softLimit", 0), f"{ulimits_path}[{i}].softLimit")
        props.ulimits.add(
            name=r.string(entry.get("name", ""), f"{ulimits_path}[{i}].name"),
            soft_limit=soft,
            hard_limit=r.integer(entry.get("hardLimit", soft), f"{ulimits_path}[{i}].hardLimit"),
        )
    mounts_path = _join(path, "mounts")
    for i, item in enumerate(_items(r, c.get("mounts"), mounts_path, "{sourcePath, containerPath, readOnly}")):
        entry = r.mapping(item, f"{mounts_path}[{i}]", _MOUNT_KEYS)
        props.mounts.add(
            source_path=r.string(entry.get("sourcePath", ""), f"{mounts_path}[{i}].sourcePath"),
            container_path=r.string(entry.get("containerPath") or "", f"{mounts_path}[{i}].containerPath"),
            read_only=_boolean(r, entry.get("readOnly"), f"{mounts_path}[{i}].readOnly"),
        )
    volumes: dict[str, str] = {}
    volumes_path = _join(path, "volumes")
    for i, item in enumerate(_items(r, c.get("volumes"), volumes_path, "{name, host: {sourcePath}}")):
        entry = r.mapping(item, f"{volumes_path}[{i}]", _VOLUME_KEYS)
        host = r.mapping(entry.get("host") or {}, f"{volumes_path}[{i}].host", _HOST_KEYS)
        name = r.string(entry.get("name", ""), f"{volumes_path}[{i}].name")
        volumes[name] = r.string(host.get("sourcePath", ""), f"{volumes_path}[{i}].host.sourcePath")
    points_path = _join(path, "mountPoints")
    for i, item in enumerate(_items(r, c.get("mountPoints"), points_path, "{sourceVolume, containerPath, readOnly}")):
        entry = r.mapping(item, f"{points_path}[{i}]", _MOUNT_POINT_KEYS)
        volume = r.string(entry.get("sourceVolume", ""), f"{points_path}[{i}].sourceVolume")
        if volume not in volumes:
            r.fail(f"{points_path}[{i}].sourceVolume", f"no volume named {volume!r} in volumes")
        props.mounts.add(
            source_path=volumes[volume],
            container_path=r.string(entry.get("containerPath", ""), f"{points_path}[{i}].containerPath"),
            read_only=_boolean(r, entry.get("readOnly"), f"{points_path}[{i}].readOnly"),
        )
    linux = c.get("linuxParameters")
    if linux is not None:
        params = r.mapping(linux, _join(path, "linuxParameters"), _LINUX_KEYS)
        if params.get("sharedMemorySize") is not None:
            props.shared_memory_size_mib = r.integer(
                params["sharedMemorySize"], _join(path, "linuxParameters.sharedMemorySize"), minimum=1
            )


def _container(r: _Reader, value: Any, path: str) -> types_pb2.ContainerProperties:
    c = r.mapping(value, path, _CONTAINER_KEYS)
    props = types_pb2.ContainerProperties(
        image=r.string(c.get("image") or "", _join(path, "image")),
        command=r.string_list(c.get("command") or [], _join(path, "command")),
        environment=_environment(r, c.get("environment"), _join(path, "environment")),
        runtime=r.string(c.get("runtime") or "", _join(path, "runtime")),
    )
    _container_extras(r, c, path, props)
    resources = props.resources
    seen: set[str] = set()
    if c.get("vcpus") is not None:
        resources.vcpus = r.number(c["vcpus"], _join(path, "vcpus"))
        seen.add("VCPU")
    if c.get("memory") is not None:
        resources.memory_mib = r.integer(c["memory"], _join(path, "memory"), minimum=1)
        seen.add("MEMORY")
    requirements = c.get("resourceRequirements")
    if requirements is not None:
        req_path = _join(path, "resourceRequirements")
        if not isinstance(requirements, list):
            r.fail(req_path, f"expected a list of {{type, value}}, got {_describe(requirements)}")
        for i, item in enumerate(requirements):
            item_path = f"{req_path}[{i}]"
            entry = r.mapping(item, item_path, _RESOURCE_KEYS)
            if "type" not in entry or "value" not in entry:
                r.fail(item_path, "expected both 'type' and 'value'")
            kind = r.string(entry["type"], f"{item_path}.type").upper()
            value_path = f"{item_path}.value"
            if kind in seen:
                r.fail(item_path, f"{kind} is given twice (as vcpus/memory and in resourceRequirements?)")
            seen.add(kind)
            if kind == "VCPU":
                resources.vcpus = r.number(entry["value"], value_path)
            elif kind == "MEMORY":
                resources.memory_mib = r.integer(entry["value"], value_path, minimum=1)
            elif kind == "GPU":
                resources.gpus = r.integer(entry["value"], value_path)
            else:
                r.fail(f"{item_path}.type", f"expected VCPU, MEMORY or GPU, got {entry['type']!r}")
    if resources.vcpus < 0 or ("VCPU" in seen and resources.vcpus == 0):
        r.fail(_join(path, "vcpus"), f"expected a number > 0, got {resources.vcpus:g}")
    return props


def _retry(r: _Reader, value: Any, path: str) -> types_pb2.RetryStrategy:
    s = r.mapping(value, path, _RETRY_KEYS)
    strategy = types_pb2.RetryStrategy()
    if s.get("attempts") is not None:
        strategy.attempts = r.integer(s["attempts"], _join(path, "attempts"), minimum=1, maximum=10)
    if s.get("interruptionAttempts") is not None:
        strategy.interruption_attempts = r.integer(
            s["interruptionAttempts"], _join(path, "interruptionAttempts")
        )
    rules = s.get("evaluateOnExit")
    if rules is not None:
        rules_path = _join(path, "evaluateOnExit")
        if not isinstance(rules, list):
            r.fail(rules_path, f"expected a list of rules, got {_describe(rules)}")
        if len(rules) > 5:
            r.fail(rules_path, f"at most 5 rules are allowed, got {len(rules)}")
        for i, item in enumerate(rules):
            item_path = f"{rules_path}[{i}]"
            rule = r.mapping(item, item_path, _RULE_KEYS)
            if "action" not in rule:
                r.fail(item_path, "missing key 'action' (RETRY or EXIT)")
            action = r.string(rule["action"], f"{item_path}.action").upper()
            if action not in ("RETRY", "EXIT"):
                r.fail(f"{item_path}.action", f"expected RETRY or EXIT, got {rule['action']!r}")
            exit_code = r.string(rule.get("onExitCode", ""), f"{item_path}.onExitCode")
            if exit_code and not all(ch.isdigit() or ch == "*" for ch in exit_code):
                r.fail(f"{item_path}.onExitCode", f"may contain only digits and '*', got {exit_code!r}")
            strategy.evaluate_on_exit.append(
                types_pb2.EvaluateOnExit(
                    on_exit_code=exit_code,
                    on_reason=r.string(rule.get("onReason", ""), f"{item_path}.onReason"),
                    on_status_reason=r.string(rule.get("onStatusReason", ""), f"{item_path}.onStatusReason"),
                    action=types_pb2.RetryAction.Value(f"RETRY_ACTION_{action}"),
                )
            )
    return strategy


_NODE_KEYS = ("numNodes", "mainNode", "nodeRangeProperties")
_RANGE_KEYS = ("targetNodes", "container")


def _node_properties(r: _Reader, value: Any, path: str) -> types_pb2.NodeProperties:
    n = r.mapping(value, path, _NODE_KEYS)
    if "numNodes" not in n:
        r.fail(path, "missing key 'numNodes'")
    props = types_pb2.NodeProperties(
        num_nodes=r.integer(n["numNodes"], _join(path, "numNodes"), minimum=1),
        main_node=r.integer(n.get("mainNode", 0), _join(path, "mainNode")),
    )
    ranges_path = _join(path, "nodeRangeProperties")
    ranges = _items(r, n.get("nodeRangeProperties"), ranges_path, "node ranges")
    if not ranges:
        r.fail(ranges_path, "at least one node range is required (e.g. {targetNodes: '0:', container: {...}})")
    for i, item in enumerate(ranges):
        item_path = f"{ranges_path}[{i}]"
        entry = r.mapping(item, item_path, _RANGE_KEYS)
        if "targetNodes" not in entry:
            r.fail(item_path, "missing key 'targetNodes' (e.g. '0', '1:', '0:2')")
        if "container" not in entry:
            r.fail(item_path, "missing key 'container'")
        target = entry["targetNodes"]
        # YAML reads `targetNodes: 0` as a number: accept it as the text it stands for.
        text = str(target) if isinstance(target, int) and not isinstance(target, bool) else r.string(target, _join(item_path, "targetNodes"))
        props.node_range_properties.add(
            target_nodes=text, container=_container(r, entry["container"], _join(item_path, "container"))
        )
    return props


def parse(data: Any, source: str = "<definition>") -> batch_pb2.RegisterJobDefinitionRequest:
    """Convert an already-parsed YAML/JSON document to a RegisterJobDefinitionRequest.

    `source` names the document in error messages (normally the file name).
    """
    r = _Reader(source)
    if data is None:
        r.fail("", "the file is empty (expected a mapping with jobDefinitionName and containerProperties)")
    top = r.mapping(data, "", _TOP_KEYS)
    if "jobDefinitionName" not in top:
        r.fail("", "missing key 'jobDefinitionName'")
    name = r.string(top["jobDefinitionName"], "jobDefinitionName")
    if not name:
        r.fail("jobDefinitionName", "must not be empty")
    kind = r.string(top["type"], "type").lower() if "type" in top else ""
    if kind not in ("", "container", "multinode"):
        r.fail("type", f"must be 'container' or 'multinode', got {top['type']!r}")
    multinode = kind == "multinode" or "nodeProperties" in top
    if multinode:
        if "containerProperties" in top:
            r.fail("containerProperties", "a multi-node definition has nodeProperties instead (a container per node range)")
        if "nodeProperties" not in top:
            r.fail("", "missing key 'nodeProperties' (type multinode)")
        if kind == "container":
            r.fail("type", "is 'container' but the file has nodeProperties: use type multinode")
    elif "containerProperties" not in top:
        r.fail("", "missing key 'containerProperties'")
    request = batch_pb2.RegisterJobDefinitionRequest(
        job_definition_name=name,
        parameters=r.string_map(top.get("parameters"), "parameters"),
        tags=r.string_map(top.get("tags"), "tags"),
    )
    if multinode:
        request.node_properties.CopyFrom(_node_properties(r, top["nodeProperties"], "nodeProperties"))
    else:
        request.container_properties.CopyFrom(_container(r, top["containerProperties"], "containerProperties"))
    if top.get("schedulingPriority") is not None:
        # Orders jobs within a share of a fair-share queue (0-9999, higher first), as AWS.
        request.scheduling_priority = r.integer(top["schedulingPriority"], "schedulingPriority", maximum=9999)
    if r.secret_env:
        request.tags[SECRET_ENV_TAG] = ",".join(dict.fromkeys(r.secret_env))
    if top.get("retryStrategy") is not None:
        request.retry_strategy.CopyFrom(_retry(r, top["retryStrategy"], "retryStrategy"))
    if top.get("timeout") is not None:
        t = r.mapping(top["timeout"], "timeout", _TIMEOUT_KEYS)
        if t.get("attemptDurationSeconds") is not None:
            request.timeout.attempt_duration_seconds = r.integer(
                t["attemptDurationSeconds"], "timeout.attemptDurationSeconds", minimum=1
            )
    return request


def parse_text(text: str, source: str = "<definition>") -> batch_pb2.RegisterJobDefinitionRequest:
    """Parse YAML (or JSON, a subset of it) text; see `parse`."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise JobDefinitionFileError(f"{source}: invalid YAML: {where}{problem}") from None
    return parse(data, source)


def load_file(path: str | Path) -> batch_pb2.RegisterJobDefinitionRequest:
    """Read and parse a job definition file; errors name the file and the key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise JobDefinitionFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise JobDefinitionFileError(
            f"{path}: cannot read: {getattr(err, 'strerror', None) or err}"
        ) from None
    return parse_text(text, str(path))
