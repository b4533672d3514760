"""Per-row statistics and exact categorical draws over the masked rows of ``[B, L, V]`` logits.

Every sampler needs, for the masked rows only, a few numbers per row (the log-normaliser, the top
probability, a moment) and token draws for some rows. Samplers in public repos compute these with
whole-tensor ops on all ``B * L`` rows (``log_softmax``, ``softmax``, a float32 Gumbel tensor, a
cumulative sum), each allocating a fresh ``[B, L, V]`` tensor. Here the selected rows are
gathered in chunks of at most 2**20 elements into two reused work buffers and reduced in place,
so the cost is proportional to the rows that matter and the extra memory is two chunks, not a
copy of the logits.

Exact draws (two-level inverse CDF). For a row with shifted scaled logits ``x_v`` (max 0), the
weights ``e_v = exp(x_v)`` are float32 (relative error ~1e-7 each, no tail truncation down to
~1e-38). The row is cut into blocks of ``b`` tokens; with a float64 uniform ``u`` and float64
cumulative block masses, the block is located, then the token inside the block by a float64
cumulative sum of that block's weights. The law of the draw is ``e_v / sum(e)`` up to the float32
rounding of each ``e_v`` and of the block sums (relative error ~1e-6 per token) and the 2**-53
resolution of ``u``; no float64 copy of anything larger than ``[rows, V / b]`` is made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

CHUNK_ELEMENTS = 1 << 20  # 4 MiB of float32 per work buffer: few chunks, bounded memory
_PAD = torch.finfo(torch.float32).min  # exp() of a padded column is exactly 0


def block_size(vocab_size: int) -> int:
    """Block width for two-level draws: ~sqrt(V), at least 16, a power of two."""
    return max(16, 1 << round(math.log2(max(vocab_size, 1)) / 2))


@dataclass
class RowStats:
    """Statistics of ``softmax(z / temperature)`` for each selected row, as float64 tensors
    (row sums are accumulated in float32: relative error ~1e-6).

    ``log_norm``: ``log sum_v exp((z_v - max z) / temperature)`` (so log p_max = -log_norm);
    the optional fields are filled when asked for.
    """

    log_norm: torch.Tensor
    log_moment: torch.Tensor | None = None  # log sum_v p_v**beta
    margin: torch.Tensor | None = None  # p_top1 - p_top2
    entropy: torch.Tensor | None = None  # -sum_v p_v log p_v
    argmax: torch.Tensor | None = None  # long: the first most probable token


class NonFiniteLogitsError(ValueError):
    """Raised when a selected row of the logits has NaN or +inf, or no finite entry."""

    def __init__(self, rows: torch.Tensor):
        self.rows = rows
        super().__init__(f"non-finite logits at flat rows {rows[:8].tolist()}")


class _ChunkWorker:
    """Gathers selected rows of a flat ``[R, V]`` logits view into two reused float32 buffers.

    The buffers are ``[chunk_rows, padded]`` with ``padded`` a multiple of the draw block size;
    padded columns hold a huge negative so that their ``exp`` is exactly 0.
    """

    def __init__(self, flat_logits: torch.Tensor, temperature: float, num_rows: int):
        self.flat = flat_logits
        self.vocab = flat_logits.shape[1]
        self.block = block_size(self.vocab)
        self.num_blocks = -(-self.vocab // self.block)
        self.padded = self.num_blocks * self.block
        self.chunk_rows = max(1, min(num_rows, CHUNK_ELEMENTS // self.padded))
        self.inv_temperature = 1.0 / temperature
        shape = (self.chunk_rows, self.padded)
        self.x = torch.empty(shape, dtype=torch.float32, device=flat_logits.device)
        self.e = torch.empty_like(self.x)
        if self.padded > self.vocab:
            self.x[:, self.vocab :] = _PAD
        self._direct = self.padded == self.vocab and flat_logits.dtype == torch.float32

    def chunks(self, rows: torch.Tensor, argmax: torch.Tensor | None = None):
        """Yield ``(slice into rows, x, e)`` with ``x = (z - max z) / temperature`` per row;
        with ``argmax`` (a long ``[len(rows)]`` tensor), also fill it with each row's first
        argmax, from the same pass that finds the max."""
        for start in range(0, rows.shape[0], self.chunk_rows):
            chunk = rows[start : start + self.chunk_rows]
            c = chunk.shape[0]
            x, e = self.x[:c], self.e[:c]
            real = x[:, : self.vocab]
            if self._direct:
                torch.index_select(self.flat, 0, chunk, out=real)
            else:
                real.copy_(self.flat.index_select(0, chunk))
            if argmax is None:
                real.sub_(real.amax(dim=1, keepdim=True))
            else:
                top, where = real.max(dim=1, keepdim=True)
                argmax[start : start + c] = where.squeeze(1)
                real.sub_(top)
            if self.inv_temperature != 1.0:
                real.mul_(self.inv_temperature)
            yield slice(start, start + c), chunk, x, e


def _check_finite(log_norm: torch.Tensor, rows: torch.Tensor) -> None:
    bad = ~torch.isfinite(log_norm)
    if bad.any():
        raise NonFiniteLogitsError(rows[bad])


def row_stats(
    logits: torch.Tensor,
    rows: torch.Tensor,
    *,
    temperature: float = 1.0,
    moment_beta: float | None = None,
    margin: bool = False,
    entropy: bool = False,
    argmax: bool = False,
) -> RowStats:
    """Statistics of ``softmax(logits / temperature)`` at the flat ``rows`` of ``[B, L, V]`` logits.

    ``moment_beta``: also ``log m(beta) = log sum_v p_v**beta``
    ``= log sum exp(beta * x) - beta * log sum exp(x)`` with ``x = (z - max z) / temperature``;
    ``beta = inf`` gives ``beta * log p_max`` scaled away, so ``log_moment = log p_max`` then
    (the ordering it induces is the ``beta -> inf`` limit).
    """
    flat = logits.reshape(-1, logits.shape[-1])
    n = rows.shape[0]
    worker = _ChunkWorker(flat, temperature, n)
    out = RowStats(log_norm=torch.empty(n, dtype=torch.float64, device=flat.device))
    if moment_beta is not None:
        out.log_moment = torch.empty_like(out.log_norm)
    if margin:
        out.margin = torch.empty_like(out.log_norm)
    if entropy:
        out.entropy = torch.empty_like(out.log_norm)
    if argmax:
        out.argmax = torch.empty(n, dtype=torch.long, device=flat.device)
    for sl, _chunk, x, e in worker.chunks(rows, out.argmax):
        torch.exp(x, out=e)
        s1 = e.sum(dim=1).double()
        log_s1 = s1.log()
        out.log_norm[sl] = log_s1
        if out.log_moment is not None:
            if math.isinf(moment_beta):
                out.log_moment[sl] = -log_s1
            else:
                torch.mul(x, moment_beta, out=e)
                e.exp_()
                out.log_moment[sl] = e.sum(dim=1).double().log() - moment_beta * log_s1
        if out.margin is not None:
            second = (
                x.topk(2, dim=1).values[:, 1].double() if x.shape[1] > 1 else torch.full_like(s1, -math.inf)
            )
            out.margin[sl] = (1.0 - second.exp()) / s1
        if out.entropy is not None:
            torch.exp(x, out=e)
            e.mul_(x.clamp_(min=_PAD))
            out.entropy[sl] = log_s1 - e.sum(dim=1).double() / s1
    _check_finite(out.log_norm, rows)
    return out


def log_prob_at(logits: torch.Tensor, rows: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Float64 ``log softmax(logits)[row, token]`` (untempered) of one token per flat row."""
    flat = logits.reshape(-1, logits.shape[-1])
    worker = _ChunkWorker(flat, 1.0, rows.shape[0])
    out = torch.empty(rows.shape[0], dtype=torch.float64, device=flat.device)
    for sl, chunk, x, e in worker.chunks(rows):
        torch.exp(x, out=e)
        log_s1 = e.sum(dim=1).double().log()
        _check_finite(log_s1, chunk)
        out[sl] = x.gather(1, tokens[sl, None]).squeeze(1).double() - log_s1
    return out


def draw_rows(
    logits: torch.Tensor,
    rows: torch.Tensor,
    uniforms: torch.Tensor,
    *,
    temperature: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact draws from ``softmax(logits / temperature)`` at the flat ``rows``.

    ``temperature = 0`` gives the argmax. ``uniforms`` is a float64 ``[len(rows)]`` tensor in
    (0, 1), one per row, so the draw does not depend on the chunking.

    Returns ``(tokens, log_prob)``: long ``[n]`` and the float64 log-probability of each drawn
    token under ``softmax(logits / temperature)`` (0 for argmax draws).
    """
    flat = logits.reshape(-1, logits.shape[-1])
    n = rows.shape[0]
    tokens = torch.empty(n, dtype=torch.long, device=flat.device)
    log_prob = torch.zeros(n, dtype=torch.float64, device=flat.device)
    if temperature == 0.0:
        for start in range(0, n, max(1, CHUNK_ELEMENTS // flat.shape[1])):
            chunk = rows[start : start + max(1, CHUNK_ELEMENTS // flat.shape[1])]
            sel = flat.index_select(0, chunk)
            if not torch.isfinite(sel.amax(dim=1)).all():
                raise NonFiniteLogitsError(chunk)
            tokens[start : start + chunk.shape[0]] = sel.argmax(dim=1)
        return tokens, log_prob
    worker = _ChunkWorker(flat, temperature, n)
    b, nb = worker.block, worker.num_blocks
    for sl, chunk, x, e in worker.chunks(rows):
        c = chunk.shape[0]
        torch.exp(x, out=e)
        block_mass = e.view(c, nb, b).sum(dim=2).double()  # [c, nb]
        cum = block_mass.cumsum(dim=1)
        total = cum[:, -1]
        _check_finite(total.log(), chunk)
        target = uniforms[sl] * total
        j = torch.searchsorted(cum, target[:, None], right=True).squeeze(1).clamp_(max=nb - 1)
        before = torch.where(j > 0, cum.gather(1, (j - 1).clamp(min=0)[:, None]).squeeze(1), 0.0)
        frac = ((target - before) / block_mass.gather(1, j[:, None]).squeeze(1)).clamp_(0.0, 1.0)
        inside = e.view(c, nb, b)[torch.arange(c, device=e.device), j].double()  # [c, b]
        inside_cum = inside.cumsum(dim=1)
        where = frac * inside_cum[:, -1]
        i = torch.searchsorted(inside_cum, where[:, None], right=True).squeeze(1).clamp_(max=b - 1)
        # rounding can push ``where`` onto the block total: take the last positive weight then
        last_positive = (inside > 0).long().mul_(torch.arange(1, b + 1, device=e.device)).argmax(dim=1)
        i = torch.where(inside.gather(1, i[:, None]).squeeze(1) > 0, i, last_positive)
        token = j * b + i
        tokens[sl] = token
        log_prob[sl] = x.gather(1, token[:, None]).squeeze(1).double() - total.log()
    return tokens, log_prob
