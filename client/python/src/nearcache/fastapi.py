"""FastAPI glue: a lifespan that opens one AsyncClient per worker process
(and makes it the one ``@cached`` async functions use), a dependency that
hands it to a route, and whole-response caching for GET routes.

    app = FastAPI(lifespan=nearcache.fastapi.lifespan())

    @app.get("/stats")
    async def stats(cache: Annotated[AsyncClient, Depends(nearcache.fastapi.client)]):
        return await cache.stats()

Each Uvicorn/Gunicorn worker runs the lifespan after it was forked, so each
has its own connection.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from fastapi.encoders import jsonable_encoder
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._async import AsyncClient
from ._cached import cached, set_default_clients
from ._core import TTL, BytesLike, to_ms
from ._flow import NotCacheable

__all__ = ["cache_response", "client", "lifespan"]


def lifespan(
    url: str | None = None,
    *,
    timeout: float | timedelta = 1.0,
    then: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None,
    **client_options: Any,
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """Returns a FastAPI lifespan that opens an AsyncClient on ``url``
    (None: ``$NEARCACHE_URL``, else the default socket) as
    ``app.state.nearcache`` and the default for ``@cached``, runs the
    app's own lifespan ``then`` inside it, and closes the client at
    shutdown. ``client_options`` go to the AsyncClient (``near_bytes=0``:
    no near tier); a wrong one raises TypeError at startup."""

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        c = AsyncClient(url, timeout=timeout, **client_options)
        app.state.nearcache = c
        set_default_clients(aclient=c)
        try:
            if then is None:
                yield
            else:
                async with then(app):
                    yield
        finally:
            set_default_clients(aclient=None)
            await c.close()

    return run


def client(request: Request) -> AsyncClient:
    """A dependency: the AsyncClient the lifespan opened. Raises
    RuntimeError when the app was started without ``lifespan()``."""
    c = getattr(request.app.state, "nearcache", None)
    if not isinstance(c, AsyncClient):
        raise RuntimeError("nearcache.fastapi.lifespan() is not the app's lifespan")
    return c


# --- whole responses ---------------------------------------------------------

#: Response headers not kept with a stored response (they are made anew).
_DROP = {"content-length", "etag", "date"}


def _etag_of(body: bytes) -> str:
    """A strong validator: the hash of the body, the same in every worker."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@dataclass
class _Stored:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    etag: str  # _etag_of(body), computed once when the response is made


class _ResponseCodec:
    def dumps(self, value: _Stored) -> bytes:
        if not 200 <= value.status < 300 or value.status in (204, 206):
            raise NotCacheable
        for k, v in value.headers:
            k = k.lower()
            if k == "set-cookie" or (k == "cache-control" and ("private" in v or "no-store" in v)):
                raise NotCacheable  # meant for one client only
        b64 = base64.b64encode(value.body).decode()
        return json.dumps(
            {"s": value.status, "h": value.headers, "b": b64, "e": value.etag}
        ).encode()

    def loads(self, data: bytes) -> _Stored:
        try:
            d = json.loads(data)
            body = base64.b64decode(d["b"])
            etag = d.get("e") or _etag_of(body)  # stored before the ETag was kept
            return _Stored(int(d["s"]), [(k, v) for k, v in d["h"]], body, etag)
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a cached response: {e}") from e


def _stored(result: Any) -> _Stored:
    response = result if isinstance(result, Response) else JSONResponse(jsonable_encoder(result))
    headers = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in response.raw_headers
        if k.decode("latin-1").lower() not in _DROP
    ]
    body = bytes(response.body)
    return _Stored(response.status_code, headers, body, _etag_of(body))


def _request_key(request: Request) -> str:
    # request.url.path without building the whole URL (~6 % of a cached request)
    path: str = request.scope["path"].replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    if not request.scope.get("query_string"):
        return path
    query = "&".join(f"{k}={v}" for k, v in sorted(request.query_params.multi_items()))
    return path + "?" + query


def cache_response(
    ttl: TTL = 60,
    *,
    ns: BytesLike = "http",
    key: Callable[[Request], str] | None = None,
    max_age: TTL | None = None,
    client: AsyncClient | Callable[[], AsyncClient] | None = None,
    **options: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Caches a GET route's whole response for ``ttl``, keyed by the path
    and the sorted query (or ``key(request)``), in namespace ``ns``.

    Put it below ``@app.get(...)``. Replies carry ``ETag`` (a hash of the
    body, the same in every worker) and ``Cache-Control: max-age``
    (``max_age``, default ``ttl``) unless the route set its own; a request
    whose ``If-None-Match`` matches gets 304. A request with
    ``Cache-Control: no-cache`` runs the route and stores its response;
    ``no-store`` runs it and stores nothing. Only 2xx responses (not 204
    or 206) are stored, with their status and headers; not those that set
    a cookie or say ``Cache-Control: private`` or ``no-store``.
    Leases, fail-open and the other ``@cached`` options (``options``) apply.
    """
    age = to_ms(max_age if max_age is not None else ttl) // 1000

    def decorate(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(endpoint)
        req_name = next(
            (n for n, p in sig.parameters.items() if p.annotation in (Request, "Request")), None
        )
        added = req_name is None
        name = req_name or "_nearcache_request"

        async def produce(k: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Stored:
            if inspect.iscoroutinefunction(endpoint):
                result = await endpoint(*args, **kwargs)
            else:  # a plain def route runs in the thread pool, as FastAPI runs it
                result = await run_in_threadpool(endpoint, *args, **kwargs)
            return _stored(result)

        def by_key(k: str, *_: Any) -> str:
            return k

        common = {
            "ns": ns,
            "key": by_key,
            "serializer": _ResponseCodec(),
            "client": client,
            **options,
        }
        read = cached(ttl, **common)(produce)
        refresh = cached(ttl, cache_read=False, **common)(produce)

        @functools.wraps(endpoint)
        async def wrapper(*args: Any, **kwargs: Any) -> Response:
            request: Request = kwargs.pop(name) if added else kwargs[name]
            directives = request.headers.get("cache-control", "").lower()
            k = key(request) if key is not None else _request_key(request)
            if "no-store" in directives:
                stored = await produce(k, args, kwargs)
            elif "no-cache" in directives:
                stored = await refresh(k, args, kwargs)
            else:
                stored = await read(k, args, kwargs)
            headers = dict(stored.headers)
            headers.setdefault("cache-control", f"max-age={age}")
            if 200 <= stored.status < 300:
                headers["etag"] = stored.etag
                if stored.etag in _etags(request.headers.get("if-none-match", "")):
                    return Response(status_code=304, headers=_validators(headers))
            return Response(stored.body, stored.status, headers=headers)

        if added:
            extra = inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Request)
            params = list(sig.parameters.values())
            tail = [p for p in params if p.kind is inspect.Parameter.VAR_KEYWORD]
            head = [p for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD]
            wrapper.__signature__ = sig.replace(parameters=[*head, extra, *tail])  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _etags(header: str) -> set[str]:
    return {t.strip().removeprefix("W/") for t in header.split(",") if t.strip()}


def _validators(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() in ("etag", "cache-control", "vary")}
