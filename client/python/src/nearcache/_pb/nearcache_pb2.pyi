from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

ABORTED: Code
ALREADY_EXISTS: Code
CANCELLED: Code
DATA_LOSS: Code
DEADLINE_EXCEEDED: Code
DESCRIPTOR: _descriptor.FileDescriptor
FAILED_PRECONDITION: Code
INTERNAL: Code
INVALID_ARGUMENT: Code
LEASE_BUSY: LeaseState
LEASE_GRANTED: LeaseState
LEASE_NONE: LeaseState
LEASE_WAITED: LeaseState
NOT_FOUND: Code
OK: Code
OUT_OF_RANGE: Code
PERMISSION_DENIED: Code
RESOURCE_EXHAUSTED: Code
SOURCE_L1: Source
SOURCE_L2: Source
SOURCE_UNSPECIFIED: Source
UNAUTHENTICATED: Code
UNAVAILABLE: Code
UNIMPLEMENTED: Code
UNKNOWN: Code

class BumpNamespaceReply(_message.Message):
    __slots__ = ["version"]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class BumpNamespaceRequest(_message.Message):
    __slots__ = ["ns"]
    NS_FIELD_NUMBER: _ClassVar[int]
    ns: bytes
    def __init__(self, ns: _Optional[bytes] = ...) -> None: ...

class DeleteReply(_message.Message):
    __slots__ = ["existed"]
    EXISTED_FIELD_NUMBER: _ClassVar[int]
    existed: bool
    def __init__(self, existed: bool = ...) -> None: ...

class DeleteRequest(_message.Message):
    __slots__ = ["key", "lease_token", "ns"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    lease_token: bytes
    ns: bytes
    def __init__(self, ns: _Optional[bytes] = ..., key: _Optional[bytes] = ..., lease_token: _Optional[bytes] = ...) -> None: ...

class GetReply(_message.Message):
    __slots__ = ["lease", "lease_token", "negative", "source", "stale", "stale_ms", "ttl_ms", "value"]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    STALE_FIELD_NUMBER: _ClassVar[int]
    STALE_MS_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    lease: LeaseState
    lease_token: bytes
    negative: bool
    source: Source
    stale: bool
    stale_ms: int
    ttl_ms: int
    value: bytes
    def __init__(self, value: _Optional[bytes] = ..., source: _Optional[_Union[Source, str]] = ..., ttl_ms: _Optional[int] = ..., lease_token: _Optional[bytes] = ..., lease: _Optional[_Union[LeaseState, str]] = ..., stale: bool = ..., negative: bool = ..., stale_ms: _Optional[int] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ["key", "lease", "lease_ttl_ms", "ns", "slide_ttl_ms"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    LEASE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    SLIDE_TTL_MS_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    lease: bool
    lease_ttl_ms: int
    ns: bytes
    slide_ttl_ms: int
    def __init__(self, ns: _Optional[bytes] = ..., key: _Optional[bytes] = ..., lease: bool = ..., lease_ttl_ms: _Optional[int] = ..., slide_ttl_ms: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ["sent_ms", "stream_seqs"]
    SENT_MS_FIELD_NUMBER: _ClassVar[int]
    STREAM_SEQS_FIELD_NUMBER: _ClassVar[int]
    sent_ms: int
    stream_seqs: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, sent_ms: _Optional[int] = ..., stream_seqs: _Optional[_Iterable[int]] = ...) -> None: ...

class Invalidation(_message.Message):
    __slots__ = ["bump_ns", "bump_version", "bye", "flush_all", "heartbeat", "keys", "origin", "seq", "stream"]
    BUMP_NS_FIELD_NUMBER: _ClassVar[int]
    BUMP_VERSION_FIELD_NUMBER: _ClassVar[int]
    BYE_FIELD_NUMBER: _ClassVar[int]
    FLUSH_ALL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    bump_ns: bytes
    bump_version: int
    bye: bool
    flush_all: bool
    heartbeat: Heartbeat
    keys: _containers.RepeatedCompositeFieldContainer[KeyRef]
    origin: str
    seq: int
    stream: int
    def __init__(self, origin: _Optional[str] = ..., stream: _Optional[int] = ..., seq: _Optional[int] = ..., keys: _Optional[_Iterable[_Union[KeyRef, _Mapping]]] = ..., bump_ns: _Optional[bytes] = ..., bump_version: _Optional[int] = ..., flush_all: bool = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., bye: bool = ...) -> None: ...

class KeyRef(_message.Message):
    __slots__ = ["key", "ns"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    ns: bytes
    def __init__(self, ns: _Optional[bytes] = ..., key: _Optional[bytes] = ...) -> None: ...

class MGetItem(_message.Message):
    __slots__ = ["found", "get"]
    FOUND_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    found: bool
    get: GetReply
    def __init__(self, found: bool = ..., get: _Optional[_Union[GetReply, _Mapping]] = ...) -> None: ...

class MGetReply(_message.Message):
    __slots__ = ["items"]
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[MGetItem]
    def __init__(self, items: _Optional[_Iterable[_Union[MGetItem, _Mapping]]] = ...) -> None: ...

class MGetRequest(_message.Message):
    __slots__ = ["keys", "ns"]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    keys: _containers.RepeatedScalarFieldContainer[bytes]
    ns: bytes
    def __init__(self, ns: _Optional[bytes] = ..., keys: _Optional[_Iterable[bytes]] = ...) -> None: ...

class MSetEntry(_message.Message):
    __slots__ = ["key", "ttl_ms", "value"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    ttl_ms: int
    value: bytes
    def __init__(self, key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., ttl_ms: _Optional[int] = ...) -> None: ...

class MSetFailure(_message.Message):
    __slots__ = ["code", "index", "maybe_stored", "message"]
    CODE_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    MAYBE_STORED_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: Code
    index: _containers.RepeatedScalarFieldContainer[int]
    maybe_stored: bool
    message: str
    def __init__(self, index: _Optional[_Iterable[int]] = ..., code: _Optional[_Union[Code, str]] = ..., message: _Optional[str] = ..., maybe_stored: bool = ...) -> None: ...

class MSetReply(_message.Message):
    __slots__ = ["failed", "stored"]
    FAILED_FIELD_NUMBER: _ClassVar[int]
    STORED_FIELD_NUMBER: _ClassVar[int]
    failed: _containers.RepeatedCompositeFieldContainer[MSetFailure]
    stored: int
    def __init__(self, stored: _Optional[int] = ..., failed: _Optional[_Iterable[_Union[MSetFailure, _Mapping]]] = ...) -> None: ...

class MSetRequest(_message.Message):
    __slots__ = ["entries", "ns"]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[MSetEntry]
    ns: bytes
    def __init__(self, ns: _Optional[bytes] = ..., entries: _Optional[_Iterable[_Union[MSetEntry, _Mapping]]] = ...) -> None: ...

class NamespaceStat(_message.Message):
    __slots__ = ["acl_denied", "hits", "misses", "near_hits", "near_misses", "ns", "other", "truncated"]
    ACL_DENIED_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    NEAR_HITS_FIELD_NUMBER: _ClassVar[int]
    NEAR_MISSES_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    OTHER_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    acl_denied: int
    hits: int
    misses: int
    near_hits: int
    near_misses: int
    ns: bytes
    other: bool
    truncated: bool
    def __init__(self, ns: _Optional[bytes] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., other: bool = ..., truncated: bool = ..., near_hits: _Optional[int] = ..., near_misses: _Optional[int] = ..., acl_denied: _Optional[int] = ...) -> None: ...

class NearNamespaceReport(_message.Message):
    __slots__ = ["hits", "misses", "ns"]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    hits: int
    misses: int
    ns: bytes
    def __init__(self, ns: _Optional[bytes] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ...) -> None: ...

class NearReportReply(_message.Message):
    __slots__ = ["interval_ms"]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    interval_ms: int
    def __init__(self, interval_ms: _Optional[int] = ...) -> None: ...

class NearReportRequest(_message.Message):
    __slots__ = ["fills_refused", "hits", "misses", "namespaces", "pid", "reported_before", "reporter"]
    FILLS_REFUSED_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    MISSES_FIELD_NUMBER: _ClassVar[int]
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    REPORTED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    REPORTER_FIELD_NUMBER: _ClassVar[int]
    fills_refused: int
    hits: int
    misses: int
    namespaces: _containers.RepeatedCompositeFieldContainer[NearNamespaceReport]
    pid: int
    reported_before: bool
    reporter: int
    def __init__(self, reporter: _Optional[int] = ..., pid: _Optional[int] = ..., hits: _Optional[int] = ..., misses: _Optional[int] = ..., fills_refused: _Optional[int] = ..., namespaces: _Optional[_Iterable[_Union[NearNamespaceReport, _Mapping]]] = ..., reported_before: bool = ...) -> None: ...

class PingReply(_message.Message):
    __slots__ = ["l1_serving", "max_request_size", "node_id", "protocol_version", "redis_error", "redis_up", "subscribed", "uptime_ms", "version"]
    L1_SERVING_FIELD_NUMBER: _ClassVar[int]
    MAX_REQUEST_SIZE_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    REDIS_ERROR_FIELD_NUMBER: _ClassVar[int]
    REDIS_UP_FIELD_NUMBER: _ClassVar[int]
    SUBSCRIBED_FIELD_NUMBER: _ClassVar[int]
    UPTIME_MS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    l1_serving: bool
    max_request_size: int
    node_id: str
    protocol_version: int
    redis_error: str
    redis_up: bool
    subscribed: bool
    uptime_ms: int
    version: str
    def __init__(self, version: _Optional[str] = ..., node_id: _Optional[str] = ..., uptime_ms: _Optional[int] = ..., redis_up: bool = ..., subscribed: bool = ..., l1_serving: bool = ..., max_request_size: _Optional[int] = ..., protocol_version: _Optional[int] = ..., redis_error: _Optional[str] = ...) -> None: ...

class PingRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Reply(_message.Message):
    __slots__ = ["bump_namespace", "code", "delete", "get", "id", "message", "mget", "mset", "near_report", "ping", "set", "stats"]
    BUMP_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MGET_FIELD_NUMBER: _ClassVar[int]
    MSET_FIELD_NUMBER: _ClassVar[int]
    NEAR_REPORT_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    bump_namespace: BumpNamespaceReply
    code: Code
    delete: DeleteReply
    get: GetReply
    id: int
    message: str
    mget: MGetReply
    mset: MSetReply
    near_report: NearReportReply
    ping: PingReply
    set: SetReply
    stats: StatsReply
    def __init__(self, id: _Optional[int] = ..., code: _Optional[_Union[Code, str]] = ..., message: _Optional[str] = ..., get: _Optional[_Union[GetReply, _Mapping]] = ..., set: _Optional[_Union[SetReply, _Mapping]] = ..., delete: _Optional[_Union[DeleteReply, _Mapping]] = ..., stats: _Optional[_Union[StatsReply, _Mapping]] = ..., ping: _Optional[_Union[PingReply, _Mapping]] = ..., mget: _Optional[_Union[MGetReply, _Mapping]] = ..., mset: _Optional[_Union[MSetReply, _Mapping]] = ..., bump_namespace: _Optional[_Union[BumpNamespaceReply, _Mapping]] = ..., near_report: _Optional[_Union[NearReportReply, _Mapping]] = ...) -> None: ...

class Request(_message.Message):
    __slots__ = ["bump_namespace", "delete", "get", "id", "mget", "mset", "near_report", "ping", "set", "stats", "timeout_ms"]
    BUMP_NAMESPACE_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    GET_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    MGET_FIELD_NUMBER: _ClassVar[int]
    MSET_FIELD_NUMBER: _ClassVar[int]
    NEAR_REPORT_FIELD_NUMBER: _ClassVar[int]
    PING_FIELD_NUMBER: _ClassVar[int]
    SET_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    bump_namespace: BumpNamespaceRequest
    delete: DeleteRequest
    get: GetRequest
    id: int
    mget: MGetRequest
    mset: MSetRequest
    near_report: NearReportRequest
    ping: PingRequest
    set: SetRequest
    stats: StatsRequest
    timeout_ms: int
    def __init__(self, id: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., get: _Optional[_Union[GetRequest, _Mapping]] = ..., set: _Optional[_Union[SetRequest, _Mapping]] = ..., delete: _Optional[_Union[DeleteRequest, _Mapping]] = ..., stats: _Optional[_Union[StatsRequest, _Mapping]] = ..., ping: _Optional[_Union[PingRequest, _Mapping]] = ..., mget: _Optional[_Union[MGetRequest, _Mapping]] = ..., mset: _Optional[_Union[MSetRequest, _Mapping]] = ..., bump_namespace: _Optional[_Union[BumpNamespaceRequest, _Mapping]] = ..., near_report: _Optional[_Union[NearReportRequest, _Mapping]] = ...) -> None: ...

class SetReply(_message.Message):
    __slots__ = ["ttl_ms"]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    ttl_ms: int
    def __init__(self, ttl_ms: _Optional[int] = ...) -> None: ...

class SetRequest(_message.Message):
    __slots__ = ["key", "lease_token", "negative", "ns", "stale_while_revalidate_ms", "ttl_ms", "value"]
    KEY_FIELD_NUMBER: _ClassVar[int]
    LEASE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_FIELD_NUMBER: _ClassVar[int]
    NS_FIELD_NUMBER: _ClassVar[int]
    STALE_WHILE_REVALIDATE_MS_FIELD_NUMBER: _ClassVar[int]
    TTL_MS_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    key: bytes
    lease_token: bytes
    negative: bool
    ns: bytes
    stale_while_revalidate_ms: int
    ttl_ms: int
    value: bytes
    def __init__(self, ns: _Optional[bytes] = ..., key: _Optional[bytes] = ..., value: _Optional[bytes] = ..., ttl_ms: _Optional[int] = ..., lease_token: _Optional[bytes] = ..., negative: bool = ..., stale_while_revalidate_ms: _Optional[int] = ...) -> None: ...

class Stat(_message.Message):
    __slots__ = ["name", "value"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    value: int
    def __init__(self, name: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...

class StatsReply(_message.Message):
    __slots__ = ["namespaces", "stats"]
    NAMESPACES_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    namespaces: _containers.RepeatedCompositeFieldContainer[NamespaceStat]
    stats: _containers.RepeatedCompositeFieldContainer[Stat]
    def __init__(self, stats: _Optional[_Iterable[_Union[Stat, _Mapping]]] = ..., namespaces: _Optional[_Iterable[_Union[NamespaceStat, _Mapping]]] = ...) -> None: ...

class StatsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class Source(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []

class LeaseState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
