from shoal.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AgentMessage(_message.Message):
    __slots__ = ("register", "heartbeat", "attempt_started", "attempt_finished", "log_data", "interrupted", "hand_over", "batch")
    REGISTER_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_STARTED_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FINISHED_FIELD_NUMBER: _ClassVar[int]
    LOG_DATA_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    HAND_OVER_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    register: Register
    heartbeat: Heartbeat
    attempt_started: AttemptStarted
    attempt_finished: AttemptFinished
    log_data: LogData
    interrupted: Interrupted
    hand_over: HandOver
    batch: AgentBatch
    def __init__(self, register: _Optional[_Union[Register, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., attempt_started: _Optional[_Union[AttemptStarted, _Mapping]] = ..., attempt_finished: _Optional[_Union[AttemptFinished, _Mapping]] = ..., log_data: _Optional[_Union[LogData, _Mapping]] = ..., interrupted: _Optional[_Union[Interrupted, _Mapping]] = ..., hand_over: _Optional[_Union[HandOver, _Mapping]] = ..., batch: _Optional[_Union[AgentBatch, _Mapping]] = ...) -> None: ...

class AgentBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[AgentMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[AgentMessage, _Mapping]]] = ...) -> None: ...

class HeldAttempt(_message.Message):
    __slots__ = ("token", "started_at", "finished")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    FINISHED_FIELD_NUMBER: _ClassVar[int]
    token: _types_pb2.AttemptToken
    started_at: int
    finished: AttemptFinished
    def __init__(self, token: _Optional[_Union[_types_pb2.AttemptToken, _Mapping]] = ..., started_at: _Optional[int] = ..., finished: _Optional[_Union[AttemptFinished, _Mapping]] = ...) -> None: ...

class Register(_message.Message):
    __slots__ = ("node_id", "hostname", "compute_environment", "vcpus", "memory_mib", "gpus", "labels", "runtimes", "agent_version", "attempts", "fence_timeout_ms", "fence_window_ms", "fence_kill_grace_ms", "gpu_ids", "advertise_address", "batches")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    COMPUTE_ENVIRONMENT_FIELD_NUMBER: _ClassVar[int]
    VCPUS_FIELD_NUMBER: _ClassVar[int]
    MEMORY_MIB_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    RUNTIMES_FIELD_NUMBER: _ClassVar[int]
    AGENT_VERSION_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    FENCE_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    FENCE_WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    FENCE_KILL_GRACE_MS_FIELD_NUMBER: _ClassVar[int]
    GPU_IDS_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    hostname: str
    compute_environment: str
    vcpus: float
    memory_mib: int
    gpus: int
    labels: _containers.ScalarMap[str, str]
    runtimes: _containers.RepeatedScalarFieldContainer[str]
    agent_version: str
    attempts: _containers.RepeatedCompositeFieldContainer[HeldAttempt]
    fence_timeout_ms: int
    fence_window_ms: int
    fence_kill_grace_ms: int
    gpu_ids: _containers.RepeatedScalarFieldContainer[str]
    advertise_address: str
    batches: bool
    def __init__(self, node_id: _Optional[str] = ..., hostname: _Optional[str] = ..., compute_environment: _Optional[str] = ..., vcpus: _Optional[float] = ..., memory_mib: _Optional[int] = ..., gpus: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., runtimes: _Optional[_Iterable[str]] = ..., agent_version: _Optional[str] = ..., attempts: _Optional[_Iterable[_Union[HeldAttempt, _Mapping]]] = ..., fence_timeout_ms: _Optional[int] = ..., fence_window_ms: _Optional[int] = ..., fence_kill_grace_ms: _Optional[int] = ..., gpu_ids: _Optional[_Iterable[str]] = ..., advertise_address: _Optional[str] = ..., batches: _Optional[bool] = ...) -> None: ...

class HandOver(_message.Message):
    __slots__ = ("window_ms",)
    WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    window_ms: int
    def __init__(self, window_ms: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("seq", "running")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    seq: int
    running: _containers.RepeatedCompositeFieldContainer[_types_pb2.AttemptToken]
    def __init__(self, seq: _Optional[int] = ..., running: _Optional[_Iterable[_Union[_types_pb2.AttemptToken, _Mapping]]] = ...) -> None: ...

class AttemptStarted(_message.Message):
    __slots__ = ("token", "started_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    token: _types_pb2.AttemptToken
    started_at: int
    def __init__(self, token: _Optional[_Union[_types_pb2.AttemptToken, _Mapping]] = ..., started_at: _Optional[int] = ...) -> None: ...

class AttemptFinished(_message.Message):
    __slots__ = ("token", "exit_code", "status_reason", "reason", "started_at", "stopped_at")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    EXIT_CODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_REASON_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_AT_FIELD_NUMBER: _ClassVar[int]
    token: _types_pb2.AttemptToken
    exit_code: int
    status_reason: str
    reason: str
    started_at: int
    stopped_at: int
    def __init__(self, token: _Optional[_Union[_types_pb2.AttemptToken, _Mapping]] = ..., exit_code: _Optional[int] = ..., status_reason: _Optional[str] = ..., reason: _Optional[str] = ..., started_at: _Optional[int] = ..., stopped_at: _Optional[int] = ...) -> None: ...

class LogData(_message.Message):
    __slots__ = ("request_id", "data", "eof", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    EOF_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    data: bytes
    eof: bool
    error: str
    def __init__(self, request_id: _Optional[int] = ..., data: _Optional[bytes] = ..., eof: _Optional[bool] = ..., error: _Optional[str] = ...) -> None: ...

class Interrupted(_message.Message):
    __slots__ = ("reason",)
    REASON_FIELD_NUMBER: _ClassVar[int]
    reason: str
    def __init__(self, reason: _Optional[str] = ...) -> None: ...

class ControllerMessage(_message.Message):
    __slots__ = ("registered", "heartbeat_ack", "start_attempt", "kill_attempt", "read_logs", "cancel_logs", "hand_over_ack", "batch")
    REGISTERED_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_ACK_FIELD_NUMBER: _ClassVar[int]
    START_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    KILL_ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    READ_LOGS_FIELD_NUMBER: _ClassVar[int]
    CANCEL_LOGS_FIELD_NUMBER: _ClassVar[int]
    HAND_OVER_ACK_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    registered: Registered
    heartbeat_ack: HeartbeatAck
    start_attempt: StartAttempt
    kill_attempt: KillAttempt
    read_logs: ReadLogs
    cancel_logs: CancelLogs
    hand_over_ack: HandOverAck
    batch: ControllerBatch
    def __init__(self, registered: _Optional[_Union[Registered, _Mapping]] = ..., heartbeat_ack: _Optional[_Union[HeartbeatAck, _Mapping]] = ..., start_attempt: _Optional[_Union[StartAttempt, _Mapping]] = ..., kill_attempt: _Optional[_Union[KillAttempt, _Mapping]] = ..., read_logs: _Optional[_Union[ReadLogs, _Mapping]] = ..., cancel_logs: _Optional[_Union[CancelLogs, _Mapping]] = ..., hand_over_ack: _Optional[_Union[HandOverAck, _Mapping]] = ..., batch: _Optional[_Union[ControllerBatch, _Mapping]] = ...) -> None: ...

class ControllerBatch(_message.Message):
    __slots__ = ("messages",)
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    messages: _containers.RepeatedCompositeFieldContainer[ControllerMessage]
    def __init__(self, messages: _Optional[_Iterable[_Union[ControllerMessage, _Mapping]]] = ...) -> None: ...

class HandOverAck(_message.Message):
    __slots__ = ("window_ms",)
    WINDOW_MS_FIELD_NUMBER: _ClassVar[int]
    window_ms: int
    def __init__(self, window_ms: _Optional[int] = ...) -> None: ...

class Registered(_message.Message):
    __slots__ = ("node_id", "epoch", "heartbeat_interval_ms", "stale", "batches")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    EPOCH_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    epoch: int
    heartbeat_interval_ms: int
    stale: _containers.RepeatedCompositeFieldContainer[_types_pb2.AttemptToken]
    batches: bool
    def __init__(self, node_id: _Optional[str] = ..., epoch: _Optional[int] = ..., heartbeat_interval_ms: _Optional[int] = ..., stale: _Optional[_Iterable[_Union[_types_pb2.AttemptToken, _Mapping]]] = ..., batches: _Optional[bool] = ...) -> None: ...

class HeartbeatAck(_message.Message):
    __slots__ = ("seq",)
    SEQ_FIELD_NUMBER: _ClassVar[int]
    seq: int
    def __init__(self, seq: _Optional[int] = ...) -> None: ...

class StartAttempt(_message.Message):
    __slots__ = ("token", "container", "timeout", "gpu_ids")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    CONTAINER_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    GPU_IDS_FIELD_NUMBER: _ClassVar[int]
    token: _types_pb2.AttemptToken
    container: _types_pb2.ContainerProperties
    timeout: _types_pb2.JobTimeout
    gpu_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, token: _Optional[_Union[_types_pb2.AttemptToken, _Mapping]] = ..., container: _Optional[_Union[_types_pb2.ContainerProperties, _Mapping]] = ..., timeout: _Optional[_Union[_types_pb2.JobTimeout, _Mapping]] = ..., gpu_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class KillAttempt(_message.Message):
    __slots__ = ("token", "reason", "grace_period_ms")
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    GRACE_PERIOD_MS_FIELD_NUMBER: _ClassVar[int]
    token: _types_pb2.AttemptToken
    reason: str
    grace_period_ms: int
    def __init__(self, token: _Optional[_Union[_types_pb2.AttemptToken, _Mapping]] = ..., reason: _Optional[str] = ..., grace_period_ms: _Optional[int] = ...) -> None: ...

class ReadLogs(_message.Message):
    __slots__ = ("request_id", "job_id", "attempt", "offset", "follow")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    FOLLOW_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    job_id: str
    attempt: int
    offset: int
    follow: bool
    def __init__(self, request_id: _Optional[int] = ..., job_id: _Optional[str] = ..., attempt: _Optional[int] = ..., offset: _Optional[int] = ..., follow: _Optional[bool] = ...) -> None: ...

class CancelLogs(_message.Message):
    __slots__ = ("request_id",)
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    def __init__(self, request_id: _Optional[int] = ...) -> None: ...
