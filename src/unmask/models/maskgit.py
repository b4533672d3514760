"""MaskGIT (ImageNet 256, class-conditional) behind the ``Denoiser`` contract: ``MaskGITDenoiser``.

It loads the two files of the public PyTorch MaskGIT port (valeoai/MaskGIT-pytorch) from local
paths, no hub access:

- the transformer, a ``torch.save`` dict whose ``model_state_dict`` holds the port's
  ``MaskTransformer`` (``current.pth``, or the released ``MaskGIT_ImageNet_256.pth``);
- the VQGAN tokenizer, taming-transformers' f16 ``VQModel`` with 1024 codes: its Lightning
  ``last.ckpt`` (the weights under ``state_dict``) and its ``model.yaml`` config.

``MaskTransformerNet`` and ``VQGANDecoder`` are implementations of our own whose parameter names
and shapes are the port's and taming's, so those files load with ``load_state_dict(strict=True)``
(``VQGANDecoder`` is the decoding half: the encoder's, ``quant_conv``'s and the training loss's
tensors in ``last.ckpt`` are left unread). The port's token layout, with ``K`` codes and ``C``
classes: ids ``0 .. K-1`` are the codes, ``K`` the mask, ``K + 1 + c`` class ``c``, and
``K + 1 + C`` the dropped (null) label of classifier-free guidance; the class token is appended
after the ``H x W`` image tokens; the output head is tied to the token embedding (plus a bias per
position and id). The adapter maps our mask id ``V = K`` to the port's mask id and our null label
``num_classes`` (or ``cond=None``) to the port's drop label, and returns the logits of the ``K``
codes only (float32), so the mask is never sampled. ``decode`` gives RGB ``[B, 3, 256, 256]``
images in [0, 1] (the VQGAN decodes to [-1, 1]).

Every file is checked in ``__init__``, before any compute: a missing file, one that is not a torch
checkpoint, a missing, unexpected or mis-shaped tensor, a config that does not fit the sizes, or
codebooks of different sizes is one ``FileNotFoundError`` / ``ValueError`` line naming the file
and the key.
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from unmask.models.fingerprint import cached_sha256
from unmask.models.options import checked_tokens, weights_dtype

GROUPS = 32  # taming's GroupNorm: 32 groups, eps 1e-6
# tensors of taming's last.ckpt that decoding does not use: the encoder half and the training loss
VQGAN_UNUSED = ("encoder.", "quant_conv.", "loss.")


# --- the transformer (the port's MaskTransformer key names and shapes) -------------------------


class _PreNorm(nn.Module):
    """``fn(norm(x))``; the residual is added by the caller."""

    def __init__(self, dim: int, fn: nn.Module):
        super().__init__()
        self.norm, self.fn = nn.LayerNorm(dim), fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class _SelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.mha = nn.MultiheadAttention(dim, heads, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mha(x, x, x, need_weights=False)[0]


class _FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        # positions 2 and 4 are the port's dropouts (no parameters; identity at inference)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Identity(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class _Layers(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, mlp_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(
            nn.ModuleList(
                [_PreNorm(dim, _SelfAttention(dim, heads)), _PreNorm(dim, _FeedForward(dim, mlp_dim))]
            )
            for _ in range(depth)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for attention, feed_forward in self.layers:
            x = x + attention(x)
            x = x + feed_forward(x)
        return x


def _mlp_head(dim: int, second_linear: bool) -> nn.Sequential:
    """LayerNorm, (dropout), Linear, GELU, LayerNorm[, (dropout), Linear]: the port's first and last
    layers, with parameterless identities where it has dropouts so the indices are its own."""
    parts = [
        nn.LayerNorm(dim, eps=1e-12),
        nn.Identity(),
        nn.Linear(dim, dim),
        nn.GELU(),
        nn.LayerNorm(dim, eps=1e-12),
    ]
    if second_linear:
        parts += [nn.Identity(), nn.Linear(dim, dim)]
    return nn.Sequential(*parts)


class MaskTransformerNet(nn.Module):
    """A bidirectional transformer over ``seq_len`` VQ codes plus one class token, in the layout of
    the port's ``MaskTransformer`` (see the module docstring for the ids). ``forward`` takes the
    port's ids and returns the logits of the codes only, ``[B, seq_len, codebook_size]``."""

    def __init__(
        self,
        codebook_size: int = 1024,
        num_classes: int = 1000,
        seq_len: int = 256,
        hidden_dim: int = 768,
        depth: int = 24,
        heads: int = 16,
        mlp_dim: int = 3072,
    ):
        super().__init__()
        self.codebook_size, self.num_classes, self.seq_len = codebook_size, num_classes, seq_len
        self.mask_id = codebook_size
        self.class_offset = codebook_size + 1
        self.null_id = codebook_size + 1 + num_classes
        ids = codebook_size + 1 + num_classes + 1
        self.tok_emb = nn.Embedding(ids, hidden_dim)
        self.pos_emb = nn.Parameter(torch.zeros(1, seq_len + 1, hidden_dim))
        self.first_layer = _mlp_head(hidden_dim, second_linear=True)
        self.transformer = _Layers(hidden_dim, depth, heads, mlp_dim)
        self.last_layer = _mlp_head(hidden_dim, second_linear=False)
        self.bias = nn.Parameter(torch.zeros(seq_len + 1, ids))

    def forward(self, ids: torch.Tensor, class_ids: torch.Tensor) -> torch.Tensor:
        x = self.tok_emb(torch.cat([ids, class_ids[:, None]], dim=1)) + self.pos_emb
        x = self.last_layer(self.transformer(self.first_layer(x)))[:, : self.seq_len]
        codes = slice(0, self.codebook_size)
        return x @ self.tok_emb.weight[codes].T + self.bias[: self.seq_len, codes]


# --- the VQGAN decoder (taming's VQModel key names and shapes) -------------------------------


def _norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(GROUPS, channels, eps=1e-6)


class _ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1, self.conv1 = _norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2, self.conv2 = _norm(cout), nn.Conv2d(cout, cout, 3, padding=1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.nin_shortcut(x) if hasattr(self, "nin_shortcut") else x) + h


class _AttnBlock(nn.Module):
    """Single-head self-attention over the pixels of a feature map (1 x 1 convolutions)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = _norm(channels)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(channels, channels, 1) for _ in range(4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        y = self.norm(x)
        q, k, v = (m(y).flatten(2).transpose(1, 2) for m in (self.q, self.k, self.v))  # [B, HW, C]
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj_out(out.transpose(1, 2).reshape(b, c, h, w))


class _Upsample(nn.Module):
    def __init__(self, channels: int, with_conv: bool):
        super().__init__()
        if with_conv:
            self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if hasattr(self, "conv") else x


class _Decoder(nn.Module):
    """taming's ``Decoder``: conv_in, a middle of two residual blocks around an attention block, one
    level per ``ch_mult`` entry (``num_res_blocks + 1`` residual blocks, attention at the
    resolutions listed, a 2x upsampling except on the last), then norm, swish, conv_out."""

    def __init__(
        self,
        *,
        ch: int,
        out_ch: int,
        ch_mult: Sequence[int],
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        resolution: int,
        z_channels: int,
        resamp_with_conv: bool = True,
    ):
        super().__init__()
        levels = len(ch_mult)
        block_in = ch * ch_mult[-1]
        res = resolution // 2 ** (levels - 1)
        self.conv_in = nn.Conv2d(z_channels, block_in, 3, padding=1)
        self.mid = nn.Module()
        self.mid.block_1 = _ResBlock(block_in, block_in)
        self.mid.attn_1 = _AttnBlock(block_in)
        self.mid.block_2 = _ResBlock(block_in, block_in)
        ups: list[nn.Module] = []
        for level in reversed(range(levels)):
            up = nn.Module()
            up.block, up.attn = nn.ModuleList(), nn.ModuleList()
            block_out = ch * ch_mult[level]
            for _ in range(num_res_blocks + 1):
                up.block.append(_ResBlock(block_in, block_out))
                block_in = block_out
                if res in attn_resolutions:
                    up.attn.append(_AttnBlock(block_in))
            if level != 0:
                up.upsample = _Upsample(block_in, resamp_with_conv)
                res *= 2
            ups.insert(0, up)
        self.up = nn.ModuleList(ups)
        self.norm_out = _norm(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, 3, padding=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(self.conv_in(z))))
        for level in reversed(range(len(self.up))):
            up = self.up[level]
            for i, block in enumerate(up.block):
                h = block(h)
                if len(up.attn):
                    h = up.attn[i](h)
            if hasattr(up, "upsample"):
                h = up.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class _Quantize(nn.Module):
    def __init__(self, n_embed: int, embed_dim: int):
        super().__init__()
        self.embedding = nn.Embedding(n_embed, embed_dim)

    def get_codebook_entry(self, indices: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        """Code vectors of flat ``indices`` as ``[B, D, H, W]`` (``shape`` = ``(B, H, W, D)``)."""
        return self.embedding(indices).view(*shape).permute(0, 3, 1, 2).contiguous()


class VQGANDecoder(nn.Module):
    """The decoding half of taming's ``VQModel``: code ids -> images in [-1, 1]."""

    def __init__(self, n_embed: int, embed_dim: int, ddconfig: Mapping[str, Any]):
        super().__init__()
        self.codebook_size, self.embed_dim = n_embed, embed_dim
        self.quantize = _Quantize(n_embed, embed_dim)
        self.post_quant_conv = nn.Conv2d(embed_dim, ddconfig["z_channels"], 1)
        self.decoder = _Decoder(**ddconfig)

    def decode_code(self, codes: torch.Tensor) -> torch.Tensor:
        """``codes [B, H, W]`` -> images ``[B, out_ch, 16 H, 16 W]`` (for f16) in about [-1, 1]."""
        b, h, w = codes.shape
        z = self.quantize.get_codebook_entry(codes.reshape(-1), (b, h, w, self.embed_dim))
        return self.decoder(self.post_quant_conv(z))


# --- reading and checking the files -----------------------------------------------------------


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _existing(path: Any, key: str) -> Path:
    if path is None or str(path) in ("", "???"):
        raise ValueError(f"{key}: a local file path is required")
    path = Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{key}={str(path)!r}: no such file")
    return path


def _state_dict(path: Path, key: str, trust_pickle: bool) -> dict[str, torch.Tensor]:
    """The tensors under ``key`` of the torch checkpoint at ``path`` (a DDP ``module.`` or
    ``torch.compile`` ``_orig_mod.`` prefix on every name is removed)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except pickle.UnpicklingError as err:
        if "Unsupported global" in str(err) or "can still be loaded" in str(err):
            named = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(err))
            what = f" ({named.group(1)})" if named else ""
            raise ValueError(
                f"{path}: holds pickled Python objects besides tensors{what}, not read with "
                "weights_only=True; pass model.trust_pickle=true if you trust this file"
            ) from None
        raise ValueError(f"{path}: not a torch checkpoint ({_first_line(err)[:120]})") from None
    except Exception as err:  # a zip that is not torch's, a truncated file...
        raise ValueError(f"{path}: not a torch checkpoint ({_first_line(err)[:120]})") from None
    if not isinstance(payload, Mapping) or key not in payload:
        found = (
            ", ".join(map(str, list(payload)[:5])) if isinstance(payload, Mapping) else type(payload).__name__
        )
        raise ValueError(f"{path}: no {key!r} key (found {found or 'nothing'})")
    state = payload[key]
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: {key} is a {type(state).__name__}, not a state dict")
    for name, value in state.items():
        if not isinstance(value, torch.Tensor):
            raise ValueError(f"{path}: {key}[{name!r}] is a {type(value).__name__}, not a tensor")
    names = list(state)
    for prefix in ("module.", "_orig_mod."):
        if names and all(n.startswith(prefix) for n in names):
            state = {n[len(prefix) :]: v for n, v in state.items()}
            names = list(state)
    return dict(state)


def _matched(
    state: dict[str, torch.Tensor], module: nn.Module, path: Path, sizes: str, unused: Iterable[str] = ()
) -> dict[str, torch.Tensor]:
    """``state`` restricted to ``module``'s tensors, after checking that it has each of them with
    its shape and nothing else (but names starting with one of ``unused``)."""
    expected = {name: tuple(t.shape) for name, t in module.state_dict().items()}
    missing = [name for name in expected if name not in state]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ValueError(
            f"{path}: missing key {missing[0]!r} of shape {list(expected[missing[0]])}{more}; "
            f"expected {sizes}"
        )
    unused = tuple(unused)
    extra = [name for name in state if name not in expected and not name.startswith(unused)]
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise ValueError(f"{path}: unexpected key {extra[0]!r}{more}; expected {sizes}")
    for name, shape in expected.items():
        if tuple(state[name].shape) != shape:
            raise ValueError(
                f"{path}: key {name!r} has shape {list(state[name].shape)}, expected {list(shape)} "
                f"for {sizes}"
            )
    return {name: state[name] for name in expected}


def _positive(key: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{key}={value!r} must be an integer >= {minimum}")
    return value


def vqgan_params(path: Path) -> dict[str, Any]:
    """``model.params`` of a taming ``model.yaml``: ``n_embed``, ``embed_dim`` and the decoder's
    ``ddconfig`` keys, validated (``ValueError`` naming the file and the key)."""
    from omegaconf import OmegaConf

    try:
        config = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    except Exception as err:
        raise ValueError(f"{path}: not a readable YAML config ({_first_line(err)[:120]})") from None
    params = (config.get("model") or {}).get("params") if isinstance(config, dict) else None
    if not isinstance(params, dict):
        raise ValueError(f"{path}: model.params: missing (taming's layout is model: {{target, params}})")

    def need(where: dict, key: str, name: str) -> Any:
        if key not in where:
            raise ValueError(f"{path}: {name}: missing")
        return where[key]

    def checked(name: str, value: Any, minimum: int = 1) -> int:
        try:
            return _positive(name, value, minimum)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from None

    if params.get("remap") is not None:
        raise ValueError(
            f"{path}: model.params.remap={params['remap']!r}: remapped codebooks are not supported"
        )
    n_embed = checked("model.params.n_embed", need(params, "n_embed", "model.params.n_embed"), 2)
    embed_dim = checked("model.params.embed_dim", need(params, "embed_dim", "model.params.embed_dim"))
    dd = need(params, "ddconfig", "model.params.ddconfig")
    if not isinstance(dd, dict):
        raise ValueError(f"{path}: model.params.ddconfig must be a mapping")
    prefix = "model.params.ddconfig"
    ch = checked(f"{prefix}.ch", need(dd, "ch", f"{prefix}.ch"))
    out_ch = need(dd, "out_ch", f"{prefix}.out_ch")
    if out_ch not in (1, 3) or isinstance(out_ch, bool):
        raise ValueError(f"{path}: {prefix}.out_ch={out_ch!r} must be 1 or 3 (grey or RGB images)")
    ch_mult = need(dd, "ch_mult", f"{prefix}.ch_mult")
    if not isinstance(ch_mult, list) or not ch_mult:
        raise ValueError(f"{path}: {prefix}.ch_mult={ch_mult!r} must be a non-empty list of integers")
    for m in ch_mult:
        checked(f"{prefix}.ch_mult", m)
        if (ch * m) % GROUPS:
            raise ValueError(
                f"{path}: {prefix}.ch={ch} x ch_mult {m} = {ch * m} channels, not a multiple of the "
                f"{GROUPS} groups of taming's GroupNorm"
            )
    attn = need(dd, "attn_resolutions", f"{prefix}.attn_resolutions")
    if not isinstance(attn, list) or not all(isinstance(r, int) and not isinstance(r, bool) for r in attn):
        raise ValueError(f"{path}: {prefix}.attn_resolutions={attn!r} must be a list of integers")
    resamp = dd.get("resamp_with_conv", True)
    if not isinstance(resamp, bool):
        raise ValueError(f"{path}: {prefix}.resamp_with_conv={resamp!r} must be true or false")
    if dd.get("give_pre_end", False):
        raise ValueError(f"{path}: {prefix}.give_pre_end=true: the decoder would not give images")
    ddconfig = {
        "ch": ch,
        "out_ch": out_ch,
        "ch_mult": list(ch_mult),
        "num_res_blocks": checked(
            f"{prefix}.num_res_blocks", need(dd, "num_res_blocks", f"{prefix}.num_res_blocks"), 0
        ),
        "attn_resolutions": list(attn),
        "resolution": checked(f"{prefix}.resolution", need(dd, "resolution", f"{prefix}.resolution")),
        "z_channels": checked(f"{prefix}.z_channels", need(dd, "z_channels", f"{prefix}.z_channels")),
        "resamp_with_conv": resamp,
    }
    return {"n_embed": n_embed, "embed_dim": embed_dim, "ddconfig": ddconfig}


# --- the adapter -----------------------------------------------------------------------------


class MaskGITDenoiser:
    """The port's class-conditional transformer and the VQGAN decoder as a ``Denoiser``.

    Our ids: codes ``0 .. V-1`` (``V = codebook_size``), mask ``V``; ``cond``: class ids ``[B]``
    (or one id), ``num_classes`` = the null label, ``None`` = null for every row. ``grid`` is the
    token grid (square: the port's positions are ``H x W`` plus the class token). The sizes are
    the config's (defaults: the released ImageNet 256 model) and each file is checked against
    them. ``vqgan_config``: taming's ``model.yaml`` (default: the one next to ``vqgan_path``).
    ``dtype`` of the weights (the logits are float32 whatever it is), ``device``, ``compile``
    (``torch.compile`` the transformer). ``trust_pickle``: read the files with
    ``weights_only=False`` (a Lightning checkpoint may pickle more than tensors; only for files
    you trust)."""

    def __init__(
        self,
        transformer_path: str | os.PathLike,
        vqgan_path: str | os.PathLike,
        vqgan_config: str | os.PathLike | None = None,
        *,
        codebook_size: int = 1024,
        num_classes: int = 1000,
        grid: Sequence[int] = (16, 16),
        hidden_dim: int = 768,
        depth: int = 24,
        heads: int = 16,
        mlp_dim: int = 3072,
        dtype: str | torch.dtype = "float32",
        device: str | torch.device = "cpu",
        compile: bool = False,
        trust_pickle: bool = False,
    ):
        _positive("codebook_size", codebook_size, 2)
        _positive("num_classes", num_classes)
        for key, value in (
            ("hidden_dim", hidden_dim),
            ("depth", depth),
            ("heads", heads),
            ("mlp_dim", mlp_dim),
        ):
            _positive(key, value)
        if hidden_dim % heads:
            raise ValueError(f"heads={heads} must divide hidden_dim={hidden_dim}")
        grid = tuple(grid)
        if len(grid) != 2:
            raise ValueError(f"grid={list(grid)} must be [H, W]")
        for value in grid:
            _positive("grid", value)
        if grid[0] != grid[1]:
            raise ValueError(f"grid={list(grid)} must be square (the VQGAN decodes square latents)")
        self.dtype = weights_dtype(dtype)
        for key, value in (("compile", compile), ("trust_pickle", trust_pickle)):
            if not isinstance(value, bool):
                raise ValueError(f"{key}={value!r} must be true or false")
        try:
            device = torch.device(device)
        except (RuntimeError, TypeError):
            raise ValueError(f"device={device!r} is not a torch device") from None

        transformer_file = _existing(transformer_path, "transformer_path")
        vqgan_file = _existing(vqgan_path, "vqgan_path")
        config_file = _existing(
            vqgan_file.parent / "model.yaml" if vqgan_config is None else vqgan_config, "vqgan_config"
        )
        params = vqgan_params(config_file)
        if params["n_embed"] != codebook_size:
            raise ValueError(
                f"{config_file}: model.params.n_embed={params['n_embed']}, but the transformer's "
                f"codebook_size={codebook_size}: the two must share one codebook"
            )
        levels = len(params["ddconfig"]["ch_mult"])
        latent = params["ddconfig"]["resolution"] // 2 ** (levels - 1)
        if latent != grid[0]:
            raise ValueError(
                f"{config_file}: model.params.ddconfig.resolution={params['ddconfig']['resolution']} with "
                f"{levels} levels (ch_mult) decodes a {latent} x {latent} latent, but grid={list(grid)}"
            )
        length = grid[0] * grid[1]
        with torch.device("meta"):
            net = MaskTransformerNet(codebook_size, num_classes, length, hidden_dim, depth, heads, mlp_dim)
            vq = VQGANDecoder(params["n_embed"], params["embed_dim"], params["ddconfig"])
        sizes = (
            f"codebook_size={codebook_size}, num_classes={num_classes}, grid={list(grid)}, "
            f"hidden_dim={hidden_dim}, depth={depth}, mlp_dim={mlp_dim}"
        )
        state = _matched(
            _state_dict(transformer_file, "model_state_dict", trust_pickle), net, transformer_file, sizes
        )
        vq_sizes = f"the decoder of {config_file}"
        vq_state = _matched(
            _state_dict(vqgan_file, "state_dict", trust_pickle), vq, vqgan_file, vq_sizes, VQGAN_UNUSED
        )
        net.load_state_dict(state, strict=True, assign=True)
        vq.load_state_dict(vq_state, strict=True, assign=True)
        self.net = net.to(device=device, dtype=self.dtype).eval().requires_grad_(False)
        self.vq = vq.to(device=device, dtype=self.dtype).eval().requires_grad_(False)
        self._forward = torch.compile(self.net) if compile else self.net
        self.vocab_size, self.seq_len, self.num_classes = codebook_size, length, num_classes
        self.grid = grid
        self.files = {"transformer": transformer_file, "vqgan": vqgan_file, "vqgan_config": config_file}
        self._fingerprint: dict[str, str] | None = None

    @property
    def device(self) -> torch.device:
        return self.net.tok_emb.weight.device

    @property
    def fingerprint(self) -> dict[str, str]:
        """The sha256 of the transformer and VQGAN checkpoints and of the VQGAN config (hashed once
        per file version: ``cached_sha256``); part of a run's resume key."""
        if self._fingerprint is None:
            self._fingerprint = {name: cached_sha256(path) for name, path in self.files.items()}
        return self._fingerprint

    def port_inputs(self, tokens: torch.Tensor, cond: Any | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Our ``tokens [B, L]`` and ``cond`` as the port's ids: the image ids (our mask id -> the
        port's) and the class token ids ``[B]`` (class c -> ``K + 1 + c``, null -> the drop id)."""
        net = self.net
        tokens = checked_tokens(tokens, self.seq_len, self.vocab_size, self.device)
        ids = torch.where(tokens == self.vocab_size, torch.full_like(tokens, net.mask_id), tokens)
        batch = tokens.shape[0]
        if cond is None:
            labels = torch.full((batch,), self.num_classes, dtype=torch.long, device=self.device)
        else:
            labels = torch.as_tensor(cond, device=self.device)
            if labels.dim() == 0:
                labels = labels.expand(batch)
            if labels.shape != (batch,) or labels.is_floating_point() or labels.dtype == torch.bool:
                raise ValueError(
                    f"cond must be integer class ids of shape ({batch},), got {list(labels.shape)}"
                )
            labels = labels.long()
            if ((labels < 0) | (labels > self.num_classes)).any():
                raise ValueError(
                    f"cond holds class ids outside 0..{self.num_classes} (null = {self.num_classes})"
                )
        classes = torch.where(
            labels == self.num_classes, torch.full_like(labels, net.null_id), labels + net.class_offset
        )
        return ids, classes

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        ids, classes = self.port_inputs(tokens, cond)
        return self._forward(ids, classes).float()

    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H', W']`` (RGB for ImageNet: ``[B, 3, 256, 256]``) in [0, 1], float32."""
        tokens = torch.as_tensor(tokens).to(self.device, torch.long)
        if tokens.dim() != 2 or tokens.shape[1] != self.seq_len:
            raise ValueError(f"tokens must be [B, {self.seq_len}], got {list(tokens.shape)}")
        if ((tokens < 0) | (tokens >= self.vocab_size)).any():
            raise ValueError(f"decode needs code ids in 0..{self.vocab_size - 1} (no mask id left)")
        images = self.vq.decode_code(tokens.view(-1, *self.grid)).float()
        return ((images + 1) / 2).clamp_(0, 1)


__all__ = ["MaskGITDenoiser", "MaskTransformerNet", "VQGANDecoder", "cached_sha256", "vqgan_params"]
