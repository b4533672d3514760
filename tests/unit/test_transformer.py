"""The built-in transformer: the partial forward agrees with the full forward and with a
layer-by-layer reference (float32, atol 1e-5)."""

import pytest
import torch
import torch.nn.functional as F

from unmask.models.transformer import KVCache, MaskedTransformer, apply_rotary


def make_model(positions="learned", **kw):
    torch.manual_seed(0)
    params = {"width": 32, "depth": 3, "heads": 4} | kw
    return MaskedTransformer(11, 24, positions=positions, **params).eval()


def gather_rows(logits, rows):
    return logits.gather(1, rows[:, :, None].expand(-1, -1, logits.shape[2]))


def reference_refresh(model, tokens, rows, cache: KVCache):
    """Recompute only ``rows`` layer by layer with explicit softmax attention (no sdpa, no
    scatter): keys/values of ``rows`` from the new inputs, all others from the cache."""
    positions = rows
    h = model.token_embedding(tokens.gather(1, rows))
    if model.positions == "learned":
        h = h + model.position_embedding[positions]
    for layer, block in enumerate(model.blocks):
        batch, q_len, width = h.shape
        heads, dim = block.heads, width // block.heads
        qkv = block.qkv(block.ln1(h)).view(batch, q_len, 3, heads, dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if model.positions == "rotary":
            cos, sin = model.rotary_cos[positions][:, None], model.rotary_sin[positions][:, None]
            q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        keys, values = cache.keys[layer].clone(), cache.values[layer].clone()
        for b in range(batch):
            for j in range(q_len):
                keys[b, :, rows[b, j]] = k[b, :, j]
                values[b, :, rows[b, j]] = v[b, :, j]
        weights = F.softmax(q @ keys.transpose(-1, -2) / dim**0.5, dim=-1)
        h = block.finish(h, weights @ values)
    return model.head(model.ln_out(h))


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_refresh_with_unchanged_tokens_equals_full_forward(positions):
    model = make_model(positions)
    tokens = torch.randint(0, 12, (3, 24), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full, cache = model.encode(tokens)
        for rows in (torch.tensor([[0, 5, 23]] * 3), torch.tensor([[7]] * 3), torch.arange(24).expand(3, -1)):
            torch.testing.assert_close(
                model.refresh(tokens, rows, cache), gather_rows(full, rows), atol=1e-5, rtol=0
            )
        torch.testing.assert_close(model(tokens), full)


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_refresh_with_changed_tokens_equals_layer_by_layer_reference(positions):
    model = make_model(positions)
    g = torch.Generator().manual_seed(2)
    tokens = torch.full((2, 24), 11)
    with torch.no_grad():
        _, cache = model.encode(tokens)
        for q in (3, 6, 1):  # rows of different sizes across calls, cache updated in place
            rows = torch.stack([torch.randperm(24, generator=g)[:q] for _ in range(2)])
            tokens = tokens.clone()
            tokens.scatter_(1, rows, torch.randint(0, 11, rows.shape, generator=g))
            expected = reference_refresh(model, tokens, rows, KVCache(list(cache.keys), list(cache.values)))
            got = model.refresh(tokens, rows, cache)
            torch.testing.assert_close(got, expected, atol=1e-5, rtol=0)


def test_refresh_differs_from_full_forward_only_through_stale_rows():
    # after a change, refreshed rows see the new tokens (unlike the stale full logits)
    model = make_model()
    tokens = torch.full((1, 24), 11)
    with torch.no_grad():
        full, cache = model.encode(tokens)
        changed = tokens.clone()
        changed[0, 3] = 4
        rows = torch.tensor([[3, 10]])
        refreshed = model.refresh(changed, rows, cache)
        assert not torch.allclose(refreshed, gather_rows(full, rows), atol=1e-4)


def test_batch_rows_are_independent_and_batch_of_one_works():
    model = make_model(num_classes=3, time_conditioning=True)
    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, 12, (4, 24), generator=g)
    labels = torch.tensor([0, 1, 2, 3])
    rows = torch.randint(0, 24, (4, 5), generator=g)
    with torch.no_grad():
        full, cache = model.encode(tokens, labels)
        both = model.refresh(tokens, rows, cache, labels)
        for b in range(4):
            one_full, one_cache = model.encode(tokens[b : b + 1], labels[b : b + 1])
            torch.testing.assert_close(one_full, full[b : b + 1], atol=1e-5, rtol=0)
            one = model.refresh(tokens[b : b + 1], rows[b : b + 1], one_cache, labels[b : b + 1])
            torch.testing.assert_close(one, both[b : b + 1], atol=1e-5, rtol=0)


def test_bad_cache_rows_and_config_are_named():
    model = make_model()
    tokens = torch.full((2, 24), 11)
    with torch.no_grad():
        _, cache = model.encode(tokens)
        with pytest.raises(ValueError, match="cache is for batch 2"):
            model.refresh(torch.full((3, 24), 11), torch.zeros(3, 1).long(), cache)
        with pytest.raises(ValueError, match="rows must be"):
            model.refresh(tokens, torch.zeros(3, 1).long(), cache)
        with pytest.raises(ValueError, match=r"tokens must be \[B, 24\]"):
            model(torch.full((2, 20), 11))
        with pytest.raises(ValueError, match="no class conditioning"):
            model(tokens, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="positions='alibi'"):
        MaskedTransformer(4, 8, positions="alibi")
    with pytest.raises(ValueError, match="width=30"):
        MaskedTransformer(4, 8, width=30, heads=4)


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_a_grown_network_computes_its_source_function_and_then_trains_every_block(positions):
    """``grown_state``: the appended blocks are the identity (full and partial forward, exactly),
    and one gradient step moves their parameters (the zeroed projections do not freeze them)."""
    from unmask.cli.train import grown_state

    source = make_model(positions)
    torch.manual_seed(1)
    deeper = MaskedTransformer(11, 24, positions=positions, width=32, depth=5, heads=4)
    state, appended = grown_state(source, deeper)
    deeper.load_state_dict(state)
    assert appended == 2
    tokens = torch.randint(0, 12, (3, 24), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        assert torch.equal(deeper(tokens), source(tokens))
        rows = torch.tensor([[0, 5], [3, 4], [7, 23]])
        _, cache = deeper.encode(tokens)
        _, source_cache = source.encode(tokens)
        assert torch.equal(deeper.refresh(tokens, rows, cache), source.refresh(tokens, rows, source_cache))
    before = {k: v.clone() for k, v in deeper.named_parameters() if k.startswith(("blocks.3", "blocks.4"))}
    optimizer = torch.optim.SGD(deeper.parameters(), lr=0.1)
    for _ in range(2):  # the first step moves the zeroed projections, the second everything behind them
        optimizer.zero_grad()
        F.cross_entropy(deeper(tokens).transpose(1, 2), tokens.clamp(max=10)).backward()
        optimizer.step()
    moved = {k for k, p in deeper.named_parameters() if k in before and not torch.equal(p, before[k])}
    assert moved == set(before)


def test_network_arguments_fill_the_defaults_so_spelled_out_and_left_out_compare_equal():
    """``check_init_from`` compares recipes and cards through ``network_arguments``: a card that
    leaves out ``depth`` (the class default, 6) and ``mlp_ratio`` equals a recipe that spells them out;
    a different value still differs."""
    from unmask.cli.train import network_arguments

    card = {"vocab_size": 84, "seq_len": 128, "width": 192, "positions": "rotary"}
    recipe = {**card, "depth": 6, "mlp_ratio": 4, "heads": 4, "time_conditioning": False}
    assert network_arguments(card) == network_arguments(recipe)
    assert network_arguments(card)["depth"] == 6
    assert network_arguments(card) != network_arguments({**recipe, "mlp_ratio": 2.0})


def test_dropout_acts_in_training_mode_only_and_leaves_the_state_dict_unchanged():
    """Residual dropout has no parameters: a network with ``dropout=0.3`` loads the state of one
    without, computes the same function in eval mode (full and partial forward, exactly), and in
    training mode differs from it; the drop rate of its ``nn.Dropout`` is the one asked for."""
    torch.manual_seed(0)
    plain = MaskedTransformer(11, 24, positions="rotary", width=32, depth=2, heads=4).eval()
    dropped = MaskedTransformer(11, 24, positions="rotary", width=32, depth=2, heads=4, dropout=0.3)
    dropped.load_state_dict(plain.state_dict())
    assert set(dropped.state_dict()) == set(plain.state_dict())
    tokens = torch.randint(0, 12, (3, 24), generator=torch.Generator().manual_seed(2))
    rows = torch.tensor([[0, 5], [3, 4], [7, 23]])
    with torch.no_grad():
        dropped.eval()
        assert torch.equal(dropped(tokens), plain(tokens))
        _, cache = dropped.encode(tokens)
        _, plain_cache = plain.encode(tokens)
        assert torch.equal(dropped.refresh(tokens, rows, cache), plain.refresh(tokens, rows, plain_cache))
        dropped.train()
        assert not torch.allclose(dropped(tokens), plain(tokens))
    assert {m.p for m in dropped.modules() if isinstance(m, torch.nn.Dropout)} == {0.3}
    with pytest.raises(ValueError, match=r"dropout=1.0 must be in \[0, 1\)"):
        MaskedTransformer(4, 8, dropout=1.0)
