"""The example's ``GET /products/{id}`` (examples/fastapi/shop) cached with
fastapi-cache2 as its README shows: ``FastAPICache.init`` with a
``RedisBackend`` (redis.asyncio, ``$REDIS_URL``) in the lifespan and
``@cache(expire=...)`` below the route, over the example's own database,
loader and response model. bench/http_load.py serves it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as redis
from fastapi import FastAPI, HTTPException
from fastapi_cache import FastAPICache
from fastapi_cache.backends.redis import RedisBackend
from fastapi_cache.decorator import cache
from shop.db import ProductRow
from shop.service import Product, _load, _read, loads


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    r = redis.from_url(os.environ["REDIS_URL"], decode_responses=False)
    FastAPICache.init(RedisBackend(r), prefix="fastapi-cache")
    yield
    await r.aclose()


app = FastAPI(title="shop, fastapi-cache2", lifespan=lifespan)


@app.get("/products/{product_id}")
@cache(expire=300)
async def product(product_id: int) -> Product:
    row = await _load("product", _read, Product, ProductRow, product_id)
    if row is None:
        raise HTTPException(404, "not found")
    return row


@app.get("/debug/loads")
async def debug_loads() -> dict[str, Any]:
    return {"loads": loads}
