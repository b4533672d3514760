"""The two contracts (Denoiser, Sampler), the sampler output, and helpers every sampler shares."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch

from unmask.checks import check_integer, is_number
from unmask.samplers.arguments import check_sample_arguments, denoiser_device
from unmask.samplers.choose import flat_rows, masked_flat_rows
from unmask.samplers.logits import (
    check_cond,
    check_finite_nonnegative,
    check_guidance,
    check_logits_options,
    filter_rows,
    guided_logits,
    row_progress,
)
from unmask.samplers.rows import NonFiniteLogitsError
from unmask.samplers.schedules import check_count_rule, check_schedule, unmask_counts


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
    """What one step revealed: positions (in the order chosen) and their tokens, ``-1`` padded.

    ``kind == "remask"`` (remasking samplers): the positions were masked again and ``tokens`` are
    the tokens they held. ``block``: the block of a block-wise (semi-autoregressive) run.
    """

    step: int
    positions: torch.Tensor  # [B, k_max]
    tokens: torch.Tensor  # [B, k_max]
    substep: int = 0  # partial caching reveals a step's positions in several sub-steps
    kind: str = "reveal"
    block: int = 0


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
    """What every sampler offers: ``sample`` draws ``batch_size`` sequences from ``denoiser``.

    Its arguments are checked once, first, by ``arguments.check_sample_arguments`` (which states
    the rules). The denoiser only ever sees copies of the working tokens, so one that writes into
    its input changes neither the run nor the tokens given in ``init`` (which is copied too).
    """

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


def initial_tokens(denoiser: Denoiser, batch_size: int, init: torch.Tensor | None) -> torch.Tensor:
    """All-mask ``[B, L]`` tokens on the denoiser's device, or a copy of ``init`` there (mask id where
    to generate), from arguments ``check_sample_arguments`` has checked."""
    device = denoiser_device(denoiser)
    if init is None:
        return torch.full(
            (batch_size, denoiser.seq_len), denoiser.vocab_size, dtype=torch.long, device=device
        )
    return init.to(device=device, dtype=torch.long, copy=True)


def check_logits(logits: Any, expected: tuple[int, ...], device: torch.device, where: str) -> torch.Tensor:
    """Return ``logits`` if it is a floating tensor of shape ``expected`` on ``device`` (the tokens');
    else a ``ValueError`` saying what returned it and when (``where``, e.g. "denoiser ... at step 3")."""
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != expected:
        got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"{where.replace('...', f'returned logits of shape {got}')}; expected {expected}")
    if logits.device != device:
        raise ValueError(
            f"{where.replace('...', f'returned logits on {logits.device}')}; "
            f"expected the tokens' device {device}"
        )
    if not logits.is_floating_point():
        raise ValueError(
            f"{where.replace('...', f'returned {logits.dtype} logits')}; expected floating point"
        )
    return logits


def call_denoiser(denoiser: Denoiser, tokens: torch.Tensor, cond: Any, step: int) -> torch.Tensor:
    """Call the denoiser on a copy of ``tokens`` (one that writes into its input cannot change the
    run) and check what it returns (naming the step if wrong)."""
    expected = (*tokens.shape, denoiser.vocab_size)
    return check_logits(
        denoiser(tokens.clone(), cond), expected, tokens.device, f"denoiser ... at step {step}"
    )


def non_finite_error(err: NonFiniteLogitsError, length: int, step: int) -> ValueError:
    """Turn flat row ids into (batch, position) pairs in a message that names the step."""
    pairs = [(int(r) // length, int(r) % length) for r in err.rows[:8]]
    return ValueError(f"denoiser returned NaN or infinite logits at step {step}, (batch, position) {pairs}")


def check_common(steps: int, schedule: str, temperature: float) -> None:
    """Validate the parameters every sampler has, naming the offending one."""
    check_integer("steps", steps)
    check_schedule(schedule)
    check_temperature(temperature)


def check_temperature(temperature: float) -> None:
    """``temperature`` must be a finite number >= 0 (0 = greedy decoding)."""
    check_finite_nonnegative("temperature", temperature, "greedy: argmax tokens")
    if 0 < temperature < 1e-30:
        raise ValueError(
            f"temperature={temperature!r} is below 1e-30, where 1 / temperature overflows float32; "
            "use temperature=0 for greedy decoding"
        )


def statistics_temperature(temperature: float) -> float:
    """The temperature at which position rules compute their statistics: ``temperature``, or 1
    (the untempered law) at ``temperature = 0``, where only the tokens become argmax."""
    return temperature if temperature > 0 else 1.0


def check_positive(name: str, value: float, *, allow_inf: bool = False) -> None:
    if not is_number(value):
        raise ValueError(f"{name}={value!r} must be a number")
    if math.isnan(value) or value <= 0 or (math.isinf(value) and not allow_inf):
        bound = "in (0, inf]" if allow_inf else "positive and finite"
        raise ValueError(f"{name}={value!r} must be {bound}")


def check_steps_fit(steps: int, length: int) -> None:
    if steps > length:
        raise ValueError(f"steps={steps} exceeds the sequence length L={length}; steps must be in [1, L]")


class Trajectory:
    """Mutable state of one sampling run: tokens, the masked set, the cost so far and the trace.

    ``masked`` holds the positions the running sampler still has to reveal (inside ``region``,
    only those of the current block; the others keep the mask id, so the denoiser sees them
    masked). Every denoiser call goes through ``predict``, ``encode`` or ``refresh``, which pass the
    denoiser a copy of ``tokens``, count ``nfe`` and ``cost`` and apply the sampler's logits options
    (``options``: classifier-free guidance, top-k, top-p; see ``logits.py``), so every rule sees the
    same transformed logits.
    With guidance, the class ids come from ``cond`` (validated here) and each call runs the
    denoiser once on the doubled batch (conditional rows, then null-label rows): it counts 2.
    """

    def __init__(
        self,
        denoiser: Denoiser,
        batch_size: int,
        init: torch.Tensor | None,
        trace: bool,
        options: Any = None,
        cond: Any = None,
    ):
        self.tokens = initial_tokens(denoiser, batch_size, init)
        self.batch_size, self.length = self.tokens.shape
        self.vocab_size = denoiser.vocab_size
        self.masked = self.tokens == self.vocab_size
        self.given = ~self.masked  # tokens of ``init``: never overwritten, never remasked
        self.start_masked = self.masked.sum(dim=1)
        self.span = torch.full((self.batch_size,), self.length, dtype=torch.long, device=self.device)
        self.nfe = 0
        self.cost = 0.0
        self.block = 0
        self.records: list[StepRecord] | None = [] if trace else None
        self.temperature = getattr(options, "temperature", 1.0)
        self.top_k = getattr(options, "top_k", None)
        self.top_p = getattr(options, "top_p", None)
        self.cfg_scale = float(getattr(options, "cfg_scale", 0.0))
        self.cfg_ramp = getattr(options, "cfg_ramp", "constant")
        self.labels: torch.Tensor | None = None
        if self.cfg_scale:
            check_guidance(self.cfg_scale, denoiser)
            self.labels = check_cond(self.cfg_scale, denoiser, cond, self.batch_size).to(self.device)
            self.labels = torch.cat([self.labels, torch.full_like(self.labels, denoiser.num_classes)])

    @property
    def device(self) -> torch.device:
        return self.tokens.device

    @property
    def calls_per_forward(self) -> int:
        """Denoiser evaluations per forward: 2 with guidance (conditional and unconditional)."""
        return 1 if self.labels is None else 2

    def _guide(self, both: torch.Tensor) -> torch.Tensor:
        scale = torch.full((self.batch_size,), self.cfg_scale, dtype=torch.float64, device=self.device)
        if self.cfg_ramp == "linear":
            scale = scale * row_progress(self.tokens, self.vocab_size, self.start_masked)
        return guided_logits(both[: self.batch_size], both[self.batch_size :], scale)

    def _filter(self, logits: torch.Tensor, rows: torch.Tensor | None, where: str) -> torch.Tensor:
        """Top-k / nucleus filter of the flat ``rows`` (``None`` = the masked rows)."""
        if self.top_k is None and self.top_p is None:
            return logits
        if rows is None:
            rows = masked_flat_rows(self.masked)
        try:
            return filter_rows(
                logits,
                rows,
                top_k=self.top_k,
                top_p=self.top_p,
                temperature=statistics_temperature(self.temperature),
            )
        except NonFiniteLogitsError:
            raise ValueError(f"denoiser returned NaN or infinite logits {where}") from None

    def predict(self, denoiser: Denoiser, cond: Any, step: int) -> torch.Tensor:
        """One full forward on the current tokens, counted in ``nfe`` and ``cost``."""
        if self.labels is None:
            logits = call_denoiser(denoiser, self.tokens, cond, step)
        else:
            doubled = torch.cat([self.tokens, self.tokens])
            logits = self._guide(call_denoiser(denoiser, doubled, self.labels, step))
        self.nfe += self.calls_per_forward
        self.cost += self.calls_per_forward
        return self._filter(logits, None, f"at step {step}")

    def encode(self, denoiser: PartialDenoiser, cond: Any, step: int) -> tuple[torch.Tensor, Any]:
        """A full forward that also returns the K/V cache; counted like ``predict``."""
        tokens = self.tokens.clone() if self.labels is None else torch.cat([self.tokens, self.tokens])
        expected = (*tokens.shape, self.vocab_size)
        logits, cache = denoiser.encode(tokens, cond if self.labels is None else self.labels)
        check_logits(logits, expected, self.device, f"denoiser.encode ... at step {step}")
        if self.labels is not None:
            logits = self._guide(logits)
        self.nfe += self.calls_per_forward
        self.cost += self.calls_per_forward
        return self._filter(logits, None, f"at step {step}"), cache

    def refresh(
        self, denoiser: PartialDenoiser, rows: torch.Tensor, cache: Any, cond: Any, step: int, substep: int
    ) -> torch.Tensor:
        """Predictions at ``rows`` ``[B, q]`` from a partial forward, costing ``q / L`` per evaluation."""
        if self.labels is None:
            fresh = denoiser.refresh(self.tokens.clone(), rows, cache, cond)
        else:
            tokens, rows2 = torch.cat([self.tokens, self.tokens]), torch.cat([rows, rows])
            fresh = denoiser.refresh(tokens, rows2, cache, self.labels)
        expected = (self.batch_size * self.calls_per_forward, rows.shape[1], self.vocab_size)
        check_logits(fresh, expected, self.device, f"denoiser.refresh ... at step {step}, substep {substep}")
        if self.labels is not None:
            fresh = self._guide(fresh)
        self.cost += self.calls_per_forward * rows.shape[1] / self.length
        if self.top_k is None and self.top_p is None:
            return fresh
        every_row = torch.arange(fresh.shape[0] * fresh.shape[1], device=self.device)
        return self._filter(fresh, every_row, f"at step {step}, substep {substep}")

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
        self._record(step, positions, valid, new_tokens, substep, "reveal")

    def remask(self, step: int, positions: torch.Tensor, valid: torch.Tensor) -> None:
        """Mask the valid ``positions`` again (revealed earlier by this run, never given ones);
        traced as a ``kind="remask"`` record holding the tokens that were erased."""
        rows = flat_rows(positions, valid, self.length)
        if (self.masked.view(-1)[rows] | self.given.view(-1)[rows]).any():
            raise RuntimeError(f"step {step} tried to remask a masked or given position")
        erased = self.tokens.view(-1)[rows]
        self.tokens.view(-1)[rows] = self.vocab_size
        self.masked.view(-1)[rows] = True
        self._record(step, positions, valid, erased, 0, "remask")

    def _record(self, step, positions, valid, tokens, substep: int, kind: str) -> None:
        if self.records is not None:
            placed = torch.full(positions.shape, -1, dtype=torch.long, device=self.device)
            placed[valid] = tokens
            where = torch.where(valid, positions, -1)
            self.records.append(StepRecord(step, where, placed, substep, kind, self.block))

    @contextmanager
    def region(self, allowed: torch.Tensor, block: int) -> Iterator[None]:
        """Restrict ``masked`` to ``allowed`` (``[L]`` or ``[B, L]`` booleans) while inside: a sampler
        run in it reveals (and remasks) only there; records carry ``block``; ``span`` is the
        number of allowed positions per row (count rules of the ports are computed on it)."""
        hidden = self.masked & ~allowed
        self.masked &= allowed
        self.block = block
        whole = self.span
        self.span = allowed.expand_as(self.masked).sum(dim=1)
        try:
            yield
        finally:
            self.masked |= hidden
            self.span = whole

    def output(self) -> SampleOutput:
        if self.masked.any() or (self.tokens == self.vocab_size).any():
            raise RuntimeError("sampling ended with masked positions left")
        return SampleOutput(tokens=self.tokens, nfe=self.nfe, cost=self.cost, trace=self.records)


@dataclass(frozen=True)
class SamplerBase:
    """What every sampler has: ``temperature`` (divides the logits; 0 = greedy) and the logits options of
    ``logits.py``: ``cfg_scale`` (classifier-free guidance, 0 = off), ``cfg_ramp`` (``constant`` or
    ``linear`` in the row's progress), ``top_k`` and ``top_p`` (None = off).

    ``sample`` checks its arguments and the denoiser, builds a ``Trajectory`` and runs ``generate``
    on it, which reveals every position ``run.masked`` holds; block-wise generation (``semi_ar``)
    calls ``generate`` once per block on one shared trajectory.
    """

    temperature: float = 1.0
    cfg_scale: float = 0.0
    cfg_ramp: str = "constant"
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        check_temperature(self.temperature)
        check_logits_options(self.cfg_scale, self.cfg_ramp, self.top_k, self.top_p)

    @property
    def greedy(self) -> bool:
        """``temperature = 0``: argmax tokens, position rules without their noise (on the
        untempered law), ties broken by the lowest position."""
        return self.temperature == 0

    @property
    def stats_temperature(self) -> float:
        return statistics_temperature(self.temperature)

    def for_denoiser(self, denoiser: Denoiser) -> SamplerBase:
        """This sampler with what it reads from the denoiser filled in (a grid, say)."""
        return self

    def check_denoiser(self, denoiser: Denoiser) -> None:
        """Checks that depend on the denoiser, before any compute."""
        check_guidance(self.cfg_scale, denoiser)

    def generate(self, run: Trajectory, denoiser: Denoiser, cond: Any, generator: torch.Generator) -> None:
        """Reveal every position in ``run.masked`` (the sampler's loop)."""
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
        check_sample_arguments(denoiser, batch_size, generator, cond, init, trace)
        sampler = self.for_denoiser(denoiser)
        sampler.check_denoiser(denoiser)
        run = Trajectory(denoiser, batch_size, init, trace, options=sampler, cond=cond)
        sampler.generate(run, denoiser, cond, generator)
        return run.output()


@dataclass(frozen=True)
class StepSampler(SamplerBase):
    """Plumbing shared by samplers that reveal ``k_t`` positions per step from one denoiser call.

    ``generate`` runs: counts ``k = unmask_plan(...)`` (``[B, T]``, from ``schedule`` and the count
    rule ``counts``); for each step with any
    ``k_t > 0``: one denoiser call, then ``step`` returns the positions (best first) and their
    tokens, which are committed. Subclasses implement ``step`` (a pure function of the logits, the
    masked set, the counts and the generator) and may override ``unmask_plan`` and ``reveal``
    (partial caching replaces the one-call step by encode, choose, and refreshes).
    """

    steps: int = 8
    schedule: str = "cosine"
    counts: str = "unmask"

    def __post_init__(self) -> None:
        super().__post_init__()
        check_common(self.steps, self.schedule, self.temperature)
        check_count_rule(self.counts, self.schedule)

    def unmask_plan(
        self, num_masked: torch.Tensor, generator: torch.Generator, span: torch.Tensor
    ) -> torch.Tensor:
        """``[B, T]`` positions to reveal per step: the count rule ``counts`` on ``schedule``
        (``schedules.py``) for rows with ``num_masked`` masked out of ``span`` positions."""
        return unmask_counts(num_masked, self.steps, self.schedule, self.counts, span)

    def check_denoiser(self, denoiser: Denoiser) -> None:
        super().check_denoiser(denoiser)
        self.check_length(denoiser.seq_len)

    def check_length(self, length: int) -> None:
        """Checks on the number of positions one run (or one block) reveals."""
        check_steps_fit(self.steps, length)

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

    def generate(self, run: Trajectory, denoiser: Denoiser, cond: Any, generator: torch.Generator) -> None:
        counts = self.unmask_plan(run.masked.sum(dim=1), generator, run.span).to(run.device)
        for step in range(counts.shape[1]):
            k = counts[:, step]
            if bool(k.any()):
                self.reveal(run, denoiser, cond, k, step, generator)

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
