"""``unmask-compare``: the Hydra entry point of ``unmask.comparison`` (what it runs and scores
is stated there): composes ``conf/compare.yaml``, writes ``results.json`` with its config snapshot
(``unmask.rundir.Commit``) into the Hydra run directory and prints the table."""

from __future__ import annotations

import logging
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from unmask.cli.errors import one_line_errors, run_reporting_errors
from unmask.config import CONF_DIR
from unmask.rundir import Commit

log = logging.getLogger(__name__)


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"exact NLL under {result['oracle']['class']} (nats/sequence; lower = sharper)")
    for column in ("sampler", "steps", "NLL", "± s.e.", "NFE", "cost"):
        table.add_column(column, justify="left" if column == "sampler" else "right")
    for row in result["rows"]:
        table.add_row(
            row["sampler"],
            str(row["steps"] or "-"),
            f"{row['nll']:.2f}",
            f"{row['stderr']:.2f}",
            str(row.get("nfe", "-")),
            f"{row['cost']:.2f}" if "cost" in row else "-",
        )
    Console().print(table)


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="compare")
def hydra_main(cfg: DictConfig) -> None:
    from unmask.comparison import run_comparison

    def body() -> None:
        result = run_comparison(cfg)
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        with Commit(run_dir) as out:
            out.stage_snapshot(cfg)
            out.finish(result)
        print_table(result)
        log.info("wrote %s", run_dir / "results.json")

    run_reporting_errors("unmask-compare", body)


main = one_line_errors("unmask-compare", hydra_main)

if __name__ == "__main__":
    main()
