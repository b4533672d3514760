"""Each peer sampler against its law, written out here by enumeration from the peer's rule.

The rules below are transcribed from the peers' published code (ML-GSAI/LLaDA ``generate.py``,
NVlabs/Fast-dLLM ``llada/generate.py``, google-research/maskgit ``parallel_decode.py``,
valeoai/Maskgit-pytorch ``Trainer/vit.py`` and ``Sampler/confidence_sampler.py``,
valeoai/Halton-MaskGIT ``Sampler/halton_sampler.py``) and written independently of the sampler
code: the conditionals come from summing the joint table, the per-step counts are literal
(worked out from each peer's count rule; the JAX ones were run in jax 0.4.38), and the choice of
positions is a sum over proposals and over Plackett-Luce orders. The exact law of each
configuration is then a recursive sum over the steps.

Statistics: 40,000 samples, fixed seeds; a G-test against the enumerated law must give
p > 1e-3 (its p-value is uniform under the null, so a correct sampler fails one run in 1000), and
the enumerated law must differ from the neighbouring rule it could be confused with (TV > 0.01,
several times the sampling noise of 40,000 draws on these joints), so the test has power.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from fractions import Fraction
from functools import cache

import pytest
import torch

from unmask.metrics.exact import chi2_sf, empirical_law
from unmask.models.oracle import TabularJoint
from unmask.samplers import build

N = 40_000
MASK = None


class Law:
    """A tabular joint's conditionals, from the table itself (not the oracle's code)."""

    def __init__(self, joint: TabularJoint):
        self.V, self.L = joint.vocab_size, joint.seq_len
        self.table = {
            seq: float(p)
            for seq, p in zip(itertools.product(range(self.V), repeat=self.L), joint.probs, strict=True)
        }

    @cache  # noqa: B019 (one Law per joint, kept for the module)
    def conditionals(self, state: tuple) -> dict[int, list[float]]:
        """``{i: [p_i(v)]}`` for the masked positions of ``state`` (``None`` = masked)."""
        mass = defaultdict(lambda: [0.0] * self.V)
        for seq, p in self.table.items():
            if all(s is MASK or s == x for s, x in zip(state, seq, strict=True)):
                for i, s in enumerate(state):
                    if s is MASK:
                        mass[i][seq[i]] += p
        return {i: [m / sum(row) for m in row] for i, row in mass.items()}


def tempered(p: list[float], temperature: float) -> list[float]:
    """``p**(1/T)`` normalised; ``T = 0``: all mass on the first argmax (torch.argmax's choice)."""
    if temperature == 0:
        best = max(range(len(p)), key=lambda v: (p[v], -v))
        return [1.0 if v == best else 0.0 for v in range(len(p))]
    w = [x ** (1.0 / temperature) if x > 0 else 0.0 for x in p]
    return [x / sum(w) for x in w]


def by_rank(scores: dict[int, float]) -> list[int]:
    """Positions by decreasing score, equal scores by the lowest position."""
    return sorted(scores, key=lambda i: (-scores[i], i))


def plackett_luce_sets(weights: dict[int, float], k: int) -> dict[frozenset, float]:
    """Law of the set of the first ``k`` of a Plackett-Luce order with these weights."""
    out: dict[frozenset, float] = defaultdict(float)
    for order in itertools.permutations(weights, k):
        prob, left = 1.0, sum(weights.values())
        for i in order:
            prob *= weights[i] / left
            left -= weights[i]
        out[frozenset(order)] += prob
    return out


def proposals(cond: dict[int, list[float]], positions: list[int], temperature: float):
    """Every proposal vector at ``positions`` with its probability (tokens at ``temperature``)."""
    q = {i: tempered(cond[i], temperature) for i in positions}
    for values in itertools.product(*(range(len(q[i])) for i in positions)):
        prob = math.prod(q[i][v] for i, v in zip(positions, values, strict=True))
        if prob > 0:
            yield prob, dict(zip(positions, values, strict=True))


def sample_then_choose(cond, positions, k, temperature, alpha, tempered_rank):
    """MaskGIT / LLaDA: proposals everywhere, then ``k`` positions by ``log r(x~) + alpha g``
    (``r`` the tempered or the untempered law); ``alpha = 0``: no noise."""
    for prob, y in proposals(cond, positions, temperature):
        rank_law = {i: tempered(cond[i], temperature if tempered_rank else 1.0) for i in positions}
        if alpha == 0:
            chosen = {frozenset(by_rank({i: rank_law[i][y[i]] for i in positions})[:k]): 1.0}
        else:
            chosen = plackett_luce_sets({i: rank_law[i][y[i]] ** (1.0 / alpha) for i in positions}, k)
        for subset, p_set in chosen.items():
            yield prob * p_set, {i: y[i] for i in subset}


def random_then_sample(cond, positions, k, temperature):
    """LLaDA's random remasking: a uniform ``k``-subset, its proposals."""
    subsets = list(itertools.combinations(positions, k))
    for prob, y in proposals(cond, positions, temperature):
        for subset in subsets:
            yield prob / len(subsets), {i: y[i] for i in subset}


def fixed_order(cond, positions, k, temperature, order):
    """Halton: the first ``k`` still-masked positions of a fixed order, tokens drawn."""
    chosen = [i for i in order if i in positions][:k]
    yield from proposals(cond, chosen, temperature)


def fast_dllm_choice(cond, positions, temperature, threshold=None, factor=None):
    """Fast-dLLM: proposals, confidence = untempered p of the proposal, the best always; then
    every one ``>= threshold``, or the dynamic ``factor`` rule of ``get_transfer_index_dynamic``."""
    for prob, y in proposals(cond, positions, temperature):
        conf = {i: cond[i][y[i]] for i in positions}
        ranked = by_rank(conf)
        if factor is None:
            keep = [ranked[0]] + [i for i in ranked[1:] if conf[i] >= threshold]
        else:
            bounds = [-1.0] + [1 - factor / (n + 1) for n in range(2, len(ranked) + 1)]
            top = len(ranked) - 1
            for j, i in enumerate(ranked):
                if conf[i] < bounds[j]:
                    top = j
                    break
            if top in (0, len(ranked) - 1):
                top += 1
            keep = ranked[:top]
        yield prob, {i: y[i] for i in keep}


def exact_law(law: Law, plan) -> dict[tuple, float]:
    """The law of the final sequence: ``plan`` is a list of ``(block positions, steps)`` where
    ``steps`` is a list of ``step(cond, masked positions, t) -> iterable of (prob, reveals)``."""
    states = {tuple([MASK] * law.L): 1.0}
    for block, steps in plan:
        for t, step in enumerate(steps):
            nxt: dict[tuple, float] = defaultdict(float)
            for state, p_state in states.items():
                masked = [i for i in block if state[i] is MASK]
                if not masked:
                    nxt[state] += p_state
                    continue
                for prob, reveal in step(law.conditionals(state), masked, t):
                    new = list(state)
                    for i, v in reveal.items():
                        new[i] = v
                    nxt[tuple(new)] += p_state * prob
            states = nxt
    assert all(MASK not in s for s in states), "the plan reveals everything"
    assert math.isclose(sum(states.values()), 1.0, rel_tol=1e-9)
    return states


def until_done(step, limit: int = 16):
    """A block decoded until no mask is left (Fast-dLLM): enough steps for any path."""
    return [step] * limit


def as_vector(law: Law, states: dict[tuple, float]) -> torch.Tensor:
    index = {seq: k for k, seq in enumerate(itertools.product(range(law.V), repeat=law.L))}
    vec = torch.zeros(law.V**law.L, dtype=torch.float64)
    for seq, p in states.items():
        vec[index[seq]] += p
    return vec


def g_test(joint: TabularJoint, samples: torch.Tensor, law: torch.Tensor) -> float:
    counts = empirical_law(joint, samples)
    assert float(counts[law == 0].sum()) == 0, "a sample the law says is impossible"
    seen = counts > 0
    g = 2 * float((counts[seen] * (counts[seen] / (counts.sum() * law[seen])).log()).sum())
    return chi2_sf(g, int((law > 0).sum()) - 1)


def tv(a: torch.Tensor, b: torch.Tensor) -> float:
    return 0.5 * float((a - b).abs().sum())


@pytest.fixture(scope="module")
def joint4():
    return TabularJoint.random(vocab_size=3, seq_len=4, generator=torch.Generator().manual_seed(7))


def run_peer(joint, name, params, seed):
    return build(name, **params).sample(joint, N, generator=torch.Generator().manual_seed(seed)).tokens


def check(joint, name, params, states, other, seed):
    law = Law(joint)
    expected = as_vector(law, states)
    p_value = g_test(joint, run_peer(joint, name, params, seed), expected)
    assert p_value > 1e-3, (name, params, p_value)
    assert tv(expected, as_vector(law, other)) > 0.01, "the test tells this law from its neighbour"


ALL4 = list(range(4))


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_llada_low_confidence_has_the_law_of_llada_generate(joint4, temperature):
    law = Law(joint4)
    counts = [2, 2]  # LLaDA get_num_transfer_tokens(4 masked, 2 steps)

    def llada_step(cond, masked, t):
        return sample_then_choose(cond, masked, counts[t], temperature, 0.0, tempered_rank=False)

    def confidence_step(cond, masked, t):  # unmask's own `confidence`: top max p, then sample
        for prob, reveal in sample_then_choose(cond, masked, counts[t], 0.0, 0.0, tempered_rank=False):
            yield from ((prob * p, r) for p, r in proposals(cond, list(reveal), temperature))

    states = exact_law(law, [(ALL4, [llada_step] * 2)])
    other = exact_law(law, [(ALL4, [confidence_step] * 2)])
    check(joint4, "llada", {"steps": 2, "temperature": temperature}, states, other, seed=101)


def test_llada_blocks_split_the_steps_and_use_llada_counts(joint4):
    law = Law(joint4)
    temperature = 0.7

    def step(cond, masked, t):  # 4 steps over 2 blocks: 2 per block, counts [1, 1] in each
        return sample_then_choose(cond, masked, 1, temperature, 0.0, tempered_rank=False)

    states = exact_law(law, [([0, 1], [step] * 2), ([2, 3], [step] * 2)])
    other = exact_law(law, [(ALL4, [step] * 4)])  # the same rule without blocks
    params = {"steps": 4, "block_length": 2, "temperature": temperature}
    check(joint4, "llada", params, states, other, seed=102)


def test_llada_random_remasking_has_the_law_of_llada_generate():
    joint = TabularJoint.random(vocab_size=3, seq_len=5, generator=torch.Generator().manual_seed(8))
    law, all5, temperature = Law(joint), list(range(5)), 0.8
    counts = [2, 2, 1]  # get_num_transfer_tokens(5 masked, 3 steps): 1 each, the first 2 steps +1
    unmask_counts = [1, 2, 2]  # this project's floor rule on the linear schedule

    def step(cond, masked, t):
        return random_then_sample(cond, masked, counts[t], temperature)

    def other_step(cond, masked, t):
        return random_then_sample(cond, masked, unmask_counts[t], temperature)

    states = exact_law(law, [(all5, [step] * 3)])
    other = exact_law(law, [(all5, [other_step] * 3)])
    check(joint, "llada", {"steps": 3, "temperature": temperature, "remasking": "random"}, states, other, 103)


@pytest.mark.parametrize(
    ("params", "rule"),
    [
        ({"threshold": 0.5, "temperature": 1.0}, {"threshold": 0.5}),
        ({"threshold": 0.4, "temperature": 0.6}, {"threshold": 0.4}),
        ({"threshold": None, "factor": 1.0, "temperature": 1.0}, {"factor": 1.0}),
        ({"threshold": None, "factor": 2.0, "temperature": 0.8}, {"factor": 2.0}),
    ],
)
def test_fast_dllm_has_the_law_of_its_transfer_rules(joint4, params, rule):
    law = Law(joint4)
    temperature = params["temperature"]

    def step(cond, masked, t):
        return fast_dllm_choice(cond, masked, temperature, **rule)

    def tempered_max_step(cond, masked, t):  # the rule unmask shipped before: tempered max p > threshold
        q = {i: tempered(cond[i], temperature) for i in masked}
        ranked = by_rank({i: max(q[i]) for i in masked})
        bar = rule.get("threshold", 0.5)
        keep = [ranked[0]] + [i for i in ranked[1:] if max(q[i]) > bar]
        yield from proposals(cond, keep, temperature)

    states = exact_law(law, [(ALL4, until_done(step))])
    other = exact_law(law, [(ALL4, until_done(tempered_max_step))])
    check(joint4, "fast_dllm", params, states, other, seed=104)


def test_fast_dllm_in_blocks_decodes_each_block_until_done(joint4):
    law = Law(joint4)

    def step(cond, masked, t):
        return fast_dllm_choice(cond, masked, 1.0, threshold=0.3)

    states = exact_law(law, [([0, 1], until_done(step)), ([2, 3], until_done(step))])
    other = exact_law(law, [(ALL4, until_done(step))])
    check(joint4, "fast_dllm", {"threshold": 0.3, "temperature": 1.0, "block_length": 2}, states, other, 105)


def maskgit_plan(counts, alphas, temperature=1.0):
    def step(cond, masked, t):
        return sample_then_choose(cond, masked, counts[t], temperature, alphas[t], tempered_rank=True)

    return [(ALL4, [step] * len(counts))]


def test_maskgit_jax_has_the_law_of_parallel_decode(joint4):
    # decode(num_iter=3) on 4 masked: the float32 floor keeps 3, then 1 (4 cos(pi/3) = 1.9999999),
    # so counts [1, 2, 1]; the float64 rule would give [1, 1, 2]. alpha_t = 4.5 (1 - (t + 1) / 3).
    law = Law(joint4)
    states = exact_law(law, maskgit_plan([1, 2, 1], [3.0, 1.5, 0.0]))
    other = exact_law(law, maskgit_plan([1, 1, 2], [3.0, 1.5, 0.0]))
    check(joint4, "maskgit_jax", {"steps": 3}, states, other, seed=106)


def test_maskgit_pytorch_has_the_law_of_the_vit_trainer_sampler(joint4):
    # adap_sche(3, arccos) on 4 positions: [1, 2, 1]; alpha_t = 4.5 (1 - t / 2) = 4.5, 2.25, 0
    law = Law(joint4)
    states = exact_law(law, maskgit_plan([1, 2, 1], [4.5, 2.25, 0.0], temperature=0.8))
    other = exact_law(law, maskgit_plan([1, 2, 1], [3.0, 1.5, 0.0], temperature=0.8))  # JAX annealing
    check(joint4, "maskgit_pytorch", {"steps": 3, "temperature": 0.8}, states, other, seed=107)


def test_halton_maskgit_confidence_has_the_law_of_its_sampler(joint4):
    # cumulative max(int(4 (1 - arccos(r) / (pi/2))), t + 1) on r = linspace(0, 1, 3): 1, 2, 4
    law = Law(joint4)
    states = exact_law(law, maskgit_plan([1, 1, 2], [4.5, 2.25, 0.0]))
    other = exact_law(law, maskgit_plan([1, 2, 1], [4.5, 2.25, 0.0]))  # Trainer/vit.py's counts
    check(joint4, "halton_maskgit_confidence", {"steps": 3}, states, other, seed=108)


def halton_maskgit_order(size: int) -> list[int]:
    """Halton-MaskGIT's build_halton_mask, in exact fractions: (h2, h3) scaled to (row, col)."""

    def radical(i: int, base: int) -> Fraction:
        value, scale = Fraction(0), Fraction(1, base)
        while i:
            i, digit = divmod(i, base)
            value += digit * scale
            scale /= base
        return value

    order: list[int] = []
    i = 1
    while len(order) < size * size:
        cell = math.floor(radical(i, 2) * size) * size + math.floor(radical(i, 3) * size)
        if cell not in order:
            order.append(cell)
        i += 1
    return order


def test_halton_order_has_halton_maskgits_orientation():
    from unmask.samplers.choose import halton_order

    assert halton_maskgit_order(3) == [4, 2, 6, 1, 5, 3, 7, 8, 0]
    for size in (3, 7, 16):
        assert halton_order(size * size, (size, size)).tolist() == halton_maskgit_order(size)


def test_halton_maskgit_has_the_law_of_its_sampler():
    joint = TabularJoint.random(vocab_size=2, seq_len=9, generator=torch.Generator().manual_seed(9))
    law, order = Law(joint), halton_maskgit_order(3)
    counts = [1, 3, 5]  # max(t + 1, int(9 (1 - arccos((t + 1) / 3) / (pi/2)))): 1, 4, 9
    transposed = [3 * (c % 3) + c // 3 for c in order]  # the order unmask used before

    def step(cond, masked, t):
        return fixed_order(cond, masked, counts[t], 1.0, order)

    def transposed_step(cond, masked, t):
        return fixed_order(cond, masked, counts[t], 1.0, transposed)

    all9 = list(range(9))
    states = exact_law(law, [(all9, [step] * 3)])
    other = exact_law(law, [(all9, [transposed_step] * 3)])
    check(joint, "halton_maskgit", {"steps": 3, "grid": [3, 3]}, states, other, seed=109)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("llada", {"steps": 2}),
        ("fast_dllm", {"threshold": 0.5}),
        ("maskgit", {"steps": 3, "temperature": 0.0}),
        ("low_confidence", {"steps": 4, "temperature": 0.0}),
        ("confidence", {"steps": 2, "temperature": 0.0}),
        ("moment", {"steps": 2, "temperature": 0.0}),
        ("halton", {"steps": 2, "temperature": 0.0, "grid": [2, 2]}),
        ("eb", {"gamma": 0.5, "temperature": 0.0}),
        ("threshold", {"threshold": 0.7, "temperature": 0.0}),
        ("hybrid", {"steps": 2, "temperature": 0.0, "gamma": 1.0, "exploit": "confidence"}),
    ],
)
def test_greedy_decoding_is_deterministic_and_follows_the_greedy_path(joint4, name, params):
    """temperature = 0 (the default of the LLaDA and Fast-dLLM peers): argmax tokens, the rule's
    order without noise; for the confidence rules the path is the enumerated greedy one."""
    runs = [
        build(name, **params).sample(joint4, 8, generator=torch.Generator().manual_seed(s)).tokens
        for s in (1, 2)
    ]
    assert (runs[0] == runs[0][0]).all() and torch.equal(runs[0], runs[1]), "one output whatever the seed"
    if name in ("llada", "low_confidence", "maskgit", "confidence"):
        steps = params["steps"]
        counts = {2: [2, 2], 3: [1, 1, 2], 4: [1, 1, 1, 1]}[steps]
        if name == "maskgit":
            counts = [1, 1, 2]  # unmask's cosine rule for 4 positions in 3 steps

        def step(cond, masked, t):
            return sample_then_choose(cond, masked, counts[t], 0.0, 0.0, tempered_rank=False)

        (path,) = exact_law(Law(joint4), [(ALL4, [step] * steps)])
        assert runs[0][0].tolist() == list(path)


def test_mdlm_has_the_law_of_ddpm_under_log_linear_noise(joint4):
    # ddpm with alpha(t) = 1 - t on the grid t = 1, 2/3, 1/3, 0: a masked position stays masked
    # w.p. (1 - alpha_s) / (1 - alpha_t), independently, else takes a token from p_i
    law = Law(joint4)
    reveal = [1 / 3, 1 / 2, 1.0]

    def independent_reveals(probability):
        def step(cond, masked, t):
            for size in range(len(masked) + 1):
                for subset in itertools.combinations(masked, size):
                    p_set = probability[t] ** size * (1 - probability[t]) ** (len(masked) - size)
                    if p_set > 0 and subset:
                        yield from ((p_set * p, r) for p, r in proposals(cond, list(subset), 1.0))
                    elif p_set > 0:
                        yield p_set, {}

        return step

    states = exact_law(law, [(ALL4, [independent_reveals(reveal)] * 3)])
    other = exact_law(law, [(ALL4, [independent_reveals([0.5, 0.5, 1.0])] * 3)])
    check(joint4, "mdlm", {"steps": 3}, states, other, seed=110)
