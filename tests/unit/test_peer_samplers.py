"""The peers' samplers: threshold, eb, first_hitting, remdm and the semi_ar wrapper."""

import math

import pytest
import torch

from conftest import FixedLogits, RandomNetDenoiser
from unmask.models.oracle import HiddenMarkov
from unmask.samplers import build


def product_logits(seed: int = 0, length: int = 10, vocab: int = 6, sharpness: float = 3.0) -> torch.Tensor:
    return torch.randn(1, length, vocab, generator=torch.Generator().manual_seed(seed)) * sharpness


def reveals_per_step(out) -> list[list[int]]:
    """``[step][row]`` number of positions revealed."""
    return [(r.positions >= 0).sum(dim=1).tolist() for r in out.trace if r.kind == "reveal"]


# ---- threshold --------------------------------------------------------------------------------


def test_threshold_one_reveals_one_position_per_step_in_confidence_order():
    denoiser = RandomNetDenoiser(6, 10)
    out = build("threshold", threshold=1.0).sample(
        denoiser, 3, generator=torch.Generator().manual_seed(0), trace=True
    )
    assert out.nfe == 10 and reveals_per_step(out) == [[1, 1, 1]] * 10


def test_greedy_threshold_reveals_exactly_the_positions_above_it():
    logits = product_logits()
    top = logits[0].softmax(dim=1).max(dim=1).values
    ranked = top.sort().values
    threshold = float(ranked[4] + ranked[5]) / 2  # half-way between two confidences
    above = int((top > threshold).sum())
    out = build("threshold", threshold=threshold, temperature=0.0).sample(
        FixedLogits(logits), 2, generator=torch.Generator().manual_seed(0), trace=True
    )
    first = out.trace[0].positions[0]
    assert set(first[first >= 0].tolist()) == set((top > threshold).nonzero().squeeze(1).tolist())
    # a product law: the rest stay below the threshold, one per step
    assert reveals_per_step(out) == [[above] * 2] + [[1, 1]] * (10 - above)


def test_threshold_confidence_is_the_untempered_probability_of_the_proposal():
    # Fast-dLLM: every revealed token but the first has softmax(z)(token) >= threshold, whatever
    # the temperature the proposals were drawn at
    logits = product_logits(seed=3, sharpness=1.5)
    probs = logits[0].softmax(dim=1)
    out = build("threshold", threshold=0.4, temperature=2.0).sample(
        FixedLogits(logits), 64, generator=torch.Generator().manual_seed(0), trace=True
    )
    first = out.trace[0]
    for b in range(64):
        where, what = first.positions[b], first.tokens[b]
        conf = probs[where[where >= 0], what[where >= 0]]
        assert (conf[1:] >= 0.4).all() and (conf[0] >= conf[1:]).all()


def fixed_confidences(confidences: list[float]) -> FixedLogits:
    """A product law over 2 tokens whose top probabilities are ``confidences`` (token 0 on top)."""
    c = torch.tensor(confidences, dtype=torch.float32)
    return FixedLogits(torch.stack([c.log(), (1 - c).log()], dim=1)[None])


@pytest.mark.parametrize(
    ("confidences", "first_step"),
    [
        ([0.99, 0.9, 0.7, 0.5], 2),  # rank 3: 0.7 < 1 - 1/4 stops there: the best 2
        ([0.99, 0.9, 0.8, 0.5], 4),  # only the last fails (0.5 < 1 - 1/5): all 4, Fast-dLLM's bound check
        ([0.5, 0.99, 0.55, 0.6], 1),  # rank 2: 0.6 < 1 - 1/3: the best alone
    ],
)
def test_fast_dllm_factor_rule_counts(confidences, first_step):
    out = build("threshold", threshold=None, factor=1.0, temperature=0.0).sample(
        fixed_confidences(confidences), 1, generator=torch.Generator().manual_seed(0), trace=True
    )
    assert reveals_per_step(out)[0] == [first_step]


def test_small_threshold_needs_few_steps():
    hmm = HiddenMarkov.random(seq_len=16, vocab_size=4, states=2, concentration=0.1, seed=3)
    few = build("threshold", threshold=0.05).sample(hmm, 8, generator=torch.Generator().manual_seed(0))
    many = build("threshold", threshold=1.0).sample(hmm, 8, generator=torch.Generator().manual_seed(0))
    assert few.nfe <= 2 and many.nfe == 16


def test_threshold_max_steps_bounds_the_calls_and_reveals_the_rest_evenly():
    out = build("threshold", threshold=1.0, max_steps=3).sample(
        RandomNetDenoiser(6, 10), 2, generator=torch.Generator().manual_seed(0), trace=True
    )
    # ceil(remaining / steps left): 10 / 3 -> 4, then 6 / 2 -> 3, then 3
    assert out.nfe == 3 and reveals_per_step(out) == [[4, 4], [3, 3], [3, 3]]


# ---- eb --------------------------------------------------------------------------------------


def test_eb_gamma_zero_reveals_one_position_per_step_and_infinity_all_at_once():
    denoiser = RandomNetDenoiser(6, 10)
    zero = build("eb", gamma=0.0).sample(denoiser, 3, generator=torch.Generator().manual_seed(0), trace=True)
    assert zero.nfe == 10 and reveals_per_step(zero) == [[1, 1, 1]] * 10
    everything = build("eb", gamma=math.inf).sample(denoiser, 3, generator=torch.Generator().manual_seed(0))
    assert everything.nfe == 1


@pytest.mark.parametrize("proxy", ["entropy", "confidence", "margin"])
def test_eb_reveals_the_largest_prefix_within_the_entropy_budget(proxy):
    logits = product_logits(seed=1, sharpness=2.0)
    p = logits[0].double().softmax(dim=1)
    entropy = -(p * p.log()).sum(dim=1)
    top2 = p.topk(2, dim=1).values
    key = {"entropy": -entropy, "confidence": top2[:, 0], "margin": top2[:, 0] - top2[:, 1]}[proxy]
    order = key.argsort(descending=True)
    ordered = entropy[order]
    gamma = 0.8
    excess = ordered.cumsum(0) - ordered.cummax(0).values
    expected = int((excess <= gamma).sum())
    out = build("eb", gamma=gamma, proxy=proxy).sample(
        FixedLogits(logits), 1, generator=torch.Generator().manual_seed(0), trace=True
    )
    first = out.trace[0].positions[0]
    assert first[first >= 0].tolist() == order[:expected].tolist()


# ---- first hitting ----------------------------------------------------------------------------


def test_first_hitting_reveals_one_position_per_call():
    out = build("first_hitting").sample(
        RandomNetDenoiser(6, 10), 4, generator=torch.Generator().manual_seed(0), trace=True
    )
    assert out.nfe == 10 and reveals_per_step(out) == [[1, 1, 1, 1]] * 10


def test_first_hitting_on_a_grid_calls_at_most_once_per_grid_step():
    out = build("first_hitting", max_steps=4, schedule="cosine").sample(
        RandomNetDenoiser(6, 20), 64, generator=torch.Generator().manual_seed(0), trace=True
    )
    steps = [r.step for r in out.trace]
    assert out.nfe == len(steps) <= 4 and steps == sorted(set(steps)) and all(0 <= s < 4 for s in steps)


# ---- remdm -----------------------------------------------------------------------------------


def test_remdm_traces_its_remaskings_and_never_touches_given_tokens():
    denoiser = RandomNetDenoiser(6, 12)
    init = torch.full((4, 12), 6)
    init[:, :3] = 2
    out = build("remdm", steps=24, remask="rescale", eta=1.0).sample(
        denoiser, 4, generator=torch.Generator().manual_seed(0), init=init, trace=True
    )
    remasks = [r for r in out.trace if r.kind == "remask"]
    assert remasks, "eta = 1 remasks"
    assert all((r.positions[r.positions >= 0] >= 3).all() for r in remasks)
    assert (out.tokens[:, :3] == 2).all() and (out.tokens < 6).all()
    assert out.nfe == denoiser.calls <= 24


def test_remdm_with_eta_zero_never_remasks():
    out = build("remdm", steps=8, eta=0.0).sample(
        RandomNetDenoiser(6, 12), 4, generator=torch.Generator().manual_seed(0), trace=True
    )
    assert all(r.kind == "reveal" for r in out.trace)


def test_remdm_loop_holds_the_masked_fraction_between_t_on_and_t_off():
    length, steps = 20, 40
    sampler = build("remdm", steps=steps, alpha_on=0.6, t_on=0.75, t_off=0.25, eta=0.1)
    out = sampler.sample(
        RandomNetDenoiser(5, length), 256, generator=torch.Generator().manual_seed(0), trace=True
    )
    masked = torch.full((256,), float(length))
    fraction = []
    for step in range(steps):
        for r in (r for r in out.trace if r.step == step):
            masked += (r.positions >= 0).sum(dim=1) * (1.0 if r.kind == "remask" else -1.0)
        fraction.append(float(masked.mean()) / length)
    loop = [f for step, f in enumerate(fraction) if 0.25 <= 1 - (step + 1) / steps <= 0.7]
    assert all(abs(f - 0.4) < 0.05 for f in loop), loop  # 1 - alpha_on, up to sampling noise
    assert sum(r.kind == "remask" for r in out.trace) > 0 and fraction[-1] == 0


# ---- semi_ar ---------------------------------------------------------------------------------


class SpyDenoiser(RandomNetDenoiser):
    """Records the tokens of every call."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.inputs: list[torch.Tensor] = []

    def __call__(self, tokens, cond=None):
        self.inputs.append(tokens.clone())
        return super().__call__(tokens, cond)


def test_semi_ar_generates_blocks_left_to_right_with_later_blocks_masked():
    denoiser = SpyDenoiser(6, 12)
    out = build("semi_ar", block_length=4, base="moment", base_params={"steps": 2}).sample(
        denoiser, 3, generator=torch.Generator().manual_seed(0), trace=True
    )
    assert out.nfe == 6 == len(denoiser.inputs)
    for call, tokens in enumerate(denoiser.inputs):
        block = call // 2
        assert (tokens[:, : 4 * block] < 6).all(), "earlier blocks are done"
        assert (tokens[:, 4 * (block + 1) :] == 6).all(), "later blocks stay masked"
    assert [r.block for r in out.trace] == [0, 0, 1, 1, 2, 2]


def test_semi_ar_keeps_a_prompt_and_skips_blocks_with_nothing_to_generate():
    denoiser = RandomNetDenoiser(6, 12)
    init = torch.full((2, 12), 6)
    init[:, :5] = torch.tensor([1, 2, 3, 4, 5])
    out = build("semi_ar", block_length=4, base="confidence", base_params={"steps": 4}).sample(
        denoiser, 2, generator=torch.Generator().manual_seed(0), init=init
    )
    assert torch.equal(out.tokens[:, :5], init[:, :5])
    assert out.nfe == 3 + 4  # block 0 is given; block 1 has 3 masked positions; block 2 has 4


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"block_length": 0}, "block_length=0"),
        ({"block_length": 2.5}, "block_length=2.5"),
        ({"base": "semi_ar"}, "base='semi_ar'"),
        ({"base": "zigzag"}, "unknown sampler 'zigzag'"),
        ({"base_params": {"steps": 0}}, r"base_params: steps=0"),
        ({"base_params": {"beta": 1}}, r"base_params: sampler 'confidence' has no parameter 'beta'"),
    ],
)
def test_bad_semi_ar_parameters_are_named(params, match):
    with pytest.raises(ValueError, match=match):
        build("semi_ar", **params)


def test_llada_blocks_start_after_the_prompt_and_split_the_total_steps():
    denoiser = RandomNetDenoiser(6, 12)
    init = torch.full((2, 12), 6)
    init[:, :4] = torch.tensor([1, 2, 3, 4])
    out = build("llada", steps=4, block_length=4, temperature=0.0).sample(
        denoiser, 2, generator=torch.Generator().manual_seed(0), init=init, trace=True
    )
    assert torch.equal(out.tokens[:, :4], init[:, :4])
    assert out.nfe == 4  # 2 blocks of 4 after the prompt, 2 steps each
    assert [r.block for r in out.trace] == [0, 0, 1, 1]
    for r in out.trace:
        inside = r.positions[r.positions >= 0]
        assert ((inside - 4) // 4 == r.block).all()
    assert reveals_per_step(out) == [[2, 2]] * 4  # LLaDA's counts: 4 // 2 per step
    with pytest.raises(ValueError, match=r"block_length=4 does not divide the 7 positions of row 0"):
        build("llada", steps=4, block_length=4).sample(
            denoiser, 2, generator=torch.Generator(), init=torch.tensor([[1, 2, 3, 4, 5] + [6] * 7] * 2)
        )


def test_halton_reads_the_grid_of_the_denoiser():
    logits = product_logits(length=16)
    image = FixedLogits(logits)
    image.grid = (4, 4)
    own = build("halton", steps=16).sample(image, 1, generator=torch.Generator(), trace=True)
    given = build("halton", steps=16, grid=[4, 4]).sample(
        FixedLogits(logits), 1, generator=torch.Generator(), trace=True
    )
    assert [int(r.positions[0, 0]) for r in own.trace] == [int(r.positions[0, 0]) for r in given.trace]
    flat = build("halton", steps=16).sample(FixedLogits(logits), 1, generator=torch.Generator(), trace=True)
    assert [int(r.positions[0, 0]) for r in flat.trace] != [int(r.positions[0, 0]) for r in own.trace]


def test_semi_ar_block_length_must_divide_the_length_and_fit_the_steps():
    denoiser = RandomNetDenoiser(6, 12)
    with pytest.raises(ValueError, match=r"block_length=5 does not divide the sequence length L=12"):
        build("semi_ar", block_length=5).sample(denoiser, 1, generator=torch.Generator())
    with pytest.raises(ValueError, match=r"steps=8 exceeds block_length=4"):
        build("semi_ar", block_length=4, base_params={"steps": 8}).sample(
            denoiser, 1, generator=torch.Generator()
        )
    assert denoiser.calls == 0


# ---- shared ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("threshold", {"threshold": 0.0}, "threshold=0.0"),
        ("threshold", {"threshold": 1.5}, "threshold=1.5"),
        ("threshold", {"threshold": math.nan}, "threshold=nan"),
        ("threshold", {"max_steps": 0}, "max_steps=0"),
        ("eb", {"gamma": -0.1}, "gamma=-0.1"),
        ("eb", {"gamma": math.nan}, "gamma=nan"),
        ("eb", {"proxy": "surprise"}, "proxy='surprise'"),
        ("eb", {"max_steps": 2.0}, "max_steps=2.0"),
        ("first_hitting", {"max_steps": -1}, "max_steps=-1"),
        ("first_hitting", {"schedule": "cubic"}, "schedule='cubic'"),
        ("remdm", {"steps": 0}, "steps=0"),
        ("remdm", {"remask": "loop"}, "remask='loop'"),
        ("remdm", {"eta": 1.5}, "eta=1.5"),
        ("remdm", {"t_on": 0.2, "t_off": 0.5}, "t_off=0.5 must be <= t_on=0.2"),
        ("remdm", {"t_on": 1.2}, "t_on=1.2"),
        ("remdm", {"alpha_on": 1.0}, "alpha_on=1.0"),
        ("remdm", {"alpha_on": 0.0}, "alpha_on=0.0"),
    ],
)
def test_bad_peer_parameters_are_named(name, params, match):
    with pytest.raises(ValueError, match=match):
        build(name, **params)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("threshold", {"threshold": 0.5}),
        ("eb", {"gamma": 0.5}),
        ("semi_ar", {"block_length": 5, "base": "eb", "base_params": {"gamma": 0.3}}),
    ],
)
def test_adaptive_rows_do_not_depend_on_the_other_rows(name, params):
    # near-argmax tokens: a row's result is a function of that row alone
    denoiser = RandomNetDenoiser(6, 10, scale=4.0)
    params = {**params, "temperature": 1e-3} if name != "semi_ar" else params
    if name == "semi_ar":
        params["base_params"] = {**params["base_params"], "temperature": 1e-3}
    alone = build(name, **params).sample(denoiser, 1, generator=torch.Generator().manual_seed(0))
    init = torch.full((3, 10), 6)
    init[1, :7] = torch.tensor([0, 1, 2, 3, 4, 5, 0])
    init[2, 5:] = 3
    batch = build(name, **params).sample(denoiser, 3, generator=torch.Generator().manual_seed(1), init=init)
    assert torch.equal(batch.tokens[0], alone.tokens[0])
