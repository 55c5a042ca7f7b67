"""Causal LMs and tokenizers: devices and dtypes, loading and saving, dropout off, activation checkpointing.

What a model spec may name, and where the offline default comes from, is `ppo.lm.specs`.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import torch
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .hook import adapter_of
from .specs import DEFAULT_MODEL, resolve_model_path


def resolve_device(device: str = "auto") -> torch.device:
    """`auto` means the GPU when there is one, else the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """`auto` means bf16 on GPU and fp32 on CPU (bf16 matmuls are ~500x slower on the CPUs we measured)."""
    if dtype == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    check_dtype(dtype)
    return DTYPES[dtype]


DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}  # fmt: skip


def check_dtype(dtype: str) -> None:
    if dtype != "auto" and dtype not in DTYPES:
        raise ValueError(f"--dtype {dtype!r} is not a dtype: choose auto, {', '.join(DTYPES)}")


def check_device(device: str) -> None:
    """`auto` or a device torch knows (cpu, cuda, cuda:1, mps, ...): checked by name, nothing is allocated."""
    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"--device {device!r} is not a device: choose auto, cpu, cuda, cuda:N or mps") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise ValueError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA devices")


def load_tokenizer(spec: str) -> PreTrainedTokenizerBase:
    """A tokenizer that pads on the left (for batched generation) and always has a pad token."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(spec))
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        # pad == EOS is safe here: every mask in this library is built from lengths, never from token values.
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_pretrained(
    spec: str = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str = "auto",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM and its tokenizer from a spec: `smollm2-135m`, a folder in Hugging Face format or a hub id.
    (A checkpoint that holds only an adapter is loaded by `ppo.adapters.loading.load_model`.)"""
    dev = resolve_device(device)
    model = AutoModelForCausalLM.from_pretrained(resolve_model_path(spec), dtype=resolve_dtype(dtype, dev)).to(dev)
    tokenizer = load_tokenizer(spec)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def random_model(
    spec: str = DEFAULT_MODEL, device: str = "auto", dtype: str = "auto", seed: int = 0
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """A causal LM of `spec`'s shape (its config.json) with seeded random weights, and its tokenizer: for speed
    measurements on a machine that has no copy of the weights. A folder written by `save_shape` is enough."""
    dev = resolve_device(device)
    config = AutoConfig.from_pretrained(resolve_model_path(spec))
    with torch.random.fork_rng(devices=[]), torch.device(dev):  # built on the device: no fp32 copy on the host
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=resolve_dtype(dtype, dev))
    tokenizer = load_tokenizer(spec)
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def save_shape(spec: str, path: str | Path) -> Path:
    """A model's config and tokenizer without its weights (about 4 MB for SmolLM2), for `random_model` elsewhere."""
    out = Path(path)
    AutoConfig.from_pretrained(resolve_model_path(spec)).save_pretrained(out)
    load_tokenizer(spec).save_pretrained(out)
    return out


def save_lm(lm: nn.Module, path: str | Path, weights: dict | None = None) -> None:
    """An LM's weights in Hugging Face format (`weights` if given: the whole state dict of a sharded LM); an LM
    with an adapter saves only the adapter, beside a pointer to its base model (the hook protocol)."""
    adapter = adapter_of(lm)
    if adapter is None:
        lm.save_pretrained(Path(path), state_dict=weights)
    else:
        adapter.save_pretrained(path)


def decoder_layers(lm: nn.Module) -> nn.ModuleList:
    """The decoder layers of a causal LM, in order (LoReFT edits them; FSDP2 shards them)."""
    trunk = lm.base_model
    for name in ("layers", "h"):  # Llama/Mistral/Qwen; GPT-2
        if isinstance(getattr(trunk, name, None), nn.ModuleList):
            return getattr(trunk, name)
    raise ValueError(f"cannot find the decoder layers of {type(lm).__name__}")


def disable_dropout(module: nn.Module) -> None:
    """Dropout off everywhere (the original runs rollouts and updates without it): a stochastic forward would
    make the old and new log-probs differ even before any update."""
    for m in module.modules():
        if isinstance(m, nn.Dropout):
            m.p = 0.0
        for name, value in vars(m).items():  # e.g. LlamaAttention.attention_dropout, read at every forward
            if "dropout" in name and isinstance(value, float):
                setattr(m, name, 0.0)


def checkpoint_activations(*models: PreTrainedModel | None) -> None:
    """Gradient checkpointing (`--gradient-checkpointing`): each decoder layer keeps only its input for the backward
    pass and recomputes the rest there. A training forward then stores one (B, L, H) tensor per layer instead of
    every attention and MLP intermediate, for one more forward pass of compute in the update.

    An adapter hook that runs inside a layer runs again in that recomputation, after the contexts that set its state
    have closed (which weights are on; LoReFT's prompt positions): the adapter's `recompute_context` replays it.
    `models`: the LM, and a separate critic trunk if there is one (None is skipped)."""
    for model in filter(None, models):
        adapter = adapter_of(model)
        kwargs = {"use_reentrant": False, **({"context_fn": adapter.recompute_context} if adapter else {})}
        if hasattr(model, "activation_checkpointing_enable"):  # its newer name; gradient_... is deprecated there
            model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
        disable_dropout(model)  # eval mode, and training mode only inside `recomputing`, with no dropout
        model.eval()


@contextlib.contextmanager
def recomputing(trunk: nn.Module):
    """Training mode around one forward pass, if it builds a graph and the trunk checkpoints its layers.

    transformers checkpoints a layer only in training mode, and a layer in training mode drops its KV cache; so the
    model stays in eval mode, and decoding keeps its cache."""
    on = torch.is_grad_enabled() and not trunk.training and checkpointed(trunk)
    if on:
        trunk.train()
    try:
        yield
    finally:
        if on:
            trunk.eval()


def checkpointed(model: nn.Module) -> bool:
    """Whether `checkpoint_activations` was applied: the log-probs' logits are then recomputed in backward too."""
    return any(getattr(m, "gradient_checkpointing", False) for m in model.modules())
