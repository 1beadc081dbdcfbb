from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OK: _ClassVar[Code]
    CANCELLED: _ClassVar[Code]
    UNKNOWN: _ClassVar[Code]
    INVALID_ARGUMENT: _ClassVar[Code]
    DEADLINE_EXCEEDED: _ClassVar[Code]
    NOT_FOUND: _ClassVar[Code]
    ALREADY_EXISTS: _ClassVar[Code]
    PERMISSION_DENIED: _ClassVar[Code]
    RESOURCE_EXHAUSTED: _ClassVar[Code]
    FAILED_PRECONDITION: _ClassVar[Code]
    ABORTED: _ClassVar[Code]
    OUT_OF_RANGE: _ClassVar[Code]
    UNIMPLEMENTED: _ClassVar[Code]
    INTERNAL: _ClassVar[Code]
    UNAVAILABLE: _ClassVar[Code]
    DATA_LOSS: _ClassVar[Code]
    UNAUTHENTICATED: _ClassVar[Code]

class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SOURCE_UNSPECIFIED: _ClassVar[Source]
    SOURCE_L1: _ClassVar[Source]
    SOURCE_L2: _ClassVar[Source]

class LeaseState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEASE_NONE: _ClassVar[LeaseState]
    LEASE_GRANTED: _ClassVar[LeaseState]
    LEASE_WAITED: _ClassVar[LeaseState]
    LEASE_BUSY: _ClassVar[LeaseState]
OK: Code
CANCELLED: Code
UNKNOWN: Code
INVALID_ARGUMENT: Code
DEADLINE_EXCEEDED: Code
NOT_FOUND: Code
ALREADY_EXISTS: Code
PERMISSION_DENIED: Code
RESOURCE_EXHAUSTED: Code
FAILED_PRECONDITION: Code
ABORTED: Code
OUT_OF_RANGE: Code
UNIMPLEMENTED: Code
INTERNAL: Code
UNAVAILABLE: Code
DATA_LOSS: Code
UNAUTHENTICATED: Code
SOURCE_UNSPECIFIED: Source
SOURCE_L1: Source
SOURCE_L2: Source
LEASE_NONE: LeaseState
LEASE_GRANTED: LeaseState
LEASE_WAITED: LeaseState
LEASE_BUSY: LeaseState

class Request(_message.Message):
    __slots__ = ("id", "timeout_ms", "get", "set", "delete", "stats", "ping", "mget", "mset", "bump_namespace", "near_report")
    ID_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    MGET_FIELD_NUMBER: _ClassVar[int]
    MSET_FIELD_NUMBER: _ClassVar[int]
    BUMP_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NEAR_REPORT_FIELD_NUMBER: _ClassVar[int]
    id: int
    timeout_ms: int
    get: GetRequest
    set: SetRequest
    delete: DeleteRequest
    stats: StatsRequest
    ping: PingRequest
    mget: MGetRequest
    mset: MSetRequest
    bump_namespace: BumpNamespaceRequest
    near_report: NearReportRequest
    def __init__(self, id: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., get: _Optional[_Union[GetRequest, _Mapping]] = ..., set: _Optional[_Union[SetRequest, _Mapping]] = ..., delete: _Optional[_Union[DeleteRequest, _Mapping]] = ..., stats: _Optional[_Union[StatsRequest, _Mapping]] = ..., ping: _Optional[_Union[PingRequest, _Mapping]] = ..., mget: _Optional[_Union[MGetRequest, _Mapping]] = ..., mset: _Optional[_Union[MSetRequest, _Mapping]] = ..., bump_namespace: _Optional[_Union[BumpNamespaceRequest, _Mapping]] = ..., near_report: _Optional[_Union[NearReportRequest, _Mapping]] = ...) -> None: ...

class Reply(_message.Message):
    __slots__ = ("id", "code", "message", "get", "set", "delete", "stats", "ping", "mget", "mset", "bump_namespace", "near_report")
    ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    MGET_FIELD_NUMBER: _ClassVar[int]
    MSET_FIELD_NUMBER: _ClassVar[int]
    BUMP_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    NEAR_REPORT_FIELD_NUMBER: _ClassVar[int]
    id: int
    code: Code
    message: str
    get: GetReply
    set: SetReply
    delete: DeleteReply
    stats: StatsReply
    ping: PingReply
    mget: MGetReply
    mset: MSetReply
    bump_namespace: BumpNamespaceReply
    near_report: NearReportReply
    def __init__(self, id: _Optional[int] = ..., code: _Optional[_Union[Code, str]] = ..., message: _Optional[str] = ..., get: _Optional[_Union[GetReply, _Mapping]] = ..., set: _Optional[_Union[SetReply, _Mapping]] = ..., delete: _Optional[_Union[DeleteReply, _Mapping]] = ..., stats: _Optional[_Union[StatsReply, _Mapping]] = ..., ping: _Optional[_Union[PingReply, _Mapping]] = ..., mget: _Optional[_Union[MGetReply, _Mapping]] = ..., mset: _Optional[_Union[MSetReply, _Mapping]] = ..., bump_namespace: _Optional[_Union[BumpNamespaceReply, _Mapping]] = ..., near_report: _Optional[_Union[NearReportReply, _Mapping]] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("ns", "key", "lease", "lease_ttl_ms", "slide_ttl_ms")
    NS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    SLIDE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    key: bytes
    lease: bool
    lease_ttl_ms: int
    slide_ttl_ms: int
    def __init__(self, ns: _Optional[bytes] = ..., key: _Optional[bytes] = ..., lease: _Optional[bool] = ..., lease_ttl_ms: _Optional[int] = ..., slide_ttl_ms: _Optional[int] = ...) -> None: ...

class GetReply(_message.Message):
    __slots__ = ("value", "source", "ttl_ms", "lease_token", "lease", "stale", "negative", "stale_ms")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    STALE_MS_FIELD_NUMBER: _ClassVar[int]
    value: bytes
    source: Source
    ttl_ms: int
    lease_token: bytes
    lease: LeaseState
    stale: bool
    negative: bool
    stale_ms: int
    def __init__(self, value: _Optional[bytes] = ..., source: _Optional[_Union[Source, str]] = ..., ttl_ms: _Optional[int] = ..., lease_token: _Optional[bytes] = ..., lease: _Optional[_Union[LeaseState, str]] = ..., stale: _Optional[bool] = ..., negative: _Optional[bool] = ..., stale_ms: _Optional[int] = ...) -> None: ...

class SetRequest(_message.Message):
    __slots__ = ("ns", "key", "value", "ttl_ms", "lease_token", "negative", "stale_while_revalidate_ms")
    NS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    STALE_WHILE_REVALIDATE_MS_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    key: bytes
    value: bytes
    ttl_ms: int
    lease_token: bytes
    negative: bool
    stale_while_revalidate_ms: int
    def __init__(self, ns: _Optional[bytes] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., ttl_ms: _Optional[int] = ..., lease_token: _Optional[bytes] = ..., negative: _Optional[bool] = ..., stale_while_revalidate_ms: _Optional[int] = ...) -> None: ...

class SetReply(_message.Message):
    __slots__ = ("ttl_ms",)
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    ttl_ms: int
    def __init__(self, ttl_ms: _Optional[int] = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ("ns", "key", "lease_token")
    NS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    key: bytes
    lease_token: bytes
    def __init__(self, ns: _Optional[bytes] = ..., key: _Optional[bytes] = ..., lease_token: _Optional[bytes] = ...) -> None: ...

class DeleteReply(_message.Message):
    __slots__ = ("existed",)
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: _Optional[bool] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Stat(_message.Message):
    __slots__ = ("name", "value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: int
    def __init__(self, name: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...

class NamespaceStat(_message.Message):
    __slots__ = ("ns", "hits", "misses", "other", "truncated", "near_hits", "near_misses")
    NS_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    NEAR_HITS_FIELD_NUMBER: _ClassVar[int]
    NEAR_MISSES_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    hits: int
    misses: int
    other: bool
    truncated: bool
    near_hits: int
    near_misses: int
    def __init__(self, ns: _Optional[bytes] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., other: _Optional[bool] = ..., truncated: _Optional[bool] = ..., near_hits: _Optional[int] = ..., near_misses: _Optional[int] = ...) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ("stats", "namespaces")
    STATS_FIELD_NUMBER: _ClassVar[int]
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    stats: _containers.RepeatedCompositeFieldContainer[Stat]
    namespaces: _containers.RepeatedCompositeFieldContainer[NamespaceStat]
    def __init__(self, stats: _Optional[_Iterable[_Union[Stat, _Mapping]]] = ..., namespaces: _Optional[_Iterable[_Union[NamespaceStat, _Mapping]]] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PingReply(_message.Message):
    __slots__ = ("version", "node_id", "uptime_ms", "redis_up", "subscribed", "l1_serving", "max_request_size", "protocol_version")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    REDIS_UP_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    L1_SERVING_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_SIZE_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    version: str
    node_id: str
    uptime_ms: int
    redis_up: bool
    subscribed: bool
    l1_serving: bool
    max_request_size: int
    protocol_version: int
    def __init__(self, version: _Optional[str] = ..., node_id: _Optional[str] = ..., uptime_ms: _Optional[int] = ..., redis_up: _Optional[bool] = ..., subscribed: _Optional[bool] = ..., l1_serving: _Optional[bool] = ..., max_request_size: _Optional[int] = ..., protocol_version: _Optional[int] = ...) -> None: ...

class MGetRequest(_message.Message):
    __slots__ = ("ns", "keys")
    NS_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    def __init__(self, ns: _Optional[bytes] = ..., keys: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MGetItem(_message.Message):
    __slots__ = ("found", "get")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    found: bool
    get: GetReply
    def __init__(self, found: _Optional[bool] = ..., get: _Optional[_Union[GetReply, _Mapping]] = ...) -> None: ...

class MGetReply(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[MGetItem]
    def __init__(self, items: _Optional[_Iterable[_Union[MGetItem, _Mapping]]] = ...) -> None: ...

class MSetRequest(_message.Message):
    __slots__ = ("ns", "entries")
    NS_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    entries: _containers.RepeatedCompositeFieldContainer[MSetEntry]
    def __init__(self, ns: _Optional[bytes] = ..., entries: _Optional[_Iterable[_Union[MSetEntry, _Mapping]]] = ...) -> None: ...

class MSetEntry(_message.Message):
    __slots__ = ("key", "value", "ttl_ms")
    KEY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    value: bytes
    ttl_ms: int
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class MSetReply(_message.Message):
    __slots__ = ("stored",)
    STORED_FIELD_NUMBER: _ClassVar[int]
    stored: int
    def __init__(self, stored: _Optional[int] = ...) -> None: ...

class BumpNamespaceRequest(_message.Message):
    __slots__ = ("ns",)
    NS_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    def __init__(self, ns: _Optional[bytes] = ...) -> None: ...

class BumpNamespaceReply(_message.Message):
    __slots__ = ("version",)
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class NearReportRequest(_message.Message):
    __slots__ = ("reporter", "pid", "hits", "misses", "fills_refused", "namespaces")
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    FILLS_REFUSED_FIELD_NUMBER: _ClassVar[int]
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    reporter: int
    pid: int
    hits: int
    misses: int
    fills_refused: int
    namespaces: _containers.RepeatedCompositeFieldContainer[NearNamespaceReport]
    def __init__(self, reporter: _Optional[int] = ..., pid: _Optional[int] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., fills_refused: _Optional[int] = ..., namespaces: _Optional[_Iterable[_Union[NearNamespaceReport, _Mapping]]] = ...) -> None: ...

class NearNamespaceReport(_message.Message):
    __slots__ = ("ns", "hits", "misses")
    NS_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    hits: int
    misses: int
    def __init__(self, ns: _Optional[bytes] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ...) -> None: ...

class NearReportReply(_message.Message):
    __slots__ = ("interval_ms",)
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    interval_ms: int
    def __init__(self, interval_ms: _Optional[int] = ...) -> None: ...

class Invalidation(_message.Message):
    __slots__ = ("origin", "stream", "seq", "keys", "bump_ns", "bump_version", "flush_all", "heartbeat")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    BUMP_NS_FIELD_NUMBER: _ClassVar[int]
    BUMP_VERSION_FIELD_NUMBER: _ClassVar[int]
    FLUSH_ALL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    origin: str
    stream: int
    seq: int
    keys: _containers.RepeatedCompositeFieldContainer[KeyRef]
    bump_ns: bytes
    bump_version: int
    flush_all: bool
    heartbeat: Heartbeat
    def __init__(self, origin: _Optional[str] = ..., stream: _Optional[int] = ..., seq: _Optional[int] = ..., keys: _Optional[_Iterable[_Union[KeyRef, _Mapping]]] = ..., bump_ns: _Optional[bytes] = ..., bump_version: _Optional[int] = ..., flush_all: _Optional[bool] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class KeyRef(_message.Message):
    __slots__ = ("ns", "key")
    NS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    key: bytes
    def __init__(self, ns: _Optional[bytes] = ..., key: _Optional[bytes] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("sent_ms", "stream_seqs")
    SENT_MS_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQS_FIELD_NUMBER: _ClassVar[int]
    sent_ms: int
    stream_seqs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, sent_ms: _Optional[int] = ..., stream_seqs: _Optional[_Iterable[int]] = ...) -> None: ...
