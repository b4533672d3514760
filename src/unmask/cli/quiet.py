"""Known third-party noise, filtered at the entry points (never in the library).

Each filter names one message that says nothing to a user of these commands: Lightning's
accelerator banner and its logging tip (printed twice, by Lightning's handler and Hydra's),
its warnings that ``predict`` returned nothing (the evaluator writes shards instead), that ``srun``
is available but not used (local runs on a SLURM machine), and a deprecation inside Lightning's
own ``_pytree``. Anything else still reaches the terminal and the run's log.
"""

from __future__ import annotations

import logging
import warnings

IGNORED_WARNINGS = (
    r".*isinstance\(treespec, LeafSpec\).*is deprecated",
    r"predict returned None",
    r"The `srun` command is available on your system but is not used",
)
# Lightning loggers whose INFO lines are banners (GPU/TPU available, a LitLogger tip)
QUIET_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")


def quiet_third_party() -> None:
    """Install the filters (idempotent)."""
    for pattern in IGNORED_WARNINGS:
        warnings.filterwarnings("ignore", message=pattern)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
