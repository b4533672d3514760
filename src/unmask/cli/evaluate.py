"""``unmask-eval``: one evaluation = model x dataset x sampler x hardware, composed by Hydra and
run by ``unmask.evaluation`` (what is validated, run and recorded is stated there).
Bad input exits with status 2 and one line naming the key (``HYDRA_FULL_ERROR=1`` for a trace).
"""

from __future__ import annotations

from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from unmask.cli.errors import one_line_errors, run_reporting_errors
from unmask.config import CONF_DIR


def print_summary(results: dict | None, run_dir: Path) -> None:
    """The record's numbers as a table on rank 0 (``None``: another rank, nothing to show)."""
    if results is None:
        return
    from rich.console import Console
    from rich.table import Table

    from unmask.loggers import scalars

    table = Table(
        title=f"unmask-eval: {results['variant']}, {results['num_samples']} samples ({results['domain']})"
    )
    table.add_column("key")
    table.add_column("value", justify="right")
    for key, value in scalars(results).items():
        table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    Console().print(table)
    Console().print(f"run directory: {run_dir}")


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    from unmask.evaluation import evaluate

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    run_reporting_errors("unmask-eval", lambda: print_summary(evaluate(cfg, run_dir), run_dir))


main = one_line_errors("unmask-eval", hydra_main)

if __name__ == "__main__":
    main()
