"""Typed configuration: one validation path for config files (YAML, JSON) and ``--set`` overrides.

Settings live in dataclasses whose annotations are the schema (``int``, ``float``, ``bool``, ``str``,
``Literal[...]`` enums, ``X | None``, ``tuple[...]``, ``dict``, nested dataclasses). :func:`from_dict`
checks a mapping against such a dataclass when it is loaded, before any work starts, and raises one
:class:`~avsal.errors.ConfigError` naming the dotted key, the problem and the allowed values:

* unknown keys (with the allowed ones, and the nearest name when it looks like a typo);
* missing required keys;
* wrong types (``jobs: two``; ``true`` is not a number; a float is not an ``int``);
* numbers that are not finite (NaN, ±inf, ``1e400``);
* enum values outside their ``Literal`` (``crop.empty_box: fulll``);
* bounds a field declares in its metadata: ``field(default=1, metadata={"min": 1})`` (``min``/``max``
  inclusive, ``gt`` exclusive), applied to a number or to every number of a tuple.

Why our own (about 150 lines) rather than pydantic or dacite: the configs are plain dataclasses used
everywhere (``asdict``, defaults, ``frozen``), the messages must name the key the way a user wrote it
(``scam.epochs``, ``--set w_sync``), and the rules above are all that is needed; pydantic would add a
compiled dependency and a second model of every config, dacite checks types only.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, Union

from avsal.errors import ConfigError

__all__ = ["check_value", "from_dict", "validate_fields"]


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return f"a list of {_type_name(args[0])}"
        return f"a list of {len(args)} values ({', '.join(_type_name(a) for a in args)})"
    if dataclasses.is_dataclass(tp):
        return f"a mapping of {tp.__name__} fields"
    return {int: "a whole number", float: "a number", bool: "true or false", str: "a string",
            dict: "a mapping"}.get(tp, getattr(tp, "__name__", str(tp)))


def _bounds(value, meta: Mapping, key: str, source: str | None) -> None:
    nums = value if isinstance(value, tuple) else (value,)
    for v in nums:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if "min" in meta and v < meta["min"]:
            raise ConfigError(key, f"must be >= {meta['min']}, got {v!r}", source)
        if "max" in meta and v > meta["max"]:
            raise ConfigError(key, f"must be <= {meta['max']}, got {v!r}", source)
        if "gt" in meta and not v > meta["gt"]:
            raise ConfigError(key, f"must be > {meta['gt']}, got {v!r}", source)


def check_value(tp, value: Any, key: str, source: str | None = None) -> Any:
    """``value`` checked against the annotation ``tp`` (lists become tuples for ``tuple`` fields).

    Raises:
        ConfigError: naming ``key``, what was expected and what was given.
    """
    origin = typing.get_origin(tp)
    bad = ConfigError(key, f"expects {_type_name(tp)}, got {value!r}", source)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise bad
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return check_value(a, value, key, source)
            except ConfigError as e:
                errors.append(e)
        raise errors[0] if len(errors) == 1 else bad
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed and type(value) in {type(a) for a in allowed}:
            return value
        raise ConfigError(key, f"must be one of {', '.join(repr(a) for a in allowed)}, got {value!r}", source)
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise bad
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise bad
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ConfigError(key, f"must be a finite number, got {value!r}", source)
            return float(value)
        raise bad
    if tp is str:
        if isinstance(value, str):
            return value
        raise bad
    if origin is tuple or tp is tuple:
        if not isinstance(value, (list, tuple)):
            raise bad
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(check_value(args[0], v, f"{key}[{i}]", source) for i, v in enumerate(value))
        if args and len(value) != len(args):
            raise ConfigError(key, f"expects {_type_name(tp)}, got {len(value)} value(s): {value!r}", source)
        return tuple(check_value(a, v, f"{key}[{i}]", source) for i, (a, v) in enumerate(zip(args, value))) \
            if args else tuple(value)
    if origin is dict or tp is dict:
        if not isinstance(value, Mapping):
            raise bad
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return from_dict(tp, value, where=key, source=source)
    return value  # an annotation this checker does not know: accepted as is


def _fields(cls) -> dict[str, dataclasses.Field]:
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        f.type = hints.get(f.name, f.type)
        out[f.name] = f
    return out


def validate_fields(cls, data: Any, *, where: str = "", source: str | None = None,
                    exclude: tuple[str, ...] = ()) -> dict:
    """Check the keys given in ``data`` against the fields of the dataclass ``cls`` (a partial config:
    missing keys keep their defaults). Returns the checked values (lists turned into tuples).

    Args:
        cls: the dataclass.
        data: a mapping (from YAML/JSON or ``--set``).
        where: the dotted key of ``data`` itself, for messages (``"scam"``).
        source: the file or option the values came from (``"ave.yaml"``, ``"--set"``).
        exclude: fields that may not be set here (set by the caller).

    Raises:
        ConfigError: not a mapping, an unknown key, or a bad value.
    """
    if not isinstance(data, Mapping):
        raise ConfigError(where or "config", f"expects a mapping of {cls.__name__} fields, got {data!r}", source)
    fields = {n: f for n, f in _fields(cls).items() if n not in exclude}
    out = {}
    for k, v in data.items():
        key = _join(where, str(k))
        if k not in fields:
            near = difflib.get_close_matches(str(k), list(fields), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ConfigError(key, f"unknown key{hint}; allowed: {', '.join(sorted(fields))}", source)
        f = fields[k]
        out[k] = check_value(f.type, v, key, source)
        _bounds(out[k], f.metadata, key, source)
    return out


def from_dict(cls, data: Any, *, where: str = "", source: str | None = None):
    """Build the dataclass ``cls`` from a mapping, checking every key and value (see the module docstring).

    Raises:
        ConfigError: an unknown, missing or bad key (the message names it and the allowed values).
    """
    values = validate_fields(cls, data, where=where, source=source)
    missing = [f.name for f in dataclasses.fields(cls) if f.init and f.name not in values
               and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(_join(where, missing[0]), "is required (missing)", source)
    return cls(**values)
