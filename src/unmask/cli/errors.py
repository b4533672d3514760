"""How the command-line entry points fail: one readable line, a meaningful exit status, and
the full traceback in the run's log file (``HYDRA_FULL_ERROR=1`` re-raises instead).

- ``ConfigError`` (bad input found before any compute) -> status 2;
- a known runtime failure (a missing or corrupt checkpoint or data file, a denoiser returning
  NaN or the wrong shape at some step, an unwritable directory) -> status 1;
- anything else -> status 1, with the exception's type in the line;
- Ctrl-C (``KeyboardInterrupt``) -> status 130 (during Lightning's loop, Lightning's own 1).
Nothing that claims success (``results.json``, a shipped checkpoint) is written on any of them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from unmask.cli.quiet import quiet_third_party
from unmask.errors import ConfigError, first_line

__all__ = ["ConfigError", "first_line", "run_reporting_errors"]
log = logging.getLogger("unmask.cli")


def log_to_files(message: str, exc_info: bool) -> None:
    """Write an error record to the root logger's file handlers only (the run's log file), so
    the terminal shows the one line written to stderr, once."""
    record = log.makeRecord(
        log.name, logging.ERROR, __file__, 0, message, (), sys.exc_info() if exc_info else None
    )
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def run_reporting_errors(program: str, body: Callable[[], Any]) -> Any:
    """Run ``body`` with known third-party noise filtered (``quiet.py``); on failure write
    ``<program>: error: <one line>`` to stderr, once, and exit."""
    quiet_third_party()
    try:
        return body()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log_to_files("interrupted", exc_info=True)
        sys.stderr.write(f"{program}: interrupted; no result was written for the unfinished run\n")
        sys.exit(130)
    except Exception as err:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        status = 2 if isinstance(err, ConfigError) else 1
        message = first_line(err)
        if not isinstance(err, (ConfigError, OSError, ValueError, RuntimeError)):
            message = f"{type(err).__name__}: {message}"
        log_to_files(message, exc_info=not isinstance(err, ConfigError))
        sys.stderr.write(f"{program}: error: {message}\n")
        sys.exit(status)
