"""Sampling responses: left-padded prompts, batched generation with the KV cache, masks from lengths.

Shapes: B = rollouts, P = prompt length, T = response length, L = P + T.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from . import decode
from .hook import prompt_positions


@dataclass
class Samples:
    """Sampled sequences, one row per rollout; prompts are left-padded, responses right-padded."""

    input_ids: torch.Tensor  # (B, L) prompt then response
    attention_mask: torch.Tensor  # (B, L) 1 on real prompt tokens and on the response up to its first EOS
    response_mask: torch.Tensor  # (B, T) float, 1 up to and including the first EOS
    texts: list[str]  # decoded responses, special tokens removed
    truncated: torch.Tensor  # (B,) bool, True when the response hit max_new_tokens without EOS

    @property
    def response_len(self) -> int:
        return self.response_mask.shape[1]


def encode_prompts(
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    device: torch.device,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tokenise and left-pad prompts. The mask comes from the tokenizer's lengths, not from pad ids.

    Shape: -> prompt_ids (B, P), prompt_mask (B, P).
    """
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    P = max(len(ids) for ids in encoded)
    prompt_ids = torch.full((len(prompts), P), tokenizer.pad_token_id, dtype=torch.long)
    prompt_mask = torch.zeros((len(prompts), P), dtype=torch.long)
    for row, ids in enumerate(encoded):
        prompt_ids[row, P - len(ids) :] = torch.tensor(ids, dtype=torch.long)
        prompt_mask[row, P - len(ids) :] = 1
    return prompt_ids.to(device), prompt_mask.to(device)


def response_mask_from_tokens(response_ids: torch.Tensor, eos_ids: list[int]) -> torch.Tensor:
    """1.0 on every token up to and including the first EOS; all ones when there is none (truncated).

    Built from the position of the first EOS, so pad == EOS is safe. Shape: (B, T) -> (B, T).
    """
    is_eos = torch.isin(response_ids, torch.tensor(eos_ids, device=response_ids.device))  # (B, T)
    eos_before = torch.cumsum(is_eos.long(), dim=1) - is_eos.long()  # EOS tokens strictly before t
    return (eos_before == 0).float()


# Settings that reshape the next-token distribution, pinned to "off" so that a model's own generation_config
# (from the hub) cannot switch them on: PPO's log-probs assume the plain tempered softmax.
NEUTRAL_SAMPLING = dict(
    repetition_penalty=1.0,
    encoder_repetition_penalty=1.0,
    no_repeat_ngram_size=0,
    typical_p=1.0,
    min_p=0.0,
    epsilon_cutoff=0.0,
    eta_cutoff=0.0,
    min_new_tokens=0,
)


def eos_token_ids(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """Every token id that ends a response: the tokenizer's EOS and the model's generation EOS ids."""
    ids = model.generation_config.eos_token_id
    ids = [] if ids is None else [ids] if isinstance(ids, int) else list(ids)
    return sorted(set(ids) | {tokenizer.eos_token_id})


@torch.no_grad()
def sample(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompt_ids: torch.Tensor,
    prompt_mask: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    greedy: bool = False,
    engine: str = "auto",
    full_length: bool = False,
) -> Samples:
    """Sample one response per prompt row (repeat the rows for several samples per prompt).

    A model whose layers are sharded (FSDP2) must be whole here: the caller holds `ppo.train.fsdp.gathered(model)`
    around the call, as `PPOTrainer.sample_responses` and `ppo.tasks.decoding.decode_prompts` do.

    top_k = 0 and top_p = 1.0 mean off. Greedy decoding is for evaluation only. engine: `lean` is the loop of
    `ppo.lm.decode` (same distribution, faster; Llama-family models only), `hf` is transformers' `generate`, and
    `auto` takes lean where it applies.

    `full_length` (benchmarks: work of a fixed size) runs every row to max_new_tokens: in the lean loop EOS ends
    no response (the distribution is unchanged), in `generate` EOS is held back until then (min_new_tokens).
    """
    if engine not in ("auto", "lean", "hf"):
        raise ValueError(f"unknown engine {engine!r}; choose auto, lean or hf")
    eos_ids = eos_token_ids(model, tokenizer)
    if engine == "lean" or (engine == "auto" and decode.supports(model)):
        eos_ids = [] if full_length else eos_ids
        pad, knobs = tokenizer.pad_token_id, (temperature, top_k, top_p, greedy)
        output = decode.generate(model, prompt_ids, prompt_mask, max_new_tokens, eos_ids, pad, *knobs)
    else:
        knobs = (temperature, top_k, top_p, greedy, max_new_tokens if full_length else 0)
        output = hf_generate(model, tokenizer, prompt_ids, prompt_mask, max_new_tokens, eos_ids, *knobs)
    return samples_from_output(tokenizer, output, prompt_ids, prompt_mask, eos_ids)


def hf_generate(
    model, tokenizer, prompt_ids, prompt_mask, max_new_tokens, eos_ids, temperature, top_k, top_p, greedy, min_new=0
) -> torch.Tensor:
    """transformers' `generate` with every distribution-shaping knob pinned. -> (B, P + T)"""
    # Every knob is explicit: a None would be filled in from transformers' defaults, and its default top_k = 50
    # would silently truncate the distribution that the PPO ratio and the KL assume.
    knobs = {**NEUTRAL_SAMPLING, "temperature": temperature, "top_k": top_k, "top_p": top_p, "min_new_tokens": min_new}
    if greedy:  # sampling-only knobs would only draw warnings
        knobs = {
            k: v
            for k, v in knobs.items()
            if k not in ("temperature", "top_k", "top_p", "min_p", "typical_p", "epsilon_cutoff", "eta_cutoff")
        }
    config = GenerationConfig(
        do_sample=not greedy,
        max_new_tokens=max_new_tokens,
        eos_token_id=eos_ids,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
        **knobs,
    )
    with prompt_positions(model, prompt_mask.bool()):  # LoReFT edits the prompt at prefill, never after
        # synced_gpus=False: the caller (`PPOTrainer.sample_responses`, `decode_prompts`) holds `gathered(model)`,
        # so no rank waits for the others.
        return model.generate(
            input_ids=prompt_ids, attention_mask=prompt_mask, generation_config=config, synced_gpus=False
        )


def samples_from_output(
    tokenizer, output: torch.Tensor, prompt_ids: torch.Tensor, prompt_mask: torch.Tensor, eos_ids: list[int]
) -> Samples:
    """Masks, texts and truncation flags of generated sequences (B, P + T)."""
    P = prompt_ids.shape[1]
    response_ids = output[:, P:]  # (B, T)
    if response_ids.shape[1] == 0:  # max_new_tokens was 0 or every prompt was empty
        raise ValueError("generation returned no tokens")
    response_mask = response_mask_from_tokens(response_ids, eos_ids)  # (B, T)
    lengths = response_mask.sum(1).long()  # (B,)
    last_tokens = response_ids[torch.arange(len(lengths)), lengths - 1]
    truncated = ~torch.isin(last_tokens, torch.tensor(eos_ids, device=last_tokens.device))
    texts = tokenizer.batch_decode(
        [ids[:n] for ids, n in zip(response_ids.tolist(), lengths.tolist())], skip_special_tokens=True
    )
    attention_mask = torch.cat([prompt_mask, response_mask.long()], dim=1)  # (B, L)
    return Samples(output, attention_mask, response_mask, texts, truncated)
