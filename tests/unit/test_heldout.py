"""The held-out NELBO (``unmask.lightning.heldout``) against the law it estimates, computed apart.

For a denoiser that ignores its input and predicts position ``i`` with a fixed distribution ``q_i``,
every masked token costs ``-log q_i(x_i)`` and each position is masked with probability ``t``, so the
MDLM NELBO's expectation over ``t`` and masks is exactly ``(1/L) sum_i -log2 q_i(x_i)`` bits per token
(``E[1{masked} / t] = 1`` for every ``t``): the estimate must be unbiased around that sum.
"""

import math

import torch

from unmask.lightning.heldout import heldout_card_metrics, heldout_nelbo_bits, mean_and_se

VOCAB, LENGTH = 5, 12


class ContextFree(torch.nn.Module):
    """Logits ``[B, L, V + 1]`` that do not depend on the input (the mask id is ``V``)."""

    def __init__(self, seed: int):
        super().__init__()
        self.logits = torch.randn(LENGTH, VOCAB, generator=torch.Generator().manual_seed(seed))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.logits.expand(tokens.shape[0], -1, -1)


def exact_bits(model: ContextFree, sequences: torch.Tensor) -> torch.Tensor:
    log_q = torch.log_softmax(model.logits.double(), dim=-1)  # [L, V]
    picked = log_q.gather(1, sequences.T).T  # [N, L]
    return -picked.sum(dim=1) / LENGTH / math.log(2)


def test_the_estimate_is_unbiased_for_the_law_of_a_context_free_model():
    """300 sequences x 40 draws; tolerance 4 standard errors of the per-sequence error (seeded)."""
    model = ContextFree(seed=0)
    sequences = torch.randint(VOCAB, (300, LENGTH), generator=torch.Generator().manual_seed(1))
    error = heldout_nelbo_bits(model, sequences, VOCAB, draws=40) - exact_bits(model, sequences)
    se = error.std() / math.sqrt(error.numel())
    assert 0 < se < 0.05 and abs(float(error.mean())) < 4 * se, (float(error.mean()), float(se))


def test_draws_are_seeded_and_shared_by_every_model_so_differences_are_paired():
    sequences = torch.randint(VOCAB, (130, LENGTH), generator=torch.Generator().manual_seed(2))
    first, other = ContextFree(seed=0), ContextFree(seed=3)
    a = heldout_nelbo_bits(first, sequences, VOCAB, draws=3)
    assert torch.equal(a, heldout_nelbo_bits(first, sequences, VOCAB, draws=3))
    # the same masks for both: the difference of the two estimates is the difference of the two
    # models' masked costs on the same positions, which a shifted copy of the logits leaves at zero
    shifted = ContextFree(seed=0)
    shifted.logits = first.logits + 7.0
    assert torch.allclose(heldout_nelbo_bits(shifted, sequences, VOCAB, draws=3), a, atol=1e-5)
    assert not torch.allclose(heldout_nelbo_bits(other, sequences, VOCAB, draws=3), a)
    # a second draw has other masks
    one, two = (heldout_nelbo_bits(first, sequences, VOCAB, draws=d) for d in (1, 2))
    assert not torch.allclose(one, two)


def test_the_card_metrics_are_the_mean_and_standard_error_over_sequences():
    values = torch.tensor([1.0, 2.0, 4.0, 5.0], dtype=torch.float64)
    sd = math.sqrt(((1 - 3) ** 2 + (2 - 3) ** 2 + (4 - 3) ** 2 + (5 - 3) ** 2) / 3)
    assert mean_and_se(values) == {"mean": 3.0, "se": sd / 2}
    assert heldout_card_metrics(values, draws=4) == {
        "heldout/nelbo_bits": 3.0,
        "heldout/nelbo_bits_se": sd / 2,
        "heldout/sequences": 4,
        "heldout/draws": 4,
    }


def test_every_shipped_denoiser_card_records_its_heldout_nelbo_on_its_whole_validation_split():
    from unmask.lightning.heldout import validation_split
    from unmask.models.checkpoint import available, load_card

    denoisers = [name for name in available() if load_card(name)["kind"] == "denoiser"]
    assert denoisers
    for name in denoisers:
        metrics = load_card(name)["metrics"]
        assert metrics["heldout/sequences"] == validation_split(name).shape[0], name
        assert metrics["heldout/draws"] == 4 and metrics["heldout/nelbo_bits_se"] > 0, name
