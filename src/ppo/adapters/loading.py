"""Attaching adapters, and loading LMs, policies and references that may carry one.

A checkpoint of an adapter LM holds the adapter only (`Adapter.save_pretrained`: its weights, its settings and a
pointer to the base model). Loading it loads the base (`ppo.lm.models.load_pretrained`), attaches a fresh adapter
of the same settings, and reads the weights into it. A plain checkpoint loads as it is.
"""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file
from torch import nn
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.hook import adapter_of, plug
from ..lm.models import load_pretrained, load_tokenizer
from ..lm.policy import POLICY_CONFIG_FILE, PolicyWithValue
from ..lm.reference import FrozenLM, SameNetwork
from ..lm.specs import DEFAULT_MODEL, EMBEDDED_MODELS, cache_dir
from .base import ADAPTER_CONFIG, ADAPTER_FILE, Adapter, AdapterSpec
from .lora import LoRA
from .loreft import LoReFT


def attach(lm: nn.Module, spec: AdapterSpec | str, base: str) -> Adapter | None:
    """Freeze `lm` and attach a fresh adapter (identity at step 0). `base` is the spec `lm` was loaded from."""
    spec = AdapterSpec.parse(spec) if isinstance(spec, str) else spec
    if spec.kind == "none":
        return None
    if adapter_of(lm) is not None:
        raise ValueError("this model already has an adapter")
    lm.requires_grad_(False)
    adapter = (LoRA if spec.kind == "lora" else LoReFT)(lm, spec).to(next(lm.parameters()).device)
    adapter.base = base_pointer(base)
    plug(lm, adapter)
    adapter.hook(lm)
    return adapter


def base_pointer(spec: str) -> str:
    """How a checkpoint points at its base model: a local folder by its absolute path, anything else as given."""
    return str(Path(spec).resolve()) if Path(spec).is_dir() else spec


def ensure_adapter(lm: nn.Module, spec: str, base: str) -> Adapter | None:
    """The adapter a stage trains: the one `lm` was loaded with (a checkpoint's), else a fresh one from `spec`."""
    adapter = adapter_of(lm)
    if adapter is None:
        return attach(lm, spec, base)
    if spec != "none" and AdapterSpec.parse(spec) != adapter.spec:
        raise ValueError(
            f"{base} holds a {adapter.spec} adapter, but --adapter asks for {spec}: pass --adapter none "
            f"to go on training the checkpoint's adapter"
        )
    return adapter


def check_adapter_fits(adapter: str, model: str) -> None:
    """Before any model loads: the adapter's rank is at most the model's hidden size, and its layers exist. Read from
    the model's config.json where it is on disk (a folder, a checkpoint's base, the embedded model's cache)."""
    spec = AdapterSpec.parse(adapter)
    config = model_config_file(model)
    if spec.kind == "none" or config is None:
        return
    shape = json.loads(config.read_text())
    hidden, layers = shape.get("hidden_size"), shape.get("num_hidden_layers")
    if hidden and spec.rank > hidden:
        raise ValueError(f"--adapter {adapter}: rank {spec.rank} is larger than the hidden size {hidden} of {model}")
    if spec.kind != "lora" and layers and spec.layers and not all(0 <= i < layers for i in spec.layers):
        raise ValueError(f"--adapter {adapter}: {model} has layers 0..{layers - 1}")


def model_config_file(model: str) -> Path | None:
    if model in EMBEDDED_MODELS:
        path = cache_dir() / EMBEDDED_MODELS[model][2] / "config.json"
    elif saved := saved_adapter(model) if Path(model).is_dir() else None:
        return model_config_file(saved["base"])
    else:
        path = Path(model) / "config.json"
    return path if path.is_file() else None


def saved_adapter(path: str | Path) -> dict | None:
    """The adapter config of a checkpoint folder ({"adapter": spec, "base": pointer}), or None."""
    config = Path(path) / ADAPTER_CONFIG
    return json.loads(config.read_text()) if config.is_file() else None


def load_weights(adapter: Adapter, path: str | Path) -> None:
    device = str(next(adapter.parameters()).device)
    adapter.load_state_dict(load_file(Path(path) / ADAPTER_FILE, device=device))


def load_model(
    spec: str = DEFAULT_MODEL,
    device: str = "auto",
    dtype: str = "auto",
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a spec: `smollm2-135m`, a local folder or a hub id. A folder saved
    with an adapter holds only the adapter: its base model is loaded, then the adapter on top."""
    saved = saved_adapter(spec) if Path(spec).is_dir() else None
    if saved is None:
        return load_pretrained(spec, device, dtype)
    model, _ = load_model(saved["base"], device, dtype)
    load_weights(attach(model, saved["adapter"], saved["base"]), spec)
    return model, load_tokenizer(spec)


def load_policy(spec: str, critic: str | None = None, device: str = "auto", dtype: str = "auto", adapter: str = "none"):
    """A policy and tokenizer from a model spec; a folder saved by `save_pretrained` brings its value head back.
    critic=None keeps the checkpoint's critic kind (shared for a plain LM). `adapter` attaches a fresh adapter
    unless the checkpoint has one."""
    saved = Path(spec) / POLICY_CONFIG_FILE
    if critic is None:
        critic = json.loads(saved.read_text())["critic"] if saved.is_file() else "shared"
    lm, tokenizer = load_model(spec, device=device, dtype=dtype)
    ensure_adapter(lm, adapter, spec)
    policy = PolicyWithValue(lm, critic=critic)
    if Path(spec).is_dir():
        policy.load_heads(spec)
    return policy, tokenizer


def make_reference(policy: PolicyWithValue, config, resumed: bool = False) -> FrozenLM | SameNetwork:
    """The reference named by config.ref_model, else the starting checkpoint config.model (a `PPOConfig`: its
    model, ref_model, device and dtype are read).

    `resumed`: the policy was loaded from a PPO checkpoint, so its weights are no longer the starting ones.
    """
    spec, adapter = config.ref_model or config.model, adapter_of(policy.lm)
    starting = spec == config.model and not resumed  # the policy's weights are the reference's
    if adapter is None:
        return FrozenLM(policy.lm) if starting else FrozenLM(load_model(spec, config.device, config.dtype)[0], False)
    saved = saved_adapter(spec) if Path(spec).is_dir() else None
    if saved is not None and saved["base"] == adapter.base:  # an adapter checkpoint on the same base
        weights = adapter.frozen_copy()
        if not starting:
            load_weights(weights, spec)
        return SameNetwork(policy.lm, weights)
    if base_pointer(spec) == adapter.base:  # the bare base model
        return SameNetwork(policy.lm, None)
    return FrozenLM(load_model(spec, config.device, config.dtype)[0], copy=False)
