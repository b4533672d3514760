"""Adapters for other people's models, tested offline on a tiny random BERT saved locally."""

import pytest
import torch

from text_standins import write_bert
from unmask.models.hf import HFMaskedLM, ModuleDenoiser
from unmask.samplers import build

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    return write_bert(tmp_path_factory.mktemp("tiny_bert"))


def test_hf_masked_lm_maps_mask_and_never_samples_it(tiny_bert):
    model = HFMaskedLM(tiny_bert, seq_len=10, banned_ids=[0, 1, 2, 3])
    assert model.vocab_size == 32 and model.mask_token_id == 4
    tokens = torch.full((2, 10), model.vocab_size)
    logits = model(tokens)
    assert logits.shape == (2, 10, 32)
    assert torch.isinf(logits[..., [0, 1, 2, 3, 4]]).all()
    out = build("moment", steps=5).sample(model, 3, generator=torch.Generator().manual_seed(0))
    assert ((out.tokens >= 5) & (out.tokens < 32)).all()
    assert len(model.decode(out.tokens)) == 3


def test_prompt_conditions_the_logits(tiny_bert):
    plain = HFMaskedLM(tiny_bert, seq_len=6)
    prompted = HFMaskedLM(tiny_bert, seq_len=6, prompt="w1 w2 w3")
    assert prompted.prompt.tolist() == [6, 7, 8]
    tokens = torch.full((1, 6), 32)
    assert not torch.allclose(plain(tokens), prompted(tokens))


def test_bad_paths_and_lengths(tiny_bert, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model\.path="):
        HFMaskedLM(tmp_path / "missing", seq_len=4)
    with pytest.raises(ValueError, match="exceeds the model's 64 positions"):
        HFMaskedLM(tiny_bert, seq_len=70)


def test_module_denoiser_wraps_any_module():
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(9, 8)
            self.out = torch.nn.Linear(8, 9)  # 8 real tokens + its own mask id 8

        def forward(self, ids):
            assert (ids < 9).all()
            return self.out(self.embed(ids))

    denoiser = ModuleDenoiser(Net(), vocab_size=8, seq_len=5, mask_token_id=8)
    out = build("confidence", steps=5).sample(denoiser, 2, generator=torch.Generator().manual_seed(0))
    assert (out.tokens < 8).all()
    with pytest.raises(ValueError, match="vocab_size=0"):
        ModuleDenoiser(Net(), vocab_size=0, seq_len=5)
