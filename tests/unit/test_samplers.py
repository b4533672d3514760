"""Invariants every sampler keeps, and the errors bad parameters get."""

import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from conftest import FixedLogits, RandomNetDenoiser
from unmask.samplers import SAMPLERS, build, registered_samplers
from unmask.samplers.budget import spend_budget
from unmask.samplers.choose import halton_order
from unmask.samplers.schedules import COUNT_RULES, MASKED_FRACTION, check_count_rule, unmask_counts

ALL = registered_samplers()
ADAPTIVE = ["threshold", "eb", "first_hitting"]
# samplers whose counts per step come from a fixed [B, T] plan (the schedule)
PLANNED = [n for n in ALL if n not in ("ancestral", "remdm", "semi_ar", *ADAPTIVE)]
FIXED_COUNT = PLANNED


def extra_params(name: str, length: int) -> dict:
    return {"grid": None} if name == "halton" else {}


def params_for(name: str, steps: int, length: int) -> dict:
    """Parameters that give ``name`` about ``steps`` denoiser calls on sequences of ``length``
    (the library's budget mapping; semi_ar in two blocks)."""
    params = {"block_length": length // 2} if name == "semi_ar" else {}
    return spend_budget(name, params, steps, length) | extra_params(name, length)


def draw_params(name: str, length: int, data) -> dict:
    """Random valid parameters for ``name`` (hypothesis)."""
    steps = data.draw(st.integers(1, length))
    schedule = data.draw(st.sampled_from(sorted(MASKED_FRACTION)))
    options = data.draw(st.sampled_from([{}, {}, {"top_k": 2}, {"top_p": 0.7}]))
    max_steps = data.draw(st.one_of(st.none(), st.integers(1, length)))
    if name == "threshold":
        rule = data.draw(
            st.sampled_from(
                [{"threshold": t} for t in (0.05, 0.5, 0.9, 1.0)] + [{"threshold": None, "factor": 1.0}]
            )
        )
        temperature = data.draw(st.sampled_from([1.0, 0.0, 0.6]))
        return {**rule, "temperature": temperature, "max_steps": max_steps, **options}
    if name == "eb":
        gamma = data.draw(st.sampled_from([0.0, 0.1, 1.0, math.inf]))
        proxy = data.draw(st.sampled_from(["entropy", "confidence", "margin"]))
        return {"gamma": gamma, "proxy": proxy, "max_steps": max_steps, **options}
    if name == "first_hitting":
        grid = data.draw(st.one_of(st.none(), st.integers(1, 2 * length)))
        return {"schedule": schedule, "max_steps": grid, **options}
    if name == "remdm":
        t_on, t_off, alpha_on = data.draw(
            st.sampled_from([(1.0, 0.0, None), (0.6, 0.2, None), (0.6, 0.2, 0.5)])
        )
        return {
            "steps": data.draw(st.integers(1, 2 * length)),
            "schedule": schedule,
            "remask": data.draw(st.sampled_from(["cap", "rescale", "conf"])),
            "eta": data.draw(st.sampled_from([0.0, 0.1, 0.5, 1.0])),
            "t_on": t_on,
            "t_off": t_off,
            "alpha_on": alpha_on,
            **options,
        }
    if name == "semi_ar":
        block = data.draw(st.sampled_from([d for d in range(1, length + 1) if length % d == 0]))
        base = data.draw(st.sampled_from(["confidence", "moment", "ancestral", "threshold", "eb", "remdm"]))
        base_params = (
            draw_params(base, block, data)
            if base in ("threshold", "eb", "remdm")
            else {"steps": data.draw(st.integers(1, block)), "schedule": schedule, **options}
        )
        return {"block_length": block, "base": base, "base_params": base_params}
    substeps = 1 if name in ("maskgit", "low_confidence") else data.draw(st.integers(1, 4))
    counts = data.draw(st.sampled_from(COUNT_RULES if name != "ancestral" else ("unmask",)))
    schedule = data.draw(st.sampled_from([s for s in sorted(MASKED_FRACTION) if fits(counts, s)]))
    temperature = data.draw(st.sampled_from([1.0, 1.0, 0.0, 0.6]))
    params = {"steps": steps, "schedule": schedule, "counts": counts, "temperature": temperature}
    if name in ("maskgit", "moment", "hybrid"):
        params["anneal"] = data.draw(
            st.sampled_from([True, False, "pytorch"] if steps > 1 else [True, False])
        )
    params |= {**extra_params(name, length), **options}
    return params | ({"substeps": substeps} if substeps > 1 else {})


def fits(counts: str, schedule: str) -> bool:
    try:
        check_count_rule(counts, schedule)
    except ValueError:
        return False
    return True


def replay(init: torch.Tensor, trace: list, vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply the trace to ``init``; returns the final tokens and reveals per position. Checks that
    a reveal hits a masked position and a remask an unmasked one holding the recorded token."""
    tokens, reveals = init.clone(), torch.zeros(init.shape, dtype=torch.long)
    for record in trace:
        for b in range(init.shape[0]):
            valid = record.positions[b] >= 0
            where, what = record.positions[b][valid], record.tokens[b][valid]
            if record.kind == "reveal":
                assert (tokens[b, where] == vocab).all(), "a reveal only fills masked positions"
                tokens[b, where] = what
                reveals[b, where] += 1
            else:
                assert record.kind == "remask"
                assert torch.equal(tokens[b, where], what), "a remask record holds the erased tokens"
                tokens[b, where] = vocab
    return tokens, reveals


@settings(max_examples=120, deadline=None)
@given(
    name=st.sampled_from(ALL),
    length=st.integers(1, 12),
    vocab=st.integers(1, 9),
    batch=st.integers(1, 4),
    data=st.data(),
)
def test_sampler_invariants(name, length, vocab, batch, data):
    params = draw_params(name, length, data)
    seed = data.draw(st.integers(0, 2**31))
    given_mask = data.draw(st.lists(st.booleans(), min_size=length, max_size=length))
    num_masked = length - sum(given_mask)
    if name in PLANNED:  # maskgit_pytorch's rounding cannot cover some (L, T): refused, named
        try:
            expected = unmask_counts(
                torch.full((batch,), num_masked),
                params["steps"],
                params["schedule"],
                params["counts"],
                length,
            )
        except ValueError as err:
            assert "reveals" in str(err)
            assume(False)
    denoiser = RandomNetDenoiser(vocab, length, seed=seed % 97)
    init = torch.full((batch, length), vocab, dtype=torch.long)
    keep = torch.tensor(given_mask)
    init[:, keep] = torch.randint(
        0, vocab, (batch, int(keep.sum())), generator=torch.Generator().manual_seed(seed)
    )
    sampler = build(name, **params)

    out = sampler.sample(
        denoiser, batch, generator=torch.Generator().manual_seed(seed), init=init, trace=True
    )

    assert out.tokens.shape == (batch, length)
    assert ((out.tokens >= 0) & (out.tokens < vocab)).all(), "no mask ids left, all tokens real"
    assert torch.equal(out.tokens[:, keep], init[:, keep]), "given tokens never change"
    final, reveals = replay(init, out.trace, vocab)
    assert torch.equal(final, out.tokens), "the trace replays to the output"
    remasks = sum(int((r.positions >= 0).sum()) for r in out.trace if r.kind == "remask")
    remasking = name == "remdm" or (name == "semi_ar" and params["base"] == "remdm")
    assert remasking or remasks == 0, "only remasking samplers remask"
    assert int(reveals.sum()) == batch * int((~keep).sum()) + remasks, (
        "every remasked position is revealed again"
    )
    assert out.nfe == denoiser.calls, "nfe counts every denoiser call"
    assert out.cost == out.nfe
    steps_used = {(r.block, r.step) for r in out.trace}
    if name in PLANNED:
        steps = params["steps"]
        per_step = torch.zeros(batch, steps, dtype=torch.long)
        for r in out.trace:
            per_step[:, r.step] += (r.positions >= 0).sum(dim=1)
        assert torch.equal(per_step, expected)
        # a plain denoiser under partial caching is charged a full call per chunk of each step
        chunks = expected.max(dim=0).values.clamp(max=params.get("substeps", 1))
        assert out.nfe == int(chunks.sum())
    elif name in ("ancestral", "remdm"):
        assert len(steps_used) <= params["steps"] and out.nfe <= params["steps"] * params.get("substeps", 1)
    elif name in ("threshold", "eb"):
        bound = params["max_steps"] or length
        assert out.nfe == len(steps_used) <= bound
        done = torch.zeros(batch, dtype=torch.long)
        for r in out.trace:  # every step reveals at least one position of each unfinished row
            revealed = (r.positions >= 0).sum(dim=1)
            assert (revealed[done < num_masked] >= 1).all()
            done += revealed
    elif name == "first_hitting":
        if params["max_steps"] is None:
            assert out.nfe == num_masked and all(
                ((r.positions >= 0).sum(dim=1) <= 1).all() for r in out.trace
            )
        else:
            assert out.nfe <= params["max_steps"]
    else:  # semi_ar: blocks in order, each record inside its block
        block = params["block_length"]
        assert [r.block for r in out.trace] == sorted(r.block for r in out.trace)
        for r in out.trace:
            inside = r.positions[r.positions >= 0]
            assert (inside // block == r.block).all()
    again = sampler.sample(
        denoiser, batch, generator=torch.Generator().manual_seed(seed), init=init, trace=True
    )
    assert torch.equal(again.tokens, out.tokens), "same generator state, bit-identical output"
    assert again.nfe == out.nfe


@pytest.mark.parametrize("name", ALL)
def test_nfe_equals_denoiser_calls_and_seeds_differ(name):
    denoiser = RandomNetDenoiser(32, 24)
    sampler = build(name, **params_for(name, 6, 24))
    a = sampler.sample(denoiser, 16, generator=torch.Generator().manual_seed(1))
    assert a.nfe == denoiser.calls
    b = sampler.sample(denoiser, 16, generator=torch.Generator().manual_seed(2))
    if name not in ("confidence", "margin", "entropy", "halton"):
        assert not torch.equal(a.tokens, b.tokens)


def test_batch_rows_are_independent_of_batch_size_for_deterministic_orders():
    # confidence order with a product law: row 0 of a batch of 1 and of 5 see the same logits
    logits = torch.randn(1, 10, 6, generator=torch.Generator().manual_seed(0))
    one = build("confidence", steps=10, temperature=1e-3).sample(
        FixedLogits(logits), 1, generator=torch.Generator().manual_seed(0)
    )
    five = build("confidence", steps=10, temperature=1e-3).sample(
        FixedLogits(logits), 5, generator=torch.Generator().manual_seed(0)
    )
    assert (five.tokens == one.tokens).all()


def test_halton_order_is_a_spread_permutation():
    order = halton_order(64, (8, 8))
    assert sorted(order.tolist()) == list(range(64))
    first4 = {(int(p) // 8, int(p) % 8) for p in order[:4]}
    assert len({r // 4 for r, _ in first4}) == 2 and len({c // 4 for _, c in first4}) == 2, "quadrants"
    assert sorted(halton_order(10).tolist()) == list(range(10))


def test_halton_sampler_reveals_in_halton_order():
    denoiser = RandomNetDenoiser(5, 16)
    out = build("halton", steps=16, grid=(4, 4)).sample(
        denoiser, 2, generator=torch.Generator().manual_seed(0), trace=True
    )
    order = torch.stack([r.positions[:, 0] for r in out.trace], dim=1)
    assert torch.equal(order, halton_order(16, (4, 4)).expand(2, -1))


# ---- bad input ------------------------------------------------------------------------------


def test_unknown_sampler_lists_known_names():
    with pytest.raises(ValueError, match="unknown sampler 'foo'; known: ancestral, confidence"):
        build("foo")


def test_unknown_parameter_is_named():
    with pytest.raises(ValueError, match=r"no parameter 'beta'.*alpha"):
        build("moment", beta=2.0)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("random", {"steps": 0}, "steps=0"),
        ("maskgit", {"steps": 2.5}, "steps=2.5"),
        ("confidence", {"temperature": math.inf}, "temperature=inf"),
        ("confidence", {"temperature": 1e-40}, "temperature=1e-40"),
        ("maskgit", {"counts": "fibonacci"}, "counts='fibonacci'"),
        ("low_confidence", {"schedule": "cosine"}, "schedule='cosine' is not defined for counts='llada'"),
        ("maskgit", {"anneal": "sideways"}, "anneal='sideways'"),
        ("maskgit", {"anneal": "pytorch", "steps": 1}, "steps >= 2"),
        ("threshold", {"threshold": 0.9, "factor": 1.0}, "give one"),
        ("threshold", {"threshold": None, "factor": 0.0}, "factor=0.0"),
        ("moment", {"temperature": -1.0}, "temperature=-1.0"),
        ("moment", {"alpha": 0.0}, "alpha=0.0"),
        ("maskgit", {"alpha": -2.0}, "alpha=-2.0"),
        ("maskgit", {"alpha": math.nan}, "alpha=nan"),
        ("moment", {"token_temperature": 0.0}, "token_temperature=0.0"),
        ("entropy", {"schedule": "cubic"}, "schedule='cubic'"),
        ("halton", {"grid": (0, 4)}, "grid="),
    ],
)
def test_bad_parameters_raise_value_error_naming_them(name, params, match):
    with pytest.raises(ValueError, match=match):
        build(name, **params)


@pytest.mark.parametrize("name", FIXED_COUNT)
def test_steps_beyond_length_are_rejected_before_any_call(name):
    denoiser = RandomNetDenoiser(4, 8)
    with pytest.raises(ValueError, match=r"steps=9 exceeds the sequence length L=8"):
        build(name, steps=9).sample(denoiser, 1, generator=torch.Generator())
    assert denoiser.calls == 0


def test_halton_grid_that_does_not_match_length():
    with pytest.raises(ValueError, match=r"grid=\(3, 3\) has 9 cells but the sequence length is 16"):
        build("halton", steps=4, grid=(3, 3)).sample(RandomNetDenoiser(4, 16), 1, generator=torch.Generator())


class BadAtStep:
    """Returns good logits, except at call ``bad_call`` where it returns ``kind``."""

    def __init__(self, kind: str, bad_call: int):
        self.inner = RandomNetDenoiser(6, 12)
        self.vocab_size, self.seq_len = 6, 12
        self.kind, self.bad_call, self.calls = kind, bad_call, 0

    def __call__(self, tokens, cond=None):
        logits = self.inner(tokens)
        self.calls += 1
        if self.calls - 1 == self.bad_call:
            if self.kind == "nan":
                logits = logits.clone()
                logits[:, :, 2] = float("nan")
            else:
                logits = logits[:, :, :-1]
        return logits


@pytest.mark.parametrize("name", ALL)
def test_nan_logits_name_the_step(name):
    with pytest.raises(ValueError, match=r"NaN or infinite logits at step 2"):
        build(name, **params_for(name, 6, 12)).sample(
            BadAtStep("nan", 2), 2, generator=torch.Generator().manual_seed(0)
        )


@pytest.mark.parametrize("name", ALL)
def test_wrong_logit_shape_names_the_step(name):
    with pytest.raises(ValueError, match=r"shape \(2, 12, 5\) at step 0; expected \(2, 12, 6\)"):
        build(name, **params_for(name, 4, 12)).sample(BadAtStep("shape", 0), 2, generator=torch.Generator())


def test_init_with_wrong_shape_or_ids():
    sampler = build("random", steps=2)
    with pytest.raises(ValueError, match="init has shape"):
        sampler.sample(RandomNetDenoiser(4, 8), 2, generator=torch.Generator(), init=torch.zeros(2, 7).long())
    with pytest.raises(ValueError, match=r"init holds ids outside 0\.\.4"):
        sampler.sample(RandomNetDenoiser(4, 8), 1, generator=torch.Generator(), init=torch.full((1, 8), 5))


def test_every_registered_sampler_is_a_frozen_dataclass():
    for cls in SAMPLERS.values():
        sampler = cls()
        with pytest.raises(AttributeError):
            sampler.steps = 3


def test_a_budget_sets_the_key_that_spends_it():
    assert spend_budget("moment", {"alpha": 2.0}, 6, 24) == {"alpha": 2.0, "steps": 6}
    assert spend_budget("eb", {}, 6, 24) == {"max_steps": 6}
    assert spend_budget("llada", {"block_length": 8}, 6, 24) == {"block_length": 8, "steps": 6}
    # semi_ar: per block, at least one call each; with its own total steps (LLaDA's convention): the total
    assert spend_budget("semi_ar", {"block_length": 6}, 8, 24)["base_params"] == {"steps": 2}
    assert spend_budget("semi_ar", {"block_length": 6}, 2, 24)["base_params"] == {"steps": 1}
    assert spend_budget("semi_ar", {"block_length": 6, "steps": 8}, 4, 24)["steps"] == 4
    with pytest.raises(ValueError, match="'fast_dllm' has no call budget"):
        spend_budget("fast_dllm", {}, 4, 24)
    with pytest.raises(ValueError, match="budget=0 must be an integer >= 1"):
        spend_budget("moment", {}, 0, 24)
