"""Parameter-efficient policies: a few trainable weights that edit a frozen LM through forward hooks.

    --adapter none        full fine-tuning: every weight of the LM trains (the default)
    --adapter lora        LoRA on q_proj and v_proj: W x + (alpha / r) B A x               (ppo.adapters.lora)
    --adapter loreft      LoReFT on the residual stream: h + R^T (W h + b - R h)           (ppo.adapters.loreft)
    --adapter direft      DiReFT, its variant without the orthonormal R: h + W2^T (W1 h + b)
    --adapter "loreft:rank=4,layers=0+15+29,first=7,last=7,tied=false"   settings after the colon

How it fits together:
- The adapter is a submodule of the LM (`lm.ppo_adapter`), so every code path that runs the LM runs it: SFT, both
  samplers, the PPO forward passes, evaluation. The base weights are frozen; `.to()` and `.parameters()` see it.
- `adapter.replaced(None)` switches it off, and `adapter.replaced(frozen)` runs a frozen copy's weights instead.
  The PPO reference is therefore the same network, never a second copy of the LM (ppo.lm.reference).
- LoReFT edits chosen prompt positions only, so each forward pass names its prompt tokens with
  `prompt_positions(lm, mask)`. Generated tokens are never edited (a decode step edits nothing): they see the edit
  through the cached keys and values, at no extra cost.
- A checkpoint holds the adapter weights only (plus the value head), with a pointer to the base model
  (`Adapter.save_pretrained`, called by `ppo.lm.models.save_lm`).
"""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

ADAPTER_FILE = "adapter.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
KINDS = ("none", "lora", "loreft", "direft")


@dataclass(frozen=True)
class AdapterSpec:
    """An adapter's settings, written as `kind:key=value,...` on the command line (`AdapterSpec.parse`)."""

    kind: str = "none"
    rank: int = 8  # r, for every kind
    alpha: float = 16.0  # LoRA: the update is scaled by alpha / r
    targets: tuple[str, ...] = ("q_proj", "v_proj")  # LoRA: linear layers, by the last part of their name
    layers: tuple[int, ...] | None = None  # ReFT: decoder layers edited; None = all
    first: int = 7  # ReFT: how many first prompt tokens are edited
    last: int = 7  # ReFT: how many last prompt tokens are edited
    tied: bool = True  # ReFT: one intervention for both, or one each

    @classmethod
    def parse(cls, text: str) -> AdapterSpec:
        kind, _, options = text.strip().partition(":")
        if kind not in KINDS:
            raise ValueError(f"unknown adapter {kind!r}: choose one of {', '.join(KINDS)}")
        values = {"kind": kind}
        for option in filter(None, options.split(",")):
            key, _, value = option.partition("=")
            try:
                values[key] = OPTION_PARSERS[key](value)
            except (KeyError, ValueError):
                raise ValueError(
                    f"bad adapter option {option!r}: write key=value with key in "
                    f"{sorted(OPTION_PARSERS)} (lists joined by +, e.g. layers=0+5)"
                ) from None
        spec = cls(**values)
        if spec.rank < 1 or spec.first < 0 or spec.last < 0 or spec.first + spec.last < 1 or not 0 < spec.alpha < 1e30:
            raise ValueError(
                f"adapter rank must be >= 1, alpha a finite number > 0 and first + last >= 1 (got {text!r})"
            )
        return spec

    def __str__(self) -> str:
        if self.kind == "none":
            return "none"
        lora = self.kind == "lora"
        shown = {
            "rank": self.rank,
            **(
                {"alpha": self.alpha, "targets": "+".join(self.targets)}
                if lora
                else {
                    "layers": "all" if self.layers is None else "+".join(map(str, self.layers)),
                    "first": self.first,
                    "last": self.last,
                    "tied": str(self.tied).lower(),
                }
            ),
        }
        return f"{self.kind}:" + ",".join(f"{k}={v}" for k, v in shown.items())


def plus_list(value: str) -> tuple[str, ...]:
    """'q_proj+v_proj' -> ('q_proj', 'v_proj'); an empty list is an error."""
    items = tuple(filter(None, value.split("+")))
    if not items:
        raise ValueError("empty list")
    return items


OPTION_PARSERS = {
    "rank": int,
    "alpha": float,
    "first": int,
    "last": int,
    "targets": plus_list,
    "layers": lambda v: None if v == "all" else tuple(int(i) for i in plus_list(v)),
    "tied": lambda v: {"true": True, "false": False}[v.lower()],
}


class Adapter(nn.Module):
    """Trainable weights that edit a frozen LM through hooks on its modules (subclasses: LoRA, LoReFT).

    The hooks ask `current()` whose weights to use: this adapter's, a frozen copy's, or none (off).
    """

    HOOK_STATE = ("_replacements",)  # what the hooks read besides the weights (recompute_context)

    def __init__(self, spec: AdapterSpec):
        super().__init__()
        self.spec = spec
        self.base = ""  # the base model it was attached to (the checkpoint pointer)
        self._replacements: list[Adapter | None] = []

    def current(self) -> Adapter | None:
        return self._replacements[-1] if self._replacements else self

    @contextlib.contextmanager
    def replaced(self, weights: Adapter | None):
        """Run the LM with `weights` (a frozen copy of this adapter) instead of this adapter's, or off (None)."""
        previous, self._replacements = self._replacements, [*self._replacements, weights]
        try:
            yield
        finally:
            self._replacements = previous

    def recompute_context(self) -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        """torch.utils.checkpoint's `context_fn`, called as a layer's forward starts: for its recomputation in backward,
        the hooks' state as it is now (the contexts here replace that state, never mutate it, so no copy is made)."""
        state = {name: getattr(self, name) for name in self.HOOK_STATE}
        return contextlib.nullcontext(), self.restored(state)

    @contextlib.contextmanager
    def restored(self, state: dict):
        now = {name: getattr(self, name) for name in state}
        self.__dict__.update(state)
        try:
            yield
        finally:
            self.__dict__.update(now)

    def frozen_copy(self) -> Adapter:
        """A frozen copy of the weights as they are now: the reference of a policy whose adapter was trained
        before PPO (its starting point is then not the bare base model)."""
        frozen = copy.deepcopy(self).requires_grad_(False)
        frozen._replacements = []
        return frozen

    @contextlib.contextmanager
    def prompt_tokens(self, mask: torch.Tensor):
        """Which tokens of the next forward passes are prompt tokens, (B, L) bool. Only LoReFT needs to know."""
        yield

    def save_pretrained(self, path: str | Path) -> None:
        """The adapter's weights, beside its settings and a pointer to the base model (ppo.adapters.loading)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, path / ADAPTER_FILE)
        (path / ADAPTER_CONFIG).write_text(
            json.dumps({"adapter": str(self.spec), "base": self.base, "spec": asdict(self.spec)}, indent=2) + "\n"
        )

    def hook(self, lm: nn.Module) -> None:
        raise NotImplementedError

    def no_decay(self) -> list[nn.Parameter]:
        """Parameters that must never get weight decay (LoReFT's R)."""
        return []


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups over the trainable parameters; the adapter's no-decay parameters (LoReFT's R) get none."""
    keep = {id(p) for m in model.modules() if isinstance(m, Adapter) for p in m.no_decay()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if id(p) not in keep], "weight_decay": weight_decay},
        {"params": [p for p in trainable if id(p) in keep], "weight_decay": 0.0},
    ]
    return [g for g in groups if g["params"]]
