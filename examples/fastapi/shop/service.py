"""The service layer: every read of cached data and every write that
changes it go through here, so each write invalidates what it changed.

TTLs are the tutorial's: user profile 5 min, product catalog 1 h, pricing
30 s, sessions sliding (each read keeps a session for another 30 min).
"""

from __future__ import annotations

import asyncio
import os
import secrets

from pydantic import BaseModel
from sqlalchemy.orm import Session

import nearcache

from .db import PriceRow, ProductRow, SessionLocal, SessionRow, UserRow

#: Database loads by this process, by kind (the tests read them at /debug/loads).
loads = {"user": 0, "product": 0, "price": 0, "session": 0}
#: Seconds each load sleeps, to show stampedes in a demo (default 0).
LOAD_DELAY = float(os.environ.get("SHOP_LOAD_DELAY", "0"))


class User(BaseModel):
    id: int
    name: str
    email: str


class Product(BaseModel):
    id: int
    name: str
    description: str


class Price(BaseModel):
    product_id: int
    cents: int


class LoginSession(BaseModel):
    id: str
    user_id: int


async def _load(kind: str, fn, *args):  # type: ignore[no-untyped-def]
    loads[kind] += 1
    if LOAD_DELAY:
        await asyncio.sleep(LOAD_DELAY)
    return await asyncio.to_thread(fn, *args)


def _read(model, row_type, key):  # type: ignore[no-untyped-def]
    with SessionLocal() as db:
        row = db.get(row_type, key)
        return None if row is None else model.model_validate(row, from_attributes=True)


@nearcache.cached(ttl=300, ns="user", key="{user_id}")
async def get_user(user_id: int) -> User | None:
    return await _load("user", _read, User, UserRow, user_id)


@nearcache.cached(ttl=3600, ns="product", key="{product_id}")
async def get_product(product_id: int) -> Product | None:
    return await _load("product", _read, Product, ProductRow, product_id)


@nearcache.cached(ttl=30, ns="price", key="{product_id}")
async def get_price(product_id: int) -> Price | None:
    return await _load("price", _read, Price, PriceRow, product_id)


@nearcache.cached(ttl=1800, ns="session", key="{session_id}", slide=True)
async def get_session(session_id: str) -> LoginSession | None:
    return await _load("session", _read, LoginSession, SessionRow, session_id)


def _write(row: object) -> None:
    with SessionLocal() as db, db.begin():
        db.merge(row)


async def put_product(product: Product) -> Product:
    await asyncio.to_thread(_write, ProductRow(**product.model_dump()))
    await get_product.invalidate(product.id)
    return product


async def put_price(price: Price) -> Price:
    await asyncio.to_thread(_write, PriceRow(**price.model_dump()))
    await get_price.invalidate(price.product_id)
    return price


async def put_user(user: User) -> User:
    await asyncio.to_thread(_write, UserRow(**user.model_dump()))
    await get_user.invalidate(user.id)
    return user


async def login(user_id: int) -> LoginSession:
    s = LoginSession(id=secrets.token_urlsafe(16), user_id=user_id)
    await asyncio.to_thread(_write, SessionRow(**s.model_dump()))
    # A read of this id before it existed may have cached "absent".
    await get_session.invalidate(s.id)
    return s


async def reprice_all(percent: int, db: Session) -> int:
    """A bulk update: one namespace bump drops every cached price."""

    def run() -> int:
        with db.begin():
            rows = db.query(PriceRow).all()
            for r in rows:
                r.cents = r.cents * (100 + percent) // 100
            return len(rows)

    n = await asyncio.to_thread(run)
    await get_price.bump()
    return n
