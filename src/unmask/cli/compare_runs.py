"""``unmask-compare-runs``: compare any runs by any config keys, with 95% intervals.

    unmask-compare-runs DIR ... --group variant --x budget --y fid_mnist [--y label_entropy_bits]
    unmask-compare-runs DIR ... --from wandb ...     # the offline W&B runs under DIR instead
    unmask-compare-runs --project ENTITY/PROJ ...    # a W&B project (online, with an API key)
    ... --report                                     # also the W&B report (online: created;
                                                     # offline: its spec printed and written)

DIR: run or sweep folders (every ``results.json`` under them, as ``unmask-figures`` reads them).
Writes ``comparison.csv`` (value, standard error and 95% interval per metric and cell),
``comparison.md`` (``value [low, high]``), ``comparison.png``/``.pdf`` and, with ``--report``,
``report_spec.json`` into ``--out``. The rules (what a cell is, which runs may be averaged, how
the interval is formed) are in ``unmask.figures.compare_runs``. Bad input exits with status 2
and one line naming the key or the runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

log = logging.getLogger("unmask.compare_runs")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="unmask-compare-runs", description="Compare runs by config keys, with 95% intervals."
    )
    parser.add_argument("dirs", nargs="*", type=Path, help="run or sweep folders")
    parser.add_argument(
        "--from",
        dest="source",
        choices=("results", "wandb"),
        default="results",
        help="read results.json (default) or the offline W&B runs under the folders",
    )
    parser.add_argument("--project", help="read the runs of this W&B project (entity/project)")
    parser.add_argument("--group", nargs="+", default=["variant"], help="config keys that name a line")
    parser.add_argument("--x", default="budget", help="the config key on the x axis")
    parser.add_argument("--y", nargs="+", action="extend", required=True, help="metrics (results.json names)")
    parser.add_argument("--out", type=Path, default=Path("outputs/comparison"), help="output folder")
    parser.add_argument("--partial", action="store_true", help="compare even if some runs are missing")
    parser.add_argument("--report", action="store_true", help="also build the W&B report")
    parser.add_argument("--entity", help="the report's W&B entity (default: the project's)")
    parser.add_argument("--report-project", default=None, help="the report's W&B project (default: unmask)")
    args = parser.parse_args(argv)
    if not args.dirs and not args.project:
        parser.error("give run or sweep folders, or --project")
    if args.dirs and args.project:
        parser.error("give folders or --project, not both")
    return args


def main(argv: list[str] | None = None) -> int:
    from unmask.errors import exit_status
    from unmask.figures.records import FigureError

    args = parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return exit_status("unmask-compare-runs", lambda: run(args), (FigureError,))


def run(args: argparse.Namespace) -> None:
    from unmask.figures import compare_runs as cr
    from unmask.figures.records import load_runs, load_wandb
    from unmask.rundir import check_run_directory

    check_run_directory(args.out, outputs=(), key="--out")
    if args.project:
        runs = load_wandb(args.project)
    elif args.source == "wandb":
        runs = cr.offline_wandb_runs(args.dirs)
    else:
        runs = load_runs(args.dirs, partial=args.partial)[0]
    comparison = cr.compare(runs, args.group, args.x, args.y)
    table = comparison.table()
    args.out.mkdir(parents=True, exist_ok=True)
    table.write_csv(args.out / "comparison.csv")
    (args.out / "comparison.md").write_text(cr.interval_view(comparison, table).markdown())
    cr.plot(comparison, table, args.out, "comparison")
    log.info("%s", (args.out / "comparison.md").read_text())
    if args.report:
        entity, _, project = (args.project or "").rpartition("/")
        spec = cr.report_spec(
            comparison, args.entity or entity or None, args.report_project or project or "unmask"
        )
        (args.out / "report_spec.json").write_text(json.dumps(spec, indent=2) + "\n")
        if cr.online():
            report = cr.build_report(spec)
            report.save()
            log.info("W&B report: %s", report.url)
        else:
            log.info("W&B offline: the report it would create (also in %s):", args.out / "report_spec.json")
            sys.stdout.write(json.dumps(spec, indent=2) + "\n")
    log.info(
        "wrote %s",
        ", ".join(str(args.out / f) for f in ("comparison.csv", "comparison.md", "comparison.png")),
    )


if __name__ == "__main__":
    sys.exit(main())
