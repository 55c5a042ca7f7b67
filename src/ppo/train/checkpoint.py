"""Checkpoints that survive a crash (even `kill -9`): written aside, then renamed into place, holding everything
needed to continue exactly.

A checkpoint is a folder: the model in Hugging Face format, or only its adapter (`adapter.safetensors`, and
`adapter_config.json` with the adapter's settings and the base model it edits), plus the value head for a PPO
policy, the tokenizer,
and `trainer_state.pt` with the optimizer, the step (which fixes the data order and the learning-rate schedule:
both are pure functions of it), the trainer's own state and the RNG states (Python, NumPy, torch, CUDA).
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from ..lm.models import save_lm
from ..lm.policy import PolicyWithValue
from . import distributed
from .fsdp import full_state_dict

STATE_FILE = "trainer_state.pt"
# dev_fn(policy LM, tokenizer) -> a dev score to maximise (model selection; never the test split)
DevFn = Callable[[PreTrainedModel, PreTrainedTokenizerBase], float]


def keep_if_best(dev_fn: DevFn, lm, model, tokenizer, best: float, path: Path, step: int) -> tuple[float, float]:
    """Score `lm` on dev; save `model` (the LM, or the policy with its value head) in `path` when the score beats
    `best` (ties keep the earlier one). Returns (score, the best score now)."""
    score = dev_fn(lm, tokenizer)
    if score > best:
        save_checkpoint(path, model, tokenizer, {"step": step, "dev_score": score}, prune=False)
    return score, max(score, best)


def rng_state() -> dict:
    """The RNG states a resumed run needs to continue the same random stream."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    if "numpy" in state:
        np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | Path, model, tokenizer, state: dict, prune: bool = True) -> None:
    """Write a checkpoint. Under torchrun every rank calls this: each rank's RNG state is kept (so each resumes its
    own random stream), FSDP2's sharded layers are gathered, and rank 0 writes (`write_checkpoint`)."""
    rngs = distributed.gather([rng_state()])
    weights = full_state_dict(model)  # FSDP2: the whole weights, gathered on rank 0; otherwise None
    write_checkpoint(path, model, tokenizer, {**state, "rng": rngs[0], "rng_by_rank": rngs}, prune, weights)


@distributed.main_only
def write_checkpoint(
    path: str | Path, model, tokenizer, state: dict, prune: bool = True, weights: dict | None = None
) -> None:
    """Write a checkpoint folder atomically: into `path.tmp`, then renames. A crash mid-save leaves the previous
    checkpoint untouched, and never a half-written folder under the final name. An existing `path` (as for
    `best`) is first renamed to `path.old`, and `restore_interrupted_save` undoes a crash between the renames.
    With `prune`, older `checkpoint-N` siblings are then deleted (one model plus optimizer state is plenty).

    `model` is an LM (only its adapter, if it has one) or a `PolicyWithValue` (which adds its value head).
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if isinstance(model, PolicyWithValue):  # its LM (or only the adapter), value head and critic kind
        model.save_pretrained(tmp, state_dict=weights)
    else:
        save_lm(model, tmp, weights)
    tokenizer.save_pretrained(tmp)
    torch.save(state, tmp / STATE_FILE)
    old = path.with_name(path.name + ".old")
    restore_interrupted_save(path)
    if path.exists():
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)
    if prune:
        prune_checkpoints(path.parent, keep=path)


@distributed.main_only
def restore_interrupted_save(path: str | Path) -> None:
    """After a crash between `save_checkpoint`'s two renames, `path.old` is the last good copy: put it back."""
    path = Path(path)
    old = path.with_name(path.name + ".old")
    if old.is_dir() and not path.exists():
        os.replace(old, path)


@distributed.main_only
def truncate_log(path: str | Path, step: int) -> None:
    """Keep the metrics of steps <= `step` (the checkpoint being resumed) and drop the rest, including a line
    cut short by a crash, so a resumed run's log equals an uninterrupted one's."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if record.get("step", 0) <= step:
            kept.append(line + "\n")
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(kept), encoding="utf-8")
    os.replace(tmp, path)


def load_state(path: str | Path) -> dict:
    """The trainer state of a checkpoint; also restores the RNG states (this rank's, when the run had as many)."""
    state = torch.load(Path(path) / STATE_FILE, weights_only=False)
    per_rank = state.get("rng_by_rank", [])
    set_rng_state(per_rank[distributed.rank()] if len(per_rank) == distributed.world_size() else state["rng"])
    return state


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The `checkpoint-N` folder with the largest N in a run folder (complete ones only), or None."""
    found = [
        (int(m.group(1)), p)
        for p in Path(run_dir).glob("checkpoint-*")
        if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / STATE_FILE).is_file()
    ]
    return max(found)[1] if found else None


def prune_checkpoints(run_dir: str | Path, keep: Path) -> None:
    """Delete every `checkpoint-N` folder of a run except `keep` (one model plus optimizer state is plenty)."""
    for p in Path(run_dir).glob("checkpoint-*"):
        if p != keep and re.fullmatch(r"checkpoint-\d+", p.name):
            shutil.rmtree(p)
