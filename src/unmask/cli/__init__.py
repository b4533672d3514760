"""Command-line entry points (thin: compose the config, call the library, write results).

Importing this package registers the OmegaConf resolvers that the configs use:
``${unmask.steps_per_block:T,blocks}`` = ``max(1, T // blocks)`` (conf/method/semi_ar.yaml).
"""

from omegaconf import OmegaConf


def steps_per_block(steps: int, blocks: int) -> int:
    """A budget of ``steps`` denoiser calls split over ``blocks`` blocks, at least one each."""
    return max(1, int(steps) // int(blocks))


if not OmegaConf.has_resolver("unmask.steps_per_block"):
    OmegaConf.register_new_resolver("unmask.steps_per_block", steps_per_block)
