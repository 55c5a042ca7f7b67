"""Shared fixtures: a tiny word-level tokenizer and a tiny random Llama, built offline in milliseconds."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

WORDS = [
    "<eos>",
    "<unk>",
    "Question:",
    "Answer",
    "reasoning:",
    "the",
    "answer",
    "is",
    "x",
    "y",
    "z",
    "a",
    "b",
    "c",
    "####",
] + [str(d) for d in range(10)]
SHARED_DATA = __import__("pathlib").Path(__file__).resolve().parents[1].parent / "shared" / "data"


def make_tokenizer(extra_words: int = 0) -> PreTrainedTokenizerFast:
    """Words split on whitespace; pad == EOS, as in SmolLM2, so tests exercise that pitfall."""
    words = WORDS + [f"w{i}" for i in range(extra_words)]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>", unk_token="<unk>")
    fast.padding_side = "left"
    return fast


def make_lm(seed: int = 0, dropout: float = 0.0, layers: int = 2, extra_words: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(WORDS) + extra_words,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        attention_dropout=dropout,
        eos_token_id=0,
        pad_token_id=0,
        bos_token_id=None,
        tie_word_embeddings=False,
    )
    lm = LlamaForCausalLM(config)
    lm.generation_config.eos_token_id = 0
    lm.generation_config.pad_token_id = 0
    return lm


@pytest.fixture
def tokenizer() -> PreTrainedTokenizerFast:
    return make_tokenizer()


@pytest.fixture
def lm() -> LlamaForCausalLM:
    return make_lm()
