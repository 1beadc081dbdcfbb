"""``@cached``: read-through caching of a sync or async function through the
daemon, with leases against stampedes. The logic is in ``_flow``; this
module builds the policy and carries the flow's steps out with a Client or
an AsyncClient."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import threading
from collections.abc import Callable, Coroutine, Iterable
from datetime import timedelta
from types import EllipsisType
from typing import Any, ParamSpec, Protocol, TypeVar, overload

from . import _flow
from ._async import AsyncClient
from ._codec import Serializer, make_codec, return_annotation
from ._core import TTL, BytesLike, GetResult, as_bytes, to_ms
from ._flow import MISSING, Flow, Get, Load, Policy, Refresh, Release, Store
from ._keys import KeyBuilder, default_namespace
from ._near import NearTier
from ._sync import Client

__all__ = [
    "AsyncCached",
    "Cached",
    "abump",
    "ainvalidate",
    "bump",
    "cached",
    "default_async_client",
    "default_client",
    "invalidate",
    "set_default_clients",
]

P = ParamSpec("P")
R = TypeVar("R")
ClientArg = Client | AsyncClient | Callable[[], Client | AsyncClient] | None


class Cached(Protocol[P, R]):
    """A sync function under ``@cached``: called as the function is, with
    the cache's handles beside it."""

    #: The namespace its keys live in.
    ns: bytes
    #: The function itself, without the cache.
    uncached: Callable[P, R]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R: ...

    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Deletes the key these arguments name, on every host (see
        :meth:`Client.delete` for a daemon that cannot be reached)."""
        ...

    def bump(self) -> int:
        """Drops every key of the namespace on every host."""
        ...

    def key(self, *args: P.args, **kwargs: P.kwargs) -> bytes:
        """The key these arguments name."""
        ...

    def cache_info(self) -> dict[str, int]:
        """Its counters (see docs/python.md, "What cache_info() counts")."""
        ...

    def options(self, *, cache_read: bool = ..., cache_write: bool = ...) -> Cached[P, R]:
        """The function with other cache_read/cache_write settings."""
        ...


class AsyncCached(Protocol[P, R]):
    """An async function under ``@cached``; ``invalidate`` and ``bump``
    are coroutines."""

    ns: bytes
    uncached: Callable[P, Coroutine[Any, Any, R]]

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]: ...

    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Deletes the key these arguments name, on every host."""
        ...

    async def bump(self) -> int:
        """Drops every key of the namespace on every host."""
        ...

    def key(self, *args: P.args, **kwargs: P.kwargs) -> bytes:
        """The key these arguments name."""
        ...

    def cache_info(self) -> dict[str, int]:
        """Its counters (see docs/python.md, "What cache_info() counts")."""
        ...

    def options(self, *, cache_read: bool = ..., cache_write: bool = ...) -> AsyncCached[P, R]:
        """The function with other cache_read/cache_write settings."""
        ...


class Decorator(Protocol):
    """What ``cached(...)`` returns: it takes a sync or an async function."""

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, fn: Callable[P, Coroutine[Any, Any, R]]
    ) -> AsyncCached[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R]) -> Cached[P, R]: ...


class Backend(Protocol):
    """What the decorator uses of a Client beyond its public methods: its
    near tier, looked up on the hot path, and the Get that follows a miss
    there (with a ticket, so that its reply may fill the tier)."""

    _nc_near: NearTier | None

    def _nc_get(self, ns: bytes, key: bytes, p: Policy) -> GetResult: ...


class AsyncBackend(Protocol):
    """:class:`Backend` of an AsyncClient: ``_nc_get`` is a coroutine."""

    _nc_near: NearTier | None

    async def _nc_get(self, ns: bytes, key: bytes, p: Policy) -> GetResult: ...


_defaults: dict[str, Any] = {}
_defaults_lock = threading.Lock()


def default_client() -> Client:
    """Returns the process's shared Client (``$NEARCACHE_URL`` or the
    default socket), made on first use."""
    with _defaults_lock:
        if "sync" not in _defaults:
            _defaults["sync"] = Client()
        c: Client = _defaults["sync"]
        return c


def default_async_client() -> AsyncClient:
    """Returns the process's shared AsyncClient, made on first use."""
    with _defaults_lock:
        if "async" not in _defaults:
            _defaults["async"] = AsyncClient()
        c: AsyncClient = _defaults["async"]
        return c


def set_default_clients(
    client: Client | EllipsisType | None = ..., aclient: AsyncClient | EllipsisType | None = ...
) -> None:
    """Makes ``client`` and ``aclient`` the ones ``@cached`` functions (and
    ``invalidate``, ``bump``...) use when they were given none. None forgets
    the default (the next one is made from the environment); a client left
    out (``...``) stays as it is. Raises TypeError when ``client`` is not a
    Client or ``aclient`` not an AsyncClient."""
    for c, want in ((client, Client), (aclient, AsyncClient)):
        if c is not ... and c is not None and not isinstance(c, want):
            raise TypeError(
                f"set_default_clients: expected a nearcache.{want.__name__} or None, "
                f"got {type(c).__name__}"
            )
    with _defaults_lock:
        for name, c in (("sync", client), ("async", aclient)):
            if c is ...:
                continue
            if c is None:
                _defaults.pop(name, None)
            else:
                _defaults[name] = c


def _resolve(client: ClientArg, want: type) -> Any:
    if isinstance(client, want):
        return client
    c = client() if callable(client) and not isinstance(client, (Client, AsyncClient)) else client
    if c is None:
        c = default_async_client() if want is AsyncClient else default_client()
    if not isinstance(c, want):
        raise TypeError(f"this function needs a nearcache.{want.__name__}, got {type(c).__name__}")
    return c


def _ms(v: TTL | None) -> int | None:
    return None if v is None else to_ms(v)


def cached(
    ttl: TTL = 300,
    *,
    ns: BytesLike | None = None,
    key: str | Callable[..., str | bytes] | None = None,
    exclude: Iterable[str] = (),
    client: ClientArg = None,
    serializer: str | Serializer = "json",
    negative_ttl: TTL | None = None,
    cache_none: bool = True,
    stale_while_revalidate: TTL | None = None,
    jitter: float = 0.1,
    slide: bool = False,
    lease: bool = True,
    lease_ttl: TTL | None = None,
    timeout: float | timedelta | None = None,
    cache_read: bool = True,
    cache_write: bool = True,
    fail_open: bool = True,
    max_value_size: int = 1 << 20,
    strict: bool = False,
) -> Decorator:
    """Caches what a sync or async function returns, in namespace ``ns``
    (default: ``module.qualname``) under a key built from its arguments
    (see docs/python.md for the rules), for ``ttl`` seconds (or a
    timedelta), moved by up to ±``jitter`` of itself.

    - ``key``: a template (``"{product_id}"``, formatted with the bound
      arguments) or a callable taking the function's arguments.
    - ``exclude``: parameters left out of the default key (injected
      framework objects and DB sessions are left out already).
    - ``serializer``: ``"json"`` (orjson if installed; read back into the
      return annotation, Pydantic models and dataclasses included),
      ``"pickle"``, ``"raw"`` or an object with ``dumps``/``loads``.
    - None is cached as a known-absent entry for ``negative_ttl`` (default
      ``ttl``) unless ``cache_none=False``.
    - Misses take the key's lease: one call of the function per key across
      every process and host, the others wait for its value up to
      ``timeout`` (default: the client's) and then call it themselves.
    - ``stale_while_revalidate``: serve the old value this long past its TTL
      while one caller refreshes it in the background.
    - ``slide``: each read keeps the key alive for ``ttl`` again.
    - ``cache_read=False`` always calls the function (and stores);
      ``cache_write=False`` reads but never stores.
    - When the daemon fails, the function is called directly, the failure
      logged and counted (``fn.cache_info()["errors"]``), unless
      ``fail_open=False``: then the nearcache.Error is raised.
    - A value over ``max_value_size`` bytes is not cached (CacheWarning).
    - ``invalidate()`` and ``bump()`` keep an invalidation the daemon
      cannot be given for later and return normally (False, 0), unless
      ``strict``: then they raise Unavailable.

    The wrapper has ``invalidate(*args, **kwargs)`` (deletes the key those
    arguments name; a coroutine for async functions), ``bump()`` (drops the
    whole namespace), ``key(*args, **kwargs)``, ``ns``, ``cache_info()``,
    ``uncached`` and ``options(cache_read=, cache_write=)``, the function
    with other settings for some calls (``f.options(cache_read=False)(1)``).
    It is typed :class:`Cached` (sync) or :class:`AsyncCached` (async).
    """

    def decorate(fn: Callable[..., Any]) -> Any:
        space = as_bytes(ns, "ns") if ns is not None else default_namespace(fn).encode()
        ttl_ms = to_ms(ttl)
        policy = Policy(
            ns=space,
            ttl_ms=ttl_ms,
            negative_ttl_ms=to_ms(negative_ttl) if negative_ttl is not None else ttl_ms,
            codec=make_codec(serializer, return_annotation(fn)),
            jitter=jitter,
            slide=slide,
            swr_ms=_ms(stale_while_revalidate),
            lease=lease,
            lease_ttl_ms=_ms(lease_ttl),
            timeout=timeout.total_seconds() if isinstance(timeout, timedelta) else timeout,
            cache_read=cache_read,
            cache_write=cache_write,
            cache_none=cache_none,
            fail_open=fail_open,
            max_value_size=max_value_size,
            strict=strict,
            name=f"{fn.__module__}.{fn.__qualname__}",
        )
        keys = KeyBuilder(fn, key, exclude)
        make = _async_wrapper if inspect.iscoroutinefunction(fn) else _sync_wrapper
        variants: dict[tuple[bool, bool], Any] = {}

        def options(*, cache_read: bool = cache_read, cache_write: bool = cache_write) -> Any:
            """Returns the function with other cache_read/cache_write
            settings, for a call or a few (same keys, same counters)."""
            k = (cache_read, cache_write)
            if k not in variants:
                p = dataclasses.replace(policy, cache_read=cache_read, cache_write=cache_write)
                variants[k] = make(fn, p, keys, client)
                variants[k].options = options
            return variants[k]

        wrapped = options()
        return wrapped

    return decorate


def _set_kwargs(p: Policy, op: Store) -> dict[str, Any]:
    return {
        "lease_token": op.token,
        "negative": op.payload is None,
        "stale_while_revalidate": None if p.swr_ms is None else p.swr_ms / 1000,
        "timeout": p.timeout,
    }


def _near_hit(p: Policy, c: Backend | AsyncBackend, key: bytes) -> Any:
    """The hot path: the value of a near-tier hit, or MISSING when the
    near tier missed (or is off, or may not be read for this function)."""
    near = c._nc_near
    if near is None or not p.near_reads:
        return MISSING
    e = near.entry(p.ns, key)
    if e is None:
        return MISSING
    if e.value is None:  # a None the function returned, kept as known absent
        p.stats["hits"] += 1
        return None
    try:
        value = p.loads(e.value)
    except ValueError:
        return MISSING  # the flow reads it from the daemon, counts and logs it
    p.stats["hits"] += 1
    return value


def _sync_wrapper(fn: Callable[..., Any], p: Policy, keys: KeyBuilder, client: ClientArg) -> Any:
    def run(flow: Flow, args: tuple[Any, ...], kwargs: dict[str, Any], c: Client) -> Any:
        send: Any = None
        throw: BaseException | None = None
        while True:
            try:
                op = flow.throw(throw) if throw is not None else flow.send(send)
            except StopIteration as stop:
                return stop.value
            send, throw = None, None
            try:
                if isinstance(op, Load):
                    send = fn(*args, **kwargs)
                elif isinstance(op, Get):
                    send = c._nc_get(p.ns, op.key, p)
                elif isinstance(op, Store):
                    send = c.set(
                        p.ns, op.key, op.payload or b"", op.ttl_ms / 1000, **_set_kwargs(p, op)
                    )
                elif isinstance(op, Release):
                    send = c.release(p.ns, op.key, op.token, timeout=p.timeout)
                elif isinstance(op, Refresh):
                    refresh = _flow.load_and_store(p, op.key, op.token)
                    threading.Thread(
                        target=run, args=(refresh, args, kwargs, c), daemon=True
                    ).start()
            except BaseException as e:
                throw = e

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c = _resolve(client, Client)
        k = keys.build(args, kwargs)
        value = _near_hit(p, c, k)
        if value is not MISSING:
            return value
        return run(_flow.read_through(p, k), args, kwargs, c)

    def invalidate(*args: Any, **kwargs: Any) -> bool:
        c = _resolve(client, Client)
        return bool(c.delete(p.ns, keys.build(args, kwargs), strict=p.strict))

    def bump_ns() -> int:
        return int(_resolve(client, Client).bump(p.ns, strict=p.strict))

    return _attach(wrapper, fn, p, keys, invalidate, bump_ns)


def _async_wrapper(fn: Callable[..., Any], p: Policy, keys: KeyBuilder, client: ClientArg) -> Any:
    background: set[asyncio.Task[Any]] = set()

    async def run(flow: Flow, args: tuple[Any, ...], kwargs: dict[str, Any], c: AsyncClient) -> Any:
        send: Any = None
        throw: BaseException | None = None
        while True:
            try:
                op = flow.throw(throw) if throw is not None else flow.send(send)
            except StopIteration as stop:
                return stop.value
            send, throw = None, None
            try:
                if isinstance(op, Load):
                    send = await fn(*args, **kwargs)
                elif isinstance(op, Get):
                    send = await c._nc_get(p.ns, op.key, p)
                elif isinstance(op, Store):
                    send = await c.set(
                        p.ns, op.key, op.payload or b"", op.ttl_ms / 1000, **_set_kwargs(p, op)
                    )
                elif isinstance(op, Release):
                    send = await c.release(p.ns, op.key, op.token, timeout=p.timeout)
                elif isinstance(op, Refresh):
                    refresh = _flow.load_and_store(p, op.key, op.token)
                    task = asyncio.get_running_loop().create_task(run(refresh, args, kwargs, c))
                    background.add(task)
                    task.add_done_callback(background.discard)
            except BaseException as e:
                throw = e

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        c = _resolve(client, AsyncClient)
        k = keys.build(args, kwargs)
        value = _near_hit(p, c, k)
        if value is not MISSING:
            return value
        return await run(_flow.read_through(p, k), args, kwargs, c)

    async def invalidate(*args: Any, **kwargs: Any) -> bool:
        c = _resolve(client, AsyncClient)
        return bool(await c.delete(p.ns, keys.build(args, kwargs), strict=p.strict))

    async def bump_ns() -> int:
        return int(await _resolve(client, AsyncClient).bump(p.ns, strict=p.strict))

    return _attach(wrapper, fn, p, keys, invalidate, bump_ns)


def _attach(
    wrapper: Any,
    fn: Callable[..., Any],
    p: Policy,
    keys: KeyBuilder,
    invalidate: Callable[..., Any],
    bump_ns: Callable[[], Any],
) -> Any:
    wrapper.invalidate = invalidate
    wrapper.bump = bump_ns
    wrapper.key = lambda *a, **kw: keys.build(a, kw)
    wrapper.ns = p.ns
    wrapper.cache_info = lambda: dict(p.stats)
    wrapper.uncached = fn
    wrapper.policy = p
    return wrapper


def invalidate(
    ns: BytesLike, key: BytesLike, *, client: Client | None = None, strict: bool = False
) -> bool:
    """Deletes ``ns``/``key`` on every host; returns whether it existed
    (see :meth:`Client.delete` for a daemon that cannot be reached)."""
    return (client or default_client()).delete(ns, key, strict=strict)


async def ainvalidate(
    ns: BytesLike, key: BytesLike, *, client: AsyncClient | None = None, strict: bool = False
) -> bool:
    """Deletes ``ns``/``key`` on every host; returns whether it existed."""
    return await (client or default_async_client()).delete(ns, key, strict=strict)


def bump(ns: BytesLike, *, client: Client | None = None, strict: bool = False) -> int:
    """Drops every key of ``ns`` on every host; returns its new version."""
    return (client or default_client()).bump(ns, strict=strict)


async def abump(ns: BytesLike, *, client: AsyncClient | None = None, strict: bool = False) -> int:
    """Drops every key of ``ns`` on every host; returns its new version."""
    return await (client or default_async_client()).bump(ns, strict=strict)
