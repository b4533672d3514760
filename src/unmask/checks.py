"""Type checks for integer and number parameters that reject bools, with the library's error message."""

from __future__ import annotations

from typing import Any


def is_integer(value: Any) -> bool:
    """An ``int`` that is not a ``bool``."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    """An ``int`` or ``float`` that is not a ``bool`` (NaN and infinities included)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_integer(
    key: str, value: Any, minimum: int = 1, *, or_none: str | None = None, note: str = ""
) -> None:
    """Raise ``ValueError("{key}={value!r} must be an integer >= {minimum}{note}")`` unless ``value``
    is an integer >= ``minimum``. With ``or_none``, ``None`` is accepted too and the message ends
    with ``", or {or_none}"``."""
    if or_none is not None and value is None:
        return
    if not is_integer(value) or value < minimum:
        tail = "" if or_none is None else f", or {or_none}"
        raise ValueError(f"{key}={value!r} must be an integer >= {minimum}{note}{tail}")
