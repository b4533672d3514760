"""How the command-line entry points fail: one readable line, a meaningful exit status, and
the full traceback in the run's log file (``HYDRA_FULL_ERROR=1`` re-raises instead).

- ``ConfigError`` (bad input found before any compute) -> status 2;
- a known runtime failure (a missing or corrupt checkpoint or data file, a denoiser returning
  NaN or the wrong shape at some step, an unwritable directory) -> status 1;
- anything else -> status 1, with the exception's type in the line;
- Ctrl-C (``KeyboardInterrupt``) -> status 130, also inside Lightning's loops
  (``lightning.trainer.interrupts_raised``).
Nothing that claims success (``results.json``, a shipped checkpoint) is written on any of them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from unmask.cli.quiet import quiet_third_party
from unmask.errors import ONE_LINE, ConfigError, first_line, log_to_files, wants_traceback

__all__ = ["ConfigError", "first_line", "log_to_files", "run_reporting_errors"]
log = logging.getLogger("unmask.cli")


def run_reporting_errors(program: str, body: Callable[[], Any]) -> Any:
    """Run ``body`` with known third-party noise filtered (``quiet.py``); on failure write
    ``<program>: error: <one line>`` to stderr, once, and exit."""
    quiet_third_party()
    try:
        return body()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        if wants_traceback():
            raise
        log_to_files("interrupted", exc_info=True)
        sys.stderr.write(f"{program}: interrupted; no result was written for the unfinished run\n")
        sys.exit(130)
    except Exception as err:
        if wants_traceback():
            raise
        status = 2 if isinstance(err, ConfigError) else 1
        message = first_line(err)
        if not isinstance(err, (ConfigError, OSError, ValueError, RuntimeError)):
            message = f"{type(err).__name__}: {message}"
        log_to_files(message, exc_info=not isinstance(err, ConfigError))
        sys.stderr.write(f"{program}: error: {message}\n")
        sys.exit(status)


def one_line_errors(program: str, hydra_main: Callable[[], Any]) -> Callable[[], Any]:
    """The console script of a Hydra app: Hydra's own errors (an override of a key that does
    not exist, a config group option that does not exist, a malformed override) become one line,
    ``<program>: error: ...``, exit status 2, like the app's; ``HYDRA_FULL_ERROR=1`` keeps
    Hydra's traceback. (Hydra prints them over several lines unless ``HYDRA_FULL_ERROR`` is set,
    when it raises them: it is set while the app runs, and the app's own checks still exit in
    one line.)"""

    def main() -> Any:
        if os.environ.get("HYDRA_FULL_ERROR") == "1":
            return hydra_main()
        os.environ["HYDRA_FULL_ERROR"], os.environ[ONE_LINE] = "1", "1"
        try:
            return hydra_main()
        except Exception as err:
            from hydra.errors import HydraException
            from omegaconf.errors import OmegaConfBaseException

            bad_input = isinstance(err, (HydraException, OmegaConfBaseException, ConfigError))
            sys.stderr.write(f"{program}: error: {hydra_message(err)}\n")
            sys.exit(2 if bad_input else 1)
        finally:
            del os.environ["HYDRA_FULL_ERROR"], os.environ[ONE_LINE]

    main.__doc__ = hydra_main.__doc__
    return main


def hydra_message(err: BaseException) -> str:
    """Hydra's multi-line message as one line: its sentences joined and a list of options
    inline; the config search path and OmegaConf's ``full_key``/``object_type`` lines dropped."""
    parts: list[str] = []
    for line in str(err).splitlines():
        line = line.strip()
        if line.startswith("Config search path"):
            break
        if not line or line.startswith(("full_key:", "object_type", "reference_type")):
            continue
        if (parts and parts[-1].endswith(":")) or (parts and parts[-1].endswith(",")):
            parts[-1] += f" {line},"  # an option of a list
        else:
            parts.append(line)
    text = " ".join(p.rstrip(",") if p.endswith((".", ":", ",")) else f"{p}." for p in parts)
    cause = first_line(err) if err.__cause__ is not None else ""
    if cause and cause not in text:
        text = f"{text.rstrip('.')}: {cause}"
    return text.rstrip(".") or type(err).__name__
