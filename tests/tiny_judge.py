"""Tiny local causal LM directories for the judge tests, written with ``save_pretrained`` (the files
a real judge directory has: ``config.json``, ``model.safetensors``, the tokenizer's): a random
1-layer Llama (``write_tiny_judge``) and a random 1-layer GPT-2 whose tokenizer has an EOS
(``write_tiny_gpt2_judge``), each with a byte-level BPE trained on a few lines."""

from __future__ import annotations

from pathlib import Path

TEXT = ["To be, or not to be, that is the question:", "Whether 'tis nobler in the mind to suffer"]


def byte_level_bpe(lines: list[str], vocab_size: int, specials: list[str]):
    """A byte-level BPE ``tokenizers.Tokenizer`` trained on ``lines``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, initial_alphabet=alphabet, special_tokens=specials)
    bpe.train_from_iterator(lines, trainer)
    return bpe


def write_tiny_judge(folder: Path) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    bpe = byte_level_bpe(TEXT, 300, [])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=bpe.get_vocab_size(),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=256,
    )
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def write_tiny_gpt2_judge(folder: Path, lines: list[str], eos_token: str) -> Path:
    """A GPT-2 judge with 16 positions; ``eos_token`` is its BOS, EOS and UNK."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    bpe = byte_level_bpe(lines, 320, [eos_token])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token=eos_token, bos_token=eos_token, unk_token=eos_token
    )
    eos = tokenizer.convert_tokens_to_ids(eos_token)
    torch.manual_seed(0)
    config = GPT2Config(
        vocab_size=bpe.get_vocab_size(),
        n_positions=16,
        n_embd=16,
        n_layer=1,
        n_head=2,
        bos_token_id=eos,
        eos_token_id=eos,
    )
    GPT2LMHeadModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
