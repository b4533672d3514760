"""Training curves of an ``unmask-train`` run, read from its Lightning ``metrics.csv``.

The training loss is the mean of each block of logged steps (``train/loss``, the objective per token,
shown in bits); the validation curve is ``val/nelbo_bits`` (the MDLM NELBO in bits per token, with a
fixed masking seed, so that points of one run and of different runs are comparable).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from unmask.figures.tables import pyplot

LOG2 = math.log(2)


def read_curves(metrics_csv: Path, block: int = 4) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """``(train, val)``: train as ``(last step, mean loss in bits)`` per ``block`` logged rows,
    val as ``(step, nelbo bits)``."""
    train: list[tuple[int, float]] = []
    val: list[tuple[int, float]] = []
    with metrics_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            step = int(row["step"])
            if row.get("train/loss"):
                train.append((step, float(row["train/loss"]) / LOG2))
            if row.get("val/nelbo_bits"):
                val.append((step, float(row["val/nelbo_bits"])))
    blocks = [train[i : i + block] for i in range(0, len(train), block)]
    return [(b[-1][0], sum(v for _, v in b) / len(b)) for b in blocks], val


def write_training_curves(metrics_csv: Path, stem: Path, title: str = "") -> Path:
    """``<stem>.png`` and ``<stem>.csv`` (kind, step, bits) from a run's ``metrics.csv``."""
    train, val = read_curves(metrics_csv)
    stem.parent.mkdir(parents=True, exist_ok=True)
    with stem.with_suffix(".csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["curve", "step", "bits_per_token"])
        writer.writerows(
            [("train", s, f"{v:.5f}") for s, v in train] + [("val", s, f"{v:.5f}") for s, v in val]
        )
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    if train:
        ax.plot(*zip(*train, strict=True), lw=0.8, alpha=0.7, label="train loss (block mean)")
    if val:
        ax.plot(*zip(*val, strict=True), "o-", ms=3, label="validation NELBO")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("bits per token")
    ax.set_title(title or stem.name)
    ax.legend()
    fig.tight_layout()
    png = stem.with_suffix(".png")
    fig.savefig(png, bbox_inches="tight")
    plt.close(fig)
    return png
