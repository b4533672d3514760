"""Where the Hydra configs live, and the OmegaConf resolvers they use (one definition for every
entry point and for ``unmask.figures``).

The configs ship inside the package (``src/unmask/conf``; ``conf/`` at the top of a clone is a
link to it), so an installed ``unmask`` finds them wherever it is installed. A user's own
configs are added with Hydra's ``--config-dir DIR`` (``DIR/sampler/mine.yaml`` then answers
``sampler=mine``, and a file of the same name there overrides the shipped one).

``${unmask.steps_per_block:T,blocks}`` = ``max(1, T // blocks)`` (conf/method/semi_ar.yaml).
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

CONF_DIR = str(Path(__file__).resolve().parent / "conf")


def steps_per_block(steps: int, blocks: int) -> int:
    """A budget of ``steps`` denoiser calls split over ``blocks`` blocks, at least one each."""
    return max(1, int(steps) // int(blocks))


def register_resolvers() -> None:
    """Register the resolvers the configs use (idempotent)."""
    if not OmegaConf.has_resolver("unmask.steps_per_block"):
        OmegaConf.register_new_resolver("unmask.steps_per_block", steps_per_block)


register_resolvers()
