"""Keep the run records behind a committed figure, so that it can be redrawn without sampling.

    python experiments/archive_records.py FIGURE DIR [DIR ...]
    unmask-figures FIGURE experiments/results/runs/FIGURE --out outputs/figures   # redraws it

Copies every ``results.json`` under the sweep folders ``DIR`` (``outputs/sweeps/FIGURE/<time>``, one
model's folder of it, or a computed figure's folder) into ``experiments/results/runs/FIGURE``, keeping
the layout ``<model>/<job>/results.json`` of the sweep (a computed figure's record is
``FIGURE/results.json``). The archive of ``FIGURE`` is replaced as a whole, and only once every record
is read and checked: it is built beside the old one and swapped in by renames, so a failure leaves the
old archive as it was. A folder may be the archive itself: ``archive_records.py FIGURE
outputs/sweeps/FIGURE/<time>/shakespeare experiments/results/runs/FIGURE/mnist`` replaces the text
runs and keeps the image runs. Samples, shards and logs stay behind (a figure draws from the records;
only the quickstart's sample grids need the samples). ``tests/figures/test_committed_records.py``
checks that each committed figure's tables are the ones its archived records draw.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ARCHIVE = Path(__file__).resolve().parent / "results" / "runs"


def records_of(folder: Path) -> dict[Path, bytes]:
    """The records under ``folder`` (their bytes) by their place in the archive, checked as a figure
    checks its input (``unmask.figures.records.load_runs``: every job's record present, readable and
    complete), else an error naming the bad ones."""
    from unmask.figures.records import FigureError, load_runs

    if not folder.is_dir():
        raise SystemExit(f"archive_records: error: {folder}: not a folder")
    try:
        runs, _ = load_runs([folder])
    except FigureError as err:
        raise SystemExit(f"archive_records: error: {err}") from None
    if not runs:
        raise SystemExit(f"archive_records: error: {folder}: no results.json under it")
    found = {}
    for run in runs:
        path = Path(run.source)
        relative = path.relative_to(folder)
        name = (run.config.get("model") or {}).get("name")
        if name is not None and folder.name == name:  # one model's folder: keep its name
            relative = Path(name) / relative
        found[relative] = path.read_bytes()
    return found


def archive(figure: str, folders: list[Path], root: Path = ARCHIVE) -> Path:
    records: dict[Path, bytes] = {}
    for folder in folders:
        for relative, record in records_of(folder).items():
            if relative in records:
                raise SystemExit(f"archive_records: error: {relative} comes from two folders")
            records[relative] = record
    target, building, old = root / figure, root / f".{figure}.building", root / f".{figure}.old"
    shutil.rmtree(building, ignore_errors=True)
    for relative, record in records.items():
        (building / relative).parent.mkdir(parents=True, exist_ok=True)
        (building / relative).write_bytes(record)
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    building.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("figure", help="the figure's name (quickstart, fig_*)")
    parser.add_argument("folders", nargs="+", type=Path, help="sweep folders (or parts of them)")
    args = parser.parse_args(argv)
    folders = [folder.resolve() for folder in args.folders]
    target = archive(args.figure, folders)
    count = sum(1 for _ in target.rglob("results.json"))
    print(f"{count} records -> {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
