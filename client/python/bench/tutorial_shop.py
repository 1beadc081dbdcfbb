"""The example's ``GET /products/{id}`` (examples/fastapi/shop) cached the
tutorial's way: its ``app/core/cache.py`` as it gives it (the Redis URL from
``$REDIS_URL``), over the example's own database, loader and response
model, so that only the caching differs. bench/http_load.py serves it."""

# ruff: noqa: E401, I001  (the tutorial's code, kept as written)
from typing import Any

from fastapi import FastAPI, HTTPException
from shop.db import ProductRow
from shop.service import Product, _load, _read, loads

# --- app/core/cache.py, as the tutorial writes it ----------------------------
import os
import orjson, redis.asyncio as redis
from functools import wraps

PREFIX = "v1"
r = redis.from_url(os.environ["REDIS_URL"], decode_responses=False)


def cached(ttl: int = 60, key: str | None = None):
    def deco(fn):
        @wraps(fn)
        async def wrapper(*args, **kwargs):
            k = f"{PREFIX}:{key or fn.__name__}:{orjson.dumps([args, kwargs]).decode()}"
            hit = await r.get(k)
            if hit is not None:
                return orjson.loads(hit)
            value = await fn(*args, **kwargs)
            await r.set(k, orjson.dumps(value), ex=ttl)
            return value

        return wrapper

    return deco


# --- its service, on the example's database ----------------------------------
@cached(ttl=300, key="product")
async def get_product(product_id: int) -> dict:
    row = await _load("product", _read, Product, ProductRow, product_id)
    return None if row is None else row.model_dump()


app = FastAPI(title="shop, the tutorial's cache")


@app.get("/products/{product_id}")
async def product(product_id: int) -> Product:
    value = await get_product(product_id)
    if value is None:
        raise HTTPException(404, "not found")
    return value


@app.get("/debug/loads")
async def debug_loads() -> dict[str, Any]:
    return {"loads": loads}
