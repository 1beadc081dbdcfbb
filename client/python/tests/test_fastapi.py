"""nearcache.fastapi: the lifespan, the dependency and whole-response
caching, in a FastAPI app against a real daemon."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.testclient import TestClient
from procs import Daemon

import nearcache
import nearcache.fastapi


@pytest.fixture
def app(daemon: Daemon, ns: str) -> Iterator[tuple[TestClient, list[str]]]:
    calls: list[str] = []
    app = FastAPI(lifespan=nearcache.fastapi.lifespan(daemon.url, timeout=3))

    @app.get("/items/{item_id}")
    @nearcache.fastapi.cache_response(ttl=60, ns=ns)
    async def item(item_id: int, q: str = "") -> dict[str, Any]:
        calls.append(f"item {item_id} {q}")
        if item_id == 404:
            raise HTTPException(404, "no such item")
        return {"id": item_id, "q": q}

    @app.get("/raw")
    @nearcache.fastapi.cache_response(ttl=60, ns=ns, max_age=5)
    def raw(request: Request) -> Response:
        calls.append("raw " + request.url.path)
        return Response(b"hello", 203, headers={"x-kind": "raw"})

    @app.get("/me")
    @nearcache.fastapi.cache_response(ttl=60, ns=ns)
    async def me() -> Response:
        calls.append("me")
        return Response(b"you", headers={"set-cookie": "session=1"})

    @app.get("/node")
    async def node(
        cache: Annotated[nearcache.AsyncClient, Depends(nearcache.fastapi.client)],
    ) -> dict[str, str]:
        return {"node": (await cache.ping()).node_id}

    with TestClient(app) as http:
        yield http, calls


def test_the_lifespan_gives_routes_the_client(app: tuple[TestClient, list[str]]) -> None:
    http, _ = app
    assert len(http.get("/node").json()["node"]) == 16


def test_a_get_is_cached_with_an_etag_and_max_age(app: tuple[TestClient, list[str]]) -> None:
    http, calls = app
    first = http.get("/items/1", params={"q": "x"})
    second = http.get("/items/1", params={"q": "x"})
    assert first.json() == second.json() == {"id": 1, "q": "x"}
    assert calls == ["item 1 x"]
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["cache-control"] == "max-age=60"
    http.get("/items/1", params={"q": "y"})
    assert calls == ["item 1 x", "item 1 y"]


def test_a_matching_if_none_match_is_304(app: tuple[TestClient, list[str]]) -> None:
    http, _ = app
    etag = http.get("/items/2").headers["etag"]
    again = http.get("/items/2", headers={"if-none-match": f'W/"x", {etag}'})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert http.get("/items/2", headers={"if-none-match": '"other"'}).status_code == 200


def test_no_cache_runs_the_route_and_no_store_stores_nothing(
    app: tuple[TestClient, list[str]],
) -> None:
    http, calls = app
    http.get("/items/3")
    http.get("/items/3", headers={"cache-control": "no-cache"})
    assert calls == ["item 3 ", "item 3 "]
    http.get("/items/3")
    assert len(calls) == 2
    http.get("/items/4", headers={"cache-control": "no-store"})
    http.get("/items/4")
    assert calls[2:] == ["item 4 ", "item 4 "]


def test_a_cached_response_keeps_its_status_and_headers(
    app: tuple[TestClient, list[str]],
) -> None:
    http, calls = app
    http.get("/raw")
    second = http.get("/raw")
    assert calls == ["raw /raw"]
    assert (second.status_code, second.content, second.headers["x-kind"]) == (203, b"hello", "raw")
    assert second.headers["cache-control"] == "max-age=5"


def test_a_response_that_sets_a_cookie_is_not_stored(app: tuple[TestClient, list[str]]) -> None:
    http, calls = app
    assert http.get("/me").headers["set-cookie"] == "session=1"
    assert http.get("/me").headers["set-cookie"] == "session=1"
    assert calls == ["me", "me"]


def test_errors_are_not_cached(app: tuple[TestClient, list[str]]) -> None:
    http, calls = app
    assert http.get("/items/404").status_code == 404
    assert http.get("/items/404").status_code == 404
    assert calls == ["item 404 ", "item 404 "]
