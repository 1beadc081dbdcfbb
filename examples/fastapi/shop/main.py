"""The HTTP API. Run it with ``examples/fastapi/run.sh`` (see README.md)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy.orm import Session

import nearcache
import nearcache.fastapi

from . import service
from .db import create_all, get_db
from .service import LoginSession, Price, Product, User


@asynccontextmanager
async def setup(app: FastAPI) -> AsyncIterator[None]:
    create_all()
    yield


#: Each cache call's budget; a miss waiting for another worker's load waits this long.
TIMEOUT = float(os.environ.get("NEARCACHE_TIMEOUT", "2"))
#: The near tier's size in bytes (0: none); unset, the client's default.
NEAR = (
    {"near_bytes": int(os.environ["NEARCACHE_NEAR_BYTES"])}
    if "NEARCACHE_NEAR_BYTES" in os.environ
    else {}
)
app = FastAPI(
    title="shop", lifespan=nearcache.fastapi.lifespan(timeout=TIMEOUT, then=setup, **NEAR)
)


def found(value: Any) -> Any:
    if value is None:
        raise HTTPException(404, "not found")
    return value


@app.get("/products/{product_id}")
async def product(product_id: int) -> Product:
    return found(await service.get_product(product_id))


@app.put("/products/{product_id}")
async def put_product(product_id: int, body: Product) -> Product:
    return await service.put_product(body.model_copy(update={"id": product_id}))


@app.get("/products/{product_id}/price")
async def price(product_id: int) -> Price:
    return found(await service.get_price(product_id))


@app.put("/products/{product_id}/price")
async def put_price(product_id: int, body: Price) -> Price:
    return await service.put_price(body.model_copy(update={"product_id": product_id}))


@app.post("/prices/reprice")
async def reprice(percent: int, db: Annotated[Session, Depends(get_db)]) -> dict[str, int]:
    return {"updated": await service.reprice_all(percent, db)}


@app.get("/users/{user_id}")
async def user(user_id: int) -> User:
    return found(await service.get_user(user_id))


@app.put("/users/{user_id}")
async def put_user(user_id: int, body: User) -> User:
    return await service.put_user(body.model_copy(update={"id": user_id}))


@app.post("/users/{user_id}/sessions")
async def login(user_id: int) -> LoginSession:
    return await service.login(user_id)


@app.get("/sessions/{session_id}")
async def session(session_id: str) -> LoginSession:
    return found(await service.get_session(session_id))


@app.get("/debug/loads")
async def loads(
    cache: Annotated[nearcache.AsyncClient, Depends(nearcache.fastapi.client)],
) -> dict[str, Any]:
    """Database loads by this worker, its pid, and its daemon's node id."""
    return {"loads": service.loads, "pid": os.getpid(), "node": (await cache.ping()).node_id}
