from shoal.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobControlAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_CONTROL_ACTION_UNSPECIFIED: _ClassVar[JobControlAction]
    JOB_CONTROL_ACTION_CANCEL: _ClassVar[JobControlAction]
    JOB_CONTROL_ACTION_TERMINATE: _ClassVar[JobControlAction]
JOB_CONTROL_ACTION_UNSPECIFIED: JobControlAction
JOB_CONTROL_ACTION_CANCEL: JobControlAction
JOB_CONTROL_ACTION_TERMINATE: JobControlAction

class LeaderRecord(_message.Message):
    __slots__ = ("replica_id", "address", "elected_at")
    REPLICA_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    ELECTED_AT_FIELD_NUMBER: _ClassVar[int]
    replica_id: str
    address: str
    elected_at: int
    def __init__(self, replica_id: _Optional[str] = ..., address: _Optional[str] = ..., elected_at: _Optional[int] = ...) -> None: ...

class JobControl(_message.Message):
    __slots__ = ("job_id", "action", "reason", "requested_at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    action: JobControlAction
    reason: str
    requested_at: int
    def __init__(self, job_id: _Optional[str] = ..., action: _Optional[_Union[JobControlAction, str]] = ..., reason: _Optional[str] = ..., requested_at: _Optional[int] = ...) -> None: ...

class SubmissionBatch(_message.Message):
    __slots__ = ("batch_id", "jobs")
    BATCH_ID_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    batch_id: str
    jobs: _containers.RepeatedCompositeFieldContainer[_types_pb2.Job]
    def __init__(self, batch_id: _Optional[str] = ..., jobs: _Optional[_Iterable[_Union[_types_pb2.Job, _Mapping]]] = ...) -> None: ...

class HistoryBucket(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_types_pb2.Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_types_pb2.Job, _Mapping]]] = ...) -> None: ...

class ShareUsage(_message.Message):
    __slots__ = ("vcpu_seconds", "as_of")
    VCPU_SECONDS_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    vcpu_seconds: float
    as_of: int
    def __init__(self, vcpu_seconds: _Optional[float] = ..., as_of: _Optional[int] = ...) -> None: ...

class FairshareUsage(_message.Message):
    __slots__ = ("shares",)
    class SharesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: ShareUsage
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[ShareUsage, _Mapping]] = ...) -> None: ...
    SHARES_FIELD_NUMBER: _ClassVar[int]
    shares: _containers.MessageMap[str, ShareUsage]
    def __init__(self, shares: _Optional[_Mapping[str, ShareUsage]] = ...) -> None: ...
