from shoal.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ContainerOverrides(_message.Message):
    __slots__ = ("command", "environment", "vcpus", "memory_mib", "image", "runtime", "gpus")
    COMMAND_FIELD_NUMBER: _ClassVar[int]
    ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    command: _containers.RepeatedScalarFieldContainer[str]
    environment: _containers.RepeatedCompositeFieldContainer[_types_pb2.KeyValue]
    vcpus: float
    memory_mib: int
    image: str
    runtime: str
    gpus: int
    def __init__(self, command: _Optional[_Iterable[str]] = ..., environment: _Optional[_Iterable[_Union[_types_pb2.KeyValue, _Mapping]]] = ..., vcpus: _Optional[float] = ..., memory_mib: _Optional[int] = ..., image: _Optional[str] = ..., runtime: _Optional[str] = ..., gpus: _Optional[int] = ...) -> None: ...

class SubmitJobRequest(_message.Message):
    __slots__ = ("job_name", "job_queue", "job_definition", "container_overrides", "depends_on", "array_properties", "retry_strategy", "timeout", "parameters", "tags", "share_identifier", "scheduling_priority_override", "node_properties")
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
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_QUEUE_FIELD_NUMBER: _ClassVar[int]
    JOB_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    DEPENDS_ON_FIELD_NUMBER: _ClassVar[int]
    ARRAY_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    RETRY_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SHARE_IDENTIFIER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULING_PRIORITY_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    NODE_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    job_name: str
    job_queue: str
    job_definition: str
    container_overrides: ContainerOverrides
    depends_on: _containers.RepeatedCompositeFieldContainer[_types_pb2.JobDependency]
    array_properties: _types_pb2.ArrayProperties
    retry_strategy: _types_pb2.RetryStrategy
    timeout: _types_pb2.JobTimeout
    parameters: _containers.ScalarMap[str, str]
    tags: _containers.ScalarMap[str, str]
    share_identifier: str
    scheduling_priority_override: int
    node_properties: _types_pb2.NodeProperties
    def __init__(self, job_name: _Optional[str] = ..., job_queue: _Optional[str] = ..., job_definition: _Optional[str] = ..., container_overrides: _Optional[_Union[ContainerOverrides, _Mapping]] = ..., depends_on: _Optional[_Iterable[_Union[_types_pb2.JobDependency, _Mapping]]] = ..., array_properties: _Optional[_Union[_types_pb2.ArrayProperties, _Mapping]] = ..., retry_strategy: _Optional[_Union[_types_pb2.RetryStrategy, _Mapping]] = ..., timeout: _Optional[_Union[_types_pb2.JobTimeout, _Mapping]] = ..., parameters: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., share_identifier: _Optional[str] = ..., scheduling_priority_override: _Optional[int] = ..., node_properties: _Optional[_Union[_types_pb2.NodeProperties, _Mapping]] = ...) -> None: ...

class SubmitJobResponse(_message.Message):
    __slots__ = ("job_id", "job_name")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    job_name: str
    def __init__(self, job_id: _Optional[str] = ..., job_name: _Optional[str] = ...) -> None: ...

class SubmitJobsRequest(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[SubmitJobRequest]
    def __init__(self, jobs: _Optional[_Iterable[_Union[SubmitJobRequest, _Mapping]]] = ...) -> None: ...

class SubmitJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[SubmitJobResponse]
    def __init__(self, jobs: _Optional[_Iterable[_Union[SubmitJobResponse, _Mapping]]] = ...) -> None: ...

class DescribeJobsRequest(_message.Message):
    __slots__ = ("job_ids",)
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DescribeJobsResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_types_pb2.Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_types_pb2.Job, _Mapping]]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("job_queue", "job_status", "max_results", "next_token", "job_name_prefix", "created_after", "created_before", "array_job_id", "top_level_only", "newest_first")
    JOB_QUEUE_FIELD_NUMBER: _ClassVar[int]
    JOB_STATUS_FIELD_NUMBER: _ClassVar[int]
    MAX_RESULTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_PREFIX_FIELD_NUMBER: _ClassVar[int]
    CREATED_AFTER_FIELD_NUMBER: _ClassVar[int]
    CREATED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ARRAY_JOB_ID_FIELD_NUMBER: _ClassVar[int]
    TOP_LEVEL_ONLY_FIELD_NUMBER: _ClassVar[int]
    NEWEST_FIRST_FIELD_NUMBER: _ClassVar[int]
    job_queue: str
    job_status: _types_pb2.JobStatus
    max_results: int
    next_token: str
    job_name_prefix: str
    created_after: int
    created_before: int
    array_job_id: str
    top_level_only: bool
    newest_first: bool
    def __init__(self, job_queue: _Optional[str] = ..., job_status: _Optional[_Union[_types_pb2.JobStatus, str]] = ..., max_results: _Optional[int] = ..., next_token: _Optional[str] = ..., job_name_prefix: _Optional[str] = ..., created_after: _Optional[int] = ..., created_before: _Optional[int] = ..., array_job_id: _Optional[str] = ..., top_level_only: _Optional[bool] = ..., newest_first: _Optional[bool] = ...) -> None: ...

class JobSummary(_message.Message):
    __slots__ = ("job_id", "job_name", "job_queue", "status", "status_reason", "created_at", "started_at", "stopped_at", "exit_code", "node_id", "attempts", "num_nodes", "node_index")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_NAME_FIELD_NUMBER: _ClassVar[int]
    JOB_QUEUE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    NUM_NODES_FIELD_NUMBER: _ClassVar[int]
    NODE_INDEX_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    job_name: str
    job_queue: str
    status: _types_pb2.JobStatus
    status_reason: str
    created_at: int
    started_at: int
    stopped_at: int
    exit_code: int
    node_id: str
    attempts: int
    num_nodes: int
    node_index: int
    def __init__(self, job_id: _Optional[str] = ..., job_name: _Optional[str] = ..., job_queue: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.JobStatus, str]] = ..., status_reason: _Optional[str] = ..., created_at: _Optional[int] = ..., started_at: _Optional[int] = ..., stopped_at: _Optional[int] = ..., exit_code: _Optional[int] = ..., node_id: _Optional[str] = ..., attempts: _Optional[int] = ..., num_nodes: _Optional[int] = ..., node_index: _Optional[int] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("job_summary_list", "next_token")
    JOB_SUMMARY_LIST_FIELD_NUMBER: _ClassVar[int]
    NEXT_TOKEN_FIELD_NUMBER: _ClassVar[int]
    job_summary_list: _containers.RepeatedCompositeFieldContainer[JobSummary]
    next_token: str
    def __init__(self, job_summary_list: _Optional[_Iterable[_Union[JobSummary, _Mapping]]] = ..., next_token: _Optional[str] = ...) -> None: ...

class CancelJobRequest(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CancelJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TerminateJobRequest(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class TerminateJobResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RegisterJobDefinitionRequest(_message.Message):
    __slots__ = ("job_definition_name", "container_properties", "retry_strategy", "timeout", "parameters", "tags", "scheduling_priority", "node_properties")
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
    CONTAINER_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    RETRY_STRATEGY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULING_PRIORITY_FIELD_NUMBER: _ClassVar[int]
    NODE_PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    job_definition_name: str
    container_properties: _types_pb2.ContainerProperties
    retry_strategy: _types_pb2.RetryStrategy
    timeout: _types_pb2.JobTimeout
    parameters: _containers.ScalarMap[str, str]
    tags: _containers.ScalarMap[str, str]
    scheduling_priority: int
    node_properties: _types_pb2.NodeProperties
    def __init__(self, job_definition_name: _Optional[str] = ..., container_properties: _Optional[_Union[_types_pb2.ContainerProperties, _Mapping]] = ..., retry_strategy: _Optional[_Union[_types_pb2.RetryStrategy, _Mapping]] = ..., timeout: _Optional[_Union[_types_pb2.JobTimeout, _Mapping]] = ..., parameters: _Optional[_Mapping[str, str]] = ..., tags: _Optional[_Mapping[str, str]] = ..., scheduling_priority: _Optional[int] = ..., node_properties: _Optional[_Union[_types_pb2.NodeProperties, _Mapping]] = ...) -> None: ...

class RegisterJobDefinitionResponse(_message.Message):
    __slots__ = ("job_definition_name", "revision")
    JOB_DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    job_definition_name: str
    revision: int
    def __init__(self, job_definition_name: _Optional[str] = ..., revision: _Optional[int] = ...) -> None: ...

class DescribeJobDefinitionsRequest(_message.Message):
    __slots__ = ("job_definition_name", "status")
    JOB_DEFINITION_NAME_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    job_definition_name: str
    status: str
    def __init__(self, job_definition_name: _Optional[str] = ..., status: _Optional[str] = ...) -> None: ...

class DescribeJobDefinitionsResponse(_message.Message):
    __slots__ = ("job_definitions",)
    JOB_DEFINITIONS_FIELD_NUMBER: _ClassVar[int]
    job_definitions: _containers.RepeatedCompositeFieldContainer[_types_pb2.JobDefinition]
    def __init__(self, job_definitions: _Optional[_Iterable[_Union[_types_pb2.JobDefinition, _Mapping]]] = ...) -> None: ...

class DeregisterJobDefinitionRequest(_message.Message):
    __slots__ = ("job_definition",)
    JOB_DEFINITION_FIELD_NUMBER: _ClassVar[int]
    job_definition: str
    def __init__(self, job_definition: _Optional[str] = ...) -> None: ...

class DeregisterJobDefinitionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CreateJobQueueRequest(_message.Message):
    __slots__ = ("job_queue_name", "state", "priority", "compute_environment_order", "scheduling_policy")
    JOB_QUEUE_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_ENVIRONMENT_ORDER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULING_POLICY_FIELD_NUMBER: _ClassVar[int]
    job_queue_name: str
    state: _types_pb2.EntityState
    priority: int
    compute_environment_order: _containers.RepeatedCompositeFieldContainer[_types_pb2.ComputeEnvironmentOrder]
    scheduling_policy: str
    def __init__(self, job_queue_name: _Optional[str] = ..., state: _Optional[_Union[_types_pb2.EntityState, str]] = ..., priority: _Optional[int] = ..., compute_environment_order: _Optional[_Iterable[_Union[_types_pb2.ComputeEnvironmentOrder, _Mapping]]] = ..., scheduling_policy: _Optional[str] = ...) -> None: ...

class UpdateJobQueueRequest(_message.Message):
    __slots__ = ("job_queue_name", "state", "priority", "compute_environment_order", "scheduling_policy")
    JOB_QUEUE_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_ENVIRONMENT_ORDER_FIELD_NUMBER: _ClassVar[int]
    SCHEDULING_POLICY_FIELD_NUMBER: _ClassVar[int]
    job_queue_name: str
    state: _types_pb2.EntityState
    priority: int
    compute_environment_order: _containers.RepeatedCompositeFieldContainer[_types_pb2.ComputeEnvironmentOrder]
    scheduling_policy: str
    def __init__(self, job_queue_name: _Optional[str] = ..., state: _Optional[_Union[_types_pb2.EntityState, str]] = ..., priority: _Optional[int] = ..., compute_environment_order: _Optional[_Iterable[_Union[_types_pb2.ComputeEnvironmentOrder, _Mapping]]] = ..., scheduling_policy: _Optional[str] = ...) -> None: ...

class DeleteJobQueueRequest(_message.Message):
    __slots__ = ("job_queue_name",)
    JOB_QUEUE_NAME_FIELD_NUMBER: _ClassVar[int]
    job_queue_name: str
    def __init__(self, job_queue_name: _Optional[str] = ...) -> None: ...

class DeleteJobQueueResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeJobQueuesRequest(_message.Message):
    __slots__ = ("job_queues",)
    JOB_QUEUES_FIELD_NUMBER: _ClassVar[int]
    job_queues: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_queues: _Optional[_Iterable[str]] = ...) -> None: ...

class DescribeJobQueuesResponse(_message.Message):
    __slots__ = ("job_queues",)
    JOB_QUEUES_FIELD_NUMBER: _ClassVar[int]
    job_queues: _containers.RepeatedCompositeFieldContainer[_types_pb2.JobQueue]
    def __init__(self, job_queues: _Optional[_Iterable[_Union[_types_pb2.JobQueue, _Mapping]]] = ...) -> None: ...

class CreateComputeEnvironmentRequest(_message.Message):
    __slots__ = ("compute_environment_name", "type", "state", "min_vcpus", "desired_vcpus", "max_vcpus", "provisioner")
    COMPUTE_ENVIRONMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MIN_VCPUS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_VCPUS_FIELD_NUMBER: _ClassVar[int]
    MAX_VCPUS_FIELD_NUMBER: _ClassVar[int]
    PROVISIONER_FIELD_NUMBER: _ClassVar[int]
    compute_environment_name: str
    type: _types_pb2.ComputeEnvironmentType
    state: _types_pb2.EntityState
    min_vcpus: int
    desired_vcpus: int
    max_vcpus: int
    provisioner: _types_pb2.Provisioner
    def __init__(self, compute_environment_name: _Optional[str] = ..., type: _Optional[_Union[_types_pb2.ComputeEnvironmentType, str]] = ..., state: _Optional[_Union[_types_pb2.EntityState, str]] = ..., min_vcpus: _Optional[int] = ..., desired_vcpus: _Optional[int] = ..., max_vcpus: _Optional[int] = ..., provisioner: _Optional[_Union[_types_pb2.Provisioner, _Mapping]] = ...) -> None: ...

class UpdateComputeEnvironmentRequest(_message.Message):
    __slots__ = ("compute_environment_name", "state", "min_vcpus", "desired_vcpus", "max_vcpus", "provisioner")
    COMPUTE_ENVIRONMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MIN_VCPUS_FIELD_NUMBER: _ClassVar[int]
    DESIRED_VCPUS_FIELD_NUMBER: _ClassVar[int]
    MAX_VCPUS_FIELD_NUMBER: _ClassVar[int]
    PROVISIONER_FIELD_NUMBER: _ClassVar[int]
    compute_environment_name: str
    state: _types_pb2.EntityState
    min_vcpus: int
    desired_vcpus: int
    max_vcpus: int
    provisioner: _types_pb2.Provisioner
    def __init__(self, compute_environment_name: _Optional[str] = ..., state: _Optional[_Union[_types_pb2.EntityState, str]] = ..., min_vcpus: _Optional[int] = ..., desired_vcpus: _Optional[int] = ..., max_vcpus: _Optional[int] = ..., provisioner: _Optional[_Union[_types_pb2.Provisioner, _Mapping]] = ...) -> None: ...

class DeleteComputeEnvironmentRequest(_message.Message):
    __slots__ = ("compute_environment_name",)
    COMPUTE_ENVIRONMENT_NAME_FIELD_NUMBER: _ClassVar[int]
    compute_environment_name: str
    def __init__(self, compute_environment_name: _Optional[str] = ...) -> None: ...

class DeleteComputeEnvironmentResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeComputeEnvironmentsRequest(_message.Message):
    __slots__ = ("compute_environments",)
    COMPUTE_ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    compute_environments: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, compute_environments: _Optional[_Iterable[str]] = ...) -> None: ...

class DescribeComputeEnvironmentsResponse(_message.Message):
    __slots__ = ("compute_environments",)
    COMPUTE_ENVIRONMENTS_FIELD_NUMBER: _ClassVar[int]
    compute_environments: _containers.RepeatedCompositeFieldContainer[_types_pb2.ComputeEnvironment]
    def __init__(self, compute_environments: _Optional[_Iterable[_Union[_types_pb2.ComputeEnvironment, _Mapping]]] = ...) -> None: ...

class ListNodesRequest(_message.Message):
    __slots__ = ("compute_environment",)
    COMPUTE_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    compute_environment: str
    def __init__(self, compute_environment: _Optional[str] = ...) -> None: ...

class ListNodesResponse(_message.Message):
    __slots__ = ("nodes",)
    NODES_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[_types_pb2.Node]
    def __init__(self, nodes: _Optional[_Iterable[_Union[_types_pb2.Node, _Mapping]]] = ...) -> None: ...

class DrainNodeRequest(_message.Message):
    __slots__ = ("node_id", "interrupt", "deadline_seconds", "reason")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    INTERRUPT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    interrupt: bool
    deadline_seconds: int
    reason: str
    def __init__(self, node_id: _Optional[str] = ..., interrupt: _Optional[bool] = ..., deadline_seconds: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class DrainNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: _types_pb2.Node
    def __init__(self, node: _Optional[_Union[_types_pb2.Node, _Mapping]] = ...) -> None: ...

class UndrainNodeRequest(_message.Message):
    __slots__ = ("node_id",)
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    def __init__(self, node_id: _Optional[str] = ...) -> None: ...

class UndrainNodeResponse(_message.Message):
    __slots__ = ("node",)
    NODE_FIELD_NUMBER: _ClassVar[int]
    node: _types_pb2.Node
    def __init__(self, node: _Optional[_Union[_types_pb2.Node, _Mapping]] = ...) -> None: ...

class ExplainJobRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ExplainJobResponse(_message.Message):
    __slots__ = ("job_id", "status", "reasons")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: _types_pb2.JobStatus
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.JobStatus, str]] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class WatchJobsRequest(_message.Message):
    __slots__ = ("job_ids", "job_queue", "changes_only")
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    JOB_QUEUE_FIELD_NUMBER: _ClassVar[int]
    CHANGES_ONLY_FIELD_NUMBER: _ClassVar[int]
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    job_queue: str
    changes_only: bool
    def __init__(self, job_ids: _Optional[_Iterable[str]] = ..., job_queue: _Optional[str] = ..., changes_only: _Optional[bool] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job", "revision")
    JOB_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    job: _types_pb2.Job
    revision: int
    def __init__(self, job: _Optional[_Union[_types_pb2.Job, _Mapping]] = ..., revision: _Optional[int] = ...) -> None: ...

class GetJobLogsRequest(_message.Message):
    __slots__ = ("job_id", "attempt", "follow")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    attempt: int
    follow: bool
    def __init__(self, job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class LogChunk(_message.Message):
    __slots__ = ("data", "attempt", "node_id")
    DATA_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    attempt: int
    node_id: str
    def __init__(self, data: _Optional[bytes] = ..., attempt: _Optional[int] = ..., node_id: _Optional[str] = ...) -> None: ...

class DescribeClusterRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeClusterResponse(_message.Message):
    __slots__ = ("replica_id", "replica_address", "is_leader", "leader_address", "epoch", "view_revision", "etcd_healthy", "queue_job_counts", "jobs_per_minute")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    REPLICA_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IS_LEADER_FIELD_NUMBER: _ClassVar[int]
    LEADER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    VIEW_REVISION_FIELD_NUMBER: _ClassVar[int]
    ETCD_HEALTHY_FIELD_NUMBER: _ClassVar[int]
    QUEUE_JOB_COUNTS_FIELD_NUMBER: _ClassVar[int]
    JOBS_PER_MINUTE_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    replica_address: str
    is_leader: bool
    leader_address: str
    epoch: int
    view_revision: int
    etcd_healthy: bool
    queue_job_counts: _containers.RepeatedCompositeFieldContainer[QueueJobCounts]
    jobs_per_minute: _containers.RepeatedCompositeFieldContainer[JobsPerMinute]
    def __init__(self, replica_id: _Optional[str] = ..., replica_address: _Optional[str] = ..., is_leader: _Optional[bool] = ..., leader_address: _Optional[str] = ..., epoch: _Optional[int] = ..., view_revision: _Optional[int] = ..., etcd_healthy: _Optional[bool] = ..., queue_job_counts: _Optional[_Iterable[_Union[QueueJobCounts, _Mapping]]] = ..., jobs_per_minute: _Optional[_Iterable[_Union[JobsPerMinute, _Mapping]]] = ...) -> None: ...

class QueueJobCounts(_message.Message):
    __slots__ = ("job_queue", "counts")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    JOB_QUEUE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    job_queue: str
    counts: _containers.ScalarMap[str, int]
    def __init__(self, job_queue: _Optional[str] = ..., counts: _Optional[_Mapping[str, int]] = ...) -> None: ...

class JobsPerMinute(_message.Message):
    __slots__ = ("minute_start", "started", "finished")
    MINUTE_START_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    minute_start: int
    started: int
    finished: int
    def __init__(self, minute_start: _Optional[int] = ..., started: _Optional[int] = ..., finished: _Optional[int] = ...) -> None: ...

class CreateSchedulingPolicyRequest(_message.Message):
    __slots__ = ("name", "fairshare_policy", "tags")
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
    name: str
    fairshare_policy: _types_pb2.FairsharePolicy
    tags: _containers.ScalarMap[str, str]
    def __init__(self, name: _Optional[str] = ..., fairshare_policy: _Optional[_Union[_types_pb2.FairsharePolicy, _Mapping]] = ..., tags: _Optional[_Mapping[str, str]] = ...) -> None: ...

class UpdateSchedulingPolicyRequest(_message.Message):
    __slots__ = ("name", "fairshare_policy")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FAIRSHARE_POLICY_FIELD_NUMBER: _ClassVar[int]
    name: str
    fairshare_policy: _types_pb2.FairsharePolicy
    def __init__(self, name: _Optional[str] = ..., fairshare_policy: _Optional[_Union[_types_pb2.FairsharePolicy, _Mapping]] = ...) -> None: ...

class DeleteSchedulingPolicyRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteSchedulingPolicyResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DescribeSchedulingPoliciesRequest(_message.Message):
    __slots__ = ("names",)
    NAMES_FIELD_NUMBER: _ClassVar[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, names: _Optional[_Iterable[str]] = ...) -> None: ...

class DescribeSchedulingPoliciesResponse(_message.Message):
    __slots__ = ("scheduling_policies",)
    SCHEDULING_POLICIES_FIELD_NUMBER: _ClassVar[int]
    scheduling_policies: _containers.RepeatedCompositeFieldContainer[_types_pb2.SchedulingPolicy]
    def __init__(self, scheduling_policies: _Optional[_Iterable[_Union[_types_pb2.SchedulingPolicy, _Mapping]]] = ...) -> None: ...
