"""Value serializers for the decorator, without I/O.

``json`` (the default) writes JSON with orjson when it is installed, else
the standard library; it knows dataclasses, Pydantic models, dates, UUIDs,
Decimals and sets. It reads values back into the function's return
annotation: with Pydantic installed through a ``TypeAdapter`` (models,
dataclasses, ``list[Model]``, ``Model | None``...), without it a dataclass
from its fields. ``pickle`` is used only when asked for. ``raw`` stores
bytes as they are.
"""

from __future__ import annotations

import dataclasses
import datetime
import decimal
import json
import pickle
import types
import typing
import uuid
from typing import Any, Protocol

__all__ = ["JsonCodec", "PickleCodec", "RawCodec", "Serializer", "make_codec"]

try:
    import orjson as _orjson
except ImportError:  # optional extra
    _orjson = None  # type: ignore[assignment]


class Serializer(Protocol):
    """What the decorator needs of a serializer."""

    def dumps(self, value: Any) -> bytes:
        """Returns the bytes to store for ``value``."""
        ...

    def loads(self, data: bytes) -> Any:
        """Returns the value stored as ``data``; raises ValueError if it does not decode."""
        ...


def _default(obj: Any) -> Any:
    dump = getattr(obj, "model_dump", None)
    if callable(dump):
        return dump(mode="json")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, (datetime.date, datetime.time)):
        return obj.isoformat()
    if isinstance(obj, (uuid.UUID, decimal.Decimal)):
        return str(obj)
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serializable")


_NATIVE = (Any, object, None, type(None), dict, list)


def _native(annotation: Any) -> bool:
    """Whether ``annotation`` accepts whatever JSON decodes to (``dict``,
    ``dict[str, Any]``, ``list[Any] | None``...): such values need no
    validation on the way back. Scalar leaves (``dict[str, int]``,
    ``float``) do: a cached value may not fit them (another writer, an
    older deploy, a NaN stored as null)."""
    if annotation in _NATIVE:
        return True
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is dict:
        return len(args) == 2 and args[0] in (str, Any) and args[1] in (Any, object)
    if origin is list:
        return len(args) == 1 and args[0] in (Any, object)
    if origin in (typing.Union, types.UnionType):
        return all(_native(a) for a in args)
    return False


def _adapter(annotation: Any) -> Any:
    """Returns a Pydantic TypeAdapter for ``annotation``, or None when
    Pydantic is missing or the annotation says nothing a JSON decoder
    does not do already."""
    if annotation is inspect_empty or _native(annotation):
        return None
    try:
        import pydantic
    except ImportError:
        return None
    try:
        return pydantic.TypeAdapter(annotation)
    except Exception:
        return None


inspect_empty: Any = object()


class JsonCodec:
    """JSON, decoded into ``annotation`` (see the module's doc)."""

    def __init__(self, annotation: Any = None) -> None:
        self.annotation = annotation
        self._adapter = _adapter(annotation)

    def dumps(self, value: Any) -> bytes:
        if _orjson is not None:
            return _orjson.dumps(value, default=_default)
        return json.dumps(value, default=_default, separators=(",", ":")).encode()

    def plain_loads(self) -> Any:
        """Returns a function doing what loads() does, quicker when the
        value needs neither validation nor a dataclass (the decorator's
        hot path), else loads itself."""
        cls = self.annotation
        if self._adapter is None and _orjson is not None and not dataclasses.is_dataclass(cls):
            return _orjson.loads  # its errors are ValueErrors, as loads' are
        return self.loads

    def loads(self, data: bytes) -> Any:
        if self._adapter is not None:
            try:
                return self._adapter.validate_json(data)
            except Exception as e:  # pydantic.ValidationError
                raise ValueError(f"cached value does not fit {self.annotation!r}: {e}") from e
        value = _orjson.loads(data) if _orjson is not None else json.loads(data)
        cls = self.annotation
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and isinstance(value, dict):
            return cls(**value)
        return value


class PickleCodec:
    """pickle: any picklable value, read back as it was. Only for values the
    application itself wrote: unpickling runs code."""

    def dumps(self, value: Any) -> bytes:
        return pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def loads(self, data: bytes) -> Any:
        try:
            return pickle.loads(data)
        except Exception as e:
            raise ValueError(f"cached value does not unpickle: {e}") from e


class RawCodec:
    """bytes as they are (str as UTF-8)."""

    def dumps(self, value: Any) -> bytes:
        if isinstance(value, str):
            return value.encode()
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        raise TypeError(f"serializer='raw' stores bytes or str, not {type(value).__name__}")

    def loads(self, data: bytes) -> Any:
        return data


def make_codec(serializer: str | Serializer, annotation: Any) -> Serializer:
    """Returns the serializer named ``json``, ``pickle`` or ``raw``, or
    ``serializer`` itself."""
    if serializer == "json":
        return JsonCodec(annotation)
    if serializer == "pickle":
        return PickleCodec()
    if serializer == "raw":
        return RawCodec()
    if isinstance(serializer, str):
        raise ValueError(f"unknown serializer {serializer!r}: json, pickle or raw")
    return serializer


def return_annotation(fn: Any) -> Any:
    """Returns ``fn``'s return annotation resolved, or None."""
    try:
        hint = typing.get_type_hints(fn).get("return")
    except Exception:
        return None
    if typing.get_origin(hint) is typing.Annotated:
        hint = typing.get_args(hint)[0]
    return hint
