"""Checkpoints: round trip, and every way a checkpoint can be wrong fails before compute with the
file and the mismatch named."""

import inspect
import json

import pytest
import torch

from unmask.models.checkpoint import (
    CONFIG_KEYS,
    KINDS,
    CheckpointError,
    add_card_metrics,
    available,
    load_card,
    load_model,
    save_checkpoint,
)
from unmask.models.transformer import MaskedTransformer
from unmask.models.vq import VQAutoencoder

CONFIG = {"vocab_size": 7, "seq_len": 12, "width": 16, "depth": 2, "heads": 2}


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    model = MaskedTransformer(**CONFIG)
    save_checkpoint(model, {"name": "tiny", "kind": "denoiser", "config": CONFIG}, tmp_path / "tiny")
    return model, tmp_path / "tiny"


def test_round_trip_gives_identical_outputs(saved):
    model, stem = saved
    loaded = load_model(stem)
    tokens = torch.randint(0, 8, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens), model.eval()(tokens))
    card = load_card(stem.with_suffix(".json"))
    assert card["weights_bytes"] == stem.with_suffix(".safetensors").stat().st_size
    assert not list(stem.parent.glob("*.tmp"))


def test_vq_round_trip(tmp_path):
    vq = VQAutoencoder(codebook_size=8, code_dim=4, hidden=8)
    save_checkpoint(
        vq, {"kind": "vq", "config": {"codebook_size": 8, "code_dim": 4, "hidden": 8}}, tmp_path / "vq"
    )
    images = torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8)
    assert torch.equal(load_model(tmp_path / "vq").encode(images), vq.encode(images))


def test_wrong_hash_names_the_file(saved):
    _, stem = saved
    weights = stem.with_suffix(".safetensors")
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"tiny\.safetensors: sha256 .* does not match its card"):
        load_model(stem)


def test_missing_weights_and_card(saved):
    _, stem = saved
    stem.with_suffix(".safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"weights .*tiny\.safetensors do not exist"):
        load_model(stem)
    stem.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match=r"card .*tiny\.json does not exist"):
        load_model(stem)


def test_corrupt_card_and_config_mismatch(saved):
    _, stem = saved
    card_path = stem.with_suffix(".json")
    card = json.loads(card_path.read_text())
    card_path.write_text(json.dumps(dict(card, config=dict(CONFIG, width=32))))
    with pytest.raises(CheckpointError, match="tensors do not match the config"):
        load_model(stem)
    card_path.write_text(json.dumps(dict(card, config=dict(CONFIG, depth=-1))))
    with pytest.raises(CheckpointError, match=r"tiny\.json: config\.depth=-1 must be an integer >= 1"):
        load_model(stem)
    card_path.write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(stem)


def test_truncated_weights_are_reported(saved):
    _, stem = saved
    weights = stem.with_suffix(".safetensors")
    weights.write_bytes(weights.read_bytes()[:100])
    card = json.loads(stem.with_suffix(".json").read_text())
    from unmask.io import sha256_of

    card |= {"weights_sha256": sha256_of(weights), "weights_bytes": weights.stat().st_size}
    stem.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        load_model(stem)


def test_unknown_name_lists_the_shipped_ones():
    with pytest.raises(CheckpointError, match="unknown checkpoint 'nope'; shipped:"):
        load_model("nope")


def test_every_shipped_card_passes_the_card_checks():
    assert {"mnist", "mnist_vq", "shakespeare"} <= set(available())
    for name in available():
        load_card(name)


def test_card_config_keys_are_the_constructor_parameters():
    for kind, cls in KINDS.items():
        params = inspect.signature(cls.__init__).parameters.values()
        own = {p.name: p.default is inspect.Parameter.empty for p in params if p.name != "self"}
        assert {key: required for key, (_, required) in CONFIG_KEYS[kind].items()} == own, kind


def test_a_card_the_loader_would_refuse_is_not_saved(tmp_path):
    model = MaskedTransformer(**CONFIG)
    with pytest.raises(CheckpointError, match=r"dropout: unknown key.*nothing was written"):
        save_checkpoint(model, {"kind": "denoiser", "config": CONFIG, "dropout": 0.1}, tmp_path / "tiny")
    assert not list(tmp_path.iterdir())


def test_added_metrics_merge_into_the_card_and_leave_the_weights_alone(saved):
    model, stem = saved
    weights = stem.with_suffix(".safetensors").read_bytes()
    sha = load_card(stem)["weights_sha256"]
    add_card_metrics(stem, {"heldout/nelbo_bits": 2.5, "val/nelbo_bits": 3.0}, sha)
    add_card_metrics(stem, {"heldout/nelbo_bits": 2.4}, sha)
    assert load_card(stem)["metrics"] == {"heldout/nelbo_bits": 2.4, "val/nelbo_bits": 3.0}
    assert stem.with_suffix(".safetensors").read_bytes() == weights
    assert torch.equal(load_model(stem).token_embedding.weight, model.token_embedding.weight)
    assert sorted(p.name for p in stem.parent.iterdir()) == ["tiny.json", "tiny.safetensors"]


def test_metrics_for_other_weights_or_of_a_bad_value_write_nothing(saved):
    _, stem = saved
    card = stem.with_suffix(".json").read_bytes()
    with pytest.raises(CheckpointError, match="not the " + "0" * 64 + " that were scored"):
        add_card_metrics(stem, {"heldout/nelbo_bits": 2.5}, "0" * 64)
    with pytest.raises(CheckpointError, match=r"metrics.heldout/nelbo_bits='x' must be a number"):
        add_card_metrics(stem, {"heldout/nelbo_bits": "x"}, load_card(stem)["weights_sha256"])
    assert stem.with_suffix(".json").read_bytes() == card
    assert sorted(p.name for p in stem.parent.iterdir()) == ["tiny.json", "tiny.safetensors"]
