"""The two contracts (Denoiser, Sampler), the sampler output, and helpers every sampler shares."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from unmask.samplers.choose import flat_rows
from unmask.samplers.rows import NonFiniteLogitsError
from unmask.samplers.schedules import check_schedule, unmask_counts


@runtime_checkable
class Denoiser(Protocol):
    """A masked-diffusion denoiser.

    Real tokens are ``0 .. vocab_size - 1``; the mask id is ``vocab_size``. ``tokens`` is
    ``[B, L]`` with the mask id at masked positions; the result is logits ``[B, L, vocab_size]``.
    """

    vocab_size: int
    seq_len: int

    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor: ...


@runtime_checkable
class PartialDenoiser(Denoiser, Protocol):
    """Optional capability used by partial caching: recompute only some rows."""

    def encode(self, tokens: torch.Tensor, cond: Any | None = None) -> tuple[torch.Tensor, Any]: ...

    def refresh(
        self, tokens: torch.Tensor, rows: torch.Tensor, cache: Any, cond: Any | None = None
    ) -> torch.Tensor: ...


@dataclass
class StepRecord:
    """What one step revealed: positions (in the order chosen) and their tokens, ``-1`` padded."""

    step: int
    positions: torch.Tensor  # [B, k_max]
    tokens: torch.Tensor  # [B, k_max]
    substep: int = 0  # partial caching reveals a step's positions in several sub-steps


@dataclass
class SampleOutput:
    """Result of ``Sampler.sample``.

    ``nfe``: full denoiser calls. ``cost``: full-forward equivalents (a partial refresh of q rows
    counts q / L). ``trace``: one ``StepRecord`` per step when asked for.
    """

    tokens: torch.Tensor
    nfe: int
    cost: float
    trace: list[StepRecord] | None = field(default=None)


class Sampler(Protocol):
    def sample(
        self,
        denoiser: Denoiser,
        batch_size: int,
        *,
        generator: torch.Generator,
        cond: Any | None = None,
        init: torch.Tensor | None = None,
        trace: bool = False,
    ) -> SampleOutput: ...


def denoiser_device(denoiser: Denoiser) -> torch.device:
    """The device of a denoiser: its ``device`` attribute, its first parameter, or the CPU."""
    device = getattr(denoiser, "device", None)
    if device is not None:
        return torch.device(device)
    parameters = getattr(denoiser, "parameters", None)
    if callable(parameters):
        for p in parameters():
            return p.device
    return torch.device("cpu")


def initial_tokens(denoiser: Denoiser, batch_size: int, init: torch.Tensor | None) -> torch.Tensor:
    """All-mask ``[B, L]`` tokens, or a validated copy of ``init`` (mask id where to generate)."""
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    length, vocab = denoiser.seq_len, denoiser.vocab_size
    device = denoiser_device(denoiser)
    if init is None:
        return torch.full((batch_size, length), vocab, dtype=torch.long, device=device)
    if init.shape != (batch_size, length):
        raise ValueError(
            f"init has shape {tuple(init.shape)}; expected (batch_size, seq_len) = ({batch_size}, {length})"
        )
    if init.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
        raise ValueError(f"init must be an integer tensor, got {init.dtype}")
    if ((init < 0) | (init > vocab)).any():
        raise ValueError(f"init holds ids outside 0..{vocab} (mask id = vocab_size = {vocab})")
    return init.to(device=device, dtype=torch.long).clone()


def check_logits(logits: Any, expected: tuple[int, ...], where: str) -> torch.Tensor:
    """Return ``logits`` if it is a floating tensor of shape ``expected``; else a ``ValueError``
    saying what returned it and when (``where``, e.g. "denoiser ... at step 3")."""
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{where.replace('...', f'returned logits of shape {got}')}; expected {expected}")
    if not logits.is_floating_point():
        raise ValueError(
            f"{where.replace('...', f'returned {logits.dtype} logits')}; expected floating point"
        )
    return logits


def call_denoiser(denoiser: Denoiser, tokens: torch.Tensor, cond: Any, step: int) -> torch.Tensor:
    """Call the denoiser and check the shape of what it returns (naming the step if wrong)."""
    expected = (*tokens.shape, denoiser.vocab_size)
    return check_logits(denoiser(tokens, cond), expected, f"denoiser ... at step {step}")


def non_finite_error(err: NonFiniteLogitsError, length: int, step: int) -> ValueError:
    """Turn flat row ids into (batch, position) pairs in a message that names the step."""
    pairs = [(int(r) // length, int(r) % length) for r in err.rows[:8]]
    return ValueError(f"denoiser returned NaN or infinite logits at step {step}, (batch, position) {pairs}")


def check_common(steps: int, schedule: str, temperature: float) -> None:
    """Validate the parameters every sampler has, naming the offending one."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps={steps!r} must be an integer >= 1")
    check_schedule(schedule)
    check_positive("temperature", temperature)


def check_positive(name: str, value: float, *, allow_inf: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}={value!r} must be a number")
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        bound = "in (0, inf]" if allow_inf else "positive and finite"
        raise ValueError(f"{name}={value!r} must be {bound}")


def check_steps_fit(steps: int, length: int) -> None:
    if steps > length:
        raise ValueError(f"steps={steps} exceeds the sequence length L={length}; steps must be in [1, L]")


class Trajectory:
    """Mutable state of one sampling run: tokens, the masked set, the cost so far and the trace."""

    def __init__(self, denoiser: Denoiser, batch_size: int, init: torch.Tensor | None, trace: bool):
        self.tokens = initial_tokens(denoiser, batch_size, init)
        self.batch_size, self.length = self.tokens.shape
        self.vocab_size = denoiser.vocab_size
        self.masked = self.tokens == self.vocab_size
        self.nfe = 0
        self.cost = 0.0
        self.records: list[StepRecord] | None = [] if trace else None

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    def predict(self, denoiser: Denoiser, cond: Any, step: int) -> torch.Tensor:
        """One full denoiser call on the current tokens, counted in ``nfe`` and ``cost``."""
        logits = call_denoiser(denoiser, self.tokens, cond, step)
        self.nfe += 1
        self.cost += 1.0
        return logits

    def encode(self, denoiser: PartialDenoiser, cond: Any, step: int) -> tuple[torch.Tensor, Any]:
        """A full forward that also returns the K/V cache; counted like ``predict``."""
        logits, cache = denoiser.encode(self.tokens, cond)
        expected = (self.batch_size, self.length, self.vocab_size)
        check_logits(logits, expected, f"denoiser.encode ... at step {step}")
        self.nfe += 1
        self.cost += 1.0
        return logits, cache

    def refresh(
        self, denoiser: PartialDenoiser, rows: torch.Tensor, cache: Any, cond: Any, step: int, substep: int
    ) -> torch.Tensor:
        """Predictions at ``rows`` ``[B, q]`` from a partial forward, costing ``q / L``."""
        fresh = denoiser.refresh(self.tokens, rows, cache, cond)
        expected = (self.batch_size, rows.shape[1], self.vocab_size)
        check_logits(fresh, expected, f"denoiser.refresh ... at step {step}, substep {substep}")
        self.cost += rows.shape[1] / self.length
        return fresh

    def commit(
        self,
        step: int,
        positions: torch.Tensor,
        valid: torch.Tensor,
        new_tokens: torch.Tensor,
        substep: int = 0,
    ) -> None:
        """Write ``new_tokens`` (one per valid entry, row-major) at ``positions`` and unmask them."""
        rows = flat_rows(positions, valid, self.length)
        if self.masked.view(-1)[rows].logical_not().any():
            raise RuntimeError(f"step {step} tried to overwrite an unmasked position")
        self.tokens.view(-1)[rows] = new_tokens
        self.masked.view(-1)[rows] = False
        if self.records is not None:
            placed = torch.full(positions.shape, -1, dtype=torch.long, device=self.device)
            placed[valid] = new_tokens
            self.records.append(StepRecord(step, torch.where(valid, positions, -1), placed, substep))

    def output(self) -> SampleOutput:
        if self.masked.any():
            raise RuntimeError("sampling ended with masked positions left")
        return SampleOutput(tokens=self.tokens, nfe=self.nfe, cost=self.cost, trace=self.records)


@dataclass(frozen=True)
class StepSampler:
    """Plumbing shared by samplers that reveal ``k_t`` positions per step from one denoiser call.

    ``sample`` runs: counts ``k = unmask_plan(...)`` (``[B, T]``); for each step with any
    ``k_t > 0``: one denoiser call, then ``step`` returns the positions (best first) and their
    tokens, which are committed. Subclasses implement ``step`` (a pure function of the logits, the
    masked set, the counts and the generator) and may override ``unmask_plan`` and ``reveal``
    (partial caching replaces the one-call step by encode, choose, and refreshes).
    """

    steps: int = 8
    schedule: str = "cosine"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        check_common(self.steps, self.schedule, self.temperature)

    def unmask_plan(self, num_masked: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """``[B, T]`` positions to reveal per step (default: the deterministic schedule)."""
        return unmask_counts(num_masked, self.steps, self.schedule)

    def check_denoiser(self, denoiser: Denoiser) -> None:
        """Checks that depend on the denoiser, before any compute."""
        check_steps_fit(self.steps, denoiser.seq_len)

    def step(
        self,
        logits: torch.Tensor,
        masked: torch.Tensor,
        counts: torch.Tensor,
        step: int,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(positions [B, k_max], valid [B, k_max], tokens [n_valid])`` for one step."""
        raise NotImplementedError

    def sample(
        self,
        denoiser: Denoiser,
        batch_size: int,
        *,
        generator: torch.Generator,
        cond: Any | None = None,
        init: torch.Tensor | None = None,
        trace: bool = False,
    ) -> SampleOutput:
        self.check_denoiser(denoiser)
        run = Trajectory(denoiser, batch_size, init, trace)
        counts = self.unmask_plan(run.masked.sum(dim=1), generator).to(run.device)
        for step in range(counts.shape[1]):
            k = counts[:, step]
            if bool(k.any()):
                self.reveal(run, denoiser, cond, k, step, generator)
        return run.output()

    def reveal(
        self, run: Trajectory, denoiser: Denoiser, cond: Any, counts: torch.Tensor, step: int, generator
    ) -> None:
        """One step: a full denoiser call, ``self.step``, commit (partial caching overrides this)."""
        logits = run.predict(denoiser, cond, step)
        try:
            positions, valid, tokens = self.step(logits, run.masked, counts, step, generator)
        except NonFiniteLogitsError as err:
            raise non_finite_error(err, run.length, step) from None
        run.commit(step, positions, valid, tokens)
