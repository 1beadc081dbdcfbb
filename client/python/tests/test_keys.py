"""Key building without sockets: the documented encoding, and what is left
out of it by default."""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import enum
import uuid
from typing import Annotated, Any

import pydantic
import pytest
from fastapi import BackgroundTasks, Depends, Request, Response
from sqlalchemy.orm import Session

from nearcache._keys import KeyBuilder, default_namespace, encode_value


def key(fn: Any, *args: Any, **kwargs: Any) -> bytes:
    return KeyBuilder(fn).build(args, kwargs)


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Filter(pydantic.BaseModel):
    q: str
    tags: list[str]


def test_values_encode_as_compact_sorted_json() -> None:
    assert encode_value({"b": 1, "a": [1, 2.5, None, True]}) == '{"a":[1,2.5,null,true],"b":1}'
    assert encode_value(b"\x00\xff") == '"b64:AP8="'
    assert encode_value(uuid.UUID(int=1)) == '"00000000-0000-0000-0000-000000000001"'
    assert encode_value(decimal.Decimal("1.10")) == '"1.10"'
    assert encode_value(datetime.date(2026, 12, 3)) == '"2026-12-03"'
    assert encode_value(Color.RED) == '"red"'
    assert encode_value({3, 1, 2}) == "[1,2,3]"
    assert encode_value(Point(1, 2)) == '{"x":1,"y":2}'
    assert encode_value(Filter(q="lamp", tags=["a"])) == '{"q":"lamp","tags":["a"]}'
    assert encode_value("ключ") == '"ключ"'


def test_the_key_is_the_bound_arguments_in_signature_order() -> None:
    def f(product_id: int, lang: str = "en", *, page: int = 1) -> None: ...

    assert key(f, 42) == b'product_id=42&lang="en"&page=1'
    assert key(f, page=1, product_id=42) == key(f, 42)


def test_var_keyword_arguments_are_sorted_by_name() -> None:
    def f(a: int, **kw: Any) -> None: ...

    assert key(f, 1, z=1, b=2) == b"a=1&b=2&z=1"


def test_a_function_without_arguments_has_the_key_dash() -> None:
    def f() -> None: ...

    assert key(f) == b"-"


def test_a_key_over_1024_bytes_becomes_its_hash() -> None:
    def f(s: str) -> None: ...

    k = key(f, "x" * 2000)
    assert k.startswith(b"#sha256:") and len(k) == 72
    assert k == key(f, "x" * 2000) != key(f, "x" * 2001)


def current_user() -> str:
    return "u"


def test_fastapi_and_sqlalchemy_injected_arguments_are_left_out() -> None:
    def f(
        product_id: int,
        request: Request,
        response: Response,
        tasks: BackgroundTasks,
        db: Session,
        user: str = Depends(current_user),
        other: Annotated[str, Depends(current_user)] = "",
    ) -> None: ...

    scope = {"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""}
    k = key(f, 7, Request(scope), Response(), BackgroundTasks(), Session(), "alice", "bob")
    assert k == b"product_id=7"


def test_injected_values_are_left_out_even_without_annotations() -> None:
    def f(product_id, db):  # type: ignore[no-untyped-def]
        ...

    assert key(f, 7, Session()) == b"product_id=7"


def test_self_of_a_method_is_left_out() -> None:
    class Repo:
        def get(self, item: int) -> None: ...

    assert KeyBuilder(Repo.get).build((Repo(), 3), {}) == b"item=3"


def test_an_object_without_a_key_encoding_names_its_argument() -> None:
    def f(conn: object) -> None: ...

    with pytest.raises(TypeError, match="argument 'conn' of type object"):
        key(f, object())


def test_the_default_namespace_is_module_and_qualified_name_within_128_bytes() -> None:
    def f() -> None: ...

    assert default_namespace(f) == (
        "test_keys.test_the_default_namespace_is_module_and_qualified_name_within_128_bytes"
        ".<locals>.f"
    )
    f.__qualname__ = "x" * 300
    ns = default_namespace(f)
    assert len(ns.encode()) <= 128 and ":" not in ns


def _general(kb: KeyBuilder, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    """The key by the general path alone (the fast paths switched off)."""
    kb._names = kb._positional = None
    return kb.build(args, kwargs)


@pytest.mark.parametrize(
    "template",
    [None, "{pid}", "{pid}:{lang}", "p{pid!r}-{lang:>4}", "{{x}}{pid}", "{pid.real}"],
)
@pytest.mark.parametrize(
    "args",
    [
        (1, "en"),
        (-7, 'a"b\\c\n\u0001ключ'),
        (True, "en"),
        (1.5, None),
        (Color.RED, b"\x00"),
        (10**30, ""),
    ],
)
def test_the_fast_paths_build_the_general_paths_keys(
    template: str | None, args: tuple[Any, Any]
) -> None:
    def f(pid: Any, lang: Any) -> None: ...

    kw = {"pid": args[0], "lang": args[1]}
    try:
        want = _general(KeyBuilder(f, template), args, {})
    except (TypeError, AttributeError, ValueError) as e:
        with pytest.raises(type(e)):
            KeyBuilder(f, template).build(args, {})
        return
    assert KeyBuilder(f, template).build(args, {}) == want
    assert KeyBuilder(f, template).build((), kw) == want
    assert KeyBuilder(f, template).build(args[:1], {"lang": args[1]}) == want


def test_the_fast_paths_leave_partial_and_odd_calls_to_the_general_path() -> None:
    def f(pid: int, lang: str = "en", *rest: int) -> None: ...

    def g(pid: int, /, lang: str = "en") -> None: ...

    def h(pid: int, db: Session) -> None: ...

    assert KeyBuilder(f).build((1,), {}) == b'pid=1&lang="en"&rest=[]'
    assert KeyBuilder(f, "{pid}{lang}").build((1, "x", 3), {}) == b"1x"
    assert KeyBuilder(g, "{pid}:{lang}").build((1,), {"lang": "de"}) == b"1:de"
    with pytest.raises(TypeError):
        KeyBuilder(g).build((), {"pid": 1, "lang": "de"})
    assert KeyBuilder(h).build((1, None), {}) == b"pid=1"
    assert KeyBuilder(f, "{nope}")._positional is None
