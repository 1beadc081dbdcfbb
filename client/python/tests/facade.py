"""The AsyncClient behind the blocking API, so that one behaviour test runs
against both clients: its coroutines run on an event loop in a thread of
their own."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine
from typing import Any

import nearcache


class AsyncAsSync:
    """Calls an AsyncClient's methods from blocking code."""

    def __init__(self, url: str, **kw: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.inner = self.run(self._make(url, kw))

    async def _make(self, url: str, kw: dict[str, Any]) -> nearcache.AsyncClient:
        return nearcache.AsyncClient(url, **kw)

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(60)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.inner, name)

        def call(*args: Any, **kw: Any) -> Any:
            result = method(*args, **kw)
            return self.run(result) if asyncio.iscoroutine(result) else result  # near_stats()

        return call

    def close(self) -> None:
        self.run(self.inner.close())

    def shutdown(self) -> None:
        """Closes the client and stops its event loop."""
        if self.loop.is_closed():
            return
        self.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def __enter__(self) -> AsyncAsSync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
