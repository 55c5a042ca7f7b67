"""ReFT (Reinforced Fine-Tuning, Luong et al. 2024): warm-up SFT, then a from-scratch PPO in pure PyTorch.

The PPO step, module by module (see the README for the pseudocode):
    rollout  sample responses          rewards  score them
    kl       shape rewards with KL     gae      advantages and returns
    losses   clipped policy/value      trainer  the loop that calls them

The names below are imported on first use, so `python -m ppo.<module>` runs each module's command line cleanly.
"""
import importlib

_EXPORTS = {"PPOConfig": "config", "SFTConfig": "config", "PPOTrainer": "trainer", "SFTTrainer": "sft",
            "PolicyWithValue": "policy", "FrozenLM": "reference", "make_reference": "reference",
            "frozen_copy": "reference", "load_policy": "policy", "load_model": "models"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'ppo' has no attribute {name!r}")
