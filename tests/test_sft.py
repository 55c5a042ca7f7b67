import json

import pytest
import torch
from conftest import make_lm
from torch.testing import assert_close

from ppo.lm.rollout import encode_prompts
from ppo.tasks.data import Example
from ppo.tasks.formats import format_prompt
from ppo.tasks.stages import math_pair_fn
from ppo.train.config import SFTConfig
from ppo.train.sft import SFTTrainer, collate, encode_pair, lr_factor, sft_loss_sum

EXAMPLE = Example("a b c", 7.0, "x y z")
PAIR = math_pair_fn("reft", None)


def test_prompt_tokens_carry_no_loss_and_target_ends_with_eos(tokenizer):
    ids, mask = encode_pair(tokenizer, *PAIR(EXAMPLE))
    prompt_ids, _ = encode_prompts(tokenizer, [format_prompt(EXAMPLE.question, "reft")], torch.device("cpu"))
    n_prompt = prompt_ids.shape[1]
    assert ids[:n_prompt] == prompt_ids[0].tolist()  # the prompt is tokenised exactly as RL tokenises it
    assert mask == [0] * n_prompt + [1] * (len(ids) - n_prompt)
    assert ids[-1] == tokenizer.eos_token_id and mask[-1] == 1


def test_loss_ignores_prompt_tokens(tokenizer):
    """Changing a prompt token's *target* position changes nothing unless it is in the loss mask."""
    lm = make_lm()
    ids, attn, loss_mask = collate([encode_pair(tokenizer, *PAIR(EXAMPLE))], tokenizer.pad_token_id, "cpu")
    full = torch.log_softmax(lm(ids).logits[:, :-1], -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    expected = -(full * loss_mask[:, 1:]).sum()
    assert_close(sft_loss_sum(lm, ids, attn, loss_mask), expected, atol=1e-5, rtol=1e-5)
    only_prompt = loss_mask.clone()
    only_prompt[:] = 0
    assert sft_loss_sum(lm, ids, attn, only_prompt).item() == 0.0


def test_collate_right_pads_with_masks(tokenizer):
    ids, attn, loss_mask = collate([([5, 6, 7], [0, 1, 1]), ([8], [1])], 0, "cpu")
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert attn.tolist() == [[1, 1, 1], [1, 0, 0]]
    assert loss_mask.tolist() == [[0, 1, 1], [1, 0, 0]]


def test_lr_schedules():
    assert lr_factor(0, 100, 10, "linear") == pytest.approx(0.1)
    assert lr_factor(10, 100, 10, "linear") == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, "linear") == pytest.approx(0.5)
    assert lr_factor(55, 100, 10, "cosine") == pytest.approx(0.5)
    assert lr_factor(99, 100, 0, "constant") == 1.0


def test_sft_learns_the_targets(tokenizer, tmp_path):
    lm = make_lm()
    config = SFTConfig(
        epochs=30, lr=3e-3, batch_size=2, output_dir=str(tmp_path), warmup_ratio=0.0, schedule="constant"
    )
    examples = [EXAMPLE, Example("c b", 2.0, "y y")]
    history = SFTTrainer(lm, tokenizer, config, PAIR).train(examples)
    assert history[-1]["loss"] < 0.2 * history[0]["loss"]
    assert (tmp_path / "final" / "config.json").is_file() and (tmp_path / "metrics.jsonl").is_file()


def test_resumed_sft_matches_uninterrupted(tokenizer, tmp_path):
    from ppo.adapters.loading import load_model
    from ppo.train.checkpoint import latest_checkpoint

    examples = [EXAMPLE, Example("c b", 2.0, "y y"), Example("a", 1.0, "z")]
    config = SFTConfig(epochs=4, lr=1e-3, batch_size=1, save_every=5, output_dir=str(tmp_path / "straight"))
    straight = SFTTrainer(make_lm(), tokenizer, config, PAIR)
    straight.train(examples)

    crashed = SFTTrainer(
        make_lm(),
        tokenizer,
        SFTConfig(**{**config.__dict__, "output_dir": str(tmp_path / "b"), "tensorboard": True}),
        PAIR,
    )
    real_step = crashed.step

    def step_then_crash(rows, lr):
        if crashed.step_count == 7:
            raise KeyboardInterrupt("simulated crash")
        return real_step(rows, lr)

    crashed.step = step_then_crash
    with pytest.raises(KeyboardInterrupt):
        crashed.train(examples)
    last = latest_checkpoint(tmp_path / "b")
    assert last.name == "checkpoint-5"
    lm, _ = load_model(str(last), device="cpu")
    resumed = SFTTrainer(lm, tokenizer, crashed.config, PAIR)
    resumed.resume(last)
    resumed.train(examples)
    for a, b in zip(straight.lm.parameters(), resumed.lm.parameters()):
        assert_close(a, b)
    # TensorBoard shows each step once, as the straight run logged it: the crashed try's step 6 is dropped.
    from test_metrics import scalars

    logged = [json.loads(line) for line in (tmp_path / "straight" / "metrics.jsonl").open()]
    assert scalars(tmp_path / "b" / "tensorboard")["loss"] == [(r["step"], pytest.approx(r["loss"])) for r in logged]
