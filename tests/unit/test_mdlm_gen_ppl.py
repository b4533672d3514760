"""``metrics=mdlm_owt``: generative perplexity by MDLM's rule, on a tiny random GPT-2 judge.

``mdlm_reference`` is a line-by-line port of MDLM's ``eval_retokenize`` +
``compute_generative_perplexity`` (kuleshov-group/mdlm, diffusion.py: the tokenizer called on the
whole set with ``truncation``, ``padding`` and EOS as the pad, ``torch.split`` into context-size
pieces, ``F.cross_entropy`` of ``logits[..., :-1]`` against ``tokens[..., 1:]``, the weights
``first_eos + token_mask``, one pooled ``exp(sum / weight)``), written here independently of
``unmask.metrics.lm``. The judge is a 1-layer GPT-2 (16 positions) with a byte-level BPE tokenizer
trained on a few lines and GPT-2's ``<|endoftext|>`` as EOS (the GPT-2 BPE files are not shipped
here), saved with ``save_pretrained``. Tolerance ``rel=1e-5``: float32 logits of pieces batched
differently."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from tiny_judge import write_tiny_gpt2_judge
from unmask.metrics.lm import GenerativePerplexity, JudgeError, check_judge
from unmask.metrics.suite import check_options, perplexity_metrics

EOS = "<|endoftext|>"
LINES = [
    "To be, or not to be, that is the question:",
    "Whether 'tis nobler in the mind to suffer",
    "The slings and arrows of outrageous fortune,",
]


@pytest.fixture(scope="module")
def gpt2_judge(tmp_path_factory) -> Path:
    return write_tiny_gpt2_judge(tmp_path_factory.mktemp("judge") / "gpt2-tiny", LINES, EOS)


def mdlm_reference(path: Path, texts: list[str], max_length: int, context: int) -> float:
    """MDLM's generative perplexity of ``texts`` (one batch: the whole set)."""
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
        tokenizer.pad_token_id = tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    encoded = tokenizer(
        texts,
        return_tensors="pt",
        return_token_type_ids=False,
        return_attention_mask=True,
        truncation=True,
        padding=True,
        max_length=max_length,
    )
    samples, attn_mask = encoded["input_ids"], encoded["attention_mask"]
    total, weight = 0.0, 0.0
    with torch.no_grad():
        for sample_chunk, attn_mask_chunk in zip(
            torch.split(samples, context, dim=-1), torch.split(attn_mask, context, dim=-1), strict=True
        ):
            logits = model(sample_chunk, attention_mask=attn_mask_chunk)[0].transpose(-1, -2)
            nlls = F.cross_entropy(logits[..., :-1], sample_chunk[..., 1:], reduction="none")
            first_eos = (sample_chunk == tokenizer.eos_token_id).cumsum(-1) == 1
            token_mask = sample_chunk != tokenizer.eos_token_id
            weights = (first_eos[..., 1:] + token_mask[..., 1:]).double()
            total += float((nlls.double() * weights).sum())
            weight += float(weights.sum())
    return math.exp(total / weight)


TEXTS = [
    LINES[0] + " " + LINES[1] + " " + LINES[2],  # longer than max_length: truncated
    LINES[1],
    f"{LINES[2][:20]}{EOS} and after the end",  # an EOS inside: the first is scored, and what follows
    "To be",
]


def test_mdlm_convention_equals_mdlms_own_computation(gpt2_judge):
    mdlm = {"max_length": 24, "context": 10, "special_tokens": True, "eos": "first"}
    options = check_options({"gen_ppl": {"model": str(gpt2_judge), **mdlm}})
    judge = GenerativePerplexity(**options["gen_ppl"], device="cpu")
    assert len(judge.judge_ids(TEXTS[0])) == 24, "the longest sample reaches max_length (MDLM's padding)"
    nll, count = judge.nll(TEXTS)
    judged = torch.stack([nll, count.double(), judge.characters(TEXTS).double()], dim=1)
    ppl = perplexity_metrics(judged)["gen_ppl"]
    assert ppl == pytest.approx(mdlm_reference(gpt2_judge, TEXTS, max_length=24, context=10), rel=1e-5)
    other = GenerativePerplexity(**(options["gen_ppl"] | {"eos": "all"}), device="cpu").nll(TEXTS)
    assert other[1].sum() < count.sum(), "the rule matters here: the EOS after a short sample"
    # the same per sample, whatever the batch (rank layout)
    alone = [judge.nll([text]) for text in TEXTS]
    assert [int(c[0]) for _, c in alone] == count.tolist()
    assert torch.allclose(torch.cat([n for n, _ in alone]), nll, rtol=1e-5)


def test_default_convention_scores_every_token_after_the_first(gpt2_judge):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    judge = GenerativePerplexity(model=str(gpt2_judge), max_length=16, device="cpu")
    nll, count = judge.nll(TEXTS[1:])
    tokenizer, model = (
        AutoTokenizer.from_pretrained(gpt2_judge),
        AutoModelForCausalLM.from_pretrained(gpt2_judge),
    )
    for i, text in enumerate(TEXTS[1:]):
        ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"][:16]])
        with torch.no_grad():
            log_p = torch.log_softmax(model(ids).logits[0, :-1].double(), dim=-1)
        expected = -float(log_p.gather(1, ids[0, 1:, None]).sum())
        assert int(count[i]) == ids.shape[1] - 1 and float(nll[i]) == pytest.approx(expected, rel=1e-5)


def test_a_directory_that_is_not_a_causal_lm_is_one_line_naming_it(tmp_path):
    from transformers import BertConfig, BertForMaskedLM

    config = BertConfig(
        vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=8
    )
    BertForMaskedLM(config).save_pretrained(tmp_path / "bert")
    with pytest.raises(JudgeError) as raised:
        check_judge(tmp_path / "bert")
    assert str(raised.value) == (
        f"metrics.gen_ppl.model={tmp_path / 'bert'}: not a causal LM "
        "(config.json architectures: BertForMaskedLM)"
    )


def test_mdlm_owt_preset_is_mdlms_setting_and_needs_the_judge(gpt2_judge):
    from hydra import compose, initialize_config_dir

    from unmask.config import CONF_DIR
    from unmask.errors import ConfigError
    from unmask.evaluation import prepare

    def prepared(*overrides: str):
        with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
            return prepare(compose("eval", overrides=["model=shakespeare", "metrics=mdlm_owt", *overrides]))

    # a ??? merged onto auto.yaml would silently keep auto's judge: the preset must refuse instead
    with pytest.raises(ConfigError, match=r"metrics.gen_ppl.model: .*gpt2-large"):
        prepared()
    run = prepared(f"metrics.gen_ppl.model={gpt2_judge}")
    assert run.suite.names == ["gen_ppl", "text_stats"]
    options = run.suite.options["gen_ppl"]
    assert options["model"] == str(gpt2_judge)
    assert (options["max_length"], options["context"], options["special_tokens"], options["eos"]) == (
        1024,
        1024,
        True,
        "first",
    )
