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
from collections.abc import Callable, Iterable
from datetime import timedelta
from types import EllipsisType
from typing import Any, TypeVar

from . import _flow
from ._async import AsyncClient
from ._codec import Serializer, make_codec, return_annotation
from ._core import TTL, BytesLike, as_bytes, to_ms
from ._flow import MISSING, Flow, Get, Load, Policy, Refresh, Release, Store
from ._keys import KeyBuilder, default_namespace
from ._sync import Client

__all__ = [
    "abump",
    "ainvalidate",
    "bump",
    "cached",
    "default_async_client",
    "default_client",
    "invalidate",
    "set_default_clients",
]

F = TypeVar("F", bound=Callable[..., Any])
ClientArg = Client | AsyncClient | Callable[[], Client | AsyncClient] | None

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
    out (``...``) stays as it is."""
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
) -> Callable[[F], F]:
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

    The wrapper has ``invalidate(*args, **kwargs)`` (deletes the key those
    arguments name; a coroutine for async functions), ``bump()`` (drops the
    whole namespace), ``key(*args, **kwargs)``, ``ns``, ``cache_info()``,
    ``uncached`` and ``options(cache_read=, cache_write=)``, the function
    with other settings for some calls (``f.options(cache_read=False)(1)``).
    """

    def decorate(fn: F) -> F:
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
            name=f"{fn.__module__}.{fn.__qualname__}",
        )
        keys = KeyBuilder(fn, key, exclude)
        make = _async_wrapper if inspect.iscoroutinefunction(fn) else _sync_wrapper
        wrapped: F = make(fn, policy, keys, client)
        variants: dict[tuple[bool, bool], Any] = {}

        def options(*, cache_read: bool = cache_read, cache_write: bool = cache_write) -> F:
            """Returns the function with other cache_read/cache_write
            settings, for a call or a few (same keys, same counters)."""
            k = (cache_read, cache_write)
            if k not in variants:
                p = dataclasses.replace(policy, cache_read=cache_read, cache_write=cache_write)
                variants[k] = make(fn, p, keys, client)
            v: F = variants[k]
            return v

        wrapped.options = options  # type: ignore[attr-defined]
        return wrapped

    return decorate


def _lease_ttl(p: Policy) -> float | None:
    return None if p.lease_ttl_ms is None else p.lease_ttl_ms / 1000


def _get_kwargs(p: Policy) -> dict[str, Any]:
    return {
        "lease": p.lease,
        "lease_ttl": _lease_ttl(p),
        "slide": p.ttl_ms / 1000 if p.slide else None,
        "timeout": p.timeout,
    }


def _set_kwargs(p: Policy, op: Store) -> dict[str, Any]:
    return {
        "lease_token": op.token,
        "negative": op.payload is None,
        "stale_while_revalidate": None if p.swr_ms is None else p.swr_ms / 1000,
        "timeout": p.timeout,
    }


def _near_hit(p: Policy, c: Client | AsyncClient, key: bytes) -> Any:
    """The hot path: the value of a near-tier hit, or MISSING when the
    near tier missed (or is off, or may not be read for this function)."""
    near = c._near
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
                    if p.near_reads and c._near is not None:  # _near_hit() just missed
                        send = c._fetch(p.ns, op.key, p.lease, _lease_ttl(p), p.timeout)
                    else:
                        send = c.get_ex(p.ns, op.key, **_get_kwargs(p))
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
        return bool(_resolve(client, Client).delete(p.ns, keys.build(args, kwargs)))

    def bump_ns() -> int:
        return int(_resolve(client, Client).bump(p.ns))

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
                    if p.near_reads and c._near is not None:  # _near_hit() just missed
                        send = await c._fetch(p.ns, op.key, p.lease, _lease_ttl(p), p.timeout)
                    else:
                        send = await c.get_ex(p.ns, op.key, **_get_kwargs(p))
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
        return bool(await _resolve(client, AsyncClient).delete(p.ns, keys.build(args, kwargs)))

    async def bump_ns() -> int:
        return int(await _resolve(client, AsyncClient).bump(p.ns))

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


def invalidate(ns: BytesLike, key: BytesLike, *, client: Client | None = None) -> bool:
    """Deletes ``ns``/``key`` on every host; returns whether it existed."""
    return (client or default_client()).delete(ns, key)


async def ainvalidate(ns: BytesLike, key: BytesLike, *, client: AsyncClient | None = None) -> bool:
    """Deletes ``ns``/``key`` on every host; returns whether it existed."""
    return await (client or default_async_client()).delete(ns, key)


def bump(ns: BytesLike, *, client: Client | None = None) -> int:
    """Drops every key of ``ns`` on every host; returns its new version."""
    return (client or default_client()).bump(ns)


async def abump(ns: BytesLike, *, client: AsyncClient | None = None) -> int:
    """Drops every key of ``ns`` on every host; returns its new version."""
    return await (client or default_async_client()).bump(ns)
