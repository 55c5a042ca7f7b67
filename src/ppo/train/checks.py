"""Settings checked before any work: each field's range, and what a run folder remembers of its settings.

A check fails with a ValueError of one line that names the flag, the rule and the value, so the command line
(`ppo.train.cli.command`) can print it without a traceback.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import typing
from pathlib import Path
from typing import Callable

# A rule: what the value must be (for the message), and the test.
Rule = tuple[str, Callable[[object], bool]]


def finite(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


POSITIVE: Rule = ("a finite number > 0", lambda v: finite(v) and v > 0)
NON_NEGATIVE: Rule = ("a finite number >= 0", lambda v: finite(v) and v >= 0)
AT_LEAST_ONE: Rule = ("an integer >= 1", lambda v: type(v) is int and v >= 1)
COUNT: Rule = ("an integer >= 0", lambda v: type(v) is int and v >= 0)
UNIT: Rule = ("in [0, 1]", lambda v: finite(v) and 0 <= v <= 1)
FINITE: Rule = ("a finite number", finite)
NONE_OR_AT_LEAST_ONE: Rule = ("none or an integer >= 1", lambda v: v is None or (type(v) is int and v >= 1))
NONE_OR_FINITE: Rule = ("none or a finite number", lambda v: v is None or finite(v))
NONE_OR_POSITIVE: Rule = ("none or a finite number > 0", lambda v: v is None or (finite(v) and v > 0))


# The range of every numeric setting of a stage, by field name (checked in the settings' __post_init__).
# fmt: off
PPO_RULES = {
    **dict.fromkeys(("rollout_batch_size", "samples_per_prompt", "max_new_tokens", "ppo_epochs", "steps",
                     "mini_batch_size", "micro_batch_size", "kl_horizon", "max_prompt_len", "max_bad_steps"),
                    AT_LEAST_ONE),
    **dict.fromkeys(("temperature", "clip_eps", "value_clip_eps", "max_grad_norm", "lr", "kl_target",
                     "program_timeout_s"), POSITIVE),
    **dict.fromkeys(("kl_coef", "vf_coef", "entropy_coef", "answer_tolerance", "weight_decay"), NON_NEGATIVE),
    **dict.fromkeys(("top_k", "save_every", "eval_every"), COUNT),
    **dict.fromkeys(("correct_score", "partial_score"), FINITE),
    "gamma": UNIT, "lam": UNIT, "top_p": ("in (0, 1]", lambda v: finite(v) and 0 < v <= 1),
    "max_questions": NONE_OR_AT_LEAST_ONE, "missing_eos_score": NONE_OR_FINITE, "clip_eps_high": NONE_OR_POSITIVE,
}
SFT_RULES = {
    **dict.fromkeys(("epochs", "lr", "max_grad_norm"), POSITIVE),
    **dict.fromkeys(("batch_size", "grad_accum", "max_len"), AT_LEAST_ONE),
    **dict.fromkeys(("dev_size", "save_every", "eval_every"), COUNT),
    "weight_decay": NON_NEGATIVE, "max_questions": NONE_OR_AT_LEAST_ONE,
}
EVAL_RULES = {
    **dict.fromkeys(("max_new_tokens", "batch_size", "k"), AT_LEAST_ONE),
    **dict.fromkeys(("temperature", "program_timeout_s"), POSITIVE),
    "limit": NONE_OR_AT_LEAST_ONE, "tolerance": NON_NEGATIVE, "dev_size": COUNT,
}
# fmt: on


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_choices(config) -> None:
    """Every field typed `Literal[...]` holds one of its choices, also when the dataclass is built in code (the
    command line already refuses others): `prompt_template="Reft"` fails here, not after the model has loaded."""
    for name, tp in typing.get_type_hints(type(config)).items():
        if typing.get_origin(tp) is typing.Literal and getattr(config, name) not in typing.get_args(tp):
            choices = ", ".join(map(str, typing.get_args(tp)))
            raise ValueError(f"{flag(name)} must be one of {choices} (got {getattr(config, name)!r})")


def check_installed(enabled: bool, name: str, module: str, extra: str) -> None:
    """A setting that needs an optional package fails before any work when the package is missing."""
    if enabled and importlib.util.find_spec(module) is None:
        raise ValueError(f"{flag(name)} needs the {module} package: pip install -e '.[{extra}]'")


def check_ppo_combinations(c) -> None:
    """The PPO settings that are wrong together, though each is in range."""
    if c.advantage != "gae" and c.samples_per_prompt < 2:
        raise ValueError(
            f"--advantage {c.advantage} needs --samples-per-prompt of at least 2: it compares each answer "
            f"with the other answers to its question (got {c.samples_per_prompt})"
        )
    if c.advantage != "gae" and c.critic == "separate":
        raise ValueError(f"--critic separate needs --advantage gae: {c.advantage} runs no critic")
    if c.kl_in == "loss" and c.kl_estimator == "k1":
        raise ValueError(
            "--kl-in loss needs --kl-estimator k2 or k3: the gradient of k1 has expectation 0 under the "
            "sampling policy (GRPO uses k3)"
        )
    n, mini, micro = c.rollout_batch_size * c.samples_per_prompt, c.mini_batch_size, c.micro_batch_size
    if n % mini or mini % micro:
        raise ValueError(
            f"rollout_batch_size * samples_per_prompt = {n} must be a multiple of mini_batch_size "
            f"= {mini}, and that a multiple of micro_batch_size = {micro}"
        )


def check_fields(config, rules: dict[str, Rule]) -> None:
    """Every field named in `rules` passes its test, else ValueError("--gamma must be in [0, 1] (got 2.0)")."""
    for name, (what, test) in rules.items():
        value = getattr(config, name)
        if not test(value):
            raise ValueError(f"{flag(name)} must be {what} (got {value!r})")


# Settings that never change what a run computes: a rerun may change them.
NOT_RESULTS = frozenset(
    {"output_dir", "resume", "save_every", "max_bad_steps", "gradient_checkpointing", "fsdp", "tensorboard"}
)


def resolve_auto(settings: dict) -> dict:
    """Settings whose `auto` stands for a value, replaced by it: a folder written before the default became auto,
    or with the value spelled out, compares equal to one that says auto."""
    if settings.get("loss_aggregation") == "auto":
        dr_grpo = settings.get("advantage") == "dr_grpo"
        settings = {**settings, "loss_aggregation": "seq_mean_token_sum_norm" if dr_grpo else "seq_mean_token_mean"}
    return settings


def check_run_folder(config, path: str | Path, ignore: frozenset[str] = NOT_RESULTS) -> None:
    """Refuse to go on with a run folder whose saved settings (`path`, written by `save_config`) differ from
    `config` (a settings dataclass, or a dict of settings by name) in a field that changes results: the old work
    would be reused, or mixed in, without a word."""
    path = Path(path)
    if not path.is_file():
        return
    saved = resolve_auto(json.loads(path.read_text()))
    now = resolve_auto(json.loads(json.dumps(config if isinstance(config, dict) else dataclasses.asdict(config))))
    # A setting one side lacks (added or removed by another version of this code) is not compared.
    changed = sorted(k for k in now.keys() & saved.keys() if k not in ignore and saved[k] != now[k])
    if changed:
        shown = ", ".join(f"{flag(k)} {saved[k]!r} -> {now[k]!r}" for k in changed[:8])
        shown += f", and {len(changed) - 8} more" if len(changed) > 8 else ""
        raise ValueError(
            f"{path.parent} holds a run with other settings ({shown}): rerun with its settings to resume it, "
            f"or choose another --output-dir"
        )
