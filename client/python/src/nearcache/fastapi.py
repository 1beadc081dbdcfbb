"""FastAPI glue: a lifespan that opens one AsyncClient per worker process
(and makes it the one ``@cached`` async functions use), and a dependency
that hands it to a route.

    app = FastAPI(lifespan=nearcache.fastapi.lifespan())

    @app.get("/stats")
    async def stats(cache: AsyncClient = Depends(nearcache.fastapi.client)):
        return await cache.stats()

Each Uvicorn/Gunicorn worker runs the lifespan after it was forked, so each
has its own connection.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

from starlette.requests import Request

from ._async import AsyncClient
from ._cached import set_default_clients

__all__ = ["client", "lifespan"]


def lifespan(
    url: str | None = None,
    *,
    timeout: float | timedelta = 1.0,
    then: Callable[[Any], AbstractAsyncContextManager[Any]] | None = None,
) -> Callable[[Any], AbstractAsyncContextManager[None]]:
    """Returns a FastAPI lifespan that opens an AsyncClient on ``url``
    (None: ``$NEARCACHE_URL``, else the default socket) as
    ``app.state.nearcache`` and the default for ``@cached``, runs the
    app's own lifespan ``then`` inside it, and closes the client at
    shutdown."""

    @asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        c = AsyncClient(url, timeout=timeout)
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
