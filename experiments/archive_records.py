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
import json
import shutil
import sys
from pathlib import Path

ARCHIVE = Path(__file__).resolve().parent / "results" / "runs"


def records_of(folder: Path) -> dict[Path, bytes]:
    """The records under ``folder`` (their bytes) by their place in the archive; one line of error for
    a bad file."""
    if not folder.is_dir():
        raise SystemExit(f"archive_records: error: {folder}: not a folder")
    found = {}
    for path in sorted(folder.rglob("results.json")):
        try:
            data = path.read_bytes()
            record = json.loads(data)
        except (OSError, ValueError) as err:
            raise SystemExit(f"archive_records: error: {path}: not a readable record ({err})") from None
        if record.get("status", "complete") != "complete":
            raise SystemExit(f"archive_records: error: {path}: status {record.get('status')!r}, not complete")
        model = (record.get("config") or {}).get("model") or {}
        relative = path.relative_to(folder)
        if "name" in model and folder.name == model["name"]:  # one model's folder: keep its name
            relative = Path(folder.name) / relative
        found[relative] = data
    if not found:
        raise SystemExit(f"archive_records: error: {folder}: no results.json under it")
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
