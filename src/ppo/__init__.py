"""ReFT (Reinforced Fine-Tuning, Luong et al. 2024): warm-up SFT, then a from-scratch PPO in pure PyTorch.

Layered packages; each imports only the layers below it (tests/test_layers.py enforces it):

    core      the PPO math: masked ops, KL, GAE, losses, the rollout buffer        (imports only torch)
    lm        models, log-probs, the policy with its value head, reference, rollout, decoder
    adapters  LoRA, LoReFT, DiReFT: they plug into `lm` through one hook point (ppo.lm.hook)
    train     settings, command line, the PPO and SFT trainers, checkpoints, metrics, distributed, FSDP
    tasks     math data, prompts, rewards, the sandbox, evaluation, the stages and the pipeline
    lab       ablations, benchmarks, reports

The names below are imported on first use. So are the modules' paths from before the layers (`ppo.sandbox`,
`ppo.trainer`, ...): they name the same module objects as the new paths, so old module imports and old pickles
load. Names that moved between modules are listed in docs/layout.md.
"""

import importlib
import importlib.abc
import importlib.machinery
import sys

_EXPORTS = {
    "PPOConfig": "train.config",
    "SFTConfig": "train.config",
    "PPOTrainer": "train.trainer",
    "SFTTrainer": "train.sft",
    "PolicyWithValue": "lm.policy",
    "FrozenLM": "lm.reference",
    "frozen_copy": "lm.reference",
    "make_reference": "adapters.loading",
    "load_policy": "adapters.loading",
    "load_model": "adapters.loading",
    "run_programs": "tasks.sandbox",
    "run_sft": "tasks.stages",
    "run_ppo": "tasks.stages",
}
__all__ = sorted(_EXPORTS)

# Where each module of the flat layout (before 2026-12) lives now.
MOVED = {
    "masked": "core.masked",
    "kl": "core.kl",
    "gae": "core.gae",
    "losses": "core.losses",
    "buffer": "core.buffer",
    "models": "lm.models",
    "policy": "lm.policy",
    "reference": "lm.reference",
    "rollout": "lm.rollout",
    "decode": "lm.decode",
    "adapter": "adapters.base",
    "lora": "adapters.lora",
    "loreft": "adapters.loreft",
    "config": "train.config",
    "cli": "train.cli",
    "trainer": "train.trainer",
    "sft": "train.sft",
    "checkpoint": "train.checkpoint",
    "metrics": "train.metrics",
    "distributed": "train.distributed",
    "fsdp": "train.fsdp",
    "data": "tasks.data",
    "formats": "tasks.formats",
    "rewards": "tasks.rewards",
    "sandbox": "tasks.sandbox",
    "sandbox_kernel": "tasks.sandbox_kernel",
    "evaluate": "tasks.evaluate",
    "pipeline": "tasks.pipeline",
    "ablate": "lab.ablate",
    "bench": "lab.bench",
    "report": "lab.report",
}


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    if name in MOVED:
        return importlib.import_module(f"{__name__}.{MOVED[name]}")
    raise AttributeError(f"module 'ppo' has no attribute {name!r}")


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """`import ppo.trainer` gives the module `ppo.train.trainer` itself (not a copy)."""

    def find_spec(self, fullname, path=None, target=None):
        package, _, leaf = fullname.rpartition(".")
        if package == __name__ and leaf in MOVED:
            return importlib.machinery.ModuleSpec(fullname, self)
        return None

    def create_module(self, spec):
        module = importlib.import_module(f"{__name__}.{MOVED[spec.name.rpartition('.')[2]]}")
        self.own_spec = module.__spec__  # the import machinery is about to write the old path's over it
        return module

    def exec_module(self, module):
        module.__spec__ = self.own_spec  # it ran under its own name already; its spec lets importlib.reload work

    def get_code(self, fullname):  # `python -m ppo.sft`: say what the command is now
        leaf = fullname.rpartition(".")[2]
        now = {
            "sft": "python -m ppo sft",
            "evaluate": "python -m ppo evaluate",
            "metrics": "python -m ppo metrics",
            "bench": "python -m ppo bench",
            "trainer": "experiments/run_ppo.py",
            "pipeline": "experiments/run_reft.py",
        }.get(leaf, "python -m ppo COMMAND")
        return compile(f"raise SystemExit('python -m {fullname} is now {now}')", fullname, "exec")


if not any(type(f).__qualname__ == _OldPaths.__qualname__ for f in sys.meta_path):  # once, even after a reload
    sys.meta_path.append(_OldPaths())
