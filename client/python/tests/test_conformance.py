"""The shared conformance cases (tests/conformance/cases.json), byte for
byte as every client sends them, through both Python clients."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import open_client
from procs import REPO, Fleet

from nearcache._pb import nearcache_pb2 as pb

CASES = json.loads((REPO / "tests" / "conformance" / "cases.json").read_text())["cases"]


@pytest.fixture
def fresh(kind: str) -> Iterator[Any]:
    """A new Redis and daemon for one run of the cases, in order."""
    fleet = Fleet(1)
    try:
        with open_client(kind, fleet[0].url, timeout=5) as cl:
            yield cl
    finally:
        fleet.stop()


def field(msg: Any, path: str) -> Any:
    for part in path.split("."):
        msg = msg[int(part)] if part.isdigit() else getattr(msg, part)
    return msg


def matches(got: Any, want: Any, names: dict[str, int]) -> bool:
    """Compares a field with a case's value: "$NAME" takes any number and
    names it, "$NAME+K" is that number plus K."""
    if isinstance(want, str) and want.startswith("$"):
        name, _, plus = want[1:].partition("+")
        if not plus:
            names[name] = got
            return isinstance(got, int)
        return bool(got == names[name] + int(plus))
    return bool(got == want)


def test_every_case_gets_the_expected_reply(fresh: Any) -> None:
    names: dict[str, int] = {}
    for case in CASES:
        reply = fresh.request(bytes.fromhex(case["request"]))
        where = case["name"]
        assert reply.id == case["id"], where
        assert pb.Code.Name(reply.code) == case["code"], f"{where}: {reply.message}"
        assert case["message"] in reply.message, where
        if not case["message"]:
            assert reply.message == "", where
        for path, want in case["fields"].items():
            got = field(reply, path)
            if isinstance(got, bytes):
                got = got.decode()
            assert matches(got, want, names), f"{where}: {path}: {got!r}, want {want!r}"
