"""Cache keys from a function's arguments, without I/O.

The default key is the function's bound arguments, defaults applied, in the
order of its signature, minus the excluded ones, each written
``name=VALUE`` and joined with ``&``, where VALUE is compact JSON with
sorted object keys (``product_id=42&lang="en"``). So ``f(42)``,
``f(product_id=42)`` and ``f(42, lang="en")`` with ``lang="en"`` as the
default all name one key, and ``f.invalidate(42)`` finds it. Values may be
None, bool, int, float, str, bytes (as ``b64:...``), UUID, Decimal, dates,
enums, lists, tuples, sets (sorted), dicts, dataclasses and Pydantic models;
anything else raises TypeError naming the argument. A key longer than
1024 bytes becomes ``#sha256:`` and its hex digest.

Excluded by default: ``self`` and ``cls``, and what a web framework injects:
parameters whose default is FastAPI's ``Depends(...)``/``Security(...)`` or
annotated with one, and arguments that are (or are annotated as) a
Starlette/FastAPI Request, WebSocket, Response, BackgroundTasks,
SecurityScopes, or an SQLAlchemy Session, AsyncSession or Connection.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import decimal
import enum
import hashlib
import inspect
import json
import string
import sys
import typing
import uuid
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["KeyBuilder", "default_namespace", "encode_value"]

MAX_NS = 128

#: (module, class name) of what frameworks inject, checked without importing.
_INJECTED = (
    ("starlette.requests", "HTTPConnection"),
    ("starlette.responses", "Response"),
    ("starlette.background", "BackgroundTasks"),
    ("fastapi.security", "SecurityScopes"),
    ("sqlalchemy.orm", "Session"),
    ("sqlalchemy.ext.asyncio", "AsyncSession"),
    ("sqlalchemy.engine", "Connection"),
)


def _injected_types() -> tuple[type, ...]:
    out = []
    for mod, name in _INJECTED:
        m = sys.modules.get(mod)
        cls = getattr(m, name, None) if m is not None else None
        if isinstance(cls, type):
            out.append(cls)
    return tuple(out)


def _is_depends(obj: object) -> bool:
    params = sys.modules.get("fastapi.params")
    dep = getattr(params, "Depends", None) if params is not None else None
    return isinstance(dep, type) and isinstance(obj, dep)


def _is_a(hint: Any, classes: tuple[type, ...]) -> bool:
    """Whether annotation ``hint`` is a plain class under one of ``classes``
    (``dict[str, int]`` and other generic aliases are not)."""
    if not classes or typing.get_origin(hint) is not None or not inspect.isclass(hint):
        return False
    try:
        return issubclass(hint, classes)
    except TypeError:
        return False


def _hints(fn: Callable[..., Any], params: list[inspect.Parameter]) -> dict[str, Any]:
    """Returns the parameters' annotations, resolved where they can be (one
    by one when some name cannot be)."""
    try:
        return typing.get_type_hints(fn, include_extras=True)
    except Exception:
        pass
    out: dict[str, Any] = {}
    for p in params:
        ann = p.annotation
        if isinstance(ann, str):
            try:
                ann = eval(ann, getattr(fn, "__globals__", {}))
            except Exception:
                continue
        if ann is not inspect.Parameter.empty:
            out[p.name] = ann
    return out


def default_namespace(fn: Callable[..., Any]) -> str:
    """Returns ``module.qualname`` of ``fn`` (``<locals>`` and all), as a
    namespace: at most 128 bytes (longer names keep their end and a hash)."""
    name = f"{fn.__module__}.{fn.__qualname__}".replace(":", ".")
    raw = name.encode()
    if len(raw) <= MAX_NS:
        return name
    digest = hashlib.sha256(raw).hexdigest()[:16]
    return digest + "~" + raw[-(MAX_NS - 17) :].decode(errors="ignore")


def _plain(value: Any, where: str) -> Any:
    """Returns ``value`` as JSON-ready data, or raises TypeError."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if value == value else "NaN"
    if isinstance(value, enum.Enum):
        return _plain(value.value, where)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "b64:" + base64.b64encode(bytes(value)).decode()
    if isinstance(value, (uuid.UUID, decimal.Decimal)):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if isinstance(value, (set, frozenset)):
        items = [_plain(v, where) for v in value]
        return sorted(items, key=lambda x: _json(x))
    if isinstance(value, dict):
        return {str(_plain(k, where)): _plain(v, where) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value), where)
    dump = getattr(value, "model_dump", None)  # Pydantic v2
    if callable(dump):
        return _plain(dump(mode="json"), where)
    raise TypeError(
        f"cannot build a cache key from {where} of type {type(value).__name__}: "
        "exclude it (exclude=...) or give key="
    )


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def encode_value(value: Any, where: str = "a value") -> str:
    """Returns the key text of one argument value (compact, sorted JSON)."""
    return _json(_plain(value, where))


class KeyBuilder:
    """Builds keys for one function: from its template, its key callable, or
    its bound arguments (see the module's doc)."""

    def __init__(
        self,
        fn: Callable[..., Any],
        key: str | Callable[..., str | bytes] | None = None,
        exclude: Iterable[str] = (),
    ) -> None:
        self.sig = inspect.signature(fn)
        self.key = key
        self.excluded = set(exclude) | self._injected_params(fn)
        # The fast paths (same keys as the general one, checked by the
        # tests): every parameter given, all positionally or all by name.
        params = list(self.sig.parameters.values())
        plain = all(p.kind in _PLAIN for p in params)
        names = tuple(p.name for p in params)
        self._names = names if plain else None
        self._n = len(names)
        self._by_name = (
            frozenset(names)
            if plain and all(p.kind is not inspect.Parameter.POSITIONAL_ONLY for p in params)
            else None
        )
        self._positional = _positional(key, self._names) if isinstance(key, str) else None
        self._prefixes = (
            tuple(f"{n}=" for n in self._names)
            if key is None and self._names and not self.excluded
            else None
        )

    def _injected_params(self, fn: Callable[..., Any]) -> set[str]:
        out: set[str] = set()
        params = list(self.sig.parameters.values())
        if params and params[0].name in ("self", "cls") and "." in fn.__qualname__:
            out.add(params[0].name)
        hints = _hints(fn, params)
        injected = _injected_types()
        for p in params:
            if _is_depends(p.default):
                out.add(p.name)
                continue
            hint = hints.get(p.name)
            if typing.get_origin(hint) is typing.Annotated:
                if any(_is_depends(m) for m in typing.get_args(hint)[1:]):
                    out.add(p.name)
                    continue
                hint = typing.get_args(hint)[0]
            if _is_a(hint, injected):
                out.add(p.name)
        return out

    def _fast(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
        """The key text of a call giving every parameter, all positionally
        or all by name, with a simple template or int and str values; None
        for any other call (the general path builds the same text)."""
        names = self._names
        if names is None:
            return None
        if kwargs:
            if args or kwargs.keys() != self._by_name:
                return None
            if isinstance(self.key, str):
                return self.key.format_map(kwargs)
            args = tuple(kwargs[n] for n in names)
        elif len(args) != len(names):
            return None
        return _plain_args(self._prefixes, args) if self._prefixes is not None else None

    def build(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
        """Returns the key of a call with ``args`` and ``kwargs``; raises
        TypeError when they do not bind or a value has no key text."""
        pos = self._positional
        if pos is not None and not kwargs and len(args) == self._n:  # the commonest call, inline
            k = pos.format(*args).encode()
            return k if len(k) <= MAX_KEY else fit(k)
        if callable(self.key):
            made = self.key(*args, **kwargs)
            return fit(made.encode() if isinstance(made, str) else bytes(made))
        text = self._fast(args, kwargs)
        if text is not None:
            return fit(text.encode())
        bound = self.sig.bind(*args, **kwargs)
        bound.apply_defaults()
        if isinstance(self.key, str):
            return fit(self.key.format(**bound.arguments).encode())
        injected = _injected_types()
        parts = []
        for name, value in bound.arguments.items():
            if name in self.excluded or (injected and isinstance(value, injected)):
                continue
            kind = self.sig.parameters[name].kind
            if kind is inspect.Parameter.VAR_KEYWORD:
                for k in sorted(value):
                    parts.append(f"{k}={encode_value(value[k], f'argument {k!r}')}")
                continue
            parts.append(f"{name}={encode_value(value, f'argument {name!r}')}")
        return fit("&".join(parts).encode() or b"-")


_PLAIN = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_quote = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes


def _positional(template: str, names: tuple[str, ...] | None) -> str | None:
    """Returns ``template`` with each parameter it names replaced by the
    parameter's position (``"{id}:{lang}"`` -> ``"{0}:{1}"``), or None when
    it names anything else or numbers its fields."""
    if names is None:
        return None
    index = {n: str(i) for i, n in enumerate(names)}
    out = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError:
        return None  # a malformed template: the general path raises
    for literal, field, spec, conv in parsed:
        out.append(literal.replace("{", "{{").replace("}", "}}"))
        if field is None:
            continue
        head = field.split(".", 1)[0].split("[", 1)[0]
        if head not in index or "{" in (spec or ""):
            return None
        out.append("{" + index[head] + field[len(head) :])
        out.append(("!" + conv if conv else "") + (":" + spec if spec else "") + "}")
    return "".join(out)


def _plain_args(prefixes: tuple[str, ...], args: tuple[Any, ...]) -> str | None:
    """The default key of arguments that are all exactly int or str, or
    None when one is anything else (the general path encodes those)."""
    parts = []
    for prefix, v in zip(prefixes, args, strict=True):
        t = type(v)
        if t is int:
            parts.append(prefix + str(v))
        elif t is str:
            parts.append(prefix + _quote(v))
        else:
            return None
    return "&".join(parts)


MAX_KEY = 1024


def fit(key: bytes) -> bytes:
    """Returns ``key``, or when it is longer than the daemon's default
    max_key_size, ``#sha256:`` and its hash."""
    if len(key) <= MAX_KEY:
        return key
    return b"#sha256:" + hashlib.sha256(key).hexdigest().encode()
