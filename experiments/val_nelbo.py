"""Validation NELBO of denoiser checkpoints on their whole validation split, with standard errors.

A card's ``val/nelbo_bits`` is what training's curve validated on: the first ``val_batches`` x
``batch_size`` sequences (Shakespeare 16 x 32 = 512 windows of 128 characters, MNIST 16 x 64 = 1024
digits) with one mask draw each. This script scores every validation sequence (every non-overlapping
128-character window of the held-out plays, or the tokenizer's codes of all 10k validation digits),
``--draws`` times each, with ``unmask.lightning.heldout`` (the same masks, times and sequences for every
checkpoint, so differences are paired), in bits per token (per character for text):

    python experiments/val_nelbo.py shakespeare /path/to/other/shakespeare [--draws 4] [--out F.json]
    python experiments/val_nelbo.py mnist /path/to/other/mnist [--record]

The checkpoints of one call share a validation split (the first one's). The standard error is over
sequences (each one's mean over its draws), so it counts the spread of the data, not only of the masks.
Also reported: the same estimate on the sequences training validated on. ``--record`` writes each
checkpoint's estimate into its card as the ``heldout/*`` metrics that ``unmask-train`` records (the
same function and seeds), for cards trained before training recorded them; the weights are untouched.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

from unmask.lightning.heldout import heldout_card_metrics, heldout_nelbo_bits, mean_and_se, validation_split
from unmask.models.checkpoint import add_card_metrics, load_card, load_model

log = logging.getLogger("val_nelbo")


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="shipped names or paths (without suffix)")
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--record", action="store_true", help="write the heldout/* metrics into each card")
    args = parser.parse_args()
    if args.draws < 1:
        parser.error(f"--draws={args.draws} must be at least 1")
    label = {name: Path(name).name for name in args.checkpoints}
    if len(set(label.values())) < len(args.checkpoints):
        parser.error(f"checkpoints {args.checkpoints} share a name (the report is keyed by it)")
    windows = validation_split(args.checkpoints[0])
    cards = {name: load_card(name) for name in args.checkpoints}
    validated = 16 * cards[args.checkpoints[0]]["training"]["batch_size"]  # val_batches x batch_size
    per_sequence = {
        name: heldout_nelbo_bits(load_model(name), windows, cards[name]["config"]["vocab_size"], args.draws)
        for name in args.checkpoints
    }
    first = args.checkpoints[0]
    report = {
        "sequences": windows.shape[0],
        "draws": args.draws,
        "checkpoints": {
            label[name]: {
                "card": cards[name]["metrics"].get("val/nelbo_bits"),
                "all": mean_and_se(values),
                f"first_{validated}": mean_and_se(values[:validated]),
                **(
                    {f"minus_{label[first]}": mean_and_se(values - per_sequence[first])}
                    if name != first
                    else {}
                ),
            }
            for name, values in per_sequence.items()
        },
    }
    text = json.dumps(report, indent=1)
    log.info("%s", text)
    if args.out:
        args.out.write_text(text + "\n")
    if args.record:
        for name, values in per_sequence.items():
            metrics = heldout_card_metrics(values, args.draws)
            log.info("recorded in %s", add_card_metrics(name, metrics, cards[name]["weights_sha256"]))


if __name__ == "__main__":
    main()
