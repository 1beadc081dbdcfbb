"""Conformance: the Python near tier (``_near`` over ``_ring``) runs
tests/conformance/ring.json as docs/protocol.md ("The reader's scenarios")
says a runner does: its layout table against ``_ring`` (and ``_ring``
against common/ring.h), its hash and stamp vectors, its reply table
against ``keep_of``, and every scenario's steps with ringfile's writer."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from procs import REPO
from ringfile import RingWriter, replace_file

from nearcache import _ring
from nearcache._near import NearTier, Ticket, keep_of
from nearcache._ring import KIND_KEY, KIND_NAMESPACE, STAMPS, fnv1a64, key_mix, now_ms

SPEC: dict[str, Any] = json.loads((REPO / "tests" / "conformance" / "ring.json").read_text())


def test_the_layout_table_is_the_readers() -> None:
    for name, want in SPEC["layout"].items():
        got = getattr(_ring, name.upper())
        assert (got.hex() if name == "magic" else got) == want, name


def test_the_readers_layout_is_ring_h() -> None:
    """Every integer RING_* of common/ring.h that _ring names is equal."""
    header = (REPO / "common" / "ring.h").read_text()
    defines = dict(re.findall(r"^#define RING_(\w+)\s+(\d+)\b", header, re.M))
    assert len(defines) >= 14, "ring.h's #defines no longer parse"
    for name, value in defines.items():
        assert getattr(_ring, name) == int(value), name
    suffix = re.search(r'^#define RING_SUFFIX\s+"([^"]+)"', header, re.M)
    assert suffix is not None and suffix[1] == _ring.SUFFIX


def test_protocol_md_gives_the_layouts_offsets() -> None:
    """The tables of docs/protocol.md's "The file" say the same offsets."""
    doc = (REPO / "docs" / "protocol.md").read_text()
    section = doc[doc.index("### The file") : doc.index("### The reader")]
    rows = dict(
        (name, int(at))
        for at, name in re.findall(r"^\| (\d+) \| [^|]+ \| ([^|]+?) \|", section, re.M)
    )
    names = {
        "layout": "layout_at",
        "slot size": "slot_size_at",
        "slot count": "slot_count_at",
        "epoch": "epoch_at",
        "flush generation": "flush_gen_at",
        "head": "head_at",
        "serving_until": "serving_until_at",
        "slots": "slots_at",
        "seq": "slot_seq_at",
        "kind": "slot_kind_at",
        "ns hash": "slot_ns_hash_at",
        "key hash": "slot_key_hash_at",
    }
    assert {name: rows.get(name) for name in names} == {
        name: SPEC["layout"][key] for name, key in names.items()
    }


def test_the_hash_vectors_are_fnv1a64() -> None:
    for name, want in SPEC["hashes"].items():
        assert fnv1a64(name.encode()) == int(want, 16), name


def test_the_stamp_vectors_are_key_mix() -> None:
    for row in SPEC["stamps"]:
        nsh = fnv1a64(row["ns"].encode())
        assert nsh % STAMPS == row["ns_stamp"], row
        if "key" in row:
            mix = key_mix(nsh, fnv1a64(row["key"].encode()))
            assert (mix, mix % STAMPS) == (int(row["mix"], 16), row["key_stamp"]), row


@pytest.mark.parametrize("row", SPEC["replies"], ids=lambda r: r["name"])
def test_a_reply_fills_the_tier_as_the_table_says(row: dict[str, Any]) -> None:
    keep = keep_of(
        row["found"], row["negative"], row["stale"], row["lease"] != "NONE", row["ttl_ms"]
    )
    assert keep.name.lower() == row["keep"]


def test_the_default_ring_path_is_the_sockets_plus_ring() -> None:
    assert _ring.default_path("ipc:///run/nc/nearcached.sock") == "/run/nc/nearcached.sock.ring"
    assert _ring.default_path("tcp://127.0.0.1:1") == ""


# --- the scenarios -----------------------------------------------------------


class World:
    """One scenario's ring path, writer and tier, driven step by step."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.w: RingWriter | None = None
        self.tier: NearTier | None = None
        self.tickets: dict[str, Ticket] = {}

    def close(self) -> None:
        if self.tier is not None:
            self.tier.close()
        if self.w is not None:
            self.w.close()

    @property
    def writer(self) -> RingWriter:
        assert self.w is not None, "no ring file to write"
        return self.w

    @property
    def near(self) -> NearTier:
        assert self.tier is not None, "no tier open"
        return self.tier

    # The writer's ops; the hashes come from the file, never from fnv1a64.

    def op_create(self, s: dict[str, Any]) -> None:
        self.close_writer()
        self.w = RingWriter(
            self.path,
            s["slots"],
            s.get("serving_in_ms", 0) / 1000,
            epoch=s["epoch"],
            layout=s.get("layout", _ring.LAYOUT),
            slot_size=s.get("slot_size", _ring.SLOT_SIZE),
            length=s.get("length"),
        )

    def op_raw(self, s: dict[str, Any]) -> None:
        self.close_writer()
        replace_file(self.path, s["text"].encode() * s.get("repeat", 1))

    def op_publish(self, s: dict[str, Any]) -> None:
        hashes = SPEC["hashes"]
        nsh = int(hashes[s["ns"]], 16)
        kind, kh = (KIND_KEY, int(hashes[s["key"]], 16)) if "key" in s else (KIND_NAMESPACE, 0)
        for _ in range(s.get("times", 1)):
            self.writer.publish(kind, nsh, kh)

    def op_flush(self, s: dict[str, Any]) -> None:
        self.writer.flush()

    def op_epoch(self, s: dict[str, Any]) -> None:
        self.writer.set_epoch(s["epoch"])

    def op_serve(self, s: dict[str, Any]) -> None:
        self.writer.serve_until(s["until"] if "until" in s else now_ms() + s["in_ms"])

    def op_stop(self, s: dict[str, Any]) -> None:
        self.writer.stop()

    def op_tear(self, s: dict[str, Any]) -> None:
        self.writer.tear(s["seq"])

    def op_head(self, s: dict[str, Any]) -> None:
        self.writer.set_head(s["head"])

    def close_writer(self) -> None:
        if self.w is not None:
            self.w.close()  # the reader keeps its own mapping of the old file
        self.w = None

    # The tier's ops.

    def op_open(self, s: dict[str, Any]) -> None:
        self.tier = NearTier(
            str(self.path), s.get("max_bytes", 1 << 20), s.get("max_ttl_ms", 60000)
        )

    def op_get(self, s: dict[str, Any]) -> None:
        now = now_ms()
        e = self.near.entry(s["ns"].encode(), s["key"].encode(), now)
        if s.get("negative"):
            assert e is not None and e.value is None, "not a hit of a negative entry"
        elif s["want"] is None:
            assert e is None, f"a hit ({e.value!r}), want a miss"
        else:
            assert e is not None and e.value == s["want"].encode(), "want " + s["want"]
        if "ttl_max" in s:
            assert e is not None and 0 < e.expires_at - now <= s["ttl_max"]

    def op_ticket(self, s: dict[str, Any]) -> None:
        self.tickets[s["name"]] = self.near.ticket()

    def op_fill(self, s: dict[str, Any]) -> None:
        t = self.tickets[s["ticket"]] if "ticket" in s else self.near.ticket()
        value = None if s.get("negative") else s["value"].encode() * s.get("repeat", 1)
        self.near.fill(t, s["ns"].encode(), s["key"].encode(), value, s["ttl_ms"])

    def op_drop(self, s: dict[str, Any]) -> None:
        self.near.drop(s["ns"].encode(), s["key"].encode())

    def op_drop_ns(self, s: dict[str, Any]) -> None:
        self.near.drop_ns(s["ns"].encode())

    def op_forget(self, s: dict[str, Any]) -> None:
        self.near.forget()

    def op_sleep(self, s: dict[str, Any]) -> None:
        time.sleep(s["ms"] / 1000)

    def op_stats(self, s: dict[str, Any]) -> None:
        st = self.near.stats()
        for name in ("hits", "misses", "entries", "flushes", "laps", "fills_refused", "serving"):
            if name in s:
                assert getattr(st, name) == s[name], f"{name} {getattr(st, name)}: {st}"
        if s.get("problem") == "":
            assert st.problem == "", st.problem
        elif "problem" in s:
            assert str(self.path) in st.problem, st.problem
            for word in s["problem"]:
                assert word.lower() in st.problem.lower(), st.problem


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = World(tmp_path / "nc.sock.ring")
    yield w
    w.close()


@pytest.mark.parametrize("scenario", SPEC["scenarios"], ids=lambda sc: sc["name"])
def test_scenario(world: World, scenario: dict[str, Any]) -> None:
    for i, step in enumerate(scenario["steps"], 1):
        run = getattr(world, "op_" + step["op"], None)
        assert run is not None, f"step {i}: unknown op {step['op']!r}"
        try:
            run(step)
        except AssertionError as e:
            raise AssertionError(f"step {i} ({step['op']}): {e}") from None
