"""Checkpoints: atomic saves, exact RNG restore, log truncation, and a run that survives kill -9."""

import json
import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from conftest import make_lm
from safetensors.torch import load_file

from ppo.train import checkpoint
from ppo.train.checkpoint import latest_checkpoint, load_state, restore_interrupted_save, save_checkpoint, truncate_log


def test_a_crash_during_save_keeps_the_previous_checkpoint(tmp_path, tokenizer, monkeypatch):
    lm = make_lm()
    save_checkpoint(tmp_path / "checkpoint-2", lm, tokenizer, {"step": 2})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(tmp_path / "checkpoint-4", lm, tokenizer, {"step": 4})
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-2"  # the half-written one is invisible
    monkeypatch.undo()
    save_checkpoint(tmp_path / "checkpoint-4", lm, tokenizer, {"step": 4})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-4"]  # leftovers and old one pruned


def test_a_crash_between_the_renames_is_undone(tmp_path, tokenizer):
    save_checkpoint(tmp_path / "best", make_lm(), tokenizer, {"step": 1}, prune=False)
    os.replace(tmp_path / "best", tmp_path / "best.old")  # where a kill between the two renames leaves it
    restore_interrupted_save(tmp_path / "best")
    assert load_state(tmp_path / "best")["step"] == 1
    save_checkpoint(tmp_path / "best", make_lm(), tokenizer, {"step": 2}, prune=False)
    assert load_state(tmp_path / "best")["step"] == 2 and not (tmp_path / "best.old").exists()


def test_rng_states_of_python_numpy_and_torch_are_restored(tmp_path, tokenizer):
    save_checkpoint(tmp_path / "ckpt", make_lm(), tokenizer, {"step": 0})
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    random.seed(9), np.random.seed(9), torch.manual_seed(9)
    load_state(tmp_path / "ckpt")
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_truncate_log_keeps_steps_up_to_the_checkpoint_and_drops_a_torn_line(tmp_path):
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"step": 1}\n{"step": 2}\n{"step": 3}\n{"step": 4, "lo')
    truncate_log(log, 2)
    assert log.read_text() == '{"step": 1}\n{"step": 2}\n'


DRIVER = """
import json, sys, torch
from ppo.train.config import PPOConfig
from ppo.tasks.data import Example
from ppo.tasks.stages import run_ppo
config = PPOConfig(**json.loads(sys.argv[1]))
torch.manual_seed(config.seed)
run_ppo(config, [Example(q, a) for q, a in json.loads(sys.argv[2])])
"""
QUESTIONS = [["a b", 1.0], ["c", 2.0], ["x y z", 3.0], ["b c a", 4.0]] * 2


def start_run(model_dir, out_dir) -> subprocess.Popen:
    settings = dict(
        model=str(model_dir),
        output_dir=str(out_dir),
        device="cpu",
        steps=8,
        save_every=2,
        rollout_batch_size=4,
        samples_per_prompt=2,
        mini_batch_size=4,
        micro_batch_size=2,
        max_new_tokens=6,
        lr=1e-3,
        kl_coef=0.1,
    )
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, json.dumps(settings), json.dumps(QUESTIONS)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def kill_when(process: subprocess.Popen, path) -> None:
    """kill -9 the run as soon as `path` appears (the run is then somewhere in the next step)."""
    while not path.exists():
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (path.parent / "final").exists()  # it really was cut off mid-run


def test_kill_9_then_resume_gives_the_same_parameters_and_metrics(tmp_path, tokenizer):
    model_dir = tmp_path / "start"
    make_lm().save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    straight = start_run(model_dir, tmp_path / "straight")
    assert straight.wait() == 0, straight.stderr.read().decode()[-2000:]

    killed = tmp_path / "killed"
    kill_when(start_run(model_dir, killed), killed / "checkpoint-4")
    kill_when(start_run(model_dir, killed), killed / "checkpoint-6")  # killed twice
    resumed = start_run(model_dir, killed)
    assert resumed.wait() == 0, resumed.stderr.read().decode()[-2000:]

    for name in ("model.safetensors", "value_head.safetensors"):
        a, b = load_file(tmp_path / "straight" / "final" / name), load_file(killed / "final" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    def curves(run):
        rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]

    assert [r["step"] for r in curves(killed)] == list(range(1, 9))
    assert curves(killed) == curves(tmp_path / "straight")
