"""Errors of the entry points: bad input (``ConfigError``, raised before any compute, its message
names the offending key), its one-line form, whether the user wants tracebacks instead, and
the record of an error in the run's log file."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

# set by ``unmask.cli.errors.one_line_errors`` while it turns Hydra's own errors into one line
ONE_LINE = "UNMASK_ONE_LINE_ERRORS"


class ConfigError(ValueError):
    """Bad input found before any compute; the message names the key."""


def first_line(err: BaseException) -> str:
    """The innermost cause's message, first line only."""
    while err.__cause__ is not None:
        err = err.__cause__
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def wants_traceback() -> bool:
    """Whether the user asked for full tracebacks (``HYDRA_FULL_ERROR=1``)."""
    return os.environ.get("HYDRA_FULL_ERROR") == "1" and ONE_LINE not in os.environ


def log_to_files(message: str, exc_info: bool) -> None:
    """Write an error record to the root logger's file handlers only (the run's log file), so
    the terminal shows the one line written to stderr, once."""
    record = logging.getLogger("unmask.cli").makeRecord(
        "unmask.cli", logging.ERROR, __file__, 0, message, (), sys.exc_info() if exc_info else None
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def exit_status(program: str, action: Callable[[], object], expected: tuple[type[BaseException], ...]) -> int:
    """Run ``action``; 0, or 2 with ``<program>: error: <message>`` on stderr for an ``expected``
    error (bad input named in its message)."""
    try:
        action()
    except (ConfigError, *expected) as err:
        sys.stderr.write(f"{program}: error: {err}\n")
        return 2
    return 0
