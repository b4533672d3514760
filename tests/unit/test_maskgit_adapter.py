"""The MaskGIT adapter (unmask.models.maskgit) on tiny random instances saved in the real file
layouts: the port's ``{"model_state_dict": ...}`` transformer checkpoint, taming's Lightning
``{"state_dict": ...}`` VQGAN checkpoint and its ``model.yaml``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from hydra_cli import run_in_process
from tiny_maskgit import GRID, HIDDEN, MLP, SIZES, C, K, L, tiny_overrides, write_files
from unmask.models import fingerprint, maskgit
from unmask.models.maskgit import MaskGITDenoiser, MaskTransformerNet, VQGANDecoder
from unmask.samplers import build, peer_samplers, registered_samplers
from unmask.samplers.budget import budget_key, spend_budget

# the port's MaskTransformer names and shapes (Network/transformer.py) for K=16, C=3, 4 x 4 tokens,
# hidden 32, depth 1, mlp 64: ids = K + 1 (mask) + C + 1 (dropped label) = 21; positions = 16 + 1
PORT_TRANSFORMER = {
    "tok_emb.weight": [21, 32],
    "pos_emb": [1, 17, 32],
    "first_layer.0.weight": [32],
    "first_layer.0.bias": [32],
    "first_layer.2.weight": [32, 32],
    "first_layer.2.bias": [32],
    "first_layer.4.weight": [32],
    "first_layer.4.bias": [32],
    "first_layer.6.weight": [32, 32],
    "first_layer.6.bias": [32],
    "transformer.layers.0.0.norm.weight": [32],
    "transformer.layers.0.0.norm.bias": [32],
    "transformer.layers.0.0.fn.mha.in_proj_weight": [96, 32],
    "transformer.layers.0.0.fn.mha.in_proj_bias": [96],
    "transformer.layers.0.0.fn.mha.out_proj.weight": [32, 32],
    "transformer.layers.0.0.fn.mha.out_proj.bias": [32],
    "transformer.layers.0.1.norm.weight": [32],
    "transformer.layers.0.1.norm.bias": [32],
    "transformer.layers.0.1.fn.net.0.weight": [64, 32],
    "transformer.layers.0.1.fn.net.0.bias": [64],
    "transformer.layers.0.1.fn.net.3.weight": [32, 64],
    "transformer.layers.0.1.fn.net.3.bias": [32],
    "last_layer.0.weight": [32],
    "last_layer.0.bias": [32],
    "last_layer.2.weight": [32, 32],
    "last_layer.2.bias": [32],
    "last_layer.4.weight": [32],
    "last_layer.4.bias": [32],
    "bias": [17, 21],
}
# taming's VQModel names (models/vqgan.py, modules/diffusionmodules/model.py) on the decoding path
PORT_VQGAN = {
    "quantize.embedding.weight": [16, 8],
    "post_quant_conv.weight": [8, 8, 1, 1],
    "decoder.conv_in.weight": [64, 8, 3, 3],
    "decoder.mid.block_1.norm1.weight": [64],
    "decoder.mid.block_1.conv1.weight": [64, 64, 3, 3],
    "decoder.mid.attn_1.q.weight": [64, 64, 1, 1],
    "decoder.mid.attn_1.proj_out.bias": [64],
    "decoder.mid.block_2.conv2.weight": [64, 64, 3, 3],
    "decoder.up.1.block.0.conv1.weight": [64, 64, 3, 3],
    "decoder.up.1.attn.0.k.weight": [64, 64, 1, 1],
    "decoder.up.1.upsample.conv.weight": [64, 64, 3, 3],
    "decoder.up.0.block.0.nin_shortcut.weight": [32, 64, 1, 1],
    "decoder.up.0.block.1.norm2.bias": [32],
    "decoder.norm_out.weight": [32],
    "decoder.conv_out.weight": [3, 32, 3, 3],
}


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    return write_files(tmp_path / "ckpt")


@pytest.fixture
def model(files) -> MaskGITDenoiser:
    return MaskGITDenoiser(**files, **SIZES)


def test_the_tiny_instance_has_the_ports_key_names_and_shapes(files):
    net = MaskTransformerNet(K, C, L, HIDDEN, 1, 2, MLP)
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == PORT_TRANSFORMER
    saved = torch.load(files["transformer_path"], weights_only=True)["model_state_dict"]
    assert {k: list(v.shape) for k, v in saved.items()} == PORT_TRANSFORMER
    vq = {
        k: list(v.shape)
        for k, v in VQGANDecoder(
            K, 8, maskgit.vqgan_params(files["vqgan_path"].parent / "model.yaml")["ddconfig"]
        )
        .state_dict()
        .items()
    }
    assert {k: vq[k] for k in PORT_VQGAN} == PORT_VQGAN


def test_the_released_sizes_give_the_ports_parameter_count():
    # the port's README: 174.161M parameters for the transformer (hidden 768, depth 24, mlp 3072)
    with torch.device("meta"):
        net = MaskTransformerNet()
        vq = VQGANDecoder(1024, 256, maskgit_f16_ddconfig())
    assert net.tok_emb.weight.shape == (1024 + 1 + 1000 + 1, 768)
    assert net.pos_emb.shape == (1, 257, 768) and net.bias.shape == (257, 2026)
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 3) == 174.161
    assert net.mask_id == 1024 and net.class_offset == 1025 and net.null_id == 2025
    assert vq.decoder.conv_in.weight.shape == (512, 256, 3, 3)
    assert vq.decoder.up[4].attn[0].q.weight.shape == (512, 512, 1, 1)  # attention at 16 x 16
    assert vq.decoder.conv_out.weight.shape == (3, 128, 3, 3)


def maskgit_f16_ddconfig() -> dict[str, Any]:
    """taming's vqgan_imagenet_f16_1024 decoder (the VQGAN of the port)."""
    return {
        "ch": 128,
        "out_ch": 3,
        "ch_mult": [1, 1, 2, 2, 4],
        "num_res_blocks": 2,
        "attn_resolutions": [16],
        "resolution": 256,
        "z_channels": 256,
    }


def seen_inputs(model: MaskGITDenoiser) -> list[torch.Tensor]:
    """Records the ids the port's token embedding receives ([B, L + 1]: image ids, class id)."""
    seen: list[torch.Tensor] = []
    model.net.tok_emb.register_forward_pre_hook(lambda _m, args: seen.append(args[0].clone()))
    return seen


def test_mask_and_class_ids_reach_the_module_in_the_ports_layout(model):
    seen = seen_inputs(model)
    tokens = torch.tensor([[K] * L, list(range(K))])
    model(tokens, torch.tensor([0, 2]))
    model(tokens)  # unconditional
    model(tokens, torch.tensor([C, 1]))  # our null label
    model(tokens, torch.tensor(2))  # one id for every row
    assert seen[0].shape == (2, L + 1)
    assert torch.equal(seen[0][0, :L], torch.full((L,), K))  # our mask id -> the port's (K)
    assert torch.equal(seen[0][1, :L], torch.arange(K))
    assert seen[0][:, L].tolist() == [K + 1 + 0, K + 1 + 2]  # class c -> K + 1 + c, appended last
    assert seen[1][:, L].tolist() == [K + 1 + C] * 2  # cond=None -> the dropped-label id
    assert seen[2][:, L].tolist() == [K + 1 + C, K + 1 + 1]
    assert seen[3][:, L].tolist() == [K + 1 + 2] * 2


def reference_logits(state: dict[str, torch.Tensor], ids: torch.Tensor) -> torch.Tensor:
    """The port's forward written out from its state dict: all K + 1 + C + 1 logits per position."""
    x = F.embedding(ids, state["tok_emb.weight"]) + state["pos_emb"]

    def ln(x, p, eps=1e-12):
        return F.layer_norm(x, x.shape[-1:], state[p + ".weight"], state[p + ".bias"], eps)

    def lin(x, p):
        return F.linear(x, state[p + ".weight"], state[p + ".bias"])

    x = lin(ln(F.gelu(lin(ln(x, "first_layer.0"), "first_layer.2")), "first_layer.4"), "first_layer.6")
    mha = torch.nn.MultiheadAttention(HIDDEN, 2, batch_first=True)
    prefix = "transformer.layers.0.0.fn.mha."
    mha.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
    h = ln(x, "transformer.layers.0.0.norm", 1e-5)
    x = x + mha(h, h, h)[0]
    h = ln(x, "transformer.layers.0.1.norm", 1e-5)
    x = x + lin(F.gelu(lin(h, "transformer.layers.0.1.fn.net.0")), "transformer.layers.0.1.fn.net.3")
    x = ln(F.gelu(lin(ln(x, "last_layer.0"), "last_layer.2")), "last_layer.4")
    return x @ state["tok_emb.weight"].T + state["bias"]


def test_logits_are_the_codebook_entries_of_the_ports_output(model, files):
    state = torch.load(files["transformer_path"], weights_only=True)["model_state_dict"]
    tokens = torch.randint(0, K + 1, (3, L), generator=torch.Generator().manual_seed(1))
    logits = model(tokens, torch.tensor([1, C, 0]))
    ids = torch.cat([tokens, torch.tensor([[K + 2], [K + 1 + C], [K + 1]])], dim=1)
    with torch.no_grad():
        full = reference_logits(state, ids)
    assert logits.shape == (3, L, K) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, full[:, :L, :K], rtol=1e-4, atol=1e-4)  # mask and class ids dropped


def test_the_mask_is_never_sampled_even_when_the_port_favours_it(model):
    with torch.no_grad():
        model.net.bias[:, K] = 1e4  # the port's mask logit, dropped by the adapter
    out = build("ancestral", steps=4).sample(model, 3, generator=torch.Generator().manual_seed(0))
    assert out.tokens.shape == (3, L) and int(out.tokens.max()) < K and int(out.tokens.min()) >= 0


def test_decode_gives_rgb_images_in_the_unit_range(model):
    tokens = torch.randint(0, K, (2, L), generator=torch.Generator().manual_seed(2))
    images = model.decode(tokens)
    assert images.shape == (2, 3, 8, 8) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0 and float(images.std()) > 0
    with pytest.raises(ValueError, match=r"code ids in 0\.\.15"):
        model.decode(torch.full((1, L), K))


def test_bf16_weights_give_float32_logits(files):
    model = MaskGITDenoiser(**files, **SIZES, dtype="bfloat16")
    assert (
        model.net.tok_emb.weight.dtype == torch.bfloat16
        and model.vq.decoder.conv_in.weight.dtype == torch.bfloat16
    )
    logits = model(torch.full((2, L), K), torch.tensor([0, 1]))
    assert logits.dtype == torch.float32 and torch.isfinite(logits).all()
    assert model.decode(torch.zeros(1, L, dtype=torch.long)).dtype == torch.float32


def test_fingerprint_is_the_files_sha256_hashed_once_and_changes_with_the_weights(
    files, tmp_path, monkeypatch
):
    calls = []
    real = fingerprint.sha256_of
    monkeypatch.setattr(fingerprint, "sha256_of", lambda p: calls.append(p) or real(p))
    first = MaskGITDenoiser(**files, **SIZES).fingerprint
    assert first["transformer"] == real(files["transformer_path"]) and set(first) == {
        "transformer",
        "vqgan",
        "vqgan_config",
    }
    assert len(calls) == 3
    assert MaskGITDenoiser(**files, **SIZES).fingerprint == first and len(calls) == 3  # from the cache
    cache = json.loads((tmp_path / "cache" / "unmask" / "fingerprints.json").read_text())
    assert cache[str(files["transformer_path"].resolve())]["sha256"] == first["transformer"]
    other = write_files(tmp_path / "ckpt", seed=5)  # new weights at the same paths
    stat = other["transformer_path"].stat()
    os.utime(other["transformer_path"], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = MaskGITDenoiser(**other, **SIZES).fingerprint
    assert second["transformer"] != first["transformer"] and second["vqgan"] != first["vqgan"]


def test_a_ddp_prefix_and_pickled_extras_are_handled(files, tmp_path):
    payload = torch.load(files["transformer_path"], weights_only=True)
    payload["model_state_dict"] = {"module." + k: v for k, v in payload["model_state_dict"].items()}
    payload["args"] = argparse_like()
    torch.save(payload, files["transformer_path"])
    with pytest.raises(
        ValueError, match=r"objects besides tensors \(test_maskgit_adapter.argparse_like\).*trust_pickle=true"
    ):
        MaskGITDenoiser(**files, **SIZES)
    model = MaskGITDenoiser(**files, **SIZES, trust_pickle=True)
    assert model(torch.full((1, L), K)).shape == (1, L, K)


class argparse_like:  # noqa: N801 (a pickled non-tensor object, as a Lightning checkpoint may hold)
    pass


def rewrite(path: Path, key: str, change) -> None:
    payload = torch.load(path, weights_only=True)
    change(payload[key])
    torch.save(payload, path)


def set_config(root: Path, change) -> None:
    config = OmegaConf.to_container(OmegaConf.load(root / "model.yaml"))
    change(config["model"]["params"])
    OmegaConf.save(OmegaConf.create(config), root / "model.yaml")


BAD = {
    "no transformer file": (lambda f: f["transformer_path"].unlink(), FileNotFoundError, "transformer_path="),
    "no vqgan file": (lambda f: f["vqgan_path"].unlink(), FileNotFoundError, "vqgan_path="),
    "no config": (
        lambda f: (f["vqgan_path"].parent / "model.yaml").unlink(),
        FileNotFoundError,
        "vqgan_config=",
    ),
    "not a checkpoint": (
        lambda f: f["transformer_path"].write_bytes(b"not a checkpoint"),
        ValueError,
        "current.pth: not a torch checkpoint",
    ),
    "a bare state dict": (
        lambda f: torch.save(torch.load(f["transformer_path"])["model_state_dict"], f["transformer_path"]),
        ValueError,
        "current.pth: no 'model_state_dict' key (found pos_emb, bias, tok_emb.weight",
    ),
    "a missing tensor": (
        lambda f: rewrite(
            f["transformer_path"], "model_state_dict", lambda s: s.pop("transformer.layers.0.1.fn.net.3.bias")
        ),
        ValueError,
        "current.pth: missing key 'transformer.layers.0.1.fn.net.3.bias' of shape [32]",
    ),
    "an unexpected tensor": (
        lambda f: rewrite(
            f["transformer_path"], "model_state_dict", lambda s: s.update({"head.weight": torch.zeros(2)})
        ),
        ValueError,
        "current.pth: unexpected key 'head.weight'",
    ),
    "a deeper transformer": (
        lambda f: rewrite(
            f["transformer_path"],
            "model_state_dict",
            lambda s: s.update({"transformer.layers.1.0.norm.weight": torch.zeros(32)}),
        ),
        ValueError,
        "unexpected key 'transformer.layers.1.0.norm.weight'",
    ),
    "a wrong shape": (
        lambda f: rewrite(
            f["transformer_path"],
            "model_state_dict",
            lambda s: s.update({"tok_emb.weight": torch.zeros(22, 32)}),
        ),
        ValueError,
        "current.pth: key 'tok_emb.weight' has shape [22, 32], expected [21, 32] for codebook_size=16, "
        "num_classes=3",
    ),
    "a vqgan missing a decoder tensor": (
        lambda f: rewrite(f["vqgan_path"], "state_dict", lambda s: s.pop("decoder.conv_out.bias")),
        ValueError,
        "last.ckpt: missing key 'decoder.conv_out.bias' of shape [3]",
    ),
    "a vqgan with an unknown tensor": (
        lambda f: rewrite(
            f["vqgan_path"], "state_dict", lambda s: s.update({"decoder.extra.weight": torch.zeros(1)})
        ),
        ValueError,
        "last.ckpt: unexpected key 'decoder.extra.weight'",
    ),
    "a vqgan checkpoint without state_dict": (
        lambda f: torch.save({"model": {}}, f["vqgan_path"]),
        ValueError,
        "last.ckpt: no 'state_dict' key (found model)",
    ),
    "a vqgan codebook of another size": (
        lambda f: rewrite(
            f["vqgan_path"],
            "state_dict",
            lambda s: s.update({"quantize.embedding.weight": torch.zeros(32, 8)}),
        ),
        ValueError,
        "last.ckpt: key 'quantize.embedding.weight' has shape [32, 8], expected [16, 8]",
    ),
    "codebooks that differ": (
        lambda f: set_config(f["vqgan_path"].parent, lambda p: p.update(n_embed=32)),
        ValueError,
        "model.yaml: model.params.n_embed=32, but the transformer's codebook_size=16",
    ),
    "a config without ddconfig.ch": (
        lambda f: set_config(f["vqgan_path"].parent, lambda p: p["ddconfig"].pop("ch")),
        ValueError,
        "model.yaml: model.params.ddconfig.ch: missing",
    ),
    "a config with channels GroupNorm cannot split": (
        lambda f: set_config(f["vqgan_path"].parent, lambda p: p["ddconfig"].update(ch=24)),
        ValueError,
        "model.yaml: model.params.ddconfig.ch=24 x ch_mult 1 = 24 channels, not a multiple of the 32 groups",
    ),
    "a config for another latent size": (
        lambda f: set_config(f["vqgan_path"].parent, lambda p: p["ddconfig"].update(resolution=16)),
        ValueError,
        "model.yaml: model.params.ddconfig.resolution=16 with 2 levels (ch_mult) decodes a 8 x 8 latent, "
        "but grid=[4, 4]",
    ),
    "a config that does not fit the checkpoint": (
        lambda f: set_config(f["vqgan_path"].parent, lambda p: p["ddconfig"].update(num_res_blocks=2)),
        ValueError,
        "last.ckpt: missing key 'decoder.up.0.block.2.norm1.weight' of shape [32]",
    ),
    "a config without model.params": (
        lambda f: (f["vqgan_path"].parent / "model.yaml").write_text("params: {}\n"),
        ValueError,
        "model.yaml: model.params: missing",
    ),
    "a config that is not YAML": (
        lambda f: (f["vqgan_path"].parent / "model.yaml").write_text("model: [unclosed\n"),
        ValueError,
        "model.yaml: not a readable YAML config",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_naming_the_file_and_key_before_any_compute(files, monkeypatch, case):
    change, error, message = BAD[case]
    change(files)
    monkeypatch.setattr(MaskTransformerNet, "forward", lambda *a: pytest.fail("computed"))
    with pytest.raises(error) as raised:
        MaskGITDenoiser(**files, **SIZES)
    text = str(raised.value)
    assert message in text and "\n" not in text, text


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"heads": 3}, "heads=3 must divide hidden_dim=32"),
        ({"grid": (4, 2)}, "grid=[4, 2] must be square"),
        ({"dtype": "float64"}, "dtype='float64' must be one of float32, bfloat16, float16"),
        ({"codebook_size": 1}, "codebook_size=1 must be an integer >= 2"),
        ({"compile": "yes"}, "compile='yes' must be true or false"),
    ],
)
def test_bad_options_are_named(files, options, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        MaskGITDenoiser(**files, **(SIZES | options))


def test_bad_calls_are_named(model):
    with pytest.raises(ValueError, match=r"tokens must be \[B, 16\]"):
        model(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"cond holds class ids outside 0\.\.3"):
        model(torch.full((1, L), K), torch.tensor([4]))


def params_for(name: str) -> dict[str, Any]:
    """A budget of 4 calls for 16 positions; semi_ar one grid row per block."""
    params: dict[str, Any] = {"block_length": GRID[1]} if name == "semi_ar" else {}
    return params if budget_key(name) is None else spend_budget(name, params, 4, L)


@pytest.mark.parametrize("name", registered_samplers() + peer_samplers())
def test_every_sampler_runs_on_it_class_conditionally(model, name):
    out = build(name, **params_for(name)).sample(
        model, 2, generator=torch.Generator().manual_seed(0), cond=torch.tensor([0, C])
    )
    assert out.tokens.shape == (2, L) and int(out.tokens.min()) >= 0 and int(out.tokens.max()) < K


def test_classifier_free_guidance_calls_the_class_and_the_null_token(model):
    seen = seen_inputs(model)
    build("moment", steps=4, cfg_scale=2.0).sample(
        model, 2, generator=torch.Generator().manual_seed(0), cond=torch.tensor([1, 2])
    )
    assert {int(i) for ids in seen for i in ids[:, L]} == {K + 1 + 1, K + 1 + 2, K + 1 + C}


def test_unmask_eval_runs_it_through_hydra(files, tmp_path, capsys, monkeypatch):
    from unmask.cli import evaluate

    overrides = [
        *tiny_overrides(files),
        "metrics.names=[]",
        "num_samples=4",
        "batch_size=2",
        "sampler=moment",
        "budget=4",
        "class_label=cycle",
    ]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert (tmp_path / "run" / "samples.png").stat().st_size > 0
    assert results["domain"] == "image"
    tokens = torch.load(tmp_path / "run" / "samples.pt", weights_only=True)
    assert tokens.shape == (4, L) and int(tokens.max()) < K


def test_unmask_eval_names_a_missing_checkpoint(files, tmp_path, capsys, monkeypatch):
    from unmask.cli import evaluate

    overrides = ["model=maskgit_imagenet", f"model.transformer_path={tmp_path / 'nope.pth'}"]
    overrides += [
        f"model.vqgan_path={files['vqgan_path']}",
        "metrics.names=[]",
        "num_samples=2",
        "batch_size=2",
    ]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 2 and "nope.pth" in err and "transformer_path" in err and "Traceback" not in err, err


def test_compile_wraps_the_transformer_lazily(files):
    model = MaskGITDenoiser(**files, **SIZES, compile=True)
    assert model._forward is not model.net and model._forward._orig_mod is model.net  # compiled on first call
