"""One Python client of bench/soak.sh, the twin of bench/soak_client.c: the
same arguments, the same log lines (CLOCK_MONOTONIC microseconds), through
nearcache.Client with its near tier.

usage: soak_client.py URL LOG writer|reader ID WRITERS KEYS RATE NEAR_BYTES
"""

from __future__ import annotations

import random
import sys
import time

import nearcache


def now_us() -> int:
    return time.monotonic_ns() // 1000


def main(argv: list[str]) -> int:
    if len(argv) != 9 or argv[3] not in ("writer", "reader"):
        print(__doc__, file=sys.stderr)
        return 2
    url, path, role = argv[1], argv[2], argv[3]
    ident, writers, keys, rate, near = (int(a) for a in argv[4:9])
    client = nearcache.Client(url, near_bytes=near)
    calls = errors = 0
    seq = now_us()
    nxt = now_us()
    with open(path, "a", buffering=1) as log:
        while True:
            start = now_us()
            try:
                if role == "writer":
                    key = f"w{ident}-{calls % keys}"
                    seq += 1
                    client.set("soak", key, b"%d:" % seq + b"x" * random.randrange(4096), 600)
                    log.write(f"W {key} {seq} {start} {now_us()}\n")
                else:
                    key = f"w{random.randrange(writers)}-{random.randrange(keys)}"
                    v = client.get("soak", key)
                    end = now_us()
                    found = v.split(b":", 1)[0].decode() if v is not None else "-"
                    log.write(f"R {key} {found} {start} {end}\n")
            except nearcache.Error:
                errors += 1
            calls += 1
            if calls % 1000 == 0:
                print(f"{calls} calls, {errors} errors", file=sys.stderr, flush=True)
            nxt += 1_000_000 // rate
            wait = nxt - now_us()
            if wait > 0:
                time.sleep(wait / 1e6)
            elif wait < -1_000_000:
                nxt = now_us()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
