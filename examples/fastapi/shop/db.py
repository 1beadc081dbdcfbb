"""The database: SQLAlchemy 2, SQLite by default, PostgreSQL (or anything
SQLAlchemy speaks) through ``$DATABASE_URL``."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from sqlalchemy import ForeignKey, String, create_engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

DATABASE_URL = os.environ.get("DATABASE_URL", "sqlite:///./shop.db")
engine = create_engine(
    DATABASE_URL,
    connect_args={"check_same_thread": False} if DATABASE_URL.startswith("sqlite") else {},
)
SessionLocal = sessionmaker(engine, expire_on_commit=False)


class Base(DeclarativeBase):
    pass


class UserRow(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(200))


class ProductRow(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(String(2000), default="")


class PriceRow(Base):
    __tablename__ = "prices"
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    cents: Mapped[int]


class SessionRow(Base):
    __tablename__ = "sessions"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))


def create_all() -> None:
    """Creates the tables that are missing. Workers starting together may
    race to create one: the loser looks again."""
    for attempt in range(5):
        try:
            Base.metadata.create_all(engine)
            return
        except OperationalError:
            if attempt == 4:
                raise
            time.sleep(0.05 * (attempt + 1))


def get_db() -> Iterator[Session]:
    """A FastAPI dependency: one session per request."""
    with SessionLocal() as db:
        yield db
