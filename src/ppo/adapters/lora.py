"""LoRA (Hu et al. 2021): a low-rank update beside chosen linear layers of a frozen LM.

    y = W x + (alpha / r) * B (A x)          A: r x in (small random), B: out x r (zeros)

B starts at zero, so at step 0 the adapted model is exactly the base model, and the PPO reference can be the same
network with the adapter off. The update is added by a forward hook on each chosen `nn.Linear`, so the base
weights are never touched, both samplers (`generate` and the lean loop, which calls the same modules) see it, and
`lora.replaced(None)` removes it.

Shapes: x (..., in), y (..., out).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .base import Adapter, AdapterSpec


class LoRA(Adapter):
    """Low-rank updates on every `nn.Linear` whose name ends with one of `spec.targets` (lm_head excluded)."""

    def __init__(self, lm: nn.Module, spec: AdapterSpec):
        super().__init__(spec)
        self.targets = [
            name
            for name, m in lm.named_modules()
            if isinstance(m, nn.Linear) and name.split(".")[-1] in spec.targets and m is not lm.get_output_embeddings()
        ]
        if not self.targets:
            raise ValueError(
                f"no linear layer of this model is named {' or '.join(spec.targets)}: "
                f"choose targets from {sorted(linear_names(lm))}"
            )
        modules = dict(lm.named_modules())
        self.A = nn.ParameterList()
        self.B = nn.ParameterList()
        for name in self.targets:
            layer = modules[name]
            a = torch.empty(spec.rank, layer.in_features)
            nn.init.kaiming_uniform_(a, a=math.sqrt(5))  # as nn.Linear initialises its weight
            self.A.append(nn.Parameter(a))
            self.B.append(nn.Parameter(torch.zeros(layer.out_features, spec.rank)))
        self.scale = spec.alpha / spec.rank

    def delta(self, index: int, x: torch.Tensor) -> torch.Tensor:
        """(alpha / r) * B (A x) for target `index`, in x's dtype (the adapter's weights stay fp32)."""
        a, b = self.A[index].to(x.dtype), self.B[index].to(x.dtype)
        return (x @ a.T) @ b.T * self.scale

    def hook(self, lm: nn.Module) -> None:
        modules = dict(lm.named_modules())
        for index, name in enumerate(self.targets):
            modules[name].register_forward_hook(self.make_hook(index))

    def make_hook(self, index: int):
        def add_update(module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor:
            weights = self.current()
            return output if weights is None else output + weights.delta(index, args[0])

        return add_update


def linear_names(lm: nn.Module) -> set[str]:
    """The last name part of every linear layer (q_proj, v_proj, up_proj, ...), for error messages."""
    return {name.split(".")[-1] for name, m in lm.named_modules() if isinstance(m, nn.Linear) and name}
