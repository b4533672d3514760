"""What a run takes from its data rather than from its sampler: the ``dataset`` config group
(``conf/dataset/<name>.yaml``, one file per dataset; ``unmask-eval`` picks the one named like
the model unless ``dataset=<name>`` is given).

A dataset fixes the geometry the samplers read (an image's token ``grid``, the exploration order
of the hybrid sampler, the blocks of the semi-autoregressive samplers), how many samples a run
draws at each ``scale`` (``quick`` for ``make run``, ``cpu`` for the CPU figures, ``paper`` for a
cluster), and the reference statistics of its metrics (``reference``: the data the FIDs compare
to: ``mnist`` for ``fid_mnist`` / ``fid_inception``, or the path of a file for ``fid``, see
``unmask.metrics.reference``; for text, the real text that ``gen_ppl`` scores beside the samples:
``shakespeare``, the held-out plays, or the path of a ``.txt`` file). ``check(model)`` refuses a
dataset that does not fit the model, before any compute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from unmask.checks import check_integer

EXPLORE_ORDERS = ("halton", "random")
REFERENCES = (None, "mnist", "shakespeare")  # shipped references (docs/ASSETS.md); any other string is a path


@dataclass(frozen=True)
class DatasetSpec:
    """The data-dependent settings of a run (see the module docstring).

    ``grid``: ``(H, W)`` of an image's tokens, ``None`` for sequences. ``explore``: the hybrid
    sampler's default exploration order (``halton`` on a grid, ``random`` on text).
    ``block_length``: the blocks of ``semi_ar`` (``None`` = one block). ``llada_block_length``:
    the blocks of the LLaDA variants (LLaDA needs the steps to be a multiple of the blocks, so an
    image row of 7 does not fit budgets of 4, 8, 16). ``samples``: ``{scale: {num_samples,
    batch_size}}``. ``path``: the data file the conditioning reads (a JSONL of prompts, a token
    array). ``conditioning``: where the samples' conditioning comes from
    (``unmask.data.conditioning``: ``PromptFile``, ``Infill``; ``None`` = unconditional).
    ``class_label``: the default of the run's ``class_label`` (``cycle``, a class id or
    ``None``) for a class-conditional model."""

    name: str
    grid: tuple[int, int] | None = None
    explore: str = "random"
    block_length: int | None = None
    llada_block_length: int | None = None
    reference: str | None = None
    samples: dict[str, dict[str, int]] = field(default_factory=dict)
    path: str | None = None
    conditioning: Any = None
    class_label: int | str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"dataset.name={self.name!r} must be a non-empty string")
        if self.grid is not None:
            grid = tuple(self.grid)
            if len(grid) != 2:
                raise ValueError(f"dataset.grid={list(grid)} must be [H, W] or null")
            for value in grid:
                check_integer("dataset.grid", value)
            object.__setattr__(self, "grid", grid)
        if self.explore not in EXPLORE_ORDERS:
            raise ValueError(f"dataset.explore={self.explore!r} must be one of {', '.join(EXPLORE_ORDERS)}")
        for key in ("block_length", "llada_block_length"):
            if getattr(self, key) is not None:
                check_integer(f"dataset.{key}", getattr(self, key))
        is_path = isinstance(self.reference, str) and bool(self.reference.strip())
        if self.reference not in REFERENCES and not is_path:
            raise ValueError(
                f"dataset.reference={self.reference!r} must be null, mnist, shakespeare or the path of a "
                "reference file (.npz with mu and sigma, or with images arr_0; a folder of images; a .txt)"
            )
        if self.conditioning is not None and not callable(getattr(self.conditioning, "prepare", None)):
            raise ValueError(
                f"dataset.conditioning={self.conditioning!r} must be null or a conditioning config "
                "(_target_: unmask.data.conditioning.PromptFile or unmask.data.conditioning.Infill)"
            )
        if self.path is not None and not isinstance(self.path, str):
            raise ValueError(f"dataset.path={self.path!r} must be a file path or null")
        samples = {str(scale): dict(sizes) for scale, sizes in dict(self.samples).items()}
        for scale, sizes in samples.items():
            if set(sizes) != {"num_samples", "batch_size"}:
                raise ValueError(f"dataset.samples.{scale} must hold exactly num_samples and batch_size")
            for key, value in sizes.items():
                check_integer(f"dataset.samples.{scale}.{key}", value)
        object.__setattr__(self, "samples", samples)

    def check(self, model: Any) -> None:
        """``ValueError`` naming the key if this dataset does not fit ``model``: a grid of another
        size or shape than the model's, a block length that does not divide its length."""
        length = model.seq_len
        model_grid = getattr(model, "grid", None)
        if self.grid is not None and self.grid[0] * self.grid[1] != length:
            raise ValueError(f"dataset.grid={list(self.grid)} does not have the model's L={length} cells")
        if self.grid is not None and model_grid is not None and tuple(model_grid) != self.grid:
            raise ValueError(
                f"dataset.grid={list(self.grid)} differs from the model's grid {list(model_grid)}"
            )
        for key in ("block_length", "llada_block_length"):
            value = getattr(self, key)
            if value is not None and length % value:
                raise ValueError(f"dataset.{key}={value} must divide the model's L={length}")

    def geometry(self, model: Any) -> tuple[int, int] | None:
        """The grid the samplers use: the dataset's, else the model's (``None``: 1-D)."""
        model_grid = getattr(model, "grid", None)
        return self.grid or (tuple(model_grid) if model_grid is not None else None)

    def prepared_conditioning(self, model: Any) -> Any:
        """The conditioning, loaded and checked against ``model`` (``None`` if there is none)."""
        if self.conditioning is None:
            return None
        return self.conditioning.prepare(model, self.path, self.geometry(model))
