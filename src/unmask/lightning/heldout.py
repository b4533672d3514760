"""The held-out NELBO of a denoiser: every validation sequence, several mask draws, a standard error.

Training's ``val/nelbo_bits`` (the curve) is one fixed draw of times and masks over its first
``val_batches`` batches; that is enough to follow a run but its error is large and shared by every run
of a recipe family. ``heldout_nelbo_bits`` scores every sequence of the validation split ``draws``
times with ``mdlm_nelbo``: the sequences in consecutive batches of ``HELDOUT_BATCH`` (the stratified
times are drawn per batch), draw ``d`` of the batch starting at row ``s`` seeded ``10_000 * d + s``, so
every model scored on the same sequences sees the same times and masks and differences between models
are paired. ``heldout_metrics`` is what a card records: the mean over sequences of each one's mean
over draws, in bits per token, its standard error over sequences (the spread of the data, not only of
the masks), how many sequences and draws. ``validation_split`` rebuilds a checkpoint's validation
sequences from its card, as training built them, so a shipped card can be scored again
(``experiments/val_nelbo.py --record``).
"""

from __future__ import annotations

import math

import torch

from unmask.lightning.losses import Model, mdlm_nelbo
from unmask.models.checkpoint import load_card, load_model

HELDOUT_BATCH = 64


def heldout_nelbo_bits(
    model: Model, sequences: torch.Tensor, mask_id: int, draws: int, batch: int = HELDOUT_BATCH
) -> torch.Tensor:
    """Each sequence's ``mdlm_nelbo`` in bits per token, averaged over ``draws`` draws: ``[N]`` float64."""
    total = torch.zeros(sequences.shape[0], dtype=torch.float64)
    with torch.no_grad():
        for draw in range(draws):
            for start in range(0, sequences.shape[0], batch):
                generator = torch.Generator(device=sequences.device).manual_seed(10_000 * draw + start)
                chunk = sequences[start : start + batch]
                total[start : start + batch] += mdlm_nelbo(model, chunk, mask_id, generator).double().cpu()
    return total / draws / math.log(2)


def mean_and_se(per_sequence: torch.Tensor) -> dict[str, float]:
    """Mean and standard error (sample standard deviation / sqrt(N)) of ``per_sequence``."""
    return {
        "mean": float(per_sequence.mean()),
        "se": float(per_sequence.std() / math.sqrt(per_sequence.numel())),
    }


def heldout_card_metrics(per_sequence: torch.Tensor, draws: int) -> dict[str, float]:
    """The card's ``heldout/*`` metrics from ``heldout_nelbo_bits``' scores (see the module docstring)."""
    summary = mean_and_se(per_sequence)
    return {
        "heldout/nelbo_bits": summary["mean"],
        "heldout/nelbo_bits_se": summary["se"],
        "heldout/sequences": int(per_sequence.numel()),
        "heldout/draws": draws,
    }


def heldout_metrics(model: Model, sequences: torch.Tensor, mask_id: int, draws: int) -> dict[str, float]:
    """``heldout_card_metrics`` of ``model`` on ``sequences``."""
    return heldout_card_metrics(heldout_nelbo_bits(model, sequences, mask_id, draws), draws)


def validation_split(checkpoint: str) -> torch.Tensor:
    """The validation split in a denoiser checkpoint's tokens, as ``unmask-train`` validates on it:
    every non-overlapping ``seq_len``-character window of the held-out plays (a ``char`` tokenizer), or
    the card's VQ tokenizer's codes of all 10k validation digits."""
    from unmask.data.mnist import load_mnist
    from unmask.data.shakespeare import CharTokenizer, load_text
    from unmask.lightning.datamodules import consecutive_windows

    card = load_card(checkpoint, kind="denoiser")
    tokenizer = card.get("tokenizer", {})
    if tokenizer.get("type") == "char":
        chars = CharTokenizer(tokenizer["alphabet"], tokenizer.get("unknown", "?"))
        return consecutive_windows(chars.encode(load_text("val")), card["config"]["seq_len"])
    if tokenizer.get("type") != "vq":
        raise ValueError(f"{checkpoint}: its card names no tokenizer, so its validation split is unknown")
    return load_model(tokenizer["checkpoint"]).encode_all(load_mnist("val")[0])
