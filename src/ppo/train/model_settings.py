"""What every stage that trains shares: the model, the policy kind, the device, the memory layout and the logging
(`ModelSettings`, the base of PPOConfig and SFTConfig in ppo.train.config)."""

from __future__ import annotations

from dataclasses import dataclass

from ..adapters.base import AdapterSpec
from ..lm.models import check_device, check_dtype
from .checks import check_choices, check_installed


@dataclass(frozen=True)
class ModelSettings:
    """What every stage that trains shares: the model, the policy kind, the device, the memory layout and the
    logging."""

    model: str = "smollm2-135m"
    """The model: `smollm2-135m` (offline default), a local folder, a hub id, or a checkpoint of this library."""
    adapter: str = "none"
    """none (full fine-tuning), lora, loreft or direft, with options: "loreft:rank=4,first=7" (ppo.adapters.base)."""
    device: str = "auto"
    """Device: auto (GPU if present), cpu, cuda, cuda:1, ..."""
    dtype: str = "auto"
    """auto = bf16 on GPU, fp32 on CPU; or float32, bfloat16, float16."""
    fsdp: bool = False
    """Under torchrun: shard the decoder layers, their gradients and AdamW moments over the ranks (ppo.train.fsdp)."""
    gradient_checkpointing: bool = False
    """Recompute each decoder layer's activations, and the log-prob logits, in the backward pass instead of storing
    them: less memory, a slower update (ppo.lm.models.checkpoint_activations; docs/adapters.md)."""
    tensorboard: bool = False
    """Also log every metric of metrics.jsonl to output_dir/tensorboard (`tensorboard --logdir runs`); needs the
    tensorboard package (pip install -e '.[tensorboard]')."""

    def __post_init__(self) -> None:  # invalid settings fail here, before any model is loaded
        AdapterSpec.parse(self.adapter)
        check_choices(self)
        check_device(self.device)
        check_dtype(self.dtype)
        check_installed(self.tensorboard, "tensorboard", "tensorboard", "tensorboard")
