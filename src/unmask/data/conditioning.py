"""Where a run's conditioning comes from: the ``conditioning`` of its dataset config.

A dataset config (``conf/dataset/``) may name one of these, as a ``_target_`` config:

- ``PromptFile``: one prompt per line of the JSONL file ``dataset.path`` (the text under
  ``field``, or a list of model ids under ``ids``; other keys are kept in the record). Sample
  ``i`` gets prompt ``(i // samples_per_prompt) mod n``. The prompts go to the denoiser as
  ``cond`` (``unmask.data.prompts.PromptBatch``), so the model must take prompts
  (``encode_prompt``): the sampler generates ``model.seq_len`` tokens after the prompt, and the
  decoded record of each sample keeps its prompt. A prompt longer than the model's context minus
  ``seq_len`` is refused with both lengths.
- ``Infill``: sequences from a data split with a mask pattern; the kept positions are given to
  the sampler as ``init`` (they stay as they are) and the others are generated. ``source`` is
  ``shakespeare`` (windows of the split's text, encoded by the model), ``mnist`` (the split's
  digits, encoded by the model's VQ) or ``file`` (``dataset.path``: a ``.pt`` / ``.npy`` array of
  ids ``[N, L]``, or a text file cut into windows of ``L`` ids by the model's ``encode_text`` or
  ``encode_prompt``). ``pattern``: ``prefix`` (the first ``keep`` share of positions given),
  ``suffix`` (the last), ``center`` (the middle ``1 - keep`` masked: a centred box on an image's
  grid) or ``random`` (each position given with probability ``keep``, drawn from the sample
  index alone: the same masks for every seed and sampler). Sample ``i`` takes row ``i mod N``.

Without one (``conditioning: null``) samples are unconditional, or class-conditional through
``class_label``. A prepared conditioning gives each batch its ``cond`` and ``init`` from the
global sample indices only, so samples do not depend on the batch-to-rank split; its
``fingerprint`` (sha256 of the prompt ids or the given tokens) enters the run's resume key and
its ``record`` goes into ``results.json``.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from unmask.checks import check_integer, is_number
from unmask.data.prompts import PromptBatch
from unmask.io import sha256_of

INFILL_SOURCES = ("shakespeare", "mnist", "file")
INFILL_PATTERNS = ("prefix", "suffix", "center", "random")


@dataclass(frozen=True)
class Conditioned:
    """What one batch gets: ``cond`` for the sampler, ``init`` tokens (mask id where to generate)
    and ``source_index`` ``[B]`` (each sample's prompt or data row)."""

    cond: Any
    init: torch.Tensor | None
    source_index: torch.Tensor


def digest(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(str(tuple(t.shape)).encode())
        h.update(t.to(torch.long).contiguous().numpy().tobytes())
    return h.hexdigest()


def existing_file(path: Any, what: str) -> Path:
    if path in (None, "", "???"):
        raise ValueError(f"dataset.path: needs {what}")
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise ValueError(f"dataset.path={path}: no such file ({what})")
    return file


@dataclass(frozen=True)
class PromptFile:
    """Prompts from a JSONL file (see the module docstring)."""

    field: str = "prompt"
    samples_per_prompt: int = 1

    def __post_init__(self) -> None:
        check_integer("dataset.conditioning.samples_per_prompt", self.samples_per_prompt)
        if not isinstance(self.field, str) or not self.field:
            raise ValueError(f"dataset.conditioning.field={self.field!r} must be a key of the JSONL lines")

    def prepare(self, model: Any, path: Any, grid: Any = None) -> PreparedPrompts:
        file = existing_file(path, "a JSONL file of prompts")
        if not callable(getattr(model, "encode_prompt", None)):
            raise ValueError(
                f"dataset.conditioning: prompts need a model that takes them (encode_prompt); "
                f"{type(model).__name__} does not (for in-sequence context use an Infill dataset)"
            )
        lines = read_jsonl(file)
        if not lines:
            raise ValueError(f"dataset.path={file}: holds no prompt")
        limit = getattr(model, "max_context", None)
        prompts = []
        for number, line in enumerate(lines, 1):
            ids = prompt_ids(model, line, self.field, f"{file}:{number}")
            if limit is not None and len(ids) + model.seq_len > limit:
                raise ValueError(
                    f"dataset.path={file}:{number}: prompt of {len(ids)} tokens + model.seq_len="
                    f"{model.seq_len} exceeds the model's context of {limit}"
                )
            prompts.append(ids)
        return PreparedPrompts(file, sha256_of(file), lines, prompts, self.samples_per_prompt, model)


def read_jsonl(file: Path) -> list[dict[str, Any]]:
    lines = []
    for number, text in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        if not text.strip():
            continue
        try:
            line = json.loads(text)
        except ValueError as err:
            raise ValueError(f"dataset.path={file}:{number}: not JSON ({err.msg})") from None
        if not isinstance(line, dict):
            raise ValueError(f"dataset.path={file}:{number}: must be a JSON object")
        lines.append(line)
    return lines


def prompt_ids(model: Any, line: dict[str, Any], field: str, where: str) -> list[int]:
    """A line's prompt as model ids: its ``ids`` list, else its ``field`` text encoded."""
    if "ids" in line:
        ids = line["ids"]
        if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
            raise ValueError(f"dataset.path={where}: ids must be a list of integers")
        bad = [i for i in ids if not 0 <= i < model.vocab_size]
        if bad:
            raise ValueError(
                f"dataset.path={where}: id {bad[0]} is outside the vocabulary 0..{model.vocab_size - 1}"
            )
        return ids
    if not isinstance(line.get(field), str):
        raise ValueError(
            f"dataset.path={where}: no text under {field!r} (dataset.conditioning.field) and no ids"
        )
    return list(model.encode_prompt(line[field]))


@dataclass(frozen=True)
class PreparedPrompts:
    file: Path
    sha256: str
    lines: list[dict[str, Any]]
    prompts: list[list[int]]
    samples_per_prompt: int
    model: Any
    kind: str = "prompts"

    def rows(self, first: int, size: int) -> list[int]:
        return [((first + k) // self.samples_per_prompt) % len(self.prompts) for k in range(size)]

    def batch(self, first: int, size: int) -> Conditioned:
        rows = self.rows(first, size)
        pad = getattr(self.model, "pad_token_id", None)
        prompts = PromptBatch.of([self.prompts[r] for r in rows], 0 if pad is None else pad, rows)
        return Conditioned(prompts, None, prompts.index)

    @property
    def fingerprint(self) -> str:
        ids = hashlib.sha256(json.dumps(self.prompts).encode()).hexdigest()
        return f"prompts:{ids}:{self.samples_per_prompt}"

    def record(self, num_samples: int) -> dict[str, Any]:
        used = sorted(set(self.rows(0, num_samples)))
        return {
            "kind": self.kind,
            "path": str(self.file.resolve()),
            "sha256": self.sha256,
            "prompts_in_file": len(self.prompts),
            "prompts_used": len(used),
            "samples_per_prompt": self.samples_per_prompt,
        }

    def decoded(self, tokens: torch.Tensor, source_index: torch.Tensor) -> list[dict[str, Any]]:
        """Each sample's record: its prompt (line number, text, the line's other keys) and its
        completion, decoded by the model; ``text`` is the prompt followed by the completion."""
        completions = self.model.decode(tokens)
        out = []
        for i, (row, completion) in enumerate(zip(source_index.tolist(), completions, strict=True)):
            prompt = self.model.decode(torch.tensor([self.prompts[row]]))[0] if self.prompts[row] else ""
            extra = {k: v for k, v in self.lines[row].items() if k != "ids"}
            out.append(
                {"index": i, "prompt_line": row + 1, **extra, "prompt": prompt, "completion": completion}
                | {"text": prompt + completion}
            )
        return out


@dataclass(frozen=True)
class Infill:
    """Infilling from a data split with a mask pattern (see the module docstring)."""

    source: str = "file"
    split: str = "val"
    pattern: str = "prefix"
    keep: float = 0.5
    limit: int | None = None  # the first rows of the split only (None = all)

    def __post_init__(self) -> None:
        if self.source not in INFILL_SOURCES:
            raise ValueError(
                f"dataset.conditioning.source={self.source!r} must be one of {', '.join(INFILL_SOURCES)}"
            )
        if self.pattern not in INFILL_PATTERNS:
            raise ValueError(
                f"dataset.conditioning.pattern={self.pattern!r} must be one of {', '.join(INFILL_PATTERNS)}"
            )
        if not is_number(self.keep) or not 0 <= self.keep < 1:
            raise ValueError(f"dataset.conditioning.keep={self.keep!r} must be a number in [0, 1)")
        check_integer("dataset.conditioning.limit", self.limit, or_none="null (every row)")

    def prepare(self, model: Any, path: Any, grid: Any = None) -> PreparedInfill:
        rows, origin = source_rows(self.source, self.split, model, path)
        if self.limit is not None:
            rows = rows[: self.limit]
        if rows.dim() != 2 or rows.shape[1] != model.seq_len:
            raise ValueError(
                f"{origin}: rows of shape {tuple(rows.shape)}; the model needs [N, {model.seq_len}]"
            )
        if rows.shape[0] == 0:
            raise ValueError(f"{origin}: holds no row")
        if ((rows < 0) | (rows >= model.vocab_size)).any():
            raise ValueError(f"{origin}: holds ids outside the vocabulary 0..{model.vocab_size - 1}")
        given = (
            None if self.pattern == "random" else pattern_mask(self.pattern, self.keep, model.seq_len, grid)
        )
        return PreparedInfill(self, origin, rows.long(), given, model)


def source_rows(source: str, split: str, model: Any, path: Any) -> tuple[torch.Tensor, str]:
    """The data rows ``[N, L]`` of ``source`` (model ids) and a name for messages."""
    length = model.seq_len
    if source == "shakespeare":
        from unmask.data.shakespeare import load_text

        encode = getattr(model, "encode_text", None)
        if encode is None:
            raise ValueError("dataset.conditioning.source=shakespeare needs a character model (encode_text)")
        return windows(torch.as_tensor(encode(load_text(split))), length), f"shakespeare {split} split"
    if source == "mnist":
        from unmask.data.mnist import load_mnist

        vq = getattr(model, "vq", None)
        if vq is None:
            raise ValueError("dataset.conditioning.source=mnist needs an MNIST VQ model (model=mnist)")
        return vq.encode_all(load_mnist(split)[0]), f"mnist {split} split"
    file = existing_file(path, "a token array (.pt, .npy) or a text file")
    if file.suffix == ".pt":
        rows = torch.load(file, map_location="cpu", weights_only=True)
        if not isinstance(rows, torch.Tensor) or rows.is_floating_point():
            raise ValueError(f"dataset.path={file}: must hold an integer tensor [N, L]")
        return rows, f"dataset.path={file}"
    if file.suffix == ".npy":
        import numpy as np

        array = np.load(file, allow_pickle=False)
        if array.dtype.kind not in "iu":
            raise ValueError(f"dataset.path={file}: must hold integer ids, not {array.dtype}")
        return torch.from_numpy(array.astype("int64")), f"dataset.path={file}"
    encode = getattr(model, "encode_text", None) or getattr(model, "encode_prompt", None)
    if encode is None:
        raise ValueError(f"dataset.path={file}: a text file needs a model with a tokenizer (encode_text)")
    return windows(
        torch.as_tensor(list(encode(file.read_text(encoding="utf-8")))), length
    ), f"dataset.path={file}"


def windows(ids: torch.Tensor, length: int) -> torch.Tensor:
    """Consecutive, non-overlapping windows of ``length`` ids (the tail that does not fill one is dropped)."""
    count = ids.numel() // length
    return ids[: count * length].reshape(count, length)


def pattern_mask(pattern: str, keep: float, length: int, grid: Any = None) -> torch.Tensor:
    """Bool ``[L]``: True at the given (kept) positions of a fixed pattern."""
    given = torch.zeros(length, dtype=torch.bool)
    kept = round(keep * length)
    if pattern == "prefix":
        given[:kept] = True
    elif pattern == "suffix":
        given[length - kept :] = True
    elif grid is not None:  # center on an image: a centred box of about (1 - keep) of the cells masked
        h, w = grid
        side = math.sqrt(1 - keep)
        bh, bw = max(1, round(h * side)), max(1, round(w * side))
        top, left = (h - bh) // 2, (w - bw) // 2
        box = torch.ones(h, w, dtype=torch.bool)
        box[top : top + bh, left : left + bw] = False
        given = box.reshape(-1)
    else:
        masked = length - kept
        start = (length - masked) // 2
        given[:] = True
        given[start : start + masked] = False
    return given


@dataclass(frozen=True)
class PreparedInfill:
    spec: Infill
    origin: str
    rows: torch.Tensor
    given: torch.Tensor | None  # [L] for a fixed pattern; None: random per sample
    model: Any
    kind: str = "infill"

    def given_of(self, sample: int) -> torch.Tensor:
        if self.given is not None:
            return self.given
        generator = torch.Generator().manual_seed(sample)
        return torch.rand(self.rows.shape[1], generator=generator) < self.spec.keep

    def batch(self, first: int, size: int) -> Conditioned:
        index = torch.arange(first, first + size) % self.rows.shape[0]
        given = torch.stack([self.given_of(first + k) for k in range(size)])
        init = torch.where(given, self.rows[index], torch.full_like(self.rows[index], self.model.vocab_size))
        return Conditioned(None, init, index)

    @property
    def fingerprint(self) -> str:
        return f"infill:{digest(self.rows)}:{self.spec.pattern}:{self.spec.keep}"

    def record(self, num_samples: int) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "source": self.origin,
            "pattern": self.spec.pattern,
            "keep": self.spec.keep,
            "rows_in_source": int(self.rows.shape[0]),
            "rows_used": min(num_samples, int(self.rows.shape[0])),
            "rows_sha256": digest(self.rows),
        }

    def decoded(self, tokens: torch.Tensor, source_index: torch.Tensor) -> list[dict[str, Any]]:
        """Each text sample with its source row's text as ``original``."""
        texts, originals = self.model.decode(tokens), self.model.decode(self.rows[source_index])
        return [
            {"index": i, "source_row": int(r), "text": t, "original": o}
            for i, (r, t, o) in enumerate(zip(source_index.tolist(), texts, originals, strict=True))
        ]
