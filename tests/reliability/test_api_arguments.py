"""The Python sampling API checks its arguments and protects given tokens, for every sampler and
peer: a bad argument of ``sample`` raises ``TypeError`` or ``ValueError`` whose message starts
with the argument's name, before any denoiser call; logits on another device than the tokens are
refused naming the step; a denoiser that writes into its input changes neither the caller's
``init`` nor the output (bit-identical to a well-behaved denoiser's, same seed)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from conftest import ConditionalRandomNet, RandomNetDenoiser
from unmask.samplers import build, peer_samplers, registered_samplers, sampler_parameters
from unmask.samplers.budget import budget_key, spend_budget

NAMES = registered_samplers() + peer_samplers()
CACHING = [n for n in registered_samplers() if "substeps" in sampler_parameters(n)]
VOCAB, LENGTH, BATCH, STEPS = 4, 8, 2, 4


def params_for(name: str) -> dict[str, Any]:
    """Parameters that fit a ``LENGTH``-position denoiser: a budget of ``STEPS`` calls where the
    sampler has one, ``semi_ar`` in two blocks."""
    params: dict[str, Any] = {"block_length": LENGTH // 2} if name == "semi_ar" else {}
    return params if budget_key(name) is None else spend_budget(name, params, STEPS, LENGTH)


def seeded(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def given_init() -> torch.Tensor:
    """Two rows with given tokens at positions 0, 3 and 5 (mask id ``VOCAB`` elsewhere)."""
    init = torch.full((BATCH, LENGTH), VOCAB)
    init[:, [0, 3, 5]] = torch.tensor([[1, 2, 3], [0, 0, 2]])
    return init


class PartialNet(RandomNetDenoiser):
    """``RandomNetDenoiser`` with ``encode`` / ``refresh`` (exact: a refresh recomputes every row)."""

    def encode(self, tokens: torch.Tensor, cond: Any = None) -> tuple[torch.Tensor, None]:
        return self(tokens, cond), None

    def refresh(self, tokens: torch.Tensor, rows: torch.Tensor, cache: Any, cond: Any = None) -> torch.Tensor:
        full = self(tokens, cond)
        return full.gather(1, rows[:, :, None].expand(-1, -1, full.shape[-1]))


class Writer:
    """Forwards every call to ``base``, then overwrites the tokens it was given with id 0."""

    def __init__(self, base: Any):
        self.base = base
        self.vocab_size, self.seq_len = base.vocab_size, base.seq_len
        if hasattr(base, "num_classes"):
            self.num_classes = base.num_classes

    def __call__(self, tokens: torch.Tensor, cond: Any = None) -> torch.Tensor:
        logits = self.base(tokens, cond)
        tokens.fill_(0)
        return logits


class PartialWriter(Writer):
    def encode(self, tokens: torch.Tensor, cond: Any = None):
        out = self.base.encode(tokens, cond)
        tokens.fill_(0)
        return out

    def refresh(self, tokens: torch.Tensor, rows: torch.Tensor, cache: Any, cond: Any = None):
        out = self.base.refresh(tokens, rows, cache, cond)
        tokens.fill_(0)
        return out


class Forwarder(Writer):
    """Forwards every call to ``base`` and counts them (a transparent wrapper)."""

    def __init__(self, base: Any):
        super().__init__(base)
        self.calls = 0

    def __call__(self, tokens: torch.Tensor, cond: Any = None) -> torch.Tensor:
        self.calls += 1
        return self.base(tokens, cond)


class MetaLogits(RandomNetDenoiser):
    def __call__(self, tokens: torch.Tensor, cond: Any = None) -> torch.Tensor:
        return torch.empty(*tokens.shape, self.vocab_size, device="meta")


class OnDevice(RandomNetDenoiser):
    """Claims to live on ``meta``: a CPU generator is on another device."""

    device = torch.device("meta")


class Shapeless:
    def __call__(self, tokens: torch.Tensor, cond: Any = None) -> torch.Tensor:
        raise AssertionError("never called")


class FloatLength(RandomNetDenoiser):
    def __init__(self) -> None:
        super().__init__(VOCAB, LENGTH)
        self.seq_len = float(LENGTH)


# (label, keyword overrides of sample, exception type, message start)
BAD = [
    ("generator None", {"generator": None}, TypeError, "generator must be a torch.Generator"),
    ("generator int", {"generator": 3}, TypeError, "generator must be a torch.Generator"),
    ("generator device", {"denoiser": OnDevice(VOCAB, LENGTH)}, ValueError, "generator is on cpu"),
    ("batch_size str", {"batch_size": "2"}, ValueError, "batch_size='2'"),
    ("batch_size float", {"batch_size": 2.0}, ValueError, "batch_size=2.0"),
    ("batch_size bool", {"batch_size": True}, ValueError, "batch_size=True"),
    ("batch_size zero", {"batch_size": 0}, ValueError, "batch_size=0"),
    ("init list", {"init": [[VOCAB] * LENGTH] * BATCH}, TypeError, "init must be a torch.Tensor"),
    ("init shape", {"init": torch.full((BATCH, LENGTH - 1), VOCAB)}, ValueError, "init has shape"),
    (
        "init float",
        {"init": torch.full((BATCH, LENGTH), float(VOCAB))},
        ValueError,
        "init must be an integer",
    ),
    ("init ids", {"init": torch.full((BATCH, LENGTH), VOCAB + 1)}, ValueError, "init holds ids"),
    ("denoiser str", {"denoiser": "x"}, TypeError, "denoiser must be a Denoiser"),
    ("denoiser shapeless", {"denoiser": Shapeless()}, TypeError, "denoiser must be a Denoiser"),
    ("denoiser float length", {"denoiser": FloatLength()}, ValueError, "denoiser.seq_len=8.0"),
    ("cond str", {"denoiser": ConditionalRandomNet(VOCAB, LENGTH), "cond": "a"}, TypeError, "cond must be"),
    (
        "cond float",
        {"denoiser": ConditionalRandomNet(VOCAB, LENGTH), "cond": torch.zeros(BATCH)},
        ValueError,
        "cond must be",
    ),
    (
        "cond shape",
        {"denoiser": ConditionalRandomNet(VOCAB, LENGTH), "cond": torch.zeros(3).long()},
        ValueError,
        "cond must be",
    ),
    (
        "cond ids",
        {"denoiser": ConditionalRandomNet(VOCAB, LENGTH), "cond": torch.tensor([0, 9])},
        ValueError,
        "cond holds",
    ),
    ("trace int", {"trace": 1}, TypeError, "trace must be a bool"),
]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("label", "override", "error", "start"), BAD, ids=[case[0] for case in BAD])
def test_a_bad_argument_is_refused_by_name_before_any_call(name, label, override, error, start):
    arguments = {"denoiser": RandomNetDenoiser(VOCAB, LENGTH), "batch_size": BATCH, "generator": seeded()}
    arguments |= override
    denoiser = arguments["denoiser"]
    with pytest.raises(error) as raised:
        build(name, **params_for(name)).sample(
            arguments.pop("denoiser"), arguments.pop("batch_size"), **arguments
        )
    assert str(raised.value).startswith(start), str(raised.value)
    assert getattr(denoiser, "calls", 0) == 0


@pytest.mark.parametrize("name", NAMES)
def test_logits_on_another_device_are_refused_naming_the_step(name):
    with pytest.raises(
        ValueError, match=r"^denoiser returned logits on meta at step 0; expected the tokens' device cpu"
    ):
        build(name, **params_for(name)).sample(MetaLogits(VOCAB, LENGTH), BATCH, generator=seeded())


def test_encode_logits_on_another_device_are_refused_naming_the_step():
    class MetaEncode(PartialNet):
        def encode(self, tokens, cond=None):
            return torch.empty(*tokens.shape, self.vocab_size, device="meta"), None

    with pytest.raises(ValueError, match=r"^denoiser\.encode returned logits on meta at step 0"):
        build("moment", steps=STEPS, substeps=2).sample(MetaEncode(VOCAB, LENGTH), BATCH, generator=seeded())


def assert_protected(sampler: Any, base: Any, writer: Any, **options: Any) -> None:
    """``writer`` (``base``, writing into its input) gives ``base``'s output, bit for bit, and
    leaves ``init`` and its given tokens alone."""
    init = given_init()
    kept = init.clone()
    expected = sampler.sample(base, BATCH, generator=seeded(3), init=init.clone(), **options)
    out = sampler.sample(writer, BATCH, generator=seeded(3), init=init, **options)
    assert torch.equal(init, kept), "the caller's init is never written"
    assert torch.equal(out.tokens, expected.tokens)
    given = kept != VOCAB
    assert torch.equal(out.tokens[given], kept[given]), "given tokens are kept"
    assert (out.nfe, out.cost) == (expected.nfe, expected.cost)


@pytest.mark.parametrize("name", NAMES)
def test_a_denoiser_writing_into_its_input_changes_nothing(name):
    base = RandomNetDenoiser(VOCAB, LENGTH)
    assert_protected(build(name, **params_for(name)), base, Writer(base))


@pytest.mark.parametrize("name", CACHING)
def test_encode_and_refresh_writing_into_their_input_change_nothing(name):
    base = PartialNet(VOCAB, LENGTH)
    assert_protected(build(name, steps=STEPS, substeps=3), base, PartialWriter(base))


def test_a_guided_denoiser_writing_into_its_input_changes_nothing():
    base = ConditionalRandomNet(VOCAB, LENGTH)
    sampler = build("moment", steps=STEPS, cfg_scale=1.5)
    assert_protected(sampler, base, Writer(base), cond=torch.tensor([0, 2]))


def test_init_is_copied_even_when_it_needs_no_conversion():
    init = given_init().to(torch.long)
    out = build("random", steps=STEPS).sample(
        RandomNetDenoiser(VOCAB, LENGTH), BATCH, generator=seeded(), init=init
    )
    assert out.tokens.data_ptr() != init.data_ptr()


@pytest.mark.parametrize("name", NAMES)
def test_a_seeded_run_is_unchanged_through_a_transparent_wrapper(name):
    base = RandomNetDenoiser(VOCAB, LENGTH)
    wrapped = Forwarder(base)
    sampler = build(name, **params_for(name))
    plain = sampler.sample(base, BATCH, generator=seeded(5), init=given_init(), trace=True)
    seen = sampler.sample(wrapped, BATCH, generator=seeded(5), init=given_init(), trace=True)
    assert torch.equal(plain.tokens, seen.tokens)
    assert (plain.nfe, plain.cost) == (seen.nfe, seen.cost)
    assert wrapped.calls == seen.nfe
    assert [(r.step, r.kind, r.positions.tolist(), r.tokens.tolist()) for r in plain.trace] == [
        (r.step, r.kind, r.positions.tolist(), r.tokens.tolist()) for r in seen.trace
    ]
