"""Exact denoisers for synthetic laws.

Each oracle knows its joint law exactly and returns, for every position of a partially masked
batch, the exact conditional ``p(x_i | observed tokens)`` as logits (``log`` of the
probabilities). Samplers driven by an oracle have no model error, so their sampling error can be
measured on its own. Each oracle also provides ``log_prob(x)`` and ``sample(n, generator)``, and
the partial-caching capability (``encode``/``refresh``) exactly: refreshed rows are the exact
conditionals given everything observed.
``ProductMixture`` and ``HiddenMarkov`` also draw every masked position jointly from its exact
conditional law given the observed ones (``sample_given``).

- ``TabularJoint``: any joint on ``V**L`` sequences (tiny L and V), by enumeration.
- ``ProductMixture``: a mixture of product laws on an ``H x W`` grid (image-like); exact
  posterior over the components.
- ``HiddenMarkov``: a hidden Markov law on sequences (text-like); forward-backward with arbitrary
  observed positions. A Markov chain is the special case with identity emissions.
- ``ClassConditionalJoint``: tabular laws ``p(x | c)`` for ``num_classes`` classes, for
  classifier-free guidance: ``cond`` = class ids ``[B]``, the null id ``num_classes`` (or
  ``cond=None``) gives the marginal ``sum_c w_c p(x | c)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from unmask.checks import check_integer, is_number


def categorical64(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One exact draw per row of float64 probabilities ``[n, K]`` (inverse CDF, float64 uniform)."""
    cum = probs.cumsum(dim=1)
    u = torch.rand(probs.shape[0], 1, dtype=torch.float64, generator=generator, device=probs.device)
    idx = torch.searchsorted(cum, u * cum[:, -1:], right=True)
    return idx.squeeze(1).clamp_(max=probs.shape[1] - 1)


def log_matmul(log_x: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``log(exp(log_x) @ matrix)`` for non-negative ``matrix``, scaled by the row maxima of
    ``log_x`` (a row of -inf stays -inf): a log-sum-exp through one matrix product."""
    peak = log_x.amax(dim=-1, keepdim=True)
    peak = torch.where(torch.isfinite(peak), peak, 0.0)
    return torch.log(torch.exp(log_x - peak) @ matrix) + peak


def _logits(log_probs: torch.Tensor) -> torch.Tensor:
    return log_probs.to(torch.float32)


def check_sizes(**sizes: tuple[int, int]) -> None:
    """``name=(value, minimum)``: each an integer >= its minimum, else a ValueError naming it."""
    for name, (value, minimum) in sizes.items():
        check_integer(name, value, minimum)


def check_concentration(concentration: float) -> None:
    if not is_number(concentration) or not concentration > 0:
        raise ValueError(f"concentration={concentration!r} must be a positive number")


class _Oracle:
    """Shared plumbing: the mask id, the device, and exact partial refresh."""

    vocab_size: int
    seq_len: int
    device = torch.device("cpu")

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    def conditionals(self, tokens: torch.Tensor) -> torch.Tensor:
        """Float64 log p(x_i = v | observed) ``[B, L, V]``."""
        raise NotImplementedError

    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        return _logits(self.conditionals(tokens))

    def encode(self, tokens: torch.Tensor, cond: Any | None = None) -> tuple[torch.Tensor, None]:
        return self(tokens, cond), None

    def refresh(
        self, tokens: torch.Tensor, rows: torch.Tensor, cache: Any, cond: Any | None = None
    ) -> torch.Tensor:
        """Exact conditionals at ``rows`` (``[B, q]`` positions) given the current tokens."""
        full = self(tokens, cond)
        return full.gather(1, rows[:, :, None].expand(-1, -1, full.shape[2]))


class TabularJoint(_Oracle):
    """An arbitrary joint law over ``V**L`` sequences, stored as a table (row-major index)."""

    def __init__(self, probs: torch.Tensor, vocab_size: int, seq_len: int):
        probs = probs.reshape(-1).to(torch.float64)
        if probs.numel() != vocab_size**seq_len:
            raise ValueError(
                f"probs has {probs.numel()} entries; expected vocab_size**seq_len = {vocab_size**seq_len}"
            )
        if (probs < 0).any() or not math.isclose(float(probs.sum()), 1.0, rel_tol=1e-9):
            raise ValueError("probs must be non-negative and sum to 1")
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.probs = probs
        digits = (
            torch.arange(probs.numel())[:, None] // vocab_size ** torch.arange(seq_len - 1, -1, -1)[None, :]
        )
        self.sequences = digits % vocab_size  # [K, L], row k is the sequence with index k
        self._one_hot = (
            torch.nn.functional.one_hot(self.sequences, vocab_size)
            .to(torch.float64)
            .reshape(probs.numel(), seq_len * vocab_size)
        )

    @classmethod
    def random(
        cls,
        vocab_size: int,
        seq_len: int,
        generator: torch.Generator | None = None,
        concentration: float = 0.5,
        seed: int = 0,
    ) -> TabularJoint:
        """A joint drawn from a symmetric Dirichlet(``concentration``) over all sequences
        (``generator``, or a fresh one seeded with ``seed``)."""
        check_sizes(vocab_size=(vocab_size, 2), seq_len=(seq_len, 1))
        check_concentration(concentration)
        if vocab_size**seq_len > 10**7:
            raise ValueError(f"vocab_size**seq_len = {vocab_size**seq_len} sequences is too many for a table")
        generator = generator if generator is not None else torch.Generator().manual_seed(seed)
        gamma = torch._standard_gamma(
            torch.full((vocab_size**seq_len,), concentration, dtype=torch.float64), generator=generator
        )
        return cls(gamma / gamma.sum(), vocab_size, seq_len)

    def index(self, x: torch.Tensor) -> torch.Tensor:
        """Row-major index of each sequence ``[N, L]`` in the table."""
        weights = self.vocab_size ** torch.arange(self.seq_len - 1, -1, -1, device=x.device)
        return (x * weights).sum(dim=1)

    def conditionals(self, tokens: torch.Tensor) -> torch.Tensor:
        masked = tokens == self.mask_id
        consistent = torch.ones(tokens.shape[0], self.probs.numel(), dtype=torch.bool)
        for j in range(self.seq_len):
            consistent &= (self.sequences[None, :, j] == tokens[:, j, None]) | masked[:, j, None]
        weights = consistent.to(torch.float64) * self.probs[None, :]
        marginals = (weights @ self._one_hot).view(-1, self.seq_len, self.vocab_size)
        return marginals.log() - marginals.sum(dim=2, keepdim=True).log()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self.probs[self.index(x)].log()

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        idx = categorical64(self.probs[None, :].expand(n, -1), generator)
        return self.sequences[idx]

    def entropy(self) -> float:
        p = self.probs[self.probs > 0]
        return float(-(p * p.log()).sum())


class ProductMixture(_Oracle):
    """``p(x) = sum_k w_k prod_i theta_k[i, x_i]`` on ``L = H * W`` positions."""

    def __init__(
        self, log_weights: torch.Tensor, log_theta: torch.Tensor, grid: tuple[int, int] | None = None
    ):
        if log_theta.dim() != 3 or log_theta.shape[0] != log_weights.shape[0]:
            raise ValueError("log_theta must be [K, L, V] with K = len(log_weights)")
        self.log_weights = torch.log_softmax(log_weights.to(torch.float64), dim=0)
        self.log_theta = torch.log_softmax(log_theta.to(torch.float64), dim=2)
        _, self.seq_len, self.vocab_size = log_theta.shape
        if grid is not None and grid[0] * grid[1] != self.seq_len:
            raise ValueError(f"grid={grid} does not have L={self.seq_len} cells")
        self.grid = grid

    @classmethod
    def image_like(
        cls,
        height: int = 8,
        width: int = 8,
        vocab_size: int = 16,
        components: int = 8,
        generator: torch.Generator | None = None,
        sharpness: float = 2.0,
        seed: int = 0,
    ) -> ProductMixture:
        """Components are smooth random intensity fields; each pixel is a discretised Gaussian
        around its component's intensity (width ``vocab_size / (4 * sharpness)``)."""
        check_sizes(
            height=(height, 1), width=(width, 1), vocab_size=(vocab_size, 2), components=(components, 1)
        )
        if not is_number(sharpness) or not sharpness > 0:
            raise ValueError(f"sharpness={sharpness!r} must be a positive number")
        g = generator if generator is not None else torch.Generator().manual_seed(seed)
        rows = torch.linspace(0, 1, height, dtype=torch.float64)
        cols = torch.linspace(0, 1, width, dtype=torch.float64)
        field = torch.zeros(components, height, width, dtype=torch.float64)
        for _ in range(4):  # a few random low-frequency waves per component
            fy, fx = (torch.rand(2, components, 1, 1, generator=g, dtype=torch.float64) * 3.0).unbind(0)
            phase = torch.rand(components, 1, 1, generator=g, dtype=torch.float64) * 2 * math.pi
            amp = torch.randn(components, 1, 1, generator=g, dtype=torch.float64)
            field += amp * torch.cos(
                2 * math.pi * (fy * rows[None, :, None] + fx * cols[None, None, :]) + phase
            )
        intensity = torch.sigmoid(1.5 * field).reshape(components, -1) * (vocab_size - 1)  # [K, L]
        width_v = vocab_size / (4.0 * sharpness)
        v = torch.arange(vocab_size, dtype=torch.float64)
        log_theta = -((v[None, None, :] - intensity[:, :, None]) ** 2) / (2 * width_v**2)
        log_weights = torch.randn(components, generator=g, dtype=torch.float64) * 0.5
        return cls(log_weights, log_theta, grid=(height, width))

    def _component_log_lik(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, K]``: log w_k + sum over observed j of log theta_k[j, x_j]."""
        observed = tokens != self.mask_id
        safe = torch.where(observed, tokens, 0)
        positions = torch.arange(self.seq_len, device=tokens.device)[None, :].expand_as(tokens)
        per_site = self.log_theta[:, positions, safe]  # [K, B, L]
        per_site = torch.where(observed[None], per_site, 0.0)
        return self.log_weights[None, :] + per_site.sum(dim=2).T

    def conditionals(self, tokens: torch.Tensor) -> torch.Tensor:
        posterior = torch.softmax(self._component_log_lik(tokens), dim=1)  # [B, K]
        marginals = torch.einsum("bk,kiv->biv", posterior, self.log_theta.exp())
        return marginals.log()

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return torch.logsumexp(self._component_log_lik(x), dim=1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        k = categorical64(self.log_weights.exp()[None, :].expand(n, -1), generator)
        theta = self.log_theta.exp()[k]  # [n, L, V]
        flat = categorical64(theta.reshape(-1, self.vocab_size), generator)
        return flat.view(n, self.seq_len)

    def sample_given(self, tokens: torch.Tensor, draws: int, generator: torch.Generator) -> torch.Tensor:
        """``[B, draws, L]``: exact joint draws of the masked positions of ``tokens`` ``[B, L]`` given
        the observed ones (the component from its posterior, then the masked sites given it)."""
        batch = tokens.shape[0]
        posterior = torch.softmax(self._component_log_lik(tokens), dim=1)  # [B, K]
        k = categorical64(posterior.repeat_interleave(draws, dim=0), generator)  # [B * draws]
        theta = self.log_theta.exp()[k]  # [B * draws, L, V]
        flat = categorical64(theta.reshape(-1, self.vocab_size), generator).view(batch, draws, self.seq_len)
        return torch.where(tokens[:, None, :] == self.mask_id, flat, tokens[:, None, :])


class HiddenMarkov(_Oracle):
    """``p(x) = sum_s pi(s_1) E(s_1, x_1) prod_j A(s_{j-1}, s_j) E(s_j, x_j)`` on ``L`` positions."""

    def __init__(self, log_init: torch.Tensor, log_trans: torch.Tensor, log_emit: torch.Tensor, seq_len: int):
        self.log_init = torch.log_softmax(log_init.to(torch.float64), dim=0)
        self.log_trans = torch.log_softmax(log_trans.to(torch.float64), dim=1)
        self.log_emit = torch.log_softmax(log_emit.to(torch.float64), dim=1)
        self.states, self.vocab_size = log_emit.shape
        self.seq_len = seq_len

    @classmethod
    def random(
        cls,
        seq_len: int = 32,
        vocab_size: int = 16,
        states: int = 6,
        generator: torch.Generator | None = None,
        concentration: float = 0.3,
        seed: int = 0,
    ) -> HiddenMarkov:
        """Rows of the transition and emission matrices drawn from Dirichlet(``concentration``)."""
        check_sizes(seq_len=(seq_len, 1), vocab_size=(vocab_size, 2), states=(states, 1))
        check_concentration(concentration)
        g = generator if generator is not None else torch.Generator().manual_seed(seed)

        def dirichlet(*shape: int) -> torch.Tensor:
            x = torch._standard_gamma(torch.full(shape, concentration, dtype=torch.float64), generator=g)
            return (x / x.sum(dim=-1, keepdim=True)).clamp_min(1e-300).log()

        return cls(dirichlet(states), dirichlet(states, states), dirichlet(states, vocab_size), seq_len)

    @classmethod
    def markov_chain(
        cls,
        seq_len: int = 32,
        vocab_size: int = 8,
        generator: torch.Generator | None = None,
        concentration: float = 0.3,
    ) -> HiddenMarkov:
        """A first-order Markov chain on tokens: hidden state = token, identity emissions."""
        hmm = cls.random(seq_len, vocab_size, vocab_size, generator, concentration)
        emit = torch.full((vocab_size, vocab_size), -math.inf, dtype=torch.float64)
        emit.fill_diagonal_(0.0)
        return cls(hmm.log_init, hmm.log_trans, emit, seq_len)

    def _evidence(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[B, L, S]`` log E(s, x_j) at observed positions, 0 at masked ones."""
        observed = tokens != self.mask_id
        ev = self.log_emit.T[torch.where(observed, tokens, 0)]  # [B, L, S]
        return torch.where(observed[..., None], ev, 0.0)

    def _step(self, log_alpha: torch.Tensor) -> torch.Tensor:
        """``log sum_s' exp(log_alpha(s') + log A(s', s))``: one transition, ``[B, S]``."""
        return log_matmul(log_alpha, self.log_trans.exp())

    def conditionals(self, tokens: torch.Tensor) -> torch.Tensor:
        ev = self._evidence(tokens)
        batch, length = tokens.shape
        prior = torch.empty(batch, length, self.states, dtype=torch.float64)  # before x_j's evidence
        prior[:, 0] = self.log_init
        for j in range(1, length):
            prior[:, j] = self._step(prior[:, j - 1] + ev[:, j - 1])
        back = torch.zeros(batch, length, self.states, dtype=torch.float64)  # log p(x_{>j} | s_j)
        for j in range(length - 2, -1, -1):
            nxt = ev[:, j + 1] + back[:, j + 1]
            back[:, j] = log_matmul(nxt, self.log_trans.exp().T)
        state_post = prior + back  # [B, L, S], unnormalised, excludes x_j's own evidence
        log_marg = log_matmul(state_post, self.log_emit.exp())  # [B, L, V]
        return log_marg - torch.logsumexp(log_marg, dim=2, keepdim=True)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        ev = self._evidence(x)
        log_alpha = self.log_init[None] + ev[:, 0]
        for j in range(1, self.seq_len):
            log_alpha = self._step(log_alpha) + ev[:, j]
        return torch.logsumexp(log_alpha, dim=1)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        trans, emit = self.log_trans.exp(), self.log_emit.exp()
        state = categorical64(self.log_init.exp()[None].expand(n, -1), generator)
        out = torch.empty(n, self.seq_len, dtype=torch.long)
        for j in range(self.seq_len):
            if j > 0:
                state = categorical64(trans[state], generator)
            out[:, j] = categorical64(emit[state], generator)
        return out

    def sample_given(self, tokens: torch.Tensor, draws: int, generator: torch.Generator) -> torch.Tensor:
        """``[B, draws, L]``: exact joint draws of the masked positions of ``tokens`` ``[B, L]`` given
        the observed ones: forward filtering, backward sampling of the hidden states, then each
        masked token from its state's emission."""
        batch, length = tokens.shape
        ev = self._evidence(tokens)
        filtered = torch.empty(batch, length, self.states, dtype=torch.float64)  # log p(s_j, x_obs<=j)
        filtered[:, 0] = self.log_init[None] + ev[:, 0]
        for j in range(1, length):
            filtered[:, j] = self._step(filtered[:, j - 1]) + ev[:, j]
        filtered = filtered.repeat_interleave(draws, dim=0)  # [B * draws, L, S]
        states = torch.empty(batch * draws, length, dtype=torch.long)
        states[:, -1] = categorical64(torch.softmax(filtered[:, -1], dim=1), generator)
        for j in range(length - 2, -1, -1):
            logits = filtered[:, j] + self.log_trans[:, states[:, j + 1]].T
            states[:, j] = categorical64(torch.softmax(logits, dim=1), generator)
        emitted = categorical64(self.log_emit.exp()[states.reshape(-1)], generator).view(batch, draws, length)
        return torch.where(tokens[:, None, :] == self.mask_id, emitted, tokens[:, None, :])


class ClassConditionalJoint(_Oracle):
    """Class-conditional tabular laws: ``p(x | c)`` for ``c < num_classes`` and, for the null label
    ``c = num_classes`` (or ``cond=None``), the marginal ``p(x) = sum_c w_c p(x | c)``.

    The guidance protocol of ``unmask.samplers.logits``: ``num_classes``, ``cond`` = ids ``[B]``.
    """

    def __init__(self, probs: torch.Tensor, class_probs: torch.Tensor, vocab_size: int, seq_len: int):
        probs = probs.to(torch.float64)
        class_probs = class_probs.reshape(-1).to(torch.float64)
        if probs.dim() != 2 or probs.shape[0] != class_probs.numel():
            raise ValueError("probs must be [num_classes, V**L] with num_classes = len(class_probs)")
        if (class_probs < 0).any() or not math.isclose(float(class_probs.sum()), 1.0, rel_tol=1e-9):
            raise ValueError("class_probs must be non-negative and sum to 1")
        self.classes = [TabularJoint(p, vocab_size, seq_len) for p in probs]
        self.class_probs = class_probs
        self.marginal = TabularJoint(class_probs @ probs, vocab_size, seq_len)
        self.vocab_size, self.seq_len = vocab_size, seq_len
        self.num_classes = class_probs.numel()

    @classmethod
    def random(
        cls,
        num_classes: int = 3,
        vocab_size: int = 3,
        seq_len: int = 3,
        concentration: float = 0.5,
        seed: int = 0,
    ) -> ClassConditionalJoint:
        """Each class's law drawn from a symmetric Dirichlet(``concentration``); uniform classes."""
        g = torch.Generator().manual_seed(seed)
        gamma = torch._standard_gamma(
            torch.full((num_classes, vocab_size**seq_len), concentration, dtype=torch.float64), generator=g
        )
        probs = gamma / gamma.sum(dim=1, keepdim=True)
        return cls(
            probs, torch.full((num_classes,), 1.0 / num_classes, dtype=torch.float64), vocab_size, seq_len
        )

    def labels(self, cond: Any | None, batch_size: int) -> torch.Tensor:
        """Class ids ``[B]`` (the null id where ``cond`` is None)."""
        if cond is None:
            return torch.full((batch_size,), self.num_classes, dtype=torch.long)
        labels = torch.as_tensor(cond).long().reshape(-1).cpu()
        if labels.numel() == 1:
            labels = labels.expand(batch_size)
        if labels.shape != (batch_size,) or ((labels < 0) | (labels > self.num_classes)).any():
            raise ValueError(f"cond must hold {batch_size} class ids in 0..{self.num_classes}")
        return labels

    def _per_class(self, method: str, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        out = None
        for c, law in enumerate([*self.classes, self.marginal]):
            rows = (labels == c).nonzero().squeeze(1)
            if rows.numel():
                part = getattr(law, method)(x[rows])
                if out is None:
                    out = torch.empty((x.shape[0], *part.shape[1:]), dtype=part.dtype)
                out[rows] = part
        assert out is not None
        return out

    def conditionals(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        return self._per_class("conditionals", tokens, self.labels(cond, tokens.shape[0]))

    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        return _logits(self.conditionals(tokens, cond))

    def log_prob(self, x: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        return self._per_class("log_prob", x, self.labels(cond, x.shape[0]))

    def sample(self, n: int, generator: torch.Generator, cond: Any | None = None) -> torch.Tensor:
        labels = self.labels(cond, n)
        out = torch.empty(n, self.seq_len, dtype=torch.long)
        for c, law in enumerate([*self.classes, self.marginal]):
            rows = (labels == c).nonzero().squeeze(1)
            if rows.numel():
                out[rows] = law.sample(rows.numel(), generator)
        return out

    def class_log_posterior(self, x: torch.Tensor) -> torch.Tensor:
        """``[N, num_classes]``: ``log p(c | x)``."""
        joint = torch.stack([law.log_prob(x) for law in self.classes], dim=1) + self.class_probs.log()
        return joint - torch.logsumexp(joint, dim=1, keepdim=True)
