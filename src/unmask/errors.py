"""The error of bad input: raised before any compute, its message names the offending key."""

from __future__ import annotations


class ConfigError(ValueError):
    """Bad input found before any compute; the message names the key."""


def first_line(err: BaseException) -> str:
    """The innermost cause's message, first line only."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
