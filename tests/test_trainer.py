import json
import math

import pytest
import torch
from conftest import make_lm
from torch.testing import assert_close

from ppo.adapters.loading import load_policy
from ppo.lm.policy import PolicyWithValue
from ppo.lm.reference import FrozenLM
from ppo.tasks.data import Example
from ppo.tasks.stages import math_prompt_fn
from ppo.tasks.stages import math_reward_fn as math_reward
from ppo.train.config import PPOConfig
from ppo.train.trainer import PPOTrainer

QUESTIONS = [Example("a b", 1.0), Example("c", 2.0), Example("x y z", 3.0), Example("b c a", 4.0)]


def tiny_config(**overrides) -> PPOConfig:
    settings = dict(
        rollout_batch_size=4,
        samples_per_prompt=2,
        mini_batch_size=4,
        micro_batch_size=2,
        max_new_tokens=6,
        lr=1e-3,
        steps=1,
        output_dir="unused",
        device="cpu",
    )
    return PPOConfig(**{**settings, **overrides})


def make_trainer(tokenizer, config, reward_fn=None, seed=0):
    lm = make_lm(seed)
    policy = PolicyWithValue(lm)
    return PPOTrainer(
        policy,
        FrozenLM(lm),
        tokenizer,
        config,
        math_prompt_fn(config.prompt_template, tokenizer),
        reward_fn or math_reward(config),
    )


def target_word_reward(word: str):
    """Synthetic task: the score is the fraction of response words equal to `word`."""
    return lambda texts, examples: [t.split().count(word) / max(len(t.split()), 1) for t in texts]


def test_one_step_changes_the_policy_not_the_reference(tokenizer):
    trainer = make_trainer(tokenizer, tiny_config(), target_word_reward("x"))
    policy_before = [p.detach().clone() for p in trainer.policy.parameters()]
    ref_before = [p.detach().clone() for p in trainer.reference.lm.parameters()]
    torch.manual_seed(0)
    metrics = trainer.step(QUESTIONS)
    assert any(not torch.equal(a, b) for a, b in zip(policy_before, trainer.policy.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(ref_before, trainer.reference.lm.parameters()))
    assert trainer.step_count == 1
    expected = {
        "objective/score",
        "objective/kl",
        "objective/reward",
        "loss/policy",
        "loss/value",
        "policy/approx_kl",
        "policy/clipfrac",
        "policy/entropy",
        "value/explained_var",
        "time/rollout_s",
        "policy/grad_norm",
        "response/length",
    }
    assert expected <= metrics.keys()
    assert all(math.isfinite(v) for k, v in metrics.items() if k != "value/explained_var")


def test_kl_is_zero_when_the_reference_is_a_copy(tokenizer):
    trainer = make_trainer(tokenizer, tiny_config(kl_estimator="k3"), target_word_reward("x"))
    torch.manual_seed(0)
    # 0 up to rounding: a matrix product need not round the same way on a copy of the weights at another address
    assert abs(trainer.step(QUESTIONS)["objective/kl"]) < 1e-6
    torch.manual_seed(1)
    assert trainer.step(QUESTIONS)["objective/kl"] > 0.0  # the policy has moved away from the reference


def test_a_bare_lm_as_the_reference_is_refused_before_any_work(tokenizer):
    lm = make_lm()
    with pytest.raises(TypeError, match=r"a LlamaForCausalLM does not: pass FrozenLM\(lm\)"):
        PPOTrainer(
            PolicyWithValue(lm),
            lm,
            tokenizer,
            tiny_config(),
            math_prompt_fn("reft", tokenizer),
            math_reward(tiny_config()),
        )


def test_micro_batch_size_does_not_change_the_update(tokenizer):
    params = []
    for micro in (1, 4):
        trainer = make_trainer(
            tokenizer, tiny_config(micro_batch_size=micro, loss_aggregation="token_mean"), target_word_reward("x")
        )
        torch.manual_seed(0)
        trainer.step(QUESTIONS)
        params.append(torch.cat([p.detach().flatten() for p in trainer.policy.parameters()]))
    # each micro-batch is cut to its own longest response, so the passes differ in width and round differently:
    # Adam's first step, lr * g / (|g| + eps), turns that into up to a fraction of lr (1e-3) where g is near eps
    assert_close(params[0], params[1], atol=1e-5, rtol=1e-4)


def test_train_writes_config_metrics_and_a_loadable_checkpoint(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tiny_config(steps=2), target_word_reward("x"))
    history = trainer.train(QUESTIONS, tmp_path)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2] and len(history) == 2
    assert json.loads((tmp_path / "config.json").read_text())["steps"] == 2
    policy, _ = load_policy(str(tmp_path / "final"), device="cpu")
    assert_close(policy.value_head.weight, trainer.policy.value_head.weight)
    assert torch.load(tmp_path / "final" / "trainer_state.pt", weights_only=False)["step"] == 2
    with pytest.raises(ValueError):
        trainer.train([], tmp_path)


def test_mean_reward_rises_on_a_synthetic_task(tokenizer):
    """Reward the word 'x'; a tiny random model must learn to say it (about 1/25 of words at the start)."""
    torch.manual_seed(0)
    config = tiny_config(
        rollout_batch_size=8,
        samples_per_prompt=4,
        mini_batch_size=16,
        micro_batch_size=16,
        max_new_tokens=8,
        lr=3e-3,
        kl_coef=0.0,
        steps=30,
        ppo_epochs=2,
    )
    trainer = make_trainer(tokenizer, config, target_word_reward("x"))
    scores = [trainer.step(QUESTIONS * 2)["objective/score"] for _ in range(config.steps)]
    first, last = sum(scores[:5]) / 5, sum(scores[-5:]) / 5
    assert first < 0.15
    assert last > 0.5, scores


def test_default_reward_is_the_numeric_answer_score_and_truncation_can_be_penalised(tokenizer):
    from ppo.lm.rollout import Samples

    texts = ["the answer is 1", "#### 5", "x y", "the answer is 4"]
    samples = Samples(
        torch.zeros(4, 2, dtype=torch.long),
        torch.ones(4, 2),
        torch.ones(4, 1),
        texts,
        truncated=torch.tensor([False, False, False, True]),
    )
    trainer = make_trainer(tokenizer, tiny_config())
    assert trainer.score(samples, QUESTIONS).tolist() == pytest.approx([1.0, 0.1, 0.0, 1.0])
    trainer = make_trainer(tokenizer, tiny_config(missing_eos_score=-0.5))
    assert trainer.score(samples, QUESTIONS).tolist() == pytest.approx([1.0, 0.1, 0.0, -0.5])


def test_interrupted_and_resumed_run_gives_the_same_parameters_and_metrics(tokenizer, tmp_path):
    config = tiny_config(steps=4, save_every=2)
    straight = make_trainer(tokenizer, config, target_word_reward("x"))
    expected = straight.train(QUESTIONS, tmp_path / "straight")

    crashed = make_trainer(tokenizer, config, target_word_reward("x"))
    real_step = crashed.step

    def step_then_crash(examples):
        if crashed.step_count == 3:
            raise KeyboardInterrupt("simulated crash")
        return real_step(examples)

    crashed.step = step_then_crash
    with pytest.raises(KeyboardInterrupt):
        crashed.train(QUESTIONS, tmp_path / "crashed")
    torch.manual_seed(123)  # a new process would start from another RNG state; resume must restore it

    policy, _ = load_policy(str(tmp_path / "crashed" / "checkpoint-2"), device="cpu")
    resumed = PPOTrainer(
        policy, FrozenLM(make_lm(0)), tokenizer, config, math_prompt_fn("reft", tokenizer), target_word_reward("x")
    )
    resumed.resume(tmp_path / "crashed" / "checkpoint-2")
    got = resumed.train(QUESTIONS, tmp_path / "crashed")
    for a, b in zip(straight.policy.parameters(), resumed.policy.parameters()):
        assert_close(a, b)

    def drop_times(rows):
        return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]

    assert drop_times(got) == drop_times(expected[2:])


def test_dev_selection_keeps_the_best_policy(tokenizer, tmp_path):
    from ppo.tasks.stages import run_ppo

    model_dir = tmp_path / "start"
    make_lm().save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    scores = iter([0.1, 0.5, 0.3])  # what dev says after steps 2, 4 and 6
    config = tiny_config(model=str(model_dir), steps=6, eval_every=2, save_every=2, output_dir=str(tmp_path / "run"))
    path = run_ppo(config, QUESTIONS * 2, dev_fn=lambda lm, tok: next(scores))
    assert path.endswith("best")
    best = torch.load(tmp_path / "run" / "best" / "trainer_state.pt", weights_only=False)
    assert best["step"] == 4 and best["dev_score"] == 0.5
    assert (tmp_path / "run" / "final").is_dir() and not list((tmp_path / "run").glob("checkpoint-*"))
    logged = [json.loads(line).get("eval/dev_score") for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert logged == [None, 0.1, None, 0.5, None, 0.3]


def test_pcot_step_runs_the_sampled_programs_in_the_sandbox(tokenizer):
    """The tiny model writes words, not programs: every program fails, so every score is exactly 0."""
    trainer = make_trainer(tokenizer, tiny_config(answer_format="pcot", program_timeout_s=1.0))
    torch.manual_seed(0)
    metrics = trainer.step(QUESTIONS)
    assert metrics["objective/score"] == 0.0 and trainer.step_count == 1
    program = "def solution():\n    return 2 + 2"
    assert trainer.reward_fn([program, program], [Example("q", 4.0), Example("q", 5.0)]) == [1.0, 0.1]


def nan_for(bad_steps: set[int]):
    """A reward that is NaN on chosen steps (counted by calls), as a broken reward or data row would give."""
    calls = iter(range(1000))
    return lambda texts, examples: [float("nan") if next(calls) in bad_steps else 0.5] + [0.5] * (len(texts) - 1)


def test_a_nan_step_is_skipped_with_a_warning_and_the_weights_stay_finite(tokenizer):
    trainer = make_trainer(tokenizer, tiny_config(max_bad_steps=2), nan_for({0}))
    before = [p.detach().clone() for p in trainer.policy.parameters()]
    with pytest.warns(RuntimeWarning, match="step 1 skipped: NaN or inf in the scores"):
        metrics = trainer.step(QUESTIONS)
    assert metrics == {"health/skipped": 1.0, "health/bad_steps": 1.0} and trainer.step_count == 1
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.policy.parameters()))  # nothing applied
    assert "health/skipped" not in trainer.step(QUESTIONS)  # the next one runs
    assert all(bool(torch.isfinite(p).all()) for p in trainer.policy.parameters())


def test_the_run_stops_after_max_bad_steps_keeping_the_last_good_checkpoint(tokenizer, tmp_path):
    trainer = make_trainer(tokenizer, tiny_config(max_bad_steps=2, steps=6, save_every=1), nan_for({2, 3}))
    with pytest.warns(RuntimeWarning), pytest.raises(RuntimeError, match="step 4 skipped.*stopping"):
        trainer.train(QUESTIONS, tmp_path)
    state = torch.load(tmp_path / "checkpoint-3" / "trainer_state.pt", weights_only=False)
    assert state["step"] == 3 and state["bad_steps"] == 1 and not (tmp_path / "final").exists()


def test_a_nan_loss_or_gradient_stops_the_update_before_the_weights_move(tokenizer):
    trainer = make_trainer(tokenizer, tiny_config(), target_word_reward("x"))
    real_loss = trainer.loss
    trainer.loss = lambda mb: (real_loss(mb)[0] * float("inf"), {}, None)
    before = [p.detach().clone() for p in trainer.policy.parameters()]
    with pytest.warns(RuntimeWarning, match="NaN or inf in the loss"):
        assert trainer.step(QUESTIONS)["health/skipped"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.policy.parameters()))
    assert all(p.grad is None for p in trainer.policy.parameters())


def test_a_step_with_truncated_sampling_starts_at_ratio_one(tokenizer):
    """Old and new log-probs both come from the truncated distribution, so before any update the ratio is 1."""
    trainer = make_trainer(
        tokenizer,
        tiny_config(top_p=0.7, top_k=8, temperature=0.8, ppo_epochs=1, mini_batch_size=8),
        target_word_reward("x"),
    )
    torch.manual_seed(0)
    metrics = trainer.step(QUESTIONS)
    assert metrics["policy/ratio"] == pytest.approx(1.0, abs=1e-5) and metrics["policy/clipfrac"] == 0.0
    assert all(math.isfinite(v) for k, v in metrics.items() if k != "value/explained_var")


def test_the_trainer_samples_inside_a_gather_of_the_policy(tokenizer, monkeypatch):
    """ppo.lm's sampler knows no processes: under FSDP2 the trainer must hold `gathered(policy.lm)` around it."""
    import contextlib

    import ppo.train.trainer as trainer_module

    inside, calls = [], []

    @contextlib.contextmanager
    def recording(module):
        inside.append(module)
        yield
        inside.pop()

    def sample(lm, *args, **kwargs):
        calls.append(list(inside) == [lm])
        return real_sample(lm, *args, **kwargs)

    real_sample = trainer_module.sample
    monkeypatch.setattr(trainer_module, "gathered", recording)
    monkeypatch.setattr(trainer_module, "sample", sample)
    trainer = make_trainer(tokenizer, tiny_config())
    trainer.sample_responses(QUESTIONS)
    assert calls == [True] and inside == []


def test_tensorboard_holds_the_same_numbers_as_metrics_jsonl(tokenizer, tmp_path):
    from test_metrics import scalars

    trainer = make_trainer(tokenizer, tiny_config(steps=2, tensorboard=True), target_word_reward("x"))
    trainer.train(QUESTIONS, tmp_path)
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").open()]
    board = scalars(tmp_path / "tensorboard")
    for name in ("objective/score", "objective/kl", "loss/policy", "loss/value", "policy/clipfrac"):
        assert board[name] == [(r["step"], pytest.approx(r[name], rel=1e-6, abs=1e-12)) for r in logged], name


@pytest.mark.parametrize("advantage", ["grpo", "rloo", "dr_grpo"])
def test_a_group_estimator_neither_runs_nor_trains_the_value_head(tokenizer, advantage):
    trainer = make_trainer(tokenizer, tiny_config(advantage=advantage), target_word_reward("x"))
    calls = []
    trainer.policy.value_head.register_forward_hook(lambda *args: calls.append(1))
    head_before = [p.detach().clone() for p in trainer.policy.value_head.parameters()]
    lm_before = [p.detach().clone() for p in trainer.policy.lm.parameters()]
    torch.manual_seed(0)
    metrics = trainer.step(QUESTIONS)
    assert calls == [] and all(p.grad is None for p in trainer.policy.value_head.parameters())
    assert all(torch.equal(a, b) for a, b in zip(head_before, trainer.policy.value_head.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(lm_before, trainer.policy.lm.parameters()))
    assert not any(k.startswith(("loss/value", "value/")) for k in metrics)
    assert 0.0 <= metrics["objective/equal_groups"] <= 1.0 and math.isfinite(metrics["loss/total"])


def test_gae_still_runs_and_trains_the_value_head(tokenizer):
    trainer = make_trainer(tokenizer, tiny_config(), target_word_reward("x"))
    assert trainer.config.advantage == "gae" and trainer.config.aggregation == "seq_mean_token_mean"
    calls = []
    trainer.policy.value_head.register_forward_hook(lambda *args: calls.append(1))
    head_before = [p.detach().clone() for p in trainer.policy.value_head.parameters()]
    torch.manual_seed(0)
    metrics = trainer.step(QUESTIONS)
    assert len(calls) > 0 and "loss/value" in metrics and "value/explained_var" in metrics
    assert any(not torch.equal(a, b) for a, b in zip(head_before, trainer.policy.value_head.parameters()))


def test_the_trainer_gives_each_response_its_group_advantage_on_every_token(tokenizer):
    from ppo.core.group import rloo_advantages
    from ppo.core.kl import shape_rewards

    trainer = make_trainer(tokenizer, tiny_config(advantage="rloo", samples_per_prompt=2, kl_coef=1.0))
    mask = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [1.0, 1.0, 0.0]])
    scores = torch.tensor([1.0, 0.0, 0.0, 0.0])
    kl = torch.tensor([[0.1, 0.0, 0.0], [0.0, 0.1, -0.1], [0.0, 0.0, 0.0], [0.2, 0.0, 0.0]]) * mask
    rewards = shape_rewards(scores, kl, mask, 1.0)
    advantages, returns = trainer.advantages(scores, kl, rewards, None, mask)
    # total rewards 0.9, 0.0 | 0.0, -0.2 -> RLOO 0.9, -0.9 | 0.2, -0.2
    expected = rloo_advantages(rewards.sum(1), 2)
    assert_close(expected, torch.tensor([0.9, -0.9, 0.2, -0.2]))
    assert_close(advantages, expected[:, None] * mask)
    assert torch.equal(returns, torch.zeros_like(rewards))


def test_grpo_with_the_kl_in_the_reward_keeps_a_group_of_equal_scores_at_the_kl_scale(tokenizer):
    trainer = make_trainer(tokenizer, tiny_config(advantage="grpo", samples_per_prompt=2, kl_coef=0.01))
    mask = torch.ones(4, 2)
    scores = torch.tensor([1.0, 1.0, 0.0, 1.0])  # group 1: all right; group 2: one right
    kl = torch.tensor([[0.1, 0.2], [0.0, 0.1], [0.3, 0.0], [0.1, 0.0]])  # sequence KL 0.3, 0.1 | 0.3, 0.1
    advantages, _ = trainer.advantages(scores, kl, torch.zeros(4, 2), None, mask)
    # group 1: no signal from the scores, so only -0.01 * (KL - mean KL) = -0.01 * (+-0.1); dividing the totals
    # (0.997, 0.999) by their std instead would give it a full -0.707, +0.707
    # group 2: GRPO of the scores (-0.707, +0.707), less the same small centred KL term
    g = 0.5 / (math.sqrt(0.5) + 1e-6)
    assert_close(advantages[:, 0], torch.tensor([-0.001, 0.001, -g - 0.001, g + 0.001]), atol=1e-6, rtol=1e-5)


def test_the_kl_in_the_loss_pulls_the_policy(tokenizer):
    def trained(kl_coef):
        config = tiny_config(advantage="grpo", kl_in="loss", kl_estimator="k3", kl_coef=kl_coef)
        trainer = make_trainer(tokenizer, config, target_word_reward("x"))
        torch.manual_seed(0)
        trainer.step(QUESTIONS)  # the same samples and scores for both: the KL is not in the reward
        return [p.detach() for p in trainer.policy.lm.parameters()]

    # Four optimizer steps per PPO step: from the second on, the policy has left the reference, so k3 has a gradient
    assert any(not torch.equal(a, b) for a, b in zip(trained(0.0), trained(10.0)))


def test_with_the_kl_in_the_loss_the_reward_is_the_score_and_the_loss_holds_the_kl(tokenizer):
    config = tiny_config(advantage="grpo", kl_in="loss", kl_estimator="k3", kl_coef=0.1)
    trainer = make_trainer(tokenizer, config, target_word_reward("x"))
    torch.manual_seed(0)
    metrics = trainer.step(QUESTIONS)
    assert metrics["objective/reward"] == pytest.approx(metrics["objective/score"], abs=1e-6)
    assert metrics["loss/kl"] >= 0.0  # k3 of the policy against the reference it starts equal to
    first = metrics["loss/total"] - metrics["loss/policy"] + metrics["policy/entropy"] * config.entropy_coef
    assert first == pytest.approx(0.1 * metrics["loss/kl"], abs=1e-5)


def test_dr_grpo_divides_the_loss_by_the_response_limit_unless_told_otherwise():
    assert tiny_config(advantage="dr_grpo").aggregation == "seq_mean_token_sum_norm"
    assert tiny_config(advantage="dr_grpo", loss_aggregation="token_mean").aggregation == "token_mean"
    assert tiny_config(advantage="grpo").aggregation == "seq_mean_token_mean"


def test_one_pass_of_one_minibatch_takes_the_old_log_probs_from_the_update_with_the_same_result(tokenizer):
    # GRPO with the KL in the loss, one epoch of one minibatch: the old policy is the policy of the update's pass
    config = tiny_config(advantage="grpo", kl_in="loss", kl_estimator="k3", ppo_epochs=1, mini_batch_size=8)
    runs = []
    for reuse in (False, True):
        trainer = make_trainer(tokenizer, config, target_word_reward("x"))
        assert trainer.reuse_first_pass
        trainer.reuse_first_pass = reuse  # False: the separate old-policy forward pass, as before
        passes, run = [], trainer.policy.logprobs_and_values
        trainer.policy.logprobs_and_values = lambda *a, **k: passes.append(1) or run(*a, **k)
        torch.manual_seed(0)
        metrics = trainer.step(QUESTIONS)
        params = torch.cat([p.detach().flatten() for p in trainer.policy.parameters()])
        runs.append((len(passes), metrics, params))
    (separate, before, params_before), (reused, after, params_after) = runs
    assert (separate, reused) == (8, 4)  # 4 micro-batches of 2: old-policy and update passes, or the update's only
    assert_close(params_after, params_before, atol=1e-6, rtol=1e-4)
    for name in ("loss/total", "loss/policy", "loss/kl", "objective/kl", "policy/approx_kl", "policy/clipfrac"):
        assert after[name] == pytest.approx(before[name], rel=1e-4, abs=1e-6), name


def test_a_benchmark_step_can_run_every_response_to_max_new_tokens(tokenizer):
    trainer = make_trainer(tokenizer, tiny_config(max_new_tokens=7), target_word_reward("x"))
    trainer.full_length = True
    torch.manual_seed(0)
    metrics = trainer.step(QUESTIONS)
    assert metrics["response/length"] == 7.0 and metrics["response/truncated_frac"] == 1.0


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # GAE: the critic's values are needed before the update
        {"advantage": "grpo", "ppo_epochs": 1, "mini_batch_size": 8},  # the KL in the reward needs the old log-probs
        {"advantage": "grpo", "kl_in": "loss", "kl_estimator": "k3", "ppo_epochs": 2, "mini_batch_size": 8},
        {"advantage": "grpo", "kl_in": "loss", "kl_estimator": "k3", "ppo_epochs": 1, "mini_batch_size": 4},
    ],
)
def test_the_old_policy_pass_stays_wherever_it_differs_from_the_update_pass(tokenizer, overrides):
    assert not make_trainer(tokenizer, tiny_config(**overrides)).reuse_first_pass


@pytest.mark.parametrize("advantage", ["gae", "grpo"])
def test_shared_prompt_passes_give_the_same_step_as_per_row_passes(tokenizer, advantage, monkeypatch):
    import ppo.lm.logprobs as logprobs

    calls, real = [], logprobs.shared_prompt_states
    monkeypatch.setattr(logprobs, "shared_prompt_states", lambda *a: calls.append(1) or real(*a))
    runs = []
    for share in (False, True):
        trainer = make_trainer(tokenizer, tiny_config(advantage=advantage), target_word_reward("x"))
        trainer.share_prompts = share
        torch.manual_seed(0)
        metrics = trainer.step(QUESTIONS)
        runs.append((metrics, torch.cat([p.detach().flatten() for p in trainer.policy.parameters()])))
    # 8 rows in micro-batches of 2: 4 old-policy, 4 reference and 2 x 2 x 2 update passes, each one prompt per pair
    assert len(calls) == 16 and trainer.group == 2
    (before, params_before), (after, params_after) = runs
    assert_close(params_after, params_before, atol=1e-6, rtol=1e-4)
    for name in ("loss/total", "loss/policy", "objective/kl", "policy/clipfrac", "policy/entropy"):
        assert after[name] == pytest.approx(before[name], rel=1e-4, abs=1e-6), name


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # GAE, 2 epochs of 2 minibatches
        {"advantage": "grpo", "kl_in": "loss", "kl_estimator": "k3", "ppo_epochs": 1, "mini_batch_size": 8},  # reused
    ],
)
def test_trimmed_micro_batches_give_the_same_step_from_narrower_passes(tokenizer, overrides):
    runs = []
    for trim in (False, True):
        trainer = make_trainer(tokenizer, tiny_config(max_new_tokens=12, **overrides), target_word_reward("x"))
        trainer.trim = trim
        widths, run = [], trainer.policy.logprobs_and_values
        trainer.policy.logprobs_and_values = lambda ids, *a, **k: widths.append(ids.shape[1]) or run(ids, *a, **k)
        torch.manual_seed(3)
        metrics = trainer.step(QUESTIONS)
        runs.append((widths, metrics, torch.cat([p.detach().flatten() for p in trainer.policy.parameters()])))
    (full, before, params_before), (cut, after, params_after) = runs
    assert 0 < before["response/truncated_frac"] < 1  # responses of several lengths, so some passes are narrower
    assert len(cut) == len(full) and max(cut) <= max(full) and sum(cut) < sum(full)
    # Adam's first step is lr * g / (|g| + eps): where g is near eps, rounding moves it by a fraction of lr (1e-3)
    assert_close(params_after, params_before, atol=1e-5, rtol=1e-4)
    for name in ("loss/policy", "objective/kl", "objective/score", "policy/entropy"):
        assert after[name] == pytest.approx(before[name], rel=1e-4, abs=1e-6), name
