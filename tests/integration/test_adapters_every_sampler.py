"""Every sampler preset (conf/sampler/) through ``unmask-eval`` on each checkpoint adapter (LLaDA,
Dream, MDLM, a Hugging Face masked LM, MaskGIT), each a tiny random instance in the real checkpoint
layout: one in-process multirun per adapter, each preset at its own defaults (about 0.6 s a job,
most of it Hydra composing the config); the samples never hold a banned id (the model's mask id,
the special tokens) and MaskGIT's never leave its codebook."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hydra_cli import run_in_process
from text_standins import write_bert, write_standin
from tiny_maskgit import K, tiny_overrides, write_files
from unmask.config import CONF_DIR

pytestmark = pytest.mark.slow
PRESETS = sorted(p.stem for p in (Path(CONF_DIR) / "sampler").glob("*.yaml"))
L = 16
# the ids each stand-in must never emit: its mask id and what its tokenizer cannot make (text),
# every special token (BERT); MaskGIT returns code logits only (ids 0..K-1)
BANNED = {
    "llada": {36, *range(40, 48)},
    "dream": {36, *range(40, 48)},
    "mdlm": {259},
    "hf_mlm": {0, 1, 2, 3, 4},
}


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def overrides_for(family: str, root: Path) -> list[str]:
    if family == "maskgit":
        return [*tiny_overrides(write_files(root / "maskgit")), "class_label=cycle", "dataset.block_length=8"]
    folder = write_bert(root / "bert") if family == "hf_mlm" else write_standin(root / family, family)
    out = [f"model={family}", f"model.path={folder}", f"model.seq_len={L}", "model.dtype=float32"]
    if family == "mdlm":
        out.append(f"model.tokenizer_path={folder.parent / f'{folder.name}_gpt2'}")
    return [*out, "dataset.block_length=8", "dataset.llada_block_length=4"]


@pytest.mark.parametrize("family", ["llada", "dream", "mdlm", "hf_mlm", "maskgit"])
def test_every_sampler_preset_runs_through_unmask_eval(family, tmp_path, capsys, monkeypatch):
    from unmask.cli import evaluate

    overrides = [*overrides_for(family, tmp_path), "metrics.names=[]", "num_samples=2", "batch_size=2"]
    overrides.append(f"sampler={','.join(PRESETS)}")
    code, err = run_in_process(evaluate, tmp_path / "sweep", overrides, capsys, monkeypatch, multirun=True)
    assert code == 0, err[-3000:]
    assert "Loading weights" not in err  # transformers' progress bars stay out of a run's output
    jobs = sorted((tmp_path / "sweep").glob("*/samples.pt"))
    assert len(jobs) == len(PRESETS) >= 30
    for job in jobs:
        tokens = torch.load(job, weights_only=True)
        assert tokens.shape == (2, L), job
        if family == "maskgit":
            assert int(tokens.max()) < K, job
        else:
            assert not set(tokens.flatten().tolist()) & BANNED[family], job
