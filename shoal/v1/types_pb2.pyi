from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_SUBMITTED: _ClassVar[JobStatus]
    JOB_STATUS_PENDING: _ClassVar[JobStatus]
    JOB_STATUS_RUNNABLE: _ClassVar[JobStatus]
    JOB_STATUS_STARTING: _ClassVar[JobStatus]
    JOB_STATUS_RUNNING: _ClassVar[JobStatus]
    JOB_STATUS_SUCCEEDED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]

class RetryAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RETRY_ACTION_UNSPECIFIED: _ClassVar[RetryAction]
    RETRY_ACTION_RETRY: _ClassVar[RetryAction]
    RETRY_ACTION_EXIT: _ClassVar[RetryAction]

class DependencyType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPENDENCY_TYPE_UNSPECIFIED: _ClassVar[DependencyType]
    DEPENDENCY_TYPE_N_TO_N: _ClassVar[DependencyType]
    DEPENDENCY_TYPE_SEQUENTIAL: _ClassVar[DependencyType]
    DEPENDENCY_TYPE_AFTER_ANY: _ClassVar[DependencyType]
    DEPENDENCY_TYPE_AFTER_NOT_OK: _ClassVar[DependencyType]

class EntityState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ENTITY_STATE_UNSPECIFIED: _ClassVar[EntityState]
    ENTITY_STATE_ENABLED: _ClassVar[EntityState]
    ENTITY_STATE_DISABLED: _ClassVar[EntityState]

class ComputeEnvironmentType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPUTE_ENVIRONMENT_TYPE_UNSPECIFIED: _ClassVar[ComputeEnvironmentType]
    COMPUTE_ENVIRONMENT_TYPE_UNMANAGED: _ClassVar[ComputeEnvironmentType]
    COMPUTE_ENVIRONMENT_TYPE_MANAGED: _ClassVar[ComputeEnvironmentType]

class NodeStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NODE_STATUS_UNSPECIFIED: _ClassVar[NodeStatus]
    NODE_STATUS_READY: _ClassVar[NodeStatus]
    NODE_STATUS_DRAINING: _ClassVar[NodeStatus]
    NODE_STATUS_DRAINED: _ClassVar[NodeStatus]
    NODE_STATUS_LOST: _ClassVar[NodeStatus]
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_SUBMITTED: JobStatus
JOB_STATUS_PENDING: JobStatus
JOB_STATUS_RUNNABLE: JobStatus
JOB_STATUS_STARTING: JobStatus
JOB_STATUS_RUNNING: JobStatus
JOB_STATUS_SUCCEEDED: JobStatus
JOB_STATUS_FAILED: JobStatus
RETRY_ACTION_UNSPECIFIED: RetryAction
RETRY_ACTION_RETRY: RetryAction
RETRY_ACTION_EXIT: RetryAction
DEPENDENCY_TYPE_UNSPECIFIED: DependencyType
DEPENDENCY_TYPE_N_TO_N: DependencyType
DEPENDENCY_TYPE_SEQUENTIAL: DependencyType
DEPENDENCY_TYPE_AFTER_ANY: DependencyType
DEPENDENCY_TYPE_AFTER_NOT_OK: DependencyType
ENTITY_STATE_UNSPECIFIED: EntityState
ENTITY_STATE_ENABLED: EntityState
ENTITY_STATE_DISABLED: EntityState
COMPUTE_ENVIRONMENT_TYPE_UNSPECIFIED: ComputeEnvironmentType
COMPUTE_ENVIRONMENT_TYPE_UNMANAGED: ComputeEnvironmentType
COMPUTE_ENVIRONMENT_TYPE_MANAGED: ComputeEnvironmentType
NODE_STATUS_UNSPECIFIED: NodeStatus
NODE_STATUS_READY: NodeStatus
NODE_STATUS_DRAINING: NodeStatus
NODE_STATUS_DRAINED: NodeStatus
NODE_STATUS_LOST: NodeStatus

class KeyValue(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: str
    def __init__(self, name: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...

class ResourceRequirements(_message.Message):
    __slots__ = ("vcpus", "memory_mib", "gpus")
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    vcpus: float
    memory_mib: int
    gpus: int
    def __init__(self, vcpus: _Optional[float] = ..., memory_mib: _Optional[int] = ..., gpus: _Optional[int] = ...) -> None: ...

class EvaluateOnExit(_message.Message):
    __slots__ = ("on_exit_code", "on_reason", "on_status_reason", "action")
    ON_EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    ON_REASON_FIELD_NUMBER: _ClassVar[int]
    ON_STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    on_exit_code: str
    on_reason: str
    on_status_reason: str
    action: RetryAction
    def __init__(self, on_exit_code: _Optional[str] = ..., on_reason: _Optional[str] = ..., on_status_reason: _Optional[str] = ..., action: _Optional[_Union[RetryAction, str]] = ...) -> None: ...

class RetryStrategy(_message.Message):
    __slots__ = ("attempts", "evaluate_on_exit", "interruption_attempts")
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_ON_EXIT_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTION_ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    attempts: int
    evaluate_on_exit: _containers.RepeatedCompositeFieldContainer[EvaluateOnExit]
    interruption_attempts: int
    def __init__(self, attempts: _Optional[int] = ..., evaluate_on_exit: _Optional[_Iterable[_Union[EvaluateOnExit, _Mapping]]] = ..., interruption_attempts: _Optional[int] = ...) -> None: ...

class JobTimeout(_message.Message):
    __slots__ = ("attempt_duration_seconds",)
    ATTEMPT_DURATION_SECONDS_FIELD_NUMBER: _ClassVar[int]
    attempt_duration_seconds: int
    def __init__(self, attempt_duration_seconds: _Optional[int] = ...) -> None: ...

class JobDependency(_message.Message):
    __slots__ = ("job_id", "type")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    type: DependencyType
    def __init__(self, job_id: _Optional[str] = ..., type: _Optional[_Union[DependencyType, str]] = ...) -> None: ...

class Mount(_message.Message):
    __slots__ = ("source_path", "container_path", "read_only")
    SOURCE_PATH_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_PATH_FIELD_NUMBER: _ClassVar[int]
    READ_ONLY_FIELD_NUMBER: _ClassVar[int]
    source_path: str
    container_path: str
    read_only: bool
    def __init__(self, source_path: _Optional[str] = ..., container_path: _Optional[str] = ..., read_only: _Optional[bool] = ...) -> None: ...

class Ulimit(_message.Message):
    __slots__ = ("name", "soft_limit", "hard_limit")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SOFT_LIMIT_FIELD_NUMBER: _ClassVar[int]
    HARD_LIMIT_FIELD_NUMBER: _ClassVar[int]
    name: str
    soft_limit: int
    hard_limit: int
    def __init__(self, name: _Optional[str] = ..., soft_limit: _Optional[int] = ..., hard_limit: _Optional[int] = ...) -> None: ...

class ContainerProperties(_message.Message):
    __slots__ = ("image", "command", "environment", "resources", "runtime", "working_dir", "user", "mounts", "privileged", "readonly_root_filesystem", "ulimits", "shared_memory_size_mib")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    RESOURCES_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    WORKING_DIR_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    MOUNTS_FIELD_NUMBER: _ClassVar[int]
    PRIVILEGED_FIELD_NUMBER: _ClassVar[int]
    READONLY_ROOT_FILESYSTEM_FIELD_NUMBER: _ClassVar[int]
    ULIMITS_FIELD_NUMBER: _ClassVar[int]
    SHARED_MEMORY_SIZE_MIB_FIELD_NUMBER: _ClassVar[int]
    image: str
    command: _containers.RepeatedScalarFieldContainer[str]
    environment: _containers.RepeatedCompositeFieldContainer[KeyValue]
    resources: ResourceRequirements
    runtime: str
    working_dir: str
    user: str
    mounts: _containers.RepeatedCompositeFieldContainer[Mount]
    privileged: bool
    readonly_root_filesystem: bool
    ulimits: _containers.RepeatedCompositeFieldContainer[Ulimit]
    shared_memory_size_mib: int
    def __init__(self, image: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., environment: _Optional[_Iterable[_Union[KeyValue, _Mapping]]] = ..., resources: _Optional[_Union[ResourceRequirements, _Mapping]] = ..., runtime: _Optional[str] = ..., working_dir: _Optional[str] = ..., user: _Optional[str] = ..., mounts: _Optional[_Iterable[_Union[Mount, _Mapping]]] = ..., privileged: _Optional[bool] = ..., readonly_root_filesystem: _Optional[bool] = ..., ulimits: _Optional[_Iterable[_Union[Ulimit, _Mapping]]] = ..., shared_memory_size_mib: _Optional[int] = ...) -> None: ...

class ArrayProperties(_message.Message):
    __slots__ = ("size", "index", "parallelism")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    PARALLELISM_FIELD_NUMBER: _ClassVar[int]
    size: int
    index: int
    parallelism: int
    def __init__(self, size: _Optional[int] = ..., index: _Optional[int] = ..., parallelism: _Optional[int] = ...) -> None: ...

class NodeRangeProperty(_message.Message):
    __slots__ = ("target_nodes", "container")
    TARGET_NODES_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    target_nodes: str
    container: ContainerProperties
    def __init__(self, target_nodes: _Optional[str] = ..., container: _Optional[_Union[ContainerProperties, _Mapping]] = ...) -> None: ...

class NodeProperties(_message.Message):
    __slots__ = ("num_nodes", "main_node", "node_range_properties")
    NUM_NODES_FIELD_NUMBER: _ClassVar[int]
    MAIN_NODE_FIELD_NUMBER: _ClassVar[int]
    NODE_RANGE_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    num_nodes: int
    main_node: int
    node_range_properties: _containers.RepeatedCompositeFieldContainer[NodeRangeProperty]
    def __init__(self, num_nodes: _Optional[int] = ..., main_node: _Optional[int] = ..., node_range_properties: _Optional[_Iterable[_Union[NodeRangeProperty, _Mapping]]] = ...) -> None: ...

class NodeDetails(_message.Message):
    __slots__ = ("node_index", "is_main_node", "num_nodes", "main_node_index", "main_node_address")
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    IS_MAIN_NODE_FIELD_NUMBER: _ClassVar[int]
    NUM_NODES_FIELD_NUMBER: _ClassVar[int]
    MAIN_NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    MAIN_NODE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    node_index: int
    is_main_node: bool
    num_nodes: int
    main_node_index: int
    main_node_address: str
    def __init__(self, node_index: _Optional[int] = ..., is_main_node: _Optional[bool] = ..., num_nodes: _Optional[int] = ..., main_node_index: _Optional[int] = ..., main_node_address: _Optional[str] = ...) -> None: ...

class MultiNodeOutcome(_message.Message):
    __slots__ = ("exit_code", "status_reason", "reason", "interrupted", "started_at", "stopped_at", "node_index", "node_id")
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    exit_code: int
    status_reason: str
    reason: str
    interrupted: bool
    started_at: int
    stopped_at: int
    node_index: int
    node_id: str
    def __init__(self, exit_code: _Optional[int] = ..., status_reason: _Optional[str] = ..., reason: _Optional[str] = ..., interrupted: _Optional[bool] = ..., started_at: _Optional[int] = ..., stopped_at: _Optional[int] = ..., node_index: _Optional[int] = ..., node_id: _Optional[str] = ...) -> None: ...

class JobDefinition(_message.Message):
    __slots__ = ("job_definition_name", "revision", "status", "container_properties", "retry_strategy", "timeout", "parameters", "tags", "created_at", "scheduling_priority", "node_properties")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    RETRY_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULING_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    NODE_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    job_definition_name: str
    revision: int
    status: str
    container_properties: ContainerProperties
    retry_strategy: RetryStrategy
    timeout: JobTimeout
    parameters: _containers.ScalarMap[str, str]
    tags: _containers.ScalarMap[str, str]
    created_at: int
    scheduling_priority: int
    node_properties: NodeProperties
    def __init__(self, job_definition_name: _Optional[str] = ..., revision: _Optional[int] = ..., status: _Optional[str] = ..., container_properties: _Optional[_Union[ContainerProperties, _Mapping]] = ..., retry_strategy: _Optional[_Union[RetryStrategy, _Mapping]] = ..., timeout: _Optional[_Union[JobTimeout, _Mapping]] = ..., parameters: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[int] = ..., scheduling_priority: _Optional[int] = ..., node_properties: _Optional[_Union[NodeProperties, _Mapping]] = ...) -> None: ...

class ComputeEnvironmentOrder(_message.Message):
    __slots__ = ("order", "compute_environment")
    ORDER_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    order: int
    compute_environment: str
    def __init__(self, order: _Optional[int] = ..., compute_environment: _Optional[str] = ...) -> None: ...

class JobQueue(_message.Message):
    __slots__ = ("job_queue_name", "state", "priority", "compute_environment_order", "created_at", "scheduling_policy")
    JOB_QUEUE_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_ENVIRONMENT_ORDER_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULING_POLICY_FIELD_NUMBER: _ClassVar[int]
    job_queue_name: str
    state: EntityState
    priority: int
    compute_environment_order: _containers.RepeatedCompositeFieldContainer[ComputeEnvironmentOrder]
    created_at: int
    scheduling_policy: str
    def __init__(self, job_queue_name: _Optional[str] = ..., state: _Optional[_Union[EntityState, str]] = ..., priority: _Optional[int] = ..., compute_environment_order: _Optional[_Iterable[_Union[ComputeEnvironmentOrder, _Mapping]]] = ..., created_at: _Optional[int] = ..., scheduling_policy: _Optional[str] = ...) -> None: ...

class Provisioner(_message.Message):
    __slots__ = ("kind", "command", "node_vcpus", "node_memory_mib")
    KIND_FIELD_NUMBER: _ClassVar[int]
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    NODE_VCPUS_FIELD_NUMBER: _ClassVar[int]
    NODE_MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    kind: str
    command: _containers.RepeatedScalarFieldContainer[str]
    node_vcpus: float
    node_memory_mib: int
    def __init__(self, kind: _Optional[str] = ..., command: _Optional[_Iterable[str]] = ..., node_vcpus: _Optional[float] = ..., node_memory_mib: _Optional[int] = ...) -> None: ...

class ComputeEnvironment(_message.Message):
    __slots__ = ("compute_environment_name", "type", "state", "min_vcpus", "desired_vcpus", "max_vcpus", "created_at", "provisioner")
    COMPUTE_ENVIRONMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MIN_VCPUS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_VCPUS_FIELD_NUMBER: _ClassVar[int]
    MAX_VCPUS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    PROVISIONER_FIELD_NUMBER: _ClassVar[int]
    compute_environment_name: str
    type: ComputeEnvironmentType
    state: EntityState
    min_vcpus: int
    desired_vcpus: int
    max_vcpus: int
    created_at: int
    provisioner: Provisioner
    def __init__(self, compute_environment_name: _Optional[str] = ..., type: _Optional[_Union[ComputeEnvironmentType, str]] = ..., state: _Optional[_Union[EntityState, str]] = ..., min_vcpus: _Optional[int] = ..., desired_vcpus: _Optional[int] = ..., max_vcpus: _Optional[int] = ..., created_at: _Optional[int] = ..., provisioner: _Optional[_Union[Provisioner, _Mapping]] = ...) -> None: ...

class AttemptToken(_message.Message):
    __slots__ = ("job_id", "attempt", "epoch")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    epoch: int
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., epoch: _Optional[int] = ...) -> None: ...

class AttemptDetail(_message.Message):
    __slots__ = ("attempt", "node_id", "exit_code", "status_reason", "reason", "started_at", "stopped_at", "interrupted", "gpu_ids", "main_node_address")
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    GPU_IDS_FIELD_NUMBER: _ClassVar[int]
    MAIN_NODE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    attempt: int
    node_id: str
    exit_code: int
    status_reason: str
    reason: str
    started_at: int
    stopped_at: int
    interrupted: bool
    gpu_ids: _containers.RepeatedScalarFieldContainer[str]
    main_node_address: str
    def __init__(self, attempt: _Optional[int] = ..., node_id: _Optional[str] = ..., exit_code: _Optional[int] = ..., status_reason: _Optional[str] = ..., reason: _Optional[str] = ..., started_at: _Optional[int] = ..., stopped_at: _Optional[int] = ..., interrupted: _Optional[bool] = ..., gpu_ids: _Optional[_Iterable[str]] = ..., main_node_address: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("job_id", "job_name", "job_queue", "status", "status_reason", "created_at", "started_at", "stopped_at", "attempts", "depends_on", "job_definition", "container", "retry_strategy", "timeout", "array_properties", "tags", "parameters", "current", "node_id", "compute_environment", "terminate_reason", "interruptions_used", "batch_index", "array_status_summary", "interrupt_reason", "share_identifier", "scheduling_priority", "gpu_ids", "node_properties", "node_details", "multinode_outcome")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    class ArrayStatusSummaryEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_QUEUE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    JOB_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    RETRY_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ARRAY_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    TERMINATE_REASON_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTIONS_USED_FIELD_NUMBER: _ClassVar[int]
    BATCH_INDEX_FIELD_NUMBER: _ClassVar[int]
    ARRAY_STATUS_SUMMARY_FIELD_NUMBER: _ClassVar[int]
    INTERRUPT_REASON_FIELD_NUMBER: _ClassVar[int]
    SHARE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULING_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    GPU_IDS_FIELD_NUMBER: _ClassVar[int]
    NODE_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    NODE_DETAILS_FIELD_NUMBER: _ClassVar[int]
    MULTINODE_OUTCOME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    job_name: str
    job_queue: str
    status: JobStatus
    status_reason: str
    created_at: int
    started_at: int
    stopped_at: int
    attempts: _containers.RepeatedCompositeFieldContainer[AttemptDetail]
    depends_on: _containers.RepeatedCompositeFieldContainer[JobDependency]
    job_definition: str
    container: ContainerProperties
    retry_strategy: RetryStrategy
    timeout: JobTimeout
    array_properties: ArrayProperties
    tags: _containers.ScalarMap[str, str]
    parameters: _containers.ScalarMap[str, str]
    current: AttemptToken
    node_id: str
    compute_environment: str
    terminate_reason: str
    interruptions_used: int
    batch_index: int
    array_status_summary: _containers.ScalarMap[str, int]
    interrupt_reason: str
    share_identifier: str
    scheduling_priority: int
    gpu_ids: _containers.RepeatedScalarFieldContainer[str]
    node_properties: NodeProperties
    node_details: NodeDetails
    multinode_outcome: MultiNodeOutcome
    def __init__(self, job_id: _Optional[str] = ..., job_name: _Optional[str] = ..., job_queue: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., status_reason: _Optional[str] = ..., created_at: _Optional[int] = ..., started_at: _Optional[int] = ..., stopped_at: _Optional[int] = ..., attempts: _Optional[_Iterable[_Union[AttemptDetail, _Mapping]]] = ..., depends_on: _Optional[_Iterable[_Union[JobDependency, _Mapping]]] = ..., job_definition: _Optional[str] = ..., container: _Optional[_Union[ContainerProperties, _Mapping]] = ..., retry_strategy: _Optional[_Union[RetryStrategy, _Mapping]] = ..., timeout: _Optional[_Union[JobTimeout, _Mapping]] = ..., array_properties: _Optional[_Union[ArrayProperties, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., parameters: _Optional[_Mapping[str, str]] = ..., current: _Optional[_Union[AttemptToken, _Mapping]] = ..., node_id: _Optional[str] = ..., compute_environment: _Optional[str] = ..., terminate_reason: _Optional[str] = ..., interruptions_used: _Optional[int] = ..., batch_index: _Optional[int] = ..., array_status_summary: _Optional[_Mapping[str, int]] = ..., interrupt_reason: _Optional[str] = ..., share_identifier: _Optional[str] = ..., scheduling_priority: _Optional[int] = ..., gpu_ids: _Optional[_Iterable[str]] = ..., node_properties: _Optional[_Union[NodeProperties, _Mapping]] = ..., node_details: _Optional[_Union[NodeDetails, _Mapping]] = ..., multinode_outcome: _Optional[_Union[MultiNodeOutcome, _Mapping]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("node_id", "hostname", "status", "compute_environment", "vcpus", "memory_mib", "gpus", "labels", "runtimes", "registered_at", "last_seen_at", "agent_version", "status_reason", "drain_deadline_at", "gpu_ids", "gpus_free", "address", "heartbeat_age_ms", "running_job_ids", "used")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    REGISTERED_AT_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_AT_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    DRAIN_DEADLINE_AT_FIELD_NUMBER: _ClassVar[int]
    GPU_IDS_FIELD_NUMBER: _ClassVar[int]
    GPUS_FREE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_AGE_MS_FIELD_NUMBER: _ClassVar[int]
    RUNNING_JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    USED_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    hostname: str
    status: NodeStatus
    compute_environment: str
    vcpus: float
    memory_mib: int
    gpus: int
    labels: _containers.ScalarMap[str, str]
    runtimes: _containers.RepeatedScalarFieldContainer[str]
    registered_at: int
    last_seen_at: int
    agent_version: str
    status_reason: str
    drain_deadline_at: int
    gpu_ids: _containers.RepeatedScalarFieldContainer[str]
    gpus_free: int
    address: str
    heartbeat_age_ms: int
    running_job_ids: _containers.RepeatedScalarFieldContainer[str]
    used: ResourceRequirements
    def __init__(self, node_id: _Optional[str] = ..., hostname: _Optional[str] = ..., status: _Optional[_Union[NodeStatus, str]] = ..., compute_environment: _Optional[str] = ..., vcpus: _Optional[float] = ..., memory_mib: _Optional[int] = ..., gpus: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., runtimes: _Optional[_Iterable[str]] = ..., registered_at: _Optional[int] = ..., last_seen_at: _Optional[int] = ..., agent_version: _Optional[str] = ..., status_reason: _Optional[str] = ..., drain_deadline_at: _Optional[int] = ..., gpu_ids: _Optional[_Iterable[str]] = ..., gpus_free: _Optional[int] = ..., address: _Optional[str] = ..., heartbeat_age_ms: _Optional[int] = ..., running_job_ids: _Optional[_Iterable[str]] = ..., used: _Optional[_Union[ResourceRequirements, _Mapping]] = ...) -> None: ...

class ShareAttributes(_message.Message):
    __slots__ = ("share_identifier", "weight_factor")
    SHARE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FACTOR_FIELD_NUMBER: _ClassVar[int]
    share_identifier: str
    weight_factor: float
    def __init__(self, share_identifier: _Optional[str] = ..., weight_factor: _Optional[float] = ...) -> None: ...

class FairsharePolicy(_message.Message):
    __slots__ = ("share_decay_seconds", "compute_reservation", "share_distribution")
    SHARE_DECAY_SECONDS_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_RESERVATION_FIELD_NUMBER: _ClassVar[int]
    SHARE_DISTRIBUTION_FIELD_NUMBER: _ClassVar[int]
    share_decay_seconds: int
    compute_reservation: int
    share_distribution: _containers.RepeatedCompositeFieldContainer[ShareAttributes]
    def __init__(self, share_decay_seconds: _Optional[int] = ..., compute_reservation: _Optional[int] = ..., share_distribution: _Optional[_Iterable[_Union[ShareAttributes, _Mapping]]] = ...) -> None: ...

class SchedulingPolicy(_message.Message):
    __slots__ = ("name", "fairshare_policy", "tags", "created_at")
    class TagsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    FAIRSHARE_POLICY_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    name: str
    fairshare_policy: FairsharePolicy
    tags: _containers.ScalarMap[str, str]
    created_at: int
    def __init__(self, name: _Optional[str] = ..., fairshare_policy: _Optional[_Union[FairsharePolicy, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ..., created_at: _Optional[int] = ...) -> None: ...
