"""Validation NELBO of denoiser checkpoints on their whole validation split, with standard errors.

A card's ``val/nelbo_bits`` is what training validated on: the first ``val_batches`` x ``batch_size``
sequences (Shakespeare 16 x 32 = 512 windows of 128 characters, MNIST 16 x 64 = 1024 digits) with one
mask draw each. This script scores every validation sequence (every non-overlapping 128-character
window of the held-out plays, or the tokenizer's codes of all 10k validation digits), ``--draws`` times
each (the same masks, times and sequences for every checkpoint, so differences are paired), in bits
per token (per character for text):

    python experiments/val_nelbo.py shakespeare /path/to/other/shakespeare [--draws 4] [--out F.json]
    python experiments/val_nelbo.py mnist /path/to/other/mnist

The checkpoints of one call share a tokenizer (the first one's). The standard error is over sequences
(each one's mean over its draws), so it counts the spread of the data, not only of the masks. Also
reported: the same estimate on the sequences training validated on.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
from pathlib import Path

import torch

from unmask.data.mnist import load_mnist
from unmask.data.shakespeare import CharTokenizer, load_text
from unmask.lightning.datamodules import consecutive_windows
from unmask.lightning.losses import mdlm_nelbo
from unmask.models.checkpoint import load_card, load_model

log = logging.getLogger("val_nelbo")


def sequence_nelbo(model, windows: torch.Tensor, draws: int, batch: int = 64) -> torch.Tensor:
    """Bits per character ``[N]`` of each window, averaged over ``draws`` mask draws (seeded)."""
    mask_id = model.vocab_size
    total = torch.zeros(windows.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for draw in range(draws):
            for start in range(0, windows.shape[0], batch):
                generator = torch.Generator().manual_seed(10_000 * draw + start)
                chunk = windows[start : start + batch]
                total[start : start + batch] += mdlm_nelbo(model, chunk, mask_id, generator).double()
    return total / draws / math.log(2)


def validation_sequences(checkpoint: str) -> tuple[torch.Tensor, int]:
    """The whole validation split in the checkpoint's tokens (its card's tokenizer and length), and how
    many lead it in training's validation (``val_batches``, 16 by default, x the card's batch size)."""
    card = load_card(checkpoint)
    validated = 16 * card["training"]["batch_size"]
    if card["tokenizer"]["type"] == "char":
        chars = CharTokenizer.from_text(load_text("train"))
        return consecutive_windows(chars.encode(load_text("val")), card["config"]["seq_len"]), validated
    vq = load_model(card["tokenizer"]["checkpoint"])
    images, _ = load_mnist("val")
    with torch.no_grad():
        return torch.cat([vq.encode(batch) for batch in images.split(1000)]), validated


def summary(values: torch.Tensor) -> dict[str, float]:
    return {"mean": float(values.mean()), "se": float(values.std() / math.sqrt(values.numel()))}


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", help="shipped names or paths (without suffix)")
    parser.add_argument("--draws", type=int, default=4)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    windows, validated = validation_sequences(args.checkpoints[0])
    per_sequence = {name: sequence_nelbo(load_model(name), windows, args.draws) for name in args.checkpoints}
    first = args.checkpoints[0]
    label = {name: Path(name).name for name in args.checkpoints}
    report = {
        "sequences": windows.shape[0],
        "draws": args.draws,
        "checkpoints": {
            label[name]: {
                "card": load_card(name)["metrics"].get("val/nelbo_bits"),
                "all": summary(values),
                f"first_{validated}": summary(values[:validated]),
                **({f"minus_{label[first]}": summary(values - per_sequence[first])} if name != first else {}),
            }
            for name, values in per_sequence.items()
        },
    }
    text = json.dumps(report, indent=1)
    log.info("%s", text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
