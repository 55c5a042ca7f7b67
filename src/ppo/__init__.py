"""ReFT (Reinforced Fine-Tuning, Luong et al. 2024): warm-up SFT, then a from-scratch PPO in pure PyTorch.

The PPO step, module by module (see the README for the pseudocode):
    rollout  sample responses          rewards  score them
    kl       shape rewards with KL     gae      advantages and returns
    losses   clipped policy/value      trainer  the loop that calls them
"""
from .config import PPOConfig
from .models import load_model
from .policy import PolicyWithValue, frozen_copy, load_policy
from .trainer import PPOTrainer

__all__ = ["PPOConfig", "PPOTrainer", "PolicyWithValue", "frozen_copy", "load_model", "load_policy"]
