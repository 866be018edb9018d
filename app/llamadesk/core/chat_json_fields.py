"""The errors of a conversation document and the typed reads of its fields, each
saying where in the document a value is missing or of the wrong kind."""

from __future__ import annotations

import math
from typing import Any


class ChatDocumentError(Exception):
    """A chat could not be exported or imported; the message says why."""


class ChatFormatError(ChatDocumentError):
    """A document that cannot be imported as it is; the message names the problem."""


class NewerFormatError(ChatFormatError):
    """A document written by a newer version of the app, in a format this one cannot
    read."""


# -- typed fields -----------------------------------------------------------------------------
def _value(data: dict[str, Any], key: str, where: str) -> Any:
    if key not in data:
        raise ChatFormatError(f"{where + '.' if where else ''}{key} is missing")
    return data[key]


def _object(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = _value(data, key, where)
    if not isinstance(value, dict):
        raise ChatFormatError(f"{where + '.' if where else ''}{key} must be an object")
    return value


def _array(data: dict[str, Any], key: str, where: str) -> list[Any]:
    value = _value(data, key, where)
    if not isinstance(value, list):
        raise ChatFormatError(f"{where + '.' if where else ''}{key} must be a list")
    return value


def _str(data: dict[str, Any], key: str, where: str) -> str:
    value = _value(data, key, where)
    if not isinstance(value, str):
        raise ChatFormatError(f"{where}.{key} must be text, not {_kind(value)}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # a lone surrogate from a \ud800 escape
        raise ChatFormatError(f"{where}.{key} is not valid Unicode text") from exc
    return value


def _str_or_none(data: dict[str, Any], key: str, where: str) -> str | None:
    return None if _value(data, key, where) is None else _str(data, key, where)


def _int(data: dict[str, Any], key: str, where: str) -> int:
    value = _value(data, key, where)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ChatFormatError(f"{where}.{key} must be a whole number, not {_kind(value)}")
    if abs(value) >= 2**63:  # SQLite's integers are 64-bit
        raise ChatFormatError(f"{where}.{key} is out of range")
    return value


def _int_or_none(data: dict[str, Any], key: str, where: str) -> int | None:
    return None if _value(data, key, where) is None else _int(data, key, where)


def _number(data: dict[str, Any], key: str, where: str) -> float:
    value = _value(data, key, where)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ChatFormatError(f"{where}.{key} must be a number, not {_kind(value)}")
    try:
        number = float(value)
    except OverflowError as exc:  # a whole number too big for a float
        raise ChatFormatError(f"{where}.{key} is out of range") from exc
    if not math.isfinite(number):  # Python's json reads NaN and Infinity
        raise ChatFormatError(f"{where}.{key} must be a finite number, not {value!r}")
    return number


def _number_or_none(data: dict[str, Any], key: str, where: str) -> float | None:
    return None if _value(data, key, where) is None else _number(data, key, where)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return repr(value)[:40]
    if isinstance(value, str):
        return "text"
    return "a list" if isinstance(value, list) else "an object"
