"""``unmask-figures``: draw the paper figures (and the main job's summary) from run records.

    unmask-figures FIGURE [DIR ...]            # results.json under the run or sweep folders DIR
    unmask-figures FIGURE --run [KEY=VALUE ...] # run its preset first (experiment=FIGURE), then draw
    unmask-figures FIGURE --project ENTITY/PROJ # read the runs from W&B (online, with an API key)
    unmask-figures DIR ...                     # every figure that finds its runs under DIR

FIGURE is ``quickstart``, a ``fig_*`` name (conf/experiment/) or ``all``. Without DIR, a sweep
figure reads the latest ``outputs/sweeps/FIGURE/<time>`` and a computed figure (an exact
computation, no sampling run) is computed. Each figure writes ``FIGURE.png``, ``FIGURE.pdf``,
``FIGURE.csv`` (and one CSV per extra table) and ``FIGURE.md`` into ``--out``
(``outputs/figures``). KEY=VALUE are Hydra overrides of the preset (``num_samples=16``,
``budget=4,8``, ``sampler=moment,hybrid``, ``figure.sizes=[16,64]``). Bad input exits with
status 2 and a message naming the runs concerned.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from unmask.figures.records import FigureError


def parse(argv: list[str] | None) -> argparse.Namespace:
    from unmask.figures import FIGURES

    parser = argparse.ArgumentParser(
        prog="unmask-figures",
        description="Draw the paper figures from unmask-eval results (see experiments/README.md).",
    )
    parser.add_argument(
        "items",
        nargs="*",
        metavar="FIGURE|DIR|KEY=VALUE",
        help=f"figure names ({', '.join(FIGURES)}, all), result folders, Hydra overrides",
    )
    parser.add_argument("--run", action="store_true", help="run the figure's preset first (unmask-eval -m)")
    parser.add_argument("--project", help="read the runs of this W&B project (entity/project) instead")
    parser.add_argument("--out", type=Path, default=Path("outputs/figures"), help="output folder")
    parser.add_argument("--jobs", type=int, default=2, help="with --run: evaluation processes at once")
    parser.add_argument("--partial", action="store_true", help="draw even if some runs are missing")
    args = parser.parse_intermixed_args(argv)
    args.figures, args.dirs, args.overrides = [], [], []
    for item in args.items:
        if item == "all":
            args.figures += list(FIGURES)
        elif item in FIGURES:
            args.figures.append(item)
        elif "=" in item and not Path(item).exists():
            args.overrides.append(item)
        elif item.startswith("fig_") and not Path(item).exists():
            parser.error(f"unknown figure {item!r}; known: {', '.join(FIGURES)}")
        else:
            args.dirs.append(item)
    if not args.figures and not args.dirs and not args.project:
        parser.error("name a figure (or all) or give result folders")
    if args.run and (args.dirs or args.project):
        parser.error("--run writes new runs: give no folders or --project with it")
    if args.run and not args.figures:
        parser.error("--run needs a figure name")
    if args.jobs < 1:
        parser.error(f"--jobs={args.jobs} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    from unmask.errors import exit_status
    from unmask.rundir import check_run_directory

    args = parse(argv)

    def action() -> None:
        check_run_directory(args.out, outputs=(), key="--out")  # before any run or figure
        make(args)

    return exit_status("unmask-figures", action, (FigureError,))


def make(args: argparse.Namespace) -> None:
    from unmask.figures import FIGURES
    from unmask.figures.records import load_runs, load_wandb

    names = args.figures or list(FIGURES)
    if args.overrides and not (args.run or all(FIGURES[n].COMPUTED for n in names)):
        raise FigureError("KEY=VALUE overrides apply to new runs: add --run (or name a computed figure)")
    shared: list | None = None
    sources: list[str] = []
    if args.project:
        shared, sources = load_wandb(args.project), [f"W&B project {args.project}"]
    elif args.dirs:
        shared, skipped = load_runs(args.dirs, partial=args.partial)
        sources = args.dirs
        for path in skipped:
            print(f"warning: skipped {path}", file=sys.stderr)
    drawn, failed = 0, []
    for name in names:
        module = FIGURES[name]
        if shared is not None and not args.figures and not module.select(shared):
            continue  # folders only: draw what they hold
        try:
            drawn += make_one(module, args, shared, sources if shared is not None else [])
        except FigureError as err:
            if len(names) == 1 or shared is not None:
                raise
            failed.append(err)  # with several figures, go on and report them all at the end
            print(f"unmask-figures: error: {err}", file=sys.stderr)
    if failed:
        which = ", ".join(e.message.split(":")[0] for e in failed)
        raise FigureError(f"{len(failed)} of {len(names)} figures failed: {which}")
    if not drawn:
        needs = "; ".join(f"{n}: {FIGURES[n].NEEDS}" for n in names)
        raise FigureError(
            f"no figure found its runs in {', '.join(sources)} ({needs}); to compare any runs by any "
            "keys: unmask-compare-runs DIR --group variant --x budget --y <metric>"
        )


def make_one(module, args: argparse.Namespace, shared: list | None, sources: list[str]) -> int:
    """Produce one figure from ``shared`` runs, or from its own new or latest runs."""
    from unmask.figures import quickstart
    from unmask.figures.records import load_runs
    from unmask.figures.runner import (
        SWEEPS,
        latest_sweep,
        no_data,
        produce,
        run_computed,
        run_sweep,
        timestamp,
    )

    name, start = module.NAME, time.perf_counter()
    if shared is not None:
        runs = shared
    else:
        if args.run or module.COMPUTED:
            base = SWEEPS / name / timestamp()
            if module.COMPUTED:
                run_computed(module, args.overrides, base)
            else:
                run_sweep(name, args.overrides, base, args.jobs)
        else:
            base = latest_sweep(name)
            if base is None:
                raise no_data(module, [str(SWEEPS / name)])
            print(f"{name}: reading {base}", flush=True)
        runs, skipped = load_runs([base], partial=args.partial)
        sources = [str(base)]
        for path in skipped:
            print(f"warning: skipped {path}", file=sys.stderr)
    tables, files = produce(module, runs, args.out, sources)
    if module is quickstart:
        quickstart.print_summary(tables)
    else:
        print(tables[0].markdown() if len(tables[0].rows) <= 40 else f"{len(tables[0].rows)} rows")
    print(
        f"{name}: {len(files)} files in {args.out} ({time.perf_counter() - start:.0f} s): "
        f"{', '.join(p.name for p in files)}",
        flush=True,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
