"""Tiny stand-ins of the public text checkpoints, written into a folder in their layout.

LLaDA, Dream and MDLM keep their modeling code in their Hugging Face repositories (remote code),
so each stand-in is a folder with a ``config.json`` whose ``auto_map`` names a
``configuration_*.py`` / ``modeling_*.py`` written here (the real class names, ``model_type``,
config keys, forward signatures and tensor names, at toy sizes: one bidirectional layer),
``model.safetensors`` with random weights, and a tokenizer (a word-level one saved with
``save_pretrained`` for LLaDA and Dream; GPT-2 style ``encoder.json`` + ``vocab.bpe`` for MDLM,
whose folder has none). Each model records what its forward receives in ``self.seen``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

COMMON = '''
import math

import torch
import torch.nn.functional as F
from torch import nn


class RMSNorm(nn.Module):
    def __init__(self, dim, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x):
        y = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * y.to(x.dtype)


def rotary(x, positions, theta=10000.0):
    """x [B, H, N, D] rotated by positions [B, N] (rotate-half convention)."""
    half = x.shape[-1] // 2
    freqs = theta ** (-torch.arange(half, device=x.device, dtype=torch.float32) / half)
    angles = positions[:, None, :, None].float() * freqs
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attend(q, k, v, heads, positions, mask):
    b, n, d = q.shape
    q, k, v = (t.view(b, n, heads, d // heads).transpose(1, 2) for t in (q, k, v))
    q, k = rotary(q, positions), rotary(k, positions)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return out.transpose(1, 2).reshape(b, n, d)
'''

LLADA_CONFIG = """
from transformers import PretrainedConfig


class LLaDAConfig(PretrainedConfig):
    model_type = "llada"

    def __init__(self, d_model=32, n_heads=2, n_layers=1, mlp_hidden_size=64, vocab_size=48,
                 embedding_size=48, max_sequence_length=64, mask_token_id=36, rope_theta=10000.0,
                 rms_norm_eps=1e-5, weight_tying=False, **kwargs):
        self.d_model, self.n_heads, self.n_layers = d_model, n_heads, n_layers
        self.mlp_hidden_size, self.vocab_size = mlp_hidden_size, vocab_size
        self.embedding_size, self.max_sequence_length = embedding_size, max_sequence_length
        self.mask_token_id, self.rope_theta = mask_token_id, rope_theta
        self.rms_norm_eps, self.weight_tying = rms_norm_eps, weight_tying
        super().__init__(**kwargs)
"""

LLADA_MODEL = (
    COMMON
    + """
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from .configuration_llada import LLaDAConfig


class LLaDALlamaBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        d, h = c.d_model, c.mlp_hidden_size
        self.heads = c.n_heads
        self.attn_norm, self.ff_norm = RMSNorm(d, c.rms_norm_eps), RMSNorm(d, c.rms_norm_eps)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_proj, self.up_proj = nn.Linear(d, h, bias=False), nn.Linear(d, h, bias=False)
        self.ff_out = nn.Linear(h, d, bias=False)

    def forward(self, x, positions, mask):
        y = self.attn_norm(x)
        att = attend(self.q_proj(y), self.k_proj(y), self.v_proj(y), self.heads, positions, mask)
        x = x + self.attn_out(att)
        y = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_proj(y)) * self.up_proj(y))


class LLaDAModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(c.embedding_size or c.vocab_size, c.d_model),
            blocks=nn.ModuleList(LLaDALlamaBlock(c) for _ in range(c.n_layers)),
            ln_f=RMSNorm(c.d_model, c.rms_norm_eps),
            ff_out=nn.Linear(c.d_model, c.embedding_size or c.vocab_size, bias=False),
        ))

    def forward(self, input_ids, attention_mask=None):
        x = self.transformer.wte(input_ids)
        positions = torch.arange(input_ids.shape[1], device=x.device)[None].expand(input_ids.shape[0], -1)
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]
        for block in self.transformer.blocks:
            x = block(x, positions, mask)
        return self.transformer.ff_out(self.transformer.ln_f(x))


class LLaDAModelLM(PreTrainedModel):
    config_class = LLaDAConfig
    base_model_prefix = "model"

    def __init__(self, config, model=None, init_params=False):
        super().__init__(config)
        self.model = LLaDAModel(config)
        self.seen = []
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.5)

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, attention_bias=None,
                past_key_values=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache_position=None):
        self.seen.append({"input_ids": input_ids.clone(),
                          "attention_mask": None if attention_mask is None else attention_mask.clone()})
        return CausalLMOutputWithPast(logits=self.model(input_ids, attention_mask))
"""
)

DREAM_CONFIG = """
from transformers import PretrainedConfig


class DreamConfig(PretrainedConfig):
    model_type = "Dream"

    def __init__(self, vocab_size=48, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                 num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
                 rms_norm_eps=1e-6, rope_theta=10000.0, mask_token_id=36, pad_token_id=1,
                 tie_word_embeddings=False, **kwargs):
        self.vocab_size, self.hidden_size, self.intermediate_size = vocab_size, hidden_size, intermediate_size
        self.num_hidden_layers, self.num_attention_heads = num_hidden_layers, num_attention_heads
        self.num_key_value_heads, self.max_position_embeddings = num_key_value_heads, max_position_embeddings
        self.rms_norm_eps, self.rope_theta = rms_norm_eps, rope_theta
        self.mask_token_id = mask_token_id
        super().__init__(pad_token_id=pad_token_id, tie_word_embeddings=tie_word_embeddings, **kwargs)
"""

DREAM_MODEL = (
    COMMON
    + """
from transformers import PreTrainedModel
from transformers.modeling_outputs import MaskedLMOutput

from .configuration_dream import DreamConfig


class DreamAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        d = c.hidden_size
        self.heads = c.num_attention_heads
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d, bias=True) for _ in range(3))
        self.o_proj = nn.Linear(d, d, bias=False)

    def forward(self, x, positions, mask):
        att = attend(self.q_proj(x), self.k_proj(x), self.v_proj(x), self.heads, positions, mask)
        return self.o_proj(att)


class DreamMLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DreamDecoderLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self_attn, self.mlp = DreamAttention(c), DreamMLP(c)
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)

    def forward(self, x, positions, mask):
        x = x + self.self_attn(self.input_layernorm(x), positions, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class DreamBaseModel(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList(DreamDecoderLayer(c) for _ in range(c.num_hidden_layers))
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)


class DreamModel(PreTrainedModel):
    config_class = DreamConfig
    base_model_prefix = "model"

    def __init__(self, config):
        super().__init__(config)
        self.model = DreamBaseModel(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.seen = []
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.5)

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, past_key_values=None,
                inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None, cache_position=None, num_logits_to_keep=0,
                **kwargs):
        self.seen.append({"input_ids": input_ids.clone(), "attention_mask": attention_mask,
                          "position_ids": position_ids, "num_logits_to_keep": num_logits_to_keep})
        b, n = input_ids.shape
        if position_ids is None:
            position_ids = torch.arange(n, device=input_ids.device)[None].expand(b, -1)
        mask = attention_mask if isinstance(attention_mask, torch.Tensor) else None
        x = self.model.embed_tokens(input_ids)
        for layer in self.model.layers:
            x = layer(x, position_ids, mask)
        x = self.model.norm(x)
        return MaskedLMOutput(logits=self.lm_head(x[:, -num_logits_to_keep:, :]))
"""
)

MDLM_CONFIG = """
import transformers


class MDLMConfig(transformers.PretrainedConfig):
    model_type = "mdlm"

    def __init__(self, vocab_size=50258, model_length=1024, hidden_dim=768, cond_dim=128, n_blocks=12,
                 n_heads=12, dropout=0.1, time_conditioning=False, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size, self.model_length, self.hidden_dim = vocab_size, model_length, hidden_dim
        self.cond_dim, self.n_blocks, self.n_heads = cond_dim, n_blocks, n_heads
        self.dropout, self.time_conditioning = dropout, time_conditioning
"""

MDLM_MODEL = (
    COMMON
    + """
import transformers
from transformers import modeling_outputs

from .configuration_mdlm import MDLMConfig


class LayerNorm(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.weight = nn.Parameter(torch.ones([dim]))
        self.dim = dim

    def forward(self, x):
        return F.layer_norm(x.float(), [self.dim]).to(x.dtype) * self.weight[None, None, :]


class TimestepEmbedder(nn.Module):
    def __init__(self, hidden_size, frequency_embedding_size=256):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(frequency_embedding_size, hidden_size), nn.SiLU(),
                                 nn.Linear(hidden_size, hidden_size))
        self.frequency_embedding_size = frequency_embedding_size

    def forward(self, t):
        half = self.frequency_embedding_size // 2
        freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32, device=t.device) / half)
        args = t[:, None].float() * freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1).to(self.mlp[0].weight.dtype))


class EmbeddingLayer(nn.Module):
    def __init__(self, dim, vocab_dim):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(vocab_dim, dim) * 0.5)

    def forward(self, x):
        return self.embedding[x]


class DDiTBlock(nn.Module):
    def __init__(self, dim, n_heads, cond_dim, mlp_ratio=4):
        super().__init__()
        self.n_heads = n_heads
        self.norm1, self.norm2 = LayerNorm(dim), LayerNorm(dim)
        self.attn_qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.attn_out = nn.Linear(dim, dim, bias=False)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(approximate="tanh"),
                                 nn.Linear(mlp_ratio * dim, dim))
        self.adaLN_modulation = nn.Linear(cond_dim, 6 * dim)

    def forward(self, x, c):
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaLN_modulation(c)[:, None].chunk(6, dim=2)
        y = self.norm1(x) * (1 + scale1) + shift1
        q, k, v = self.attn_qkv(y).chunk(3, dim=-1)
        positions = torch.arange(x.shape[1], device=x.device)[None].expand(x.shape[0], -1)
        x = x + gate1 * self.attn_out(attend(q, k, v, self.n_heads, positions, None))
        return x + gate2 * self.mlp(self.norm2(x) * (1 + scale2) + shift2)


class DDitFinalLayer(nn.Module):
    def __init__(self, hidden_size, out_channels, cond_dim):
        super().__init__()
        self.norm_final = LayerNorm(hidden_size)
        self.linear = nn.Linear(hidden_size, out_channels)
        self.adaLN_modulation = nn.Linear(cond_dim, 2 * hidden_size)

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c)[:, None].chunk(2, dim=2)
        return self.linear(self.norm_final(x) * (1 + scale) + shift)


class DITBackbone(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.vocab_embed = EmbeddingLayer(config.hidden_dim, config.vocab_size)
        self.sigma_map = TimestepEmbedder(config.cond_dim)
        self.blocks = nn.ModuleList(DDiTBlock(config.hidden_dim, config.n_heads, config.cond_dim)
                                    for _ in range(config.n_blocks))
        self.output_layer = DDitFinalLayer(config.hidden_dim, config.vocab_size, config.cond_dim)

    def forward(self, indices, sigma):
        if not self.config.time_conditioning:
            sigma = torch.zeros_like(sigma)
        x = self.vocab_embed(indices)
        c = F.silu(self.sigma_map(sigma))
        for block in self.blocks:
            x = block(x, c)
        return self.output_layer(x, c)


class MDLM(transformers.PreTrainedModel):
    config_class = MDLMConfig
    base_model_prefix = "mdlm"

    def __init__(self, config):
        super().__init__(config)
        self.backbone = DITBackbone(config)
        self.seen = []
        self.post_init()

    def _init_weights(self, module):
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=0.5)

    def forward(self, input_ids=None, timesteps=None, output_hidden_states=None, return_dict=None):
        self.seen.append({"input_ids": input_ids.clone(), "timesteps": timesteps.clone()})
        logits = self.backbone(input_ids, timesteps)
        if return_dict:
            return modeling_outputs.MaskedLMOutput(logits=logits)
        return logits
"""
)

# the real checkpoints' config.json entries the adapters read, here at toy sizes
FAMILIES: dict[str, dict[str, Any]] = {
    "llada": {
        "files": {"configuration_llada.py": LLADA_CONFIG, "modeling_llada.py": LLADA_MODEL},
        "config": {
            "architectures": ["LLaDAModelLM"],
            "auto_map": {
                "AutoConfig": "configuration_llada.LLaDAConfig",
                "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
                "AutoModel": "modeling_llada.LLaDAModelLM",
            },
            "model_type": "llada",
            "d_model": 32,
            "n_heads": 2,
            "n_layers": 1,
            "mlp_hidden_size": 64,
            "vocab_size": 48,
            "embedding_size": 48,
            "max_sequence_length": 64,
            "mask_token_id": 36,
            "eos_token_id": 1,
            "pad_token_id": 1,
        },
    },
    "dream": {
        "files": {"configuration_dream.py": DREAM_CONFIG, "modeling_dream.py": DREAM_MODEL},
        "config": {
            "architectures": ["DreamModel"],
            "auto_map": {
                "AutoConfig": "configuration_dream.DreamConfig",
                "AutoModel": "modeling_dream.DreamModel",
            },
            "model_type": "Dream",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "num_key_value_heads": 2,
            "max_position_embeddings": 64,
            "vocab_size": 48,
            "mask_token_id": 36,
            "pad_token_id": 1,
            "eos_token_id": 1,
        },
    },
    "mdlm": {
        "files": {"configuration_mdlm.py": MDLM_CONFIG, "modeling_mdlm.py": MDLM_MODEL},
        "config": {
            "architectures": ["MDLM"],
            "auto_map": {
                "AutoConfig": "configuration_mdlm.MDLMConfig",
                "AutoModelForMaskedLM": "modeling_mdlm.MDLM",
            },
            "model_type": "mdlm",
            "vocab_size": 260,  # 259 tiny GPT-2 ids + the mask
            "model_length": 64,
            "hidden_dim": 32,
            "cond_dim": 16,
            "n_blocks": 1,
            "n_heads": 2,
            "dropout": 0.1,
            "time_conditioning": True,
        },
    },
}

WORDS = [f"w{i}" for i in range(30)]
# word-level tokenizer of the LLaDA / Dream stand-ins: 40 ids (< V = 48: ids 40..47 are unused
# rows of the embedding, as LLaDA's 126349..126463), the mask at 36 as in config.json
SPECIALS = {"<|startoftext|>": 0, "<|endoftext|>": 1, "<|user|>": 32, "<|assistant|>": 33, "<|eot_id|>": 34}
MASK_TOKEN = "<|mdm_mask|>"
CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|user|> {{ m['content'] }} <|eot_id|> {% endfor %}"
    "{% if add_generation_prompt %}<|assistant|> {% endif %}"
)


def word_tokenizer() -> Any:
    """A word-level tokenizer (whitespace split) with LLaDA-like special tokens, 40 ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {**SPECIALS, MASK_TOKEN: 36}
    vocab.update({w: i + 2 for i, w in enumerate(WORDS)})
    vocab.update({"<|reserved_0|>": 35, "<|reserved_1|>": 37, "<|reserved_2|>": 38, "<unk>": 39})
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token="<|startoftext|>",
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        mask_token=MASK_TOKEN,
        unk_token="<unk>",
        additional_special_tokens=["<|user|>", "<|assistant|>", "<|eot_id|>"],
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (the alphabet of its BPE)."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = {}, 0
    for b in range(256):
        if b in printable:
            chars[b] = chr(b)
        else:
            chars[b] = chr(256 + extra)
            extra += 1
    return chars


def write_tiny_gpt2(folder: Path) -> int:
    """A tiny GPT-2 BPE in OpenAI's file names (256 byte tokens, 2 merges, <|endoftext|>): 259 ids."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = bytes_to_unicode()
    encoder = {alphabet[b]: i for i, b in enumerate(sorted(alphabet))}
    space = alphabet[ord(" ")]
    merges = [f"{space} w", "h e"]
    for merge in merges:
        encoder["".join(merge.split(" "))] = len(encoder)
    encoder["<|endoftext|>"] = len(encoder)
    (folder / "encoder.json").write_text(json.dumps(encoder))
    (folder / "vocab.bpe").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return len(encoder)


def write_standin(folder: Path, family: str, seed: int = 0, **config: Any) -> Path:
    """The stand-in checkpoint folder of ``family`` (``config`` overrides config.json entries)."""
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    spec = FAMILIES[family]
    folder.mkdir(parents=True, exist_ok=True)
    for name, source in spec["files"].items():
        (folder / name).write_text(source)
    (folder / "config.json").write_text(json.dumps({**spec["config"], **config}, indent=2))
    auto = AutoModelForMaskedLM if family == "mdlm" else AutoModel
    torch.manual_seed(seed)
    model = auto.from_config(
        AutoConfig.from_pretrained(folder, trust_remote_code=True), trust_remote_code=True
    )
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, folder / "model.safetensors", metadata={"format": "pt"})
    if family == "mdlm":
        write_tiny_gpt2(folder.parent / f"{folder.name}_gpt2")
    else:
        word_tokenizer().save_pretrained(folder)
    return folder


def write_bert(folder: Path) -> Path:
    """A tiny BERT masked LM (transformers' own classes) with a WordPiece tokenizer, saved in the
    Hugging Face layout."""
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *[f"w{i}" for i in range(27)]]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    transformers.BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    config = transformers.BertConfig(
        vocab_size=len(words),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    transformers.BertForMaskedLM(config).save_pretrained(folder)
    return folder
