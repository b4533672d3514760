"""Samples from the shipped checkpoints, as shown in the README.

    python experiments/samples.py            # writes experiments/results/samples_mnist.png
                                             # and experiments/results/samples_shakespeare.md

Everything comes from ``unmask.samplers`` on the shipped models (no network): MNIST with
``moment`` (alpha 4.5) and ``maskgit`` (alpha 4.5) at 12 steps, and untempered ``random`` at 49
steps; Shakespeare with ``moment`` (alpha 4.5) at 32 steps and untempered ``random`` at 128 steps.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from unmask.models.pretrained import load_denoiser
from unmask.samplers import build

RESULTS = Path(__file__).resolve().parent / "results"


def mnist_grid(out: Path, per_row: int = 16) -> None:
    model = load_denoiser("mnist")
    rows = [
        ("moment, 12 steps", build("moment", steps=12, alpha=4.5)),
        ("maskgit, 12 steps", build("maskgit", steps=12, alpha=4.5)),
        ("random (T=1), 49 steps", build("random", steps=49)),
    ]
    fig, axes = plt.subplots(len(rows), 1, figsize=(per_row * 0.6, len(rows) * 0.9))
    for axis, (title, sampler) in zip(axes, rows, strict=True):
        tokens = sampler.sample(model, per_row, generator=torch.Generator().manual_seed(0)).tokens
        images = model.decode(tokens)  # [n, 28, 28]
        axis.imshow(torch.cat(list(images), dim=1).numpy(), cmap="gray", vmin=0, vmax=1)
        axis.set_title(title, fontsize=8, loc="left")
        axis.axis("off")
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)


def shakespeare_text(out: Path, count: int = 3) -> None:
    model = load_denoiser("shakespeare")
    lines = ["# Shakespeare samples (shipped character model, L = 128)", ""]
    for title, sampler in (
        ("moment, alpha 4.5, 32 steps", build("moment", steps=32, alpha=4.5)),
        ("random at temperature 1, 128 steps", build("random", steps=128)),
    ):
        tokens = sampler.sample(model, count, generator=torch.Generator().manual_seed(0)).tokens
        lines += [f"## {title}", ""]
        for text in model.decode(tokens):
            lines += ["```", text, "```", ""]
    out.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_grad_enabled(False)
    mnist_grid(args.out / "samples_mnist.png")
    shakespeare_text(args.out / "samples_shakespeare.md")


if __name__ == "__main__":
    main()
